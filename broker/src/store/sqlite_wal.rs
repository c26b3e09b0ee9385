//! Switching the broker's own SQLite files (the store, the audit log) to
//! WAL mode when several connections open a fresh file at once.
//!
//! The busy timeout makes a connection wait for another one's lock, but
//! SQLite answers `SQLITE_BUSY` at once, without waiting, where waiting
//! could deadlock. Switching a new file to WAL is such a case: the switch
//! reads the file header under a shared lock and then needs the file to
//! itself, and of two connections doing that together, one is told "busy"
//! straight away. The switch is idempotent, so it is simply tried again
//! until the other connection is done, within [`BUSY_WAIT`].

use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long opening a file waits for other connections setting it up.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Sets `journal_mode = WAL` on `conn`, retrying while another connection
/// holds the file (see the module doc). Any other error is returned as is.
pub fn enable(conn: &Connection) -> rusqlite::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && start.elapsed() < BUSY_WAIT =>
            {
                // Backing off: the other connection needs a moment to finish
                // its own switch (microseconds to milliseconds).
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many connections switching one fresh file to WAL at once all
    /// succeed (without the retry, about one run in eight of two
    /// connections failed with "database is locked").
    #[test]
    fn connections_racing_to_switch_a_fresh_file_all_succeed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("race.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let path = path.clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        let conn = Connection::open(&path).unwrap();
                        conn.busy_timeout(BUSY_WAIT).unwrap();
                        barrier.wait();
                        enable(&conn)
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().unwrap();
            }
            let conn = Connection::open(&path).unwrap();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }
}
