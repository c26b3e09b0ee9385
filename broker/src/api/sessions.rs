//! Session listing and recordings: who opened which session, and what
//! happened in it.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/sessions?user=&connection=&since=&limit=` | sessions, newest first |
//! | GET | `/v1/sessions/{id}` | one session with its recording |
//! | GET | `/v1/sessions/{id}/export[?part=N]` | Postgres: the same JSON; SSH: shell N as asciicast v2 |
//!
//! Ordinary users see their own sessions; the policy's admins and members
//! of the `auditors` group see everyone's. A session that is not yours
//! answers exactly like one that does not exist.
//!
//! A Postgres session's recording is not a second copy of anything: every
//! statement is already in the hash-chained audit log, committed before it
//! was forwarded (text as received, decision, rule), followed by an outcome
//! record (duration, rows, masked columns, error). The recording is those
//! records, read back by session and joined. Result values appear only
//! where the connection's `record_results` had the outcome record keep
//! the first rows (as the client received them, masked). An SSH session's recording is its
//! index and asciicasts ([`crate::proxy::ssh::recording`]), read from the
//! store first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hoop_shared::api::{
    ConnectionKind, ErrorCode, RecordedStatement, SessionDetail, SessionList, SessionSummary,
};
use hoop_shared::audit::AuditRecord;

use super::recordings::{cast_response, may_read, sees_all, ssh_index};
use super::{ApiFailure, Caller};
use crate::app::AppState;
use crate::config::ConnectionType;
use crate::store::{SessionFilter, SessionRow};

/// Sessions per list answer by default.
const DEFAULT_LIMIT: usize = 50;
/// Sessions per list answer at most.
const MAX_LIMIT: usize = 1000;
/// Audit records read for one session's statements at most (a statement
/// and its outcome are two).
const MAX_RECORDS: u32 = 20_000;
/// How far before the session's opening its records are looked for: the
/// broker that carried it may run on another host, with another clock.
const CLOCK_SLACK_MS: i64 = 5 * 60 * 1000;

/// Query string of `GET /v1/sessions`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    user: Option<String>,
    connection: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// Query string of `GET /v1/sessions/{id}/export`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Which shell of an SSH session (0 = first).
    part: Option<usize>,
}

fn bad_request(message: String) -> ApiFailure {
    ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
}

/// `since`: RFC 3339, or a duration back from now; Unix seconds.
fn parse_since(text: &str) -> Result<u64, ApiFailure> {
    let bad = || {
        bad_request(format!(
            "since={text:?} is neither an RFC 3339 time nor a duration like 2h or 7d"
        ))
    };
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(_) => {
            let d: Duration = humantime::parse_duration(text).map_err(|_| bad())?;
            SystemTime::now().checked_sub(d).ok_or_else(bad)?
        }
    };
    Ok(at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

fn summary(state: &AppState, s: SessionRow) -> SessionSummary {
    SessionSummary {
        kind: state
            .config
            .connection(&s.connection)
            .map(|c| match c.kind {
                ConnectionType::Postgres => ConnectionKind::Postgres,
                ConnectionType::Ssh => ConnectionKind::Ssh,
            }),
        id: s.id,
        user: s.user_name,
        connection: s.connection,
        reason: s.reason,
        opened_at: s.created_at,
        expires_at: s.expires_at,
        closed_at: s.closed_at,
        request_id: s.request_id,
    }
}

/// `GET /v1/sessions`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    params: Result<QueryParams<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionList>, ApiFailure> {
    let QueryParams(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let filter = SessionFilter {
        subject: (!sees_all(&state, &who)).then(|| who.subject.clone()),
        user_name: p.user.filter(|s| !s.is_empty()),
        connection: p.connection.filter(|s| !s.is_empty()),
        since: p.since.as_deref().map(parse_since).transpose()?,
        limit: p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let rows = state
        .store
        .list_sessions(filter)
        .await
        .map_err(|e| ApiFailure::internal("list sessions", &e))?;
    Ok(Json(SessionList {
        sessions: rows.into_iter().map(|s| summary(&state, s)).collect(),
    }))
}

/// The session `id` if `who` may read it; 404 otherwise, the same whether
/// it is missing or someone else's.
async fn readable(
    state: &AppState,
    who: &crate::auth::Identity,
    id: &str,
) -> Result<SessionRow, ApiFailure> {
    let not_found = || {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("no recorded session {id} you may read"),
        )
        .hint("`hoopctl sessions list` shows the sessions you may read")
    };
    if !crate::proxy::ssh::recording::is_safe_id(id) {
        return Err(not_found());
    }
    state
        .store
        .session(id)
        .await
        .map_err(|e| ApiFailure::internal("look up the session", &e))?
        .filter(|s| may_read(state, who, s))
        .ok_or_else(not_found)
}

/// The session with its recording.
async fn detail(state: &AppState, row: SessionRow) -> Result<SessionDetail, ApiFailure> {
    let session = summary(state, row);
    let mut out = SessionDetail {
        session,
        statements: Vec::new(),
        statements_truncated: false,
        ssh: None,
    };
    // A connection no longer configured: whichever recording exists.
    let kind = out.session.kind;
    if kind != Some(ConnectionKind::Ssh) {
        let since = i64::try_from(out.session.opened_at)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000)
            .saturating_sub(CLOCK_SLACK_MS);
        let records = state
            .audit_log
            .query(crate::audit::Query {
                since_ms: Some(since),
                kind: Some("statement".into()),
                session: Some(out.session.id.clone()),
                limit: MAX_RECORDS,
                ..Default::default()
            })
            .await
            .map_err(|e| ApiFailure::internal("read the session's statements", &e))?;
        out.statements_truncated = records.len() >= MAX_RECORDS as usize;
        out.statements = statements(&records);
    }
    if kind != Some(ConnectionKind::Postgres) {
        out.ssh = ssh_index(state, &out.session.id)
            .await?
            .map(|i| serde_json::to_value(i).unwrap_or_default());
    }
    Ok(out)
}

