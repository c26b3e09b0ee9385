//! `hoopctl exec NAME`: run SQL (or a client command) on a connection and
//! exit, for scripts and CI jobs. Never prompts, never opens a browser.
//!
//! SQL path: open a session (as `connect` does), open ONE tunnel directly
//! (no local listener: the upgraded stream is handed to `tokio-postgres`
//! through `Config::connect_raw`), log in with the session's one-time
//! secret, and send each input (-c, -f or stdin) as one simple-protocol query,
//! so an input may hold several statements. The first error stops the run.
//!
//! `-- CMD` path: exactly `connect NAME -- CMD` (same code, `connect::serve_session`).
//!
//! SSH connections: `hoopctl exec NAME -- 'COMMAND'` runs COMMAND on the
//! target through hoopctl's own SSH client (`crate::ssh::run_remote`; no
//! `ssh` binary needed) and exits with its exit status.
//!
//! Results: `tokio-postgres`' simple query stream gives, per statement, the
//! column names, the rows as text (or NULL) and the row count of the command
//! tag, but not the tag's verb (`INSERT`, `CREATE TABLE`); so the output has
//! `rows_affected` and no verb.
//!
//! Query review: when a guardrail holds an input for review, the broker's
//! error names the review request (DETAIL `hoop review request: ID`). With
//! `--wait [DUR]` exec follows it like an access request (spinner, Ctrl-C
//! choices) and, once approved, sends the same input again in the same
//! session: the approval covers that one run. Without `--wait`, or when the
//! wait runs out, it prints the id on stdout and exits with
//! [`EXIT_APPROVAL_PENDING`].
//!
//! Exit codes: 0 all ran; [`EXIT_STATEMENT_FAILED`] (1) a statement failed,
//! or the review was denied, cancelled or expired; [`EXIT_USAGE`] (2);
//! [`EXIT_APPROVAL_PENDING`] (3) an access request or a statement review is
//! still pending (its id on stdout); 130 Ctrl-C while waiting.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hoop_shared::api::{ConnectionKind, OpenSessionResponse};
use serde::Serialize;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::Context;
use super::connect;
use crate::access::{self, Access, AccessOptions, Wait};
use crate::auth::Credentials;
use crate::cli::{ExecArgs, OutputFormat};
use crate::tunnel;

/// Exit status when a statement failed (its error and SQLSTATE are on stderr).
pub const EXIT_STATEMENT_FAILED: u8 = 1;
/// Exit status of a usage error (no SQL given, unreadable -f file).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the connection needs an approval, or a statement is held
/// for review, and no decision arrived (no `--wait`, or not within it); the
/// request id is on stdout.
pub const EXIT_APPROVAL_PENDING: u8 = access::EXIT_APPROVAL_PENDING;

/// Largest SQL input read from a file or stdin.
const MAX_INPUT: u64 = 64 * 1024 * 1024;
/// Bound on the Postgres login through the tunnel.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One input to run as one simple query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Where it came from, for error messages (`-c #2`, a file name, `stdin`).
    pub label: String,
    /// The SQL text.
    pub sql: String,
}

