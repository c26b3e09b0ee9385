//! A policy kept as a directory of `*.toml` files, end to end: the broker
//! seeded from `policy_file = DIR`, and carol (a policy admin) reading it
//! back, writing it out, and applying directories with the real `hoopctl`.
//! A rejected directory (the same rule name in two files) changes nothing;
//! a good one becomes the next policy version and `policy test` follows it.
//!
//! The connection points at a port nothing listens on: no test here opens a
//! session, and policy decisions never touch the target.

use std::path::{Path, PathBuf};

use hoop_e2e::*;

const IDENTITY: &str = "[identity.builtin]\npoll_interval = \"1s\"\nusers = [\n  \
     { name = \"alice\", groups = [\"engineering\"] },\n  \
     { name = \"carol\", groups = [\"admins\"] },\n]\n";

const BASE: &str = r#"# Who exists, who administers.
groups = ["engineering", "sre", "admins"]
admins = ["admins"]

[[rules]]
name = "sre-direct"
connections = ["demo-pg"]
groups = ["sre"]
access = "allow"
"#;

const ENGINEERING: &str = r#"# Engineering asks first.
[[rules]]
name = "engineering-jit"
connections = ["demo-pg"]
groups = ["engineering"]
access = "approval"
justification = true
approvers = { groups = ["sre"] }
default_duration = "15m"
max_duration = "1h"
"#;

/// Writes `files` into a new directory `name` under `root`.
fn policy_dir(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

/// `policy get` as printed: each file under its `# file:` line.
fn printed(files: &[(&str, &str)]) -> String {
    files
        .iter()
        .map(|(name, text)| format!("# file: {name}\n{text}"))
        .collect()
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"))
}

/// 1-based line and column of the first `needle` in `text`.
fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap();
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, col)
}

