//! The tamper-evident audit log: every security-relevant event is one
//! append-only record carrying the SHA-256 of the previous record, and the
//! broker signs a checkpoint (Ed25519) every N records and at shutdown.
//! Format, canonical encoding and verification live in
//! [`hoop_shared::audit`] so `hoopctl audit verify` checks an export offline
//! with the same code; the reference is `docs/audit.md`.
//!
//! - [`AuditBackend`]: where records live. [`sqlite`] (tables in the
//!   broker's SQLite file) or [`postgres`] (several brokers, one chain);
//!   an enum over the two, each operation written once per backend (see
//!   [`crate::store`] for why not a trait). Every append runs in one
//!   transaction under the log's write lock and reads the tip inside it,
//!   so the chain stays linear whoever writes.
//! - [`chain`]: turns a batch of events into chained records and the
//!   checkpoints due (pure, shared by both backends).
//! - [`checkpoint`]: the signing key (created on first start, 0600).
//! - [`writer`]: the group-commit writer (a thread for SQLite, a task for
//!   PostgreSQL). Callers queue an event and await the acknowledgement; the
//!   writer appends everything queued in one transaction. An event is
//!   durable (committed) when [`AuditLog::append`] returns.
//! - [`export`]: the export, read in one snapshot and sent in chunks
//!   (memory independent of the log's length).
//! - [`verify`]: verifies the stored log (the export streamed through the
//!   shared stream verifier).
//!
//! [`AuditLog`] also implements [`crate::record::Recorder`]: a statement's
//! record is committed before the statement is forwarded; its outcome is
//! appended best effort, riding in a later transaction (see [`writer`]).

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod journal;
pub mod postgres;
pub mod sqlite;
pub mod verify;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoop_shared::audit::{AuditRecord, Export, ExportLine, PublicKeyInfo};

use crate::config::AuditConfig;
use crate::record::{Durable, RecordError, Recorder, StatementDecision, StatementId};

pub use chain::{Sealed, SealedRecord, Sealer, Tip};
pub use checkpoint::CheckpointSigner;

/// Default checkpoint interval.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// Turns the tip read inside the append transaction into what to store.
pub type SealFn = Box<dyn FnOnce(&Tip) -> Sealed + Send + 'static>;

/// An audit log failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// SQLite said no.
    #[error("audit store (sqlite): {0}")]
    Sqlite(String),
    /// PostgreSQL said no (or could not be reached).
    #[error("audit store (postgres): {0}")]
    Postgres(String),
    /// The signing key cannot be loaded or made.
    #[error("audit signing key: {0}")]
    Key(String),
    /// The stored data is not what this broker writes.
    #[error("audit store holds an invalid row: {0}")]
    Corrupt(String),
    /// The SQLite backend's append journal failed.
    #[error("audit journal: {0}")]
    Journal(String),
    /// The log was closed (shutdown).
    #[error("the audit log is closed")]
    Closed,
    /// The writer's queue is full (best-effort records only).
    #[error("the audit writer is overloaded")]
    Overloaded,
    /// No commit within the deadline (the store hangs or is unreachable).
    #[error("no audit commit within {0:?}")]
    Timeout(std::time::Duration),
}

impl From<rusqlite::Error> for AuditError {
    fn from(e: rusqlite::Error) -> Self {
        AuditError::Sqlite(e.to_string())
    }
}

impl From<tokio_postgres::Error> for AuditError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The Display of a server error is its message; no credentials in it.
        let detail = e.as_db_error().map_or_else(
            || e.to_string(),
            |d| format!("{}: {}", d.code().code(), d.message()),
        );
        AuditError::Postgres(detail)
    }
}

/// One event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Unix milliseconds.
    pub time: i64,
    /// `session.open`, `statement.allowed`...
    pub kind: String,
    /// The hoop identity, when known.
    pub actor: Option<String>,
    /// Connection, when relevant.
    pub connection: Option<String>,
    /// Session, when relevant.
    pub session: Option<String>,
    /// Details (a JSON object; never secrets).
    pub detail: serde_json::Value,
}

