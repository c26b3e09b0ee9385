//! The bearer-token extractor: every authenticated handler takes a [`Caller`].
//!
//! Every refusal (no token, a bad token, a provider that cannot be reached)
//! is answered with a message naming the reason class in words and is
//! appended to the audit trail as a `token.refused` event whose detail is a
//! JSON object: `class`, the claimed (unverified, sanitized, truncated) `iss`
//! and `sub`, the client's `ip` (`-` when the server did not pass it on),
//! `method`, `path` and the `message` sent. Never the token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hoop_shared::api::ErrorCode;

use super::ApiFailure;
use crate::app::AppState;
use crate::auth::{Claimed, Identity, RefusalClass, sanitize};
use crate::store::Event;

/// The identity behind a request's valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            let failure = ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::MissingToken,
                "missing token: this endpoint needs a bearer token",
            )
            .hint("run `hoopctl login`");
            audit_refusal(
                state,
                parts,
                RefusalClass::MissingToken,
                &Claimed::default(),
                "missing token: this endpoint needs a bearer token",
            )
            .await;
            return Err(failure);
        };
        match state.verifier.verify(token).await {
            Ok(identity) => {
                let now = crate::app::now_unix();
                if state.verifier.first_use(token, identity.expires_at, now) {
                    audit_first_use(state, parts, &identity).await;
                }
                Ok(Caller(identity))
            }
            Err(e) => {
                let message = e.to_string();
                audit_refusal(state, parts, e.class(), &Claimed::peek(token), &message).await;
                Err(ApiFailure::from(e))
            }
        }
    }
}

/// Appends the `token.accepted` event: the first request this broker
/// serves with a token (after `hoopctl login`, a refresh, or a CI job's new
/// workload token): who, which issuer, groups, until when, from where.
async fn audit_first_use(state: &AppState, parts: &Parts, who: &Identity) {
    let detail = serde_json::json!({
        "iss": who.issuer,
        "sub": who.subject,
        "kind": who.kind,
        "groups": who.groups,
        "rule": who.matched_rule,
        "expires_at": who.expires_at,
        "ip": client_ip(parts),
    });
    state
        .audit(Event {
            at: crate::app::now_unix(),
            kind: "token.accepted".into(),
            user_name: Some(who.user.clone()),
            connection: None,
            session_id: None,
            detail: detail.to_string(),
        })
        .await;
}

fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |ConnectInfo(peer)| peer.ip().to_string())
}

/// Appends the `token.refused` event (and logs the refusal, without the token).
async fn audit_refusal(
    state: &AppState,
    parts: &Parts,
    class: RefusalClass,
    claimed: &Claimed,
    message: &str,
) {
    let ip = client_ip(parts);
    let path = sanitize(parts.uri.path());
    tracing::info!(
        class = class.as_str(),
        %ip,
        method = %parts.method,
        %path,
        iss = claimed.iss.as_deref().unwrap_or("-"),
        sub = claimed.sub.as_deref().unwrap_or("-"),
        "token refused"
    );
    let detail = serde_json::json!({
        "class": class.as_str(),
        "iss": claimed.iss,
        "sub": claimed.sub,
        "ip": ip,
        "method": parts.method.as_str(),
        "path": path,
        "message": message,
    });
    state
        .audit(Event {
            at: crate::app::now_unix(),
            kind: "token.refused".into(),
            // Nothing unverified goes into the who-column of the trail.
            user_name: None,
            connection: None,
            session_id: None,
            detail: detail.to_string(),
        })
        .await;
}
