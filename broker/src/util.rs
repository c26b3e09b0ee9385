//! Small helpers every layer may use: the clock in Unix seconds, private
//! directories. Ground floor: imports nothing from the rest of the crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creates `dir` with mode 0700 (or checks it exists).
pub fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    crate::fsperm::ensure_private_dir(dir)
}
