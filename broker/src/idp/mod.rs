//! The built-in development identity provider: a real OAuth 2.0 device flow (RFC 8628) and authorization code flow with PKCE (RFC 7636), issuing signed JWTs.
//!
//! **For development only.** There are no passwords: anyone who can reach the
//! verification page can sign in as any user listed under `[identity.builtin]`.
//! What it does do properly is speak the same protocols as a production
//! provider, so hoopctl and the broker's [`crate::auth::TokenVerifier`] treat its
//! tokens exactly like an external issuer's (discovery, JWKS, signatures).
//!
//! Endpoints, relative to the issuer (`{public_url}/idp`, mounted by the app):
//!
//! | Method | Path | What |
//! |---|---|---|
//! | GET | `/.well-known/openid-configuration` | discovery document |
//! | GET | `/jwks` | the public signing key (Ed25519, `EdDSA`) |
//! | POST | `/device/code` | RFC 8628 §3.1 device authorization (form: `client_id`, `scope`) |
//! | GET | `/device` | verification page (`?user_code=` prefills the code) |
//! | POST | `/device` | approve or deny (form: `user_code`, `username`, `action`=`approve`\|`deny`; default approve) |
//! | GET | `/authorize` | authorization request (RFC 6749 §4.1.1 + PKCE): the same user picker |
//! | POST | `/authorize` | the picker's answer (form: `request`, `username`, `action`); redirects back with `code` + `state` (+ `iss`, RFC 9207) |
//! | POST | `/token` | `grant_type` = `urn:ietf:params:oauth:grant-type:device_code`, `authorization_code` or `refresh_token` |
//! | POST | `/revoke` | RFC 7009 token revocation (form: `token`, optional `token_type_hint`, `client_id`) |
//!
//! Decisions:
//! - One public client (the configured `client_id`), identified in the form
//!   body or by HTTP Basic with an empty secret (what OAuth libraries send).
//! - Access tokens and ID tokens are JWTs signed with the key from [`key`];
//!   `sub` is `dev:<name>`, groups come from the config.
//! - Device codes and refresh tokens are random and stored only as SHA-256
//!   digests. A device code yields tokens once. Refresh tokens rotate on use;
//!   presenting a spent one revokes the whole chain it belongs to (it was
//!   probably stolen), per the OAuth security BCP.
//! - `/revoke` (RFC 7009) revokes a refresh token together with every token
//!   of its chain (all rotate from one login), so `hoopctl logout` ends the
//!   whole grant. It answers 200 for unknown tokens and for access tokens
//!   (self-contained JWTs that simply run out), as §2.2 asks, so it reveals
//!   nothing about which tokens exist.
//! - State (pending codes, refresh tokens) lives in memory: a broker restart
//!   keeps access tokens valid (the key is on disk) but forgets refresh tokens,
//!   so users run `hoopctl login` again.
//! - Authorization code flow: PKCE with `S256` is required (`plain` and no
//!   challenge are refused), as OAuth 2.1 asks of public clients. A
//!   `redirect_uri` must be on the issuer's own origin (the broker's pages,
//!   e.g. `/approvals/callback`) or an `http` loopback address (native apps,
//!   RFC 8252 §7.3): any other would let a link hand codes to a stranger.
//!   Until the client and `redirect_uri` are known good, errors are shown as
//!   a page, never redirected (RFC 6749 §4.1.2.1). Codes live
//!   [`AUTH_CODE_TTL`], are stored as digests, and redeem once, with the same
//!   `redirect_uri` and the verifier of the challenge. A `nonce` is copied
//!   into the ID token.
//! - Errors are RFC 6749 §5.2 JSON (`error`, `error_description`), and every
//!   token-bearing response carries `Cache-Control: no-store`.

mod key;
mod page;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use base64::Engine as _;
use hoop_shared::Secret;
use hoop_shared::api::AuthConfig;
use rand::Rng as _;
use serde_json::{Value, json};

use crate::config::{BuiltinIdpConfig, DevUser};
pub use key::KEY_FILE;
use key::SigningKey;

