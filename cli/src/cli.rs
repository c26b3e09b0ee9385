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

Access that needs an approval (just-in-time access):
  hoopctl connect pg-prod --reason 'INC-42: check orders' -- psql
                                         asks for approval, waits, then runs psql
  hoopctl requests                       your access requests and their state
  hoopctl approve list                   requests waiting for you to decide
  hoopctl approve 3f2a... --comment ok   approve one (hoopctl deny ID --reason TEXT to refuse)

Policy (who may reach what, who approves):
  hoopctl policy get > policy.toml       the policy in force
  hoopctl policy diff -f policy.toml     what applying the file would change
  hoopctl policy apply -f policy.toml    apply it (admins; asks to confirm, --yes for scripts)
  hoopctl policy test --user alice --group engineering --connection pg-prod

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
  3        an approval is pending: `connect --no-wait`, or `exec` (without --wait, or the
           approval did not come within --wait); the request id is printed on stdout
  130      Ctrl-C while waiting for an approval
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
    /// PEM file with a CA to trust for the identity provider's endpoints (login, refresh,
    /// logout), when it is in neither the system trust store ($SSL_CERT_FILE) nor the CA the
    /// broker advertises [default: $HOOP_IDP_CA_FILE]
    #[arg(long, global = true, value_name = "PEM")]
    pub idp_ca_file: Option<PathBuf>,
    /// Read the bearer token from this file instead of the stored login (a CI job's OIDC
    /// token, a Kubernetes projected token); re-read when the token in it expires
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Audience to request when hoopctl fetches a GitHub Actions OIDC token
    /// [default: $HOOP_AUDIENCE, then "hoop"]
    #[arg(long, global = true, value_name = "AUD")]
    pub audience: Option<String>,
}

