//! Two `hoop-broker serve` processes on one PostgreSQL store, as behind a
//! load balancer (docs/deploy.md): a request made through broker A is
//! approved through B and used on A; a grant revoked through B ends the live
//! session on A with a FATAL saying so; a policy applied through B governs
//! A; and 4 writers on each broker for 10 s leave one audit chain that
//! verifies through either broker, with a statement record for every row.
//!
//! Identity: one external test issuer both brokers trust (the built-in
//! provider's device codes live in one broker's memory, so it does not fit
//! several brokers); people hand hoopctl their token in `HOOP_TOKEN`. The
//! brokers share the store, the config (same policy file) and one audit
//! signing key (B names A's key file), so the chain's checkpoints verify
//! against one pinned key.

use std::collections::HashSet;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoop_e2e::issuer::TestIssuer;
use hoop_e2e::*;
use hoop_shared::audit::Export;

/// sre connects directly; engineering needs one sre approval; admins may
/// change the policy and read the audit log.
const POLICY: &str = r#"groups = ["engineering", "sre", "admins"]
admins = ["admins"]

[[rules]]
name = "sre-direct"
connections = ["demo-pg"]
groups = ["sre"]
access = "allow"

[[rules]]
name = "engineering-jit"
connections = ["demo-pg"]
groups = ["engineering"]
access = "approval"
approvers = { groups = ["sre"] }
approvals = 1
default_duration = "15m"
max_duration = "1h"
"#;

/// Which broker a command goes to.
#[derive(Clone, Copy, Debug)]
enum Via {
    A,
    B,
}

/// One person: a hoopctl config dir per broker, one token from the issuer.
struct Person {
    a: User,
    b: User,
    token: String,
}

impl Person {
    fn hoopctl(&self, via: Via) -> Command {
        let user = match via {
            Via::A => &self.a,
            Via::B => &self.b,
        };
        let mut c = user.hoopctl();
        c.env("HOOP_TOKEN", &self.token);
        c
    }

    fn run(&self, via: Via, args: &[&str]) -> Run {
        let out = self.hoopctl(via).args(args).output().unwrap();
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

struct Pair {
    db: DemoDb,
    /// The store role's password.
    store_password: Secret,
    a: BrokerProcess,
    b: BrokerProcess,
    issuer: TestIssuer,
    _dir: tempfile::TempDir,
}

impl Pair {
    fn person(&self, name: &str, groups: &[&str]) -> Person {
        let mut claims = self.issuer.claims("hoopctl", &format!("person-{name}"));
        claims["preferred_username"] = name.into();
        claims["groups"] = groups.into();
        // Long enough for the slowest test on a loaded machine.
        claims["exp"] = (hoop_e2e::issuer::now() + 1800).into();
        let (a, b) = (User::new(name, &self.a), User::new(name, &self.b));
        a.configure();
        b.configure();
        Person {
            a,
            b,
            token: self.issuer.sign(&claims),
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- broker A ---\n{}\n--- broker B ---\n{}",
            self.a.log(),
            self.b.log()
        )
    }

    /// Runs `sql` as the superuser on the demo database; first column as text.
    fn demo_query(&self, sql: &str) -> Vec<String> {
        let login = self.db.pg.superuser("demo");
        let conninfo = format!(
            "host={} port={} user={} password={} dbname=demo",
            login.host,
            login.port,
            login.user,
            login.password.expose()
        );
        query(&self.db, &conninfo, sql)
    }
}

fn query(db: &DemoDb, conninfo: &str, sql: &str) -> Vec<String> {
    db.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = task.await;
        rows.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    })
}

/// One PostgreSQL holding the demo database and the brokers' store, then
/// broker A and broker B with the same config except the listen address
/// and data dir; B signs audit checkpoints with A's key.
fn pair() -> Pair {
    let db = DemoDb::start();
    let issuer = TestIssuer::start();
    let dir = tempfile::tempdir().unwrap();
    let q = |p: &std::path::Path| format!("{:?}", p.to_string_lossy());

    let store_password = Secret::generate(24);
    db.rt
        .block_on(db.pg.create_app_database("hoop", &store_password, "hoop"))
        .unwrap();
    let store_password_file = dir.path().join("store.password");
    std::fs::write(&store_password_file, store_password.expose()).unwrap();
    let demo_password_file = dir.path().join("demo-pg.password");
    std::fs::write(&demo_password_file, db.password.expose()).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();

    let c = db.connection("demo-pg", &["engineering"]);
    let config = format!(
        "policy_file = {}\n\
         connections = [{{ name = \"demo-pg\", type = \"postgres\", host = {:?}, port = {}, \
         database = \"demo\", user = \"app\", password_file = {} }}]\n\
         [store]\nurl = \"postgres://hoop@{}:{}/hoop\"\npassword_file = {}\n",
        q(&policy),
        c.host,
        c.port,
        q(&demo_password_file),
        db.pg.host(),
        db.pg.port(),
        q(&store_password_file),
    );
    let identity = format!(
        "[identity]\nissuer = {:?}\nclient_id = \"hoopctl\"\n",
        issuer.url()
    );
    let a = start_broker_config(&[], &config, &identity);
    // The same config; the audit signing key is A's (one key id to pin).
    let b = start_broker_config(
        &[],
        &format!(
            "{config}[audit]\nsigning_key_file = {}\n",
            q(&a.data_dir.join("audit-signing.key"))
        ),
        &identity,
    );
    assert_ne!(a.url, b.url);
    Pair {
        db,
        store_password,
        a,
        b,
        issuer,
        _dir: dir,
    }
}

