//! The `hoopctl` binary as a user meets it: help, exit codes, error advice,
//! and the token file, each run in its own temporary settings directory.

// Test helpers outside #[test] functions may panic on a broken setup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs hoopctl with a private settings directory and a clean hoop environment.
struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    fn new(config_dir: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoopctl"));
        for var in [
            "HOOP_BROKER",
            "HOOP_CA_FILE",
            "HOOP_TOKEN",
            "HOOP_TOKEN_STORE",
            "HOOP_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOOP_CONFIG_DIR", config_dir)
            // Never touch a developer's real keyring from tests.
            .env("HOOP_TOKEN_STORE", "file")
            .stdin(Stdio::null());
        TestCommand { cmd }
    }

    fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    fn run(mut self, args: &[&str]) -> Output {
        self.cmd.args(args).output().expect("run hoopctl")
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("hoop");
    (t, dir)
}

#[test]
fn help_succeeds_and_usage_errors_exit_2() {
    let (_t, dir) = tmp();
    let help = TestCommand::new(&dir).run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit status"));
    let bad = TestCommand::new(&dir).run(&["connect"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let bad = TestCommand::new(&dir).run(&["nope"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn without_a_broker_the_error_says_how_to_configure_one() {
    let (_t, dir) = tmp();
    let out = TestCommand::new(&dir).run(&["connections"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: no broker configured"), "{err}");
    assert!(
        err.contains("--broker") && err.contains("HOOP_BROKER"),
        "{err}"
    );
}

#[test]
fn not_logged_in_says_run_hoopctl_login() {
    let (_t, dir) = tmp();
    let broker = format!("https://127.0.0.1:{}", closed_port());
    let out = TestCommand::new(&dir).run(&["--broker", &broker, "whoami"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("not logged in to {broker}")), "{err}");
    assert!(err.contains("run `hoopctl login`"), "{err}");
}

#[test]
fn unreachable_broker_is_named_with_the_fix() {
    let (_t, dir) = tmp();
    let broker = format!("https://127.0.0.1:{}", closed_port());
    let out = TestCommand::new(&dir)
        .env("HOOP_TOKEN", "header.payload.sig")
        .run(&["--broker", &broker, "connections"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the broker at {broker}")),
        "{err}"
    );
    assert!(err.contains("Is `hoop-broker` running?"), "{err}");
    assert!(!err.contains("header.payload.sig"), "token leaked: {err}");
}

#[test]
fn login_with_unreachable_broker_fails_fast_and_saves_nothing() {
    let (_t, dir) = tmp();
    let broker = format!("https://127.0.0.1:{}", closed_port());
    let out = TestCommand::new(&dir).run(&["login", "--broker", &broker, "--no-browser"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the broker"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("config.toml").exists());
    assert!(!dir.join("tokens.json").exists());
}

#[test]
fn logout_removes_the_token_file() {
    let (_t, dir) = tmp();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tokens.json"),
        r#"{"access_token":"a","broker_url":"https://b"}"#,
    )
    .unwrap();
    let out = TestCommand::new(&dir).run(&["logout"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Logged out"), "{}", stdout(&out));
    assert!(!dir.join("tokens.json").exists());
    let again = TestCommand::new(&dir).run(&["logout"]);
    assert!(
        stdout(&again).contains("Not logged in"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn stored_login_for_another_broker_is_not_used() {
    let (_t, dir) = tmp();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tokens.json"),
        r#"{"access_token":"a","broker_url":"https://other.example"}"#,
    )
    .unwrap();
    let broker = format!("https://127.0.0.1:{}", closed_port());
    let out = TestCommand::new(&dir).run(&["--broker", &broker, "whoami"]);
    let err = stderr(&out);
    assert!(
        err.contains("the stored login is for https://other.example"),
        "{err}"
    );
}

#[test]
fn bad_token_store_setting_is_rejected() {
    let (_t, dir) = tmp();
    let out = TestCommand::new(&dir)
        .env("HOOP_TOKEN_STORE", "vault")
        .run(&["--broker", "https://127.0.0.1:1", "whoami"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("HOOP_TOKEN_STORE"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    let (_t, dir) = tmp();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoopctl"))
        .args(["completions", "bash"])
        .env("HOOP_CONFIG_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once: every write hoopctl makes hits a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