/// Local connections one tunnel serves at once, unless `--max-local-connections`.
pub const DEFAULT_MAX_LOCAL_CONNECTIONS: usize = 128;

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
    #[command(
        after_help = "When the broker cannot be reached, whoami shows the identity it confirmed last \
(saved at login and at each whoami), marked as not verified now, and still exits 0.\n\n\
Examples:\n  hoopctl whoami\n  hoopctl whoami -v\n  hoopctl whoami -o json"
    )]
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
Ctrl-C.\n\n\
When the policy wants a justification and none was given with --reason, hoopctl asks for one \
(on a terminal; otherwise it says to pass --reason). When the policy wants an approval, \
hoopctl makes an access request (for --duration, or the policy's default grant), shows who \
can approve it, and waits; once approved, the session opens and lasts until the grant ends. \
A denied or expired request ends with status 1 and the approver's reason. Ctrl-C while \
waiting asks whether to cancel the request (without a terminal, Ctrl-C cancels it). With \
--no-wait, hoopctl prints the request id on stdout and exits with status 3; run the same \
command again once it is approved (an approved grant of yours for the connection is used \
as long as it lasts), or pass --request ID to wait for it.",
        after_help = "Examples:\n  \
hoopctl connect pg-demo -- psql\n  \
hoopctl connect pg-demo -- psql -c 'select 1'\n  \
hoopctl connect pg-demo --reason 'INC-1234: check orders' -- pg_dump -t orders\n  \
hoopctl connect pg-demo --port 6432          then, elsewhere: psql -h 127.0.0.1 -p 6432\n  \
hoopctl connect pg-prod --reason 'INC-42' --duration 30m -- psql     waits for an approval\n  \
id=$(hoopctl connect pg-prod --reason 'INC-42' --no-wait)            ask now, connect later:\n  \
hoopctl connect pg-prod --request \"$id\" -- psql\n\n\
Exit status: the exit status of CMD; 1 error (denied, expired, refused); 3 approval pending \
(--no-wait); 130 Ctrl-C while waiting for an approval."
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
without any login.\n\n\
Approvals: when the policy wants a justification, pass --reason (exec never prompts). When \
it wants an approval, exec makes an access request (for --duration, or the policy's default \
grant) and, without --wait, prints the request id on stdout and exits with status 3 at once. \
With --wait DUR it waits up to DUR for the decision: approved, it runs as usual; denied or \
expired, it exits with status 1; still pending, status 3 and the id. Running the same command \
again uses your approved grant for the connection (or your pending request, which it waits \
for again); --request ID names the request explicitly.",
        after_help = "Examples:\n  \
hoopctl exec pg-demo -c 'select 42'\n  \
hoopctl exec pg-demo --reason 'INC-1234' -f fix.sql\n  \
echo 'select now()' | hoopctl exec pg-demo -o json\n  \
hoopctl exec pg-demo -- pg_dump -t orders > orders.sql\n  \
hoopctl --token-file /run/ci/oidc-token exec pg-prod -c 'select 1'\n  \
hoopctl exec pg-prod --reason 'deploy 1.4' --wait 15m -f migrate.sql    wait for an approval\n\n\
Exit status: 0 success, 1 a statement failed (or another error: denied, expired), 2 usage \
error, 3 approval pending (the request id is on stdout), N the exit status of CMD."
    )]
    Exec(ExecArgs),
    /// Your access requests: list, show, cancel, revoke
    #[command(
        long_about = "Your access requests: connections the policy opens only after an approval. \
`hoopctl connect`/`exec` make them for you when a connection needs one; this command lists \
them (newest first), shows one with its approvals, cancels one you no longer need, or revokes \
a grant (approvers and policy admins; live sessions under it end at once).",
        after_help = "Examples:\n  \
hoopctl requests\n  \
hoopctl requests -o json | jq -r '.requests[] | select(.state == \"pending\") | .id'\n  \
hoopctl requests show 3f2a9c1e-...\n  \
hoopctl requests cancel 3f2a9c1e-...\n  \
hoopctl requests revoke 3f2a9c1e-... --reason 'incident closed'",
        args_conflicts_with_subcommands = true
    )]
    Requests(RequestsArgs),
    /// Requests waiting for your approval; approve one
    #[command(
        long_about = "Access requests you may decide (you are among their approvers; never your \
own): `hoopctl approve list` shows them with requester, connection, reason, duration, age and \
approvals so far; `hoopctl approve ID` approves one. A request needing several approvals is \
granted when the last one arrives. `hoopctl deny ID --reason TEXT` refuses one.",
        after_help = "Examples:\n  \
hoopctl approve list\n  \
hoopctl approve list -o json | jq -r '.requests[].id'\n  \
hoopctl approve 3f2a9c1e-... --comment 'ok for INC-42'\n  \
hoopctl deny 3f2a9c1e-... --reason 'use the read replica'",
        args_conflicts_with_subcommands = true
    )]
    Approve(ApproveArgs),
    /// Deny an access request waiting for your approval
    #[command(after_help = "Examples:\n  \
