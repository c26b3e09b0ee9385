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
