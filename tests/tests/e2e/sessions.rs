//! Session recordings through the whole path: a real psql session through
//! the broker (guardrails and masking on) is listed, shown, replayed and
//! exported with `hoopctl sessions`, statement by statement, with decisions,
//! rows, errors and masked columns, and without any result value; only its
//! user, admins and auditors can read it. On a connection with
//! `record_results` the first rows of each statement are kept, masked
//! exactly as the client saw them. An SSH shell's recording is put into the
//! store, and served from there once the broker's files are gone.

use std::time::Duration;

use hoop_e2e::sshd::Sshd;
use hoop_e2e::*;

/// Emails keep their domain; card numbers are not masked (so the test can
/// prove that values psql printed are not recorded either).
const MASKING: &str = r#"
[[masking_sets]]
name = "pii"
[[masking_sets.rule]]
name = "emails"
columns = ["customers.email"]
style = "keep-domain"
"#;

/// Customer 1's real email and card number (the demo schema).
const EMAIL: &str = "ada.example@example.com";
const CARD: &str = "4111111111111111";

const COUNT: &str = "select count(*) from orders";
const DROP: &str = "DROP TABLE orders";
const TYPO: &str = "select nope from customers";
const SECRET: &str = "select email, card_number from customers where id = 1";

fn json(run: &Run) -> serde_json::Value {
    run.assert_ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
}

/// The recorded statement whose text is `sql`.
fn statement<'a>(detail: &'a serde_json::Value, sql: &str) -> &'a serde_json::Value {
    detail["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sql"] == sql)
        .unwrap_or_else(|| panic!("{sql:?} is not recorded: {detail:#}"))
}

