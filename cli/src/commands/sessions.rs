//! `hoopctl sessions list|show|replay|export`: recorded sessions.
//!
//! - `list` and `show` print what `GET /v1/sessions` and
//!   `GET /v1/sessions/{id}` answer, as tables or (`-o json`) as the
//!   broker's JSON.
//! - `replay` plays a session back with the recorded timing (divided by
//!   `--speed`, pauses capped by `--max-idle`): a Postgres session's
//!   statements, each followed by its outcome; an SSH session's shell, from
//!   its asciicast v2 recording (`GET /v1/sessions/{id}/recording`), output
//!   events written to the terminal. Nothing is sent to the broker.
//! - `export` writes `GET /v1/sessions/{id}/export` to a file or stdout.
//!
//! Result rows a connection keeps (`record_results`) are printed under
//! their statement by `show` and `replay` as a small table, with how many
//! of the statement's rows were kept; `export` and `-o json` carry them as
//! the broker's JSON.
//!
//! Text recorded from someone's session (SQL, errors, values) is printed with control
//! characters replaced: replaying a session must not let its author send
//! escape sequences to the reader's terminal. The SSH shell replay is the
//! exception, by nature: it is a terminal recording.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use hoop_shared::api::{
    ConnectionKind, RecordedResults, RecordedStatement, SessionDetail, SessionList, SessionSummary,
};

use super::Context;
use crate::api::ApiError;
use crate::cli::{
    OutputFormat, ReplayArgs, SessionExportArgs, SessionShowArgs, SessionsArgs, SessionsCommand,
    SessionsListArgs,
};
use crate::render;

/// Widest SQL cell in the `show` table.
const SQL_WIDTH: usize = 60;
/// Widest error cell in the `show` table.
const ERROR_WIDTH: usize = 40;
/// Widest cell of a kept result row.
const VALUE_WIDTH: usize = 40;

/// Runs `hoopctl sessions ...`.
pub async fn run(ctx: &Context, args: &SessionsArgs) -> anyhow::Result<u8> {
    match &args.command {
        SessionsCommand::List(a) => list(ctx, a).await,
        SessionsCommand::Show(a) => show(ctx, a).await,
        SessionsCommand::Replay(a) => replay(ctx, a).await,
        SessionsCommand::Export(a) => export(ctx, a).await,
    }
}

/// `GET` a broker path with query pairs (refreshing the token once if the
/// broker says it expired); the body as bytes.
async fn get(
    ctx: &Context,
    segments: &[&str],
    query: &[(&str, String)],
) -> anyhow::Result<Vec<u8>> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let body = creds
        .call(|token| {
            let api = api.clone();
            async move {
                let mut url = api.endpoint(segments);
                if !query.is_empty() {
                    let mut pairs = url.query_pairs_mut();
                    for (k, v) in query {
                        pairs.append_pair(k, v);
                    }
                }
                let resp = api
                    .http()
                    .get(url)
                    .bearer_auth(token.expose())
                    .send()
                    .await
                    .map_err(|e| api.transport_error(&e))?;
                if !resp.status().is_success() {
                    return Err(api.error_from_response(resp).await);
                }
                resp.bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| api.transport_error(&e))
            }
        })
        .await?;
    Ok(body)
}

/// `GET` a broker path and parse its JSON.
async fn get_json<T: serde::de::DeserializeOwned>(
    ctx: &Context,
    segments: &[&str],
    query: &[(&str, String)],
) -> anyhow::Result<T> {
    let body = get(ctx, segments, query).await?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadResponse {
            url: segments.join("/"),
            status: reqwest::StatusCode::OK,
            detail: e.to_string(),
        }
        .into()
    })
}

async fn fetch_detail(ctx: &Context, id: &str) -> anyhow::Result<SessionDetail> {
    get_json(ctx, &["v1", "sessions", id], &[])
        .await
        .with_context(|| format!("cannot read session {id}"))
}

