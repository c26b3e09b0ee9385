//! Small helpers every layer may use: the clock in Unix seconds, private
//! directories. Ground floor: imports nothing from the rest of the crate.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creates `dir` with mode 0700 (or checks it exists).
pub fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))
}
