//! Logging in and staying logged in.
//!
//! - [`device`]: the OAuth 2.0 device flow (RFC 8628) against the identity
//!   provider the broker names in `GET /v1/auth/config`, and token refresh.
//! - [`store`]: where the tokens live between commands (OS keyring, or a
//!   0600 file).
//! - [`source`]: which token to use at all: `--token-file`, `HOOP_ID_TOKEN`,
//!   `HOOP_TOKEN`, a CI platform's token (GitHub Actions, Kubernetes), or
//!   the stored login.
//! - This file: [`Credentials`], which hands each API call (and each tunnel)
//!   a valid access token: it loads the token from its source, renews it when
//!   it expires within [`REFRESH_MARGIN`] (refresh token for a login; asking
//!   the source again for a file or GitHub), and otherwise says what to do.

pub mod device;
pub mod source;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hoop_shared::Secret;
use hoop_shared::api::ErrorCode;

use crate::api::{ApiClient, ApiError};
use source::{SourceError, TokenSource};
use store::{Loaded, Location, StoreError, StoredTokens, TokenStore};

/// An access token this close to its expiry is refreshed before use, so it
/// does not expire between hoopctl's check and the broker's.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// Why no usable token is at hand.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No login, a login for another broker, or one that expired and could not be refreshed.
    #[error(
        "not logged in to {broker} (or the session expired): run `hoopctl login`{}",
        .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    NotLoggedIn {
        /// The broker.
        broker: String,
        /// What exactly was found, if anything.
        detail: Option<String>,
    },
    /// A token that does not come from a login has expired (or its source
    /// gave an expired one again).
    #[error("the token from {location} has expired; provide a fresh one{}", advice(.location))]
    SourceExpired {
        /// Where the token came from.
        location: Location,
    },
    /// The broker refused a token that does not come from a login.
    #[error(
        "the broker at {broker} refused the token from {location}: {message}{}{}",
        advice(.location),
        .hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default()
    )]
    Refused {
        /// The broker.
        broker: String,
        /// Where the token came from.
        location: Location,
        /// The broker's words (they name the reason class, never the token).
        message: String,
        /// The broker's suggestion, when it made one.
        hint: Option<String>,
    },
    /// The token source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker could not be asked (unreachable, TLS, error answer).
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Extra advice for a token that did not come from a login: `HOOP_TOKEN`
/// is how a person's scripts pass a token, so point back to the login.
fn advice(location: &Location) -> String {
    match location {
        Location::Env(var) if *var == source::TOKEN_ENV => {
            format!(" (or unset {var} and run `hoopctl login` to use your own login)")
        }
        _ => String::new(),
    }
}

/// What to do with a stored access token before using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// Use it as it is.
    Use,
    /// Get a new one with the refresh token first.
    Refresh,
    /// It is (nearly) expired and cannot be refreshed: log in again.
    Relogin,
}

/// Decides what to do with an access token expiring at `expires_at` (Unix
/// seconds; `None` = unknown, let the broker judge) at time `now`.
pub fn token_action(expires_at: Option<u64>, can_refresh: bool, now: u64) -> TokenAction {
    match expires_at {
        None => TokenAction::Use,
        Some(exp) if now.saturating_add(REFRESH_MARGIN.as_secs()) < exp => TokenAction::Use,
        Some(_) if can_refresh => TokenAction::Refresh,
        Some(_) => TokenAction::Relogin,
    }
}

/// Current time, Unix seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `exp` claim of a JWT, read without verifying it (only to know when to
/// refresh; the broker verifies). `None` for tokens that are not JWTs.
pub fn jwt_expiry(token: &Secret) -> Option<u64> {
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<u64>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.exp
}

/// When a freshly issued access token expires: from `expires_in` if the
/// token endpoint said, else from the JWT's `exp`.
pub fn expiry_of(access_token: &Secret, expires_in: Option<Duration>, now: u64) -> Option<u64> {
    expires_in
        .map(|d| now.saturating_add(d.as_secs()))
        .or_else(|| jwt_expiry(access_token))
}

/// Hands out valid access tokens for one broker, refreshing them as needed.
#[derive(Debug)]
pub struct Credentials {
    api: ApiClient,
    store: Arc<TokenStore>,
    source: TokenSource,
    current: tokio::sync::Mutex<Option<Loaded>>,
}

