//! Just-in-time access and policy administration as people meet them: the
//! real `hoopctl` (one `HOOP_CONFIG_DIR` per person, each logged in through
//! the built-in identity provider) against the real broker and PostgreSQL.
//!
//! alice is in `engineering`, bob in `sre` (the approvers), carol in
//! `admins` (may change the policy). The policy file is written here and
//! named by the broker's `policy_file`.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hoop_e2e::*;

const IDENTITY: &str = "[identity.builtin]\npoll_interval = \"1s\"\nusers = [\n  \
     { name = \"alice\", groups = [\"engineering\"] },\n  \
     { name = \"bob\", groups = [\"sre\"] },\n  \
     { name = \"carol\", groups = [\"admins\"] },\n]\n";

/// `demo-pg`: engineering with a reason and one sre approval; sre directly.
/// `demo-pg-short`: engineering with one sre approval, grants of 2 seconds.
const POLICY: &str = r#"groups = ["engineering", "sre", "admins"]
admins = ["admins"]

[[rules]]
name = "sre-direct"
connections = ["demo-pg", "demo-pg-short"]
groups = ["sre"]
access = "allow"

[[rules]]
name = "engineering-jit"
connections = ["demo-pg"]
groups = ["engineering"]
access = "approval"
justification = true
approvers = { groups = ["sre"] }
approvals = 1
default_duration = "15m"
max_duration = "1h"

[[rules]]
name = "engineering-short"
connections = ["demo-pg-short"]
groups = ["engineering"]
access = "approval"
approvers = { groups = ["sre"] }
approvals = 1
default_duration = "2s"
max_duration = "2s"
"#;

struct World {
    _db: DemoDb,
    _broker: BrokerProcess,
    alice: User,
    bob: User,
    carol: User,
    dir: tempfile::TempDir,
}

/// A demo database behind `demo-pg` and `demo-pg-short`, a broker enforcing
/// [`POLICY`], and alice, bob and carol logged in.
fn world() -> World {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let broker = start_broker_config(
        &[
            db.connection("demo-pg", &["engineering"]),
            db.connection("demo-pg-short", &["engineering"]),
        ],
        &format!("policy_file = {:?}\n", policy.to_string_lossy()),
        IDENTITY,
    );
    let login = |name: &str| {
        let u = User::new(name, &broker);
        u.login().assert_ok();
        u
    };
    World {
        alice: login("alice"),
        bob: login("bob"),
        carol: login("carol"),
        _db: db,
        _broker: broker,
        dir,
    }
}

/// A hoopctl running in the background, its output collected.
struct Background {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    stderr_lines: mpsc::Receiver<String>,
}

fn spawn(mut cmd: Command) -> Background {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = child.stderr.take().unwrap();
    let (tx, stderr_lines) = mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Background {
        child,
        stdout,
        stderr,
        stderr_lines,
    }
}

