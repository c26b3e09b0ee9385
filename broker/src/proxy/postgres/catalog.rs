//! Where result columns come from: (table OID, attribute number) from a
//! RowDescription resolved to `schema.table.column` through the database's
//! own catalog, for the masking hook ([`super::masked`]).
//!
//! One [`Catalog`] per connection, shared by all its sessions (they log in as
//! the same role to the same database, so they see the same catalog):
//!
//! - a cache of tables by OID: found tables live [`FOUND_TTL`]; an OID the
//!   catalog does not know (a table created in a client's still-open
//!   transaction) is remembered as absent for [`ABSENT_TTL`] only, so it is
//!   looked up again soon after it may have been committed; a known table
//!   asked about an attribute it does not have (a column added since) is
//!   looked up again at once. Renames show after at most [`FOUND_TTL`].
//! - one side connection to the database, opened lazily with the
//!   connection's stored credential, reused, and replaced after an error or
//!   [`SIDE_IDLE`] of disuse. Sessions take turns on it (a lookup is one
//!   short catalog query); every use is bounded by [`CATALOG_TIMEOUT`].
//! - `describe`: Parse + Describe of a query on the side connection, for
//!   `COPY (query) TO STDOUT`, whose output has no RowDescription.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Upstream;
pub(crate) use super::wire::FieldDesc;
use super::wire::RowDescription;

/// How long a found table's description is trusted.
pub const FOUND_TTL: Duration = Duration::from_secs(60);
/// How long an OID the catalog does not show is taken as absent.
pub const ABSENT_TTL: Duration = Duration::from_secs(2);
/// Deadline of one catalog lookup or describe (login included).
pub const CATALOG_TIMEOUT: Duration = Duration::from_secs(10);
/// A side connection unused this long is replaced rather than reused.
pub const SIDE_IDLE: Duration = Duration::from_secs(300);
/// Cached tables at most (beyond it the cache starts over).
const MAX_TABLES: usize = 20_000;

/// Why the catalog could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The side connection could not log in.
    #[error("cannot open the catalog connection: {0}")]
    Login(#[source] super::PgProxyError),
    /// The side connection failed.
    #[error("catalog connection: {0}")]
    Io(#[source] std::io::Error),
    /// The server said something unexpected.
    #[error("catalog connection: {0}")]
    Protocol(String),
    /// The server refused the statement.
    #[error("the server refused ({code}): {message}")]
    Server {
        /// SQLSTATE.
        code: String,
        /// Message.
        message: String,
    },
    /// The lookup took longer than [`CATALOG_TIMEOUT`].
    #[error("the catalog did not answer within {0:?}")]
    Timeout(Duration),
}

/// Reads a RowDescription body into owned fields; `None` when malformed.
pub(crate) fn parse_row_description(body: &[u8]) -> Option<Vec<FieldDesc>> {
    RowDescription::decode(body).ok()?.to_descs().ok()
}

/// A table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableInfo {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Column names by attribute number (dropped columns left out).
    pub columns: HashMap<i16, String>,
}

/// What the cache knows about a (table, attribute).
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    /// A table column.
    Column(Arc<TableInfo>, String),
    /// The catalog does not show this table (recently).
    Absent,
    /// Not cached, expired, or a column the cached table lacks.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    table: Option<Arc<TableInfo>>,
    at: Instant,
}

/// The catalog of one connection's database (see the module docs).
pub struct Catalog {
    upstream: Arc<Upstream>,
    tables: std::sync::Mutex<HashMap<u32, Entry>>,
    side: tokio::sync::Mutex<Option<SideConn>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("connection", &self.upstream.connection)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// A catalog for `upstream`; nothing is opened until the first lookup.
    pub fn new(upstream: Arc<Upstream>) -> Arc<Catalog> {
        Arc::new(Catalog {
            upstream,
            tables: std::sync::Mutex::new(HashMap::new()),
            side: tokio::sync::Mutex::new(None),
        })
    }

    /// What the cache says about attribute `attnum` of table `oid`.
    pub(crate) fn resolve(&self, oid: u32, attnum: i16) -> Resolved {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        match tables.get(&oid) {
            Some(Entry { table: Some(t), at }) if at.elapsed() < FOUND_TTL => {
                match t.columns.get(&attnum) {
                    Some(name) => Resolved::Column(t.clone(), name.clone()),
                    None => Resolved::Unknown,
                }
            }
            Some(Entry { table: None, at }) if at.elapsed() < ABSENT_TTL => Resolved::Absent,
            _ => Resolved::Unknown,
        }
    }

