//! SSH session recordings under `DATA_DIR/recordings/`:
//!
//! - `<session-id>.cast`: the session's first interactive shell as an
//!   asciicast v2 file (a JSON header with the terminal's width and height,
//!   then one JSON array per event: `[seconds, "o", text]` for output,
//!   `[seconds, "r", "COLSxROWS"]` for a resize). Later shells of the same
//!   session go to `<session-id>.<n>.cast`.
//! - `<session-id>.json`: the index: every shell, exec command (with its
//!   decision, exit status and bytes) and sftp subsystem (bytes up and down),
//!   including what the broker refused.
//!
//! Each part is also put into the store ([`crate::store::Store::put_recording`],
//! once [`Recordings::attach_store`] was called): the index as `index.json`
//! after every change, each asciicast under its file name when its channel
//! ends. The API reads the store first and these files second, so any
//! broker sharing a PostgreSQL store serves a recording, whichever broker
//! carried the session; the files stay as the local copy (and the only one
//! while a shell is still running).
//!
//! Only what the target sends is recorded, never what the client types (it
//! may be a password typed at a `sudo` prompt; the terminal echo shows what
//! was typed otherwise), and never a credential: the broker's upstream key
//! and the one-time key never pass through a channel.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What a channel was used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An interactive shell.
    Shell,
    /// One exec command.
    Exec,
    /// The sftp subsystem.
    Sftp,
    /// A forwarded TCP connection (`ssh -L`), when allowed.
    Forward,
}

/// One entry of a session's recording index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// What it was.
    pub kind: EntryKind,
    /// When it began, Unix seconds.
    pub started_at: f64,
    /// When it ended, Unix seconds (absent while running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
    /// The command line (exec) or target (forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `allowed`, `blocked`, `held_for_review`, `refused`.
    pub decision: String,
    /// The rule that decided, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The asciicast file (shells), relative to the recordings dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Terminal size when the shell started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Terminal size when the shell started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Exit status, when the target sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    /// Exit signal, when the target sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// Bytes from the client to the target.
    pub bytes_up: u64,
    /// Bytes from the target to the client.
    pub bytes_down: u64,
    /// sftp: the file operations, with paths and per-file byte counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sftp_ops: Vec<super::sftp_watch::SftpOp>,
    /// sftp: operations beyond the recorded maximum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sftp_ops_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `<session-id>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingIndex {
    /// The session.
    pub session_id: String,
    /// The hoop user.
    pub user: String,
    /// The connection.
    pub connection: String,
    /// Channels, in the order they began.
    pub entries: Vec<IndexEntry>,
}

/// Who a recording belongs to.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    /// Session id (a UUID).
    pub session_id: String,
    /// The hoop user.
    pub user: String,
    /// The connection.
    pub connection: String,
}

/// Name of the index part in the store.
pub const INDEX_PART: &str = "index.json";

/// Sessions whose last stored index version is remembered before pruning.
const STORED_KEEP: usize = 1024;
/// Index versions (across sessions) an upload may lag behind and still be
/// refused when stale.
const STORED_WINDOW: u64 = 4096;

