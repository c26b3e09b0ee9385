//! The completion scripts in `completions/` match what this hoopctl generates.
//!
//! They are generated from the clap definition; a flag added without
//! regenerating them fails here, with the command that fixes it.

// Test helpers outside #[test] functions may panic on a broken setup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

const SCRIPTS: &[(&str, &str)] = &[
    ("bash", "hoopctl.bash"),
    ("zsh", "_hoopctl"),
    ("fish", "hoopctl.fish"),
    ("powershell", "_hoopctl.ps1"),
];

#[test]
fn committed_completion_scripts_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../completions");
    let mut stale = Vec::new();
    for (shell, file) in SCRIPTS {
        let out = Command::new(env!("CARGO_BIN_EXE_hoopctl"))
            .args(["completions", shell])
            .output()
            .expect("run hoopctl");
        assert!(out.status.success(), "hoopctl completions {shell} failed");
        assert!(
            !out.stdout.is_empty(),
            "hoopctl completions {shell} printed nothing"
        );
        let committed = std::fs::read(dir.join(file)).unwrap_or_default();
        if committed != out.stdout {
            stale.push(*file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale completion scripts in completions/: {stale:?}\n\
         regenerate them with: completions/regenerate.sh"
    );
}
