//! SSH through the broker, end to end: a real `sshd` on loopback, the real
//! broker holding the target's key, and the real OpenSSH clients (`ssh`,
//! `scp`, `sftp`) started by `hoopctl connect`.

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_e2e::sshd::{Sshd, fingerprint, keygen};
use hoop_e2e::*;

/// sshd, a broker whose `ssh-prod` holds sshd's user key (with `extra`
/// connection fields), and alice logged in.
fn setup(extra: &str) -> (Sshd, BrokerProcess, User) {
    let sshd = Sshd::start();
    let broker = start_broker_with(&[], &sshd.connection_toml("ssh-prod", extra));
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    (sshd, broker, alice)
}

/// The base64 body of the test user's private key: what must never leak.
fn key_body(sshd: &Sshd) -> String {
    let pem = std::fs::read_to_string(&sshd.user_key_file).unwrap();
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("")
}

fn assert_no_key(sshd: &Sshd, what: &str, text: &str) {
    let body = key_body(sshd);
    for line in std::fs::read_to_string(&sshd.user_key_file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
    {
        assert!(!text.contains(line), "private key bytes in {what}");
    }
    assert!(!text.contains(&body), "private key in {what}");
}

#[test]
fn ssh_command_prints_hello_and_passes_the_exit_status_through() {
    let (sshd, broker, alice) = setup("");
    let run = alice.run(&["connect", "ssh-prod", "--", "ssh", "echo hello; exit 7"]);
    assert_eq!(run.code(), 7, "{run:#?}\nbroker:\n{}", broker.log());
    assert_eq!(run.stdout.trim(), "hello", "{run:#?}");
    assert_no_key(&sshd, "hoopctl's output", &run.all());
    assert_no_key(&sshd, "the broker log", &broker.log());
    // Nothing went to ~/.ssh: hoopctl's own files are gone with it.
    assert!(
        !std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .any(
                |e| e.file_name().to_string_lossy().starts_with("hoopctl-ssh-")
                    && e.path().join("known_hosts").exists()
                    && std::fs::read_to_string(e.path().join("known_hosts"))
                        .is_ok_and(|k| k.contains(&sshd.host_key_line))
            ),
        "hoopctl left its key files behind"
    );
}

/// Runs `hoopctl connect ssh-prod -- ARGS` and returns the run.
fn connect(user: &User, args: &[&str]) -> Run {
    let mut all = vec!["connect", "ssh-prod", "--"];
    all.extend_from_slice(args);
    user.run(&all)
}

/// The recording index files the broker wrote.
fn indexes(broker: &BrokerProcess) -> Vec<serde_json::Value> {
    files_under(&broker.data_dir.join("recordings"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "json"))
        .map(|(_, b)| serde_json::from_slice(&b).unwrap())
        .collect()
}

#[test]
fn a_pty_shell_shows_a_prompt_runs_commands_and_replays_from_the_recording() {
    let (sshd, broker, alice) = setup("");
    // `script` gives hoopctl (and so ssh) a terminal; what we type goes in
    // through script's stdin. The marker is computed by the remote shell, so
    // finding it proves the command ran (the echo of our typing shows
    // `$((6*7))`, not 42).
    let (status, screen) = hoop_e2e::sshd::pty_shell(&alice, b"echo marker-$((6*7))-ok\nexit 0\n");
    assert!(
        status.success(),
        "{status:?}\n{screen}\nbroker:\n{}",
        broker.log()
    );
    assert!(screen.contains("marker-42-ok"), "{screen}");
    // A prompt: root's shell ends it with `#`.
    assert!(screen.contains("# "), "no prompt in:\n{screen}");

    // The recording: asciicast v2, terminal size, the output with timing.
    let index = indexes(&broker);
    let session = index[0]["session_id"].as_str().unwrap().to_owned();
    let shell = &index[0]["entries"][0];
    assert_eq!(shell["kind"], "shell");
    assert_eq!(shell["exit_status"], 0);
    let cast = std::fs::read_to_string(
        broker
            .data_dir
            .join("recordings")
            .join(shell["file"].as_str().unwrap()),
    )
    .unwrap();
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(header["width"].as_u64().unwrap() > 0, "{header}");
    assert!(cast.contains("marker-42-ok"), "{cast}");
    assert_no_key(&sshd, "the recordings", &cast);

    // hoopctl sessions replay plays it back (fast).
    let replay = alice.run(&[
        "sessions",
        "replay",
        &session,
        "--speed",
        "50",
        "--max-idle",
        "0.2",
    ]);
    replay.assert_ok();
    assert!(replay.stdout.contains("marker-42-ok"), "{replay:#?}");
    assert!(replay.stdout.contains("# "), "{replay:#?}");
    // Another user may not read it.
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();
    let denied = bob.run(&["sessions", "replay", &session]);
    assert_ne!(denied.code(), 0);
    assert!(denied.stderr.contains("no recorded session"), "{denied:#?}");
}

#[test]
fn scp_up_and_down_and_an_sftp_batch_work() {
    let (sshd, broker, alice) = setup("");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("up.bin");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &content).unwrap();
    let remote = format!("/tmp/hoop-scp-{}", std::process::id());
    let up = connect(
        &alice,
        &[
            "scp",
            "-q",
            &local.to_string_lossy(),
            &format!("@:{remote}"),
        ],
    );
    up.assert_ok();
    assert_eq!(std::fs::read(&remote).unwrap(), content, "uploaded bytes");
    let down = dir.path().join("down.bin");
    connect(
        &alice,
        &["scp", "-q", &format!("@:{remote}"), &down.to_string_lossy()],
    )
    .assert_ok();
    assert_eq!(std::fs::read(&down).unwrap(), content, "downloaded bytes");
    // Legacy scp protocol (an exec of `scp -t` on the target) too.
    let legacy = format!("{remote}.legacy");
    connect(
        &alice,
        &[
            "scp",
            "-O",
            "-q",
            &local.to_string_lossy(),
            &format!("@:{legacy}"),
        ],
    )
    .assert_ok();
    assert_eq!(std::fs::read(&legacy).unwrap(), content);

    let batch = dir.path().join("batch");
    let back = dir.path().join("back.bin");
    std::fs::write(
        &batch,
        format!(
            "put {} {remote}.sftp\nls -l {remote}.sftp\nget {remote}.sftp {}\n",
            local.display(),
            back.display()
        ),
    )
    .unwrap();
    let sftp = connect(&alice, &["sftp", "-b", &batch.to_string_lossy()]);
    sftp.assert_ok();
    assert!(sftp.stdout.contains(&format!("{remote}.sftp")), "{sftp:#?}");
    assert_eq!(std::fs::read(&back).unwrap(), content);
    for f in [remote.clone(), legacy, format!("{remote}.sftp")] {
        let _ = std::fs::remove_file(f);
    }
    // sftp sessions are in the index with their byte counts.
    let sftp_entries: Vec<serde_json::Value> = indexes(&broker)
        .iter()
        .flat_map(|i| i["entries"].as_array().unwrap().clone())
        .filter(|e| e["kind"] == "sftp")
        .collect();
    assert!(!sftp_entries.is_empty());
    assert!(
        sftp_entries
            .iter()
            .any(|e| e["bytes_up"].as_u64().unwrap() >= content.len() as u64),
        "{sftp_entries:?}"
    );
    // ... and their file operations: the paths, and the bytes of each file.
    let ops: Vec<&serde_json::Value> = sftp_entries
        .iter()
        .flat_map(|e| e["sftp_ops"].as_array().into_iter().flatten())
        .collect();
    let sftp_path = format!("{remote}.sftp");
    let n = content.len() as u64;
    assert!(
        ops.iter()
            .any(|o| o["op"] == "write" && o["path"] == sftp_path && o["bytes_written"] == n),
        "the upload is recorded with its path and size: {ops:?}"
    );
    assert!(
        ops.iter()
            .any(|o| o["op"] == "read" && o["path"] == sftp_path && o["bytes_read"] == n),
        "the download is recorded with its path and size: {ops:?}"
    );
    // The key never reached the client side, the logs or the recordings.
    assert_no_key(&sshd, "the broker log", &broker.log());
    assert_not_in_dir(&broker.data_dir, &key_body(&sshd));
    assert_not_in_dir(&alice.config_dir, &key_body(&sshd));
}