hoopctl deny 3f2a9c1e-... --reason 'use the read replica instead'")]
    Deny(DenyArgs),
    /// Read, check, apply and test the access policy
    #[command(
        long_about = "The access policy: which identities may use which connections, whether \
they need a justification or an approval, and who approves (reference: docs/policy.md). \
A policy is one TOML file or a directory of *.toml files.\n\n\
`get` prints the policy in force; `diff` validates a file or directory and shows what \
applying it would change; `apply` does that, asks to confirm (on a terminal; --yes for scripts) and makes it \
the policy in force (policy admins only; every change is audited with who and the diff); \
`test` shows how the policy decides for an identity, changing nothing.",
        after_help = "Examples:\n  \
hoopctl policy get > policy.toml\n  \
hoopctl policy get -o json | jq .policy.rules\n  \
hoopctl policy diff -f policy.toml\n  \
hoopctl policy apply -f policy.toml\n  \
hoopctl policy apply -f policy.toml --yes          from a script or CI job\n  \
hoopctl policy apply -f policy.d --yes             a directory of *.toml files\n  \
hoopctl policy test --user alice --group engineering --connection pg-prod\n  \
hoopctl policy test --user ci-deploy --workload --connection pg-prod -f policy.toml"
    )]
    Policy(PolicyArgs),
    /// Print a shell completion script
    #[command(
        long_about = "Print a shell completion script on stdout. The script asks hoopctl at each TAB, \
so it completes this version's commands and flags, and connection names for `connect` and \
`exec` from the broker (with the stored login; nothing is offered without one).",
        after_help = "Examples:\n  \
hoopctl completions bash > ~/.local/share/bash-completion/completions/hoopctl\n  \
hoopctl completions zsh > \"${fpath[1]}/_hoopctl\"\n  \
hoopctl completions fish > ~/.config/fish/completions/hoopctl.fish\n  \
hoopctl completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// The tamper-evident audit log: list, export, verify (admins and auditors)
    #[command(
        long_about = "The broker's audit log: every login refusal, session, access request and \
decision, statement and policy change is one record carrying the SHA-256 of the one before, \
and the broker signs a checkpoint (Ed25519) every N records and at shutdown, so a record \
modified, deleted, inserted or reordered in storage is found (reference: docs/audit.md). \
Policy admins and members of the `auditor` group only.\n\n\
`list` shows records (the newest --limit, oldest first); `export` writes the whole log as \
JSON Lines with hashes, checkpoints and the public keys; `verify` checks the chain and the \
signatures: of an export file offline with --file, or of a fresh export from the broker.",
        after_help = "Examples:\n  \
hoopctl audit list --since 2h\n  \
hoopctl audit list --user alice --kind statement -o json | jq '.records[].detail.sql'\n  \
hoopctl audit export -o audit.jsonl\n  \
hoopctl audit verify --file audit.jsonl --key 3f9a0c1d2e4b5a67     offline, pinning the key\n  \
hoopctl audit verify\n\n\
Exit status (verify): 0 intact (prints the count and the last checkpoint), 4 not intact (names \
the first record modified, deleted, inserted or reordered), 1 other errors."
    )]
    Audit(AuditArgs),
    /// Recorded sessions: list, show, replay and export them
    #[command(
        long_about = "Recorded sessions. A Postgres session's recording is each statement as \
received, with its time, the broker's decision (and the guardrail rule), duration, rows, masked \
columns and error; result values are never recorded. An SSH session's recording is the terminal \
of each shell as asciicast v2 (output with timing, size, resizes), plus exec commands with exit \
codes and sftp transfers with byte counts. You see your own sessions; the policy's admins and \
members of the `auditors` group see everyone's (reference: docs/sessions.md).",
        after_help = "Examples:\n  \
hoopctl sessions list --since 1h\n  \
hoopctl sessions list --user alice --connection pg-prod -o json | jq -r '.sessions[].id'\n  \
hoopctl sessions show 5f0c...              the session and its statements (or SSH commands)\n  \
hoopctl sessions replay 5f0c... --speed 4 --max-idle 2\n  \
hoopctl sessions export 5f0c... --out session.json    (an SSH shell: session.cast)"
    )]
    Sessions(SessionsArgs),
    /// Serve AI agents over MCP (stdio): connections, schemas and SQL through the broker
    #[command(
        long_about = "Run an MCP (Model Context Protocol) server on stdin/stdout for an AI agent \
host to launch. Its tools (list_connections, describe, query, request_access) reach targets only \
through the broker, as you (or the CI identity): the same policy, guardrails, masking, review and \
audit as `hoopctl exec`, with the agent named in each session's audit record. No credential \
(database password, hoop token) is ever sent to the agent. Logs go to stderr (reference: \
docs/agents.md).",
        after_help = "Agent host configuration:\n  \
command = \"hoopctl\", args = [\"mcp\", \"--agent\", \"billing-bot\"]"
    )]
    Mcp(McpArgs),
}

