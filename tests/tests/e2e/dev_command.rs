//! `hoop-broker dev` as the README uses it: one command, then `hoopctl login`
//! and `hoopctl connect demo-pg -- psql` with no flags.

use std::process::{Command, Stdio};

use hoop_e2e::*;

#[test]
fn dev_runs_the_readme_tour_and_stops_everything_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config_dir = tmp.path().join("hoop");
    let log = tmp.path().join("dev.log");
    let mut dev = Command::new(bin("hoop-broker"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("HOOP_CONFIG_DIR", &config_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = wait_for_line(&mut dev, &log, "hoop-broker listening on ").unwrap_or_else(|| {
        panic!(
            "dev did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    // The summary block follows the ready line; wait for its last line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let printed = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Press Ctrl-C to stop.") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no summary from dev:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _cluster = KeptCluster::from_log(&log, tmp.path());
    let pg_port: u16 = printed
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("demo-pg     PostgreSQL on 127.0.0.1:")
        })
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no demo-pg line in:\n{printed}"));

    // hoopctl finds the broker and its CA with no flags.
    let cfg = hoop_shared::client_config::ClientConfig::load(&config_dir).unwrap();
    assert_eq!(cfg.broker_url.as_deref(), Some(url.as_str()));
    let ca_file = cfg.ca_file.clone().expect("dev writes the CA for hoopctl");

    let hoopctl = |args: &[&str]| {
        let mut c = Command::new(bin("hoopctl"));
        c.args(args)
            .env("HOOP_CONFIG_DIR", &config_dir)
            .env_remove("HOOP_BROKER")
            .env_remove("HOOP_TOKEN")
            .stdin(Stdio::null());
        c
    };
    let login = drive_login(hoopctl(&["login", "--no-browser"]), &url, &ca_file, "alice");
    login.assert_ok();
    let seen = login.all();

    let r = hoopctl(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-tAc",
        "select count(*) from customers",
    ])
    .output()
    .unwrap();
    assert!(r.status.success(), "{r:?}");
    let n: u32 = String::from_utf8_lossy(&r.stdout).trim().parse().unwrap();
    assert!(n > 0);

    // The demo password is referenced by file in the generated config, and
    // never shows in what the user saw.
    let broker_toml = std::fs::read_to_string(data_dir.join("broker.toml")).unwrap();
    assert!(broker_toml.contains("password_file"));
    let pw = std::fs::read_to_string(data_dir.join("demo-pg.password")).unwrap();
    assert!(!pw.is_empty());
    assert!(!seen.contains(&pw) && !String::from_utf8_lossy(&r.stdout).contains(&pw));
    assert_not_in_dir(&config_dir, &pw);

    // SIGTERM stops the broker and the throwaway PostgreSQL.
    let status = terminate(&mut dev);
    assert!(status.success(), "dev exited with {status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(),
        "the demo PostgreSQL must be stopped"
    );
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(&pw),
        "password in dev's log"
    );
}