#[test]
fn exec_runs_a_command_for_ci_and_destructive_commands_are_blocked() {
    let (sshd, broker, alice) = setup(
        "command_rules = [{ name = \"restart\", action = \"review\", pattern = \"systemctl restart *\" }]",
    );
    let run = alice.run(&["exec", "ssh-prod", "--", "uptime"]);
    run.assert_ok();
    assert!(run.stdout.contains("load average"), "{run:#?}");
    let run = alice.run(&["exec", "ssh-prod", "--", "echo out; echo err >&2; exit 3"]);
    assert_eq!(run.code(), 3, "{run:#?}");
    assert_eq!(run.stdout.trim(), "out");
    assert_eq!(run.stderr.trim(), "err");

    // `rm -rf /` (harmless even if it ran: GNU rm preserves / by default).
    for via in [
        alice.run(&["exec", "ssh-prod", "--", "rm -rf /"]),
        connect(&alice, &["ssh", "true && rm -rf /"]),
    ] {
        assert_eq!(via.code(), 126, "{via:#?}");
        assert!(
            via.stderr
                .contains("blocked by rule no-destructive-shell/rm-recursive-system-path"),
            "{via:#?}"
        );
    }
    let run = alice.run(&["exec", "ssh-prod", "--", "echo $(id)"]);
    assert_eq!(run.code(), 126);
    assert!(run.stderr.contains("cannot be checked"), "{run:#?}");
    // A review rule holds the command (approval: see the test below).
    let run = alice.run(&["exec", "ssh-prod", "--", "systemctl restart nginx"]);
    assert_eq!(run.code(), 126);
    assert!(run.stderr.contains("held for review"), "{run:#?}");
    // Every decision is in the recording index and the audit trail.
    let entries: Vec<serde_json::Value> = indexes(&broker)
        .iter()
        .flat_map(|i| i["entries"].as_array().unwrap().clone())
        .collect();
    assert!(
        entries
            .iter()
            .any(|e| e["command"] == "uptime" && e["exit_status"] == 0)
    );
    assert!(
        entries
            .iter()
            .any(|e| e["command"] == "rm -rf /" && e["decision"] == "blocked")
    );
    assert!(entries.iter().any(|e| e["decision"] == "held_for_review"));
    assert_no_key(&sshd, "the broker log", &broker.log());
}