async fn list(ctx: &Context, args: &SessionsListArgs) -> anyhow::Result<u8> {
    let mut query = vec![("limit", args.limit.to_string())];
    for (k, v) in [
        ("user", &args.user),
        ("connection", &args.connection),
        ("since", &args.since),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let list: SessionList = get_json(ctx, &["v1", "sessions"], &query)
        .await
        .context("cannot list sessions")?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Table if list.sessions.is_empty() => eprintln!("No sessions match."),
        OutputFormat::Table => {
            out.write_all(sessions_table(&list.sessions, now_unix()).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn rfc3339_ms(ms: i64) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
    )
    .to_string()
}

fn kind_name(kind: Option<ConnectionKind>) -> String {
    kind.map_or_else(|| "-".to_owned(), |k| k.to_string())
}

/// `open`, `closed` or `expired`, as of `now`.
fn state(s: &SessionSummary, now: u64) -> &'static str {
    match s.closed_at {
        Some(_) => "closed",
        None if s.expires_at <= now => "expired",
        None => "open",
    }
}

/// ID OPENED USER CONNECTION TYPE STATE REASON.
pub fn sessions_table(sessions: &[SessionSummary], now: u64) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                render::clean(&s.id),
                rfc3339(s.opened_at),
                render::clean(&s.user),
                render::clean(&s.connection),
                kind_name(s.kind),
                state(s, now).to_owned(),
                s.reason
                    .as_deref()
                    .map_or_else(|| "-".into(), |r| render::clean_short(r, 40)),
            ]
        })
        .collect();
    render::table(
        &[
            "ID",
            "OPENED",
            "USER",
            "CONNECTION",
            "TYPE",
            "STATE",
            "REASON",
        ],
        &rows,
    )
}

/// How a statement ended, in words: `allowed, 1 row, 3 ms, masked: email`.
pub fn outcome_words(s: &RecordedStatement) -> String {
    let mut parts = vec![match &s.rule {
        Some(rule) => format!("{} by {}", s.decision, render::clean(rule)),
        None => s.decision.clone(),
    }];
    if let Some(rows) = s.rows {
        parts.push(format!("{rows} row{}", if rows == 1 { "" } else { "s" }));
    }
    if let Some(ms) = s.duration_ms {
        parts.push(format!("{ms} ms"));
    }
    if !s.masked_columns.is_empty() {
        parts.push(format!(
            "masked: {}",
            render::clean(&s.masked_columns.join(", "))
        ));
    }
    if let Some(e) = &s.error {
        parts.push(format!("error: {}", render::clean(e)));
    }
    parts.join(", ")
}

/// How many of a statement's result rows the recording kept:
/// `3 of 10 rows kept`, `2 rows kept`.
pub fn kept_words(s: &RecordedStatement, r: &RecordedResults) -> String {
    let kept = r.rows.len();
    let plural = if kept == 1 { "" } else { "s" };
    match (r.truncated, s.rows) {
        (true, Some(total)) => format!("{kept} of {total} rows kept"),
        (true, None) => format!("the first {kept} row{plural} kept"),
        (false, _) => format!("{kept} row{plural} kept"),
    }
}

/// Kept result rows as a table (`NULL` for null values), every line
/// starting with `indent`.
pub fn results_text(r: &RecordedResults, indent: &str) -> String {
    let header: Vec<String> = r
        .columns
        .iter()
        .map(|c| render::clean_short(c, VALUE_WIDTH))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| {
                    v.as_deref()
                        .map_or_else(|| "NULL".into(), |v| render::clean_short(v, VALUE_WIDTH))
                })
                .collect()
        })
        .collect();
    render::table(&header, &rows)
        .lines()
        .map(|l| format!("{indent}{l}\n"))
        .collect()
}

