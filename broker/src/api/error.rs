//! The one error shape of every endpoint (`hoop_shared::api::ApiErrorBody`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hoop_shared::api::{ApiError, ApiErrorBody, ErrorCode};

use crate::auth::AuthError;

/// An error answer: status, code, message, optional hint.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    body: ApiErrorBody,
}

impl ApiFailure {
    /// A new error answer.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiFailure {
            status,
            body: ApiErrorBody {
                error: ApiError {
                    code,
                    message: message.into(),
                    hint: None,
                },
            },
        }
    }

    /// Adds what the user should do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.body.error.hint = Some(hint.into());
        self
    }

    /// A failure inside the broker. The cause goes to the log (with a
    /// reference); the client learns only that something failed.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        let reference = reference.get(..12).unwrap_or(&reference).to_owned();
        tracing::error!(%reference, "{context}: {cause}");
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("the broker failed to {context} (reference {reference} in the broker log)"),
        )
    }

    /// Status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<AuthError> for ApiFailure {
    fn from(e: AuthError) -> Self {
        match &e {
            AuthError::Expired => ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::TokenExpired,
                e.to_string(),
            )
            .hint("run `hoopctl login`"),
            AuthError::Invalid(_) => {
                use crate::auth::RefusalClass;
                // A workload cannot log in; tell its operator what to look at.
                let hint = match e.class() {
                    RefusalClass::NoMatchingRule => {
                        "no [[identity.workload.rules]] entry matches this CI job's token; \
                         ask the broker's operator to add one"
                    }
                    RefusalClass::UntrustedIssuer => {
                        "people: run `hoopctl login`; CI jobs: the token's issuer must be listed \
                         in [[identity.workload]] on the broker"
                    }
                    _ => "run `hoopctl login` (CI jobs: check the identity token the job presents)",
                };
                ApiFailure::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidToken,
                    e.to_string(),
                )
                .hint(hint)
            }
            AuthError::ProviderUnavailable(_) => ApiFailure::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::IdentityProviderUnavailable,
                e.to_string(),
            )
            .hint("try again shortly; if it persists, tell the broker's operator"),
        }
    }
}

/// `Json<T>` whose rejection (malformed or oversized body, wrong content type)
/// is an [`ApiFailure`] like every other error.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                e.body_text(),
            )),
        }
    }
}