/// A usage problem with the input: printed, then exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Runs `hoopctl exec`.
pub async fn run(ctx: &Context, args: &ExecArgs) -> anyhow::Result<u8> {
    // Read the input before opening a session: a usage error costs nothing.
    let scripts = if args.command.is_empty() {
        let stdin_tty = std::io::stdin().is_terminal();
        match tokio::task::spawn_blocking({
            let args = args.clone();
            move || gather_input(&args, stdin_tty, &mut std::io::stdin().lock())
        })
        .await?
        {
            Ok(scripts) => Some(scripts),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let creds = ctx.credentials()?;
    let opts = AccessOptions {
        reason: args.reason.clone(),
        duration: args.duration,
        request: args.request.clone(),
        wait: match args.wait {
            Some(bound) if !args.no_wait => Wait::For(bound),
            _ => Wait::No,
        },
        // exec never prompts: a missing justification is an error naming --reason.
        prompt: false,
        spinner: std::io::stderr().is_terminal(),
    };
    let session = match access::open(&creds, &args.name, &opts).await? {
        Access::Session(session) => session,
        Access::Pending(view) => {
            access::report_pending(&view, &format!("hoopctl exec {}", args.name))?;
            return Ok(EXIT_APPROVAL_PENDING);
        }
        Access::Interrupted => return Ok(access::EXIT_INTERRUPTED),
    };
    let result = match scripts {
        // ssh: the command runs on the target (`crate::ssh`), no local child.
        _ if session.connection.kind == ConnectionKind::Ssh => {
            crate::ssh::run_remote(&creds, &session, &args.command).await
        }
        None => {
            connect::serve_session(
                &creds,
                &session,
                0,
                args.max_local_connections,
                &args.command,
            )
            .await
        }
        Some(scripts) => {
            let follow = Follow {
                opts: &opts,
                command: format!("hoopctl exec {}", args.name),
            };
            run_sql(&creds, &session, &scripts, args.output, &follow).await
        }
    };
    connect::close_session(&creds, &session.session_id).await;
    result
}

/// The SQL inputs, in order: each `-c`, or the `-f` file, or stdin (when
/// not a terminal). Nothing to run is a usage error.
pub fn gather_input(
    args: &ExecArgs,
    stdin_tty: bool,
    stdin: &mut dyn std::io::Read,
) -> Result<Vec<Script>, UsageError> {
    let scripts: Vec<Script> = if !args.sql.is_empty() {
        let many = args.sql.len() > 1;
        args.sql
            .iter()
            .enumerate()
            .map(|(i, sql)| Script {
                label: if many {
                    format!("-c #{}", i + 1)
                } else {
                    "-c".into()
                },
                sql: sql.clone(),
            })
            .collect()
    } else if let Some(path) = args.file.as_deref().filter(|p| *p != Path::new("-")) {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT).read_to_string(&mut text))
            .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
        vec![Script {
            label: path.display().to_string(),
            sql: text,
        }]
    } else if args.file.is_some() || !stdin_tty {
        let mut text = String::new();
        stdin
            .take(MAX_INPUT)
            .read_to_string(&mut text)
            .map_err(|e| UsageError(format!("cannot read SQL from stdin: {e}")))?;
        vec![Script {
            label: "stdin".into(),
            sql: text,
        }]
    } else {
        return Err(UsageError(
            "exec needs SQL: -c SQL, -f FILE, or SQL on stdin; or `-- CMD ARGS` to run a \
             client (see `hoopctl exec --help`)"
                .into(),
        ));
    };
    if let Some(empty) = scripts.iter().find(|s| s.sql.trim().is_empty()) {
        return Err(UsageError(format!("no SQL in {}", empty.label)));
    }
    Ok(scripts)
}

/// One statement's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatementResult {
    /// Column names; `None` for a statement without a result set.
    pub columns: Option<Vec<String>>,
    /// Rows, each value as PostgreSQL's text form or NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The count of the command tag (rows returned, inserted, updated...).
    pub rows_affected: u64,
}

/// A statement's error, as PostgreSQL reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SqlError {
    /// Five-character SQLSTATE, when the server sent one.
    pub sqlstate: Option<String>,
    /// ERROR, FATAL...
    pub severity: Option<String>,
    /// The message.
    pub message: String,
    /// DETAIL, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// HINT, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// 1-based character position in the input, when given.
    pub position: Option<u32>,
    /// Which input (`-c #2`, a file, stdin).
    pub input: Option<String>,
}

/// The `-o json` document.
#[derive(Debug, Clone, Serialize)]
pub struct ExecReport {
    /// The session the statements ran in (the audit trail's key).
    pub session_id: String,
    /// Connection name.
    pub connection: String,
    /// Completed statements, in order.
    pub statements: Vec<StatementResult>,
    /// Wall time from the tunnel opening to the last answer.
    pub elapsed_ms: u64,
    /// The error that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SqlError>,
}

/// How to follow a statement a guardrail held for review.
struct Follow<'a> {
    /// `--wait` (or not), and whether a spinner may show.
    opts: &'a AccessOptions,
    /// The command to run again, for the advice when it stays pending.
    command: String,
}

