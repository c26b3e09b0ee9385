//! Audit log tests on both backends: appends chain, checkpoints are signed,
//! concurrent writers (tasks, and two logs on one store as two brokers would
//! be) leave one linear chain, retention keeps it verifiable, and statement
//! records are committed before their future resolves.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dev::postgres::ThrowawayPostgres;

fn signer(seed: u8) -> CheckpointSigner {
    CheckpointSigner::from_key(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
}

fn event(kind: &str, actor: &str, i: u64) -> NewRecord {
    let mut r = NewRecord::now(kind);
    r.actor = Some(actor.to_owned());
    r.connection = Some("pg-demo".into());
    r.detail = serde_json::json!({ "i": i });
    r
}

/// A PostgreSQL server with an `audit` database, and its URL (password inside).
async fn pg() -> (ThrowawayPostgres, String) {
    let pg = ThrowawayPostgres::start().await.unwrap();
    let password = hoop_shared::Secret::generate(24);
    pg.create_app_database("auditor", &password, "audit")
        .await
        .unwrap();
    let url = format!(
        "postgres://auditor:{}@{}:{}/audit",
        password.expose(),
        pg.host(),
        pg.port()
    );
    (pg, url)
}

async fn pg_backend(url: &str) -> AuditBackend {
    postgres::PgAuditBackend::connect(url, None)
        .await
        .unwrap()
        .into()
}

fn sqlite_backend(dir: &std::path::Path, sync: crate::config::AuditSynchronous) -> AuditBackend {
    sqlite::SqliteAuditBackend::open(&dir.join(sqlite::DB_FILE), sync)
        .unwrap()
        .into()
}

/// The default SQLite log: `synchronous = NORMAL`, appends through the journal.
async fn sqlite_file_backend(dir: &std::path::Path) -> AuditBackend {
    sqlite_backend(dir, crate::config::AuditSynchronous::Normal)
}

/// `synchronous = FULL`: every append is its own fsynced commit, no journal.
async fn sqlite_full_backend(dir: &std::path::Path) -> AuditBackend {
    sqlite_backend(dir, crate::config::AuditSynchronous::Full)
}

/// The `audit_records` rows of the file, read by a plain SQLite connection:
/// (seq, kind).
fn rows_in_file(dir: &std::path::Path) -> Vec<(u64, String)> {
    let c = rusqlite::Connection::open(dir.join(sqlite::DB_FILE)).unwrap();
    let mut stmt = c
        .prepare("SELECT seq, kind FROM audit_records ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The bytes of both journal files.
fn journal_bytes(dir: &std::path::Path) -> String {
    journal::FILES
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect()
}

/// A log on `backend` (checkpoint key `key`, a checkpoint every `every`
/// records) holding `n` "test.event" records by alice.
async fn log_with_events(backend: AuditBackend, key: u8, every: u64, n: u64) -> AuditLog {
    let log = AuditLog::start(backend, signer(key), every, None)
        .await
        .unwrap();
    for i in 0..n {
        log.append(event("test.event", "alice", i)).await.unwrap();
    }
    log
}

async fn appends_chain_and_checkpoint(backend: AuditBackend) {
    let log = AuditLog::start(backend, signer(1), 5, None).await.unwrap();
    for i in 0..12 {
        let seq = log.append(event("test.event", "alice", i)).await.unwrap();
        assert_eq!(seq, i + 1);
    }
    let v = log.verify().await.unwrap().unwrap();
    assert_eq!(v.records, 12);
    assert_eq!(
        v.last_checkpoint.as_ref().map(|c| c.0),
        Some(2),
        "at #5 and #10"
    );
    log.close().await;
    let export = log.export().await.unwrap();
    assert_eq!(export.checkpoints.len(), 3, "and one at shutdown over #12");
    assert_eq!(export.checkpoints.last().map(|c| c.seq), Some(12));
    assert!(matches!(
        log.append(event("test.event", "alice", 99)).await,
        Err(AuditError::Closed)
    ));

    // Filters: user, kind prefix, limit (newest, oldest first).
    let q = |actor: Option<&str>, kind: Option<&str>, limit| Query {
        actor: actor.map(str::to_owned),
        kind: kind.map(str::to_owned),
        limit,
        ..Query::default()
    };
    let got = log.query(q(Some("alice"), Some("test"), 3)).await.unwrap();
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [10, 11, 12]);
    assert!(
        log.query(q(Some("bob"), None, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        log.query(q(None, Some("tes"), 10))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sqlite_appends_chain_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    appends_chain_and_checkpoint(sqlite_file_backend(dir.path()).await).await;
}

#[tokio::test]
async fn postgres_appends_chain_and_checkpoint() {
    let (_pg, url) = pg().await;
    appends_chain_and_checkpoint(pg_backend(&url).await).await;
}

/// Two logs (two brokers) on one store, each with four writer tasks.
async fn concurrent_writers_form_one_chain(a: AuditBackend, b: AuditBackend) {
    let logs = [
        AuditLog::start(a, signer(1), 50, None).await.unwrap(),
        AuditLog::start(b, signer(2), 50, None).await.unwrap(),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for (n, log) in logs.iter().enumerate() {
        for t in 0..4 {
            let log = log.clone();
            tasks.spawn(async move {
                let mut seqs = Vec::new();
                let mut i = 0;
                while tokio::time::Instant::now() < deadline {
                    seqs.push(
                        log.append(event("test.event", &format!("w{n}-{t}"), i))
                            .await
                            .unwrap(),
                    );
                    i += 1;
                }
                seqs
            });
        }
    }
    let mut all = Vec::new();
    while let Some(seqs) = tasks.join_next().await {
        let seqs = seqs.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a writer's records keep its order"
        );
        all.extend(seqs);
    }
    for log in &logs {
        log.close().await;
    }
    all.sort_unstable();
    let n = all.len() as u64;
    assert!(n > 100, "only {n} records in 3 s");
    assert_eq!(all, (1..=n).collect::<Vec<_>>(), "every seq once, no gaps");
    let export = logs[0].export().await.unwrap();
    assert_eq!(export.keys.len(), 2, "both brokers' keys are published");
    let v = export.verify(None).unwrap();
    assert_eq!(v.records, n);
}

#[tokio::test]
async fn sqlite_concurrent_writers_form_one_chain() {
    // Two writers on one file: only without the journal (which is locked
    // to one broker, see below).
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers_form_one_chain(
        sqlite_full_backend(dir.path()).await,
        sqlite_full_backend(dir.path()).await,
    )
    .await;
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = sqlite_file_backend(dir.path()).await;
    let second = sqlite::SqliteAuditBackend::open(
        &dir.path().join(sqlite::DB_FILE),
        crate::config::AuditSynchronous::Normal,
    );
    let msg = second.err().expect("refused").to_string();
    assert!(
        msg.contains("another hoop-broker uses the data directory"),
        "{msg}"
    );
    drop(first);
    // Once the first is gone, the directory is free again.
    sqlite_file_backend(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_form_one_chain() {
    let (_pg, url) = pg().await;
    concurrent_writers_form_one_chain(pg_backend(&url).await, pg_backend(&url).await).await;
}

async fn retention_keeps_the_chain_verifiable(backend: AuditBackend) {
    let log = AuditLog::start(
        backend.clone(),
        signer(3),
        4,
        Some(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let old = now_ms() - 2 * 3600 * 1000;
    for i in 0..10 {
        let mut r = event("test.event", "alice", i);
        r.time = old + i as i64;
        log.append(r).await.unwrap();
    }
    for i in 10..13 {
        log.append(event("test.event", "alice", i)).await.unwrap();
    }
    // Old: #1..#10; checkpoints at #4, #8, #12. The newest checkpoint before
    // the first young record (#11) is #8: records #1..#8 go.
    assert_eq!(log.prune().await.unwrap(), 8);
    let export = log.export().await.unwrap();
    assert_eq!(export.anchor.as_ref().map(|a| a.seq), Some(8));
    assert_eq!(export.records.first().map(|r| r.seq), Some(9));
    let v = export.verify(None).unwrap();
    assert_eq!((v.records, v.anchor), (5, Some(2)));
    assert!(v.to_string().contains("anchored at checkpoint #2"), "{v}");
    // The chain goes on after pruning, and a second prune is a no-op.
    log.append(event("test.event", "alice", 13)).await.unwrap();
    assert_eq!(log.prune().await.unwrap(), 0);
    assert_eq!(log.verify().await.unwrap().unwrap().records, 6);
    // An export cut after the anchor fails.
    let mut cut = log.export().await.unwrap();
    cut.records.remove(0);
    assert!(cut.verify(None).is_err());
}

#[tokio::test]
async fn sqlite_retention_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    retention_keeps_the_chain_verifiable(sqlite_file_backend(dir.path()).await).await;
}

#[tokio::test]
async fn postgres_retention_keeps_the_chain_verifiable() {
    let (_pg, url) = pg().await;
    retention_keeps_the_chain_verifiable(pg_backend(&url).await).await;
}

#[tokio::test]
async fn statements_are_committed_before_their_future_resolves() {
    use crate::statement_log::{SessionLog, StatementDecision};
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start(sqlite_file_backend(dir.path()).await, signer(4), 1000, None)
        .await
        .unwrap();
    let session = SessionLog::new(Arc::new(log.clone()), "s-1", "alice", "pg-demo");
    let id = session
        .begin(
            "insert into t values (1)",
            'Q',
            StatementDecision::Allowed,
            None,
        )
        .await
        .unwrap();
    // Durable before the future resolved: in the journal file, on disk
    // (the page cache: it survives the broker being killed).
    let journaled = journal_bytes(dir.path());
    assert!(
        journaled.contains("insert into t values (1)"),
        "{journaled}"
    );
    assert!(journaled.contains("statement.allowed"), "{journaled}");
    // And a read of the log sees it at once.
    let seen = log.export().await.unwrap();
    let r = seen.records.iter().find(|r| r.seq == id).unwrap();
    assert_eq!(r.kind, "statement.allowed");
    assert_eq!(r.detail["sql"], "insert into t values (1)");
    assert_eq!(r.session.as_deref(), Some("s-1"));

    session.forwarded(id);
    session.masked("email");
    session.finish(Some(1), None);
    let blocked = session
        .begin(
            "drop table t",
            'Q',
            StatementDecision::Blocked,
            Some("no-destructive/drop".into()),
        )
        .await
        .unwrap();
    log.close().await;
    let records = log.export().await.unwrap().records;
    let outcome = records
        .iter()
        .find(|r| r.kind == "statement.outcome")
        .unwrap();
    assert_eq!(outcome.detail["statement"], id);
    assert_eq!(outcome.detail["rows"], 1);
    assert_eq!(
        outcome.detail["masked_columns"],
        serde_json::json!(["email"])
    );
    let b = records.iter().find(|r| r.seq == blocked).unwrap();
    assert_eq!(b.kind, "statement.blocked");
    assert_eq!(b.detail["rule"], "no-destructive/drop");
}

#[tokio::test]
async fn a_lone_outcome_is_committed_soon_without_a_later_statement() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start(sqlite_file_backend(dir.path()).await, signer(5), 1000, None)
        .await
        .unwrap();
    let seq = log.append(event("test.event", "alice", 0)).await.unwrap();
    log.append_nowait(event("test.lazy", "alice", 1));
    // It reaches the tables (a plain SQLite connection sees it) with no
    // close, no read through the log and no append after it: the writer
    // moves the journal into the tables on its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = rows_in_file(dir.path());
        if let Some((s, _)) = rows.iter().find(|(_, k)| k == "test.lazy") {
            assert_eq!(*s, seq + 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.close().await;
}

#[tokio::test]
async fn without_the_journal_appends_chain_onto_what_another_connection_left() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(sqlite_full_backend(dir.path()).await, 6, 1000, 3).await;
    // Behind the writer's back, the last record goes: the tip it remembers
    // is stale, and the next record must chain onto #2, not #3.
    rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE))
        .unwrap()
        .execute_batch("DELETE FROM audit_records WHERE seq = 3")
        .unwrap();
    assert_eq!(
        log.append(event("test.event", "alice", 3)).await.unwrap(),
        3
    );
    assert_eq!(log.verify().await.unwrap().unwrap().records, 3);
    log.close().await;
}

#[tokio::test]
async fn a_record_deleted_behind_the_journal_is_reported_by_verify() {
    // With the journal the broker's chain is its own: a record deleted from
    // the tables behind its back is not papered over but shows as deleted.
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(sqlite_file_backend(dir.path()).await, 6, 1000, 3).await;
    assert_eq!(log.verify().await.unwrap().unwrap().records, 3);
    rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE))
        .unwrap()
        .execute_batch("DELETE FROM audit_records WHERE seq = 3")
        .unwrap();
    assert_eq!(
        log.append(event("test.event", "alice", 3)).await.unwrap(),
        4
    );
    let err = log.verify().await.unwrap().unwrap_err().to_string();
    assert!(err.contains("record #3 was deleted"), "{err}");
    log.close().await;
}

#[tokio::test]
async fn journaled_records_survive_a_crash_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(sqlite_file_backend(dir.path()).await, 7, 5, 12).await;
    // The files as a kill -9 leaves them, taken while the log runs (no
    // close, no read): some records are still only in the journal.
    let crashed = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), crashed.path().join(entry.file_name())).unwrap();
    }
    // A write cut short at the end of a journal file.
    let j = crashed.path().join(journal::FILES[0]);
    let mut text = std::fs::read(&j).unwrap();
    text.extend_from_slice(b"{\"t\":\"r\",\"seq\":99,\"ti");
    std::fs::write(&j, text).unwrap();
    log.close().await;

    let reopened = AuditLog::start(
        sqlite_file_backend(crashed.path()).await,
        signer(7),
        5,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        reopened
            .append(event("test.event", "alice", 12))
            .await
            .unwrap(),
        13
    );
    let v = reopened.verify().await.unwrap().unwrap();
    assert_eq!(v.records, 13);
    assert_eq!(
        v.last_checkpoint.map(|c| c.0),
        Some(2),
        "checkpoints over #5 and #10"
    );
    // Moved into the tables, the journal files are empty again.
    assert_eq!(journal_bytes(crashed.path()), "");
    reopened.close().await;
    assert_eq!(rows_in_file(crashed.path()).len(), 13);
}

