//! The broker's REST API (`/v1/...`), served by axum on the HTTPS port.
//!
//! | method | path | auth | what |
//! |---|---|---|---|
//! | GET | `/v1/auth/config` | none | how hoopctl logs in (issuer, device flow endpoints) |
//! | GET | `/v1/me` | bearer | the identity behind the token |
//! | GET | `/v1/connections` | bearer | connections the caller may use |
//! | POST | `/v1/sessions` | bearer | open a session: policy check, one-time tunnel secret |
//! | GET | `/v1/sessions` | bearer, own/admin/auditors | sessions, newest first ([`sessions`]) |
//! | GET | `/v1/sessions/{id}` | bearer, own/admin/auditors | a session with its recording (statements, or the SSH index) |
//! | GET | `/v1/sessions/{id}/export` | bearer, own/admin/auditors | Postgres: that JSON; SSH: a shell as asciicast |
//! | DELETE | `/v1/sessions/{id}` | bearer | close your session |
//! | GET | `/v1/sessions/{id}/tunnel` | bearer | `hoop-tunnel/1` upgrade ([`crate::tunnel`], mounted beside this router by `crate::app`) |
//! | GET | `/v1/sessions/{id}/recording` | bearer, own/admin/auditors | an SSH session's recording (asciicast, or `?index`) |
//! | GET, POST | `/v1/requests` | bearer | your access requests; ask for access that needs approval |
//! | GET | `/v1/requests/{id}` | bearer | one request (yours, or one you may decide) |
//! | POST | `/v1/requests/{id}/approve`, `/deny`, `/cancel`, `/revoke` | bearer | decide, withdraw, end a grant |
//! | GET | `/v1/approvals` | bearer | pending requests you may decide |
//! | GET | `/v1/policy` | bearer | the policy in force |
//! | POST | `/v1/policy/check` | bearer | validate a document and diff it, changing nothing |
//! | PUT | `/v1/policy` | bearer, admin | apply a document (compare-and-swap, audited with the diff) |
//! | POST | `/v1/policy/test` | bearer | the decision for an identity, and the rule that made it |
//! | GET | `/v1/audit`, `/v1/audit/export` | bearer, admin or auditor | the hash-chained audit log ([`audit`]) |
//! | GET | `/v1/audit/keys` | none | the public keys that sign audit checkpoints |
//! | * | `/idp/...` | none | the built-in development identity provider, when configured |
//! | GET, POST | `/approvals/...` | session cookie | the approvers' web page ([`crate::web`]) |
//!
//! Errors are always [`hoop_shared::api::ApiErrorBody`] JSON.

mod audit;
mod auth;
mod error;
mod policy_admin;
pub(crate) mod requests;
mod session_recording;
mod sessions;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hoop_shared::api::{
    AuthConfig, ConnectionList, ConnectionSummary, ErrorCode, OpenSessionRequest,
    OpenSessionResponse, WhoAmI,
};

pub use auth::Caller;
pub use error::{ApiFailure, ApiJson};

use crate::config::{ConnectionConfig, ConnectionType};
use crate::state::AppState;
use crate::store::Event;
use crate::util::now_unix;
use hoop_shared::policy::Outcome;

/// Longest justification accepted.
const MAX_REASON_LEN: usize = 1000;

/// The API router (without the identity provider, which [`crate::app`] nests).
pub fn router(state: Arc<AppState>) -> Router {
    // SSH recordings go to the store too, so every broker sharing it can
    // serve them; the uploads are the broker's tasks (waited for at shutdown).
    state
        .ssh
        .recordings()
        .attach_store(state.store.clone(), state.tasks.clone());
    Router::new()
        .route(hoop_shared::api::AUTH_CONFIG_PATH, get(auth_config))
        .route("/v1/me", get(me))
        .route("/v1/connections", get(connections))
        .route("/v1/sessions", get(sessions::list).post(open_session))
        .route(
            "/v1/sessions/{id}",
            get(sessions::show).delete(close_session),
        )
        .route("/v1/sessions/{id}/export", get(sessions::export))
        .route("/v1/sessions/{id}/recording", get(session_recording::get))
        .route("/v1/requests", get(requests::mine).post(requests::create))
        .route("/v1/requests/{id}", get(requests::show))
        .route("/v1/requests/{id}/approve", post(requests::approve))
        .route("/v1/requests/{id}/deny", post(requests::deny))
        .route("/v1/requests/{id}/cancel", post(requests::cancel))
        .route("/v1/requests/{id}/revoke", post(requests::revoke))
        .route("/v1/approvals", get(requests::approvals))
        .route(
            "/v1/policy",
            get(policy_admin::get).put(policy_admin::apply),
        )
        .route("/v1/policy/check", post(policy_admin::check))
        .route("/v1/policy/test", post(policy_admin::test))
        .merge(audit::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::BadRequest,
        "no such endpoint",
    )
}

/// Discovered from an external provider on first use (502 while it is down),
/// so the broker starts and serves valid tokens without it.
async fn auth_config(State(state): State<Arc<AppState>>) -> Result<Json<AuthConfig>, ApiFailure> {
    state
        .login_config
        .get()
        .await
        .map(Json)
        .map_err(ApiFailure::from)
}

