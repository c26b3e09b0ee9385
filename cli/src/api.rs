//! The broker's REST API as typed calls, and its errors as messages a person can act on.
//!
//! Every HTTPS client hoopctl builds comes from here, so each one trusts the
//! broker's CA file (`--ca-file` / `config.toml`) in addition to the built-in
//! roots: the API client, the identity-provider client handed to `oauth2`
//! (redirects disabled, as the oauth2 docs require against SSRF), and the
//! HTTP/1.1-only client used for tunnel upgrades.
//!
//! Error answers are the broker's [`ApiErrorBody`]; a 401 always ends in
//! "run `hoopctl login`", a transport failure in "is `hoop-broker` running?".

use std::path::PathBuf;
use std::time::Duration;

use hoop_shared::Secret;
use hoop_shared::api::{
    AUTH_CONFIG_PATH, AccessRequestList, AccessRequestView, ApiErrorBody, ApplyPolicyRequest,
    ApplyPolicyResponse, AuthConfig, ConnectionList, CreateAccessRequest, DecisionRequest,
    ErrorCode, OpenSessionRequest, OpenSessionResponse, PolicyCheckRequest, PolicyCheckResponse,
    PolicyInfo, PolicyTestRequest, WhoAmI,
};
use hoop_shared::policy::Decision;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::BrokerTarget;

/// How long to wait for a TCP + TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// User agent, also recorded by the broker.
pub const USER_AGENT: &str = concat!("hoopctl/", env!("CARGO_PKG_VERSION"));

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The CA file could not be used.
    #[error("cannot use the CA certificate {}: {reason}", .path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTPS client could not be built.
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
    /// No answer: connection refused, DNS, timeout.
    #[error(
        "cannot reach the broker at {url}: {cause}. Is `hoop-broker` running? \
         Check --broker / HOOP_BROKER."
    )]
    Unreachable {
        /// Broker URL.
        url: String,
        /// Root cause.
        cause: String,
    },
    /// TLS failed, most often because the broker's CA is not trusted.
    #[error(
        "cannot establish a trusted TLS connection to the broker at {url}: {cause}. \
         If the broker uses a private CA, pass its certificate with --ca-file PEM \
         (or HOOP_CA_FILE); `hoop-broker dev` writes it to config.toml for you."
    )]
    Tls {
        /// Broker URL.
        url: String,
        /// Root cause.
        cause: String,
    },
    /// The broker did not accept the token (401).
    #[error(
        "not logged in to {broker} (or the session expired): run `hoopctl login` \
         (the broker said: {message})"
    )]
    Unauthorized {
        /// Broker URL.
        broker: String,
        /// Which 401 it was.
        code: ErrorCode,
        /// The broker's words.
        message: String,
        /// What the broker suggests (e.g. which workload rule is missing).
        hint: Option<String>,
    },
    /// Any other error answer, with the broker's message and hint.
    #[error("{message}{}", .hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Broker {
        /// HTTP status.
        status: StatusCode,
        /// Machine-readable code.
        code: ErrorCode,
        /// The broker's message.
        message: String,
        /// What to do next.
        hint: Option<String>,
    },
    /// The answer was not what this hoopctl version expects.
    #[error("unexpected answer from the broker at {url} (HTTP {status}): {detail}")]
    BadResponse {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// What was wrong with it.
        detail: String,
    },
}

impl ApiError {
    /// The broker's error code, when the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Unauthorized { code, .. } | ApiError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What can be done to an access request after it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    /// An approver approves.
    Approve,
    /// An approver denies (with a reason).
    Deny,
    /// The requester withdraws it.
    Cancel,
    /// An approver or admin ends the grant.
    Revoke,
}

impl RequestAction {
    /// The last path segment.
    pub fn path(self) -> &'static str {
        match self {
            RequestAction::Approve => "approve",
            RequestAction::Deny => "deny",
            RequestAction::Cancel => "cancel",
            RequestAction::Revoke => "revoke",
        }
    }
}

