//! The tamper-evident audit log end to end, on both backends (SQLite in the
//! broker's data dir, and PostgreSQL): `hoopctl audit verify` passes on an
//! untouched log and names the record when one stored record is modified,
//! deleted, swapped with another or inserted (edited directly in the
//! database); an export verifies offline and an edited export does not;
//! only admins and auditors may read the log; and after the broker is
//! killed (-9) in the middle of a session inserting rows in a loop, the log
//! still verifies and every row the database has has its statement record.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_e2e::*;
use hoop_shared::audit::{Export, RecordFields, canonical_json, parse_hash, record_hash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where the records are stored, for editing them behind the broker's back.
enum Store {
    Sqlite(PathBuf),
    Postgres(String),
}

struct Setup {
    db: DemoDb,
    broker: BrokerProcess,
    alice: User,
    carol: User,
    store: Store,
    _dir: tempfile::TempDir,
}

const IDENTITY: &str = "[identity.builtin]\npoll_interval = \"1s\"\nusers = [\n  \
     { name = \"alice\", groups = [\"engineering\"] },\n  \
     { name = \"carol\", groups = [\"auditors\"] },\n]\n";

/// A demo database, a broker writing its audit log to `backend` with a
/// checkpoint every 5 records, alice (engineering) and carol (auditor)
/// logged in.
fn setup(backend: Backend) -> Setup {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("demo-pg.password");
    std::fs::write(&password_file, db.password.expose()).unwrap();
    let c = db.connection("demo-pg", &["engineering"]);
    let q = |s: &str| format!("{s:?}");
    let mut extra = format!(
        "connections = [{{ name = \"demo-pg\", type = \"postgres\", host = {}, port = {}, \
         database = \"demo\", user = \"app\", password_file = {}, allow_groups = [\"engineering\"] }}]\n\
         [audit]\ncheckpoint_every = 5\n",
        q(&c.host),
        c.port,
        q(&password_file.to_string_lossy()),
    );
    let pg_store = (backend == Backend::Postgres).then(|| {
        let password = Secret::generate(24);
        db.rt
            .block_on(db.pg.create_app_database("hoop_audit", &password, "audit"))
            .unwrap();
        let file = dir.path().join("audit.password");
        std::fs::write(&file, password.expose()).unwrap();
        extra.push_str(&format!(
            "store = \"postgres://hoop_audit@{}:{}/audit\"\npassword_file = {}\n",
            db.pg.host(),
            db.pg.port(),
            q(&file.to_string_lossy())
        ));
        format!(
            "host={} port={} user=hoop_audit password={} dbname=audit",
            db.pg.host(),
            db.pg.port(),
            password.expose()
        )
    });
    let broker = start_broker_config(&[], &extra, IDENTITY);
    let store = match pg_store {
        Some(url) => Store::Postgres(url),
        None => Store::Sqlite(broker.data_dir.join("hoop.sqlite3")),
    };
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let carol = User::new("carol", &broker);
    carol.login().assert_ok();
    Setup {
        db,
        broker,
        alice,
        carol,
        store,
        _dir: dir,
    }
}

impl Store {
    fn exec(&self, db: &DemoDb, sql: &str) {
        match self {
            Store::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Store::Postgres(url) => db.rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                let _ = task.await;
            }),
        }
    }

    /// The first column of `sql`'s rows, as text.
    fn strings(&self, db: &DemoDb, sql: &str) -> Vec<String> {
        match self {
            Store::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                stmt.query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Store::Postgres(url) => db.rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                let rows = client.query(sql, &[]).await.unwrap();
                drop(client);
                let _ = task.await;
                rows.iter().map(|r| r.get::<_, String>(0)).collect()
            }),
        }
    }
}

/// Some security events: token refusals, and alice running a statement.
fn make_events(s: &Setup, refusals: usize) {
    let api = Api::new(&s.broker);
    for _ in 0..refusals {
        let (status, _) = api.request("GET", "/v1/me", None, None);
        assert_eq!(status, 401);
    }
    s.alice
        .run(&[
            "exec",
            "demo-pg",
            "--reason",
            "audit e2e",
            "-c",
            "select 42",
        ])
        .assert_ok();
}

/// `hoopctl audit verify` as carol: (exit code, all output).
fn verify(s: &Setup) -> (i32, String) {
    let r = s.carol.run(&["audit", "verify"]);
    (r.code(), r.all())
}

fn assert_intact(s: &Setup) -> u64 {
    let (code, out) = verify(s);
    assert_eq!(code, 0, "{out}\n{}", s.broker.log());
    let n: u64 = out
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a count first: {out}"));
    assert!(out.contains(" records intact, last checkpoint #"), "{out}");
    n
}