/// Joins statement records with their outcome records, in order.
pub fn statements(records: &[AuditRecord]) -> Vec<RecordedStatement> {
    let outcomes: HashMap<u64, &serde_json::Value> = records
        .iter()
        .filter(|r| r.kind == "statement.outcome")
        .filter_map(|r| Some((r.detail.get("statement")?.as_u64()?, &r.detail)))
        .collect();
    let text =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
    records
        .iter()
        .filter(|r| r.session.is_some())
        .filter_map(|r| {
            let decision = match r.kind.as_str() {
                "statement.allowed" => "allowed",
                "statement.blocked" => "blocked",
                "statement.held" => "held_for_review",
                "statement.review_approved" => "review_approved",
                _ => return None,
            };
            let outcome = outcomes.get(&r.seq);
            Some(RecordedStatement {
                seq: r.seq,
                at_ms: r.time,
                sql: text(&r.detail, "sql").unwrap_or_default(),
                protocol: text(&r.detail, "protocol").unwrap_or_default(),
                decision: decision.to_owned(),
                rule: text(&r.detail, "rule"),
                request_id: text(&r.detail, "request_id"),
                duration_ms: outcome.and_then(|o| o.get("duration_ms")?.as_u64()),
                rows: outcome.and_then(|o| o.get("rows")?.as_u64()),
                masked_columns: outcome
                    .and_then(|o| o.get("masked_columns")?.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                error: outcome.and_then(|o| text(o, "error")),
                results: outcome
                    .and_then(|o| o.get("results"))
                    .and_then(|r| serde_json::from_value(r.clone()).ok()),
            })
        })
        .collect()
}

/// `GET /v1/sessions/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiFailure> {
    let row = readable(&state, &who, &id).await?;
    Ok(Json(detail(&state, row).await?))
}