/// A client for one broker.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: Url,
    display_url: String,
    http: reqwest::Client,
    tunnel_http: reqwest::Client,
    /// The broker's CA (from `--ca-file`), kept for the provider's client.
    broker_roots: Vec<reqwest::Certificate>,
    /// `--idp-ca-file` / `$HOOP_IDP_CA_FILE`.
    idp_ca_file: Option<PathBuf>,
}

impl ApiClient {
    /// Builds the clients for `broker`, trusting its CA file if it has one.
    pub fn new(broker: &BrokerTarget) -> Result<Self, ApiError> {
        let roots = load_ca(broker.ca_file.as_deref())?;
        let http = base_builder(&roots)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ApiError::Client(root_cause(&e)))?;
        // Tunnels are HTTP/1.1 upgrades and live for hours: no overall timeout
        // here; the tunnel code puts its own timeout on the handshake.
        let tunnel_http = base_builder(&roots)
            .http1_only()
            .build()
            .map_err(|e| ApiError::Client(root_cause(&e)))?;
        Ok(ApiClient {
            base: broker.url.clone(),
            display_url: broker.display_url(),
            http,
            tunnel_http,
            broker_roots: roots,
            idp_ca_file: None,
        })
    }

    /// Also trusts `path` (when given) for the identity provider.
    #[must_use]
    pub fn with_idp_ca_file(mut self, path: Option<PathBuf>) -> Self {
        self.idp_ca_file = path;
        self
    }

    /// The client for the identity provider's endpoints (device flow,
    /// refresh, revocation). It trusts the system store (and
    /// `$SSL_CERT_FILE`), Mozilla's roots, the broker's CA file, the
    /// `--idp-ca-file`, and the CA the broker advertises for its provider.
    pub fn idp_http(&self, auth: &AuthConfig) -> Result<reqwest::Client, ApiError> {
        let mut roots = self.broker_roots.clone();
        roots.extend(load_ca(self.idp_ca_file.as_deref())?);
        if let Some(pem) = &auth.issuer_ca_pem {
            let advertised =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                    ApiError::Client(format!(
                        "the broker advertises an unreadable CA for its identity provider: {}",
                        root_cause(&e)
                    ))
                })?;
            roots.extend(advertised);
        }
        base_builder(&roots)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ApiError::Client(root_cause(&e)))
    }

    /// The broker URL as shown to people.
    pub fn broker_url(&self) -> &str {
        &self.display_url
    }

    /// The plain HTTPS client (redirects disabled, broker CA trusted), also
    /// used for the identity provider's endpoints.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The HTTP/1.1-only client for tunnel upgrades.
    pub(crate) fn tunnel_http(&self) -> &reqwest::Client {
        &self.tunnel_http
    }

    /// `base` + path segments, each percent-encoded.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET /v1/auth/config`: how to log in (no token needed).
    pub async fn auth_config(&self) -> Result<AuthConfig, ApiError> {
        let segments: Vec<&str> = AUTH_CONFIG_PATH
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let req = self.http.get(self.endpoint(&segments));
        self.json(req).await
    }

    /// `GET /v1/me`.
    pub async fn whoami(&self, token: &Secret) -> Result<WhoAmI, ApiError> {
        let req = self
            .http
            .get(self.endpoint(&["v1", "me"]))
            .bearer_auth(token.expose());
        self.json(req).await
    }

    /// `GET /v1/connections`.
    pub async fn connections(&self, token: &Secret) -> Result<ConnectionList, ApiError> {
        let req = self
            .http
            .get(self.endpoint(&["v1", "connections"]))
            .bearer_auth(token.expose());
        self.json(req).await
    }

    /// `POST /v1/sessions`.
    pub async fn open_session(
        &self,
        token: &Secret,
        body: &OpenSessionRequest,
    ) -> Result<OpenSessionResponse, ApiError> {
        let req = self
            .http
            .post(self.endpoint(&["v1", "sessions"]))
            .bearer_auth(token.expose())
            .json(body);
        self.json(req).await
    }

    /// `DELETE /v1/sessions/{id}`.
    pub async fn close_session(&self, token: &Secret, session_id: &str) -> Result<(), ApiError> {
        let req = self
            .http
            .delete(self.endpoint(&["v1", "sessions", session_id]))
            .bearer_auth(token.expose());
        self.send(req).await.map(drop)
    }

    /// `GET` a JSON answer from `segments`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        token: &Secret,
        segments: &[&str],
    ) -> Result<T, ApiError> {
        let req = self
            .http
            .get(self.endpoint(segments))
            .bearer_auth(token.expose());
        self.json(req).await
    }

    /// `POST` (or another method) a JSON body to `segments`, reading a JSON answer.
    async fn send_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        token: &Secret,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ApiError> {
        let req = self
            .http
            .request(method, self.endpoint(segments))
            .bearer_auth(token.expose())
            .json(body);
        self.json(req).await
    }

    /// `GET /v1/policy`.
    pub async fn policy(&self, token: &Secret) -> Result<PolicyInfo, ApiError> {
        self.get_json(token, &["v1", "policy"]).await
    }

    /// `POST /v1/policy/check`: validate and diff, changing nothing.
    pub async fn check_policy(
        &self,
        token: &Secret,
        body: &PolicyCheckRequest,
    ) -> Result<PolicyCheckResponse, ApiError> {
        self.send_json(
            reqwest::Method::POST,
            token,
            &["v1", "policy", "check"],
            body,
        )
        .await
    }

    /// `PUT /v1/policy` (admins).
    pub async fn apply_policy(
        &self,
        token: &Secret,
        body: &ApplyPolicyRequest,
    ) -> Result<ApplyPolicyResponse, ApiError> {
        self.send_json(reqwest::Method::PUT, token, &["v1", "policy"], body)
            .await
    }

    /// `POST /v1/policy/test`.
    pub async fn test_policy(
        &self,
        token: &Secret,
        body: &PolicyTestRequest,
    ) -> Result<Decision, ApiError> {
        self.send_json(
            reqwest::Method::POST,
            token,
            &["v1", "policy", "test"],
            body,
        )
        .await
    }

    /// `POST /v1/requests`: ask for access that needs approval.
    pub async fn create_request(
        &self,
        token: &Secret,
        body: &CreateAccessRequest,
    ) -> Result<AccessRequestView, ApiError> {
        self.send_json(reqwest::Method::POST, token, &["v1", "requests"], body)
            .await
    }

    /// `GET /v1/requests`: the caller's requests, newest first.
    pub async fn requests(&self, token: &Secret) -> Result<AccessRequestList, ApiError> {
        self.get_json(token, &["v1", "requests"]).await
    }

    /// `GET /v1/requests/{id}`.
    pub async fn request(&self, token: &Secret, id: &str) -> Result<AccessRequestView, ApiError> {
        self.get_json(token, &["v1", "requests", id]).await
    }

    /// `GET /v1/approvals`: pending requests the caller may decide.
    pub async fn approvals(&self, token: &Secret) -> Result<AccessRequestList, ApiError> {
        self.get_json(token, &["v1", "approvals"]).await
    }

    /// `POST /v1/requests/{id}/{action}` for `approve`, `deny`, `cancel`, `revoke`.
    pub async fn decide(
        &self,
        token: &Secret,
        id: &str,
        action: RequestAction,
        body: &DecisionRequest,
    ) -> Result<AccessRequestView, ApiError> {
        self.send_json(
            reqwest::Method::POST,
            token,
            &["v1", "requests", id, action.path()],
            body,
        )
        .await
    }

    /// Sends a request; a non-success status becomes an [`ApiError`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, ApiError> {
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_from_response(resp).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ApiError> {
        let resp = self.send(req).await?;
        let url = resp.url().to_string();
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadResponse {
            url,
            status,
            detail: e.to_string(),
        })
    }

    /// Classifies a failure to get any answer.
    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ApiError {
        let cause = root_cause(e);
        if looks_like_tls(e) {
            ApiError::Tls {
                url: self.display_url.clone(),
                cause,
            }
        } else {
            ApiError::Unreachable {
                url: self.display_url.clone(),
                cause,
            }
        }
    }

    /// Turns an error answer into an [`ApiError`], reading the broker's `ApiErrorBody`.
    pub(crate) async fn error_from_response(&self, resp: Response) -> ApiError {
        let status = resp.status();
        let url = resp.url().to_string();
        let body = resp.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<ApiErrorBody>(&body) {
            Ok(ApiErrorBody { error }) if status == StatusCode::UNAUTHORIZED => {
                ApiError::Unauthorized {
                    broker: self.display_url.clone(),
                    code: error.code,
                    message: error.message,
                    hint: error.hint,
                }
            }
            Ok(ApiErrorBody { error }) => ApiError::Broker {
                status,
                code: error.code,
                message: error.message,
                hint: error.hint,
            },
            Err(_) if status == StatusCode::UNAUTHORIZED => ApiError::Unauthorized {
                broker: self.display_url.clone(),
                code: ErrorCode::InvalidToken,
                message: "HTTP 401".into(),
                hint: None,
            },
            Err(_) => ApiError::BadResponse {
                url,
                status,
                detail: format!(
                    "not a hoop broker error answer: {}",
                    String::from_utf8_lossy(body.get(..200).unwrap_or(&body)).trim()
                ),
            },
        }
    }
}

