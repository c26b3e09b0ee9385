//! Real clients through the whole path (hoopctl → TLS tunnel → broker →
//! PostgreSQL) behave as they do directly: Ctrl-C cancels, the extended
//! protocol and COPY work, and a tunnel without a command serves any client.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_e2e::*;

/// Rows of `sql` run as the superuser, straight at the server (for watching it).
fn observe(db: &DemoDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.rt.block_on(async {
        let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser("demo"))
            .await
            .unwrap();
        let rows = c.simple_query(sql).await.unwrap();
        c.close().await;
        rows
    })
}

#[test]
fn ctrl_c_in_psql_cancels_the_running_query_through_the_tunnel() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt as _;
    let (db, _broker, alice) = logged_in("alice");
    // Its own process group, as a terminal's foreground job: Ctrl-C reaches
    // hoopctl and psql together.
    let child = alice
        .hoopctl()
        .args([
            "connect",
            "demo-pg",
            "--",
            "psql",
            "-c",
            "select pg_sleep(60)",
        ])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pgid = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(30);
    while observe(
        &db,
        "select 1 from pg_stat_activity where query = 'select pg_sleep(60)'",
    )
    .is_empty()
    {
        assert!(Instant::now() < deadline, "the query never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    killpg(pgid, Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "psql should report the cancel: {stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "psql's exit code passes through: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "cancel took too long"
    );
}

#[test]
fn extended_protocol_and_copy_work_through_the_tunnel() {
    let (_db, _broker, alice) = logged_in("alice");
    let pgbench = hoop_broker::dev::postgres::find_pg_binary("pgbench").expect("pgbench");
    let pgbench = pgbench.to_string_lossy().into_owned();
    let r = alice.run(&["connect", "demo-pg", "--", &pgbench, "-i", "-q", "-s", "1"]);
    r.assert_ok();
    for mode in ["simple", "extended", "prepared"] {
        let r = alice.run(&[
            "connect", "demo-pg", "--", &pgbench, "-M", mode, "-t", "25", "-c", "2",
        ]);
        r.assert_ok();
        assert!(
            r.stdout
                .contains("number of transactions actually processed: 50/50"),
            "{r:#?}"
        );
    }

    // \copy out and back in.
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("customers.csv");
    let copy_out = format!(
        "\\copy (select id, full_name, email from customers order by id) to '{}' csv",
        csv.display()
    );
    alice
        .run(&[
            "connect",
            "demo-pg",
            "--",
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &copy_out,
        ])
        .assert_ok();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().count() >= 20, "{text}");
    let copy_in = format!(
        "create table imported (id int, full_name text, email text); \
         \\copy imported from '{}' csv\n\
         select count(*) = (select count(*) from customers) from imported;",
        csv.display()
    );
    let script = tmp.path().join("in.sql");
    std::fs::write(&script, copy_in.replace("; \\copy", ";\n\\copy")).unwrap();
    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-tA",
        "-f",
        &script.to_string_lossy(),
    ]);
    r.assert_ok();
    assert!(r.stdout.lines().any(|l| l == "t"), "{r:#?}");
}

#[test]
fn connect_without_a_command_serves_clients_until_interrupted() {
    let (_db, _broker, alice) = logged_in("alice");
    let mut tunnel = open_tunnel(&alice, "demo-pg");
    let (host, port) = tunnel.addr.split_once(':').unwrap();
    for _ in 0..2 {
        let out = std::process::Command::new("psql")
            .args([
                "-h",
                host,
                "-p",
                port,
                "-U",
                "app",
                "-d",
                "demo",
                "-tAc",
                "select current_user",
            ])
            .env("PGPASSWORD", &tunnel.secret)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "app",
            "{out:?}"
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tunnel.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_deadline(&mut tunnel.child, Duration::from_secs(20));
    assert!(
        status.success(),
        "Ctrl-C ends a command-less tunnel cleanly: {status:?}"
    );
    assert!(
        std::net::TcpStream::connect(&tunnel.addr).is_err(),
        "the local port is closed"
    );
}

#[test]
fn a_bad_config_stops_the_broker_with_file_line_and_expectation() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("broker.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"/tmp/x\"\n[tls]\nself_signed = true\n\
         [identity.builtin]\nusers = []\n[[connections]]\nname = \"pg\"\ntype = \"postgres\"\n\
         host = \"h\"\ndatabase = \"d\"\nuser = \"u\"\npassword = \"hunter2\"\nallow_groups = [\"g\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin("hoop-broker"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains(&format!("{}:13:1", cfg.display())), "{err}");
    assert!(
        err.contains("unknown field `password`") && err.contains("password_env"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    // A credential reference that does not resolve is named, at startup.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "password = \"hunter2\"",
            "password_env = \"HOOP_E2E_UNSET_VAR\"",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin("hoop-broker"))
        .args(["serve", "--check", "--config"])
        .arg(&cfg)
        .env("HOOP_LOG", "error")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("HOOP_E2E_UNSET_VAR") && err.contains("connection pg"),
        "{err}"
    );
}