/// alice asks through A (`--no-wait`): the request id.
fn request_via_a(alice: &Person, reason: &str) -> String {
    let r = alice.run(
        Via::A,
        &["connect", "demo-pg", "--reason", reason, "--no-wait"],
    );
    assert_eq!(r.code(), 3, "{r:#?}");
    r.stdout.trim().to_owned()
}

#[test]
fn a_request_made_through_a_is_approved_through_b_and_used_on_a() {
    let p = pair();
    let alice = p.person("alice", &["engineering"]);
    let bob = p.person("bob", &["sre"]);
    let carol = p.person("carol", &["admins"]);

    let id = request_via_a(&alice, "INC-7 through A");
    // B lists it (same store) and approves it.
    let r = bob.run(Via::B, &["approve", "list", "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.contains(&id), "B sees A's request: {r:#?}");
    let r = bob.run(Via::B, &["approve", &id, "--comment", "ok from B"]);
    r.assert_ok();

    // The grant works on A.
    let r = alice.run(
        Via::A,
        &[
            "connect",
            "demo-pg",
            "--request",
            &id,
            "--",
            "psql",
            "-tAc",
            "select 'on A under a grant from B'",
        ],
    );
    assert_eq!(r.code(), 0, "{r:#?}\n{}", p.logs());
    assert_eq!(r.stdout.trim(), "on A under a grant from B", "{r:#?}");
    // And on B too: one grant, whichever broker the balancer picks.
    let r = alice.run(
        Via::B,
        &["exec", "demo-pg", "--request", &id, "-c", "select 'on B'"],
    );
    r.assert_ok();
    assert!(r.stdout.contains("on B"), "{r:#?}");

    // A policy applied through B governs A within the poll interval:
    // engineering loses demo-pg entirely.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        POLICY.replace(
            "access = \"approval\"\napprovers = { groups = [\"sre\"] }\napprovals = 1\n\
             default_duration = \"15m\"\nmax_duration = \"1h\"\n",
            "access = \"deny\"\n",
        ),
    )
    .unwrap();
    let r = carol.run(
        Via::B,
        &["policy", "apply", "-f", &file.to_string_lossy(), "--yes"],
    );
    r.assert_ok();
    let denied = poll_until("A to enforce B's policy", Duration::from_secs(15), || {
        // Until then, A still opens sessions under alice's grant; a session
        // open while the change arrives is ended by it (the policy follows
        // open sessions), so wait for A to refuse the session itself.
        let r = alice.run(Via::A, &["exec", "demo-pg", "-c", "select 1"]);
        (r.code() != 0 && !r.stderr.contains("your session was ended")).then_some(r)
    });
    assert!(
        denied
            .stderr
            .contains("alice is not allowed to use demo-pg"),
        "{denied:#?}"
    );
    let r = carol.run(Via::A, &["policy", "get", "-o", "json"]);
    r.assert_ok();
    let info: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(info["version"], 2, "{r:#?}");
    assert_eq!(info["applied_by"], "carol", "{r:#?}");
    // A audited that it picked the change up.
    let r = carol.run(Via::A, &["audit", "list", "--kind", "policy", "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.contains("policy.reload"), "{r:#?}");
}

#[test]
fn a_grant_revoked_through_b_ends_the_live_session_on_a() {
    let p = pair();
    let alice = p.person("alice", &["engineering"]);
    let bob = p.person("bob", &["sre"]);
    let id = request_via_a(&alice, "INC-8");
    bob.run(Via::B, &["approve", &id]).assert_ok();

    // A psql session on A under the grant, busy for a minute.
    let mut session = alice
        .hoopctl(Via::A)
        .args([
            "connect",
            "demo-pg",
            "--request",
            &id,
            "--",
            "psql",
            "-tA",
            "-c",
            "select pg_sleep(60)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect(&mut session);
    poll_until("the session on A to run", Duration::from_secs(30), || {
        let n = p.demo_query(
            "select count(*) from pg_stat_activity \
             where query = 'select pg_sleep(60)' and pid <> pg_backend_pid()",
        );
        (n.first().map(String::as_str) == Some("1")).then_some(())
    });

    let revoked_at = Instant::now();
    let r = bob.run(
        Via::B,
        &["requests", "revoke", &id, "--reason", "incident closed"],
    );
    r.assert_ok();
    let status = poll_until("the session on A to end", Duration::from_secs(15), || {
        session.try_wait().unwrap()
    });
    let took = revoked_at.elapsed();
    let stderr = stderr.join().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("FATAL") && stderr.contains("revoked"),
        "psql is told why: {stderr}\n{}",
        p.logs()
    );
    // Default poll interval 1s: well under the 60 s the statement wanted.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The grant is dead on A too: no new session under it.
    let r = alice.run(
        Via::A,
        &["exec", "demo-pg", "--request", &id, "-c", "select 1"],
    );
    assert_ne!(r.code(), 0, "{r:#?}");
}

/// Reads a child's stderr to the end on a thread (stdout is discarded).
fn collect(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    })
}

/// Each writer inserts `(WRITER, 1)`, `(WRITER, 2)`, ... for 10 s.
const WRITER: &str = "i=0; while [ $SECONDS -lt 10 ]; do i=$((i+1)); \
    echo \"insert into writes values ('$WRITER', $i);\"; done | psql -q -X -v ON_ERROR_STOP=1";

#[test]
fn four_writers_on_each_broker_leave_one_chain_that_verifies() {
    let p = pair();
    let bob = p.person("bob", &["sre"]);
    let carol = p.person("carol", &["admins"]);
    bob.run(
        Via::A,
        &[
            "exec",
            "demo-pg",
            "-c",
            "create table writes (writer text, n int)",
        ],
    )
    .assert_ok();

    let mut writers: Vec<(String, Child)> = Vec::new();
    for via in [Via::A, Via::B] {
        for i in 0..4 {
            let tag = format!("{via:?}{i}");
            let child = bob
                .hoopctl(via)
                .env("WRITER", &tag)
                .args([
                    "connect", "demo-pg", "--reason", "writers", "--", "bash", "-c", WRITER,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            writers.push((tag, child));
        }
    }
    for (tag, mut child) in writers {
        let status = wait_deadline(&mut child, Duration::from_secs(180));
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        assert!(status.success(), "writer {tag}: {status:?} {err}");
    }
    let rows = p.demo_query("select writer || ' ' || n from writes");
    let per_writer: HashSet<&str> = rows
        .iter()
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert_eq!(per_writer.len(), 8, "every writer wrote: {per_writer:?}");
    assert!(rows.len() >= 80, "{} rows", rows.len());

    // The chain verifies through either broker and counts every statement.
    for via in [Via::A, Via::B] {
        let r = carol.run(via, &["audit", "verify"]);
        assert_eq!(r.code(), 0, "verify via {via:?}: {r:#?}\n{}", p.logs());
        let n: usize = r
            .stdout
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a count first: {r:#?}"));
        assert!(
            n > rows.len(),
            "{n} records for {} rows: {r:#?}",
            rows.len()
        );
    }

    // Exports through A and B are the same chain: A's is a prefix of B's
    // (B's export comes later, after A's `audit.export` record).
    let dir = tempfile::tempdir().unwrap();
    let export = |via: Via| {
        let file = dir.path().join(format!("{via:?}.jsonl"));
        carol
            .run(via, &["audit", "export", "-o", &file.to_string_lossy()])
            .assert_ok();
        (
            file.clone(),
            Export::parse(&std::fs::read_to_string(&file).unwrap()).unwrap(),
        )
    };
    let (_, from_a) = export(Via::A);
    let (b_file, from_b) = export(Via::B);
    assert!(from_a.records.len() <= from_b.records.len());
    for (x, y) in from_a.records.iter().zip(&from_b.records) {
        assert_eq!((x.seq, &x.hash), (y.seq, &y.hash), "the same chain");
    }
    let tail: Vec<&str> = from_b.records[from_a.records.len()..]
        .iter()
        .map(|r| r.kind.as_str())
        .collect();
    assert!(
        tail.iter().all(|k| k.starts_with("audit.")),
        "only export records after A's export: {tail:?}"
    );
    // Every row has its statement record, from whichever broker carried it.
    let recorded: HashSet<String> = from_b
        .records
        .iter()
        .filter(|r| r.kind == "statement.allowed")
        .filter_map(|r| r.detail["sql"].as_str())
        .map(|s| s.trim().trim_end_matches(';').to_owned())
        .collect();
    for row in &rows {
        let (w, n) = row.split_once(' ').unwrap();
        let sql = format!("insert into writes values ('{w}', {n})");
        assert!(recorded.contains(&sql), "no statement record for row {row}");
    }
    // One signing key for both brokers: pinned, the export verifies offline.
    let api = Api::new(&p.a);
    let (status, keys) = api.request("GET", "/v1/audit/keys", None, None);
    assert_eq!(status, 200, "{keys}");
    let key = keys["current"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(from_b.keys.len(), 1, "one key: {:?}", from_b.keys);
    let r = carol.run(
        Via::B,
        &[
            "audit",
            "verify",
            "--file",
            &b_file.to_string_lossy(),
            "--key",
            &key,
        ],
    );
    assert_eq!(r.code(), 0, "{r:#?}");
    // The store's credential is in no broker's log.
    assert!(
        !p.logs().contains(p.store_password.expose()),
        "the store password was logged"
    );
}
