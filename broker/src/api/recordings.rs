//! `GET /v1/sessions/{id}/recording`: an SSH session's recording.
//!
//! Who may read it: the session's own user, the policy's admins, and members
//! of the `auditors` group. Answers:
//!
//! - no query: the session's first shell as asciicast v2
//!   (`application/x-asciicast`), what `hoopctl sessions replay` plays;
//! - `?part=N`: the N-th shell's asciicast (0 is the first);
//! - `?index`: the JSON index (shells, exec commands with exit codes, sftp
//!   transfers with byte counts, refusals).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hoop_shared::api::ErrorCode;
use serde::Deserialize;

use super::{ApiFailure, Caller};
use crate::app::AppState;
use crate::proxy::ssh::recording::is_safe_id;

/// The group that may read every recording, besides the policy's admins.
pub const AUDITORS_GROUP: &str = "auditors";

/// Query of the endpoint.
#[derive(Debug, Deserialize)]
pub struct RecordingQuery {
    /// Present: answer the JSON index.
    #[serde(default)]
    index: Option<String>,
    /// Which shell (0 = first).
    #[serde(default)]
    part: Option<usize>,
}

/// `GET /v1/sessions/{id}/recording`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<RecordingQuery>,
) -> Result<Response, ApiFailure> {
    let not_found = || {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("no recorded session {id} you may read"),
        )
        .hint("`hoopctl sessions replay` plays SSH shell sessions")
    };
    if !is_safe_id(&id) {
        return Err(not_found());
    }
    let session = state
        .store
        .session(&id)
        .await
        .map_err(|e| ApiFailure::internal("look up the session", &e))?
        .ok_or_else(not_found)?;
    let subject = crate::policy::subject(&who);
    let allowed = session.subject == who.subject
        || state.policy.current().policy.is_admin(&subject)
        || (!subject.workload && who.groups.iter().any(|g| g == AUDITORS_GROUP));
    if !allowed {
        // Same answer as a missing session: ids of others' sessions stay private.
        return Err(not_found());
    }
    let recordings = state.ssh.recordings();
    let Some(index) = recordings.index(&id) else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("session {id} has no recording (only SSH sessions are recorded this way)"),
        ));
    };
    if q.index.is_some() {
        return Ok(axum::Json(index).into_response());
    }
    let part = q.part.unwrap_or(0);
    let Some(file) = index
        .entries
        .iter()
        .filter_map(|e| e.file.as_deref())
        .nth(part)
        .and_then(|f| recordings.file(f))
    else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("session {id} has no recorded shell #{part}"),
        )
        .hint("`?index` lists what the session did"));
    };
    let body = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiFailure::internal("read the recording", &e))?;
    Ok(([(header::CONTENT_TYPE, "application/x-asciicast")], body).into_response())
}
