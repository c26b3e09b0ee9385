//! The command line, defined once: this definition feeds `--help`, argument
//! parsing and the shell completions (`hoopctl completions SHELL`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const LONG_ABOUT: &str = "\
hoopctl logs you in to a hoop broker with your organisation's identity provider, \
then opens short-lived, audited sessions to the databases and servers behind it. \
No standing passwords: the broker holds the upstream credentials, and each \
session hands your local client a one-time secret that only works through \
hoopctl's local tunnel.";

const AFTER_HELP: &str = "\
Examples:
  hoopctl login                          log in (device flow: approve in a browser)
  hoopctl login --broker https://hoop.example.com:8443 --ca-file ca.pem
  hoopctl connections                    what you may reach
  hoopctl connect pg-demo -- psql        run psql through a tunnel; exits with psql's status
  hoopctl connect pg-demo --port 6432    keep a tunnel open on 127.0.0.1:6432 until Ctrl-C
  hoopctl whoami -v

Environment:
  HOOP_BROKER        broker URL (instead of --broker; config.toml is the fallback)
  HOOP_CA_FILE       CA certificate PEM for the broker (instead of --ca-file)
  HOOP_CONFIG_DIR    settings directory (default: ~/.config/hoop)
  HOOP_TOKEN         access token to use instead of the stored login (scripts, CI)
  HOOP_TOKEN_STORE   where logins are kept: auto (default: OS keyring, else a 0600
                     file in the settings directory), keyring, or file
  HOOP_LOG           log filter for diagnostics on stderr, e.g. debug (default: warn)

Exit status:
  0        success
  1        error (the message says what to do next)
  2        usage error (unknown command, bad flag or argument)
  N        `connect NAME -- CMD`: the exit status of CMD (128+SIGNAL when a signal ended it)
  126/127  `connect NAME -- CMD`: CMD could not be started / was not found";

/// `hoopctl`: the whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "hoopctl",
    version,
    about = "Log in, then reach databases and servers through the hoop broker",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that every command accepts (they say which broker to talk to).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]
    #[arg(long, global = true, value_name = "URL")]
    pub broker: Option<String>,
    /// PEM file with the CA certificate that signs the broker's TLS certificate, when it is not
    /// in the system trust store [default: $HOOP_CA_FILE, then config.toml]
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in with your identity provider (OAuth device flow) and store the tokens
    #[command(
        long_about = "Log in with your identity provider using the OAuth 2.0 device flow \
(RFC 8628): hoopctl shows a code and a URL, you approve the login in a browser (on any \
device), and hoopctl stores the resulting tokens in the OS keyring, or in a 0600 file in \
the settings directory where no keyring is available.\n\n\
--broker and --ca-file given here are saved to config.toml, so later commands need no flags.",
        after_help = "Examples:\n  \
hoopctl login\n  \
hoopctl login --broker https://hoop.example.com:8443\n  \
hoopctl login --no-browser          print the URL and code only (e.g. over SSH)"
    )]
    Login(LoginArgs),
    /// Forget the stored login (keyring entry and token file)
    Logout,
    /// Show who the broker sees you as, and when your login expires
    #[command(after_help = "Examples:\n  hoopctl whoami\n  hoopctl whoami -v")]
    Whoami(WhoamiArgs),
    /// List the connections you may open
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  hoopctl connections\n  hoopctl connections -o json | jq -r '.connections[].name'"
    )]
    Connections(ConnectionsArgs),
    /// Open a session on a connection and tunnel local clients to it
    #[command(
        long_about = "Open a session on a connection and tunnel local clients to it.\n\n\
hoopctl listens on 127.0.0.1 (a free port unless --port) and carries each local connection \
to the broker over TLS. The broker logs in to the real server with a credential you never \
see; your client presents a one-time secret that only works through this tunnel.\n\n\
With `-- CMD ARGS...`, hoopctl runs CMD with PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE \
and PGSSLMODE set (Postgres), closes the session when CMD exits, and exits with CMD's \
status. Ctrl-C goes to CMD (psql cancels the running query), not to hoopctl.\n\n\
Without a command, hoopctl prints the connection settings and keeps the tunnel open until \
Ctrl-C.",
        after_help = "Examples:\n  \
hoopctl connect pg-demo -- psql\n  \
hoopctl connect pg-demo -- psql -c 'select 1'\n  \
hoopctl connect pg-demo --reason 'INC-1234: check orders' -- pg_dump -t orders\n  \
hoopctl connect pg-demo --port 6432          then, elsewhere: psql -h 127.0.0.1 -p 6432"
    )]
    Connect(ConnectArgs),
    /// Print a shell completion script
    #[command(
        long_about = "Print a shell completion script on stdout.",
        after_help = "Examples:\n  \
hoopctl completions bash > ~/.local/share/bash-completion/completions/hoopctl\n  \
hoopctl completions zsh > \"${fpath[1]}/_hoopctl\"\n  \
hoopctl completions fish > ~/.config/fish/completions/hoopctl.fish\n  \
hoopctl completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
}