#[tokio::test]
async fn a_record_forged_into_the_tables_does_not_replace_the_brokers_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(sqlite_file_backend(dir.path()).await, 8, 1000, 3).await;
    log.verify().await.unwrap().unwrap();
    // Somebody inserts the next record before the broker's own is moved in.
    rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE))
        .unwrap()
        .execute_batch(
            "INSERT INTO audit_records
               (seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash)
             SELECT 4, time_ms, 'forged', actor, connection, session, detail, hash, hash
             FROM audit_records WHERE seq = 3",
        )
        .unwrap();
    assert_eq!(log.append(event("test.real", "alice", 3)).await.unwrap(), 4);
    let err = log.verify().await.unwrap().unwrap_err().to_string();
    assert!(err.contains("#4"), "{err}");
    // The broker's own record #4 is kept beside the journal.
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("audit-journal-conflict-"))
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(
        text.contains("test.real") && text.contains("\"seq\":4"),
        "{text}"
    );
    log.close().await;
}

/// This process's resident memory, bytes (Linux `VmRSS`).
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_verify_memory_does_not_grow_with_the_log() {
    const RECORDS: u64 = 25_000;
    const BOUND: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(sqlite::DB_FILE);
    // A log well over the bound: 25k records of 6 KiB each, written through
    // the backend in transactions of 1000.
    {
        let backend =
            sqlite::SqliteAuditBackend::open(&path, crate::config::AuditSynchronous::Full).unwrap();
        let sealer = Arc::new(Sealer::new(signer(9), 1000));
        let sql = "x".repeat(6 << 10);
        for batch in 0..RECORDS / 1000 {
            let records: Vec<NewRecord> = (0..1000)
                .map(|i| NewRecord {
                    detail: serde_json::json!({"sql": sql, "i": batch * 1000 + i}),
                    ..NewRecord::now("statement.allowed")
                })
                .collect();
            let s = sealer.clone();
            backend
                .append_blocking(Box::new(move |tip| s.seal(tip, records, false, now_ms())))
                .unwrap();
        }
    }
    // The file and its WAL (what a checkpoint has not moved yet).
    let log_bytes: u64 = [
        path.clone(),
        dir.path().join(format!("{}-wal", sqlite::DB_FILE)),
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).ok())
    .map(|m| m.len())
    .sum();
    assert!(log_bytes > 2 * BOUND, "the log is {log_bytes} bytes");
    let log = AuditLog::start(
        sqlite::SqliteAuditBackend::open(&path, crate::config::AuditSynchronous::Full)
            .unwrap()
            .into(),
        signer(9),
        1000,
        None,
    )
    .await
    .unwrap();

    // The export, read as the API sends it: every chunk dropped once read.
    let before = resident();
    let mut peak = before;
    let (mut records, mut chunks) = (0u64, log.export_stream());
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= export::CHUNK + export::CHECKPOINTS_PER_CHUNK + 2);
        records += chunk
            .iter()
            .filter(|l| matches!(l, hoop_shared::audit::ExportLine::Record(_)))
            .count() as u64;
        peak = peak.max(resident());
    }
    assert_eq!(records, RECORDS);
    eprintln!(
        "export: +{} MiB for a {} MiB log",
        (peak - before) >> 20,
        log_bytes >> 20
    );
    assert!(
        peak - before < BOUND,
        "the export grew memory by {} MiB for a {} MiB log",
        (peak - before) >> 20,
        log_bytes >> 20
    );

    // Verification streams too, and holds no more.
    let before = resident();
    let sampler = {
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
        let p = peak.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                p.fetch_max(resident(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        (peak, stop, handle)
    };
    let verified = log.verify().await.unwrap().unwrap();
    sampler.1.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.2.join().unwrap();
    assert_eq!(verified.records, RECORDS);
    let peak = sampler.0.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("verify: +{} MiB", (peak - before) >> 20);
    assert!(
        peak - before < BOUND,
        "verification grew memory by {} MiB for a {} MiB log",
        (peak - before) >> 20,
        log_bytes >> 20
    );
    log.close().await;
}