#[test]
fn a_policy_directory_is_read_shown_written_out_and_applied_as_one_version() {
    let tmp = tempfile::tempdir().unwrap();
    let seeded = [("10-base.toml", BASE), ("20-engineering.toml", ENGINEERING)];
    let seed = policy_dir(tmp.path(), "seed.d", &seeded);
    // Files other than *.toml are not part of the policy.
    std::fs::write(seed.join("README.md"), "groups = not toml at all").unwrap();

    let target = PgConnection {
        name: "demo-pg".into(),
        host: "127.0.0.1".into(),
        port: closed_port(),
        database: "demo".into(),
        user: "app".into(),
        password: Secret::generate(16),
        allow_groups: vec![],
    };
    let broker = start_broker_config(
        &[target],
        &format!("policy_file = {:?}\n", seed.to_string_lossy()),
        IDENTITY,
    );
    let carol = User::new("carol", &broker);
    carol.login().assert_ok();
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let get = || {
        let r = carol.run(&["policy", "get"]);
        r.assert_ok();
        r.stdout
    };

    // policy get shows both files, each under its name, in name order.
    assert_eq!(get(), printed(&seeded));
    let r = alice.run(&["policy", "get", "-o", "json"]);
    r.assert_ok();
    let info = json(&r);
    assert_eq!(info["version"], 1, "{info}");
    assert_eq!(info["files"][0]["name"], "10-base.toml", "{info}");
    assert_eq!(info["files"][1]["text"], ENGINEERING, "{info}");
    let rules: Vec<&str> = info["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["sre-direct", "engineering-jit"]);

    // --out-dir writes the files back; existing files are not overwritten
    // without --force, and a refusal writes nothing.
    let out = tmp.path().join("checkout");
    let r = carol.run(&["policy", "get", "--out-dir", out.to_str().unwrap()]);
    r.assert_ok();
    for (name, text) in seeded {
        assert_eq!(std::fs::read_to_string(out.join(name)).unwrap(), text);
    }
    std::fs::write(out.join("10-base.toml"), "# my local edit\n").unwrap();
    std::fs::remove_file(out.join("20-engineering.toml")).unwrap();
    let r = carol.run(&["policy", "get", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("10-base.toml") && r.stderr.contains("--force"),
        "{r:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("10-base.toml")).unwrap(),
        "# my local edit\n"
    );
    assert!(!out.join("20-engineering.toml").exists());
    let r = carol.run(&[
        "policy",
        "get",
        "--out-dir",
        out.to_str().unwrap(),
        "--force",
    ]);
    r.assert_ok();
    assert_eq!(
        std::fs::read_to_string(out.join("10-base.toml")).unwrap(),
        BASE
    );
    // What was written out is the policy in force: no changes.
    let r = carol.run(&["policy", "diff", "-f", out.to_str().unwrap()]);
    r.assert_ok();
    assert!(
        r.stdout.is_empty() && r.stderr.contains("No changes"),
        "{r:#?}"
    );

    // policy test: the rule from the second file decides for alice.
    let test = |args: &[&str]| {
        let mut all = vec!["policy", "test"];
        all.extend_from_slice(args);
        let r = alice.run(&all);
        r.assert_ok();
        r.stdout
    };
    let alice_on_demo = [
        "--user",
        "alice",
        "-g",
        "engineering",
        "--connection",
        "demo-pg",
    ];
    let d = test(&alice_on_demo);
    assert!(
        d.starts_with("access         approval\nrule           engineering-jit\n"),
        "{d}"
    );
    assert!(d.contains("15m by default, at most 1h"), "{d}");

    // The same rule name in two files: refused, naming both files with
    // line:column, by diff and by apply, and nothing changes.
    let dup_engineering = ENGINEERING.replace("engineering-jit", "sre-direct");
    let bad = policy_dir(
        tmp.path(),
        "bad.d",
        &[
            ("10-base.toml", BASE),
            ("20-engineering.toml", &dup_engineering),
        ],
    );
    let (line, col) = line_col(&dup_engineering, "\"sre-direct\"");
    let (first_line, first_col) = line_col(BASE, "\"sre-direct\"");
    let expected = format!(
        "{dir}/20-engineering.toml:{line}:{col}: rule \"sre-direct\" is defined twice: \
         first at {dir}/10-base.toml:{first_line}:{first_col}",
        dir = bad.display()
    );
    for args in [vec!["diff"], vec!["apply", "--yes"]] {
        let mut cmd = vec!["policy"];
        cmd.extend(&args);
        cmd.extend(["-f", bad.to_str().unwrap()]);
        let r = carol.run(&cmd);
        assert_eq!(r.code(), 1, "{cmd:?}: {r:#?}");
        assert!(
            r.stderr.lines().any(|l| l == expected),
            "{cmd:?}: no line {expected:?} in {r:#?}"
        );
        assert!(r.stderr.contains("nothing was changed"), "{r:#?}");
    }
    assert_eq!(get(), printed(&seeded));
    let r = carol.run(&["policy", "get", "-o", "json"]);
    assert_eq!(json(&r)["version"], 1, "{r:#?}");

    // A directory without *.toml files is refused before anything is sent.
    let empty = policy_dir(tmp.path(), "empty.d", &[("notes.txt", "")]);
    let r = carol.run(&["policy", "apply", "-f", empty.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("holds no *.toml files"), "{r:#?}");

    // A good directory: the second file changed, a third one added. The
    // diff goes file by file and leaves the unchanged first file out.
    let engineering_30m = ENGINEERING.replace("\"15m\"", "\"30m\"");
    let contractors = "groups = [\"contractors\"]\n\n[[rules]]\nname = \"contractors-never\"\n\
                       connections = [\"*\"]\ngroups = [\"contractors\"]\naccess = \"deny\"\n";
    let applied = [
        ("10-base.toml", BASE),
        ("20-engineering.toml", engineering_30m.as_str()),
        ("30-contractors.toml", contractors),
    ];
    let good = policy_dir(tmp.path(), "good.d", &applied);
    let r = carol.run(&["policy", "diff", "-f", good.to_str().unwrap()]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("--- 20-engineering.toml (version 1)\n+++ 20-engineering.toml\n"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("-default_duration = \"15m\"\n+default_duration = \"30m\"\n"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("--- /dev/null\n+++ 30-contractors.toml\n"),
        "{r:#?}"
    );
    assert!(!r.stdout.contains("10-base.toml"), "{r:#?}");
    // A non-admin may not apply it.
    let r = alice.run(&["policy", "apply", "-f", good.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("may not change the policy"), "{r:#?}");

    let r = carol.run(&["policy", "apply", "-f", good.to_str().unwrap(), "--yes"]);
    r.assert_ok();
    assert!(r.stdout.contains("policy version 2 is in force"), "{r:#?}");
    assert_eq!(get(), printed(&applied));

    // policy test follows the new files.
    let d = test(&alice_on_demo);
    assert!(d.contains("rule           engineering-jit\n"), "{d}");
    assert!(d.contains("30m by default, at most 1h"), "{d}");
    let d = test(&[
        "--user",
        "eve",
        "-g",
        "contractors",
        "--connection",
        "demo-pg",
    ]);
    assert!(
        d.starts_with("access  deny\nrule    contractors-never\n"),
        "{d}"
    );
    // ...and so does testing a directory that is not applied.
    let d = test(&[
        "--user",
        "alice",
        "-g",
        "engineering",
        "--connection",
        "demo-pg",
        "-f",
        seed.to_str().unwrap(),
    ]);
    assert!(d.contains("15m by default"), "{d}");

    // Applying the same directory again changes nothing.
    let r = carol.run(&["policy", "apply", "-f", good.to_str().unwrap(), "--yes"]);
    r.assert_ok();
    assert!(r.stderr.contains("No changes"), "{r:#?}");
}
