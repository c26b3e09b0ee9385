//! The SQLite audit backend: its own tables in the broker's SQLite file
//! (WAL), with its own schema version table (`audit_schema`) so the store's
//! migrations and these never touch each other.
//!
//! One connection behind a mutex. Appends run on the audit writer's own
//! thread ([`SqliteAuditBackend::append_blocking`]); queries, exports and pruning on
//! tokio's blocking pool. Appends are `BEGIN IMMEDIATE` transactions: the
//! write lock is taken before the tip is read, so nothing else (the store's
//! own connection included) writes in between.
//!
//! The tip is kept in memory between appends: the file is this broker's
//! alone, and this connection its only audit writer. It is still checked,
//! not assumed: inside the append transaction `PRAGMA data_version` says
//! whether any other connection committed since this one's last append
//! (another process editing the file, a second backend on it, the store's
//! connection); if one did, or anything else ran on this connection, or an
//! append failed, the tip is read from the tables again. So the chain stays
//! linear whoever writes, at the cost of one pragma per append.
//!
//! Checkpoints of the WAL into the database file do not run inside a commit
//! (`wal_autocheckpoint = 0` on this connection): the writer thread runs one
//! ([`SqliteAuditBackend::after_batch`]) every [`CHECKPOINT_BATCHES`]
//! appends, after it has acknowledged the batch, so their fsyncs never sit
//! inside a statement's own commit. Appends wait meanwhile (a statement
//! arriving then queues for a fraction of a millisecond), which is what
//! lets the checkpoint complete and the WAL restart from its beginning; a
//! checkpoint on a second connection, concurrent with appends, would never
//! catch up under steady load and the WAL would grow without bound. Its
//! cost is two fsyncs plus the few distinct pages written since the last
//! one (appends touch the same rightmost pages), so a long interval costs
//! WAL size (about 8 KiB per append; `journal_size_limit` trims it back
//! after a burst), not checkpoint time.
//!
//! Durability: with `synchronous = NORMAL` (default) appends go to the
//! append journal ([`super::journal`]) and reach the tables in batches; they
//! survive the broker being killed (kill -9) but not necessarily a power
//! loss. With the journal the chain's tip lives there, not in [`Writer`], and
//! the two files are locked to this backend (one broker per data
//! directory). `[audit] synchronous = "full"` has no journal: each append is
//! a commit as described above, with an fsync, and survives that too.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hoop_shared::audit::{AuditRecord, Checkpoint, PublicKeyInfo, parse_hash};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::export::{self, CHECKPOINTS_PER_CHUNK, CHUNK, Sink, Start};
use super::journal::Journal;
use super::{AuditError, Query, SealFn, Sealed, Tip};
use crate::config::AuditSynchronous;

/// The broker's SQLite file (shared with [`crate::store`]).
pub const DB_FILE: &str = "hoop.sqlite3";

/// Migrations, in order; index + 1 is the version after applying it.
const MIGRATIONS: &[&str] = &[
    // 1: records, checkpoints, signer keys.
    "CREATE TABLE audit_records (
        seq        INTEGER PRIMARY KEY,
        time_ms    INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        actor      TEXT,
        connection TEXT,
        session    TEXT,
        detail     TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
     );
     CREATE INDEX audit_records_time ON audit_records(time_ms);
     CREATE TABLE audit_checkpoints (
        number    INTEGER PRIMARY KEY,
        seq       INTEGER NOT NULL,
        hash      TEXT NOT NULL,
        time_ms   INTEGER NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
     );
     CREATE TABLE audit_keys (
        key_id     TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        added_ms   INTEGER NOT NULL
     );",
];

/// Appends between two WAL checkpoints (without the journal).
pub const CHECKPOINT_BATCHES: u32 = 1024;

/// Journal ingests between two WAL checkpoints.
pub const CHECKPOINT_INGESTS: u32 = 16;

/// The WAL is truncated to this after a checkpoint restarted it.
const WAL_SIZE_LIMIT: i64 = 16 << 20;