/// The device-code grant type (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a device code can be approved and redeemed.
pub const DEVICE_CODE_TTL: Duration = Duration::from_secs(600);
/// Default minimum time between token polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default lifetime of access and ID tokens.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);
/// Lifetime of a refresh token (each use issues a new one).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the polling interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Expired device codes are kept this long so polls get `expired_token`
/// rather than `invalid_grant`.
const EXPIRED_GRACE: Duration = Duration::from_secs(600);
/// Cap on remembered device codes, so a client looping on `/device/code`
/// cannot exhaust memory.
const MAX_PENDING: usize = 10_000;
/// Cap on request bodies (forms are tiny).
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted `scope` parameter.
const MAX_SCOPE_LEN: usize = 512;
/// How long an authorization code can be redeemed (RFC 6749 §4.1.2: short).
pub const AUTH_CODE_TTL: Duration = Duration::from_secs(60);
/// How long the sign-in page of an authorization request stays usable.
const AUTHORIZE_TTL: Duration = Duration::from_secs(600);
/// Longest accepted `state`, `nonce` or `redirect_uri`.
const MAX_PARAM_LEN: usize = 2048;
/// RFC 8628 §6.1: consonants only, no vowels (no words) and no look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// Why the provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// A file or directory operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by other users.
    #[error(
        "{}: the signing key is accessible by other users (mode {mode:o}); \
         run `chmod 600 {}` (or delete it to generate a new key)",
        path.display(), path.display()
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold a usable key.
    #[error(
        "{}: {reason}; delete the file to generate a new key \
         (tokens signed with the old key then stop validating)",
        path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl IdpError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        IdpError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// The development identity provider.
pub struct DevIdp {
    issuer: String,
    audience: String,
    client_id: String,
    users: Vec<DevUser>,
    token_ttl: Duration,
    key: SigningKey,
    /// Polling interval handed out with new device codes, in milliseconds.
    poll_interval_ms: AtomicU64,
    /// Added to the monotonic clock; only tests move it, to expire codes
    /// without sleeping.
    clock_offset_secs: AtomicU64,
    state: Mutex<GrantState>,
}

#[derive(Default)]
struct GrantState {
    /// Keyed by SHA-256 (hex) of the device code.
    devices: HashMap<String, DeviceGrant>,
    /// Normalized user code → key of `devices`.
    user_codes: HashMap<String, String>,
    /// Keyed by SHA-256 (hex) of the refresh token.
    refresh: HashMap<String, RefreshGrant>,
    /// Rotated-away refresh tokens (digest → chain), to detect reuse.
    spent_refresh: HashMap<String, SpentRefresh>,
    /// Authorization requests waiting on the user picker, by request id.
    authorize: HashMap<String, AuthorizeRequest>,
    /// Issued authorization codes, keyed by SHA-256 (hex) of the code.
    codes: HashMap<String, CodeGrant>,
}

/// A validated authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
struct AuthorizeRequest {
    redirect_uri: url::Url,
    /// As sent: `/token` must present exactly this string (§4.1.3).
    redirect_uri_raw: String,
    state: Option<String>,
    code_challenge: String,
    scope: String,
    nonce: Option<String>,
    expires_at: Instant,
}

/// What an authorization code stands for until it is redeemed.
struct CodeGrant {
    user: DevUser,
    redirect_uri: String,
    code_challenge: String,
    scope: String,
    nonce: Option<String>,
    expires_at: Instant,
}

enum Decision {
    Pending,
    Approved(DevUser),
    Denied,
}

struct DeviceGrant {
    user_code: String,
    scope: String,
    expires_at: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    decision: Decision,
}

struct RefreshGrant {
    user: String,
    scope: String,
    /// All tokens descending from one login share a chain id.
    chain: String,
    expires_at: Instant,
}

struct SpentRefresh {
    chain: String,
    expires_at: Instant,
}