/// `hoopctl mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// A label for the agent, recorded with every session it opens (e.g. billing-bot)
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
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
    /// Output format (json: the broker's answer plus the token source, the
    /// broker URL and whether the broker confirmed it now)
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
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
    /// Why you need access; recorded with the session and shown to approvers
    #[arg(short, long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How long a grant to ask for when the connection needs an approval, e.g. 30m
    /// [default: the policy's; capped by its maximum]
    #[arg(long, value_name = "DUR", value_parser = parse_grant)]
    pub duration: Option<std::time::Duration>,
    /// When the connection needs an approval, ask for it, print the request id and exit
    /// with status 3 instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Use this access request (e.g. one made with --no-wait): wait for it if it is still
    /// pending, then open the session under its grant
    #[arg(long, value_name = "ID")]
    pub request: Option<String>,
    /// Most local connections relayed at once through this tunnel; one more is refused
    /// with an error. Each local connection must present the tunnel's one-time secret
    /// (or, for ssh, start its handshake) within 5 s, before the broker is contacted;
    /// see docs/tunnel.md
    #[arg(long, value_name = "N", env = "HOOP_MAX_LOCAL_CONNECTIONS",
          default_value_t = DEFAULT_MAX_LOCAL_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub max_local_connections: usize,
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
    /// How long to wait for an approval when the connection requires one, or for the
    /// review of a statement a guardrail holds (then it runs), e.g. 10m; alone: up to 24h
    /// [default: do not wait: exit with status 3 and the request id]
    #[arg(long, value_name = "DUR", value_parser = parse_wait, num_args = 0..=1,
          default_missing_value = "24h")]
    pub wait: Option<std::time::Duration>,
    /// Do not wait for an approval (the default; says so explicitly in scripts)
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,
    /// How long a grant to ask for when the connection needs an approval, e.g. 30m
    /// [default: the policy's; capped by its maximum]
    #[arg(long, value_name = "DUR", value_parser = parse_grant)]
    pub duration: Option<std::time::Duration>,
    /// Use this access request (e.g. the id an earlier exec printed with status 3)
    #[arg(long, value_name = "ID")]
    pub request: Option<String>,
    /// With a command: most local connections relayed at once (see `hoopctl connect
    /// --help`)
    #[arg(long, value_name = "N", env = "HOOP_MAX_LOCAL_CONNECTIONS",
          default_value_t = DEFAULT_MAX_LOCAL_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub max_local_connections: usize,
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

/// `--duration`: a humantime duration, longer than zero, at most 7 days
/// (the broker caps it further by the policy's maximum).
fn parse_grant(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 15m, 1h, 2h 30m)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    if d > hoop_shared::policy::LONGEST_GRANT {
        return Err("at most 7 days".into());
    }
    Ok(d)
}

/// `hoopctl requests`.
#[derive(Debug, Clone, Args)]
pub struct RequestsArgs {
    /// What to do [default: list]
    #[command(subcommand)]
    pub command: Option<RequestsCommand>,
    /// Output format of the list
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl requests ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum RequestsCommand {
    /// Your requests, newest first
    #[command(visible_alias = "ls")]
    List(OutputArgs),
    /// One request: state, reason, approvers, decisions, grant
    Show(ShowRequestArgs),
    /// Withdraw a pending request of yours
    Cancel(RequestIdArgs),
    /// End a request's grant now (its approvers and policy admins); its live sessions end
    Revoke(RevokeArgs),
}

/// `-o` alone.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl requests show`.
#[derive(Debug, Clone, Args)]
pub struct ShowRequestArgs {
    /// Request id
    #[arg(value_name = "ID")]
    pub id: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A request id.
#[derive(Debug, Clone, Args)]
pub struct RequestIdArgs {
    /// Request id
    #[arg(value_name = "ID")]
    pub id: String,
}

/// `hoopctl requests revoke`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// Request id
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why; recorded and shown to the requester
    #[arg(short, long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `hoopctl approve`.
#[derive(Debug, Clone, Args)]
pub struct ApproveArgs {
    /// `list` [default when no ID is given]
    #[command(subcommand)]
    pub command: Option<ApproveCommand>,
    /// Request to approve
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Comment, recorded with your approval and shown to the requester
    #[arg(short = 'm', long, value_name = "TEXT", requires = "id")]
    pub comment: Option<String>,
}

/// `hoopctl approve list`.
#[derive(Debug, Clone, Subcommand)]
pub enum ApproveCommand {
    /// Pending requests you may decide (never your own)
    #[command(visible_alias = "ls")]
    List(OutputArgs),
}

/// `hoopctl deny`.
#[derive(Debug, Clone, Args)]
pub struct DenyArgs {
    /// Request to deny
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why; shown to the requester (required)
    #[arg(short, long, value_name = "TEXT")]
    pub reason: String,
}

/// `hoopctl policy`.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// What to do
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// `hoopctl policy ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Print the policy in force, or write its files into a directory
    #[command(
        long_about = "Print the policy in force. A policy kept as a directory prints each file \
under a `# file: NAME` line; --out-dir DIR writes the files back into DIR instead (a one-file \
policy as policy.toml), refusing to overwrite existing files unless --force is given.",
        after_help = "Examples:\n  \
hoopctl policy get > policy.toml\n  \
hoopctl policy get --out-dir policy.d\n  \
hoopctl policy get -o json | jq '{version, applied_by}'"
    )]
    Get(PolicyGetArgs),
    /// Validate a policy file or directory and show what applying it would change (changes nothing)
    #[command(
        long_about = "Validate a policy file or directory and show what applying it would \
change (changes nothing). A directory's *.toml files, in name order, are one document; its \
diff is shown file by file.",
        after_help = "Examples:\n  \
hoopctl policy diff -f policy.toml\n  \
hoopctl policy diff -f policy.d\n\n\
Exit status: 0 the document is valid (with or without changes), 1 it is not (every problem is \
printed as FILE:LINE:COLUMN: message)."
    )]
    Diff(PolicyFileArgs),
    /// Make a policy file or directory the policy in force (policy admins only)
    #[command(
        long_about = "Make a policy file or directory the policy in force (policy admins only).\n\n\
A directory's *.toml files (sorted by name; other files are ignored) are one document: \
groups and admins are merged, rules run in file order, and a rule name may not appear in two \
files. hoopctl validates the document and shows the diff against the policy in force first; \
an invalid document changes nothing. On a terminal it then asks to confirm; elsewhere it \
refuses unless --yes is given. The apply succeeds only if nobody changed the policy since \
the diff was made, so a review cannot be overtaken by another admin's change.",
        after_help = "Examples:\n  \
hoopctl policy apply -f policy.toml\n  \
hoopctl policy apply -f policy.d --yes"
    )]
    Apply(PolicyApplyArgs),
    /// Show how the policy decides for an identity and connection (changes nothing)
    #[command(after_help = "Examples:\n  \