impl NewRecord {
    /// An event of `kind` now, with an empty detail object.
    pub fn now(kind: &str) -> NewRecord {
        NewRecord {
            time: now_ms(),
            kind: kind.to_owned(),
            actor: None,
            connection: None,
            session: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    ms(SystemTime::now())
}

/// Unix milliseconds of `t`.
pub fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A filter for [`AuditLog::query`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Records at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Records whose actor is this.
    pub actor: Option<String>,
    /// Records on this connection.
    pub connection: Option<String>,
    /// Records of this kind, or of a kind starting with `KIND.`
    /// (`statement` matches `statement.allowed`).
    pub kind: Option<String>,
    /// Records of this session, and the `statement.outcome` records of its
    /// statements (those carry the statement's seq, not the session): a
    /// Postgres session's recording is this query.
    pub session: Option<String>,
    /// At most this many (the newest), returned oldest first.
    pub limit: u32,
}

/// Where records live: one of the two backends. Both keep the chain
/// linear: an append reads the tip and writes the batch in one transaction
/// under a lock every writer takes (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
/// `LOCK TABLE ... EXCLUSIVE MODE`), so concurrent writers (tasks or
/// brokers) queue up.
///
/// An enum rather than a trait, as for the store ([`crate::store`] says
/// why): each operation is a plain `async fn` of each backend, and the
/// [`AuditLog`] method that carries its contract `match`es once. The two
/// differ in how they append, and the writer ([`writer`]) matches on that:
/// SQLite appends synchronously on the writer's own thread
/// ([`sqlite::SqliteAuditBackend::append_blocking`]), PostgreSQL from a
/// task ([`postgres::PgAuditBackend::append`]).
#[derive(Clone)]
pub enum AuditBackend {
    /// Tables in the broker's SQLite file.
    Sqlite(sqlite::SqliteAuditBackend),
    /// A PostgreSQL database several brokers share.
    Postgres(Arc<postgres::PgAuditBackend>),
}

impl AuditBackend {
    /// `sqlite` or `postgres` (logs).
    pub fn name(&self) -> &'static str {
        match self {
            AuditBackend::Sqlite(_) => "sqlite",
            AuditBackend::Postgres(_) => "postgres",
        }
    }
}

impl From<sqlite::SqliteAuditBackend> for AuditBackend {
    fn from(b: sqlite::SqliteAuditBackend) -> Self {
        AuditBackend::Sqlite(b)
    }
}

impl From<postgres::PgAuditBackend> for AuditBackend {
    fn from(b: postgres::PgAuditBackend) -> Self {
        AuditBackend::Postgres(Arc::new(b))
    }
}

/// `match`es the log's backend and evaluates `$call` with `$b` bound to it.
macro_rules! on_backend {
    ($backend:expr, $b:ident => $call:expr) => {
        match &$backend {
            AuditBackend::Sqlite($b) => $call,
            AuditBackend::Postgres($b) => $call,
        }
    };
}

/// The audit log: a backend, the signer, and the group-commit writer.
/// Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    backend: AuditBackend,
    public: PublicKeyInfo,
    writer: writer::WriterHandle,
    retention: Option<Duration>,
    /// Owns the writer task.
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("backend", &self.backend.name())
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the configured backend (running its migrations), loads or
    /// creates the signing key, registers its public half, and starts the
    /// writer task (owned by the log; [`AuditLog::close`] stops it).
    /// Without `[audit] store`, the log goes where `[store] url` points when
    /// that is PostgreSQL (same database, same credential).
    pub async fn open(
        config: &AuditConfig,
        store: &crate::config::StoreConfig,
        data_dir: &Path,
    ) -> Result<AuditLog, AuditError> {
        let signer =
            CheckpointSigner::load_or_create(data_dir, config.signing_key_file.as_deref())?;
        let (url, credential) = match (&config.store, store.postgres_url()) {
            (Some(url), _) => (
                Some(url.get_ref().as_str()),
                match (&config.password_env, &config.password_file) {
                    (Some(v), _) => Some(crate::secrets::CredentialRef::Env(v.clone())),
                    (None, Some(p)) => Some(crate::secrets::CredentialRef::File(p.clone())),
                    (None, None) => None,
                },
            ),
            (None, Some(url)) => (Some(url), store.credential()),
            (None, None) => (None, None),
        };
        let backend: AuditBackend = match url {
            Some(url) if url != "sqlite" => {
                let password = credential
                    .map(|r| crate::secrets::resolve(&r))
                    .transpose()
                    .map_err(|e| AuditError::Postgres(format!("password: {e}")))?;
                postgres::PgAuditBackend::connect(url, password)
                    .await?
                    .into()
            }
            _ => sqlite::SqliteAuditBackend::open(
                &data_dir.join(sqlite::DB_FILE),
                config.synchronous.unwrap_or_default(),
            )?
            .into(),
        };
        Self::start(
            backend,
            signer,
            config.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY),
            config.retention,
        )
        .await
    }

    /// Starts a log on `backend` (tests use this with their own backends).
    pub async fn start(
        backend: AuditBackend,
        signer: CheckpointSigner,
        checkpoint_every: u64,
        retention: Option<Duration>,
    ) -> Result<AuditLog, AuditError> {
        let public = signer.public().clone();
        on_backend!(backend, b => b.register_key(public.clone()).await)?;
        let sealer = Arc::new(Sealer::new(signer, checkpoint_every));
        let tasks = tokio_util::task::TaskTracker::new();
        let writer = writer::spawn(backend.clone(), sealer, &tasks)?;
        tasks.close();
        tracing::info!(backend = backend.name(), key_id = %public.key_id, "audit log open");
        Ok(AuditLog {
            backend,
            public,
            writer,
            retention,
            tasks,
        })
    }

    /// Appends an event; returns its seq once it is committed.
    pub async fn append(&self, record: NewRecord) -> Result<u64, AuditError> {
        self.writer.append(record).await
    }

    /// Queues an event without waiting (best effort: dropped, with a
    /// warning, when the writer's queue is full or the log is closed). It
    /// is committed with the next transaction, at most
    /// [`writer::LAZY_DELAY`] later.
    pub fn append_nowait(&self, record: NewRecord) {
        if let Err(e) = self.writer.append_lazy(record) {
            tracing::warn!("audit record dropped: {e}");
        }
    }

    /// Records matching `query`.
    pub async fn query(&self, query: Query) -> Result<Vec<AuditRecord>, AuditError> {
        on_backend!(self.backend, b => b.query(query).await)
    }

    /// The whole log as export lines, in chunks of [`export::CHUNK`]
    /// records read in one snapshot by a task of the log's; at most
    /// [`export::QUEUED`] chunks wait for the reader, so memory does not
    /// grow with the log. The stream ends after the last chunk, or with
    /// the error that stopped it; dropping the receiver stops the export.
    pub fn export_stream(&self) -> tokio::sync::mpsc::Receiver<Result<export::Chunk, AuditError>> {
        let (sink, chunks) = tokio::sync::mpsc::channel(export::QUEUED);
        let exported_at = now_ms();
        match &self.backend {
            AuditBackend::Sqlite(b) => {
                let b = b.clone();
                self.tasks.spawn_blocking(move || {
                    if let Err(e) = b.export_blocking(exported_at, &sink) {
                        let _ = sink.blocking_send(Err(e));
                    }
                });
            }
            AuditBackend::Postgres(b) => {
                let b = b.clone();
                self.tasks.spawn(async move {
                    if let Err(e) = b.export_to(exported_at, &sink).await {
                        let _ = sink.send(Err(e)).await;
                    }
                });
            }
        }
        chunks
    }

    /// The whole log in memory (tests, small logs): [`AuditLog::export_stream`]
    /// collected.
    pub async fn export(&self) -> Result<Export, AuditError> {
        let mut chunks = self.export_stream();
        let mut out = Export::default();
        while let Some(chunk) = chunks.recv().await {
            for line in chunk? {
                match line {
                    ExportLine::Header { keys, .. } => out.keys = keys,
                    ExportLine::Anchor(a) => out.anchor = Some(a),
                    ExportLine::Record(r) => out.records.push(r),
                    ExportLine::Checkpoint(c) => out.checkpoints.push(c),
                }
            }
        }
        Ok(out)
    }

    /// Every checkpoint signer's public key.
    pub async fn keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        on_backend!(self.backend, b => b.keys().await)
    }

    /// This broker's checkpoint key.
    pub fn public_key(&self) -> &PublicKeyInfo {
        &self.public
    }

    /// Prunes per `[audit] retention` (no-op without one).
    pub async fn prune(&self) -> Result<u64, AuditError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        on_backend!(self.backend, b => b.prune(cutoff).await)
    }

    /// Writes what is queued, signs a checkpoint over the tip, and stops the
    /// writer. Later appends fail with [`AuditError::Closed`].
    pub async fn close(&self) {
        self.writer.close().await;
        self.tasks.wait().await;
    }
}

