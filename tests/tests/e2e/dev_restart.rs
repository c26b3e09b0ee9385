//! `hoop-broker dev` owns its children and keeps its state (issue #21):
//! after a `kill -9` no demo PostgreSQL is left running, and a restart on the
//! same data dir finds the same demo database and the same development CA, so
//! hoopctl's files stay as they were and a tunnel opened before the crash
//! serves its next connection.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoop_e2e::*;

struct Dev {
    child: Child,
    url: String,
    /// The demo cluster's dir, as dev printed it.
    cluster: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dev(data_dir: &Path, config_dir: &Path, listen: &str, log: &Path) -> Dev {
    let mut child = Command::new(bin("hoop-broker"))
        .args(["dev", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .env("HOOP_CONFIG_DIR", config_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = wait_for_line(&mut child, log, "hoop-broker listening on ").unwrap_or_else(|| {
        panic!(
            "dev did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    // The summary follows the ready line; its last line ends it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Press Ctrl-C to stop.") {
            break text;
        }
        assert!(Instant::now() < deadline, "no summary from dev:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let cluster = printed
        .lines()
        .rev()
        .find_map(|l| l.split_once(", kept in ").map(|(_, dir)| dir.trim()))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no demo-pg line naming the kept cluster in:\n{printed}"));
    Dev {
        child,
        url,
        cluster,
    }
}

/// True while `pid` runs (a zombie waiting to be collected does not count).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

/// Live processes working in `dir`: a postmaster and its backends all have
/// their data directory as working directory.
fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok().as_ref() == Some(&dir))
        .filter(|pid| running(*pid))
        .collect()
}

fn psql(tunnel: &Tunnel, sql: &str) -> (bool, String) {
    let (host, port) = tunnel.addr.split_once(':').unwrap();
    let out = Command::new("psql")
        .args(["-X", "-w", "-tAc", sql])
        .env("PGHOST", host)
        .env("PGPORT", port)
        .env("PGUSER", "app")
        .env("PGDATABASE", "demo")
        .env("PGPASSWORD", &tunnel.secret)
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
fn kill_9_leaves_no_postgres_and_a_restart_keeps_the_database_the_ca_and_open_tunnels() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config_dir = tmp.path().join("hoop");
    let log = tmp.path().join("dev.log");
    // A fixed address for both runs (chosen by the OS), as a user's would be.
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut dev = start_dev(&data_dir, &config_dir, &listen, &log);
    let _cleanup = KeptCluster::from_log(&log, tmp.path());
    let cfg = hoop_shared::client_config::ClientConfig::load(&config_dir).unwrap();
    let ca_file = cfg.ca_file.clone().expect("dev writes the CA for hoopctl");
    let hoopctl = || {
        let mut c = Command::new(bin("hoopctl"));
        c.env("HOOP_CONFIG_DIR", &config_dir)
            .env_remove("HOOP_BROKER")
            .env_remove("HOOP_TOKEN")
            .stdin(Stdio::null());
        c
    };
    let mut login = hoopctl();
    login.args(["login", "--no-browser"]);
    drive_login(login, &dev.url, &ca_file, "alice").assert_ok();

    // A tunnel opened before the crash, and a row only this database has.
    let mut connect = hoopctl();
    connect.args(["connect", "demo-pg"]);
    let tunnel = open_tunnel_cmd(connect);
    let (ok, text) = psql(
        &tunnel,
        "insert into customers (full_name, email, card_number, phone) \
         values ('Kim Survivor', 'kim.survivor@example.com', '4111111111111111', '+1-555-0199')",
    );
    assert!(ok, "{text}");

    let before = |p: &Path| std::fs::read(p).unwrap();
    let server_ca = before(&data_dir.join("ca.pem"));
    let client_ca = before(&ca_file);
    let client_config = before(&config_dir.join(hoop_shared::client_config::CONFIG_FILE));
    let postmaster: i32 = std::fs::read_to_string(dev.cluster.join("data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(running(postmaster));

    // kill -9: the broker gets no chance to stop anything itself.
    dev.child.kill().unwrap();
    dev.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let data = dev.cluster.join("data");
    while running(postmaster) || !processes_in(&data).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the demo PostgreSQL outlived the broker: postmaster {postmaster}, processes {:?}",
            processes_in(&data)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Restart on the same data dir and address.
    let dev2 = start_dev(&data_dir, &config_dir, &listen, &log);
    assert_eq!(dev2.url, dev.url);
    assert_eq!(dev2.cluster, dev.cluster, "the same demo cluster");
    assert_eq!(
        before(&data_dir.join("ca.pem")),
        server_ca,
        "a new development CA"
    );
    assert_eq!(before(&ca_file), client_ca, "hoopctl's CA file changed");
    assert_eq!(
        before(&config_dir.join(hoop_shared::client_config::CONFIG_FILE)),
        client_config,
        "hoopctl's config changed"
    );

    // The tunnel from before the crash: its next connection works, and sees
    // the row written before it (the same database, not a new empty one).
    let (ok, text) = psql(
        &tunnel,
        "select count(*) from customers where email = 'kim.survivor@example.com'",
    );
    assert!(ok, "the open tunnel's next connection failed: {text}");
    assert_eq!(text.trim(), "1");
    drop(tunnel);
    let mut dev2 = dev2;
    assert!(terminate(&mut dev2.child).success());
}