/// `GET /v1/sessions/{id}/export`: Postgres sessions as the JSON of
/// `show` (a file to keep), SSH sessions as the asciicast of one shell.
pub async fn export(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    params: Result<QueryParams<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiFailure> {
    let QueryParams(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let row = readable(&state, &who, &id).await?;
    let detail = detail(&state, row).await?;
    if detail.session.kind == Some(ConnectionKind::Ssh)
        || (detail.session.kind.is_none() && detail.ssh.is_some())
    {
        let index: crate::proxy::ssh::recording::RecordingIndex = detail
            .ssh
            .and_then(|i| serde_json::from_value(i).ok())
            .ok_or_else(|| {
                ApiFailure::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::UnknownSession,
                    format!("session {id} has no recording yet"),
                )
            })?;
        return cast_response(&state, &id, &index, p.part.unwrap_or(0)).await;
    }
    let body = serde_json::to_vec_pretty(&detail)
        .map_err(|e| ApiFailure::internal("encode the session", &e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        seq: u64,
        kind: &str,
        session: Option<&str>,
        detail: serde_json::Value,
    ) -> AuditRecord {
        AuditRecord {
            seq,
            time: 1_000 + seq as i64,
            kind: kind.into(),
            actor: Some("alice".into()),
            connection: Some("pg".into()),
            session: session.map(str::to_owned),
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn statements_are_joined_with_their_outcomes_in_order() {
        let records = [
            record(
                3,
                "statement.allowed",
                Some("s"),
                serde_json::json!({"sql": "select 1", "protocol": "Q", "rule": null}),
            ),
            record(
                4,
                "statement.blocked",
                Some("s"),
                serde_json::json!({"sql": "drop table t", "protocol": "Q", "rule": "no-destructive/drop"}),
            ),
            record(5, "session.open", Some("s"), serde_json::json!({})),
            record(
                6,
                "statement.outcome",
                None,
                serde_json::json!({"statement": 3, "duration_ms": 2, "rows": 1, "masked_columns": ["email"], "error": null,
                    "results": {"columns": ["email"], "rows": [["****@example.com"]], "truncated": false}}),
            ),
            record(
                7,
                "statement.outcome",
                None,
                serde_json::json!({"statement": 99, "rows": 5}),
            ),
        ];
        let got = statements(&records);
        assert_eq!(got.len(), 2);
        let (a, b) = (&got[0], &got[1]);
        assert_eq!(
            (a.seq, a.sql.as_str(), a.decision.as_str()),
            (3, "select 1", "allowed")
        );
        assert_eq!((a.rows, a.duration_ms), (Some(1), Some(2)));
        assert_eq!(a.masked_columns, ["email"]);
        let results = a.results.as_ref().unwrap();
        assert_eq!(
            (
                results.columns.as_slice(),
                results.rows.as_slice(),
                results.truncated
            ),
            (
                &["email".to_owned()][..],
                &[vec![Some("****@example.com".to_owned())]][..],
                false
            )
        );
        assert_eq!(a.rule, None);
        assert_eq!(b.decision, "blocked");
        assert_eq!(b.rule.as_deref(), Some("no-destructive/drop"));
        assert_eq!(
            (b.rows, b.duration_ms, b.error.as_deref()),
            (None, None, None)
        );
        assert_eq!(b.results, None);
    }

    /// Two interleaved sessions on `backend`: reading one back gives its
    /// statements with their outcomes, and nothing of the other.
    async fn one_session_reads_back(backend: crate::audit::AuditBackend) {
        use crate::record::{SessionLog, StatementDecision};
        let signer = crate::audit::CheckpointSigner::from_key(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        );
        let log = crate::audit::AuditLog::start(backend, signer, 100, None)
            .await
            .unwrap();
        let recorder: Arc<dyn crate::record::Recorder> = Arc::new(log.clone());
        // Alice's connection keeps one result row per statement; Bob's none.
        let mine = SessionLog::keeping_results(recorder.clone(), "s-mine", "alice", "pg", 1);
        let other = SessionLog::new(recorder, "s-other", "bob", "pg");
        for (n, session) in [&mine, &other, &mine].into_iter().enumerate() {
            let id = session
                .begin(
                    &format!("select {n}"),
                    'Q',
                    StatementDecision::Allowed,
                    None,
                )
                .await
                .unwrap();
            session.forwarded(id);
            session.masked("email");
            for _ in 0..2 {
                session.result_row(&["n".to_owned()], vec![Some(n.to_string())]);
            }
            session.finish(Some(n as u64), None);
        }
        mine.begin(
            "drop table t",
            'Q',
            StatementDecision::Blocked,
            Some("r/d".into()),
        )
        .await
        .unwrap();
        log.close().await;
        let records = log
            .query(crate::audit::Query {
                kind: Some("statement".into()),
                session: Some("s-mine".into()),
                since_ms: Some(0),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let got = statements(&records);
        let sql: Vec<&str> = got.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql, ["select 0", "select 2", "drop table t"]);
        assert_eq!(got[1].rows, Some(2), "joined with its own outcome");
        assert_eq!(got[1].masked_columns, ["email"]);
        let kept = got[1].results.as_ref().unwrap();
        assert_eq!(kept.rows, [vec![Some("2".to_owned())]]);
        assert!(kept.truncated, "two rows, one kept");
        assert_eq!((got[2].decision.as_str(), got[2].rows), ("blocked", None));
        assert_eq!(got[2].results, None);
        let others = log
            .query(crate::audit::Query {
                kind: Some("statement".into()),
                session: Some("s-other".into()),
                since_ms: Some(0),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            others.iter().all(|r| r.detail.get("results").is_none()),
            "no record_results, no values: {others:?}"
        );
    }

    #[tokio::test]
    async fn a_session_reads_back_from_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::audit::sqlite::SqliteAuditBackend::open(
            &dir.path().join(crate::audit::sqlite::DB_FILE),
            crate::config::AuditSynchronous::Normal,
        )
        .unwrap();
        one_session_reads_back(backend.into()).await;
    }

    #[tokio::test]
    async fn a_session_reads_back_from_postgres() {
        let pg = crate::dev::postgres::ThrowawayPostgres::start()
            .await
            .unwrap();
        let password = hoop_shared::Secret::generate(24);
        pg.create_app_database("auditor", &password, "audit")
            .await
            .unwrap();
        let url = format!(
            "postgres://auditor:{}@{}:{}/audit",
            password.expose(),
            pg.host(),
            pg.port()
        );
        let backend = crate::audit::postgres::PgAuditBackend::connect(&url, None)
            .await
            .unwrap();
        one_session_reads_back(backend.into()).await;
    }

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        assert_eq!(
            parse_since("2025-01-01T00:00:00Z").ok(),
            Some(1_735_689_600)
        );
        let hour_ago = parse_since("1h").unwrap_or(0);
        let now = crate::app::now_unix();
        assert!(
            (now - 3601..=now - 3599).contains(&hour_ago),
            "{hour_ago} vs {now}"
        );
        assert!(parse_since("yesterday-ish").is_err());
    }
}
