//! Small things a new user trips over on a first try: JSON output into a
//! closed pipe, `whoami` for scripts and without a broker.

use std::process::Stdio;

use hoop_e2e::*;

/// `hoopctl connections -o json | head -1`: the reader leaving early is not
/// an error (exit 0, nothing on stderr).
#[test]
fn json_into_a_closed_pipe_is_success() {
    let broker = start_broker(&[]);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    for args in [
        &["connections", "-o", "json"][..],
        &["whoami", "-o", "json"][..],
    ] {
        let mut child = alice
            .hoopctl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// `whoami -o json` for scripts; with the broker gone, `whoami` shows the
/// identity it confirmed last, says it is not verified now, and exits 0.
#[test]
fn whoami_as_json_and_with_the_broker_unreachable() {
    let broker = start_broker(&[]);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();

    let r = alice.run(&["whoami", "-o", "json"]);
    r.assert_ok();
    let me: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(me["user"], "alice", "{me}");
    assert_eq!(me["verified"], true, "{me}");
    assert_eq!(me["broker"], broker.url.as_str(), "{me}");
    assert!(
        me["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "engineering"),
        "{me}"
    );
    assert!(me["token_source"].as_str().is_some(), "{me}");

    // The broker goes away; its CA file (in its temp dir) stays for hoopctl.
    let ca_file = broker.ca_file.clone();
    let ca = std::fs::read(&ca_file).unwrap();
    drop(broker);
    std::fs::create_dir_all(ca_file.parent().unwrap()).unwrap();
    std::fs::write(&ca_file, ca).unwrap();
    let r = alice.run(&["whoami"]);
    r.assert_ok();
    assert!(r.stdout.contains("user:     alice"), "{r:#?}");
    assert!(r.stdout.contains("verified: no"), "{r:#?}");
    assert!(r.stderr.contains("cannot reach the broker"), "{r:#?}");

    let r = alice.run(&["whoami", "-o", "json"]);
    r.assert_ok();
    let me: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(me["user"], "alice", "{me}");
    assert_eq!(me["verified"], false, "{me}");

    // Logging out forgets it: no identity is shown for a login that is gone.
    let r = alice.run(&["logout"]);
    r.assert_ok();
    let r = alice.run(&["whoami"]);
    assert!(!r.status.success(), "{r:#?}");
    assert!(!r.stdout.contains("alice"), "{r:#?}");
    let _ = std::fs::remove_dir_all(ca_file.parent().and_then(|d| d.parent()).unwrap());
}

/// The README's first command on a machine where `~/.local/bin` is not on
/// `PATH`: install.sh installs there, the command's own path to the broker
/// works, and a new login shell finds `hoopctl` (install.sh added the PATH
/// line to the profile once, however often it runs).
#[test]
fn install_sh_works_without_local_bin_on_path() {
    let home = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = bin("hoopctl");
    let built_dir = built.parent().unwrap();
    let path = "/usr/local/bin:/usr/bin:/bin";
    let cargo_dir = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"))
        .join("bin");
    for _ in 0..2 {
        let out = std::process::Command::new("bash")
            .arg("-c")
            // As in the README, with a command that returns instead of serving.
            .arg("./install.sh && ~/.local/bin/hoop-broker --version")
            .current_dir(&repo)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", format!("{path}:{}", cargo_dir.display()))
            .env("HOOP_INSTALL_FROM", built_dir)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:#?}");
        assert!(said.contains("hoop-broker"), "{said}");
        assert!(said.contains("added"), "{said}");
    }
    let profile = std::fs::read_to_string(home.path().join(".profile")).unwrap();
    assert_eq!(
        profile.matches("added by hoop's install.sh").count(),
        1,
        "{profile}"
    );
    let out = std::process::Command::new("bash")
        .args(["-lc", "command -v hoopctl && hoopctl --version"])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:#?}");
    assert!(
        said.contains(&format!("{}/.local/bin/hoopctl", home.path().display())),
        "{said}"
    );
}

/// The broker's log in a file (not a terminal) has no colour escape codes.
#[test]
fn broker_log_to_a_file_has_no_colour_codes() {
    let broker = start_broker(&[]);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let log = std::fs::read(&broker.log_file).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("listening on"),
        "log is empty?"
    );
    assert!(
        !log.contains(&0x1b),
        "ANSI escape in the broker log: {}",
        String::from_utf8_lossy(&log)
    );
}

/// Runs the bash completion `hoopctl completions bash` installs, as bash
/// does at TAB after `words`, for `user`; returns the offered words.
fn bash_complete(user: &User, words: &[&str]) -> Vec<String> {
    let hoopctl = bin("hoopctl");
    let dir = hoopctl.parent().unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    let script = format!(
        "source <(hoopctl completions bash)\n\
         COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_TYPE=9\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _clap_complete_hoopctl hoopctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env("HOOP_CONFIG_DIR", &user.config_dir)
        .env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        )
        .env_remove("HOOP_TOKEN")
        .env_remove("HOOP_BROKER");
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// TAB after `hoopctl connect ` offers the connections this user may use,
/// from the broker; without a login it still completes flags and commands.
#[test]
fn bash_completion_offers_connection_names() {
    let (_db, broker, _dir) = start_demo_broker("", "");
    let alice = User::new("alice", &broker);
    let carol = User::new("carol", &broker);
    alice.login().assert_ok();

    let offered = bash_complete(&alice, &["hoopctl", "connect", ""]);
    assert!(offered.iter().any(|w| w == "demo-pg"), "{offered:?}");
    let offered = bash_complete(&alice, &["hoopctl", "exec", "demo"]);
    assert!(offered.iter().any(|w| w == "demo-pg"), "{offered:?}");
    let offered = bash_complete(&alice, &["hoopctl", "conn"]);
    assert!(
        offered.iter().any(|w| w == "connect") && offered.iter().any(|w| w == "connections"),
        "{offered:?}"
    );

    // Not logged in: no names, no error text in the command line, flags still.
    let offered = bash_complete(&carol, &["hoopctl", "connect", ""]);
    assert!(!offered.iter().any(|w| w == "demo-pg"), "{offered:?}");
    assert!(!offered.iter().any(|w| w.contains("error")), "{offered:?}");
    let offered = bash_complete(&carol, &["hoopctl", "connect", "--re"]);
    assert!(offered.iter().any(|w| w == "--reason"), "{offered:?}");
}