/// The session's fields, then its statements or SSH channels.
pub fn detail_text(d: &SessionDetail, now: u64) -> String {
    let s = &d.session;
    let mut fields = vec![
        ("Session", render::clean(&s.id)),
        ("User", render::clean(&s.user)),
        (
            "Connection",
            format!("{} ({})", render::clean(&s.connection), kind_name(s.kind)),
        ),
        ("State", state(s, now).to_owned()),
        ("Opened", rfc3339(s.opened_at)),
    ];
    if let Some(c) = s.closed_at {
        fields.push(("Closed", rfc3339(c)));
    }
    fields.push(("Expires", rfc3339(s.expires_at)));
    if let Some(r) = &s.reason {
        fields.push(("Reason", render::clean(r)));
    }
    if let Some(r) = &s.request_id {
        fields.push(("Request", render::clean(r)));
    }
    let mut out = render::fields(&fields);
    if !d.statements.is_empty() {
        let rows: Vec<Vec<String>> = d
            .statements
            .iter()
            .map(|st| {
                vec![
                    rfc3339_ms(st.at_ms),
                    st.decision.clone(),
                    st.rule.as_deref().map_or_else(|| "-".into(), render::clean),
                    st.rows.map_or_else(|| "-".into(), |r| r.to_string()),
                    st.duration_ms.map_or_else(|| "-".into(), |r| r.to_string()),
                    if st.masked_columns.is_empty() {
                        "-".into()
                    } else {
                        render::clean(&st.masked_columns.join(","))
                    },
                    st.error
                        .as_deref()
                        .map_or_else(|| "-".into(), |e| render::clean_short(e, ERROR_WIDTH)),
                    render::clean_short(st.sql.trim(), SQL_WIDTH),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render::table(
            &[
                "TIME", "DECISION", "RULE", "ROWS", "MS", "MASKED", "ERROR", "SQL",
            ],
            &rows,
        ));
        if d.statements_truncated {
            out.push_str("(only the newest statements are shown)\n");
        }
        for st in &d.statements {
            if let Some(r) = &st.results {
                out.push_str(&format!(
                    "\n{}  {} ({}):\n",
                    rfc3339_ms(st.at_ms),
                    render::clean_short(st.sql.trim(), SQL_WIDTH),
                    kept_words(st, r)
                ));
                out.push_str(&results_text(r, "  "));
            }
        }
    } else if let Some(index) = &d.ssh {
        let entries = index
            .get("entries")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = |e: &serde_json::Value, k: &str| {
            e.get(k)
                .map(|v| match v {
                    serde_json::Value::String(s) => render::clean_short(s, SQL_WIDTH),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "-".into())
        };
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let started = e
                    .get("started_at")
                    .and_then(serde_json::Value::as_f64)
                    .map_or_else(|| "-".into(), |t| rfc3339(t as u64));
                vec![
                    started,
                    text(e, "kind"),
                    text(e, "decision"),
                    text(e, "exit_status"),
                    text(e, "bytes_up"),
                    text(e, "bytes_down"),
                    text(e, "file"),
                    text(e, "command"),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render::table(
            &[
                "STARTED",
                "KIND",
                "DECISION",
                "EXIT",
                "UP",
                "DOWN",
                "RECORDING",
                "COMMAND",
            ],
            &rows,
        ));
    } else {
        out.push_str("\nNothing recorded.\n");
    }
    out
}

async fn show(ctx: &Context, args: &SessionShowArgs) -> anyhow::Result<u8> {
    let detail = fetch_detail(ctx, &args.id).await?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &detail)?;
            writeln!(out)?;
        }
        OutputFormat::Table => out.write_all(detail_text(&detail, now_unix()).as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

async fn export(ctx: &Context, args: &SessionExportArgs) -> anyhow::Result<u8> {
    let mut query = Vec::new();
    if args.part > 0 {
        query.push(("part", args.part.to_string()));
    }
    let body = get(ctx, &["v1", "sessions", &args.id, "export"], &query)
        .await
        .with_context(|| format!("cannot export session {}", args.id))?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("Wrote session {} to {}.", args.id, path.display());
        }
        None => {
            let mut out = std::io::stdout();
            out.write_all(&body)?;
            if !body.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
    }
    Ok(0)
}

/// One event of an asciicast v2 file.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEvent {
    /// Seconds since the start.
    pub at: f64,
    /// `o` (output), `i` (input), `r` (resize), `m` (marker).
    pub code: String,
    /// The data.
    pub data: String,
}

/// An asciicast v2 recording: header size and events.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// Terminal width.
    pub width: u64,
    /// Terminal height.
    pub height: u64,
    /// Events in order.
    pub events: Vec<CastEvent>,
}