    /// Looks the tables up and caches what the catalog says. Errors are
    /// logged; the caller sees them as tables still [`Resolved::Unknown`].
    pub(crate) async fn fetch(self: Arc<Self>, oids: Vec<u32>) {
        let list: Vec<String> = oids.iter().map(u32::to_string).collect();
        if list.is_empty() {
            return;
        }
        // OIDs are numbers we formatted ourselves: nothing to quote.
        let sql = format!(
            "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_attribute a \
               ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE c.oid IN ({})",
            list.join(",")
        );
        let rows = match self.with_side(|side| Box::pin(side.query(sql))).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(connection = %self.upstream.connection, error = %e,
                    "masking: cannot read the catalog; columns of unknown tables are masked");
                return;
            }
        };
        let mut found: HashMap<u32, TableInfo> = HashMap::new();
        for row in rows {
            let mut cells = row.into_iter();
            let (Some(Some(oid)), Some(Some(schema)), Some(Some(table)), attnum, attname) = (
                cells.next(),
                cells.next(),
                cells.next(),
                cells.next().flatten(),
                cells.next().flatten(),
            ) else {
                continue;
            };
            let Ok(oid) = oid.parse::<u32>() else {
                continue;
            };
            let entry = found.entry(oid).or_insert_with(|| TableInfo {
                schema,
                table,
                columns: HashMap::new(),
            });
            if let (Some(n), Some(name)) = (attnum.and_then(|a| a.parse::<i16>().ok()), attname) {
                entry.columns.insert(n, name);
            }
        }
        let now = Instant::now();
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if tables.len() + oids.len() > MAX_TABLES {
            tables.clear();
        }
        for oid in oids {
            tables.insert(
                oid,
                Entry {
                    table: found.remove(&oid).map(Arc::new),
                    at: now,
                },
            );
        }
    }

    /// The RowDescription `sql` would produce (`None`: it returns no rows),
    /// from Parse + Describe on the side connection (nothing is executed).
    pub(crate) async fn describe(
        self: Arc<Self>,
        sql: String,
    ) -> Result<Option<Vec<FieldDesc>>, CatalogError> {
        self.with_side(|side| Box::pin(side.describe(sql))).await
    }

    /// Runs `op` on the side connection (opening it if needed) under
    /// [`CATALOG_TIMEOUT`]; a failed connection is dropped.
    async fn with_side<T, F>(&self, op: F) -> Result<T, CatalogError>
    where
        F: for<'a> FnOnce(
            &'a mut SideConn,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, CatalogError>> + Send + 'a>,
        >,
    {
        let mut guard = self.side.lock().await;
        let work = async {
            if guard
                .as_ref()
                .is_some_and(|s| s.last_used.elapsed() > SIDE_IDLE)
                && let Some(old) = guard.take()
            {
                old.close().await;
            }
            if guard.is_none() {
                *guard = Some(SideConn::open(&self.upstream).await?);
            }
            let side = guard
                .as_mut()
                .ok_or_else(|| CatalogError::Protocol("no side connection".to_owned()))?;
            let out = op(side).await;
            side.last_used = Instant::now();
            out
        };
        let result = match tokio::time::timeout(CATALOG_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(CatalogError::Timeout(CATALOG_TIMEOUT)),
        };
        // A connection in an unknown state is not reused (a server-side
        // refusal leaves it clean: every request ends with ReadyForQuery).
        if matches!(
            result,
            Err(CatalogError::Io(_) | CatalogError::Protocol(_) | CatalogError::Timeout(_))
        ) {
            *guard = None;
        }
        result
    }

    /// Caches `table` under `oid` (unit tests of the hook, without a server).
    #[cfg(test)]
    pub(crate) fn insert(&self, oid: u32, table: Option<TableInfo>) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                oid,
                Entry {
                    table: table.map(Arc::new),
                    at: Instant::now(),
                },
            );
    }
}

/// The broker's own connection for catalog questions.
struct SideConn {
    conn: super::upstream::UpstreamConn,
    last_used: Instant,
}

impl From<super::PgProxyError> for CatalogError {
    fn from(e: super::PgProxyError) -> Self {
        match e {
            super::PgProxyError::Server { code, message } => CatalogError::Server { code, message },
            super::PgProxyError::UpstreamIo(e) => CatalogError::Io(e),
            other => CatalogError::Protocol(other.to_string()),
        }
    }
}

impl SideConn {
    async fn open(upstream: &Upstream) -> Result<SideConn, CatalogError> {
        let conn = super::upstream::connect_as(upstream, "hoop-broker masking catalog")
            .await
            .map_err(CatalogError::Login)?;
        Ok(SideConn {
            conn,
            last_used: Instant::now(),
        })
    }

    /// Simple query; rows as text.
    async fn query(&mut self, sql: String) -> Result<Vec<Vec<Option<String>>>, CatalogError> {
        Ok(self.conn.simple_query(&sql).await?)
    }

    /// Parse + Describe statement + Sync on the unnamed statement.
    async fn describe(&mut self, sql: String) -> Result<Option<Vec<FieldDesc>>, CatalogError> {
        match self.conn.describe(&sql).await? {
            None => Ok(None),
            Some(body) => parse_row_description(&body)
                .map(Some)
                .ok_or_else(|| CatalogError::Protocol("malformed RowDescription".to_owned())),
        }
    }

    async fn close(self) {
        self.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_descriptions_parse_and_malformed_ones_do_not_panic() {
        let mut body = vec![0u8, 2];
        for (name, oid, att, ty, fmt) in
            [("email", 16400u32, 3i16, 25u32, 0i16), ("n", 0, 0, 23, 1)]
        {
            body.extend_from_slice(name.as_bytes());
            body.push(0);
            body.extend_from_slice(&oid.to_be_bytes());
            body.extend_from_slice(&att.to_be_bytes());
            body.extend_from_slice(&ty.to_be_bytes());
            body.extend_from_slice(&(-1i16).to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&fmt.to_be_bytes());
        }
        let fields = parse_row_description(&body).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(
            fields[0],
            FieldDesc {
                name: "email".into(),
                table_oid: 16400,
                attnum: 3,
                type_oid: 25,
                format: 0
            }
        );
        assert_eq!(fields[1].format, 1);
        for cut in 0..body.len() {
            assert!(parse_row_description(&body[..cut]).is_none() || cut == body.len());
        }
    }
}
