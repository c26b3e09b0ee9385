//! The bearer-token extractor: every authenticated handler takes a [`Caller`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hoop_shared::api::ErrorCode;

use super::ApiFailure;
use crate::app::AppState;
use crate::auth::Identity;
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
            return Err(ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::MissingToken,
                "this endpoint needs a bearer token",
            )
            .hint("run `hoopctl login`"));
        };
        match state.verifier.verify(token).await {
            Ok(identity) => Ok(Caller(identity)),
            Err(e) => {
                let failure = ApiFailure::from(e.clone());
                if !matches!(e, crate::auth::AuthError::ProviderUnavailable(_)) {
                    state
                        .audit(Event {
                            at: crate::app::now_unix(),
                            kind: "token.refused".into(),
                            user_name: None,
                            connection: None,
                            session_id: None,
                            detail: format!("{} {}: {e}", parts.method, parts.uri.path()),
                        })
                        .await;
                }
                Err(failure)
            }
        }
    }
}
