//! The OAuth 2.0 device authorization flow (RFC 8628) and token refresh, with the `oauth2` crate.
//!
//! 1. [`start`] asks the identity provider's device authorization endpoint for
//!    a device code, a user code and a verification URL ([`DevicePrompt`]).
//! 2. The caller shows those to the user (and may open a browser).
//! 3. [`DeviceLogin::finish`] polls the token endpoint: `oauth2` honours the
//!    interval and `slow_down` (+5 s), keeps going on `authorization_pending`,
//!    and gives up when the code expires; on top of that an overall deadline
//!    of `expires_in` (+ grace) bounds the whole wait.
//!
//! The token response type keeps the OIDC `id_token` (the basic response type
//! of `oauth2` drops unknown fields). hoopctl is a public client: its client id
//! goes in the request body, there is no client secret.

use std::time::Duration;

use hoop_shared::Secret;
use hoop_shared::api::AuthConfig;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, Client, ClientId, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet,
    ErrorResponseType, ExtraTokenFields, HttpClientError, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, StandardErrorResponse, StandardRevocableToken,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// Extra time allowed beyond the code's `expires_in` before giving up locally.
const EXPIRY_GRACE: Duration = Duration::from_secs(30);

/// The OIDC `id_token` next to the OAuth fields of a token response.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct IdTokenFields {
    /// The ID token, when the provider issues one (scope `openid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenFields { id_token: *** }")
    }
}

impl ExtraTokenFields for IdTokenFields {}

type TokenResp = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type OAuthClient = Client<
    BasicErrorResponse,
    TokenResp,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a login or refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFlowError {
    /// The broker's auth config names an unusable endpoint.
    #[error("the broker's login settings are invalid: {0}")]
    BadConfig(String),
    /// The identity provider could not be reached.
    #[error("cannot reach the identity provider at {endpoint}: {cause}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Root cause.
        cause: String,
    },
    /// The provider's TLS certificate is not signed by a CA hoopctl trusts.
    #[error("{}", untrusted_message(endpoint, cause))]
    UntrustedCertificate {
        /// The endpoint.
        endpoint: String,
        /// Root cause (`invalid peer certificate: UnknownIssuer`).
        cause: String,
    },
    /// The device code expired before the user approved.
    #[error("the code expired before the login was approved; run `hoopctl login` again")]
    Expired,
    /// The user (or the provider) denied the login.
    #[error("the login was denied")]
    Denied,
    /// Any other error answer from the provider.
    #[error("the identity provider refused ({code}){}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// OAuth error code.
        code: String,
        /// The provider's description.
        description: Option<String>,
    },
    /// The provider's answer was not valid.
    #[error("unexpected answer from the identity provider at {endpoint}: {detail}")]
    BadResponse {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
}

/// Tokens obtained from the token endpoint.
#[derive(Debug)]
pub struct ObtainedTokens {
    /// Bearer token for the broker.
    pub access_token: Secret,
    /// Refresh token, if issued.
    pub refresh_token: Option<Secret>,
    /// OIDC ID token, if issued.
    pub id_token: Option<Secret>,
    /// Lifetime of the access token, if stated.
    pub expires_in: Option<Duration>,
}

impl From<TokenResp> for ObtainedTokens {
    fn from(r: TokenResp) -> Self {
        ObtainedTokens {
            access_token: Secret::new(r.access_token().secret().as_str()),
            refresh_token: r.refresh_token().map(|t| Secret::new(t.secret().as_str())),
            id_token: r.extra_fields().id_token.clone().map(Secret::new),
            expires_in: r.expires_in(),
        }
    }
}

/// What to show the user.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    /// Where to go.
    pub verification_uri: String,
    /// The same URL with the code filled in, when the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// The code to enter.
    pub user_code: String,
    /// How long the code is valid.
    pub expires_in: Duration,
}

/// A started device login, waiting for approval.
#[derive(Debug)]
pub struct DeviceLogin {
    client: OAuthClient,
    details: StandardDeviceAuthorizationResponse,
    token_endpoint: String,
}