/// Parses asciicast v2 text (header line, then one JSON array per line).
pub fn parse_cast(text: &str) -> anyhow::Result<Cast> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: serde_json::Value =
        serde_json::from_str(lines.next().context("the recording is empty")?)
            .context("the recording's header is not JSON")?;
    anyhow::ensure!(
        header.get("version").and_then(serde_json::Value::as_u64) == Some(2),
        "not an asciicast v2 recording"
    );
    let size = |k: &str| {
        header
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut events = Vec::new();
    for (n, line) in lines.enumerate() {
        let v: (f64, String, String) = serde_json::from_str(line)
            .with_context(|| format!("event {} of the recording is malformed", n + 1))?;
        events.push(CastEvent {
            at: v.0,
            code: v.1,
            data: v.2,
        });
    }
    Ok(Cast {
        width: size("width"),
        height: size("height"),
        events,
    })
}

/// The pause before each event at `speed`, idle time capped at `max_idle`.
pub fn delays(events: &[CastEvent], speed: f64, max_idle: Option<f64>) -> Vec<Duration> {
    let times: Vec<f64> = events.iter().map(|e| e.at).collect();
    gaps(&times, speed, max_idle)
}

/// The pause before each moment (seconds since the start) at `speed`,
/// idle time capped at `max_idle`.
pub fn gaps(times: &[f64], speed: f64, max_idle: Option<f64>) -> Vec<Duration> {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let mut last = 0.0;
    times
        .iter()
        .map(|&at| {
            let mut gap = (at - last).max(0.0);
            last = at;
            if let Some(cap) = max_idle.filter(|c| c.is_finite() && *c >= 0.0) {
                gap = gap.min(cap);
            }
            Duration::from_secs_f64(gap / speed)
        })
        .collect()
}

async fn replay(ctx: &Context, args: &ReplayArgs) -> anyhow::Result<u8> {
    if !args.index {
        let detail = fetch_detail(ctx, &args.id).await?;
        let ssh = detail.session.kind == Some(ConnectionKind::Ssh)
            || (detail.statements.is_empty() && detail.ssh.is_some());
        if !ssh {
            return replay_statements(&detail, args).await;
        }
    }
    replay_shell(ctx, args).await
}

/// One statement as the replay prints it: `[+1.250s] SQL` (continuation
/// lines indented), then `  -> OUTCOME`.
pub fn statement_text(s: &RecordedStatement, offset_secs: f64) -> String {
    let prefix = format!("[+{offset_secs:.3}s] ");
    let indent = " ".repeat(prefix.len());
    let sql: Vec<String> = s.sql.trim().lines().map(render::clean).collect();
    let mut text = format!(
        "{prefix}{}\n{indent}-> {}\n",
        sql.join(&format!("\n{indent}")),
        outcome_words(s)
    );
    if let Some(r) = &s.results {
        text.push_str(&format!("{indent}   ({}):\n", kept_words(s, r)));
        text.push_str(&results_text(r, &format!("{indent}   ")));
    }
    text
}

