//! Policy endpoints: read, check (validate + diff), apply (admins), test.
//!
//! Apply is compare-and-swap on the store's version, so two admins applying
//! at once cannot silently overwrite each other, and every apply is an audit
//! event carrying who and the diff. A rejected document changes nothing.
//! A document is one file (`text`) or a directory's files (`files`); either
//! way it becomes one policy version (see [`crate::policy`]).

// Documents and requests come from anyone who can reach the API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hoop_shared::api::{
    ApplyPolicyRequest, ApplyPolicyResponse, ErrorCode, PolicyCheckRequest, PolicyCheckResponse,
    PolicyInfo, PolicyTestRequest,
};
use hoop_shared::policy::{Decision, MAX_POLICY_LEN, Policy, PolicyFile, PolicySource, Subject};

use super::{ApiFailure, ApiJson, Caller};
use crate::app::{AppState, now_unix};
use crate::policy::{ActivePolicy, diff_sources, encode, known_names, subject};
use crate::store::Event;

/// The document a request carries: its `text`, or its `files` (a directory).
fn source(text: String, files: Vec<PolicyFile>) -> Result<PolicySource, Vec<String>> {
    if files.is_empty() {
        if text.len() > MAX_POLICY_LEN {
            return Err(vec![format!(
                "the document is larger than {} KiB",
                MAX_POLICY_LEN / 1024
            )]);
        }
        return Ok(PolicySource::Single(text));
    }
    if !text.is_empty() {
        return Err(vec![
            "the request carries both `text` and `files`; send one document".to_owned(),
        ]);
    }
    PolicySource::files(files).map_err(|e| e.0)
}

/// Reads and validates a request's document; `file` labels it in messages.
fn parse(
    state: &AppState,
    file: Option<&str>,
    text: String,
    files: Vec<PolicyFile>,
) -> Result<(PolicySource, Policy), Vec<String>> {
    let source = source(text, files)?;
    let policy = source
        .parse(file, &known_names(&state.config))
        .map_err(|e| e.0)?;
    Ok((source, policy))
}

fn invalid(errors: Vec<String>) -> ApiFailure {
    ApiFailure::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidPolicy,
        errors.join("\n"),
    )
    .hint("nothing was changed; fix the document and try again")
}

/// `GET /v1/policy`.
pub async fn get(State(state): State<Arc<AppState>>, Caller(_who): Caller) -> Json<PolicyInfo> {
    let active = state.policy.current();
    Json(PolicyInfo {
        version: active.version,
        text: active.source.display_text(),
        applied_by: active.applied_by.clone(),
        applied_at: active.applied_at,
        policy: active.policy.clone(),
        files: match &active.source {
            PolicySource::Single(_) => Vec::new(),
            PolicySource::Files(files) => files.clone(),
        },
    })
}

/// `POST /v1/policy/check`.
pub async fn check(
    State(state): State<Arc<AppState>>,
    Caller(_who): Caller,
    ApiJson(req): ApiJson<PolicyCheckRequest>,
) -> Json<PolicyCheckResponse> {
    let active = state.policy.current();
    let label = req.file.as_deref();
    let (errors, diff) = match source(req.text, req.files) {
        Err(errors) => (errors, String::new()),
        Ok(new) => {
            let errors = new
                .parse(label, &known_names(&state.config))
                .err()
                .map(|e| e.0)
                .unwrap_or_default();
            let diff = diff_sources(&active.source, active.version, &new, label.unwrap_or("new"));
            (errors, diff)
        }
    };
    Json(PolicyCheckResponse {
        errors,
        diff,
        active_version: active.version,
    })
}

/// `PUT /v1/policy`: admins only.
pub async fn apply(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    ApiJson(req): ApiJson<ApplyPolicyRequest>,
) -> Result<Json<ApplyPolicyResponse>, ApiFailure> {
    let active = state.policy.current();
    if !active.policy.is_admin(&subject(&who)) {
        let admins = if active.policy.admins.is_empty() {
            "the policy names no admin groups (set `admins` in the broker's policy_file)".to_owned()
        } else {
            format!("members of {} may", active.policy.admins.join(", "))
        };
        state
            .audit(Event {
                at: now_unix(),
                kind: "policy.refused".into(),
                user_name: Some(who.user.clone()),
                connection: None,
                session_id: None,
                detail: "not an admin".into(),
            })
            .await;
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("{} may not change the policy: {admins}", who.user),
        ));
    }
    let label = req.file.as_deref();
    let (source, policy) = parse(&state, label, req.text, req.files).map_err(invalid)?;
    let changes = diff_sources(
        &active.source,
        active.version,
        &source,
        label.unwrap_or("new"),
    );
    if changes.is_empty() {
        return Ok(Json(ApplyPolicyResponse {
            version: active.version,
            diff: changes,
        }));
    }
    if let Some(expected) = req.expected_version
        && expected != active.version
    {
        return Err(conflict(expected, active.version));
    }
    let at = now_unix();
    let version = state
        .store
        .apply_policy(Some(active.version), encode(&source), who.user.clone(), at)
        .await
        .map_err(|e| ApiFailure::internal("store the policy", &e))?
        .ok_or_else(|| conflict(active.version, active.version + 1))?;
    // Newer-only: the cluster sync (crate::cluster) may already hold this
    // version, or a newer one another broker applied since.
    state.policy.install_newer(ActivePolicy {
        version,
        source,
        policy,
        applied_by: who.user.clone(),
        applied_at: at,
    });
    state
        .audit(Event {
            at,
            kind: "policy.apply".into(),
            user_name: Some(who.user.clone()),
            connection: None,
            session_id: None,
            detail: format!("version {version}\n{changes}"),
        })
        .await;
    tracing::info!(version, by = %who.user, "policy applied");
    Ok(Json(ApplyPolicyResponse {
        version,
        diff: changes,
    }))
}

fn conflict(expected: u64, now: u64) -> ApiFailure {
    ApiFailure::new(
        StatusCode::CONFLICT,
        ErrorCode::Conflict,
        format!(
            "the policy changed since you read it (you had version {expected}, version {now} is in force)"
        ),
    )
    .hint("run `hoopctl policy diff -f FILE` again, then apply")
}

/// `POST /v1/policy/test`.
pub async fn test(
    State(state): State<Arc<AppState>>,
    Caller(_who): Caller,
    ApiJson(req): ApiJson<PolicyTestRequest>,
) -> Result<Json<Decision>, ApiFailure> {
    let policy = match (req.text, req.files) {
        (None, files) if files.is_empty() => state.policy.current().policy.clone(),
        (text, files) => {
            parse(&state, None, text.unwrap_or_default(), files)
                .map_err(invalid)?
                .1
        }
    };
    if state.config.connection(&req.connection).is_none() {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownConnection,
            format!("no connection named {:?}", req.connection),
        ));
    }
    let who = Subject {
        user: req.user,
        groups: req.groups,
        workload: req.workload,
    };
    Ok(Json(policy.evaluate(
        &who,
        &req.connection,
        jiff::Timestamp::now(),
    )))
}