#[test]
fn port_forwarding_and_disallowed_shells_are_refused() {
    let (sshd, _broker, alice) = setup("allow_shell = false");
    // ssh -W (stdio forwarding) is a direct-tcpip channel like -L's.
    let run = connect(&alice, &["ssh", "-W", &format!("127.0.0.1:{}", sshd.port)]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr.contains("administratively prohibited"),
        "{run:#?}"
    );

    // ssh -L: the local port opens, but a connection through it is refused.
    let lport = closed_port();
    let mut child = alice
        .hoopctl()
        .args(["connect", "ssh-prod", "--", "ssh", "-N", "-L"])
        .arg(format!("127.0.0.1:{lport}:127.0.0.1:{}", sshd.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", lport)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("ssh -L never listened: {e}"),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).starts_with("SSH-"),
        "forwarded to sshd"
    );
    terminate(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("administratively prohibited"), "{err}");

    // allow_shell = false: a shell is refused with the reason; commands still run.
    let run = connect(&alice, &["ssh", "-tt"]);
    assert_eq!(run.code(), 126, "{run:#?}");
    assert!(
        run.all()
            .contains("interactive shells are not allowed on ssh-prod"),
        "{run:#?}"
    );
    connect(&alice, &["ssh", "true"]).assert_ok();
}

#[test]
fn a_changed_upstream_host_key_refuses_the_session_naming_both_fingerprints() {
    let sshd = Sshd::start();
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("other_key");
    keygen(&wrong);
    let wrong_line = std::fs::read_to_string(wrong.with_extension("pub")).unwrap();
    let toml = sshd
        .connection_toml("ssh-prod", "")
        .replace(&sshd.host_key_line, wrong_line.trim());
    let broker = start_broker_with(&[], &toml);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let run = connect(&alice, &["ssh", "echo should-not-run"]);
    assert_ne!(run.code(), 0);
    assert!(!run.stdout.contains("should-not-run"));
    let expected = fingerprint(&wrong.with_extension("pub"));
    let presented = fingerprint(&sshd.dir().join("ssh_host_ed25519_key.pub"));
    assert!(run.stderr.contains("SSH host key of ssh-prod"), "{run:#?}");
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert!(run.stderr.contains(&presented), "{run:#?}");
    // exec says the same.
    let run = alice.run(&["exec", "ssh-prod", "--", "true"]);
    assert_ne!(run.code(), 0);
    assert!(run.stderr.contains(&presented), "{run:#?}");
    // No credential was offered to the impostor.
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

#[test]
fn connect_without_a_command_prints_a_working_ssh_line_and_config_snippet() {
    let (_sshd, _broker, alice) = setup("");
    let mut child = alice
        .hoopctl()
        .args(["connect", "ssh-prod"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut ssh_line = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ssh_line.is_none() && Instant::now() < deadline {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            break;
        }
        if line.trim_start().starts_with("ssh -p ") {
            ssh_line = Some(line.trim().to_owned());
        }
        text.push_str(&line);
    }
    let ssh_line = ssh_line.unwrap_or_else(|| panic!("no ssh line in:\n{text}"));
    let mut rest = String::new();
    for _ in 0..12 {
        let _ = std::io::BufRead::read_line(&mut out, &mut rest);
    }
    assert!(
        rest.contains("Host ssh-prod.hoop") && rest.contains("StrictHostKeyChecking yes"),
        "{rest}"
    );
    // The printed line works as is (batch mode: no prompt could ever appear).
    let mut words: Vec<&str> = ssh_line.split_whitespace().collect();
    words.insert(1, "-oBatchMode=yes");
    let run = std::process::Command::new(words[0])
        .args(&words[1..])
        .arg("echo via-printed-line")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("via-printed-line"),
        "{run:?}"
    );
    terminate(&mut child);
}

#[test]
fn the_end_of_the_session_ends_the_ssh_session_with_a_message() {
    let sshd = Sshd::start();
    let broker = start_broker_with(
        &[],
        &format!(
            "session_ttl = \"4s\"\n{}",
            sshd.connection_toml("ssh-prod", "")
        ),
    );
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let started = Instant::now();
    let run = connect(&alice, &["ssh", "echo started; sleep 60; echo not-reached"]);
    assert!(started.elapsed() < Duration::from_secs(40), "{run:#?}");
    assert!(run.stdout.contains("started"), "{run:#?}");
    assert!(!run.stdout.contains("not-reached"), "{run:#?}");
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr.contains("hoop: the session ended at"),
        "{run:#?}"
    );
}

#[test]
fn only_allow_listed_environment_variables_reach_the_target() {
    // sshd accepts HOOP_TEST_*; the broker passes on only HOOP_TEST_A.
    let (_sshd, _broker, alice) = setup("allow_env = [\"HOOP_TEST_A\"]");
    let run = connect(
        &alice,
        &[
            "ssh",
            "-o",
            "SetEnv=HOOP_TEST_A=passed HOOP_TEST_B=leaked",
            "echo \"a=$HOOP_TEST_A b=$HOOP_TEST_B\"",
        ],
    );
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "a=passed b=", "{run:#?}");
}