impl Background {
    /// Waits until a stderr line starts with `prefix` (panics after 30 s).
    fn wait_for_stderr(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no stderr line starting with {prefix:?}"));
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line starting with {prefix:?}: {e}"),
            }
        }
    }

    /// Waits (at most `limit`, then kills) and returns what it printed.
    fn finish(mut self, limit: Duration) -> Run {
        let status = wait_deadline(&mut self.child, limit);
        Run {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"))
}

/// Polls `bob`'s `hoopctl approve list -o json` until a request with
/// `reason` (any, when None) from alice shows up; returns it.
fn wait_for_request(bob: &User, connection: &str, reason: Option<&str>) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = bob.run(&["approve", "list", "-o", "json"]);
        r.assert_ok();
        let list = json(&r);
        let found = list["requests"].as_array().unwrap().iter().find(|q| {
            q["connection"] == connection
                && reason.is_none_or(|want| q["reason"].as_str() == Some(want))
        });
        if let Some(q) = found {
            return q.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no request on {connection} appeared for bob: {r:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn alice_waits_bob_approves_and_her_command_runs() {
    let w = world();

    // Without a terminal and without --reason, hoopctl says how to give one.
    let r = w
        .alice
        .run(&["connect", "demo-pg", "--", "psql", "-tAc", "select 1"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("justification"), "{r:#?}");
    assert!(r.stderr.contains("--reason"), "{r:#?}");
    // exec never prompts: the same clear error.
    let r = w.alice.run(&["exec", "demo-pg", "-c", "select 1"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("--reason"), "{r:#?}");

    // alice asks and waits in the background.
    let mut cmd = w.alice.hoopctl();
    cmd.args([
        "connect",
        "demo-pg",
        "--reason",
        "INC-42 investigate",
        "--",
        "psql",
        "-tAc",
        "select 1",
    ]);
    let waiting = spawn(cmd);

    // The request reaches bob, with who asked, why and for how long.
    let request = wait_for_request(&w.bob, "demo-pg", Some("INC-42 investigate"));
    let id = request["id"].as_str().unwrap().to_owned();
    assert_eq!(request["requester"], "alice");
    assert_eq!(request["duration_secs"], 900);
    assert_eq!(request["approvals_needed"], 1);
    let table = w.bob.run(&["approve", "list"]);
    table.assert_ok();
    assert!(
        table.stdout.starts_with("ID ") && table.stdout.contains("REQUESTER"),
        "{table:#?}"
    );
    assert!(
        table.stdout.contains(&id)
            && table.stdout.contains("alice")
            && table.stdout.contains("INC-42 investigate")
            && table.stdout.contains("0/1"),
        "{table:#?}"
    );

    // alice may not approve her own request; nothing changes.
    let r = w.alice.run(&["approve", &id]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("own access request"), "{r:#?}");
    assert!(r.stderr.contains("hint:"), "{r:#?}");
    let r = w.alice.run(&["requests", "show", &id, "-o", "json"]);
    r.assert_ok();
    assert_eq!(json(&r)["state"], "pending", "{r:#?}");

    // bob approves; alice's psql then runs and prints 1.
    let r = w.bob.run(&["approve", &id, "--comment", "ok for INC-42"]);
    r.assert_ok();
    assert!(
        r.stdout.contains(&format!(
            "Approved access request {id}: alice may use demo-pg"
        )),
        "{r:#?}"
    );
    let done = waiting.finish(Duration::from_secs(60));
    assert_eq!(done.code(), 0, "{done:#?}");
    assert_eq!(done.stdout.trim(), "1", "{done:#?}");
    assert!(done.stderr.contains(&id), "{done:#?}");
    assert!(
        done.stderr.contains("group sre"),
        "who can approve: {done:#?}"
    );
    assert!(
        done.stderr.contains("Approved by bob (ok for INC-42)"),
        "{done:#?}"
    );

    // A second decision on a decided request is refused.
    let r = w.bob.run(&["deny", &id, "--reason", "changed my mind"]);
    assert_eq!(r.code(), 1, "{r:#?}");

    // While the grant runs, connecting again uses it: no new request.
    let r = w
        .alice
        .run(&["connect", "demo-pg", "--", "psql", "-tAc", "select 2"]);
    assert_eq!(r.code(), 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "2", "{r:#?}");
    let mine = w.alice.run(&["requests", "-o", "json"]);
    mine.assert_ok();
    assert_eq!(
        json(&mine)["requests"].as_array().unwrap().len(),
        1,
        "{mine:#?}"
    );
    let listing = w.alice.run(&["requests"]);
    listing.assert_ok();
    assert!(listing.stdout.contains("approved ("), "{listing:#?}");

    // bob revokes the grant; from then on alice needs a new request.
    let r = w
        .bob
        .run(&["requests", "revoke", &id, "--reason", "incident closed"]);
    r.assert_ok();
    assert!(r.stdout.contains("Revoked"), "{r:#?}");

    // --no-wait: the new request's id alone on stdout, exit status 3.
    let r = w.alice.run(&[
        "connect",
        "demo-pg",
        "--reason",
        "INC-43 follow-up",
        "--no-wait",
        "--",
        "psql",
        "-tAc",
        "select 1",
    ]);
    assert_eq!(r.code(), 3, "{r:#?}");
    let pending = r.stdout.trim().to_owned();
    assert_eq!(r.stdout.lines().count(), 1, "{r:#?}");
    assert_ne!(pending, id);
    assert!(r.stderr.contains("--request"), "{r:#?}");
    // Asking the same again is the same request, not a second one.
    let again = w.alice.run(&[
        "connect",
        "demo-pg",
        "--reason",
        "INC-43 follow-up",
        "--no-wait",
    ]);
    assert_eq!(again.code(), 3, "{again:#?}");
    assert_eq!(again.stdout.trim(), pending, "{again:#?}");

    // Ctrl-C while waiting, without a terminal to ask on, cancels the request.
    let mut cmd = w.alice.hoopctl();
    cmd.args([
        "connect",
        "demo-pg",
        "--reason",
        "INC-45 maybe",
        "--",
        "psql",
    ]);
    let waiting = spawn(cmd);
    // This line is printed once hoopctl handles Ctrl-C itself.
    let line = waiting.wait_for_stderr("Waiting for approval of request ");
    let interrupted = line
        .trim_start_matches("Waiting for approval of request ")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(waiting.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let done = waiting.finish(Duration::from_secs(30));
    assert_eq!(done.code(), 130, "{done:#?}");
    assert!(
        done.stderr
            .contains(&format!("Cancelled access request {interrupted}")),
        "{done:#?}"
    );
    let r = w
        .alice
        .run(&["requests", "show", &interrupted, "-o", "json"]);
    r.assert_ok();
    assert_eq!(json(&r)["state"], "cancelled", "{r:#?}");

    // exec waits up to --wait; bob denies; exec ends with status 1 and bob's reason.
    let mut cmd = w.alice.hoopctl();
    cmd.args([
        "exec",
        "demo-pg",
        "--reason",
        "INC-44 cleanup",
        "--wait",
        "60s",
        "-c",
        "select 1",
    ]);
    let waiting = spawn(cmd);
    let request = wait_for_request(&w.bob, "demo-pg", Some("INC-44 cleanup"));
    let denied = request["id"].as_str().unwrap().to_owned();
    let r = w
        .bob
        .run(&["deny", &denied, "--reason", "use the read replica"]);
    r.assert_ok();
    let done = waiting.finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{done:#?}");
    assert!(
        done.stderr.contains("denied by bob: use the read replica"),
        "{done:#?}"
    );

    // exec without --wait: exit 3 and the id (it finds the pending INC-43 request).
    let r = w.alice.run(&[
        "exec",
        "demo-pg",
        "--reason",
        "INC-43 follow-up",
        "-c",
        "select 1",
    ]);
    assert_eq!(r.code(), 3, "{r:#?}");
    assert_eq!(r.stdout.trim(), pending, "{r:#?}");

    // alice withdraws the pending one; bob no longer sees anything to decide.
    let r = w.alice.run(&["requests", "cancel", &pending]);
    r.assert_ok();
    let r = w.alice.run(&["requests", "show", &pending]);
    r.assert_ok();
    assert!(r.stdout.contains("State       cancelled"), "{r:#?}");
    let r = w.bob.run(&["approve", &pending]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("cancelled"), "{r:#?}");
    let r = w.bob.run(&["approve", "list", "-o", "json"]);
    r.assert_ok();
    assert_eq!(json(&r)["requests"], serde_json::json!([]), "{r:#?}");
}

#[test]
fn a_short_grant_ends_the_live_session_and_the_next_connect_asks_again() {
    let w = world();
    // Two seconds leave little time between the approval and the session,
    // and grants end on whole seconds (so one may last just over a second).
    // So alice asks with --no-wait, bob approves, and alice connects under
    // the request straight away, without waiting for a poll. psql first
    // prints "live" from the server, so an attempt where the grant ran out
    // before psql got in (a loaded machine) is told apart from a session
    // that was ended, and tried again with a new request.
    let mut attempts = Vec::new();
    let (id, done, started) = loop {
        assert!(
            attempts.len() < 5,
            "the 2s grant never outlived the session start: {attempts:#?}"
        );
        let r = w.alice.run(&["connect", "demo-pg-short", "--no-wait"]);
        assert_eq!(r.code(), 3, "{r:#?}");
        let id = r.stdout.trim().to_owned();
        let r = w.alice.run(&["requests", "show", &id, "-o", "json"]);
        r.assert_ok();
        assert_eq!(json(&r)["duration_secs"], 2, "{r:#?}");
        w.bob.run(&["approve", &id]).assert_ok();

        let started = Instant::now();
        let done = w.alice.run(&[
            "connect",
            "demo-pg-short",
            "--request",
            &id,
            "--",
            "psql",
            "-tA",
            "-c",
            "select 'live'",
            "-c",
            "select pg_sleep(30)",
        ]);
        if done.stdout.lines().any(|l| l.trim() == "live") {
            eprintln!("live session on attempt {}", attempts.len() + 1);
            break (id, done, started);
        }
        // Not live: the grant ended first, and hoopctl or psql says so.
        assert_ne!(done.code(), 0, "{done:#?}");
        assert!(done.stderr.contains("grant"), "{done:#?}");
        attempts.push(done);
    };

    // psql is told why it lost the server, long before pg_sleep(30) is over.
    assert_ne!(done.code(), 0, "{done:#?}");
    assert!(
        done.stderr.contains("FATAL") && done.stderr.contains("access grant"),
        "{done:#?}"
    );
    assert!(done.stderr.contains("expired"), "{done:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the session outlived its grant: {:?}",
        started.elapsed()
    );

    // The expired grant is not reused: a new request, still pending.
    let r = w.alice.run(&[
        "connect",
        "demo-pg-short",
        "--no-wait",
        "--",
        "psql",
        "-tAc",
        "select 1",
    ]);
    assert_eq!(r.code(), 3, "{r:#?}");
    assert_ne!(r.stdout.trim(), id, "{r:#?}");
    let r = w.alice.run(&["requests", "show", &id, "-o", "json"]);
    r.assert_ok();
    assert_eq!(json(&r)["state"], "expired", "{r:#?}");
}

#[test]
fn policy_get_diff_apply_and_test() {
    let w = world();
    let get = |u: &User| {
        let r = u.run(&["policy", "get"]);
        r.assert_ok();
        r.stdout
    };
    let before = get(&w.carol);
    assert_eq!(before, POLICY, "policy get prints the document as applied");
    let r = w.alice.run(&["policy", "get", "-o", "json"]);
    r.assert_ok();
    let info = json(&r);
    let version = info["version"].as_u64().unwrap();
    assert_eq!(info["policy"]["admins"], serde_json::json!(["admins"]));

    // A changed document: its diff, but nothing applied.
    let changed = POLICY.replace("default_duration = \"15m\"", "default_duration = \"30m\"");
    let good = w.dir.path().join("good.toml");
    std::fs::write(&good, &changed).unwrap();
    let r = w
        .carol
        .run(&["policy", "diff", "-f", good.to_str().unwrap()]);
    r.assert_ok();
    assert!(
        r.stdout.contains("-default_duration = \"15m\"")
            && r.stdout.contains("+default_duration = \"30m\""),
        "{r:#?}"
    );
    let same = w.dir.path().join("same.toml");
    std::fs::write(&same, POLICY).unwrap();
    let r = w
        .carol
        .run(&["policy", "diff", "-f", same.to_str().unwrap()]);
    r.assert_ok();
    assert!(
        r.stdout.is_empty() && r.stderr.contains("No changes"),
        "{r:#?}"
    );

    // A non-admin may look but not apply.
    let r = w
        .alice
        .run(&["policy", "apply", "-f", good.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("may not change the policy"), "{r:#?}");
    // Without a terminal and without --yes, even an admin is asked to confirm.
    let r = w
        .carol
        .run(&["policy", "apply", "-f", good.to_str().unwrap()]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("--yes"), "{r:#?}");
    assert_eq!(get(&w.carol), POLICY);

    // Invalid documents: every problem with file:line:column, exit 1, nothing changed.
    let unknown_key = w.dir.path().join("unknown-key.toml");
    std::fs::write(
        &unknown_key,
        POLICY.replace(
            "approvals = 1\ndefault_duration = \"15m\"",
            "approvals = 1\napprovers_count = 2\ndefault_duration = \"15m\"",
        ),
    )
    .unwrap();
    let unknown_group = w.dir.path().join("unknown-group.toml");
    std::fs::write(
        &unknown_group,
        POLICY.replace(
            "approvers = { groups = [\"sre\"] }\napprovals = 1\ndefault_duration = \"15m\"",
            "approvers = { groups = [\"dba\"] }\napprovals = 1\ndefault_duration = \"15m\"",
        ),
    )
    .unwrap();
    for (file, needle) in [(&unknown_key, "approvers_count"), (&unknown_group, "dba")] {
        let path = file.to_str().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let line = 1 + text.lines().position(|l| l.contains(needle)).unwrap();
        for args in [vec!["diff"], vec!["apply", "--yes"]] {
            let mut cmd = vec!["policy"];
            cmd.extend(&args);
            cmd.extend(["-f", path]);
            let r = w.carol.run(&cmd);
            assert_eq!(r.code(), 1, "{cmd:?}: {r:#?}");
            let located = r
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("{path}:{line}:")))
                .unwrap_or_else(|| panic!("no {path}:{line}:COL in {r:#?}"));
            assert!(located.contains(needle), "{located}");
            let col = located.split(':').nth(2).unwrap();
            assert!(col.parse::<u32>().is_ok(), "{located}");
            assert!(r.stderr.contains("nothing was changed"), "{r:#?}");
        }
    }
    assert_eq!(get(&w.carol), POLICY);

    // carol applies the good one.
    let r = w
        .carol
        .run(&["policy", "apply", "-f", good.to_str().unwrap(), "--yes"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("+default_duration = \"30m\"")
            && r.stdout
                .contains(&format!("policy version {} is in force", version + 1)),
        "{r:#?}"
    );
    assert_eq!(get(&w.alice), changed);

    // policy test explains allow, deny and approval.
    let test = |args: &[&str]| {
        let mut all = vec!["policy", "test"];
        all.extend_from_slice(args);
        let r = w.alice.run(&all);
        r.assert_ok();
        r.stdout
    };
    let allow = test(&["--user", "bob", "--group", "sre", "--connection", "demo-pg"]);
    assert!(
        allow.starts_with("access         allow\nrule           sre-direct\n"),
        "{allow}"
    );
    let deny = test(&["--user", "mallory", "--connection", "demo-pg"]);
    assert!(deny.starts_with("access  deny\n"), "{deny}");
    assert!(deny.contains("default deny"), "{deny}");
    let approval = test(&[
        "--user",
        "alice",
        "-g",
        "engineering",
        "--connection",
        "demo-pg",
    ]);
    assert!(
        approval.starts_with("access         approval\nrule           engineering-jit\n"),
        "{approval}"
    );
    assert!(
        approval.contains("group sre (1 approval needed"),
        "{approval}"
    );
    assert!(
        approval.contains("30m by default, at most 1h"),
        "{approval}"
    );
    assert!(approval.contains("justification  required"), "{approval}");
    // Against a file instead of the policy in force, as JSON.
    let r = w.alice.run(&[
        "policy",
        "test",
        "--user",
        "alice",
        "-g",
        "engineering",
        "--connection",
        "demo-pg",
        "-f",
        same.to_str().unwrap(),
        "-o",
        "json",
    ]);
    r.assert_ok();
    let d = json(&r);
    assert_eq!(d["outcome"]["access"], "approval", "{d}");
    assert_eq!(d["outcome"]["default_duration_secs"], 900, "{d}");
    assert_eq!(d["rule"], "engineering-jit", "{d}");
}

/// hoopctl on a pseudo-terminal (util-linux `script`), driven like a person
/// at the keyboard: read what it shows, type an answer.
struct Terminal {
    child: Child,
    input: std::process::ChildStdin,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn start(user: &User, args: &str) -> Terminal {
        let line = format!("{} {args}", bin("hoopctl").display());
        let mut child = Command::new("script")
            .args(["-qefc", &line, "/dev/null"])
            .env("HOOP_CONFIG_DIR", &user.config_dir)
            .env_remove("HOOP_TOKEN")
            .env_remove("HOOP_BROKER")
            .env("NO_COLOR", "1")
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            input,
            output,
            seen: String::new(),
        }
    }

    /// Waits until the screen output so far contains `text` (panics after 30 s).
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(text) {
            let left = deadline.checked_duration_since(Instant::now());
            match left.map(|left| self.output.recv_timeout(left)) {
                Some(Ok(bytes)) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                _ => panic!("{text:?} never shown; screen ends: {:?}", self.tail()),
            }
        }
    }

    /// The last 2000 characters shown.
    fn tail(&self) -> String {
        let n = self.seen.chars().count();
        self.seen.chars().skip(n.saturating_sub(2000)).collect()
    }

    /// Types `keys`.
    fn type_keys(&mut self, keys: &str) {
        use std::io::Write as _;
        self.input.write_all(keys.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits for the exit; returns the exit code and everything shown.
    fn finish(mut self) -> (i32, String) {
        let status = wait_deadline(&mut self.child, Duration::from_secs(60));
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(500)) {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status.code().unwrap_or(-1), self.seen)
    }
}

#[test]
fn on_a_terminal_hoopctl_asks_for_the_reason_and_for_confirmations() {
    let w = world();

    // connect asks why, then waits; bob sees the typed reason and approves.
    let mut t = Terminal::start(
        &w.alice,
        "connect demo-pg -- psql -P pager=off -tAc 'select 1'",
    );
    t.expect("Why do you need access to demo-pg?");
    t.type_keys("INC-50 typed at a terminal\r");
    t.expect("Waiting for approval of request");
    let request = wait_for_request(&w.bob, "demo-pg", Some("INC-50 typed at a terminal"));
    let id = request["id"].as_str().unwrap().to_owned();
    w.bob.run(&["approve", &id]).assert_ok();
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Approved by bob"), "{screen}");
    assert!(screen.lines().any(|l| l.trim() == "1"), "{screen}");

    // Ctrl-C while waiting asks what to do; the default cancels the request.
    let mut t = Terminal::start(
        &w.alice,
        "connect demo-pg-short --reason 'maybe later' -- psql",
    );
    t.expect("Waiting for approval of request");
    let request = wait_for_request(&w.bob, "demo-pg-short", Some("maybe later"));
    let id = request["id"].as_str().unwrap().to_owned();
    t.type_keys("\x03");
    t.expect("Cancel the request and exit");
    t.type_keys("\r");
    let (code, screen) = t.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(
        screen.contains(&format!("Cancelled access request {id}")),
        "{screen}"
    );

    // policy apply shows the diff and asks; "n" changes nothing, "y" applies.
    let changed = POLICY.replace("max_duration = \"1h\"", "max_duration = \"2h\"");
    let file = w.dir.path().join("tty.toml");
    std::fs::write(&file, &changed).unwrap();
    let args = format!("policy apply -f {}", file.display());
    let mut t = Terminal::start(&w.carol, &args);
    t.expect("+max_duration = \"2h\"");
    t.expect("Apply ");
    t.type_keys("n");
    let (code, screen) = t.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Not applied"), "{screen}");
    let r = w.carol.run(&["policy", "get"]);
    assert_eq!(r.stdout, POLICY);

    let mut t = Terminal::start(&w.carol, &args);
    t.expect("Apply ");
    t.type_keys("y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("is in force"), "{screen}");
    let r = w.carol.run(&["policy", "get"]);
    assert_eq!(r.stdout, changed);
}
