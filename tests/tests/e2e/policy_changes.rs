//! A policy change reaches sessions that are already open (issue #13, item
//! 2): a policy that no longer allows a user ends their open sessions with
//! the reason and refuses their new tunnels; a change of guardrail sets
//! applies to an open session's next statement. Real psql through
//! `hoopctl connect`, the policy changed with `hoopctl policy apply`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hoop_e2e::*;

const ALLOW: &str = "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n\n\
    [[rules]]\nname = \"eng\"\nconnections = [\"demo-pg\"]\ngroups = [\"engineering\"]\n\
    access = \"allow\"\n";

const ALLOW_GUARDED: &str = "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n\n\
    [[rules]]\nname = \"eng\"\nconnections = [\"demo-pg\"]\ngroups = [\"engineering\"]\n\
    access = \"allow\"\nguardrails = [\"no-destructive\"]\n";

/// engineering (alice) is no longer named: the policy denies her.
const SRE_ONLY: &str = "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n\n\
    [[rules]]\nname = \"sre-only\"\nconnections = [\"demo-pg\"]\ngroups = [\"sre\"]\n\
    access = \"allow\"\n";

/// A demo broker whose policy file says `policy`; alice (engineering) and
/// bob (sre, the policy admin) logged in.
/// The dirs returned hold the policy files and the connection's password
/// file; they must outlive the broker.
fn world(policy: &str) -> (DemoDb, BrokerProcess, User, User, [tempfile::TempDir; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, policy).unwrap();
    let (db, broker, conn_dir) =
        start_demo_broker("", &format!("policy_file = {:?}", file.to_string_lossy()));
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();
    (db, broker, alice, bob, [dir, conn_dir])
}

/// bob applies `policy` with `hoopctl policy apply`.
fn apply(bob: &User, dir: &Path, policy: &str) {
    let file = dir.join("next.toml");
    std::fs::write(&file, policy).unwrap();
    let r = bob.run(&["policy", "apply", "-f", file.to_str().unwrap(), "--yes"]);
    r.assert_ok();
}

/// `hoopctl connect demo-pg -- psql` reading statements from a pipe, its
/// stderr lines readable as they come.
struct Psql {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Psql {
    fn start(user: &User) -> Psql {
        let mut child = user
            .hoopctl()
            .args(["connect", "demo-pg", "--", "psql", "-X", "-tA"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let err = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Psql {
            child,
            stdin,
            stderr,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (at most 30 s) for a stderr line containing `needle`
    /// (`\warn` writes to stderr, unbuffered).
    fn wait_for_stderr(&mut self, needle: &str) {
        poll_until(
            &format!("psql stderr {needle:?}"),
            Duration::from_secs(30),
            || {
                while let Ok(line) = self.stderr.try_recv() {
                    self.seen.push(line);
                }
                self.seen.iter().any(|l| l.contains(needle)).then_some(())
            },
        );
    }

    /// Closes stdin and waits (at most `limit`) for the end: the run and
    /// every stderr line.
    fn finish(mut self, limit: Duration) -> Run {
        drop(self.stdin.take());
        let status = wait_deadline(&mut self.child, limit);
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            use std::io::Read as _;
            let _ = out.read_to_string(&mut stdout);
        }
        // The reader thread ends with the pipe.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        Run {
            status,
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}

#[test]
fn a_policy_that_denies_ends_open_sessions_and_refuses_new_tunnels() {
    let (_db, _broker, alice, bob, dirs) = world(ALLOW);

    // An open session running a long statement, and a second session whose
    // hoopctl listens for more local connections.
    let mut psql = Psql::start(&alice);
    psql.send("select 1;\n\\warn live\nselect pg_sleep(30);\n");
    psql.wait_for_stderr("live");
    let tunnel = open_tunnel(&alice, "demo-pg");

    let started = Instant::now();
    apply(&bob, dirs[0].path(), SRE_ONLY);

    // The open session ends with the reason, long before pg_sleep(30) is over.
    let run = psql.finish(Duration::from_secs(25));
    assert_ne!(run.code(), 0, "{run:#?}");
    assert!(
        run.stderr.contains("FATAL")
            && run
                .stderr
                .contains("the policy no longer allows alice to use demo-pg"),
        "{run:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the session outlived the policy that denies it: {:?}",
        started.elapsed()
    );

    // A new local connection through the session opened before the change
    // needs a new tunnel: refused, and psql says why.
    let (host, port) = tunnel.addr.split_once(':').unwrap();
    let out = std::process::Command::new("psql")
        .args([
            "-X", "-tA", "-h", host, "-p", port, "-U", "app", "-d", "demo",
        ])
        .args(["-c", "select 'through-the-old-session'"])
        .env("PGPASSWORD", &tunnel.secret)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:#?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("through-the-old-session"),
        "{out:#?}"
    );
    assert!(
        stderr.contains("the policy no longer allows alice to use demo-pg"),
        "{stderr}"
    );

    // And a new session is refused by the policy as before.
    let r = alice.run(&["connect", "demo-pg", "--", "psql", "-tAc", "select 1"]);
    assert_ne!(r.code(), 0, "{r:#?}");
    assert!(r.stderr.contains("not allowed to use demo-pg"), "{r:#?}");
}

#[test]
fn new_guardrail_sets_apply_to_an_open_sessions_next_statement() {
    let (db, _broker, alice, bob, dirs) = world(ALLOW);
    let count = || {
        db.rt.block_on(async {
            let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser("demo"))
                .await
                .unwrap();
            let rows = c.simple_query("select count(*) from orders").await.unwrap();
            c.close().await;
            rows
        })
    };
    let before = count();

    let mut psql = Psql::start(&alice);
    psql.send("select 1;\n\\warn opened\n");
    psql.wait_for_stderr("opened");

    apply(&bob, dirs[0].path(), ALLOW_GUARDED);

    // The same session: the next statement meets the new guardrails, and
    // the session goes on after the refusal.
    psql.send("DROP TABLE orders;\nselect 'still-open';\n");
    let run = psql.finish(Duration::from_secs(30));
    assert!(
        run.stderr
            .contains("hoop: blocked by guardrail \"no-destructive\" rule \"drop\""),
        "{run:#?}"
    );
    assert!(run.stdout.contains("still-open"), "{run:#?}");
    assert_eq!(count(), before);
}
