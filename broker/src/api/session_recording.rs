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
//!
//! Parts are read from the store first (any broker sharing it serves them),
//! then from this broker's recordings directory (a shell still running, or
//! a recording made before the store held them).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hoop_shared::api::ErrorCode;
use serde::Deserialize;

use super::{ApiFailure, Caller};
use crate::auth::Identity;
use crate::proxy::ssh::recording::{INDEX_PART, RecordingIndex, is_safe_id};
use crate::state::AppState;
use crate::store::SessionRow;

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
    if !may_read(&state, &who, &session) {
        // Same answer as a missing session: ids of others' sessions stay private.
        return Err(not_found());
    }
    let Some(index) = ssh_index(&state, &id).await? else {
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
    cast_response(&state, &id, &index, part).await
}

/// The asciicast of shell `part` (0 = first) of a recorded SSH session.
pub(super) async fn cast_response(
    state: &AppState,
    id: &str,
    index: &RecordingIndex,
    part: usize,
) -> Result<Response, ApiFailure> {
    let name = index
        .entries
        .iter()
        .filter_map(|e| e.file.as_deref())
        .nth(part);
    let body = match name {
        Some(name) => ssh_part(state, id, name).await?,
        None => None,
    };
    let Some(body) = body else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("session {id} has no recorded shell #{part}"),
        )
        .hint("`hoopctl sessions show` lists what the session did"));
    };
    Ok(([(header::CONTENT_TYPE, "application/x-asciicast")], body).into_response())
}

/// Whether `who` may read `session` and its recording: its own user, the
/// policy's admins, and (people in) the [`AUDITORS_GROUP`].
pub(super) fn may_read(state: &AppState, who: &Identity, session: &SessionRow) -> bool {
    let subject = crate::policy::subject(who);
    session.subject == who.subject
        || state.policy.current().policy.is_admin(&subject)
        || (!subject.workload && who.groups.iter().any(|g| g == AUDITORS_GROUP))
}

/// May `who` see every session (not only their own)?
pub(super) fn sees_all(state: &AppState, who: &Identity) -> bool {
    let subject = crate::policy::subject(who);
    state.policy.current().policy.is_admin(&subject)
        || (!subject.workload && who.groups.iter().any(|g| g == AUDITORS_GROUP))
}

/// An SSH session's recording index: the store's, else this broker's file.
pub(super) async fn ssh_index(
    state: &AppState,
    id: &str,
) -> Result<Option<RecordingIndex>, ApiFailure> {
    if !is_safe_id(id) {
        return Ok(None);
    }
    let stored = state
        .store
        .recording(id, INDEX_PART)
        .await
        .map_err(|e| ApiFailure::internal("read the recording index", &e))?;
    if let Some(body) = stored {
        return serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ApiFailure::internal("parse the stored recording index", &e));
    }
    let recordings = state.ssh.recordings().clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || recordings.index(&id))
        .await
        .map_err(|e| ApiFailure::internal("read the recording index", &e))
}

/// A part named in a session's index (an asciicast): the store's, else
/// this broker's file.
async fn ssh_part(state: &AppState, id: &str, name: &str) -> Result<Option<Vec<u8>>, ApiFailure> {
    let stored = state
        .store
        .recording(id, name)
        .await
        .map_err(|e| ApiFailure::internal("read the recording", &e))?;
    if stored.is_some() {
        return Ok(stored);
    }
    let Some(file) = state.ssh.recordings().file(name) else {
        return Ok(None);
    };
    match tokio::fs::read(&file).await {
        Ok(body) => Ok(Some(body)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ApiFailure::internal("read the recording", &e)),
    }
}
