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
  hoopctl exec pg-demo -c 'select count(*) from orders'    one-shot SQL, for scripts and CI
  hoopctl exec pg-demo -o json -f report.sql | jq .statements

In CI (no login, no standing secret: the job's own OIDC token):
  GitHub Actions   permissions: id-token: write, then:
                   hoopctl --broker https://hoop.example.com exec pg-prod -f migrate.sql
  Kubernetes       mount a projected token at /var/run/secrets/tokens/hoop (audience
                   your broker trusts), then run hoopctl exec as above
  Any platform     hoopctl --token-file \"$CI_JOB_JWT_FILE\" exec pg-prod -c 'select 1'

Where the token comes from (first found wins):
  1. --token-file PATH   2. $HOOP_ID_TOKEN   3. $HOOP_TOKEN
  4. GitHub Actions ($ACTIONS_ID_TOKEN_REQUEST_URL + $ACTIONS_ID_TOKEN_REQUEST_TOKEN,
     audience --audience / $HOOP_AUDIENCE, default \"hoop\")
  5. Kubernetes projected token ($HOOP_K8S_TOKEN_PATH, default
     /var/run/secrets/tokens/hoop, if the file exists)
  6. the stored login (`hoopctl login`)
  `hoopctl whoami` shows which one was used.

Environment:
  HOOP_BROKER          broker URL (instead of --broker; config.toml is the fallback)
  HOOP_CA_FILE         CA certificate PEM for the broker (instead of --ca-file)
  HOOP_CONFIG_DIR      settings directory (default: ~/.config/hoop)
  HOOP_ID_TOKEN        a workload's OIDC ID token to present (CI)
  HOOP_TOKEN           any token the broker accepts, instead of the stored login (scripts)
  HOOP_AUDIENCE        audience of the GitHub Actions token hoopctl requests (default: hoop)
  HOOP_K8S_TOKEN_PATH  Kubernetes projected token file (default: /var/run/secrets/tokens/hoop)
  HOOP_TOKEN_STORE     where logins are kept: auto (default: OS keyring, else a 0600
                       file in the settings directory), keyring, or file
  HOOP_LOG             log filter for diagnostics on stderr, e.g. debug (default: warn)

Exit status:
  0        success
  1        error (the message says what to do next); `exec`: a statement failed
  2        usage error (unknown command, bad flag or argument; `exec` without SQL)
  3        `exec`: the connection needs an approval that did not come within --wait
  N        `connect/exec NAME -- CMD`: the exit status of CMD (128+SIGNAL when a signal ended it)
  126/127  `connect/exec NAME -- CMD`: CMD could not be started / was not found";

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
    /// Read the bearer token from this file instead of the stored login (a CI job's OIDC
    /// token, a Kubernetes projected token); re-read when the token in it expires
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Audience to request when hoopctl fetches a GitHub Actions OIDC token
    /// [default: $HOOP_AUDIENCE, then "hoop"]
    #[arg(long, global = true, value_name = "AUD")]
    pub audience: Option<String>,
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
    /// Run SQL (or a client command) on a connection, for scripts and CI; never prompts
    #[command(
        long_about = "Run SQL on a connection and exit: for scripts and CI jobs. Never prompts \
and never opens a browser.\n\n\
The SQL comes from -c SQL (repeatable; run in order), -f FILE (`-f -` is stdin), or stdin \
when neither is given and stdin is not a terminal. Each -c, the file, or stdin is sent as one \
simple-protocol query, so one input may hold several statements separated by `;` (PostgreSQL \
runs them in one implicit transaction unless the input has its own BEGIN/COMMIT). The first \
failing statement stops the run: its error and SQLSTATE go to stderr and the exit status is 1.\n\n\
-o table (default) prints each result like psql, then `(N rows)`; a statement without a \
result set prints `(N rows affected)`. -o json prints one JSON document on stdout: \
{session_id, connection, statements: [{columns, rows, rows_affected}], elapsed_ms} and, \
when a statement failed, error: {sqlstate, severity, message, detail, hint, position} \
(rows are arrays of strings or null; columns is null for a statement without a result set).\n\n\
With `-- CMD ARGS...`, exec runs CMD with the tunnel settings in its environment exactly as \
`hoopctl connect NAME -- CMD` does, and exits with CMD's status.\n\n\
Tokens: see \"Where the token comes from\" in `hoopctl --help`; a CI job's OIDC token works \
without any login. When the connection needs an approval (a later broker feature), exec \
waits up to --wait for it, then exits with status 3 and prints the request id.",
        after_help = "Examples:\n  \
hoopctl exec pg-demo -c 'select 42'\n  \
hoopctl exec pg-demo --reason 'INC-1234' -f fix.sql\n  \
echo 'select now()' | hoopctl exec pg-demo -o json\n  \
hoopctl exec pg-demo -- pg_dump -t orders > orders.sql\n  \
hoopctl --token-file /run/ci/oidc-token exec pg-prod -c 'select 1'\n\n\
Exit status: 0 success, 1 a statement failed (or another error), 2 usage error, \
3 approval still pending after --wait, N the exit status of CMD."
    )]
    Exec(ExecArgs),
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