fn assert_tampered(s: &Setup, expected: &str) {
    let (code, out) = verify(s);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains(expected), "expected {expected:?} in: {out}");
}

fn tamper_tests(backend: Backend) {
    let mut s = setup(backend);
    make_events(&s, 10);
    let n = assert_intact(&s);
    assert!(n >= 12, "{n} records");

    // A clean stop signs a checkpoint over the last record it wrote.
    s.broker.restart(false);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("after-restart.jsonl");
    s.carol
        .run(&["audit", "export", "-o", &file.to_string_lossy()])
        .assert_ok();
    let export = Export::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let restart = export
        .records
        .iter()
        .rposition(|r| r.kind == "broker.start")
        .unwrap();
    let last_of_first_run = &export.records[restart - 1];
    assert!(
        export
            .checkpoints
            .iter()
            .any(|c| c.seq == last_of_first_run.seq && c.hash == last_of_first_run.hash),
        "no shutdown checkpoint over #{}",
        last_of_first_run.seq
    );

    // Only admins and auditors read the log.
    let r = s.alice.run(&["audit", "list"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("auditor"), "{}", r.stderr);

    // list: filters, and JSON that parses.
    let r = s
        .carol
        .run(&["audit", "list", "--kind", "token.refused", "-o", "json"]);
    r.assert_ok();
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let records = list["records"].as_array().unwrap();
    assert_eq!(records.len(), 10, "{}", r.stdout);
    assert!(records.iter().all(|r| r["kind"] == "token.refused"));
    // Each token's first use is a record (its "login" at this broker), once
    // per token and broker run however often it is used: alice's exec and
    // carol's verify before the restart, alice's list and carol's export
    // after it (carol ran more commands than that).
    let r = s
        .carol
        .run(&["audit", "list", "--kind", "token.accepted", "-o", "json"]);
    r.assert_ok();
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut actors: Vec<&str> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    actors.sort_unstable();
    assert_eq!(actors, ["alice", "alice", "carol", "carol"], "{}", r.stdout);
    let first = &list["records"][0]["detail"];
    assert!(
        first["iss"].as_str().unwrap().starts_with("http"),
        "{first}"
    );
    assert!(first["expires_at"].as_u64().is_some(), "{first}");
    let r = s
        .carol
        .run(&["audit", "list", "--user", "alice", "--since", "1h"]);
    r.assert_ok();
    assert!(r.stdout.contains("session.open"), "{}", r.stdout);
    assert!(!r.stdout.contains("token.refused"), "{}", r.stdout);

    // Modified: one field of one record.
    s.store.exec(
        &s.db,
        "UPDATE audit_records SET kind = kind || 'x' WHERE seq = 3",
    );
    assert_tampered(&s, "record #3 was modified");
    s.store.exec(
        &s.db,
        "UPDATE audit_records SET kind = substr(kind, 1, length(kind) - 1) WHERE seq = 3",
    );
    assert_intact(&s);

    // Deleted.
    s.store.exec(
        &s.db,
        "CREATE TABLE audit_hold AS SELECT * FROM audit_records WHERE seq = 4;
         DELETE FROM audit_records WHERE seq = 4;",
    );
    assert_tampered(&s, "record #4 was deleted");
    s.store.exec(
        &s.db,
        "INSERT INTO audit_records SELECT * FROM audit_hold; DROP TABLE audit_hold;",
    );
    assert_intact(&s);

    // Swapped: records 5 and 6 exchange places.
    let swap = "UPDATE audit_records SET seq = -5 WHERE seq = 5;
                UPDATE audit_records SET seq = 5 WHERE seq = 6;
                UPDATE audit_records SET seq = 6 WHERE seq = -5;";
    s.store.exec(&s.db, swap);
    assert_tampered(&s, "record #5 was reordered");
    s.store.exec(&s.db, swap);
    let before_insert = assert_intact(&s);

    // Exported, the log verifies offline (with its key pinned); edited, not.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_string_lossy().into_owned();
    s.carol
        .run(&["audit", "export", "-o", &file_arg])
        .assert_ok();
    let text = std::fs::read_to_string(&file).unwrap();
    let export = Export::parse(&text).unwrap();
    assert!(export.records.len() as u64 > before_insert);
    let key = export.keys[0].key_id.clone();
    let offline = User::new("nobody", &s.broker); // never logged in, no broker needed
    let r = offline.run(&["audit", "verify", "--file", &file_arg, "--key", &key]);
    r.assert_ok();
    assert!(
        r.stdout.contains(&format!("signed by {key}")),
        "{}",
        r.stdout
    );
    let r = offline.run(&[
        "audit",
        "verify",
        "--file",
        &file_arg,
        "--key",
        "0000000000000000",
    ]);
    assert_eq!(r.code(), 4, "{}", r.all());
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(
        &edited,
        text.replacen(
            "\"kind\":\"token.refused\"",
            "\"kind\":\"token.accepted\"",
            1,
        ),
    )
    .unwrap();
    let r = offline.run(&["audit", "verify", "--file", &edited.to_string_lossy()]);
    assert_eq!(r.code(), 4, "{}", r.all());
    assert!(r.stderr.contains("was modified"), "{}", r.stderr);

    // Inserted (last: it renumbers what follows): a properly chained forgery
    // after record #6, the records after it shifted up by one.
    let hash6 = s
        .store
        .strings(&s.db, "SELECT hash FROM audit_records WHERE seq = 6")
        .remove(0);
    let prev = parse_hash(&hash6).unwrap();
    let detail = canonical_json(&serde_json::json!({}));
    let forged = record_hash(&RecordFields {
        seq: 7,
        time: 1_700_000_000_000,
        kind: "session.open",
        actor: Some("mallory"),
        connection: None,
        session: None,
        detail_canonical: &detail,
        prev_hash: &prev,
    });
    s.store.exec(
        &s.db,
        &format!(
            "UPDATE audit_records SET seq = -(seq + 1) WHERE seq > 6;
             UPDATE audit_records SET seq = -seq WHERE seq < 0;
             INSERT INTO audit_records (seq, time_ms, kind, actor, connection, session, detail, prev_hash, hash)
             VALUES (7, 1700000000000, 'session.open', 'mallory', NULL, NULL, '{detail}', '{hash6}', '{}');",
            hex::encode(forged)
        ),
    );
    assert_tampered(&s, "record #7 was inserted");
}

#[test]
fn tampering_is_detected_and_named_sqlite() {
    tamper_tests(Backend::Sqlite);
}

#[test]
fn tampering_is_detected_and_named_postgres() {
    tamper_tests(Backend::Postgres);
}

/// Rows in `crash_log`, as the database itself has them.
fn crash_rows(db: &DemoDb) -> Vec<i32> {
    let password = db.password.expose().to_owned();
    let (host, port) = (db.pg.host().to_owned(), db.pg.port());
    db.rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(
            &format!("host={host} port={port} user=app password={password} dbname=demo"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        let task = tokio::spawn(conn);
        let rows = client
            .query("SELECT n FROM crash_log ORDER BY n", &[])
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
        rows.iter().map(|r| r.get(0)).collect()
    })
}

fn crash_test(backend: Backend) {
    let mut s = setup(backend);
    s.alice
        .run(&[
            "exec",
            "demo-pg",
            "--reason",
            "e2e",
            "-c",
            "CREATE TABLE crash_log (n int)",
        ])
        .assert_ok();
    let mut session = s
        .alice
        .hoopctl()
        .args([
            "connect",
            "demo-pg",
            "--reason",
            "crash test",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); echo \"insert into crash_log values ($i);\"; done | psql -q -X",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while crash_rows(&s.db).len() < 200 {
        assert!(
            Instant::now() < deadline,
            "the loop did not get going:\n{}",
            s.broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.broker.restart(true);
    wait_deadline(&mut session, Duration::from_secs(30));

    assert_intact(&s);
    let rows = crash_rows(&s.db);
    assert!(rows.len() >= 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    s.carol
        .run(&["audit", "export", "-o", &file.to_string_lossy()])
        .assert_ok();
    let export = Export::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let recorded: std::collections::HashSet<String> = export
        .records
        .iter()
        .filter(|r| r.kind.starts_with("statement.") && r.kind != "statement.outcome")
        .filter_map(|r| r.detail["sql"].as_str().map(str::to_owned))
        .collect();
    for n in rows {
        let sql = format!("insert into crash_log values ({n})");
        assert!(
            recorded
                .iter()
                .any(|r| r.trim().trim_end_matches(';') == sql),
            "row {n} is in the database but its statement is not in the audit log"
        );
    }
}

#[test]
fn after_kill_9_the_log_verifies_and_every_row_has_its_statement_sqlite() {
    crash_test(Backend::Sqlite);
}

#[test]
fn after_kill_9_the_log_verifies_and_every_row_has_its_statement_postgres() {
    crash_test(Backend::Postgres);
}
