//! What `GET /v1/auth/config` answers: fixed for the built-in provider, discovered lazily for an external one.
//!
//! Decisions, and why:
//! - The broker must start (and keep serving people who hold valid tokens)
//!   while the organisation's IdP is down, so discovery happens on the first
//!   request, not at startup. Until it succeeds, the endpoint answers 502
//!   `identity_provider_unavailable` with the reason.
//! - A discovered config is cached for [`MAX_AGE`] and then refreshed; if the
//!   refresh fails, the stale one keeps being served (endpoints rarely move).
//! - Failed attempts are retried at most every [`RETRY_INTERVAL`], so a flood
//!   of `hoopctl login`s against a broker whose IdP is down does not turn
//!   into a flood against the IdP. Concurrent requests share one fetch.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hoop_shared::api::AuthConfig;
use serde::Deserialize;

use super::AuthError;

/// How long a discovered config is served before it is refreshed.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// Least time between two attempts while nothing usable is cached.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// Largest discovery document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Timeout of the discovery request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The login metadata hoopctl fetches; cheap to clone.
#[derive(Clone)]
pub struct LoginConfig {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Fixed(AuthConfig),
    Discovered(Arc<Discovered>),
}

struct Discovered {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    scopes: Vec<String>,
    /// Advertised to hoopctl (see [`AuthConfig::issuer_ca_pem`]).
    issuer_ca_pem: Option<String>,
    cache: Mutex<Cache>,
    fetch_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cache {
    config: Option<(AuthConfig, Instant)>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

impl LoginConfig {
    /// A config known up front (the built-in provider).
    pub fn fixed(config: AuthConfig) -> LoginConfig {
        LoginConfig {
            source: Source::Fixed(config),
        }
    }

    /// A config read from `{issuer}/.well-known/openid-configuration` on
    /// first use. `http` must trust the provider's CA; `issuer_ca_pem` (the
    /// configured extra CA, if any) is passed on to hoopctl.
    pub fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: &str,
        scopes: &[String],
        issuer_ca_pem: Option<String>,
    ) -> LoginConfig {
        LoginConfig {
            source: Source::Discovered(Arc::new(Discovered {
                http,
                issuer: issuer.trim_end_matches('/').to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                issuer_ca_pem,
                cache: Mutex::new(Cache::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
            })),
        }
    }

    /// The config, discovering it when needed.
    pub async fn get(&self) -> Result<AuthConfig, AuthError> {
        match &self.source {
            Source::Fixed(c) => Ok(c.clone()),
            Source::Discovered(d) => d.get().await,
        }
    }
}

impl Discovered {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached config, and whether it is still fresh.
    fn cached(&self) -> Option<(AuthConfig, bool)> {
        self.cache()
            .config
            .as_ref()
            .map(|(c, at)| (c.clone(), at.elapsed() < MAX_AGE))
    }

    async fn get(&self) -> Result<AuthConfig, AuthError> {
        let stale = match self.cached() {
            Some((c, true)) => return Ok(c),
            Some((c, false)) => Some(c),
            None => None,
        };
        // With a stale copy, one request refreshes and the others use it.
        let _fetching = match (&stale, self.fetch_lock.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(c), Err(_)) => return Ok(c.clone()),
            (None, Err(_)) => self.fetch_lock.lock().await,
        };
        // Someone else may have fetched while we waited.
        let stale = match self.cached() {
            Some((c, true)) => return Ok(c),
            Some((c, false)) => Some(c),
            None => None,
        };
        {
            let cache = self.cache();
            let too_soon = cache
                .last_attempt
                .is_some_and(|t| t.elapsed() < RETRY_INTERVAL);
            if too_soon {
                return match stale {
                    Some(c) => Ok(c),
                    None => Err(AuthError::ProviderUnavailable(
                        cache
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "retrying shortly".into()),
                    )),
                };
            }
        }
        self.cache().last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(config) => {
                let mut cache = self.cache();
                cache.config = Some((config.clone(), Instant::now()));
                cache.last_error = None;
                Ok(config)
            }
            Err(reason) => {
                tracing::warn!(issuer = %self.issuer, "identity provider discovery failed: {reason}");
                self.cache().last_error = Some(reason.clone());
                match stale {
                    Some(c) => Ok(c),
                    None => Err(AuthError::ProviderUnavailable(reason)),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<AuthConfig, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let mut resp = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                format!("{url}: {what}")
            })?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| format!("{url}: the response was cut off"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "{url}: response larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Document = serde_json::from_slice(&body)
            .map_err(|_| format!("{url}: not an OpenID discovery document"))?;
        if doc.issuer != self.issuer {
            return Err(format!(
                "{url}: announces issuer {:?}, expected {:?}",
                doc.issuer, self.issuer
            ));
        }
        let device = doc.device_authorization_endpoint.ok_or_else(|| {
            format!(
                "{} does not offer the device authorization grant (RFC 8628)",
                self.issuer
            )
        })?;
        Ok(AuthConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            device_authorization_endpoint: device,
            token_endpoint: doc.token_endpoint,
            scopes: self.scopes.clone(),
            revocation_endpoint: doc.revocation_endpoint,
            issuer_ca_pem: self.issuer_ca_pem.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::routing::get;
    use serde_json::json;

    use super::*;

    /// An issuer URL on a loopback port that nothing serves until `serve`.
    struct LateIdp {
        addr: std::net::SocketAddr,
        issuer: String,
        hits: Arc<AtomicUsize>,
    }

    impl LateIdp {
        fn new() -> LateIdp {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            LateIdp {
                addr,
                issuer: format!("http://{addr}"),
                hits: Arc::new(AtomicUsize::new(0)),
            }
        }

        async fn serve(&self) {
            let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
            let issuer = self.issuer.clone();
            let hits = self.hits.clone();
            let app = axum::Router::new().route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    Json(json!({
                        "issuer": issuer,
                        "token_endpoint": format!("{issuer}/token"),
                        "device_authorization_endpoint": format!("{issuer}/device"),
                        "revocation_endpoint": format!("{issuer}/revoke"),
                        "jwks_uri": format!("{issuer}/jwks"),
                    }))
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
    }

    fn config_for(idp: &LateIdp) -> LoginConfig {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        LoginConfig::discover(http, &idp.issuer, "hoopctl", &["openid".into()], None)
    }

    #[tokio::test]
    async fn a_provider_that_is_down_is_reported_then_used_once_up() {
        let idp = LateIdp::new();
        let config = config_for(&idp);
        match config.get().await {
            Err(AuthError::ProviderUnavailable(why)) => {
                assert!(why.contains("cannot connect"), "{why}")
            }
            other => panic!("expected ProviderUnavailable, got {other:?}"),
        }
        // Within the retry interval the failure is answered from memory.
        assert!(matches!(
            config.get().await,
            Err(AuthError::ProviderUnavailable(_))
        ));

        // The provider comes up on the same port.
        idp.serve().await;
        if let Source::Discovered(d) = &config.source {
            d.cache().last_attempt = None;
        }
        let c = config.get().await.unwrap();
        assert_eq!(
            c.device_authorization_endpoint,
            format!("{}/device", idp.issuer)
        );
        assert_eq!(
            c.revocation_endpoint.as_deref(),
            Some(format!("{}/revoke", idp.issuer).as_str())
        );
        assert_eq!(c.client_id, "hoopctl");
        // Cached: no second request.
        config.get().await.unwrap();
        assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
    }
}
