//! The local child process under a tunnel (`hoopctl connect NAME -- CMD`,
//! for Postgres in `commands/connect.rs` and SSH in `ssh.rs`): run it with the
//! signal handling below, pass its exit code on, or wait for Ctrl-C when
//! there is no CMD.
//!
//! Signals while CMD runs: the terminal delivers Ctrl-C (SIGINT) to the whole
//! foreground process group, so CMD gets it directly; hoopctl catches SIGINT
//! and ignores it (psql uses it to cancel a query, and the tunnel must outlive
//! that). SIGTERM and SIGHUP sent to hoopctl are passed on to CMD, and hoopctl
//! then waits for CMD to exit as usual.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use tokio::signal::unix::{SignalKind, signal};

/// Runs `cmd` while `server` tunnels, with the signal handling described
/// in this module's header; returns the exit code to pass on.
pub async fn run_command(
    program: &std::ffi::OsStr,
    mut cmd: tokio::process::Command,
    server: impl std::future::Future<Output = ()>,
) -> anyhow::Result<u8> {
    // Take over SIGINT *before* the child exists, so no Ctrl-C can kill
    // hoopctl (and with it the tunnel) while the child lives.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            eprintln!("error: cannot run {:?}: {e}", program);
            return Ok(code);
        }
    };
    tracing::debug!(pid = child.id(), "child started");

    tokio::pin!(server);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = &mut server => anyhow::bail!("the local listener stopped unexpectedly"),
            _ = sigint.recv() => {
                // The child got the same Ctrl-C from the terminal.
                tracing::debug!("SIGINT ignored while the child runs");
            }
            _ = sigterm.recv() => forward(&child, nix::sys::signal::Signal::SIGTERM),
            _ = sighup.recv() => forward(&child, nix::sys::signal::Signal::SIGHUP),
        }
    };
    Ok(exit_code(status))
}

fn forward(child: &tokio::process::Child, sig: nix::sys::signal::Signal) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        tracing::debug!("forwarding {sig} to the child failed: {e}");
    }
}

/// The exit code hoopctl passes on: the child's, or 128+N for signal N (as shells do).
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from((128 + sig) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

/// Waits for SIGINT or SIGTERM (no CMD: the tunnel runs until Ctrl-C);
/// fails when `server` stops first.
pub async fn wait_for_shutdown(
    server: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = server => anyhow::bail!("the local listener stopped unexpectedly"),
        _ = sigint.recv() => Ok(()),
        _ = sigterm.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        // Killed by SIGKILL (9): 137.
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
