//! Shell completion: `hoopctl completions SHELL` prints a small script that
//! asks hoopctl itself at each TAB (clap_complete's dynamic engine), so
//! completions always match this binary's flags and can offer values only
//! the broker knows: the connection names this user may use.
//!
//! At TAB time the shell runs `HOOPCTL_COMPLETE=SHELL hoopctl -- WORDS...`;
//! [`answer_if_asked`] answers that before anything else runs. Asking the
//! broker uses the stored login (never prompts, never opens a browser) with a
//! short deadline; without a broker or a login, names are simply not offered.

use std::io::Write as _;
use std::time::Duration;

use clap::CommandFactory as _;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};

use super::Context;
use crate::cli::{Cli, CompletionsArgs, GlobalArgs};
use crate::config::Settings;

/// The environment variable that turns a run into a completion answer.
pub const COMPLETE_ENV: &str = "HOOPCTL_COMPLETE";

/// How long a TAB may wait for the broker's list of connections.
const LIST_DEADLINE: Duration = Duration::from_secs(3);

/// The clap command, with the broker-backed value candidates attached.
pub fn command() -> clap::Command {
    let names = ArgValueCandidates::new(connection_names);
    // mut_arg moves an argument to the end of the list, so the positions of
    // NAME and the trailing `-- CMD` are pinned explicitly.
    let with_names = |c: clap::Command| {
        c.mut_arg("name", |a| a.add(names.clone()).index(1))
            .mut_arg("command", |a| a.index(2))
    };
    Cli::command()
        .mut_subcommand("connect", with_names)
        .mut_subcommand("exec", with_names)
}

/// When the shell is asking for completions, answers and exits.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(command)
        .var(COMPLETE_ENV)
        .bin("hoopctl")
        .completer("hoopctl")
        .complete();
}

/// The completion script for `shell`, as bytes.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let name = match shell {
        clap_complete::Shell::Bash => "bash",
        clap_complete::Shell::Zsh => "zsh",
        clap_complete::Shell::Fish => "fish",
        clap_complete::Shell::PowerShell => "powershell",
        clap_complete::Shell::Elvish => "elvish",
        // A shell this hoopctl does not know: the static script.
        other => {
            let mut buf = Vec::new();
            clap_complete::generate(other, &mut command(), "hoopctl", &mut buf);
            return buf;
        }
    };
    let mut buf = Vec::new();
    if let Some(completer) = Shells::builtins().completer(name) {
        // Writing into a Vec cannot fail.
        let _ =
            completer.write_registration(COMPLETE_ENV, "hoopctl", "hoopctl", "hoopctl", &mut buf);
    }
    buf
}

/// Prints the script on stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(args.shell))?;
    out.flush()?;
    Ok(0)
}

/// The connections the logged-in user may use (empty on any failure: a TAB
/// must never print an error into the command line).
fn connection_names() -> Vec<CompletionCandidate> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let names = runtime.block_on(async {
        tokio::time::timeout(LIST_DEADLINE, list_connections())
            .await
            .ok()
            .flatten()
    });
    runtime.shutdown_background();
    names
        .unwrap_or_default()
        .into_iter()
        .map(|(name, help)| {
            let c = CompletionCandidate::new(name);
            match help {
                Some(help) => c.help(Some(help.into())),
                None => c,
            }
        })
        .collect()
}

async fn list_connections() -> Option<Vec<(String, Option<String>)>> {
    let global = GlobalArgs::default();
    let settings = Settings::from_env(&global).ok()?;
    let ctx = Context { global, settings };
    let creds = ctx.credentials().ok()?;
    let list = super::connections::list(&creds).await.ok()?;
    Some(
        list.connections
            .into_iter()
            .map(|c| (c.name, c.description))
            .collect(),
    )
}