/// The recordings directory (and, once attached, the store).
#[derive(Debug)]
pub struct Recordings {
    dir: PathBuf,
    /// Serialises read-modify-write of index files across tunnels; holds
    /// the number of index versions written, so uploads apply in order.
    index_lock: Mutex<u64>,
    /// Where finished parts are put, and who owns the upload tasks.
    store: OnceLock<(crate::store::Store, tokio_util::task::TaskTracker)>,
    /// The newest index version put into the store, per session. Uploads
    /// run as tasks and may finish out of order; an older index never
    /// replaces a newer one.
    stored: Arc<tokio::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

/// One part to put into the store.
struct Upload {
    session_id: String,
    /// Asciicast parts first (file name, body), then the index.
    casts: Vec<(String, Vec<u8>)>,
    index: Option<(u64, Vec<u8>)>,
}

/// True for names safe as a file name stem (session ids are UUIDs).
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Recordings {
    /// Recordings kept in `dir` (created on first use, mode 0700).
    pub fn new(dir: PathBuf) -> Recordings {
        Recordings {
            dir,
            index_lock: Mutex::new(0),
            store: OnceLock::new(),
            stored: Arc::default(),
        }
    }

    /// Also put every part into `store` from now on, in tasks owned by
    /// `tasks` (the broker waits for them at shutdown). Later calls are
    /// ignored.
    pub fn attach_store(&self, store: crate::store::Store, tasks: tokio_util::task::TaskTracker) {
        let _ = self.store.set((store, tasks));
    }

    /// Puts parts into the store in a task (no-op without a store or
    /// outside a runtime). Failures are logged: the files remain.
    fn upload(&self, up: Upload) {
        let Some((store, tasks)) = self.store.get() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, stored) = (store.clone(), self.stored.clone());
        tasks.spawn_on(
            async move {
                let at = crate::util::now_unix();
                for (name, body) in up.casts {
                    if let Err(e) = store.put_recording(&up.session_id, &name, body, at).await {
                        tracing::error!(session = %up.session_id, "cannot store recording {name}: {e}");
                    }
                }
                let Some((version, body)) = up.index else {
                    return;
                };
                // Held across the put: the check and the write are one step.
                let mut stored = stored.lock().await;
                if stored.get(&up.session_id).is_some_and(|v| *v >= version) {
                    return;
                }
                match store.put_recording(&up.session_id, INDEX_PART, body, at).await {
                    Ok(()) => {
                        stored.insert(up.session_id, version);
                        // Bounded: an upload in flight is among the last few
                        // thousand index versions; older entries guard nothing.
                        if stored.len() > STORED_KEEP {
                            stored.retain(|_, v| *v + STORED_WINDOW > version);
                        }
                    }
                    Err(e) => {
                        tracing::error!(session = %up.session_id, "cannot store the recording index: {e}")
                    }
                }
            },
            &rt,
        );
    }

