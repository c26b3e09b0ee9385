//! File modes for everything the broker keeps on disk: owner-only.
//!
//! The data dir holds every statement's text (the SQLite store and audit
//! log, their `-wal`/`-shm` and journal files), session recordings, the
//! audit signing key, the development CA's key and the identity provider's
//! key. The rule: files 0600, directories 0700, whoever created the dir.
//!
//! Two mechanisms, so that no single forgotten `mode(0o600)` leaks a file:
//!
//! - [`restrict_umask`]: the `hoop-broker` binary starts with umask `077`, so
//!   every file it (or SQLite, or a library) creates is owner-only even when
//!   the code creating it asks for nothing in particular.
//! - [`secure_data_dir`]: at start the data dir is created 0700, or, when an
//!   admin (or an older broker) made it with looser modes, tightened to 0700
//!   with everything under it stripped of group and other bits; each change is
//!   logged, never silent. Symbolic links are not followed.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode bits that let anyone but the owner in.
const GROUP_OTHER: u32 = 0o077;

/// Sets the process umask to `077` (owner-only for everything created after).
/// Process-wide: called once, first thing, by the `hoop-broker` binary.
pub fn restrict_umask() {
    let _ = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates `dir` (and missing parents) with mode 0700, or tightens an
/// existing one to 0700 (logged). Does not look inside.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let meta = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).with_context(|| {
            format!(
                "{} has mode {mode:o}; it holds private data and must be 0700, \
                 but changing it failed (chmod 700 it, or choose another data dir)",
                dir.display()
            )
        })?;
        tracing::warn!(dir = %dir.display(), was = format!("{mode:o}"),
            "tightened a data directory to mode 0700: it holds audit and session data");
    }
    Ok(())
}

/// [`ensure_private_dir`] for the data dir, then strips group and other bits
/// from every file and directory under it (one log line with the count).
pub fn secure_data_dir(dir: &Path) -> anyhow::Result<()> {
    ensure_private_dir(dir)?;
    let mut changed = 0usize;
    let mut failed = Vec::new();
    tighten_tree(dir, &mut changed, &mut failed);
    if changed > 0 {
        tracing::warn!(dir = %dir.display(), entries = changed,
            "removed group and other permissions from files in the data directory");
    }
    if let Some(first) = failed.first() {
        tracing::warn!(dir = %dir.display(), failures = failed.len(), first = %first,
            "could not tighten the permissions of some files in the data directory");
    }
    Ok(())
}

fn tighten_tree(dir: &Path, changed: &mut usize, failed: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // symlink_metadata: a link is not followed (nor chmod-ed).
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER != 0 {
            match fs::set_permissions(&path, fs::Permissions::from_mode(mode & !GROUP_OTHER)) {
                Ok(()) => *changed += 1,
                Err(e) => failed.push(format!("{}: {e}", path.display())),
            }
        }
        if meta.is_dir() {
            tighten_tree(&path, changed, failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_loose_data_dir_and_its_files_are_tightened_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(data.join("hoop.sqlite3"), b"x").unwrap();
        fs::set_permissions(data.join("hoop.sqlite3"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(data.join("recordings")).unwrap();
        fs::set_permissions(data.join("recordings"), fs::Permissions::from_mode(0o775)).unwrap();
        fs::write(data.join("recordings/a.cast"), b"x").unwrap();
        fs::set_permissions(
            data.join("recordings/a.cast"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"x").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();

        secure_data_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("hoop.sqlite3")), 0o600);
        assert_eq!(mode(&data.join("recordings")), 0o700);
        assert_eq!(mode(&data.join("recordings/a.cast")), 0o600);
        assert_eq!(mode(&outside), 0o644, "a symlink's target is not ours");
    }

    #[test]
    fn a_missing_dir_is_created_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/b");
        ensure_private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
    }
}