hoopctl policy test --user alice --group engineering --connection pg-prod\n  \
hoopctl policy test --user ci-deploy --workload --connection pg-prod\n  \
hoopctl policy test --user bob --group sre --connection pg-prod -f new-policy.toml -o json")]
    Test(PolicyTestArgs),
}

/// Formats of `policy get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    /// The document as applied
    #[default]
    Toml,
    /// Version, author, time, document and the validated policy, as JSON
    Json,
}

/// `hoopctl policy get`.
#[derive(Debug, Clone, Args)]
pub struct PolicyGetArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = PolicyFormat::Toml)]
    pub output: PolicyFormat,
    /// Write the policy's files into DIR (created if missing) instead of printing it
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "output")]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: overwrite files that already exist
    #[arg(long, requires = "out_dir")]
    pub force: bool,
}

/// `hoopctl policy diff`.
#[derive(Debug, Clone, Args)]
pub struct PolicyFileArgs {
    /// Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up
    #[arg(short, long, value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub file: PathBuf,
}

/// `hoopctl policy apply`.
#[derive(Debug, Clone, Args)]
pub struct PolicyApplyArgs {
    /// Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up
    #[arg(short, long, value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub file: PathBuf,
    /// Apply without asking (required when not on a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

/// `hoopctl policy test`.
#[derive(Debug, Clone, Args)]
pub struct PolicyTestArgs {
    /// User name (with --workload: the service identity)
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// A group of the user (repeatable)
    #[arg(short, long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Test a workload identity (matched by `services` rules) instead of a person
    #[arg(long)]
    pub workload: bool,
    /// Connection name
    #[arg(long, value_name = "NAME")]
    pub connection: String,
    /// A statement to judge as well (guardrails)
    #[arg(long, value_name = "SQL")]
    pub sql: Option<String>,
    /// Test this policy file (or directory of *.toml files) instead of the policy in force
    #[arg(short, long, value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// What to do
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `hoopctl sessions`.
#[derive(Debug, Clone, Args)]
pub struct SessionsArgs {
    /// What to do
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// `hoopctl sessions ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, newest first (yours; everyone's for admins and auditors)
    #[command(visible_alias = "ls")]
    List(SessionsListArgs),
    /// Show a session: who, where, when, and its statements or SSH commands
    Show(SessionShowArgs),
    /// Play a session back: Postgres statements with their outcomes, or an SSH shell,
    /// at recorded speed
    Replay(ReplayArgs),
    /// Write a session's recording: JSON for Postgres, asciicast v2 for an SSH shell
    Export(SessionExportArgs),
}

/// `hoopctl sessions list`.
#[derive(Debug, Clone, Args)]
pub struct SessionsListArgs {
    /// Sessions of this user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Sessions on this connection
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Sessions opened since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (1h, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many sessions (the newest)
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl sessions show`.
#[derive(Debug, Clone, Args)]
pub struct SessionShowArgs {
    /// Session id (see `hoopctl sessions list`)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl sessions export`.
#[derive(Debug, Clone, Args)]
pub struct SessionExportArgs {
    /// Session id (see `hoopctl sessions list`)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// SSH: which shell of the session (0 = the first)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub part: usize,
}

/// `hoopctl sessions replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Session id (see `hoopctl sessions list`)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Playback speed factor (2 = twice as fast)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// Cut pauses longer than this many seconds
    #[arg(long, value_name = "SECS")]
    pub max_idle: Option<f64>,
    /// SSH: which shell of the session (0 = the first)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub part: usize,
    /// SSH: print the session's recording index (shells, commands, transfers) as JSON instead
    #[arg(long)]
    pub index: bool,
}

/// `hoopctl audit ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// List audit records (the newest --limit, oldest first)
    #[command(visible_alias = "ls")]
    List(AuditListArgs),
    /// Write the whole log as JSON Lines: records with hashes, checkpoints, public keys
    Export(AuditExportArgs),
    /// Verify the hash chain and the signed checkpoints (an export file, or the broker's log)
    Verify(AuditVerifyArgs),
}

/// `hoopctl audit list`.
#[derive(Debug, Clone, Args)]
pub struct AuditListArgs {
    /// Records since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (2h, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Records of this user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Records on this connection
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Records of this kind, or of its sub-kinds (`statement` matches `statement.blocked`)
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// At most this many records (the newest)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `hoopctl audit export`.
#[derive(Debug, Clone, Args)]
pub struct AuditExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `hoopctl audit verify`.
#[derive(Debug, Clone, Args)]
pub struct AuditVerifyArgs {
    /// Verify this export file offline instead of fetching one from the broker
    #[arg(short, long, value_name = "EXPORT")]
    pub file: Option<PathBuf>,
    /// Accept checkpoints only from this key id (repeatable; see `hoopctl audit verify` output
    /// or GET /v1/audit/keys)
    #[arg(long = "key", value_name = "KEYID")]
    pub keys: Vec<String>,
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
    use std::path::Path;

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
    fn approve_takes_an_id_or_list() {
        let Command::Approve(a) = parse(&["approve", "list", "-o", "json"]).unwrap().command else {
            panic!()
        };
        assert!(matches!(
            a.command,
            Some(ApproveCommand::List(OutputArgs {
                output: OutputFormat::Json
            }))
        ));
        let Command::Approve(a) = parse(&["approve", "r-123", "--comment", "ok"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(a.command.is_none());
        assert_eq!(a.id.as_deref(), Some("r-123"));
        assert_eq!(a.comment.as_deref(), Some("ok"));
        let Command::Approve(a) = parse(&["approve"]).unwrap().command else {
            panic!()
        };
        assert!(a.command.is_none() && a.id.is_none());

        let Command::Deny(d) = parse(&["deny", "r-1", "--reason", "no"]).unwrap().command else {
            panic!()
        };
        assert_eq!((d.id.as_str(), d.reason.as_str()), ("r-1", "no"));
        for bad in [
            &["deny", "r-1"][..],
            &["approve", "--comment", "x"],
            &["approve", "list", "r-1"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn requests_default_to_the_list() {
        let Command::Requests(r) = parse(&["requests"]).unwrap().command else {
            panic!()
        };
        assert!(r.command.is_none() && r.output == OutputFormat::Table);
        let Command::Requests(r) = parse(&["requests", "-o", "json"]).unwrap().command else {
            panic!()
        };
        assert_eq!(r.output, OutputFormat::Json);
        let Command::Requests(r) = parse(&["requests", "revoke", "r-1", "--reason", "done"])
            .unwrap()
            .command
        else {
            panic!()
        };
        let Some(RequestsCommand::Revoke(a)) = r.command else {
            panic!()
        };
        assert_eq!((a.id.as_str(), a.reason.as_deref()), ("r-1", Some("done")));
        assert!(parse(&["requests", "show"]).is_err());
    }

    #[test]
    fn access_flags_parse_durations_and_exclude_each_other() {
        let Command::Connect(a) = parse(&[
            "connect",
            "pg",
            "--duration",
            "1h 30m",
            "--no-wait",
            "--reason",
            "r",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.duration, Some(std::time::Duration::from_secs(5400)));
        assert!(a.no_wait);
        let Command::Exec(a) = parse(&["exec", "pg", "--request", "r-1", "-c", "x"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.request.as_deref(), Some("r-1"));
        for bad in [
            &["connect", "pg", "--duration", "0s"][..],
            &["connect", "pg", "--duration", "8d"],
            &["connect", "pg", "--duration", "soon"],
            &["exec", "pg", "--wait", "1m", "--no-wait", "-c", "x"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn policy_commands_parse() {
        let Command::Policy(p) = parse(&["policy", "get", "-o", "json"]).unwrap().command else {
            panic!()
        };
        assert!(matches!(
            p.command,
            PolicyCommand::Get(PolicyGetArgs {
                output: PolicyFormat::Json,
                out_dir: None,
                force: false,
            })
        ));
        let Command::Policy(p) = parse(&["policy", "get", "--out-dir", "policy.d", "--force"])
            .unwrap()
            .command
        else {
            panic!()
        };
        let PolicyCommand::Get(g) = p.command else {
            panic!()
        };
        assert_eq!(
            (g.out_dir.as_deref(), g.force),
            (Some(Path::new("policy.d")), true)
        );
        // --force only means something with --out-dir; -o does not mix with it.
        assert!(parse(&["policy", "get", "--force"]).is_err());
        assert!(parse(&["policy", "get", "--out-dir", "d", "-o", "json"]).is_err());
        let Command::Policy(p) = parse(&["policy", "apply", "-f", "p.toml", "--yes"])
            .unwrap()
            .command
        else {
            panic!()
        };
        let PolicyCommand::Apply(a) = p.command else {
            panic!()
        };
        assert!(a.yes && a.file == Path::new("p.toml"));
        let Command::Policy(p) = parse(&[
            "policy",
            "test",
            "--user",
            "alice",
            "-g",
            "engineering",
            "--group",
            "oncall",
            "--connection",
            "pg-prod",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let PolicyCommand::Test(t) = p.command else {
            panic!()
        };
        assert_eq!(t.groups, ["engineering", "oncall"]);
        assert!(!t.workload && t.file.is_none() && t.output == OutputFormat::Table);
        for bad in [
            &["policy"][..],
            &["policy", "diff"],
            &["policy", "get", "-o", "yaml"],
            &["policy", "test", "--user", "a"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn audit_commands_parse() {
        let Command::Audit(a) = parse(&[
            "audit",
            "ls",
            "--kind",
            "statement",
            "--since",
            "2h",
            "-o",
            "json",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let AuditCommand::List(l) = a.command else {
            panic!()
        };
        assert_eq!(
            (l.kind.as_deref(), l.since.as_deref(), l.limit),
            (Some("statement"), Some("2h"), 100)
        );
        assert_eq!(l.output, OutputFormat::Json);
        let Command::Audit(a) = parse(&[
            "audit", "verify", "--file", "a.jsonl", "--key", "k1", "--key", "k2",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let AuditCommand::Verify(v) = a.command else {
            panic!()
        };
        assert_eq!(v.file, Some(PathBuf::from("a.jsonl")));
        assert_eq!(v.keys, ["k1", "k2"]);
        for bad in [
            &["audit"][..],
            &["audit", "export", "x"],
            &["audit", "list", "--limit", "many"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
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
            "requests",
            "approve",
            "deny",
            "policy",
            "completions",
            "Exit status",
            "130",
            "HOOP_TOKEN",
            "HOOP_ID_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "HOOP_K8S_TOKEN_PATH",
        ] {
            assert!(help.contains(needle), "missing {needle} in:\n{help}");
        }
    }
}