impl GrantState {
    fn prune(&mut self, now: Instant) {
        self.devices
            .retain(|_, g| now < g.expires_at + EXPIRED_GRACE);
        let devices = &self.devices;
        self.user_codes.retain(|_, d| devices.contains_key(d));
        self.refresh.retain(|_, r| now < r.expires_at);
        self.spent_refresh.retain(|_, s| now < s.expires_at);
        self.authorize.retain(|_, a| now < a.expires_at);
        self.codes.retain(|_, c| now < c.expires_at);
    }
}

/// An OAuth error response (RFC 6749 §5.2, RFC 8628 §3.5).
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
        }
    }

    fn invalid_client() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "unknown client_id".into(),
        }
    }

    fn into_response(self) -> Response {
        no_store(
            self.status,
            json!({"error": self.code, "error_description": self.description}),
        )
    }
}

/// JSON with `Cache-Control: no-store` (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

fn sha256_hex(value: &str) -> String {
    Secret::new(value).sha256_hex()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses an `application/x-www-form-urlencoded` body or query. A repeated
/// parameter is an error (RFC 6749 §3.1), reported by name.
fn parse_form(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(out)
}

/// `XXXXXXXX` from what a user typed: case-insensitive, dashes and spaces
/// ignored. `None` if it cannot be a code we issued.
fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ok.then_some(code)
}

/// `XXXX-XXXX` for display.
fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => code.to_owned(),
    }
}

fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| {
            let i = rng.random_range(0..USER_CODE_ALPHABET.len());
            USER_CODE_ALPHABET.get(i).map_or('B', |b| char::from(*b))
        })
        .collect()
}