#[test]
fn a_postgres_session_is_recorded_statement_by_statement_without_result_values() {
    let (_db, broker, _dir) = start_demo_broker(
        "guardrails = [\"no-destructive\"], masking = [\"pii\"]",
        MASKING,
    );
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let psql = alice.run(&[
        "connect",
        "demo-pg",
        "--reason",
        "ticket 42",
        "--",
        "psql",
        "-X",
        "-tA",
        "-c",
        COUNT,
        "-c",
        DROP,
        "-c",
        TYPO,
        "-c",
        SECRET,
    ]);
    // psql saw the masked email and the (unmasked) card: values that went
    // through the broker, and that the recording must not hold.
    assert!(psql.stdout.contains("****@example.com|"), "{psql:#?}");
    assert!(psql.stdout.contains(CARD), "{psql:#?}");
    assert!(psql.stderr.contains("no-destructive"), "{psql:#?}");

    let list = json(&alice.run(&["sessions", "list", "-o", "json"]));
    let session = &list["sessions"][0];
    assert_eq!(session["user"], "alice", "{list:#}");
    assert_eq!(session["connection"], "demo-pg");
    assert_eq!(session["type"], "postgres");
    assert_eq!(session["reason"], "ticket 42");
    let id = session["id"].as_str().unwrap().to_owned();
    let table = alice.run(&[
        "sessions",
        "list",
        "--connection",
        "demo-pg",
        "--since",
        "1h",
    ]);
    table.assert_ok();
    assert!(table.stdout.starts_with("ID "), "{table:#?}");
    assert!(table.stdout.contains(&id), "{table:#?}");
    let none = alice.run(&["sessions", "list", "--since", "2999-01-01T00:00:00Z"]);
    assert!(!none.stdout.contains(&id), "{none:#?}");

    // Outcomes are committed just after the statements: wait for the last.
    let detail = poll_until(
        "the last statement's outcome",
        Duration::from_secs(30),
        || {
            let d = json(&alice.run(&["sessions", "show", &id, "-o", "json"]));
            let done = d["statements"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["sql"] == SECRET && s["rows"] == 1));
            done.then_some(d)
        },
    );
    let count = statement(&detail, COUNT);
    assert_eq!(count["decision"], "allowed");
    assert_eq!(count["rows"], 1);
    assert!(count["duration_ms"].is_u64(), "{count:#}");
    assert!(count.get("error").is_none(), "{count:#}");
    let drop = statement(&detail, DROP);
    assert_eq!(drop["decision"], "blocked");
    assert!(
        drop["rule"]
            .as_str()
            .unwrap()
            .starts_with("no-destructive/"),
        "{drop:#}"
    );
    let typo = statement(&detail, TYPO);
    assert_eq!(typo["decision"], "allowed");
    assert!(typo["error"].as_str().unwrap().contains("nope"), "{typo:#}");
    let secret = statement(&detail, SECRET);
    assert_eq!(
        secret["masked_columns"],
        serde_json::json!(["public.customers.email"])
    );
    assert!(
        detail["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("results").is_none()),
        "no record_results, no values: {detail:#}"
    );
    let seqs: Vec<u64> = [COUNT, DROP, TYPO, SECRET]
        .iter()
        .map(|sql| statement(&detail, sql)["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.is_sorted(), "in the order they ran: {seqs:?}");

    // The table form, the replay and the export: the statements and their
    // outcomes, never a result value.
    let show = alice.run(&["sessions", "show", &id]);
    show.assert_ok();
    assert!(show.stdout.contains("demo-pg (postgres)"), "{show:#?}");
    assert!(show.stdout.contains("blocked"), "{show:#?}");
    let replay = alice.run(&[
        "sessions",
        "replay",
        &id,
        "--speed",
        "100",
        "--max-idle",
        "1",
    ]);
    replay.assert_ok();
    let at = |needle: &str| {
        replay
            .stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not replayed: {replay:#?}"))
    };
    assert!(at(COUNT) < at(DROP) && at(DROP) < at(TYPO) && at(TYPO) < at(SECRET));
    assert!(
        replay.stdout.contains("-> blocked by no-destructive/"),
        "{replay:#?}"
    );
    assert!(
        replay.stdout.contains("masked: public.customers.email"),
        "{replay:#?}"
    );
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("session.json");
    alice
        .run(&["sessions", "export", &id, "--out", &file.to_string_lossy()])
        .assert_ok();
    let exported = std::fs::read(&file).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(parsed["id"], id.as_str());
    assert_eq!(parsed["statements"], detail["statements"]);
    for (what, bytes) in [
        ("show -o json", detail.to_string().into_bytes()),
        ("show", show.stdout.clone().into_bytes()),
        ("replay", replay.stdout.clone().into_bytes()),
        ("export", exported),
    ] {
        for value in [EMAIL, CARD] {
            assert!(
                !contains_bytes(&bytes, value.as_bytes()),
                "{value} in {what}"
            );
        }
    }

    // Bob may not see it, nor learn that it exists; an auditor may.
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();
    let bobs = json(&bob.run(&["sessions", "list", "-o", "json"]));
    assert!(!bobs.to_string().contains(&id), "{bobs:#}");
    for cmd in ["show", "export", "replay"] {
        let denied = bob.run(&["sessions", cmd, &id]);
        assert_ne!(denied.code(), 0, "{denied:#?}");
        assert!(denied.stderr.contains("no recorded session"), "{denied:#?}");
    }
    let missing = bob.run(&["sessions", "show", "00000000-0000-0000-0000-000000000000"]);
    assert_eq!(
        missing
            .stderr
            .replace("00000000-0000-0000-0000-000000000000", &id),
        bob.run(&["sessions", "show", &id]).stderr,
        "someone else's session answers like a missing one"
    );
    let carol = User::new("carol", &broker);
    carol.configure();
    let token = dev_token(&broker, "carol", &["auditors"]);
    let as_carol = |args: &[&str]| {
        let out = carol
            .hoopctl()
            .env("HOOP_TOKEN", &token)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let all: serde_json::Value = serde_json::from_str(&as_carol(&[
        "sessions", "list", "--user", "alice", "-o", "json",
    ]))
    .unwrap();
    assert_eq!(all["sessions"][0]["id"], id.as_str(), "{all:#}");
    let seen: serde_json::Value =
        serde_json::from_str(&as_carol(&["sessions", "show", &id, "-o", "json"])).unwrap();
    assert_eq!(seen["statements"], detail["statements"]);
}

#[test]
fn an_ssh_shell_recording_is_served_from_the_store_once_the_files_are_gone() {
    let sshd = Sshd::start();
    let broker = start_broker_with(&[], &sshd.connection_toml("ssh-prod", ""));
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    // `script` gives hoopctl (and so ssh) a terminal: a shell with a pty.
    let (status, screen) = hoop_e2e::sshd::pty_shell(&alice, b"echo stored-$((6*7))-ok\nexit 0\n");
    assert!(status.success(), "{status:?}\n{screen}\n{}", broker.log());

    let list = json(&alice.run(&["sessions", "list", "-o", "json"]));
    assert_eq!(list["sessions"][0]["type"], "ssh", "{list:#}");
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    // Once the index says the shell ended, its bytes are on their way to
    // the store: the broker's files can go.
    poll_until(
        "the shell's end in the index",
        Duration::from_secs(30),
        || {
            let d = json(&alice.run(&["sessions", "show", &id, "-o", "json"]));
            d["ssh"]["entries"][0]["ended_at"].is_f64().then_some(())
        },
    );
    std::fs::remove_dir_all(broker.data_dir.join("recordings")).unwrap();
    let cast = poll_until(
        "the recording from the store",
        Duration::from_secs(30),
        || {
            let r = alice.run(&["sessions", "export", &id]);
            r.status.success().then_some(r.stdout)
        },
    );
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert!(cast.contains("stored-42-ok"), "{cast}");
    let detail = json(&alice.run(&["sessions", "show", &id, "-o", "json"]));
    assert_eq!(detail["ssh"]["entries"][0]["kind"], "shell", "{detail:#}");
    assert_eq!(detail["ssh"]["entries"][0]["exit_status"], 0, "{detail:#}");
    let replay = alice.run(&[
        "sessions",
        "replay",
        &id,
        "--speed",
        "50",
        "--max-idle",
        "0.2",
    ]);
    replay.assert_ok();
    assert!(replay.stdout.contains("stored-42-ok"), "{replay:#?}");
    assert!(
        !broker.data_dir.join("recordings").exists(),
        "served without recreating the files"
    );
}

/// The first ten customers' real emails (the demo schema).
const TEN_EMAILS: [&str; 10] = [
    "ada.example@example.com",
    "bob.sample@example.com",
    "carol.placeholder@example.com",
    "dan.testcase@example.com",
    "eve.fixture@example.com",
    "frank.mockwell@example.com",
    "grace.dummy@example.com",
    "hank.demo@example.com",
    "ivy.stub@example.com",
    "jack.fakename@example.com",
];

#[test]
fn record_results_keeps_the_first_rows_as_the_client_saw_them_masked() {
    const TEN: &str = "select id, email, full_name from customers order by id limit 10";
    let (_db, broker, _dir) = start_demo_broker("masking = [\"pii\"], record_results = 3", MASKING);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let psql = alice.run(&["connect", "demo-pg", "--", "psql", "-X", "-tA", "-c", TEN]);
    psql.assert_ok();
    let seen: Vec<Vec<String>> = psql
        .stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    assert_eq!(seen.len(), 10, "{psql:#?}");
    assert!(
        seen.iter()
            .all(|r| r[1].starts_with('*') && r[1].ends_with("@example.com")),
        "psql got masked emails: {psql:#?}"
    );

    let list = json(&alice.run(&["sessions", "list", "-o", "json"]));
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    poll_until("the statement's outcome", Duration::from_secs(30), || {
        let d = json(&alice.run(&["sessions", "show", &id, "-o", "json"]));
        d["statements"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["sql"] == TEN && s["rows"] == 10))
            .then_some(())
    });
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("session.json");
    alice
        .run(&["sessions", "export", &id, "--out", &file.to_string_lossy()])
        .assert_ok();
    let exported = std::fs::read(&file).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    let results = &statement(&parsed, TEN)["results"];
    assert_eq!(
        results["columns"],
        serde_json::json!(["id", "email", "full_name"]),
        "{parsed:#}"
    );
    assert_eq!(results["truncated"], true, "{parsed:#}");
    let kept: Vec<Vec<String>> = results["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        kept,
        seen[..3],
        "the first three rows, exactly as psql printed them"
    );
    assert_eq!(
        statement(&parsed, TEN)["masked_columns"],
        serde_json::json!(["public.customers.email"])
    );

    let show = alice.run(&["sessions", "show", &id]);
    show.assert_ok();
    assert!(show.stdout.contains("(3 of 10 rows kept)"), "{show:#?}");
    assert!(show.stdout.contains(&seen[0][1]), "{show:#?}");
    let replay = alice.run(&[
        "sessions",
        "replay",
        &id,
        "--speed",
        "100",
        "--max-idle",
        "1",
    ]);
    replay.assert_ok();
    assert!(replay.stdout.contains("(3 of 10 rows kept)"), "{replay:#?}");
    for (what, bytes) in [
        ("export", exported),
        ("show", show.stdout.into_bytes()),
        ("replay", replay.stdout.into_bytes()),
    ] {
        for email in TEN_EMAILS {
            assert!(
                !contains_bytes(&bytes, email.as_bytes()),
                "{email} in {what}"
            );
        }
    }
    // Nor anywhere in the audit log behind the recording (read by an auditor).
    let carol = User::new("carol", &broker);
    carol.configure();
    let audit = carol
        .hoopctl()
        .env("HOOP_TOKEN", dev_token(&broker, "carol", &["auditors"]))
        .args(["audit", "list", "--kind", "statement", "-o", "json"])
        .output()
        .unwrap();
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(
        audit.contains(&seen[2][1]),
        "the kept rows are in the log: {audit}"
    );
    for email in TEN_EMAILS {
        assert!(!audit.contains(email), "{email} in the audit log");
    }
}