/// The SQLite backend.
#[derive(Clone)]
pub struct SqliteAuditBackend {
    conn: Arc<Mutex<Writer>>,
    /// Commits do not wait for the disk (`synchronous = NORMAL`): an append
    /// may then run on the caller's thread (see [`SqliteAuditBackend::try_append_now`]).
    fast_commit: bool,
    /// Appends (with the journal: ingests) since the last checkpoint (read
    /// without the connection's lock, which a checkpoint holds).
    appends: Arc<AtomicU32>,
    /// With `synchronous = NORMAL` on a file: where appends go first
    /// ([`super::journal`]).
    journal: Option<Arc<Journal>>,
    /// The file (none in memory): exports read it on a connection of their own.
    path: Option<std::path::PathBuf>,
}

/// The connection and what the appends remember.
struct Writer {
    conn: Connection,
    /// The tip after this connection's last append, with the
    /// `data_version` seen in that append's transaction.
    tip: Option<(Tip, i64)>,
}

impl SqliteAuditBackend {
    /// Opens `path` (creating it), sets WAL and `synchronous`, migrates.
    /// With `synchronous = NORMAL`, also opens the append journal beside it
    /// (locked: one broker per data directory) and moves into the tables
    /// whatever it holds from the previous run.
    pub fn open(path: &Path, sync: AuditSynchronous) -> Result<Self, AuditError> {
        let mut this = Self::init(Connection::open(path)?, sync)?;
        this.path = Some(path.to_owned());
        if sync == AuditSynchronous::Normal {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let journal = Arc::new(Journal::open(dir)?);
            this.recover(&journal)?;
            this.journal = Some(journal);
        }
        Ok(this)
    }

    /// Moves what the journal files hold into the tables, empties them, and
    /// starts the journal's chain at the tables' tip.
    fn recover(&self, journal: &Journal) -> Result<(), AuditError> {
        let mut w = self.lock();
        let mut found = Sealed::default();
        for i in 0..2 {
            let mut e = journal.read(i)?;
            found.records.append(&mut e.records);
            found.checkpoints.append(&mut e.checkpoints);
        }
        if !found.records.is_empty() || !found.checkpoints.is_empty() {
            found.records.sort_by_key(|r| r.seq);
            found.checkpoints.sort_by_key(|c| c.number);
            let n = insert_journaled(&w.conn, &found, journal)?;
            tracing::info!(
                records = n,
                "audit records of the previous run moved from the journal into the log"
            );
        }
        journal.clear(0)?;
        journal.clear(1)?;
        w.tip = None;
        journal.start(tip(&w.conn)?);
        Ok(())
    }

    /// Moves up to `files` journal files into the tables (the connection is
    /// held by the caller, which serializes ingests).
    fn ingest(&self, w: &mut Writer, journal: &Journal, files: usize) -> Result<(), AuditError> {
        for _ in 0..files {
            let Some(i) = journal.take() else {
                break;
            };
            let done = journal.read(i).and_then(|e| {
                if !e.records.is_empty() || !e.checkpoints.is_empty() {
                    insert_journaled(&w.conn, &e, journal)?;
                    self.appends.fetch_add(1, Ordering::Relaxed);
                }
                journal.clear(i)
            });
            if let Err(e) = done {
                journal.failed();
                return Err(e);
            }
        }
        Ok(())
    }

    /// An in-memory log (unit tests).
    pub fn in_memory() -> Result<Self, AuditError> {
        Self::init(Connection::open_in_memory()?, AuditSynchronous::Normal)
    }