fn oauth_client(cfg: &AuthConfig) -> Result<OAuthClient, DeviceFlowError> {
    let device_url = DeviceAuthorizationUrl::new(cfg.device_authorization_endpoint.clone())
        .map_err(|e| {
            DeviceFlowError::BadConfig(format!(
                "device authorization endpoint {:?}: {e}",
                cfg.device_authorization_endpoint
            ))
        })?;
    let token_url = TokenUrl::new(cfg.token_endpoint.clone()).map_err(|e| {
        DeviceFlowError::BadConfig(format!("token endpoint {:?}: {e}", cfg.token_endpoint))
    })?;
    Ok(Client::new(ClientId::new(cfg.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(device_url)
        .set_token_uri(token_url))
}

/// Asks the identity provider for a device code (step 1).
pub async fn start(
    http: &reqwest::Client,
    cfg: &AuthConfig,
) -> Result<DeviceLogin, DeviceFlowError> {
    let client = oauth_client(cfg)?;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(cfg.scopes.iter().cloned().map(Scope::new))
        .request_async(http)
        .await
        .map_err(|e| classify(&cfg.device_authorization_endpoint, e))?;
    Ok(DeviceLogin {
        client,
        details,
        token_endpoint: cfg.token_endpoint.clone(),
    })
}

impl DeviceLogin {
    /// What the user must do.
    pub fn prompt(&self) -> DevicePrompt {
        DevicePrompt {
            verification_uri: self.details.verification_uri().to_string(),
            verification_uri_complete: self
                .details
                .verification_uri_complete()
                .map(|u| u.secret().to_string()),
            user_code: self.details.user_code().secret().to_string(),
            expires_in: self.details.expires_in(),
        }
    }

    /// Polls the token endpoint until the user approves, denies, or the code expires (step 3).
    pub async fn finish(self, http: &reqwest::Client) -> Result<ObtainedTokens, DeviceFlowError> {
        let expires_in = self.details.expires_in();
        let poll = self
            .client
            .exchange_device_access_token(&self.details)
            .request_async(http, tokio::time::sleep, Some(expires_in));
        match tokio::time::timeout(expires_in + EXPIRY_GRACE, poll).await {
            Err(_) => Err(DeviceFlowError::Expired),
            Ok(result) => result
                .map(ObtainedTokens::from)
                .map_err(|e| classify(&self.token_endpoint, e)),
        }
    }
}

/// Exchanges a refresh token for a new access token.
pub async fn refresh(
    http: &reqwest::Client,
    cfg: &AuthConfig,
    refresh_token: &Secret,
) -> Result<ObtainedTokens, DeviceFlowError> {
    let client = oauth_client(cfg)?;
    let rt = RefreshToken::new(refresh_token.expose().to_owned());
    client
        .exchange_refresh_token(&rt)
        .request_async(http)
        .await
        .map(ObtainedTokens::from)
        .map_err(|e| classify(&cfg.token_endpoint, e))
}

/// Why revoking a token failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The provider could not be reached.
    #[error("cannot reach {endpoint}: {cause}")]
    Unreachable {
        /// The revocation endpoint.
        endpoint: String,
        /// Root cause.
        cause: String,
    },
    /// The provider answered with an error.
    #[error("{endpoint} answered HTTP {status}{}", .code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        /// The revocation endpoint.
        endpoint: String,
        /// HTTP status.
        status: reqwest::StatusCode,
        /// OAuth error code, when the answer had one.
        code: Option<String>,
    },
}