/// `hoopctl login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Do not try to open a browser; only print the URL and the code
    #[arg(long)]
    pub no_browser: bool,
}

/// `hoopctl whoami`.
#[derive(Debug, Clone, Args)]
pub struct WhoamiArgs {
    /// Also show the broker URL, the issuer and where the login is stored
    #[arg(short, long)]
    pub verbose: bool,
}

/// Output formats for listings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people
    #[default]
    Table,
    /// The broker's JSON, for scripts
    Json,
}

/// `hoopctl connections`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Connection name (see `hoopctl connections`)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Local port to listen on (127.0.0.1); 0 picks a free port
    #[arg(short, long, value_name = "PORT", default_value_t = 0)]
    pub port: u16,
    /// Why you need access; recorded with the session
    #[arg(short, long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Command to run with the connection settings in its environment (after `--`)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `hoopctl completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Shell to generate the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hoopctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connect_takes_the_command_after_double_dash() {
        let cli = parse(&[
            "connect", "pg-demo", "--reason", "why", "--", "psql", "-c", "select 1",
        ])
        .unwrap();
        let Command::Connect(args) = cli.command else {
            panic!("not connect: {:?}", cli.command)
        };
        assert_eq!(args.name, "pg-demo");
        assert_eq!(args.port, 0);
        assert_eq!(args.reason.as_deref(), Some("why"));
        assert_eq!(args.command, ["psql", "-c", "select 1"]);
    }

    #[test]
    fn global_flags_work_before_and_after_the_command() {
        let cli = parse(&["--broker", "https://a:1", "whoami", "-v"]).unwrap();
        assert_eq!(cli.global.broker.as_deref(), Some("https://a:1"));
        let cli = parse(&["login", "--broker", "https://b:2", "--ca-file", "ca.pem"]).unwrap();
        assert_eq!(cli.global.broker.as_deref(), Some("https://b:2"));
        assert_eq!(cli.global.ca_file, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for bad in [
            &["connect"][..],
            &["connect", "x", "--port", "70000"],
            &["connections", "-o", "yaml"],
            &["frobnicate"],
            &["completions", "tcsh"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn connections_output_defaults_to_table() {
        let Command::Connections(args) = parse(&["connections"]).unwrap().command else {
            panic!()
        };
        assert_eq!(args.output, OutputFormat::Table);
        let Command::Connections(args) = parse(&["ls", "-o", "json"]).unwrap().command else {
            panic!()
        };
        assert_eq!(args.output, OutputFormat::Json);
    }

    #[test]
    fn help_lists_every_command_and_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "login",
            "logout",
            "whoami",
            "connections",
            "connect",
            "completions",
            "Exit status",
            "HOOP_TOKEN",
        ] {
            assert!(help.contains(needle), "missing {needle} in:\n{help}");
        }
    }
}
