//! The SQLite backend's append journal: where a record is made durable
//! before it is forwarded, so that a statement costs one `write(2)` instead
//! of one SQLite commit.
//!
//! An append chains its records onto the tip kept here (the journal owns the
//! chain of this broker's SQLite log), encodes them as JSON lines and writes
//! them with one `write_all` to an `O_APPEND` file. When that returns, the
//! records are in the operating system's page cache: they survive the broker
//! being killed (`kill -9`), exactly like a SQLite commit with
//! `synchronous = NORMAL` (which writes its WAL without fsync), and a power
//! loss can lose the last ones, as it can there. `[audit] synchronous =
//! "full"` does not use the journal: every append is an fsynced commit.
//!
//! The writer thread moves the journal into the tables in batches
//! ("ingests"): at most [`INGEST_DELAY`] after the oldest waiting record was
//! written, or at once when [`INGEST_RECORDS`] wait. One transaction then
//! carries a thousand records instead of one, which is where the saving is: a
//! SQLite commit writes whole 4 KiB pages (three per record: about 11 KiB of
//! WAL) and takes file locks; a journal line is some hundred bytes.
//!
//! Two files take turns so that appends never wait for an ingest: an ingest
//! switches appends to the other (empty) file, inserts every line of the one
//! it took, commits, and empties it. Reads of the log (queries, export,
//! verify, pruning) ingest what is waiting first, so they see every record
//! appended before they began.
//!
//! At start the backend ingests whatever the files hold (a crash or kill
//! left them non-empty): records the tables already have (committed, but the
//! file not yet emptied) are skipped. A record the tables hold *differently*
//! means somebody wrote to `audit_records`: the journal's copy is kept in a
//! file beside it and the conflict logged, and `hoop-broker audit verify`
//! names the break. A torn last line (a power loss in the middle of a write)
//! is skipped with a warning; a damaged line elsewhere is skipped, and its
//! file kept as `*.unreadable-<ms>` for inspection.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hoop_shared::audit::{Checkpoint, parse_hash};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{AuditError, SealFn, Sealed, SealedRecord, Tip};