async fn me(Caller(who): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: who.user,
        subject: who.subject,
        groups: who.groups,
        issuer: who.issuer,
        expires_at: who.expires_at,
        kind: who.kind,
        matched_rule: who.matched_rule,
    })
}

fn summary(c: &ConnectionConfig) -> ConnectionSummary {
    ConnectionSummary {
        name: c.name.clone(),
        kind: match c.kind {
            ConnectionType::Postgres => hoop_shared::api::ConnectionKind::Postgres,
            ConnectionType::Ssh => hoop_shared::api::ConnectionKind::Ssh,
        },
        database: (c.kind == ConnectionType::Postgres).then(|| c.database.clone()),
        description: c.description.clone(),
    }
}

/// Connections `who` may use, by name.
fn usable<'a>(
    state: &'a AppState,
    who: &'a crate::auth::Identity,
) -> impl Iterator<Item = &'a ConnectionConfig> {
    state
        .config
        .connections
        .iter()
        .map(|c| c.get_ref())
        .filter(|c| state.policy.decide(who, &c.name).outcome != Outcome::Deny)
}

async fn connections(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
) -> Json<ConnectionList> {
    Json(ConnectionList {
        connections: usable(&state, &who).map(summary).collect(),
    })
}

async fn open_session(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    body: Result<Json<OpenSessionRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<OpenSessionResponse>), ApiFailure> {
    let Json(req) = body.map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            e.body_text(),
        )
    })?;
    let reason = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON_LEN) {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("the reason is longer than {MAX_REASON_LEN} characters"),
        ));
    }
    let Some(conn) = state.config.connection(&req.connection) else {
        let known: Vec<_> = usable(&state, &who).map(|c| c.name.as_str()).collect();
        let listing = if known.is_empty() {
            "you may not use any connection".to_owned()
        } else {
            format!("connections you may use: {}", known.join(", "))
        };
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownConnection,
            format!("no connection named {:?}; {listing}", req.connection),
        )
        .hint("run `hoopctl connections` to list them"));
    };
    let parts = crate::session::open::OpenParts {
        store: &state.store,
        policy: &state.policy,
        trail: &state.trail,
        session_ttl: state.session_ttl,
    };
    let opened = crate::session::open::open(
        parts,
        &who,
        conn,
        reason,
        req.request_id.clone(),
        req.agent.as_ref().map(|a| a.describe()),
    )
    .await
    .map_err(|e| open_failure(e, &who, conn))?;
    let (row, secret) = (opened.row, opened.secret);
    Ok((
        StatusCode::CREATED,
        Json(OpenSessionResponse {
            session_id: row.id,
            connection: summary(conn),
            tunnel_secret: secret,
            client_user: conn.user.clone(),
            expires_at: row.expires_at,
            ssh_host_key: (conn.kind == ConnectionType::Ssh)
                .then(|| state.ssh.host_key_line().to_owned()),
        }),
    ))
}

/// The HTTP answer for a session that could not be opened.
fn open_failure(
    e: crate::session::open::OpenError,
    who: &crate::auth::Identity,
    conn: &ConnectionConfig,
) -> ApiFailure {
    use crate::session::open::OpenError;
    match e {
        OpenError::Denied { explanation } => ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "{} is not allowed to use {}: {explanation}",
                who.user, conn.name
            ),
        )
        .hint("ask an admin for access; `hoopctl policy test` shows how the policy decides"),
        OpenError::UnknownRequest { id } => ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownRequest,
            format!("no access request {id} of yours for {}", conn.name),
        ),
        OpenError::NotGranted { id, state } => ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ApprovalRequired,
            format!("access request {id} is {state}, not an active grant"),
        )
        .hint("ask for access again"),
        OpenError::ApprovalRequired {
            approvers,
            approvals,
            rule,
        } => ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ApprovalRequired,
            format!(
                "{} needs {approvals} approval{} from {} before {} may use it (rule {rule})",
                conn.name,
                if approvals == 1 { "" } else { "s" },
                approvers.describe(),
                who.user,
            ),
        )
        .hint("request access with `hoopctl connect` (it asks and waits), or `hoopctl requests`"),
        OpenError::JustificationRequired { rule } => ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::JustificationRequired,
            format!("{} requires a justification (rule {rule})", conn.name),
        )
        .hint("say why with --reason TEXT"),
        OpenError::Store { context, error } => ApiFailure::internal(context, &error),
    }
}

async fn close_session(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiFailure> {
    let row = state
        .store
        .session(&id)
        .await
        .map_err(|e| ApiFailure::internal("look up the session", &e))?
        .filter(|s| s.subject == who.subject)
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownSession,
                format!("no session {id} of yours"),
            )
        })?;
    let closed = state
        .store
        .close_session(&row.id, now_unix())
        .await
        .map_err(|e| ApiFailure::internal("close the session", &e))?;
    if closed {
        state
            .audit(Event {
                at: now_unix(),
                kind: "session.close".into(),
                user_name: Some(who.user),
                connection: Some(row.connection),
                session_id: Some(row.id),
                detail: String::new(),
            })
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}