/// Prints a Postgres session's statements paced by their recorded gaps.
async fn replay_statements(detail: &SessionDetail, args: &ReplayArgs) -> anyhow::Result<u8> {
    let statements = &detail.statements;
    let first = statements.first().map_or(0, |s| s.at_ms);
    let times: Vec<f64> = statements
        .iter()
        .map(|s| (s.at_ms - first) as f64 / 1000.0)
        .collect();
    eprintln!(
        "Replaying session {} ({} on {}, {} statement{}){}",
        render::clean(&detail.session.id),
        render::clean(&detail.session.user),
        render::clean(&detail.session.connection),
        statements.len(),
        if statements.len() == 1 { "" } else { "s" },
        if args.speed == 1.0 {
            String::new()
        } else {
            format!(" at {}x speed", args.speed)
        }
    );
    let mut out = std::io::stdout();
    for ((s, wait), at) in statements
        .iter()
        .zip(gaps(&times, args.speed, args.max_idle))
        .zip(&times)
    {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        out.write_all(statement_text(s, *at).as_bytes())?;
        out.flush()?;
    }
    eprintln!("End of the recording.");
    Ok(0)
}

async fn replay_shell(ctx: &Context, args: &ReplayArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let token = creds.access_token().await?;
    let api = creds.api();
    let mut url = api.endpoint(&["v1", "sessions", &args.id, "recording"]);
    if args.index {
        url.set_query(Some("index"));
    } else if args.part > 0 {
        url.set_query(Some(&format!("part={}", args.part)));
    }
    let resp = api
        .http()
        .get(url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| api.transport_error(&e))?;
    if !resp.status().is_success() {
        return Err(api.error_from_response(resp).await.into());
    }
    let body = resp.text().await.map_err(|e| api.transport_error(&e))?;
    let mut out = std::io::stdout();
    if args.index {
        out.write_all(body.as_bytes())?;
        out.write_all(b"\n")?;
        return Ok(0);
    }
    let cast = parse_cast(&body)?;
    eprintln!(
        "Replaying session {} ({}x{}, {} events){}",
        args.id,
        cast.width,
        cast.height,
        cast.events.len(),
        if args.speed == 1.0 {
            String::new()
        } else {
            format!(" at {}x speed", args.speed)
        }
    );
    let waits = delays(&cast.events, args.speed, args.max_idle);
    for (event, wait) in cast.events.iter().zip(waits) {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match event.code.as_str() {
            "o" => {
                out.write_all(event.data.as_bytes())?;
                out.flush()?;
            }
            "r" => tracing::debug!(size = %event.data, "terminal resized"),
            _ => {}
        }
    }
    eprintln!("\nEnd of the recording.");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = "{\"version\":2,\"width\":100,\"height\":30}\n\
                        [0.5,\"o\",\"$ \"]\n[1.5,\"r\",\"120x40\"]\n[11.5,\"o\",\"hi\\r\\n\"]\n";

    #[test]
    fn casts_parse_and_play_at_speed_with_idle_capped() {
        let cast = parse_cast(CAST).unwrap();
        assert_eq!((cast.width, cast.height), (100, 30));
        assert_eq!(cast.events.len(), 3);
        assert_eq!(cast.events[2].data, "hi\r\n");
        let d = delays(&cast.events, 2.0, None);
        assert_eq!(d, [0.25, 0.5, 5.0].map(Duration::from_secs_f64));
        let d = delays(&cast.events, 1.0, Some(2.0));
        assert_eq!(d[2], Duration::from_secs(2));
        // A nonsense speed plays at recorded speed.
        assert_eq!(
            delays(&cast.events, 0.0, None)[0],
            Duration::from_millis(500)
        );
    }

    fn statement(sql: &str, decision: &str) -> RecordedStatement {
        RecordedStatement {
            seq: 1,
            at_ms: 1_700_000_000_000,
            sql: sql.into(),
            protocol: "Q".into(),
            decision: decision.into(),
            rule: None,
            request_id: None,
            duration_ms: None,
            rows: None,
            masked_columns: Vec::new(),
            error: None,
            results: None,
        }
    }

    #[test]
    fn kept_rows_print_under_their_statement() {
        let mut s = statement("select id, email from customers", "allowed");
        s.rows = Some(10);
        s.results = Some(RecordedResults {
            columns: vec!["id".into(), "email".into()],
            rows: vec![
                vec![Some("1".into()), Some("****@example.com".into())],
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some("\u{1b}[2Jx".into())],
            ],
            truncated: true,
        });
        let text = statement_text(&s, 0.0);
        assert_eq!(
            text,
            "[+0.000s] select id, email from customers\n\
             \x20         -> allowed, 10 rows\n\
             \x20            (3 of 10 rows kept):\n\
             \x20            id  email\n\
             \x20            1   ****@example.com\n\
             \x20            2   NULL\n\
             \x20            3    [2Jx\n"
        );
        let d = SessionDetail {
            session: SessionSummary {
                id: "5f0c".into(),
                user: "alice".into(),
                connection: "pg".into(),
                kind: Some(ConnectionKind::Postgres),
                reason: None,
                opened_at: 1_700_000_000,
                expires_at: 1_700_003_600,
                closed_at: None,
                request_id: None,
            },
            statements: vec![s.clone(), statement("select 1", "allowed")],
            statements_truncated: false,
            ssh: None,
        };
        let shown = detail_text(&d, 1_700_000_100);
        assert!(
            shown.contains(
                "\n2023-11-14T22:13:20.000Z  select id, email from customers (3 of 10 rows kept):\n  id  email\n  1   ****@example.com\n"
            ),
            "{shown}"
        );
        assert!(!shown.contains('\u{1b}'), "{shown}");
        if let Some(r) = &mut s.results {
            r.truncated = false;
            r.rows.truncate(1);
        }
        assert_eq!(kept_words(&s, s.results.as_ref().unwrap()), "1 row kept");
    }

    #[test]
    fn statements_print_with_their_outcome_and_no_escape_sequences() {
        let mut s = statement("select email\nfrom customers", "allowed");
        s.rows = Some(1);
        s.duration_ms = Some(3);
        s.masked_columns = vec!["email".into()];
        assert_eq!(
            statement_text(&s, 1.25),
            "[+1.250s] select email\n          from customers\n          -> allowed, 1 row, 3 ms, masked: email\n"
        );
        let mut s = statement("drop table orders", "blocked");
        s.rule = Some("no-destructive/drop".into());
        assert_eq!(outcome_words(&s), "blocked by no-destructive/drop");
        let mut s = statement("select \u{1b}[2Jboom", "allowed");
        s.error = Some("42P01: relation \"nope\" does not exist".into());
        s.rows = Some(2);
        let text = statement_text(&s, 0.0);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            text.ends_with("-> allowed, 2 rows, error: 42P01: relation \"nope\" does not exist\n")
        );
    }

    #[test]
    fn show_lists_the_session_then_its_statements() {
        let summary = SessionSummary {
            id: "5f0c".into(),
            user: "alice".into(),
            connection: "pg".into(),
            kind: Some(ConnectionKind::Postgres),
            reason: Some("ticket 7".into()),
            opened_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            closed_at: None,
            request_id: None,
        };
        let d = SessionDetail {
            session: summary.clone(),
            statements: vec![statement("select 1", "allowed")],
            statements_truncated: false,
            ssh: None,
        };
        let text = detail_text(&d, 1_700_000_100);
        assert!(text.contains("Connection  pg (postgres)"), "{text}");
        assert!(text.contains("State       open"), "{text}");
        assert!(text.contains("Reason      ticket 7"), "{text}");
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("2023-11-14T22:13:20.000Z  allowed "),
            "{last}"
        );
        assert!(last.ends_with("select 1"), "{last}");
        let table = sessions_table(&[summary], 1_800_000_000);
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap_or_default()
                .contains("postgres  expired  ticket 7"),
            "{table}"
        );
    }

    #[test]
    fn statement_pauses_follow_the_recorded_gaps() {
        let d = gaps(&[0.0, 0.5, 10.5], 100.0, Some(2.0));
        assert_eq!(d, [0.0, 0.005, 0.02].map(Duration::from_secs_f64));
    }

    #[test]
    fn bad_recordings_are_refused() {
        assert!(parse_cast("").is_err());
        assert!(parse_cast("{\"version\":1}").is_err());
        assert!(parse_cast("{\"version\":2}\n[1,2]").is_err());
    }
}