#[test]
fn a_command_held_for_review_runs_once_after_another_user_approves() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n\n[[rules]]\n\
         name = \"engineering-ssh\"\nconnections = [\"ssh-prod\"]\ngroups = [\"engineering\"]\n\
         access = \"allow\"\n",
    )
    .unwrap();
    let sshd = Sshd::start();
    let extra = format!(
        "policy_file = {:?}\n{}",
        policy.to_string_lossy(),
        sshd.connection_toml(
            "ssh-prod",
            "command_rules = [{ name = \"touch-marker\", action = \"review\", pattern = \"touch /tmp/hoop-review-*\" }]",
        )
    );
    let broker = start_broker_with(&[], &extra);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();

    let marker = format!("/tmp/hoop-review-{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let command = format!("touch {marker}");
    let held = |run: &Run| -> String {
        assert_eq!(run.code(), 126, "{run:#?}");
        let at = run
            .stderr
            .find("request ")
            .unwrap_or_else(|| panic!("names the review request: {run:#?}"));
        run.stderr[at + "request ".len()..]
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()
            .unwrap()
            .to_owned()
    };

    let first = alice.run(&["exec", "ssh-prod", "--", &command]);
    let id = held(&first);
    assert!(first.stderr.contains("hoopctl requests show"), "{first:#?}");
    assert!(!std::path::Path::new(&marker).exists(), "held: not run");
    // The requester cannot approve it; bob (sre, the policy's admins) can.
    let own = alice.run(&["approve", &id]);
    assert_ne!(own.code(), 0, "{own:#?}");
    bob.run(&["approve", &id, "--comment", "ok"]).assert_ok();

    alice.run(&["exec", "ssh-prod", "--", &command]).assert_ok();
    assert!(std::path::Path::new(&marker).exists(), "ran after approval");
    std::fs::remove_file(&marker).unwrap();

    // Once: the same command again needs a new review.
    let again = alice.run(&["exec", "ssh-prod", "--", &command]);
    let second = held(&again);
    assert_ne!(second, id, "a new review request");
    assert!(!std::path::Path::new(&marker).exists());
}
