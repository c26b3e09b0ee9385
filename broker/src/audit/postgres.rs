//! The PostgreSQL audit backend: several brokers share one database and
//! write one chain.
//!
//! Every append is one transaction that first takes `LOCK TABLE
//! audit_records IN EXCLUSIVE MODE` (writers queue, readers do not wait),
//! then reads the tip, inserts the batch (one `INSERT ... SELECT FROM
//! UNNEST(...)` round trip) and any checkpoints, and commits. A commit is
//! durable per the server's `synchronous_commit` (on by default: flushed to
//! the server's WAL).
//!
//! Migrations are numbered and recorded in `audit_schema`; they run at start
//! under a session advisory lock, so two brokers starting together do not
//! race. The connection is re-established on the next call after it drops.
//!
//! TLS to the database as the URL's `sslmode`/`sslrootcert` ask
//! (`crate::store::pg_conn`).

use hoop_shared::Secret;
use hoop_shared::audit::{AuditRecord, Checkpoint, PublicKeyInfo, parse_hash};
use tokio_postgres::Client;

use super::export::{self, CHECKPOINTS_PER_CHUNK, CHUNK, Sink, Start};
use super::sqlite::parse_detail;
use super::{AuditError, Query, SealFn, Sealed, Tip};

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x686f_6f70_6175_6474; // "hoopaudt"

/// Migrations, in order; index + 1 is the version after applying it.
const MIGRATIONS: &[&str] = &[
    // 1: records, checkpoints, signer keys.
    "CREATE TABLE audit_records (
        seq        BIGINT PRIMARY KEY,
        time_ms    BIGINT NOT NULL,
        kind       TEXT NOT NULL,
        actor      TEXT,
        connection TEXT,
        session    TEXT,
        detail     TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
     );
     CREATE INDEX audit_records_time ON audit_records (time_ms);
     CREATE TABLE audit_checkpoints (
        number    BIGINT PRIMARY KEY,
        seq       BIGINT NOT NULL,
        hash      TEXT NOT NULL,
        time_ms   BIGINT NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
     );
     CREATE TABLE audit_keys (
        key_id     TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        added_ms   BIGINT NOT NULL
     );",
];

/// The PostgreSQL backend.
pub struct PgAuditBackend {
    target: crate::store::pg_conn::PgTarget,
    client: tokio::sync::Mutex<Option<Client>>,
    /// Owns the connection tasks.
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for PgAuditBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditBackend").finish_non_exhaustive()
    }
}