/// What became of an input held for review.
enum Held {
    /// Approved: it ran again with this result.
    Ran(Vec<StatementResult>, Option<SqlError>),
    /// Still pending (or interrupted): exit with this status.
    Exit(u8),
}

/// The review request a refusal names (`DETAIL: hoop review request: ID`).
pub fn review_request(e: &SqlError) -> Option<&str> {
    e.detail
        .as_deref()?
        .strip_prefix(REVIEW_DETAIL_PREFIX)
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// The DETAIL prefix the broker puts before the review request id.
pub const REVIEW_DETAIL_PREFIX: &str = "hoop review request: ";

/// The input was held for review `id`: waits for the decision as `--wait`
/// says and, once approved, runs it again (the approval covers one run).
async fn follow_held(
    creds: &Credentials,
    client: &tokio_postgres::Client,
    script: &Script,
    id: &str,
    follow: &Follow<'_>,
) -> anyhow::Result<Held> {
    eprintln!(
        "The statement in {} is held for review: request {id}.",
        script.label
    );
    match access::follow_review(creds, id, follow.opts).await? {
        access::Review::Approved(view) => {
            tracing::debug!(review = %view.id, "approved; running the statement again");
            let (done, error) = run_script(client, script).await;
            Ok(Held::Ran(done, error))
        }
        access::Review::Pending(view) => {
            access::report_pending(&view, &follow.command)?;
            Ok(Held::Exit(EXIT_APPROVAL_PENDING))
        }
        access::Review::Interrupted => Ok(Held::Exit(access::EXIT_INTERRUPTED)),
    }
}

async fn run_sql(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    scripts: &[Script],
    output: OutputFormat,
    follow: &Follow<'_>,
) -> anyhow::Result<u8> {
    if session.connection.kind != ConnectionKind::Postgres {
        anyhow::bail!("{} is not a database connection", session.connection.name);
    }
    let started = Instant::now();
    let (client, conn_task) = pg_client(creds, session, "hoopctl exec").await?;

    let mut report = ExecReport {
        session_id: session.session_id.clone(),
        connection: session.connection.name.clone(),
        statements: Vec::new(),
        elapsed_ms: 0,
        error: None,
    };
    let mut out = std::io::stdout().lock();
    for script in scripts {
        let (mut done, mut error) = run_script(&client, script).await;
        if let Some(id) = error.as_ref().and_then(review_request).map(str::to_owned) {
            // What completed before the held statement is shown first.
            if output == OutputFormat::Table {
                for st in &done {
                    out.write_all(format_table(st).as_bytes())?;
                }
                out.flush()?;
            }
            report.statements.append(&mut done);
            match follow_held(creds, &client, script, &id, follow).await {
                Ok(Held::Ran(again, again_error)) => (done, error) = (again, again_error),
                Ok(Held::Exit(code)) => {
                    drop(client);
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
                    return Ok(code);
                }
                Err(e) => {
                    drop(client);
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
                    return Err(e);
                }
            }
        }
        if output == OutputFormat::Table {
            for st in &done {
                out.write_all(format_table(st).as_bytes())?;
            }
            out.flush()?;
        }
        report.statements.extend(done);
        if let Some(error) = error {
            report.error = Some(error);
            break;
        }
    }
    drop(client);
    // The client's drop sends Terminate; give the connection a moment to say goodbye.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    if output == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
    }
    match &report.error {
        None => Ok(0),
        Some(e) => {
            eprint!("{}", format_error(e));
            Ok(EXIT_STATEMENT_FAILED)
        }
    }
}