fn decision_kind(d: &StatementDecision) -> &'static str {
    match d {
        StatementDecision::Allowed => "statement.allowed",
        StatementDecision::Blocked => "statement.blocked",
        StatementDecision::HeldForReview { .. } => "statement.held",
        StatementDecision::ReviewApproved { .. } => "statement.review_approved",
    }
}

impl Recorder for AuditLog {
    fn statement(&self, record: crate::record::StatementRecord) -> Durable {
        let mut detail = serde_json::json!({
            "sql": record.sql,
            "protocol": record.protocol.to_string(),
            "rule": record.rule,
        });
        if let (
            StatementDecision::HeldForReview { request_id }
            | StatementDecision::ReviewApproved { request_id },
            Some(map),
        ) = (&record.decision, detail.as_object_mut())
        {
            map.insert("request_id".into(), request_id.clone().into());
        }
        let new = NewRecord {
            time: ms(record.at),
            kind: decision_kind(&record.decision).to_owned(),
            actor: Some(record.user),
            connection: Some(record.connection),
            session: Some(record.session_id),
            detail,
        };
        let writer = self.writer.clone();
        Box::pin(async move {
            writer
                .append(new)
                .await
                .map(|seq| seq as StatementId)
                .map_err(|e| RecordError(e.to_string()))
        })
    }

    fn outcome(&self, id: StatementId, outcome: crate::record::StatementOutcome) {
        let mut r = NewRecord::now("statement.outcome");
        r.actor = Some(outcome.user);
        r.connection = Some(outcome.connection);
        r.session = Some(outcome.session_id);
        r.detail = serde_json::json!({
            "statement": id,
            "duration_ms": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            "rows": outcome.rows,
            "masked_columns": outcome.masked_columns,
            "error": outcome.error,
        });
        // Only on connections with record_results: the values the client
        // received (masked), never more than the connection's cap.
        if let Some(results) = outcome.results
            && let Some(detail) = r.detail.as_object_mut()
        {
            detail.insert(
                "results".to_owned(),
                serde_json::to_value(results).unwrap_or_default(),
            );
        }
        self.append_nowait(r);
    }
}

#[cfg(test)]
mod tests;
