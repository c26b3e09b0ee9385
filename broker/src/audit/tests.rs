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

async fn pg_backend(url: &str) -> Arc<dyn AuditBackend> {
    Arc::new(postgres::PgAuditBackend::connect(url, None).await.unwrap())
}

async fn sqlite_file_backend(dir: &std::path::Path) -> Arc<dyn AuditBackend> {
    Arc::new(
        sqlite::SqliteAuditBackend::open(
            &dir.join(sqlite::DB_FILE),
            crate::config::AuditSynchronous::Normal,
        )
        .unwrap(),
    )
}

async fn appends_chain_and_checkpoint(backend: Arc<dyn AuditBackend>) {
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
async fn concurrent_writers_form_one_chain(a: Arc<dyn AuditBackend>, b: Arc<dyn AuditBackend>) {
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
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers_form_one_chain(
        sqlite_file_backend(dir.path()).await,
        sqlite_file_backend(dir.path()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_form_one_chain() {
    let (_pg, url) = pg().await;
    concurrent_writers_form_one_chain(pg_backend(&url).await, pg_backend(&url).await).await;
}

async fn retention_keeps_the_chain_verifiable(backend: Arc<dyn AuditBackend>) {
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
    use crate::record::{SessionLog, StatementDecision};
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
    // Committed: a second connection to the file sees it.
    let other = sqlite::SqliteAuditBackend::open(
        &dir.path().join(sqlite::DB_FILE),
        crate::config::AuditSynchronous::Normal,
    )
    .unwrap();
    let seen = other.export().await.unwrap();
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
    // Another connection to the file sees it, with no close and no append
    // after it.
    let other = sqlite::SqliteAuditBackend::open(
        &dir.path().join(sqlite::DB_FILE),
        crate::config::AuditSynchronous::Normal,
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let records = other.export().await.unwrap().records;
        if let Some(r) = records.iter().find(|r| r.kind == "test.lazy") {
            assert_eq!(r.seq, seq + 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.close().await;
}

#[tokio::test]
async fn appends_chain_onto_what_another_connection_left() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start(sqlite_file_backend(dir.path()).await, signer(6), 1000, None)
        .await
        .unwrap();
    for i in 0..3 {
        log.append(event("test.event", "alice", i)).await.unwrap();
    }
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