    fn init(mut conn: Connection, sync: AuditSynchronous) -> Result<Self, AuditError> {
        conn.busy_timeout(crate::store::sqlite_wal::BUSY_WAIT)?;
        crate::store::sqlite_wal::enable(&conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                AuditSynchronous::Normal => "NORMAL",
                AuditSynchronous::Full => "FULL",
            },
        )?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER NOT NULL)")?;
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM audit_schema",
            [],
            |r| r.get(0),
        )?;
        let applied = usize::try_from(version).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(AuditError::Corrupt(format!(
                "audit schema version {version} is newer than this broker knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO audit_schema (version) VALUES (?1)",
                params![(i + 1) as i64],
            )?;
        }
        tx.commit()?;
        Ok(SqliteAuditBackend {
            conn: Arc::new(Mutex::new(Writer { conn, tip: None })),
            fast_commit: sync == AuditSynchronous::Normal,
            appends: Arc::new(AtomicU32::new(0)),
            journal: None,
            path: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn with<T, F>(&self, f: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AuditError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = this.lock();
            // Reads see every record appended before they began.
            if let Some(j) = &this.journal
                && let Err(e) = this.ingest(&mut guard, j, 2)
            {
                tracing::error!("audit journal not moved into the log before a read: {e}");
            }
            // Whatever `f` does (pruning, say), the next append reads the tip.
            guard.tip = None;
            f(&mut guard.conn)
        })
        .await
        .map_err(|e| AuditError::Sqlite(format!("task failed: {e}")))?
    }
}

fn tip(c: &Connection) -> Result<Tip, AuditError> {
    let last: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let cp: Option<(i64, i64, String)> = c
        .prepare_cached(
            "SELECT number, seq, hash FROM audit_checkpoints ORDER BY number DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (checkpoint_number, checkpoint_seq) = cp
        .as_ref()
        .map_or((0, 0), |(n, s, _)| (*n as u64, *s as u64));
    // Every record pruned: the chain continues from the anchor.
    let (seq, hash) = match (last, cp) {
        (Some((s, h)), _) => (s as u64, h),
        (None, Some((_, s, h))) => (s as u64, h),
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

fn keys(c: &Connection) -> Result<Vec<PublicKeyInfo>, AuditError> {
    let mut stmt =
        c.prepare("SELECT key_id, public_key FROM audit_keys ORDER BY added_ms, key_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(PublicKeyInfo {
            key_id: r.get(0)?,
            public_key: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecord, String)> {
    let detail: String = r.get(6)?;
    Ok((
        AuditRecord {
            seq: r.get::<_, i64>(0)? as u64,
            time: r.get(1)?,
            kind: r.get(2)?,
            actor: r.get(3)?,
            connection: r.get(4)?,
            session: r.get(5)?,
            detail: serde_json::Value::Null,
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
        },
        detail,
    ))
}

/// Parses the stored detail text. Text that is not JSON is kept as a JSON
/// string, so the verifier reports the record as modified instead of the
/// export failing as a whole.
pub(super) fn parse_detail(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        number: r.get::<_, i64>(0)? as u64,
        seq: r.get::<_, i64>(1)? as u64,
        hash: r.get(2)?,
        time: r.get(3)?,
        key_id: r.get(4)?,
        signature: r.get(5)?,
    })
}

/// The append path and housekeeping the writer thread calls
/// ([`super::writer`]): appends are local work, done on the caller's thread.
impl SqliteAuditBackend {
    /// In one transaction under the write lock (or in the journal): calls
    /// `seal` with the tip, stores what it returns, commits.
    pub fn append_blocking(&self, seal: SealFn) -> Result<Sealed, AuditError> {
        if let Some(j) = &self.journal {
            return j.append(seal);
        }
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.lock().append(seal)
    }

    /// An append on the caller's own thread, only when it can start at once
    /// and finishes quickly (the store is not in use, and a commit does not
    /// wait for the disk); `None` otherwise, and then `ready` was not
    /// called. Once the store is held, `ready` gives what to seal, or
    /// `None` to give up (the store is let go untouched).
    pub fn try_append_now(
        &self,
        ready: &mut dyn FnMut() -> Option<SealFn>,
    ) -> Option<Result<Sealed, AuditError>> {
        if let Some(j) = &self.journal {
            return j.try_append(ready);
        }
        if !self.fast_commit {
            return None;
        }
        let mut w = match self.conn.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let seal = ready()?;
        self.appends.fetch_add(1, Ordering::Relaxed);
        Some(w.append(seal))
    }

    /// Whether [`SqliteAuditBackend::after_batch`] has work to do.
    pub fn maintenance_due(&self) -> bool {
        match &self.journal {
            Some(j) => j.due() || self.appends.load(Ordering::Relaxed) >= CHECKPOINT_INGESTS,
            None => self.appends.load(Ordering::Relaxed) >= CHECKPOINT_BATCHES,
        }
    }

    /// How long until [`SqliteAuditBackend::after_batch`] will have work
    /// even if nothing is appended meanwhile (`None`: not until then). The
    /// writer wakes up for it.
    pub fn maintenance_in(&self) -> Option<std::time::Duration> {
        self.journal.as_ref().and_then(|j| j.due_in())
    }

    /// Housekeeping the writer runs after it acknowledged a batch, so that
    /// no caller waits for it: moving the journal into the tables, and a WAL
    /// checkpoint now and then.
    pub fn after_batch(&self) {
        if let Some(j) = &self.journal
            && j.due()
        {
            let mut w = self.lock();
            if let Err(e) = self.ingest(&mut w, j, 1) {
                tracing::error!("audit journal not moved into the log (retrying): {e}");
            }
        }
        let every = if self.journal.is_some() {
            CHECKPOINT_INGESTS
        } else {
            CHECKPOINT_BATCHES
        };
        if self.appends.load(Ordering::Relaxed) < every {
            return;
        }
        let w = self.lock();
        self.appends.store(0, Ordering::Relaxed);
        // PASSIVE: never waits for readers; what it cannot copy now, the
        // next one will.
        let done = w
            .conn
            .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)));
        if let Err(e) = done {
            tracing::warn!("audit WAL checkpoint failed: {}", AuditError::from(e));
        }
    }

    /// Makes everything appended so far visible to reads (the writer calls
    /// it when it stops).
    pub fn flush(&self) {
        if let Some(j) = &self.journal {
            let mut w = self.lock();
            if let Err(e) = self.ingest(&mut w, j, 2) {
                tracing::error!(
                    "audit journal not moved into the log at shutdown (it will be at the next start): {e}"
                );
            }
        }
    }
}