/// Revokes a refresh token (RFC 7009): `POST` a form with `token`,
/// `token_type_hint=refresh_token` and `client_id` (hoopctl is a public
/// client). Per RFC 7009 §2.2 a provider answers 200 also for a token it
/// no longer knows, so success means "this token is dead now".
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    client_id: &str,
    refresh_token: &Secret,
) -> Result<(), RevokeError> {
    let resp = http
        .post(endpoint)
        .form(&[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", client_id),
        ])
        .send()
        .await
        .map_err(|e| {
            let cause = crate::api::root_cause(&e);
            RevokeError::Unreachable {
                endpoint: endpoint.to_owned(),
                cause: if crate::api::looks_like_tls(&e) {
                    untrusted_message(endpoint, &cause)
                } else {
                    cause
                },
            }
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let body = resp.bytes().await.unwrap_or_default();
    let code = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .map(|b| b.error)
        // Only a short OAuth error code, never whatever else the body held.
        .filter(|c| c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_graphic()));
    Err(RevokeError::Refused {
        endpoint: endpoint.to_owned(),
        status,
        code,
    })
}

/// What to do when the provider's certificate is not trusted.
fn untrusted_message(endpoint: &str, cause: &str) -> String {
    format!(
        "the identity provider's TLS certificate at {endpoint} is not trusted ({cause}). \
         Pass its CA certificate with --idp-ca-file PEM (or set $HOOP_IDP_CA_FILE), add it to \
         the system trust store (or point $SSL_CERT_FILE at a bundle that has it), or ask the \
         broker's administrator to set [identity] ca_file so the broker advertises it"
    )
}

/// Turns a request error into "not trusted" (with advice) or "unreachable".
fn unreachable(endpoint: &str, err: &(dyn std::error::Error + 'static)) -> DeviceFlowError {
    let cause = crate::api::root_cause(err);
    if crate::api::looks_like_tls(err) {
        DeviceFlowError::UntrustedCertificate {
            endpoint: endpoint.to_owned(),
            cause,
        }
    } else {
        DeviceFlowError::Unreachable {
            endpoint: endpoint.to_owned(),
            cause,
        }
    }
}

/// Turns an `oauth2` error into one that says what happened.
fn classify<T>(
    endpoint: &str,
    e: RequestTokenError<HttpClientError<reqwest::Error>, StandardErrorResponse<T>>,
) -> DeviceFlowError
where
    T: ErrorResponseType + std::fmt::Display + 'static,
{
    match e {
        RequestTokenError::ServerResponse(resp) => {
            let code = resp.error().to_string();
            match code.as_str() {
                "expired_token" => DeviceFlowError::Expired,
                "access_denied" => DeviceFlowError::Denied,
                _ => DeviceFlowError::Refused {
                    code,
                    description: resp.error_description().cloned(),
                },
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(err)) => {
            unreachable(endpoint, err.as_ref())
        }
        RequestTokenError::Request(other) => DeviceFlowError::Unreachable {
            endpoint: endpoint.to_owned(),
            cause: crate::api::root_cause(&other),
        },
        RequestTokenError::Parse(err, _body) => DeviceFlowError::BadResponse {
            endpoint: endpoint.to_owned(),
            detail: err.to_string(),
        },
        RequestTokenError::Other(detail) => DeviceFlowError::BadResponse {
            endpoint: endpoint.to_owned(),
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    //! The flow against a small RFC 8628 token server on 127.0.0.1 whose
    //! answers each test scripts (the broker's real built-in provider is
    //! exercised end to end in the workspace's `tests/` crate).

    use super::*;
    use axum::extract::{Form, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse as _, Response};
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    /// Answers of the token endpoint, in order: `Ok(json)` or `Err(error code)`.
    type Script = Arc<Mutex<VecDeque<Result<serde_json::Value, &'static str>>>>;

    async fn device_code(Form(form): Form<HashMap<String, String>>) -> Response {
        assert_eq!(form.get("client_id").map(String::as_str), Some("hoopctl"));
        assert_eq!(
            form.get("scope").map(String::as_str),
            Some("openid offline_access")
        );
        axum::Json(serde_json::json!({
            "device_code": "dc-1",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://idp.example/device",
            "verification_uri_complete": "https://idp.example/device?user_code=ABCD-EFGH",
            "expires_in": 60,
            "interval": 0
        }))
        .into_response()
    }

    async fn token(
        State(script): State<Script>,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        assert_eq!(form.get("client_id").map(String::as_str), Some("hoopctl"));
        let next = script
            .lock()
            .unwrap()
            .pop_front()
            .expect("unexpected token request");
        match next {
            Ok(body) => axum::Json(body).into_response(),
            Err(code) => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": code, "error_description": "scripted"})),
            )
                .into_response(),
        }
    }

    async fn provider(
        answers: Vec<Result<serde_json::Value, &'static str>>,
    ) -> (AuthConfig, Script) {
        let script: Script = Arc::new(Mutex::new(answers.into()));
        let app = axum::Router::new()
            .route("/device/code", axum::routing::post(device_code))
            .route("/token", axum::routing::post(token))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let cfg = AuthConfig {
            issuer: format!("http://{addr}"),
            client_id: "hoopctl".into(),
            device_authorization_endpoint: format!("http://{addr}/device/code"),
            token_endpoint: format!("http://{addr}/token"),
            scopes: vec!["openid".into(), "offline_access".into()],
            revocation_endpoint: None,
            issuer_ca_pem: None,
        };
        (cfg, script)
    }

    fn tokens_json() -> serde_json::Value {
        serde_json::json!({
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-1",
            "id_token": "idt-1"
        })
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn pending_then_approved_yields_all_three_tokens() {
        let (cfg, script) = provider(vec![
            Err("authorization_pending"),
            Err("authorization_pending"),
            Ok(tokens_json()),
        ])
        .await;
        let login = start(&http(), &cfg).await.unwrap();
        let prompt = login.prompt();
        assert_eq!(prompt.user_code, "ABCD-EFGH");
        assert_eq!(prompt.verification_uri, "https://idp.example/device");
        assert!(
            prompt
                .verification_uri_complete
                .unwrap()
                .contains("ABCD-EFGH")
        );
        let t = login.finish(&http()).await.unwrap();
        assert_eq!(t.access_token.expose(), "at-1");
        assert_eq!(t.refresh_token.unwrap().expose(), "rt-1");
        assert_eq!(t.id_token.unwrap().expose(), "idt-1");
        assert_eq!(t.expires_in, Some(Duration::from_secs(3600)));
        assert!(
            script.lock().unwrap().is_empty(),
            "did not poll through the pending answers"
        );
    }

    #[tokio::test]
    async fn denial_and_expiry_say_what_happened() {
        for (code, expect) in [
            ("access_denied", "the login was denied"),
            ("expired_token", "run `hoopctl login` again"),
        ] {
            let (cfg, _script) = provider(vec![Err("authorization_pending"), Err(code)]).await;
            let login = start(&http(), &cfg).await.unwrap();
            let err = login.finish(&http()).await.unwrap_err().to_string();
            assert!(err.contains(expect), "{code}: {err}");
        }
    }

    /// RFC 8628 §3.5: on `slow_down` the client adds 5 seconds to its
    /// polling interval for this and all later requests, and keeps polling.
    #[tokio::test]
    async fn slow_down_backs_off_by_five_seconds_and_keeps_polling() {
        let (cfg, script) = provider(vec![Err("slow_down"), Ok(tokens_json())]).await;
        let login = start(&http(), &cfg).await.unwrap();
        let started = std::time::Instant::now();
        let t = login.finish(&http()).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(t.access_token.expose(), "at-1");
        assert!(script.lock().unwrap().is_empty());
        assert!(
            waited >= Duration::from_secs(5),
            "polled again after {waited:?}, before the slowed-down interval"
        );
    }

    #[tokio::test]
    async fn revocation_posts_the_refresh_token_as_rfc_7009_says() {
        use axum::extract::Form;
        let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
        let seen2 = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/revoke",
            axum::routing::post(move |Form(f): Form<HashMap<String, String>>| {
                let seen = Arc::clone(&seen2);
                async move {
                    let known = f.get("token").map(String::as_str) == Some("rt-1");
                    seen.lock().unwrap().push(f);
                    if known {
                        StatusCode::OK.into_response()
                    } else {
                        (
                            StatusCode::BAD_REQUEST,
                            axum::Json(serde_json::json!({"error": "invalid_request"})),
                        )
                            .into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/revoke", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        revoke(&http(), &url, "hoopctl", &Secret::new("rt-1"))
            .await
            .unwrap();
        let form = seen.lock().unwrap()[0].clone();
        assert_eq!(
            form.get("token_type_hint").map(String::as_str),
            Some("refresh_token")
        );
        assert_eq!(form.get("client_id").map(String::as_str), Some("hoopctl"));
        let err = revoke(&http(), &url, "hoopctl", &Secret::new("other"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("400") && err.contains("invalid_request"),
            "{err}"
        );
        assert!(!err.contains("other"), "token echoed: {err}");
    }

    #[tokio::test]
    async fn refresh_returns_a_new_access_token() {
        let (cfg, _script) = provider(vec![Ok(serde_json::json!({
            "access_token": "at-2", "token_type": "bearer", "expires_in": 60
        }))])
        .await;
        let t = refresh(&http(), &cfg, &Secret::new("rt-1")).await.unwrap();
        assert_eq!(t.access_token.expose(), "at-2");
        assert!(t.refresh_token.is_none());
        let (cfg, _script) = provider(vec![Err("invalid_grant")]).await;
        let err = refresh(&http(), &cfg, &Secret::new("rt-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeviceFlowError::Refused { ref code, .. } if code == "invalid_grant"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreachable_provider_is_named() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = AuthConfig {
            issuer: String::new(),
            client_id: "hoopctl".into(),
            device_authorization_endpoint: format!("http://127.0.0.1:{port}/device/code"),
            token_endpoint: format!("http://127.0.0.1:{port}/token"),
            scopes: vec![],
            revocation_endpoint: None,
            issuer_ca_pem: None,
        };
        let err = start(&http(), &cfg).await.unwrap_err().to_string();
        assert!(err.contains("cannot reach the identity provider"), "{err}");
        assert!(err.contains(&port.to_string()), "{err}");
    }
}