/// `hoopctl exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Connection name (see `hoopctl connections`)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Why you need access; recorded with the session
    #[arg(short, long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// SQL to run (repeatable; each is one query, run in order)
    #[arg(short = 'c', long = "sql", value_name = "SQL", conflicts_with = "file")]
    pub sql: Vec<String>,
    /// File with SQL to run (`-` reads stdin)
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format for results
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// How long to wait for an approval when the connection requires one, e.g. 10m
    /// [default: do not wait: exit with status 3 and the request id]
    #[arg(long, value_name = "DUR", value_parser = parse_wait)]
    pub wait: Option<std::time::Duration>,
    /// Command to run with the connection settings in its environment (after `--`)
    #[arg(last = true, value_name = "CMD", conflicts_with_all = ["sql", "file", "output"])]
    pub command: Vec<OsString>,
}

/// `--wait`: a humantime duration ("90s", "10m", "1h 30m"), at most a day.
fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 90s, 10m, 1h)"))?;
    if d > std::time::Duration::from_secs(24 * 3600) {
        return Err("at most 24h".into());
    }
    Ok(d)
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
    fn exec_takes_sql_file_or_a_command_but_not_both() {
        let Command::Exec(a) = parse(&["exec", "pg", "-c", "select 1", "-c", "select 2"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.sql, ["select 1", "select 2"]);
        assert_eq!(a.output, OutputFormat::Table);
        assert!(a.command.is_empty() && a.file.is_none() && a.wait.is_none());

        let Command::Exec(a) = parse(&["exec", "pg", "--wait", "10m", "--", "psql", "-tAc", "x"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.command, ["psql", "-tAc", "x"]);
        assert_eq!(a.wait, Some(std::time::Duration::from_secs(600)));

        for bad in [
            &["exec", "pg", "-c", "x", "-f", "f.sql"][..],
            &["exec", "pg", "-c", "x", "--", "psql"],
            &["exec", "pg", "-o", "json", "--", "psql"],
            &["exec", "pg", "--wait", "soon", "-c", "x"],
            &["exec", "pg", "--wait", "2days", "-c", "x"],
            &["exec", "-c", "x"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn token_flags_are_global() {
        let cli = parse(&[
            "exec",
            "pg",
            "--token-file",
            "/t",
            "--audience",
            "a",
            "-c",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.global.token_file, Some(PathBuf::from("/t")));
        assert_eq!(cli.global.audience.as_deref(), Some("a"));
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
            "exec",
            "completions",
            "Exit status",
            "HOOP_TOKEN",
            "HOOP_ID_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "HOOP_K8S_TOKEN_PATH",
        ] {
            assert!(help.contains(needle), "missing {needle} in:\n{help}");
        }
    }
}