/// Opens one tunnel for `session` (no local listener) and logs in to the
/// database through it with the session's one-time secret; the task drives
/// the connection until the client is dropped. Shared with `hoopctl mcp`.
pub async fn pg_client(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    application_name: &str,
) -> anyhow::Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let target = connect::tunnel_target(creds, session);
    let stream = tunnel::open(&target, None)
        .await
        .with_context(|| format!("cannot open a tunnel to {}", session.connection.name))?;

    let mut config = tokio_postgres::Config::new();
    config
        .user(&session.client_user)
        .password(session.tunnel_secret.expose())
        .application_name(application_name);
    if let Some(db) = &session.connection.database {
        config.dbname(db);
    }
    let (client, connection) =
        tokio::time::timeout(LOGIN_TIMEOUT, config.connect_raw(stream, NoTls))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the database login through the tunnel took over {}s",
                    LOGIN_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot log in through the tunnel: {}",
                    describe_pg_error(&e)
                )
            })?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {e}");
        }
    });
    Ok((client, conn_task))
}

/// Runs one input; returns the statements that completed and the error
/// that stopped it, if any.
async fn run_script(
    client: &tokio_postgres::Client,
    script: &Script,
) -> (Vec<StatementResult>, Option<SqlError>) {
    let mut done = Vec::new();
    let mut current = StatementResult::default();
    let error = match client.simple_query_raw(&script.sql).await {
        Err(e) => Some(sql_error(&e, script)),
        Ok(stream) => {
            let mut stream = std::pin::pin!(stream);
            let mut error = None;
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(SimpleQueryMessage::RowDescription(cols)) => {
                        current.columns = Some(cols.iter().map(|c| c.name().to_owned()).collect());
                    }
                    Ok(SimpleQueryMessage::Row(row)) => {
                        if current.columns.is_none() {
                            current.columns =
                                Some(row.columns().iter().map(|c| c.name().to_owned()).collect());
                        }
                        current.rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_owned))
                                .collect(),
                        );
                    }
                    Ok(SimpleQueryMessage::CommandComplete(n)) => {
                        current.rows_affected = n;
                        done.push(std::mem::take(&mut current));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        error = Some(sql_error(&e, script));
                        break;
                    }
                }
            }
            error
        }
    };
    (done, error)
}

pub fn sql_error(e: &tokio_postgres::Error, script: &Script) -> SqlError {
    match e.as_db_error() {
        Some(db) => SqlError {
            sqlstate: Some(db.code().code().to_owned()),
            severity: Some(db.severity().to_owned()),
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            position: match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
            input: Some(script.label.clone()),
        },
        None => SqlError {
            message: describe_pg_error(e),
            input: Some(script.label.clone()),
            ..SqlError::default()
        },
    }
}

/// A tokio-postgres error in one line: the server's words when it sent any.
fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => crate::api::root_cause(e),
    }
}

/// The error as psql shows it, with the SQLSTATE and the input it came from.
pub fn format_error(e: &SqlError) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let severity = e.severity.as_deref().unwrap_or("ERROR");
    let _ = write!(s, "{severity}:  {}", e.message);
    if let Some(code) = &e.sqlstate {
        let _ = write!(s, " (SQLSTATE {code})");
    }
    s.push('\n');
    if let Some(d) = &e.detail {
        let _ = writeln!(s, "DETAIL:  {d}");
    }
    if let Some(h) = &e.hint {
        let _ = writeln!(s, "HINT:  {h}");
    }
    match (&e.input, e.position) {
        (Some(input), Some(p)) => {
            let _ = writeln!(s, "in {input}, at character {p}");
        }
        (Some(input), None) => {
            let _ = writeln!(s, "in {input}");
        }
        _ => {}
    }
    s
}