/// The two journal files, in the data directory beside the SQLite file.
pub const FILES: [&str; 2] = ["audit-journal-0.jsonl", "audit-journal-1.jsonl"];
/// A record waits at most this long in the journal before it is in the tables.
pub const INGEST_DELAY: Duration = Duration::from_millis(100);
/// This many waiting records are ingested at once.
pub const INGEST_RECORDS: usize = 4096;
/// After an ingest failed, the next try waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One line as written (borrowing the sealed record).
#[derive(Serialize)]
#[serde(tag = "t")]
enum LineOut<'a> {
    #[serde(rename = "r")]
    Record(&'a SealedRecord),
    #[serde(rename = "c")]
    Checkpoint(&'a Checkpoint),
}

/// One line as read back.
#[derive(Deserialize)]
#[serde(tag = "t")]
enum LineIn {
    #[serde(rename = "r")]
    Record(SealedRecord),
    #[serde(rename = "c")]
    Checkpoint(Checkpoint),
}

struct State {
    files: [File; 2],
    /// Bytes in each file (a failed write is cut back to this).
    lens: [u64; 2],
    /// The file appends go to.
    active: usize,
    /// Records in the active file.
    pending: usize,
    /// When the oldest of them was written.
    oldest: Option<Instant>,
    /// No ingest before this (the last one failed).
    retry_at: Option<Instant>,
    /// The end of the chain: the tables' tip plus everything journaled.
    tip: Tip,
}

/// See the module docs.
pub struct Journal {
    paths: [PathBuf; 2],
    /// Held while the journal is open.
    _lock: Flock<File>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// One of the two files' items: `0` is the first, anything else the second.
fn pick<T>(pair: &[T; 2], i: usize) -> &T {
    let [first, second] = pair;
    if i == 0 { first } else { second }
}

/// [`pick`], mutable.
fn pick_mut<T>(pair: &mut [T; 2], i: usize) -> &mut T {
    let [first, second] = pair;
    if i == 0 { first } else { second }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> AuditError {
    AuditError::Journal(format!("{what} {}: {e}", path.display()))
}

impl Journal {
    /// Opens (creating, mode 0600) the journal files in `dir`. Appends must
    /// wait for [`Journal::start`]: first the caller ingests what the files
    /// hold ([`Journal::read`] of both, then [`Journal::clear`]).
    pub fn open(dir: &Path) -> Result<Journal, AuditError> {
        let paths = FILES.map(|f| dir.join(f));
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| io_error("cannot open the audit journal", p, &e))
        };
        let files = [open(&paths[0])?, open(&paths[1])?];
        // One broker per data directory: two would chain two logs into one
        // table. Held on a handle of its own until the journal is dropped
        // (or the process dies).
        let lock = OpenOptions::new()
            .read(true)
            .open(&paths[0])
            .map_err(|e| io_error("cannot open the audit journal", &paths[0], &e))?;
        let lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(AuditError::Journal(format!(
                    "{} is locked: another hoop-broker uses the data directory {} (one broker per data directory; brokers that share a log use [audit] store = \"postgres://...\")",
                    paths[0].display(),
                    dir.display()
                )));
            }
            Err((_, e)) => {
                return Err(AuditError::Journal(format!(
                    "cannot lock {}: {e}",
                    paths[0].display()
                )));
            }
        };
        let lens = [len(&files[0], &paths[0])?, len(&files[1], &paths[1])?];
        Ok(Journal {
            paths,
            _lock: lock,
            state: Mutex::new(State {
                files,
                lens,
                active: 0,
                pending: 0,
                oldest: None,
                retry_at: None,
                tip: Tip::GENESIS,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the tip (the tables' tip, once the files are ingested).
    pub fn start(&self, tip: Tip) {
        self.lock().tip = tip;
    }

    /// Appends: chains with `seal` onto the tip and writes the result.
    pub fn append(&self, seal: SealFn) -> Result<Sealed, AuditError> {
        let mut st = self.lock();
        self.append_locked(&mut st, seal)
    }

    /// [`Journal::append`] when the journal is free at once; `None`
    /// otherwise (then `ready` was not called), or when `ready` gives up.
    pub fn try_append(
        &self,
        ready: &mut dyn FnMut() -> Option<SealFn>,
    ) -> Option<Result<Sealed, AuditError>> {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let seal = ready()?;
        Some(self.append_locked(&mut st, seal))
    }

    fn append_locked(&self, st: &mut State, seal: SealFn) -> Result<Sealed, AuditError> {
        let sealed = seal(&st.tip);
        let buf = encode(&sealed)?;
        let i = st.active;
        let path = pick(&self.paths, i);
        if let Err(e) = pick_mut(&mut st.files, i).write_all(&buf) {
            // Nothing half-written may stay: the next line would follow it.
            let len = *pick(&st.lens, i);
            let _ = pick_mut(&mut st.files, i).set_len(len);
            return Err(io_error("cannot write the audit journal", path, &e));
        }
        *pick_mut(&mut st.lens, i) += buf.len() as u64;
        if !sealed.records.is_empty() || !sealed.checkpoints.is_empty() {
            st.pending += sealed.records.len().max(1);
            st.oldest.get_or_insert_with(Instant::now);
        }
        st.tip = sealed.tip_after(&st.tip);
        Ok(sealed)
    }

    /// How long until an ingest is due (`Some(ZERO)`: now); `None` when
    /// nothing waits.
    pub fn due_in(&self) -> Option<Duration> {
        let st = self.lock();
        let now = Instant::now();
        if let Some(at) = st.retry_at
            && at > now
        {
            return Some(at - now);
        }
        if *pick(&st.lens, 1 - st.active) > 0 || st.pending >= INGEST_RECORDS {
            return Some(Duration::ZERO);
        }
        st.oldest
            .map(|t| INGEST_DELAY.saturating_sub(now.saturating_duration_since(t)))
    }

    /// Whether an ingest is due now.
    pub fn due(&self) -> bool {
        self.due_in() == Some(Duration::ZERO)
    }

    /// The file to ingest next: one a failed ingest left, else the active
    /// one (appends switch to the other, empty, file). `None`: nothing waits.
    /// Callers serialize ingests (the SQLite connection's lock).
    pub fn take(&self) -> Option<usize> {
        let mut st = self.lock();
        let other = 1 - st.active;
        if *pick(&st.lens, other) > 0 {
            return Some(other);
        }
        if *pick(&st.lens, st.active) == 0 {
            st.pending = 0;
            st.oldest = None;
            return None;
        }
        let taken = st.active;
        st.active = other;
        st.pending = 0;
        st.oldest = None;
        Some(taken)
    }

    /// Everything in file `i` (not the active one: see [`Journal::take`]).
    pub fn read(&self, i: usize) -> Result<Sealed, AuditError> {
        // Its own handle: appends (to the other file) do not wait for this.
        let path = pick(&self.paths, i);
        let text =
            std::fs::read(path).map_err(|e| io_error("cannot read the audit journal", path, &e))?;
        Ok(parse(&text, path))
    }

    /// Empties file `i` once its entries are in the tables.
    pub fn clear(&self, i: usize) -> Result<(), AuditError> {
        let mut st = self.lock();
        pick_mut(&mut st.files, i).set_len(0).map_err(|e| {
            io_error(
                "cannot empty the audit journal",
                pick(&self.paths, i).as_path(),
                &e,
            )
        })?;
        *pick_mut(&mut st.lens, i) = 0;
        st.retry_at = None;
        Ok(())
    }

    /// Notes a failed ingest: the next waits [`RETRY_AFTER`].
    pub fn failed(&self) {
        self.lock().retry_at = Some(Instant::now() + RETRY_AFTER);
    }

    /// Keeps the journal's copies of records and checkpoints that the
    /// tables hold differently (somebody wrote to the tables) in a file
    /// beside the journal, and says so in the log.
    pub fn keep_conflicts(&self, conflicts: &Sealed) {
        let seqs: Vec<u64> = conflicts.records.iter().map(|r| r.seq).collect();
        let numbers: Vec<u64> = conflicts.checkpoints.iter().map(|c| c.number).collect();
        let keep = self.paths[0]
            .with_file_name(format!("audit-journal-conflict-{}.jsonl", super::now_ms()));
        let kept = encode(conflicts).and_then(|b| {
            std::fs::write(&keep, b).map_err(|e| io_error("cannot write", &keep, &e))
        });
        tracing::error!(
            records = ?seqs,
            checkpoints = ?numbers,
            kept = %keep.display(),
            kept_ok = kept.is_ok(),
            "audit records in the tables differ from this broker's journal: somebody wrote to the audit tables; the broker's copies are kept in the file named, and `audit verify` reports the break"
        );
    }
}

/// The journal lines of `sealed`.
fn encode(sealed: &Sealed) -> Result<Vec<u8>, AuditError> {
    let mut buf = Vec::with_capacity(512 * (sealed.records.len() + 1));
    let bad = |e: serde_json::Error| AuditError::Journal(format!("cannot encode a record: {e}"));
    for r in &sealed.records {
        serde_json::to_writer(&mut buf, &LineOut::Record(r)).map_err(bad)?;
        buf.push(b'\n');
    }
    for c in &sealed.checkpoints {
        serde_json::to_writer(&mut buf, &LineOut::Checkpoint(c)).map_err(bad)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

fn len(f: &File, path: &Path) -> Result<u64, AuditError> {
    f.metadata()
        .map(|m| m.len())
        .map_err(|e| io_error("cannot read the audit journal", path, &e))
}

/// Parses a journal file's bytes (see the module docs for damaged lines).
fn parse(text: &[u8], path: &Path) -> Sealed {
    let mut out = Sealed::default();
    let mut damaged = 0usize;
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<LineIn>(line) {
            Ok(LineIn::Record(mut r)) => {
                r.hash_bytes = parse_hash(&r.hash).unwrap_or_default();
                out.records.push(r);
            }
            Ok(LineIn::Checkpoint(c)) => out.checkpoints.push(c),
            // The last line, without its newline: a write cut short.
            Err(_) if last => tracing::warn!(
                file = %path.display(),
                "the audit journal ends in a partial line (a write cut short by a crash); skipped"
            ),
            Err(_) => damaged += 1,
        }
    }
    if damaged > 0 {
        let keep = path.with_extension(format!("jsonl.unreadable-{}", super::now_ms()));
        let kept = std::fs::write(&keep, text);
        tracing::error!(
            file = %path.display(),
            lines = damaged,
            kept = %keep.display(),
            kept_ok = kept.is_ok(),
            "the audit journal holds damaged lines; they were skipped and the file kept"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_line_is_skipped_and_damage_elsewhere_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let good = r#"{"t":"r","seq":1,"time":5,"kind":"k","actor":null,"connection":null,"session":null,"detail":"{}","prev_hash":"00","hash":"11"}"#;
        let text = format!("{good}\n{good}\n{{\"t\":\"r\",\"se");
        let e = parse(text.as_bytes(), &path);
        assert_eq!(e.records.len(), 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let text = format!("{good}\ngarbage\n{good}\n");
        let e = parse(text.as_bytes(), &path);
        assert_eq!(e.records.len(), 2);
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].starts_with("j.jsonl.unreadable-"), "{kept:?}");
    }
}
