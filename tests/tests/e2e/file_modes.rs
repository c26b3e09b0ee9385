//! Every file the broker writes that holds audit or session data is
//! owner-only (issue #21): files 0600 in 0700 directories, including the
//! SQLite store with its `-wal`/`-shm` files, the audit journal, the keys and
//! the development CA's key; and a data dir an admin loosened is tightened
//! back at start, with a log line saying so.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use hoop_e2e::*;

/// Every entry under `dir` whose mode is not 0700 (dirs) or 0600 (files).
fn loose_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            if mode != 0o700 {
                out.push((path.clone(), mode));
            }
            out.extend(loose_entries(&path));
        } else if mode != 0o600 {
            out.push((path, mode));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn session_with_statements(alice: &User) {
    alice
        .run(&[
            "connect",
            "demo-pg",
            "--",
            "psql",
            "-X",
            "-c",
            "select count(*) from customers",
            "-c",
            "select email from customers limit 3",
        ])
        .assert_ok();
}

#[test]
fn data_dir_files_are_0600_in_0700_dirs_even_after_an_admin_loosened_them() {
    let (_db, mut broker, _password_dir) = start_demo_broker("", "");
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    session_with_statements(&alice);

    let data = broker.data_dir.clone();
    // The files that matter are there, and owner-only.
    for name in [
        "hoop.sqlite3",
        "hoop.sqlite3-wal",
        "hoop.sqlite3-shm",
        "ca.key",
        "ca.pem",
        "masking.key",
        "idp/signing-key.pem",
    ] {
        let p = data.join(name);
        assert!(
            p.exists(),
            "{} missing; data dir holds {:?}",
            p.display(),
            files_under(&data)
                .iter()
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    assert_eq!(mode(&data), 0o700);
    let loose = loose_entries(&data);
    assert!(loose.is_empty(), "not owner-only: {loose:?}");

    // An admin (or an older broker) left the dir and the store world-readable.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["hoop.sqlite3", "hoop.sqlite3-wal", "ca.key"] {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(data.join("idp"), std::fs::Permissions::from_mode(0o755)).unwrap();
    broker.restart(false);
    assert!(
        broker
            .log()
            .contains("tightened a data directory to mode 0700"),
        "the broker must say it changed the modes:\n{}",
        broker.log()
    );
    session_with_statements(&alice);
    assert_eq!(mode(&data), 0o700);
    let loose = loose_entries(&data);
    assert!(
        loose.is_empty(),
        "not owner-only after a restart: {loose:?}"
    );
}