/// A result as psql's aligned format prints it: centred headers, ` | `
/// between columns, a `-+-` rule, rows, then `(N rows)`. NULL prints empty.
/// A statement without a result set prints `(N rows affected)`.
pub fn format_table(st: &StatementResult) -> String {
    use std::fmt::Write as _;
    let Some(columns) = &st.columns else {
        let n = st.rows_affected;
        return format!("({n} row{} affected)\n", if n == 1 { "" } else { "s" });
    };
    let width = |v: &str| v.chars().count();
    let mut widths: Vec<usize> = columns.iter().map(|c| width(c)).collect();
    for row in &st.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(v.as_deref().unwrap_or("")));
        }
    }
    let mut s = String::new();
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| {
            let pad = w - width(c);
            format!("{}{c}{}", " ".repeat(pad / 2), " ".repeat(pad - pad / 2))
        })
        .collect();
    let _ = writeln!(s, " {}", header.join(" | ").trim_end());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    let _ = writeln!(s, "{}", rule.join("+"));
    for row in &st.rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{:<w$}", v.as_deref().unwrap_or(""), w = *w))
            .collect();
        let _ = writeln!(s, " {}", cells.join(" | ").trim_end());
    }
    let n = st.rows.len();
    let _ = writeln!(s, "({n} row{})", if n == 1 { "" } else { "s" });
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {

    use super::*;
    use clap::Parser as _;

    fn args(cli: &[&str]) -> ExecArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["hoopctl", "exec", "pg"].iter().chain(cli.iter()).copied(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Exec(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn input_comes_from_c_then_f_then_stdin() {
        let mut none = std::io::empty();
        let s = gather_input(
            &args(&["-c", "select 1", "-c", "select 2"]),
            true,
            &mut none,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[1].label.as_str(), s[1].sql.as_str()),
            ("-c #2", "select 2")
        );

        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("q.sql");
        std::fs::write(&f, "select 1; select 2;").unwrap();
        let s = gather_input(&args(&["-f", f.to_str().unwrap()]), true, &mut none).unwrap();
        assert_eq!(s[0].sql, "select 1; select 2;");

        let mut stdin = "select 3".as_bytes();
        let s = gather_input(&args(&[]), false, &mut stdin).unwrap();
        assert_eq!(
            (s[0].label.as_str(), s[0].sql.as_str()),
            ("stdin", "select 3")
        );
        let mut stdin = "select 4".as_bytes();
        let s = gather_input(&args(&["-f", "-"]), true, &mut stdin).unwrap();
        assert_eq!(s[0].sql, "select 4");
    }

    #[test]
    fn missing_or_empty_input_is_a_usage_error() {
        let mut none = std::io::empty();
        let e = gather_input(&args(&[]), true, &mut none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-c SQL") && e.contains("-- CMD"), "{e}");
        let e = gather_input(&args(&[]), false, &mut none)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no SQL in stdin");
        let e = gather_input(&args(&["-c", " "]), true, &mut none)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no SQL in -c");
        let e = gather_input(&args(&["-f", "/nonexistent/q.sql"]), true, &mut none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/q.sql"), "{e}");
    }

    #[test]
    fn tables_look_like_psql() {
        let st = StatementResult {
            columns: Some(vec!["id".into(), "email".into()]),
            rows: vec![
                vec![Some("1".into()), Some("a@example.com".into())],
                vec![Some("22".into()), None],
            ],
            rows_affected: 2,
        };
        let expected = [
            " id |     email",
            "----+---------------",
            " 1  | a@example.com",
            " 22 |",
            "(2 rows)",
            "",
            "",
        ];
        assert_eq!(format_table(&st), expected.join("\n"));
        let one = StatementResult {
            columns: Some(vec!["?column?".into()]),
            rows: vec![vec![Some("42".into())]],
            rows_affected: 1,
        };
        assert_eq!(
            format_table(&one),
            " ?column?\n----------\n 42\n(1 row)\n\n"
        );
        let none = StatementResult {
            columns: None,
            rows: vec![],
            rows_affected: 3,
        };
        assert_eq!(format_table(&none), "(3 rows affected)\n");
    }

    #[test]
    fn errors_carry_sqlstate_position_and_input() {
        let e = SqlError {
            sqlstate: Some("42601".into()),
            severity: Some("ERROR".into()),
            message: "syntax error at or near \"selec\"".into(),
            hint: Some("h".into()),
            position: Some(1),
            input: Some("-c #2".into()),
            ..SqlError::default()
        };
        assert_eq!(
            format_error(&e),
            "ERROR:  syntax error at or near \"selec\" (SQLSTATE 42601)\nHINT:  h\nin -c #2, at character 1\n"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["sqlstate"], "42601");
        assert_eq!(json["position"], 1);
        assert!(json.get("detail").is_none());
    }
}