impl Credentials {
    /// Credentials for the broker `api` talks to, with tokens from `source`
    /// (the `store` is used for [`TokenSource::Store`]).
    pub fn new(api: ApiClient, store: TokenStore, source: TokenSource) -> Self {
        Credentials {
            api,
            store: Arc::new(store),
            source,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// A 401 from the broker, as advice that fits where the token came from:
    /// "run `hoopctl login`" only helps when the token came from a login.
    pub fn explain_unauthorized(&self, e: ApiError) -> AuthError {
        match (e, self.source.location()) {
            (ApiError::Unauthorized { message, hint, .. }, Some(location)) => AuthError::Refused {
                broker: self.api.broker_url().to_owned(),
                location,
                message,
                hint,
            },
            (e, _) => AuthError::Api(e),
        }
    }

    /// The API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// Where the login in use comes from (loads it if needed).
    pub async fn location(&self) -> Result<Location, AuthError> {
        let mut current = self.current.lock().await;
        Ok(self.loaded(&mut current).await?.location.clone())
    }

    /// A valid access token: the stored one, refreshed if it expires within
    /// [`REFRESH_MARGIN`].
    pub async fn access_token(&self) -> Result<Secret, AuthError> {
        let mut current = self.current.lock().await;
        let loaded = self.loaded(&mut current).await?;
        let t = &loaded.tokens;
        let can_refresh = t.refresh_token.is_some() || self.source.can_reacquire();
        match token_action(t.expires_at, can_refresh, now_unix()) {
            TokenAction::Use => Ok(t.access_token.clone()),
            TokenAction::Refresh => self.refresh_locked(&mut current).await,
            TokenAction::Relogin => Err(self.expired(&loaded.location)),
        }
    }

    fn expired(&self, location: &Location) -> AuthError {
        match self.source.location() {
            Some(_) => AuthError::SourceExpired {
                location: location.clone(),
            },
            None => self.not_logged_in(Some("the stored login has expired".to_owned())),
        }
    }

    /// Runs an API call with a valid token. If the broker says the token
    /// expired anyway (clock skew), refreshes once and retries.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, AuthError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let token = self.access_token().await?;
        let retry_token = match f(token).await {
            Err(e @ ApiError::Unauthorized { .. }) if e.code() == Some(ErrorCode::TokenExpired) => {
                let mut current = self.current.lock().await;
                let can = self.source.can_reacquire()
                    || current
                        .as_ref()
                        .is_some_and(|l| l.tokens.refresh_token.is_some());
                if !can {
                    return Err(self.explain_unauthorized(e));
                }
                self.refresh_locked(&mut current).await?
            }
            Err(e) => return Err(self.explain_unauthorized(e)),
            Ok(v) => return Ok(v),
        };
        f(retry_token)
            .await
            .map_err(|e| self.explain_unauthorized(e))
    }

    fn not_logged_in(&self, detail: Option<String>) -> AuthError {
        AuthError::NotLoggedIn {
            broker: self.api.broker_url().to_owned(),
            detail,
        }
    }

    async fn loaded<'a>(&self, current: &'a mut Option<Loaded>) -> Result<&'a Loaded, AuthError> {
        if current.is_none() && self.source.location().is_some() {
            *current = Some(self.acquire().await?);
        }
        if current.is_none() {
            let store = Arc::clone(&self.store);
            let loaded = tokio::task::spawn_blocking(move || store.load())
                .await
                .map_err(|e| StoreError::Keyring(format!("the token store task failed: {e}")))??;
            let Some(loaded) = loaded else {
                return Err(self.not_logged_in(None));
            };
            if loaded.tokens.broker_url != self.api.broker_url() {
                return Err(self.not_logged_in(Some(format!(
                    "the stored login is for {}",
                    loaded.tokens.broker_url
                ))));
            }
            *current = Some(loaded);
        }
        current.as_ref().ok_or_else(|| self.not_logged_in(None))
    }

    /// A token from a source other than the store, as a login-shaped [`Loaded`].
    async fn acquire(&self) -> Result<Loaded, AuthError> {
        let token = self.source.acquire(self.api.http()).await?;
        let (Some(token), Some(location)) = (token, self.source.location()) else {
            return Err(self.not_logged_in(None));
        };
        Ok(Loaded {
            tokens: StoredTokens {
                expires_at: jwt_expiry(&token),
                access_token: token,
                refresh_token: None,
                id_token: None,
                broker_url: self.api.broker_url().to_owned(),
            },
            location,
        })
    }

    /// Renews the access token; the caller holds the lock. A login uses
    /// its refresh token; a file or GitHub is asked again.
    async fn refresh_locked(&self, current: &mut Option<Loaded>) -> Result<Secret, AuthError> {
        if self.source.location().is_some() {
            let fresh = self.acquire().await?;
            let action = token_action(fresh.tokens.expires_at, false, now_unix());
            if action != TokenAction::Use {
                return Err(self.expired(&fresh.location));
            }
            let token = fresh.tokens.access_token.clone();
            *current = Some(fresh);
            return Ok(token);
        }
        let Some(loaded) = current.as_ref() else {
            return Err(self.not_logged_in(None));
        };
        let Some(refresh_token) = loaded.tokens.refresh_token.clone() else {
            return Err(self.not_logged_in(Some("the login cannot be refreshed".into())));
        };
        let auth_config = self.api.auth_config().await?;
        let idp_http = self.api.idp_http(&auth_config)?;
        let fresh = device::refresh(&idp_http, &auth_config, &refresh_token)
            .await
            .map_err(|e| self.not_logged_in(Some(format!("refreshing the login failed: {e}"))))?;
        let tokens = StoredTokens {
            expires_at: expiry_of(&fresh.access_token, fresh.expires_in, now_unix()),
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token.or(Some(refresh_token)),
            id_token: fresh.id_token.or_else(|| loaded.tokens.id_token.clone()),
            broker_url: loaded.tokens.broker_url.clone(),
        };
        let store = Arc::clone(&self.store);
        let to_save = tokens.clone();
        let location = match tokio::task::spawn_blocking(move || store.save(&to_save)).await {
            Ok(Ok(location)) => location,
            Ok(Err(e)) => {
                // The new token still works for this command; the next one refreshes again.
                tracing::warn!("could not store the refreshed login: {e}");
                loaded.location.clone()
            }
            Err(e) => {
                tracing::warn!("could not store the refreshed login: {e}");
                loaded.location.clone()
            }
        };
        let token = tokens.access_token.clone();
        *current = Some(Loaded { tokens, location });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tokens_are_used_as_they_are() {
        assert_eq!(token_action(Some(1000), true, 900), TokenAction::Use);
        assert_eq!(token_action(Some(1000), false, 969), TokenAction::Use);
        assert_eq!(token_action(None, false, u64::MAX), TokenAction::Use);
    }

    #[test]
    fn tokens_within_30s_of_expiry_are_refreshed_or_need_a_login() {
        for now in [970, 999, 1000, 5000] {
            assert_eq!(
                token_action(Some(1000), true, now),
                TokenAction::Refresh,
                "{now}"
            );
            assert_eq!(
                token_action(Some(1000), false, now),
                TokenAction::Relogin,
                "{now}"
            );
        }
    }

    fn jwt(payload: &str) -> Secret {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(payload)))
    }

    #[test]
    fn expiry_comes_from_expires_in_else_from_the_jwt() {
        let t = jwt(r#"{"sub":"a","exp":1234}"#);
        assert_eq!(jwt_expiry(&t), Some(1234));
        assert_eq!(expiry_of(&t, Some(Duration::from_secs(60)), 100), Some(160));
        assert_eq!(expiry_of(&t, None, 100), Some(1234));
        assert_eq!(expiry_of(&Secret::new("opaque"), None, 100), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"a"}"#)), None);
        assert_eq!(jwt_expiry(&Secret::new("a.!!!.c")), None);
    }

    /// A long `connect` with a file-based workload token (a Kubernetes
    /// projected token, rotated by the kubelet): an expiring token is
    /// re-read from the file, so the rotated one is used.
    #[tokio::test]
    async fn an_expiring_token_file_is_read_again_and_a_rotated_token_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("token");
        let now = now_unix();
        let near = jwt(&format!(r#"{{"sub":"w","exp":{}}}"#, now + 5));
        std::fs::write(&path, near.expose()).unwrap();
        let api = ApiClient::new(&crate::config::BrokerTarget {
            url: "http://127.0.0.1:9".parse().unwrap(),
            url_source: crate::config::Source::Flag("--broker"),
            ca_file: None,
        })
        .unwrap();
        let store = TokenStore::new(
            tmp.path(),
            store::StoreMode::File,
            Box::new(store::FileBackend::new(tmp.path())),
        );
        let creds = Credentials::new(api, store, TokenSource::TokenFile(path.clone()));
        let err = creds.access_token().await.unwrap_err().to_string();
        assert!(
            err.contains("has expired") && err.contains(&path.display().to_string()),
            "{err}"
        );
        assert!(!err.contains("hoopctl login"), "{err}");

        let rotated = jwt(&format!(r#"{{"sub":"w","exp":{}}}"#, now + 3600));
        std::fs::write(&path, rotated.expose()).unwrap();
        assert_eq!(
            creds.access_token().await.unwrap().expose(),
            rotated.expose()
        );
        assert_eq!(
            creds.location().await.unwrap(),
            Location::TokenFile(path.clone())
        );
    }

    #[test]
    fn not_logged_in_says_which_broker_and_what_to_run() {
        let e = AuthError::NotLoggedIn {
            broker: "https://b:1".into(),
            detail: Some("the stored login is for https://c:2".into()),
        }
        .to_string();
        assert_eq!(
            e,
            "not logged in to https://b:1 (or the session expired): run `hoopctl login` \
             (the stored login is for https://c:2)"
        );
    }
}