fn base_builder(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        // The broker ends idle keep-alive connections after 10 s (its
        // header-read deadline); dropping ours after 5 s means a request is
        // never written into a connection the broker is closing.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    for cert in roots {
        b = b.add_root_certificate(cert.clone());
    }
    b
}

fn load_ca(path: Option<&std::path::Path>) -> Result<Vec<reqwest::Certificate>, ApiError> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let err = |reason: String| ApiError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(root_cause(&e)))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The innermost error message: the one that says what actually happened
/// ("Connection refused", "invalid peer certificate: UnknownIssuer").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether `e` (or its cause) is a TLS certificate problem.
pub(crate) fn looks_like_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        let text = err.to_string();
        if text.contains("certificate") || text.contains("InvalidCertificate") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn client(url: &str) -> ApiClient {
        ApiClient::new(&BrokerTarget {
            url: Url::parse(url).unwrap(),
            url_source: Source::Flag("--broker"),
            ca_file: None,
        })
        .unwrap()
    }

    #[test]
    fn endpoints_keep_a_path_prefix_and_encode_ids() {
        let c = client("https://h:1/prefix");
        assert_eq!(
            c.endpoint(&["v1", "sessions", "a/b c"]).as_str(),
            "https://h:1/prefix/v1/sessions/a%2Fb%20c"
        );
        let c = client("https://h:1");
        assert_eq!(c.endpoint(&["v1", "me"]).as_str(), "https://h:1/v1/me");
    }

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for path in [tmp.path().join("missing.pem"), empty] {
            let err = ApiClient::new(&BrokerTarget {
                url: Url::parse("https://h").unwrap(),
                url_source: Source::Flag("--broker"),
                ca_file: Some(path.clone()),
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }

    #[tokio::test]
    async fn refused_connection_suggests_starting_the_broker() {
        // A port that was just free: bind, note it, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(&format!("http://127.0.0.1:{port}"));
        let err = c.auth_config().await.unwrap_err();
        assert!(matches!(err, ApiError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("cannot reach the broker at http://127.0.0.1:"),
            "{text}"
        );
        assert!(text.contains("hoop-broker"), "{text}");
        assert!(text.contains("HOOP_BROKER"), "{text}");
    }
}