impl PgAuditBackend {
    /// Connects to `url` (the password from `password` when given, else
    /// from the URL) and runs the migrations.
    pub async fn connect(url: &str, password: Option<Secret>) -> Result<Self, AuditError> {
        let target = crate::store::pg_conn::PgTarget::parse(url, password.as_ref())
            .map_err(|e| AuditError::Postgres(format!("[audit] store: {e}")))?
            .with_application_name("hoop-broker audit");
        let backend = PgAuditBackend {
            target,
            client: tokio::sync::Mutex::new(None),
            tasks: tokio_util::task::TaskTracker::new(),
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// The connected client (connecting first when needed).
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, AuditError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let client = self
                .target
                .connect("audit", &self.tasks)
                .await
                .map_err(|e| match e {
                    crate::store::pg_conn::PgConnectError::Postgres(e) => AuditError::from(e),
                    timeout => AuditError::Postgres(timeout.to_string()),
                })?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    async fn migrate(&self) -> Result<(), AuditError> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        crate::store::pg_conn::migrate(client, MIGRATION_LOCK, "audit_schema", MIGRATIONS)
            .await
            .map_err(|e| match e {
                crate::store::pg_conn::MigrateError::Postgres(e) => AuditError::from(e),
                too_new => AuditError::Corrupt(too_new.to_string()),
            })
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

async fn tip(tx: &tokio_postgres::Transaction<'_>) -> Result<Tip, AuditError> {
    let last = tx
        .query_opt(
            "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| (to_u64(r.get(0)), r.get::<_, String>(1)));
    let cp = tx
        .query_opt(
            "SELECT number, seq, hash FROM audit_checkpoints ORDER BY number DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| (to_u64(r.get(0)), to_u64(r.get(1)), r.get::<_, String>(2)));
    let (checkpoint_number, checkpoint_seq) = cp.as_ref().map_or((0, 0), |(n, s, _)| (*n, *s));
    let (seq, hash) = match (last, cp) {
        (Some((s, h)), _) => (s, h),
        (None, Some((_, s, h))) => (s, h),
        (None, None) => return Ok(Tip::GENESIS),
    };
    let hash = parse_hash(&hash).ok_or_else(|| AuditError::Corrupt(format!("hash of #{seq}")))?;
    Ok(Tip {
        seq,
        hash,
        checkpoint_number,
        checkpoint_seq,
    })
}

const RECORD_COLUMNS: &str =
    "seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash";

fn record_from_row(r: &tokio_postgres::Row) -> AuditRecord {
    AuditRecord {
        seq: to_u64(r.get(0)),
        time: r.get(1),
        kind: r.get(2),
        actor: r.get(3),
        connection: r.get(4),
        session: r.get(5),
        detail: parse_detail(r.get(6)),
        prev_hash: r.get(7),
        hash: r.get(8),
    }
}

fn checkpoint_from_row(r: &tokio_postgres::Row) -> Checkpoint {
    Checkpoint {
        number: to_u64(r.get(0)),
        seq: to_u64(r.get(1)),
        hash: r.get(2),
        time: r.get(3),
        key_id: r.get(4),
        signature: r.get(5),
    }
}

impl PgAuditBackend {
    /// In one transaction under `LOCK TABLE audit_records IN EXCLUSIVE
    /// MODE` (every broker's appends queue there): reads the tip, calls
    /// `seal` with it, stores what it returns, commits.
    pub async fn append(&self, seal: SealFn) -> Result<Sealed, AuditError> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE audit_records IN EXCLUSIVE MODE")
            .await?;
        let sealed = seal(&tip(&tx).await?);
        if !sealed.records.is_empty() {
            let rs = &sealed.records;
            let seqs: Vec<i64> = rs.iter().map(|r| to_i64(r.seq)).collect();
            let times: Vec<i64> = rs.iter().map(|r| r.time).collect();
            let kinds: Vec<&str> = rs.iter().map(|r| r.kind.as_str()).collect();
            let actors: Vec<Option<&str>> = rs.iter().map(|r| r.actor.as_deref()).collect();
            let conns: Vec<Option<&str>> = rs.iter().map(|r| r.connection.as_deref()).collect();
            let sessions: Vec<Option<&str>> = rs.iter().map(|r| r.session.as_deref()).collect();
            let details: Vec<&str> = rs.iter().map(|r| r.detail.as_str()).collect();
            let prevs: Vec<&str> = rs.iter().map(|r| r.prev_hash.as_str()).collect();
            let hashes: Vec<&str> = rs.iter().map(|r| r.hash.as_str()).collect();
            tx.execute(
                "INSERT INTO audit_records (seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                      $6::text[], $7::text[], $8::text[], $9::text[])",
                &[&seqs, &times, &kinds, &actors, &conns, &sessions, &details, &prevs, &hashes],
            )
            .await?;
        }
        for k in &sealed.checkpoints {
            tx.execute(
                "INSERT INTO audit_checkpoints (number, seq, hash, time_ms, key_id, signature)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &to_i64(k.number),
                    &to_i64(k.seq),
                    &k.hash,
                    &k.time,
                    &k.key_id,
                    &k.signature,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(sealed)
    }

    /// Records matching `q`.
    pub async fn query(&self, q: Query) -> Result<Vec<AuditRecord>, AuditError> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        let like = q.kind.as_ref().map(|k| {
            format!(
                "{}.%",
                k.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let rows = client
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM (
                       SELECT * FROM audit_records
                       WHERE ($1::bigint IS NULL OR time_ms >= $1)
                         AND ($2::text IS NULL OR actor = $2)
                         AND ($3::text IS NULL OR connection = $3)
                         AND ($4::text IS NULL OR kind = $4 OR kind LIKE $5)
                         AND ($7::text IS NULL OR session = $7
                              OR (kind = 'statement.outcome'
                                  -- CASE: only outcome details are parsed as JSON.
                                  AND CASE WHEN kind = 'statement.outcome'
                                           THEN (detail::jsonb ->> 'statement')::bigint END
                                      IN (SELECT seq FROM audit_records
                                           WHERE session = $7
                                             AND ($1::bigint IS NULL OR time_ms >= $1))))
                       ORDER BY seq DESC LIMIT $6) newest
                     ORDER BY seq ASC"
                ),
                &[
                    &q.since_ms,
                    &q.actor,
                    &q.connection,
                    &q.kind,
                    &like,
                    &i64::from(q.limit),
                    &q.session,
                ],
            )
            .await?;
        Ok(rows.iter().map(record_from_row).collect())
    }

    /// Sends the export to `sink` in chunks ([`super::export`]), read in one
    /// `REPEATABLE READ READ ONLY` transaction on a connection of its own,
    /// so appends go on meanwhile. Stops early, without an error, when
    /// nobody reads any more.
    pub async fn export_to(&self, exported_at: i64, sink: &Sink) -> Result<(), AuditError> {
        let mut client = self
            .target
            .connect("audit export", &self.tasks)
            .await
            .map_err(|e| match e {
                crate::store::pg_conn::PgConnectError::Postgres(e) => AuditError::from(e),
                timeout => AuditError::Postgres(timeout.to_string()),
            })?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let keys = tx
            .query(
                "SELECT key_id, public_key FROM audit_keys ORDER BY added_ms, key_id",
                &[],
            )
            .await?
            .iter()
            .map(|r| PublicKeyInfo {
                key_id: r.get(0),
                public_key: r.get(1),
            })
            .collect();
        let first_seq: Option<i64> = tx
            .query_one("SELECT MIN(seq) FROM audit_records", &[])
            .await?
            .get(0);
        let oldest_checkpoint = tx
            .query_opt(
                "SELECT number, seq, hash, time_ms, key_id, signature
                 FROM audit_checkpoints ORDER BY number LIMIT 1",
                &[],
            )
            .await?
            .as_ref()
            .map(checkpoint_from_row);
        let start = Start {
            keys,
            first_seq: first_seq.map(to_u64),
            oldest_checkpoint,
        };
        let (lines, mut cursor) = start.lines(exported_at);
        if sink.send(Ok(lines)).await.is_err() {
            return Ok(());
        }
        let records = tx
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .await?;
        let checkpoints = tx
            .prepare(
                "SELECT number, seq, hash, time_ms, key_id, signature FROM audit_checkpoints
                 WHERE number > $1 AND seq <= $2 ORDER BY number LIMIT $3",
            )
            .await?;
        loop {
            let chunk: Vec<AuditRecord> = tx
                .query(&records, &[&to_i64(cursor.seq), &(CHUNK as i64)])
                .await?
                .iter()
                .map(record_from_row)
                .collect();
            let bound = to_i64(export::checkpoint_bound(&chunk));
            let cps = tx
                .query(
                    &checkpoints,
                    &[
                        &to_i64(cursor.number),
                        &bound,
                        &(CHECKPOINTS_PER_CHUNK as i64),
                    ],
                )
                .await?
                .iter()
                .map(checkpoint_from_row)
                .collect();
            let (lines, next) = export::lines(chunk, cps, cursor);
            if !lines.is_empty() && sink.send(Ok(lines)).await.is_err() {
                return Ok(());
            }
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::AuditLog::prune`].
    pub async fn prune(&self, before_ms: i64) -> Result<u64, AuditError> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE audit_records IN EXCLUSIVE MODE")
            .await?;
        let anchor = tx
            .query_opt(
                "SELECT number, seq FROM audit_checkpoints
                 WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_records WHERE time_ms >= $1),
                                      9223372036854775807)
                 ORDER BY number DESC LIMIT 1",
                &[&before_ms],
            )
            .await?;
        let Some(anchor) = anchor else {
            return Ok(0);
        };
        let (number, seq): (i64, i64) = (anchor.get(0), anchor.get(1));
        let n = tx
            .execute("DELETE FROM audit_records WHERE seq <= $1", &[&seq])
            .await?;
        tx.execute(
            "DELETE FROM audit_checkpoints WHERE number < $1",
            &[&number],
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

impl PgAuditBackend {
    /// Records the public key of a checkpoint signer (idempotent).
    pub async fn register_key(&self, key: PublicKeyInfo) -> Result<(), AuditError> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        client
            .execute(
                "INSERT INTO audit_keys (key_id, public_key, added_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (key_id) DO NOTHING",
                &[&key.key_id, &key.public_key, &super::now_ms()],
            )
            .await?;
        Ok(())
    }

    /// The public keys of every checkpoint signer.
    pub async fn keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .ok_or_else(|| AuditError::Postgres("not connected".into()))?;
        Ok(client
            .query(
                "SELECT key_id, public_key FROM audit_keys ORDER BY added_ms, key_id",
                &[],
            )
            .await?
            .iter()
            .map(|r| PublicKeyInfo {
                key_id: r.get(0),
                public_key: r.get(1),
            })
            .collect())
    }
}