impl DevIdp {
    /// Loads or creates the signing key under `data_dir/idp/` and sets up the
    /// provider. `issuer` has no trailing slash (e.g.
    /// `https://127.0.0.1:8443/idp`); `audience` goes into access tokens;
    /// `client_id` is the only client accepted.
    pub fn new(
        data_dir: &Path,
        cfg: &BuiltinIdpConfig,
        issuer: String,
        audience: String,
        client_id: String,
    ) -> Result<DevIdp, IdpError> {
        let key = SigningKey::load_or_create(&data_dir.join("idp"))?;
        Ok(DevIdp {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience,
            client_id,
            users: cfg.users.iter().map(|u| u.get_ref().clone()).collect(),
            token_ttl: cfg.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL),
            key,
            poll_interval_ms: AtomicU64::new(millis(DEFAULT_POLL_INTERVAL)),
            clock_offset_secs: AtomicU64::new(0),
            state: Mutex::new(GrantState::default()),
        })
    }

    /// Sets the polling interval handed out with new device codes (default
    /// 5 s). Clients see it rounded up to whole seconds, as RFC 8628 requires.
    /// Lower it (even to zero) to keep scripted logins in tests quick.
    pub fn set_poll_interval(&self, interval: Duration) {
        self.poll_interval_ms
            .store(millis(interval), Ordering::Relaxed);
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What hoopctl needs to log in.
    pub fn auth_config(&self, scopes: Vec<String>) -> AuthConfig {
        AuthConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            device_authorization_endpoint: format!("{}/device/code", self.issuer),
            token_endpoint: format!("{}/token", self.issuer),
            scopes,
            revocation_endpoint: Some(format!("{}/revoke", self.issuer)),
            issuer_ca_pem: None,
        }
    }

    /// The endpoints, relative to the issuer path; mount with
    /// `Router::nest("/idp", idp.router())`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/device/code", axum::routing::post(device_authorization))
            .route("/device", get(device_page).post(device_decision))
            .route("/authorize", get(authorize_page).post(authorize_decision))
            .route("/token", axum::routing::post(token))
            .route("/revoke", axum::routing::post(revoke))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    fn now(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.clock_offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this provider's clock forward (device-code expiry only).
    #[cfg(test)]
    fn advance_clock(&self, by: Duration) {
        self.clock_offset_secs
            .fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, GrantState> {
        // A panic while holding the lock cannot leave the maps inconsistent in
        // a way that matters more than refusing every login would.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.prune(self.now());
        state
    }

    fn user(&self, name: &str) -> Option<&DevUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The client id from the form or HTTP Basic; `Err` if it is missing or
    /// not ours.
    fn check_client(
        &self,
        form: &HashMap<String, String>,
        headers: &HeaderMap,
    ) -> Result<(), OAuthError> {
        let presented = match form.get("client_id") {
            Some(id) => Some(id.clone()),
            None => basic_client_id(headers),
        };
        match presented {
            Some(id) if id == self.client_id => Ok(()),
            _ => Err(OAuthError::invalid_client()),
        }
    }

    /// Signs access and ID tokens for `user`, and records a new refresh token
    /// in `chain`.
    fn issue(
        &self,
        state: &mut GrantState,
        user: &DevUser,
        scope: &str,
        chain: String,
        nonce: Option<&str>,
    ) -> Result<Response, OAuthError> {
        let now = unix_now();
        let ttl = self.token_ttl.as_secs();
        let sub = format!("dev:{}", user.name);
        let access = json!({
            "iss": self.issuer, "aud": self.audience, "sub": sub,
            "preferred_username": user.name, "groups": user.groups,
            "client_id": self.client_id, "scope": scope,
            "iat": now, "nbf": now, "exp": now + ttl, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut id = json!({
            "iss": self.issuer, "aud": self.client_id, "sub": sub,
            "preferred_username": user.name, "name": user.name, "groups": user.groups,
            "auth_time": now, "iat": now, "nbf": now, "exp": now + ttl,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let (Some(nonce), Some(claims)) = (nonce, id.as_object_mut()) {
            claims.insert("nonce".into(), Value::String(nonce.to_owned()));
        }
        let access_token = self.sign(&access, "at+jwt")?;
        let id_token = self.sign(&id, "JWT")?;
        let refresh = Secret::generate(32);
        state.refresh.insert(
            refresh.sha256_hex(),
            RefreshGrant {
                user: user.name.clone(),
                scope: scope.to_owned(),
                chain,
                expires_at: self.now() + REFRESH_TOKEN_TTL,
            },
        );
        Ok(no_store(
            StatusCode::OK,
            json!({
                "access_token": access_token.expose(),
                "token_type": "Bearer",
                "expires_in": ttl,
                "refresh_token": refresh.expose(),
                "id_token": id_token.expose(),
                "scope": scope,
            }),
        ))
    }

    fn sign(&self, claims: &Value, typ: &str) -> Result<Secret, OAuthError> {
        let mut header = jsonwebtoken::Header::new(SigningKey::ALG);
        header.kid = Some(self.key.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key.encoding)
            .map(Secret::new)
            .map_err(|e| {
                tracing::error!("cannot sign a token: {e}");
                OAuthError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "server_error",
                    description: "cannot sign the token".into(),
                }
            })
    }

    fn device_code_grant(&self, form: &HashMap<String, String>) -> Result<Response, OAuthError> {
        let code = form
            .get("device_code")
            .ok_or_else(|| OAuthError::new("invalid_request", "device_code is missing"))?;
        let digest = sha256_hex(code);
        let now = self.now();
        let mut state = self.lock();
        let Some(grant) = state.devices.get_mut(&digest) else {
            return Err(OAuthError::new(
                "invalid_grant",
                "unknown or already used device_code",
            ));
        };
        if now >= grant.expires_at {
            return Err(OAuthError::new(
                "expired_token",
                "the device code expired; start the login again",
            ));
        }
        let last_poll = grant.last_poll.replace(now);
        match &grant.decision {
            Decision::Pending => {
                if last_poll.is_some_and(|t| now.duration_since(t) < grant.interval) {
                    grant.interval += SLOW_DOWN_STEP;
                    return Err(OAuthError::new(
                        "slow_down",
                        format!(
                            "polling too fast; wait {} s between requests",
                            grant.interval.as_secs()
                        ),
                    ));
                }
                Err(OAuthError::new(
                    "authorization_pending",
                    "waiting for the user to approve",
                ))
            }
            Decision::Denied => Err(OAuthError::new(
                "access_denied",
                "the user denied the sign-in",
            )),
            Decision::Approved(user) => {
                let user = user.clone();
                let scope = grant.scope.clone();
                let user_code = grant.user_code.clone();
                // A device code yields tokens exactly once.
                state.devices.remove(&digest);
                state.user_codes.remove(&user_code);
                tracing::info!(user = %user.name, "development login approved");
                self.issue(
                    &mut state,
                    &user,
                    &scope,
                    uuid::Uuid::new_v4().to_string(),
                    None,
                )
            }
        }
    }

    fn refresh_grant(&self, form: &HashMap<String, String>) -> Result<Response, OAuthError> {
        let token = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
        let digest = sha256_hex(token);
        let now = self.now();
        let mut state = self.lock();
        let Some(grant) = state.refresh.remove(&digest) else {
            if let Some(spent) = state.spent_refresh.get(&digest) {
                // Reuse of a rotated token: someone else may hold the chain.
                let chain = spent.chain.clone();
                state.refresh.retain(|_, r| r.chain != chain);
                tracing::warn!("a spent refresh token was presented; its chain is revoked");
            }
            return Err(OAuthError::new(
                "invalid_grant",
                "unknown, expired or already used refresh_token; run `hoopctl login`",
            ));
        };
        state.spent_refresh.insert(
            digest,
            SpentRefresh {
                chain: grant.chain.clone(),
                expires_at: now + REFRESH_TOKEN_TTL,
            },
        );
        let Some(user) = self.user(&grant.user).cloned() else {
            return Err(OAuthError::new(
                "invalid_grant",
                "the user no longer exists",
            ));
        };
        self.issue(&mut state, &user, &grant.scope, grant.chain, None)
    }
}

impl DevIdp {
    /// True for a `redirect_uri` this provider may send codes to: the
    /// issuer's own origin, or an `http` loopback address (RFC 8252 §7.3).
    fn redirect_allowed(&self, uri: &url::Url) -> bool {
        if uri.fragment().is_some() || !uri.username().is_empty() || uri.password().is_some() {
            return false;
        }
        let own = url::Url::parse(&self.issuer).is_ok_and(|iss| iss.origin() == uri.origin());
        let loopback = uri.scheme() == "http"
            && match uri.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
        own || loopback
    }

    /// RFC 6749 §4.1.3 with RFC 7636 §4.6: redeems an authorization code once.
    fn authorization_code_grant(
        &self,
        form: &HashMap<String, String>,
    ) -> Result<Response, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::new("invalid_request", "code_verifier is missing"))?;
        let redirect_uri = form.get("redirect_uri").map_or("", String::as_str);
        let now = self.now();
        let mut state = self.lock();
        // Removed before any check: a code is worth one attempt.
        let Some(grant) = state.codes.remove(&sha256_hex(code)) else {
            return Err(OAuthError::new(
                "invalid_grant",
                "unknown, expired or already used authorization code",
            ));
        };
        if now >= grant.expires_at {
            return Err(OAuthError::new(
                "invalid_grant",
                "the authorization code expired; sign in again",
            ));
        }
        if grant.redirect_uri != redirect_uri {
            return Err(OAuthError::new(
                "invalid_grant",
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        if !pkce_matches(verifier, &grant.code_challenge) {
            return Err(OAuthError::new(
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            ));
        }
        tracing::info!(user = %grant.user.name, "development sign-in (authorization code)");
        self.issue(
            &mut state,
            &grant.user,
            &grant.scope,
            uuid::Uuid::new_v4().to_string(),
            grant.nonce.as_deref(),
        )
    }
}

/// RFC 7636 §4.4.2: `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    if !valid_pkce_value(verifier) {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]` (verifiers and
/// S256 challenges alike).
fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl DevIdp {
    /// RFC 7009: revokes `token` if it is a live or spent refresh token of
    /// ours, together with its whole chain. Returns whether anything was revoked.
    fn revoke_refresh(&self, token: &str) -> bool {
        let digest = sha256_hex(token);
        let mut state = self.lock();
        let chain = match (state.refresh.get(&digest), state.spent_refresh.get(&digest)) {
            (Some(live), _) => live.chain.clone(),
            (None, Some(spent)) => spent.chain.clone(),
            (None, None) => return false,
        };
        let before = state.refresh.len();
        state.refresh.retain(|_, r| r.chain != chain);
        before != state.refresh.len()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The client id from `Authorization: Basic base64(urlencode(id):secret)`
/// (RFC 6749 §2.3.1); a public client's secret is empty.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, _secret) = text.split_once(':')?;
    url::form_urlencoded::parse(format!("id={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

async fn discovery(State(idp): State<Arc<DevIdp>>) -> Response {
    let iss = &idp.issuer;
    no_store(
        StatusCode::OK,
        json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/jwks"),
            "token_endpoint": format!("{iss}/token"),
            "device_authorization_endpoint": format!("{iss}/device/code"),
            "authorization_endpoint": format!("{iss}/authorize"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "revocation_endpoint_auth_methods_supported": ["none"],
            "grant_types_supported": [DEVICE_CODE_GRANT, "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile", "offline_access"],
            "claims_supported": ["iss", "aud", "sub", "preferred_username", "name", "groups",
                                 "iat", "nbf", "exp", "jti"],
        }),
    )
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    axum::Json(json!({"keys": [idp.key.jwk]})).into_response()
}

async fn device_authorization(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let form = parse_form(&body).map_err(|e| OAuthError::new("invalid_request", e))?;
        idp.check_client(&form, &headers)?;
        let scope = form
            .get("scope")
            .map_or("openid", String::as_str)
            .to_owned();
        if scope.len() > MAX_SCOPE_LEN {
            return Err(OAuthError::new("invalid_scope", "scope is too long"));
        }
        let device_code = Secret::generate(32);
        let interval = idp.poll_interval();
        let now = idp.now();
        let mut state = idp.lock();
        if state.devices.len() >= MAX_PENDING {
            return Err(OAuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "temporarily_unavailable",
                description: "too many logins in progress; try again in a few minutes".into(),
            });
        }
        let user_code = loop {
            let c = new_user_code();
            if !state.user_codes.contains_key(&c) {
                break c;
            }
        };
        let digest = device_code.sha256_hex();
        state.user_codes.insert(user_code.clone(), digest.clone());
        state.devices.insert(
            digest,
            DeviceGrant {
                user_code: user_code.clone(),
                scope,
                expires_at: now + DEVICE_CODE_TTL,
                interval,
                last_poll: None,
                decision: Decision::Pending,
            },
        );
        let shown = display_user_code(&user_code);
        Ok(no_store(
            StatusCode::OK,
            json!({
                "device_code": device_code.expose(),
                "user_code": shown,
                "verification_uri": format!("{}/device", idp.issuer),
                "verification_uri_complete":
                    format!("{}/device?user_code={shown}", idp.issuer),
                "expires_in": DEVICE_CODE_TTL.as_secs(),
                // Whole seconds (RFC 8628 §3.2), rounded up so clients never
                // poll faster than we enforce.
                "interval": interval.as_millis().div_ceil(1000),
            }),
        ))
    })();
    result.unwrap_or_else(OAuthError::into_response)
}

async fn device_page(State(idp): State<Arc<DevIdp>>, RawQuery(query): RawQuery) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let typed = params.get("user_code").map_or("", String::as_str);
    let shown = normalize_user_code(typed).map_or_else(
        || typed.chars().take(16).collect(),
        |c| display_user_code(&c),
    );
    page::device_form(&shown, &idp.users)
}

async fn device_decision(State(idp): State<Arc<DevIdp>>, body: Bytes) -> Response {
    let Ok(form) = parse_form(&body) else {
        return page::problem("The form was sent twice over; go back and submit it once.");
    };
    let approve = match form.get("action").map(String::as_str) {
        None | Some("approve") => true,
        Some("deny") => false,
        Some(_) => return page::problem("Unknown action: choose Approve or Deny."),
    };
    let Some(code) = form.get("user_code").and_then(|c| normalize_user_code(c)) else {
        return page::problem(
            "That is not a valid code. Codes look like BCDF-GHJK; check your terminal.",
        );
    };
    let user = if approve {
        let name = form.get("username").map_or("", String::as_str);
        match idp.user(name) {
            Some(u) => Some(u.clone()),
            None => return page::problem("Choose one of the listed users."),
        }
    } else {
        None
    };
    let now = idp.now();
    let mut state = idp.lock();
    let grant = state
        .user_codes
        .get(&code)
        .cloned()
        .and_then(|digest| state.devices.get_mut(&digest));
    let Some(grant) = grant else {
        return page::problem("Unknown or expired code. Start the login again in your terminal.");
    };
    if now >= grant.expires_at {
        return page::problem("This code has expired. Start the login again in your terminal.");
    }
    if !matches!(grant.decision, Decision::Pending) {
        return page::problem("This code has already been used.");
    }
    match user {
        Some(u) => {
            let name = u.name.clone();
            grant.decision = Decision::Approved(u);
            page::done(Some(&name))
        }
        None => {
            grant.decision = Decision::Denied;
            page::done(None)
        }
    }
}

/// Where an authorization answer goes: `redirect_uri` with `params` and our
/// `iss` (RFC 9207) added to its query, as a 303 so the browser GETs it.
fn redirect_back(idp: &DevIdp, redirect_uri: &url::Url, params: &[(&str, &str)]) -> Response {
    let mut target = redirect_uri.clone();
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", &idp.issuer);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response()
}

/// An error sent back to the client (RFC 6749 §4.1.2.1), with its `state`.
fn redirect_error(
    idp: &DevIdp,
    redirect_uri: &url::Url,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_back(idp, redirect_uri, &params)
}

/// `GET /authorize`: checks the request, then shows the user picker.
async fn authorize_page(State(idp): State<Arc<DevIdp>>, RawQuery(query): RawQuery) -> Response {
    let Ok(params) = parse_form(query.unwrap_or_default().as_bytes()) else {
        return page::authorize_problem("A parameter is repeated in the sign-in request.");
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    // The client and its return address first: until both are known good,
    // errors are shown here and never redirected.
    if get("client_id") != Some(idp.client_id.as_str()) {
        return page::authorize_problem("The application asking you to sign in is not known here.");
    }
    let Some(redirect_uri) = get("redirect_uri")
        .filter(|u| u.len() <= MAX_PARAM_LEN)
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| idp.redirect_allowed(u))
    else {
        return page::authorize_problem(
            "The sign-in request names no acceptable return address (redirect_uri).",
        );
    };
    let state = get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return redirect_error(
            &idp,
            &redirect_uri,
            None,
            "invalid_request",
            "state is too long",
        );
    }
    let fail = |error: &str, description: &str| {
        redirect_error(&idp, &redirect_uri, state.as_deref(), error, description)
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            "PKCE is required: send code_challenge (S256)",
        );
    };
    if get("code_challenge_method") != Some("S256") || !valid_pkce_value(challenge) {
        return fail(
            "invalid_request",
            "code_challenge_method must be S256 with a valid challenge",
        );
    }
    let scope = get("scope").unwrap_or("openid").to_owned();
    if scope.len() > MAX_SCOPE_LEN {
        return fail("invalid_scope", "scope is too long");
    }
    let nonce = get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_PARAM_LEN) {
        return fail("invalid_request", "nonce is too long");
    }
    let request_id = Secret::generate(16);
    let now = idp.now();
    {
        let mut grants = idp.lock();
        if grants.authorize.len() >= MAX_PENDING {
            return fail(
                "temporarily_unavailable",
                "too many sign-ins in progress; try again in a few minutes",
            );
        }
        grants.authorize.insert(
            request_id.expose().to_owned(),
            AuthorizeRequest {
                redirect_uri: redirect_uri.clone(),
                redirect_uri_raw: get("redirect_uri").unwrap_or_default().to_owned(),
                state: state.clone(),
                code_challenge: challenge.to_owned(),
                scope,
                nonce,
                expires_at: now + AUTHORIZE_TTL,
            },
        );
    }
    let origin = redirect_uri.origin().ascii_serialization();
    page::authorize_form(request_id.expose(), &idp.client_id, &origin, &idp.users)
}

/// `POST /authorize`: the user picked someone (or cancelled); back to the
/// client with a code or `access_denied`.
async fn authorize_decision(State(idp): State<Arc<DevIdp>>, body: Bytes) -> Response {
    let Ok(form) = parse_form(&body) else {
        return page::authorize_problem("The form was sent twice over; start the sign-in again.");
    };
    let approve = match form.get("action").map(String::as_str) {
        None | Some("approve") => true,
        Some("deny") => false,
        Some(_) => return page::authorize_problem("Unknown action: choose Sign in or Cancel."),
    };
    let user = match form.get("username").and_then(|n| idp.user(n)) {
        Some(u) => Some(u.clone()),
        None if approve => return page::problem("Choose one of the listed users."),
        None => None,
    };
    let request_key = form.get("request").map_or("", String::as_str);
    let now = idp.now();
    let mut grants = idp.lock();
    // One answer per request: a reload or a second tab finds nothing.
    let Some(request) = grants.authorize.remove(request_key) else {
        return page::authorize_problem(
            "This sign-in request is unknown, expired or already answered.",
        );
    };
    let user = match (approve, user) {
        (true, Some(u)) => u,
        _ => {
            return redirect_error(
                &idp,
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the user cancelled the sign-in",
            );
        }
    };
    if grants.codes.len() >= MAX_PENDING {
        return redirect_error(
            &idp,
            &request.redirect_uri,
            request.state.as_deref(),
            "temporarily_unavailable",
            "too many sign-ins in progress; try again in a few minutes",
        );
    }
    let code = Secret::generate(32);
    grants.codes.insert(
        code.sha256_hex(),
        CodeGrant {
            user,
            redirect_uri: request.redirect_uri_raw,
            code_challenge: request.code_challenge,
            scope: request.scope,
            nonce: request.nonce,
            expires_at: now + AUTH_CODE_TTL,
        },
    );
    drop(grants);
    let mut params = vec![("code", code.expose())];
    if let Some(s) = request.state.as_deref() {
        params.push(("state", s));
    }
    redirect_back(&idp, &request.redirect_uri, &params)
}

async fn token(State(idp): State<Arc<DevIdp>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let form = parse_form(&body).map_err(|e| OAuthError::new("invalid_request", e))?;
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is missing"))?;
        match grant_type.as_str() {
            DEVICE_CODE_GRANT => {
                idp.check_client(&form, &headers)?;
                idp.device_code_grant(&form)
            }
            "refresh_token" => {
                idp.check_client(&form, &headers)?;
                idp.refresh_grant(&form)
            }
            "authorization_code" => {
                idp.check_client(&form, &headers)?;
                idp.authorization_code_grant(&form)
            }
            _ => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("supported: {DEVICE_CODE_GRANT}, authorization_code, refresh_token"),
            )),
        }
    })();
    result.unwrap_or_else(OAuthError::into_response)
}

async fn revoke(State(idp): State<Arc<DevIdp>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let form = parse_form(&body).map_err(|e| OAuthError::new("invalid_request", e))?;
        idp.check_client(&form, &headers)?;
        let token = form
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
        // The hint is only an optimisation (§2.1): refresh tokens are the only
        // kind we can revoke, so every token is looked up as one.
        if idp.revoke_refresh(token) {
            tracing::info!("a refresh token chain was revoked");
        }
        Ok(no_store(StatusCode::OK, json!({})))
    })();
    result.unwrap_or_else(OAuthError::into_response)
}

#[cfg(test)]
mod tests;