/// Inserts journaled records and checkpoints in one transaction; those the
/// tables already hold (an ingest committed, the file was not emptied yet)
/// are skipped. A record or checkpoint the tables hold *differently* is a
/// conflict: the journal's copies are kept in a file beside the journal and
/// the conflict logged (see [`super::journal`]). Returns the records inserted.
fn insert_journaled(
    conn: &Connection,
    entries: &Sealed,
    journal: &Journal,
) -> Result<usize, AuditError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let done = (|| {
        let mut inserted = 0usize;
        let mut conflicts = Sealed::default();
        let mut ins = conn.prepare_cached(
            "INSERT INTO audit_records
               (seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (seq) DO NOTHING",
        )?;
        let mut stored = conn.prepare_cached("SELECT hash FROM audit_records WHERE seq = ?1")?;
        for r in &entries.records {
            let n = insert_record(&mut ins, r)?;
            if n == 1 {
                inserted += 1;
            } else if stored.query_row([r.seq as i64], |row| row.get::<_, String>(0))? != r.hash {
                conflicts.records.push(r.clone());
            }
        }
        let mut cp = conn.prepare_cached(
            "INSERT INTO audit_checkpoints (number, seq, hash, time_ms, key_id, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (number) DO NOTHING",
        )?;
        let mut stored_cp =
            conn.prepare_cached("SELECT signature FROM audit_checkpoints WHERE number = ?1")?;
        for k in &entries.checkpoints {
            let n = insert_checkpoint(&mut cp, k)?;
            if n == 0
                && stored_cp.query_row([k.number as i64], |row| row.get::<_, String>(0))?
                    != k.signature
            {
                conflicts.checkpoints.push(k.clone());
            }
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok::<_, AuditError>((inserted, conflicts))
    })();
    match done {
        Ok((inserted, conflicts)) => {
            if !conflicts.records.is_empty() || !conflicts.checkpoints.is_empty() {
                journal.keep_conflicts(&conflicts);
            }
            Ok(inserted)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

impl Writer {
    /// One append; keeps the tip for the next one when it succeeds.
    fn append(&mut self, seal: SealFn) -> Result<Sealed, AuditError> {
        let cached = self.tip.take();
        // Statements are prepared once (BEGIN and COMMIT too): parsing SQL
        // was a visible part of each append.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let done = append_in_transaction(&self.conn, cached, seal).and_then(|stored| {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(stored)
        });
        match done {
            Ok((sealed, tip)) => {
                self.tip = Some(tip);
                Ok(sealed)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }
}

/// One append's work inside its transaction on `tx`; `cached` is the tip
/// this connection left, with the `data_version` of then. Returns what was
/// stored and the new cache entry.
fn append_in_transaction(
    tx: &Connection,
    cached: Option<(Tip, i64)>,
    seal: SealFn,
) -> Result<(Sealed, (Tip, i64)), AuditError> {
    // Changes only when another connection committed since this one's last
    // transaction.
    let version: i64 = tx
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    let before = match cached {
        Some((tip, v)) if v == version => tip,
        _ => tip(tx)?,
    };
    let sealed = seal(&before);
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO audit_records
               (seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for r in &sealed.records {
            insert_record(&mut ins, r)?;
        }
        if !sealed.checkpoints.is_empty() {
            let mut cp = tx.prepare_cached(
                "INSERT INTO audit_checkpoints (number, seq, hash, time_ms, key_id, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for k in &sealed.checkpoints {
                insert_checkpoint(&mut cp, k)?;
            }
        }
    }
    let after = sealed.tip_after(&before);
    Ok((sealed, (after, version)))
}

impl SqliteAuditBackend {
    /// Records the public key of a checkpoint signer (idempotent).
    pub async fn register_key(&self, key: PublicKeyInfo) -> Result<(), AuditError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO audit_keys (key_id, public_key, added_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key_id) DO NOTHING",
                params![key.key_id, key.public_key, super::now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Records matching `q`.
    pub async fn query(&self, q: Query) -> Result<Vec<AuditRecord>, AuditError> {
        self.with(move |c| {
            let like = q.kind.as_ref().map(|k| {
                let k = k
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                format!("{k}.%")
            });
            let mut stmt = c.prepare(
                "SELECT seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash
                 FROM (SELECT * FROM audit_records
                       WHERE (?1 IS NULL OR time_ms >= ?1)
                         AND (?2 IS NULL OR actor = ?2)
                         AND (?3 IS NULL OR connection = ?3)
                         AND (?4 IS NULL OR kind = ?4 OR kind LIKE ?5 ESCAPE '\\')
                         AND (?7 IS NULL OR session = ?7
                              OR (kind = 'statement.outcome'
                                  AND json_extract(detail, '$.statement') IN
                                      (SELECT seq FROM audit_records
                                        WHERE session = ?7 AND (?1 IS NULL OR time_ms >= ?1))))
                       ORDER BY seq DESC LIMIT ?6)
                 ORDER BY seq ASC",
            )?;
            let rows = stmt.query_map(
                params![
                    q.since_ms,
                    q.actor,
                    q.connection,
                    q.kind,
                    like,
                    i64::from(q.limit),
                    q.session
                ],
                record_from_row,
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (mut r, detail) = row?;
                r.detail = parse_detail(&detail);
                out.push(r);
            }
            Ok(out)
        })
        .await
    }

    /// The public keys of every checkpoint signer.
    pub async fn keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        self.with(|c| keys(c)).await
    }

    /// See [`super::AuditLog::prune`]: the records up to the newest
    /// checkpoint older than `before_ms` go.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, AuditError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // The newest checkpoint whose record, and every one before it, is old enough.
            let anchor: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT number, seq FROM audit_checkpoints
                     WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_records WHERE time_ms >= ?1),
                                          9223372036854775807)
                     ORDER BY number DESC LIMIT 1",
                    params![before_ms],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((number, seq)) = anchor else {
                return Ok(0);
            };
            let n = tx.execute("DELETE FROM audit_records WHERE seq <= ?1", params![seq])?;
            tx.execute(
                "DELETE FROM audit_checkpoints WHERE number < ?1",
                params![number],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }
}

impl SqliteAuditBackend {
    /// Sends the export to `sink` in chunks ([`super::export`]), read in one
    /// read transaction on a connection of its own, so appends go on
    /// meanwhile (an in-memory log, in tests, has one connection: it is
    /// held until the export is done). Stops early, without an error, when
    /// nobody reads any more. Runs on the caller's (blocking) thread.
    pub fn export_blocking(&self, exported_at: i64, sink: &Sink) -> Result<(), AuditError> {
        if let Some(j) = &self.journal {
            // The export holds every record appended before it began.
            let mut w = self.lock();
            if let Err(e) = self.ingest(&mut w, j, 2) {
                tracing::error!("audit journal not moved into the log before an export: {e}");
            }
        }
        match &self.path {
            Some(path) => {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(crate::store::sqlite_wal::BUSY_WAIT)?;
                export_from(&conn, exported_at, sink)
            }
            None => {
                let mut w = self.lock();
                w.tip = None;
                export_from(&w.conn, exported_at, sink)
            }
        }
    }
}

/// [`SqliteAuditBackend::export_blocking`] on `conn`.
fn export_from(conn: &Connection, exported_at: i64, sink: &Sink) -> Result<(), AuditError> {
    // One read transaction: the log of one moment (WAL: writers go on).
    let tx = conn.unchecked_transaction()?;
    let start = Start {
        keys: keys(&tx)?,
        first_seq: tx
            .query_row("SELECT MIN(seq) FROM audit_records", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .map(|v| v as u64),
        oldest_checkpoint: tx
            .query_row(
                "SELECT number, seq, hash, time_ms, key_id, signature
                 FROM audit_checkpoints ORDER BY number LIMIT 1",
                [],
                checkpoint_from_row,
            )
            .optional()?,
    };
    let (lines, mut cursor) = start.lines(exported_at);
    if sink.blocking_send(Ok(lines)).is_err() {
        return Ok(());
    }
    let mut records = tx.prepare(
        "SELECT seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash
         FROM audit_records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let mut checkpoints = tx.prepare(
        "SELECT number, seq, hash, time_ms, key_id, signature FROM audit_checkpoints
         WHERE number > ?1 AND seq <= ?2 ORDER BY number LIMIT ?3",
    )?;
    loop {
        let chunk = records
            .query_map(params![cursor.seq as i64, CHUNK as i64], record_from_row)?
            .map(|row| {
                row.map(|(mut r, detail)| {
                    r.detail = parse_detail(&detail);
                    r
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bound = i64::try_from(export::checkpoint_bound(&chunk)).unwrap_or(i64::MAX);
        let cps = checkpoints
            .query_map(
                params![cursor.number as i64, bound, CHECKPOINTS_PER_CHUNK as i64],
                checkpoint_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let (lines, next) = export::lines(chunk, cps, cursor);
        if !lines.is_empty() && sink.blocking_send(Ok(lines)).is_err() {
            return Ok(());
        }
        match next {
            Some(c) => cursor = c,
            None => return Ok(()),
        }
    }
}

/// Runs `ins`, an `INSERT INTO audit_checkpoints` with the columns in
/// table order as `?1..?6`, for `k`.
fn insert_checkpoint(
    ins: &mut rusqlite::CachedStatement<'_>,
    k: &Checkpoint,
) -> rusqlite::Result<usize> {
    ins.execute(params![
        k.number as i64,
        k.seq as i64,
        k.hash,
        k.time,
        k.key_id,
        k.signature
    ])
}

/// Runs `ins`, an `INSERT INTO audit_records` with the columns in table
/// order as `?1..?9`, for `r`.
fn insert_record(
    ins: &mut rusqlite::CachedStatement<'_>,
    r: &super::SealedRecord,
) -> rusqlite::Result<usize> {
    ins.execute(params![
        r.seq as i64,
        r.time,
        r.kind,
        r.actor,
        r.connection,
        r.session,
        r.detail,
        r.prev_hash,
        r.hash
    ])
}
