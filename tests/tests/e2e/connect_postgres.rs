//! `hoopctl connect` to PostgreSQL through the real broker, end to end.

use std::time::{Duration, Instant};

use hoop_e2e::*;

/// Waits until `path` exists (readiness of a child), with a deadline.
fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn psql_runs_as_the_upstream_role_and_exit_codes_pass_through() {
    let db = DemoDb::start();
    let broker = start_broker(&[db.connection("demo-pg", &["engineering"])]);
    let alice = User::new("alice", &broker);
    let login = alice.login();
    login.assert_ok();
    assert!(login.all().contains("alice"), "{login:#?}");

    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-tAc",
        "select current_user",
    ]);
    r.assert_ok();
    assert_eq!(r.stdout.trim(), "app", "{r:#?}");

    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-tAc",
        "select count(*) from customers",
    ]);
    r.assert_ok();
    assert!(r.stdout.trim().parse::<u32>().unwrap() > 0, "{r:#?}");

    let r = alice.run(&["connect", "demo-pg", "--", "psql", "-c", "select 1/0"]);
    assert_eq!(
        r.code(),
        1,
        "psql's own exit code for a failed command: {r:#?}"
    );
    assert!(r.stderr.contains("division by zero"), "{r:#?}");

    let r = alice.run(&["connect", "demo-pg", "--", "sh", "-c", "exit 7"]);
    assert_eq!(r.code(), 7, "{r:#?}");
}

#[test]
fn the_upstream_password_never_reaches_the_client_side() {
    let db = DemoDb::start();
    let pw = db.password.expose().to_owned();
    let broker = start_broker(&[db.connection("demo-pg", &["engineering"])]);
    let alice = User::new("alice", &broker);
    let mut seen = alice.login().all();

    // The child's environment: PG* point at the local port, with a one-time secret.
    let env = alice.run(&["connect", "demo-pg", "--", "env"]);
    env.assert_ok();
    seen.push_str(&env.all());
    assert!(env.stdout.contains("PGHOST=127.0.0.1"), "{env:#?}");
    assert!(env.stdout.contains("PGUSER=app"), "{env:#?}");
    assert!(env.stdout.contains("PGDATABASE=demo"), "{env:#?}");
    assert!(env.stdout.contains("PGPASSWORD="), "{env:#?}");

    // Every byte a client receives through the tunnel, recorded by a raw client
    // that the tunnel's command hands the address and secret to.
    let tmp = tempfile::tempdir().unwrap();
    let info = tmp.path().join("info");
    let fifo = tmp.path().join("release");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let script = format!(
        "printf '%s:%s %s\\n' \"$PGHOST\" \"$PGPORT\" \"$PGPASSWORD\" > {}; cat {} >/dev/null",
        info.display(),
        fifo.display()
    );
    let child = alice
        .hoopctl()
        .args(["connect", "demo-pg", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_for_file(&info);
    let (addr, secret) = line.trim().split_once(' ').unwrap();

    let ok = raw_pg_session(
        addr,
        secret,
        &[
            "select current_user",
            "select email from customers order by id limit 3",
        ],
    );
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    assert_eq!(ok.values.first().map(String::as_str), Some("app"));
    assert_eq!(ok.values.len(), 4, "{:?}", ok.values);
    assert!(
        !contains_bytes(&ok.received, pw.as_bytes()),
        "password in client bytes"
    );

    // Another local process without the one-time secret is refused.
    let bad = raw_pg_session(addr, "not-the-secret", &["select 1"]);
    assert!(bad.values.is_empty());
    assert!(
        bad.errors.iter().any(|e| e.contains("one-time")),
        "refusal should explain the one-time secret: {:?}",
        bad.errors
    );
    let psql = std::process::Command::new("psql")
        .args([
            "-h",
            addr.split(':').next().unwrap(),
            "-p",
            addr.split(':').nth(1).unwrap(),
        ])
        .args(["-U", "app", "-d", "demo", "-tAc", "select 1"])
        .env("PGPASSWORD", "guess")
        .output()
        .unwrap();
    assert_eq!(psql.status.code(), Some(2), "psql must fail to connect");
    assert!(String::from_utf8_lossy(&psql.stderr).contains("one-time"));

    std::fs::write(&fifo, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    seen.push_str(&String::from_utf8_lossy(&out.stderr));

    assert!(
        !seen.contains(&pw),
        "password in hoopctl output or child env"
    );
    assert_not_in_dir(&alice.config_dir, &pw);
    assert!(!broker.log().contains(&pw), "password in the broker log");
}

#[test]
fn unknown_connection_lists_the_known_ones() {
    let (_db, _broker, alice) = logged_in("alice");
    let r = alice.run(&["connect", "nope", "--", "true"]);
    assert_ne!(r.code(), 0);
    assert!(
        r.stderr.contains("nope") && r.stderr.contains("demo-pg"),
        "{r:#?}"
    );
}

#[test]
fn a_user_outside_the_allowed_groups_is_refused_with_the_reason() {
    let (_db, _broker, bob) = logged_in("bob");
    let r = bob.run(&["connect", "demo-pg", "--", "true"]);
    assert_ne!(r.code(), 0);
    assert!(r.stderr.contains("not allowed"), "{r:#?}");
    let r = bob.run(&["connections", "-o", "json"]);
    r.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        !r.stdout.contains("demo-pg"),
        "bob must not see demo-pg: {v}"
    );
}

#[test]
fn upstream_down_is_a_postgres_error_in_psql() {
    // A port nothing listens on: bind, note it, close.
    let port = closed_port();
    let conn = PgConnection {
        name: "down-pg".into(),
        host: "127.0.0.1".into(),
        port,
        database: "demo".into(),
        user: "app".into(),
        password: Secret::new("irrelevant-but-secret"),
        allow_groups: vec!["engineering".into()],
    };
    let broker = start_broker(&[conn]);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let r = alice.run(&["connect", "down-pg", "--", "psql", "-tAc", "select 1"]);
    assert_eq!(r.code(), 2, "psql's code for a failed connection: {r:#?}");
    assert!(r.stderr.contains("down-pg"), "{r:#?}");
    assert!(r.stderr.contains("reach"), "{r:#?}");
    assert!(!r.all().contains("irrelevant-but-secret"));
}