    /// Retention: deletes recording files last written before `before`.
    /// Returns how many went; a file that cannot be read or removed is
    /// skipped (and logged), never fatal.
    pub fn prune_files(&self, before: std::time::SystemTime) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || meta.modified().map_or(true, |m| m >= before) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(file = %entry.path().display(), "retention: {e}"),
            }
        }
        removed
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A session's index, if it has one.
    pub fn index(&self, session_id: &str) -> Option<RecordingIndex> {
        if !is_safe_id(session_id) {
            return None;
        }
        let text = std::fs::read(self.dir.join(format!("{session_id}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The path of a cast file named in an index.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let stem = name.strip_suffix(".cast")?;
        is_safe_id(&stem.replace('.', "-")).then(|| self.dir.join(name))
    }

    fn update(
        &self,
        meta: &SessionMeta,
        f: impl FnOnce(&mut RecordingIndex),
    ) -> std::io::Result<()> {
        self.update_with(meta, Vec::new(), f)
    }

    /// Changes the index file, then puts `casts` and the new index into
    /// the store.
    fn update_with(
        &self,
        meta: &SessionMeta,
        casts: Vec<(String, Vec<u8>)>,
        f: impl FnOnce(&mut RecordingIndex),
    ) -> std::io::Result<()> {
        let mut version = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        crate::util::create_private_dir(&self.dir)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = self.dir.join(format!("{}.json", meta.session_id));
        let mut index = std::fs::read(&path)
            .ok()
            .and_then(|t| serde_json::from_slice::<RecordingIndex>(&t).ok())
            .unwrap_or_else(|| RecordingIndex {
                session_id: meta.session_id.clone(),
                user: meta.user.clone(),
                connection: meta.connection.clone(),
                entries: Vec::new(),
            });
        f(&mut index);
        let body = serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{}.json.tmp", meta.session_id));
        std::fs::write(&tmp, &body)?;
        std::fs::rename(tmp, path)?;
        *version += 1;
        self.upload(Upload {
            session_id: meta.session_id.clone(),
            casts,
            index: Some((*version, body)),
        });
        Ok(())
    }

    /// Notes something the broker refused (no channel traffic follows).
    pub fn refused(
        &self,
        meta: &SessionMeta,
        kind: EntryKind,
        command: Option<&str>,
        decision: &str,
        rule: Option<&str>,
        reason: &str,
    ) {
        let at = now_secs();
        let entry = IndexEntry {
            kind,
            started_at: at,
            ended_at: Some(at),
            command: command.map(str::to_owned),
            decision: decision.to_owned(),
            rule: rule.map(str::to_owned),
            reason: Some(reason.to_owned()),
            file: None,
            width: None,
            height: None,
            exit_status: None,
            exit_signal: None,
            bytes_up: 0,
            bytes_down: 0,
            sftp_ops: Vec::new(),
            sftp_ops_dropped: 0,
        };
        if let Err(e) = self.update(meta, |i| i.entries.push(entry)) {
            tracing::error!(session = %meta.session_id, "cannot write the recording index: {e}");
        }
    }

    /// Starts recording one channel. A shell (`pty` = width, height, TERM)
    /// gets an asciicast file.
    pub fn start(
        self: &Arc<Self>,
        meta: &SessionMeta,
        kind: EntryKind,
        command: Option<&str>,
        rule: Option<&str>,
        pty: Option<(u32, u32, &str)>,
    ) -> std::io::Result<Arc<ChannelRecord>> {
        let started_at = now_secs();
        let mut slot = 0;
        let mut file_name = None;
        let mut cast = None;
        self.update(meta, |index| {
            slot = index.entries.len();
            if kind == EntryKind::Shell {
                let shells = index.entries.iter().filter(|e| e.file.is_some()).count();
                file_name = Some(if shells == 0 {
                    format!("{}.cast", meta.session_id)
                } else {
                    format!("{}.{shells}.cast", meta.session_id)
                });
            }
            index.entries.push(IndexEntry {
                kind,
                started_at,
                ended_at: None,
                command: command.map(str::to_owned),
                decision: "allowed".into(),
                rule: rule.map(str::to_owned),
                reason: None,
                file: file_name.clone(),
                width: pty.map(|p| p.0),
                height: pty.map(|p| p.1),
                exit_status: None,
                exit_signal: None,
                bytes_up: 0,
                bytes_down: 0,
                sftp_ops: Vec::new(),
                sftp_ops_dropped: 0,
            });
        })?;
        if let Some(name) = &file_name {
            // A terminal that reports no size (0x0) replays as 80x24.
            let (width, height, term) = pty.unwrap_or((80, 24, "xterm"));
            let (width, height) = if width == 0 || height == 0 {
                (80, 24)
            } else {
                (width, height)
            };
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(self.dir.join(name))?;
            let header = serde_json::json!({
                "version": 2,
                "width": width,
                "height": height,
                "timestamp": started_at as u64,
                "title": format!("{} on {} (session {})", meta.user, meta.connection, meta.session_id),
                "env": { "TERM": term },
            });
            writeln!(f, "{header}")?;
            cast = Some(f);
        }
        Ok(Arc::new(ChannelRecord {
            recordings: self.clone(),
            meta: meta.clone(),
            slot,
            file_name,
            started: Instant::now(),
            inner: Mutex::new(Inner {
                cast,
                sftp: (kind == EntryKind::Sftp).then(super::sftp_watch::SftpWatch::default),
                carry: Vec::new(),
                bytes_up: 0,
                bytes_down: 0,
                exit_status: None,
                exit_signal: None,
                finished: false,
            }),
        }))
    }
}

struct Inner {
    cast: Option<std::fs::File>,
    /// sftp channels: the file operations seen so far.
    sftp: Option<super::sftp_watch::SftpWatch>,
    /// An incomplete UTF-8 sequence at the end of the last output chunk.
    carry: Vec<u8>,
    bytes_up: u64,
    bytes_down: u64,
    exit_status: Option<u32>,
    exit_signal: Option<String>,
    finished: bool,
}

/// The recording of one channel.
pub struct ChannelRecord {
    recordings: Arc<Recordings>,
    meta: SessionMeta,
    slot: usize,
    /// The asciicast's file name (shells).
    file_name: Option<String>,
    started: Instant,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRecord")
            .field("slot", &self.slot)
            .finish()
    }
}

impl ChannelRecord {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn event(&self, inner: &mut Inner, code: &str, text: &str) {
        if let Some(f) = inner.cast.as_mut() {
            let line = serde_json::json!([
                (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e6,
                code,
                text
            ]);
            if let Err(e) = writeln!(f, "{line}") {
                tracing::error!(session = %self.meta.session_id, "recording write failed: {e}");
                inner.cast = None;
            }
        }
    }

    /// Output from the target (stdout or stderr).
    pub fn output(&self, data: &[u8]) {
        let mut inner = self.lock();
        inner.bytes_down += data.len() as u64;
        if let Some(w) = inner.sftp.as_mut() {
            w.target_data(data);
        }
        if inner.cast.is_none() {
            return;
        }
        let mut bytes = std::mem::take(&mut inner.carry);
        bytes.extend_from_slice(data);
        // Keep an incomplete trailing UTF-8 sequence for the next chunk.
        let valid = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => bytes.len(),
        };
        let (now, later) = bytes.split_at(valid);
        inner.carry = later.to_vec();
        let text = String::from_utf8_lossy(now).into_owned();
        if !text.is_empty() {
            self.event(&mut inner, "o", &text);
        }
    }

    /// Bytes from the client to the target: counted; keystrokes are not
    /// recorded (a typed password must not land in a file), sftp requests
    /// are read for the file operations they name.
    pub fn input(&self, data: &[u8]) {
        let mut inner = self.lock();
        inner.bytes_up += data.len() as u64;
        if let Some(w) = inner.sftp.as_mut() {
            w.client_data(data);
        }
    }

    /// Bytes carried outside the channel callbacks (a forwarded connection).
    pub fn counted(&self, up: u64, down: u64) {
        let mut inner = self.lock();
        inner.bytes_up += up;
        inner.bytes_down += down;
    }

    /// The terminal was resized.
    pub fn resize(&self, cols: u32, rows: u32) {
        let mut inner = self.lock();
        self.event(&mut inner, "r", &format!("{cols}x{rows}"));
    }

    /// The target reported an exit status.
    pub fn exit_status(&self, code: u32) {
        self.lock().exit_status = Some(code);
    }

    /// The target reported an exit signal.
    pub fn exit_signal(&self, name: &str) {
        self.lock().exit_signal = Some(name.to_owned());
    }

    /// The channel closed: the index gets the end, exit and byte counts;
    /// the asciicast and the index go to the store.
    pub fn finish(&self) {
        let (up, down, status, signal, sftp_ops, sftp_dropped, cast) = {
            let mut inner = self.lock();
            if std::mem::replace(&mut inner.finished, true) {
                return;
            }
            if let Some(f) = inner.cast.as_mut() {
                let _ = f.flush();
            }
            // Read now, before the index says the shell ended: whoever sees
            // the end may rely on the bytes being on their way to the store.
            inner.cast = None;
            let cast = match &self.file_name {
                Some(name) => match std::fs::read(self.recordings.dir.join(name)) {
                    Ok(body) => vec![(name.clone(), body)],
                    Err(e) => {
                        tracing::error!(session = %self.meta.session_id, "cannot read {name} to store it: {e}");
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            let (ops, dropped) = inner
                .sftp
                .as_ref()
                .map(|w| (w.ops().0.to_vec(), w.ops().1))
                .unwrap_or_default();
            (
                inner.bytes_up,
                inner.bytes_down,
                inner.exit_status,
                inner.exit_signal.clone(),
                ops,
                dropped,
                cast,
            )
        };
        let slot = self.slot;
        let result = self.recordings.update_with(&self.meta, cast, |index| {
            if let Some(e) = index.entries.get_mut(slot) {
                e.ended_at = Some(now_secs());
                e.bytes_up = up;
                e.bytes_down = down;
                e.exit_status = status;
                e.exit_signal = signal;
                e.sftp_ops = sftp_ops;
                e.sftp_ops_dropped = sftp_dropped;
            }
        });
        if let Err(e) = result {
            tracing::error!(session = %self.meta.session_id, "cannot write the recording index: {e}");
        }
    }
}

impl Drop for ChannelRecord {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SessionMeta {
        SessionMeta {
            session_id: "0b7c-test".into(),
            user: "alice".into(),
            connection: "ssh-prod".into(),
        }
    }

    #[test]
    fn a_shell_becomes_an_asciicast_and_an_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let recs = Arc::new(Recordings::new(dir.path().join("recordings")));
        let rec = recs
            .start(
                &meta(),
                EntryKind::Shell,
                None,
                None,
                Some((100, 30, "xterm-256color")),
            )
            .unwrap();
        rec.output("héllo\r\n".as_bytes());
        // A multi-byte character split across two chunks stays whole.
        let euro = "€".as_bytes();
        rec.output(&euro[..1]);
        rec.output(&euro[1..]);
        rec.resize(120, 40);
        rec.input(b"abc");
        rec.exit_status(0);
        drop(rec);
        let text = std::fs::read_to_string(dir.path().join("recordings/0b7c-test.cast")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[0]["width"], 100);
        assert_eq!(lines[0]["height"], 30);
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[1][2], "héllo\r\n");
        assert_eq!(lines[2][2], "€");
        assert_eq!(lines[3][1], "r");
        assert_eq!(lines[3][2], "120x40");
        let index = recs.index("0b7c-test").unwrap();
        let e = &index.entries[0];
        assert_eq!(e.kind, EntryKind::Shell);
        assert_eq!(e.file.as_deref(), Some("0b7c-test.cast"));
        assert_eq!(e.exit_status, Some(0));
        assert_eq!(e.bytes_up, 3);
        assert!(e.ended_at.is_some());
        // A second shell gets its own file; an exec only an entry.
        let rec = recs
            .start(&meta(), EntryKind::Shell, None, None, None)
            .unwrap();
        drop(rec);
        let rec = recs
            .start(&meta(), EntryKind::Exec, Some("uptime"), None, None)
            .unwrap();
        rec.exit_status(7);
        drop(rec);
        recs.refused(
            &meta(),
            EntryKind::Exec,
            Some("rm -rf /"),
            "blocked",
            Some("r"),
            "no",
        );
        let index = recs.index("0b7c-test").unwrap();
        assert_eq!(index.entries[1].file.as_deref(), Some("0b7c-test.1.cast"));
        assert_eq!(index.entries[2].command.as_deref(), Some("uptime"));
        assert_eq!(index.entries[2].exit_status, Some(7));
        assert_eq!(index.entries[3].decision, "blocked");
        assert!(recs.file("0b7c-test.1.cast").is_some());
        assert!(recs.file("../x.cast").is_none());
        assert!(recs.index("../etc").is_none());
    }

    #[tokio::test]
    async fn finished_parts_are_put_into_the_store_newest_index_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::in_memory().unwrap();
        let tasks = tokio_util::task::TaskTracker::new();
        let recs = Arc::new(Recordings::new(dir.path().join("recordings")));
        recs.attach_store(store.clone(), tasks.clone());
        let shell = recs
            .start(
                &meta(),
                EntryKind::Shell,
                None,
                None,
                Some((80, 24, "xterm")),
            )
            .unwrap();
        shell.output(b"$ uptime\r\n");
        let exec = recs
            .start(&meta(), EntryKind::Exec, Some("id"), None, None)
            .unwrap();
        exec.exit_status(0);
        drop(exec);
        shell.exit_status(3);
        drop(shell);
        tasks.close();
        tasks.wait().await;
        // The files may go: the store has everything.
        std::fs::remove_dir_all(dir.path().join("recordings")).unwrap();
        let index: RecordingIndex = serde_json::from_slice(
            &store
                .recording("0b7c-test", INDEX_PART)
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(index.entries.len(), 2);
        assert_eq!(index.entries[0].exit_status, Some(3), "the final index won");
        assert!(index.entries.iter().all(|e| e.ended_at.is_some()));
        let cast = store
            .recording("0b7c-test", "0b7c-test.cast")
            .await
            .unwrap()
            .unwrap();
        let cast = String::from_utf8(cast).unwrap();
        assert!(cast.lines().nth(1).unwrap().contains("$ uptime"), "{cast}");
        assert_eq!(
            store.recording_names("0b7c-test").await.unwrap(),
            ["0b7c-test.cast", INDEX_PART]
        );
    }

    #[test]
    fn retention_removes_only_files_written_before_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let recs = Recordings::new(dir.path().to_path_buf());
        let old = dir.path().join("old.cast");
        let new = dir.path().join("new.cast");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&new, b"y").unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(now - 3 * day)
            .unwrap();
        assert_eq!(recs.prune_files(now - day), 1);
        assert!(!old.exists() && new.exists());
        assert_eq!(recs.prune_files(now - day), 0);
    }
}
