//! `hoopctl`: log in, then reach databases and servers through the hoop broker.
//!
//! Layout (a newcomer's map):
//! - `main.rs` (here): parse, dispatch, exit code, error printing.
//! - [`cli`]: the one clap definition behind parsing, `--help` and completions.
//! - [`config`]: which broker and CA (flags > env > `config.toml`).
//! - [`api`]: typed calls to the broker's REST API; its errors as advice.
//! - [`auth`]: the device-flow login (`auth/device.rs`), token storage
//!   (`auth/store.rs`), token loading and refresh (`auth/mod.rs`).
//! - [`tunnel`]: the local listener and the per-connection tunnels;
//!   [`pg_refusal`]: telling a Postgres client why a tunnel failed.
//! - [`access`]: what `connect`/`exec` do when the policy wants a
//!   justification or an approval (prompt, request, wait, cancel).
//! - [`render`]: tables, durations, and cleaning text other people wrote.
//! - [`commands`]: one file per command; [`mcp`]: `hoopctl mcp`, the MCP server for agents.
//!
//! Exit codes: 0 success, 1 error (for `exec`: a statement failed; for
//! `connect`/`exec`: an access request denied or expired), 2 usage error,
//! 3 an approval is pending (`connect --no-wait`, `exec` without `--wait` or
//! after it ran out; the request id is on stdout), 130 Ctrl-C while waiting
//! for an approval, and for `connect/exec NAME -- CMD` the exit code of CMD.
//! A closed stdout (`hoopctl ... | head`) is success.
//!
//! Tokens: `auth/source.rs` picks where the bearer token comes from
//! (`--token-file`, `HOOP_ID_TOKEN`, `HOOP_TOKEN`, GitHub Actions,
//! Kubernetes, then the stored login).

mod access;
mod api;
mod auth;
mod child;
mod cli;
mod commands;
mod config;
mod local_gate;
mod mcp;
mod pg_refusal;
mod render;
mod ssh;
mod tunnel;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::commands::Context;
use crate::config::Settings;

fn main() -> ExitCode {
    // A shell asking for completions at TAB time gets them and nothing else.
    commands::completions::answer_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    init_tracing();
    // reqwest and oauth2 use rustls with ring; installing the provider
    // process-wide makes that choice explicit (an error means it already is).
    let _ = rustls::crypto::ring::default_provider().install_default();

    // One thread: hoopctl's work is a relay or two and some HTTP calls, and
    // on a busy machine every wake-up handed to another worker thread is a
    // context switch in the data path (measured in bench/pg.sh).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for a keyring call stuck on a dead D-Bus daemon.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Completions(args) = &cli.command {
        // Needs no settings: works on a machine that was never configured.
        return commands::completions::run(args);
    }
    let settings = Settings::from_env(&cli.global)?;
    let ctx = Context {
        global: cli.global,
        settings,
    };
    match &cli.command {
        Command::Login(args) => commands::login::run(&ctx, args).await,
        Command::Logout => commands::logout::run(&ctx).await,
        Command::Whoami(args) => commands::whoami::run(&ctx, args).await,
        Command::Connections(args) => commands::connections::run(&ctx, args).await,
        Command::Connect(args) => commands::connect::run(&ctx, args).await,
        Command::Exec(args) => commands::exec::run(&ctx, args).await,
        Command::Requests(args) => commands::requests::run(&ctx, args).await,
        Command::Approve(args) => commands::approve::run(&ctx, args).await,
        Command::Deny(args) => commands::approve::deny(&ctx, args).await,
        Command::Policy(args) => commands::policy::run(&ctx, args).await,
        Command::Completions(args) => commands::completions::run(args),
        Command::Audit(args) => commands::audit::run(&ctx, args).await,
        Command::Sessions(args) => commands::sessions::run(&ctx, args).await,
        Command::Mcp(args) => mcp::run(&ctx, args).await,
    }
}

/// Diagnostics on stderr, filtered by `HOOP_LOG` (default: warnings only).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// True when the error is stdout closing under us: the reader has all it wanted.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        // serde_json's writer errors hide the io::Error (its `source` skips it).
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
