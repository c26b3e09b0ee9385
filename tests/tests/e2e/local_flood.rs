//! The local port of a tunnel under a local flood (issue #21): another local
//! process opening 1,000 idle connections neither locks out the real psql
//! nor costs the broker anything, and hoopctl closes the idle sockets at its
//! documented startup deadline (docs/tunnel.md).

use std::io::Read as _;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use hoop_e2e::*;

/// hoopctl's deadline for a local connection's startup (docs/tunnel.md).
const STARTUP_DEADLINE: Duration = Duration::from_secs(5);
const IDLE: usize = 1000;

/// Raises this process's soft open-file limit to its hard limit: the test
/// holds 1,000 sockets at once (and needs a hard limit of at least ~1,100).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    assert!(
        hard >= (IDLE as u64) + 100,
        "this test needs `ulimit -Hn` of at least {} (is {hard})",
        IDLE + 100
    );
}

#[test]
fn a_thousand_idle_local_sockets_neither_lock_out_psql_nor_reach_the_broker() {
    raise_fd_limit();
    let (_db, broker, alice) = logged_in("alice");
    let tunnel = open_tunnel(&alice, "demo-pg");
    let tunnels_before = broker.log().matches("/tunnel").count();

    // The flood: connections that never say a word.
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect(&tunnel.addr)
                .unwrap_or_else(|e| panic!("idle connection {i} to {}: {e}", tunnel.addr))
        })
        .collect();

    // The real client, through the same tunnel, meanwhile.
    let started = Instant::now();
    let (ok, text) = psql(&tunnel, &tunnel.secret, "select 1");
    let took = started.elapsed();
    assert!(ok, "psql failed during the flood: {text}");
    assert_eq!(text.trim(), "1");
    assert!(
        took < Duration::from_secs(2),
        "psql took {took:?} during the flood"
    );

    // Every idle socket is closed by hoopctl within the deadline (EOF, or a
    // reset for one shed at once), measured from when it was opened.
    let limit = STARTUP_DEADLINE + Duration::from_secs(2);
    for (i, s) in idle.iter_mut().enumerate() {
        let left = limit
            .saturating_sub(opened.elapsed())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("idle socket {i} got {n} bytes instead of EOF"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "idle socket {i} still open {:?} after the flood began: {e}",
                opened.elapsed()
            ),
        }
    }
    assert!(opened.elapsed() <= limit);

    // None of them cost a tunnel to the broker: only psql's connection did.
    let tunnels = broker.log().matches("/tunnel").count() - tunnels_before;
    assert!(
        tunnels <= 2,
        "the broker saw {tunnels} tunnel requests for one psql:\n{}",
        broker.log()
    );

    // And the tunnel still serves after the flood.
    let (ok, text) = psql(&tunnel, &tunnel.secret, "select 2");
    assert!(ok && text.trim() == "2", "{text}");
}

/// psql through `tunnel` with `password`: (success, stdout + stderr).
fn psql(tunnel: &Tunnel, password: &str, sql: &str) -> (bool, String) {
    let (host, port) = tunnel.addr.split_once(':').unwrap();
    let out = Command::new("psql")
        .args(["-X", "-w", "-tAc", sql])
        .env("PGHOST", host)
        .env("PGPORT", port)
        .env("PGUSER", "app")
        .env("PGDATABASE", "demo")
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_wrong_secret_is_refused_by_hoopctl_and_the_limit_is_a_flag() {
    let (_db, broker, alice) = logged_in("alice");
    let tunnel = open_tunnel_with(&alice, "demo-pg", &["--max-local-connections", "1"]);
    let tunnels_before = broker.log().matches("/tunnel").count();

    // A wrong secret is answered by hoopctl and never reaches the broker.
    let (ok, text) = psql(&tunnel, "a-guess", "select 1");
    assert!(!ok && text.contains("one-time secret"), "{text}");
    assert_eq!(
        broker.log().matches("/tunnel").count(),
        tunnels_before,
        "a wrong secret reached the broker:\n{}",
        broker.log()
    );

    // One connection held open takes the one slot; the next is told why.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&tunnel.conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.simple_query("select 1").await.unwrap();
        (client, task)
    });
    let (ok, text) = psql(&tunnel, &tunnel.secret, "select 3");
    assert!(
        !ok && text.contains("too many connections through this tunnel")
            && text.contains("--max-local-connections"),
        "{text}"
    );
    // Closed for real: the runtime drives the connection to its end.
    let (client, task) = held;
    drop(client);
    let _ = rt.block_on(task);
    // Once it is gone, the slot is free again (hoopctl notices the close).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, text) = psql(&tunnel, &tunnel.secret, "select 4");
        if ok {
            assert_eq!(text.trim(), "4");
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed: {text}");
    }
}
