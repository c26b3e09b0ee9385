//! `hoopctl logout`: revoke the refresh token where the identity provider
//! offers revocation (RFC 7009), then forget the stored login, wherever it is.
//!
//! Revocation comes first because it needs the refresh token; its failure
//! (provider down, broker unreachable) is only a warning: the local delete
//! happens regardless, so logout always leaves nothing behind in the store.

use std::io::Write as _;
use std::sync::Arc;

use hoop_shared::Secret;

use super::Context;
use crate::api::ApiClient;
use crate::auth::device;
use crate::auth::store::{Location, TokenStore};
use crate::config::{BrokerTarget, Source};

/// What logging out did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The revocation endpoint that confirmed the refresh token is dead.
    pub revoked_at: Option<String>,
    /// Why revocation was not done or failed (a warning for the user).
    pub revoke_warning: Option<String>,
    /// Where a stored login was deleted.
    pub removed: Vec<Location>,
}

/// Revokes and deletes the login.
pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let store = ctx.token_store()?;
    let configured = ctx.settings.broker().ok().cloned();
    // The identity the broker confirmed last is part of the login.
    let _ = std::fs::remove_file(ctx.settings.config_dir.join(super::whoami::IDENTITY_FILE));
    let outcome = logout(
        store,
        configured.as_ref(),
        ctx.settings.idp_ca_file.as_deref(),
    )
    .await?;

    let mut out = std::io::stdout();
    if let Some(endpoint) = &outcome.revoked_at {
        writeln!(out, "Revoked the refresh token at {endpoint}.")?;
    }
    if let Some(warning) = &outcome.revoke_warning {
        eprintln!("warning: {warning}; the login is deleted here and ends when it expires");
    }
    if outcome.removed.is_empty() {
        writeln!(out, "Not logged in; nothing to remove.")?;
    } else {
        for location in &outcome.removed {
            writeln!(out, "Removed the stored login from {location}.")?;
        }
        writeln!(out, "Logged out.")?;
    }
    if let Some(location) = ctx.token_source().location() {
        eprintln!("note: hoopctl still uses the token from {location} until that is removed.");
    }
    Ok(0)
}

/// Revokes the stored refresh token (when the provider offers revocation),
/// then deletes the login from every store. `configured` is the broker the
/// settings name; its CA file is used when the login is for that broker.
/// `idp_ca_file` is `--idp-ca-file`, trusted for the provider.
pub async fn logout(
    store: TokenStore,
    configured: Option<&BrokerTarget>,
    idp_ca_file: Option<&std::path::Path>,
) -> anyhow::Result<Outcome> {
    let store = Arc::new(store);
    let mut outcome = Outcome::default();
    let loaded = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || store.load()).await?
    };
    match loaded {
        Ok(Some(loaded)) => {
            if let Some(refresh_token) = &loaded.tokens.refresh_token {
                match revoke(
                    &loaded.tokens.broker_url,
                    configured,
                    idp_ca_file,
                    refresh_token,
                )
                .await
                {
                    Ok(Some(endpoint)) => outcome.revoked_at = Some(endpoint),
                    Ok(None) => tracing::debug!("the identity provider offers no revocation"),
                    Err(e) => outcome.revoke_warning = Some(format!("{e:#}")),
                }
            }
        }
        Ok(None) => {}
        // An unreadable login cannot be revoked, but it can still be deleted.
        Err(e) => outcome.revoke_warning = Some(format!("cannot revoke: {e}")),
    }
    outcome.removed = tokio::task::spawn_blocking(move || store.delete()).await??;
    Ok(outcome)
}

/// Asks the login's broker where to revoke, and revokes there. `Ok(None)`
/// when the provider has no revocation endpoint.
async fn revoke(
    broker_url: &str,
    configured: Option<&BrokerTarget>,
    idp_ca_file: Option<&std::path::Path>,
    refresh_token: &Secret,
) -> anyhow::Result<Option<String>> {
    let target = match configured {
        Some(t) if t.display_url() == broker_url => t.clone(),
        _ => BrokerTarget {
            url: broker_url
                .parse()
                .map_err(|e| anyhow::anyhow!("cannot revoke: bad broker URL in the login: {e}"))?,
            url_source: Source::Flag("login"),
            ca_file: None,
        },
    };
    let api = ApiClient::new(&target)?.with_idp_ca_file(idp_ca_file.map(ToOwned::to_owned));
    let auth_config = api
        .auth_config()
        .await
        .map_err(|e| anyhow::anyhow!("cannot revoke the refresh token: {e}"))?;
    let Some(endpoint) = auth_config.revocation_endpoint.clone() else {
        return Ok(None);
    };
    let idp_http = api
        .idp_http(&auth_config)
        .map_err(|e| anyhow::anyhow!("cannot revoke the refresh token: {e}"))?;
    device::revoke(&idp_http, &endpoint, &auth_config.client_id, refresh_token)
        .await
        .map_err(|e| anyhow::anyhow!("cannot revoke the refresh token: {e}"))?;
    Ok(Some(endpoint))
}

#[cfg(test)]
mod tests {
    //! Logout against a stand-in broker + provider on 127.0.0.1 that serves
    //! `/v1/auth/config` and records what reaches its `/revoke`.

    use super::*;
    use crate::auth::store::test_support::FakeKeyring;
    use crate::auth::store::{StoreMode, StoredTokens, TOKEN_FILE};
    use axum::extract::{Form, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use hoop_shared::api::AuthConfig;
    use std::collections::HashMap;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

    /// `revocation`: whether the config advertises `/revoke`; `revoke_ok`: its answer.
    async fn stand_in(revocation: bool, revoke_ok: bool) -> (BrokerTarget, Seen) {
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = AuthConfig {
            issuer: base.clone(),
            client_id: "hoopctl".into(),
            device_authorization_endpoint: format!("{base}/device/code"),
            token_endpoint: format!("{base}/token"),
            scopes: vec!["openid".into()],
            revocation_endpoint: revocation.then(|| format!("{base}/revoke")),
            issuer_ca_pem: None,
        };
        let app = axum::Router::new()
            .route(
                hoop_shared::api::AUTH_CONFIG_PATH,
                axum::routing::get(move || {
                    let cfg = cfg.clone();
                    async move { axum::Json(cfg) }
                }),
            )
            .route(
                "/revoke",
                axum::routing::post(
                    move |State(seen): State<Seen>, Form(f): Form<HashMap<String, String>>| async move {
                        seen.lock().unwrap().push(f);
                        if revoke_ok {
                            StatusCode::OK.into_response()
                        } else {
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(serde_json::json!({"error": "temporarily_unavailable"})),
                            )
                                .into_response()
                        }
                    },
                ),
            )
            .with_state(Arc::clone(&seen));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let target = BrokerTarget {
            url: base.parse().unwrap(),
            url_source: Source::Flag("--broker"),
            ca_file: None,
        };
        (target, seen)
    }

    fn login_for(broker: &BrokerTarget) -> StoredTokens {
        StoredTokens {
            access_token: Secret::new("access-1"),
            refresh_token: Some(Secret::new("refresh-1")),
            id_token: None,
            expires_at: None,
            broker_url: broker.display_url(),
        }
    }

    #[tokio::test]
    async fn logout_revokes_the_refresh_token_then_empties_the_file_store() {
        let (broker, seen) = stand_in(true, true).await;
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FakeKeyring::default()),
        );
        store.save(&login_for(&broker)).unwrap();
        let outcome = logout(store, Some(&broker), None).await.unwrap();
        assert!(outcome.revoked_at.unwrap().ends_with("/revoke"));
        assert!(outcome.revoke_warning.is_none());
        let forms = seen.lock().unwrap().clone();
        assert_eq!(forms.len(), 1);
        let f = &forms[0];
        assert_eq!(f.get("token").map(String::as_str), Some("refresh-1"));
        assert_eq!(
            f.get("token_type_hint").map(String::as_str),
            Some("refresh_token")
        );
        assert_eq!(f.get("client_id").map(String::as_str), Some("hoopctl"));
        assert!(
            !tmp.path().join(TOKEN_FILE).exists(),
            "tokens.json left behind"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn failed_revocation_warns_and_still_empties_the_keyring() {
        let (broker, seen) = stand_in(true, false).await;
        let tmp = tempfile::tempdir().unwrap();
        let keyring = FakeKeyring::default();
        let store = TokenStore::new(tmp.path(), StoreMode::Auto, Box::new(keyring.clone()));
        assert!(matches!(
            store.save(&login_for(&broker)).unwrap(),
            Location::Keyring(_)
        ));
        let outcome = logout(store, Some(&broker), None).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(outcome.revoked_at.is_none());
        let warning = outcome.revoke_warning.unwrap();
        assert!(
            warning.contains("503") && warning.contains("temporarily_unavailable"),
            "{warning}"
        );
        assert!(!warning.contains("refresh-1"), "token echoed: {warning}");
        assert_eq!(outcome.removed.len(), 1);
        assert!(keyring.is_empty(), "keyring entry left behind");
        assert!(!tmp.path().join(TOKEN_FILE).exists());
    }

    #[tokio::test]
    async fn without_a_revocation_endpoint_or_a_broker_logout_still_deletes() {
        let (broker, seen) = stand_in(false, true).await;
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FakeKeyring::default()),
        );
        store.save(&login_for(&broker)).unwrap();
        let outcome = logout(store, Some(&broker), None).await.unwrap();
        assert!(outcome.revoked_at.is_none() && outcome.revoke_warning.is_none());
        assert!(seen.lock().unwrap().is_empty());
        assert!(!tmp.path().join(TOKEN_FILE).exists());

        // The broker is gone: a warning, and the file is deleted anyway.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gone = BrokerTarget {
            url: format!("http://127.0.0.1:{port}").parse().unwrap(),
            url_source: Source::Flag("--broker"),
            ca_file: None,
        };
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FakeKeyring::default()),
        );
        store.save(&login_for(&gone)).unwrap();
        let outcome = logout(store, None, None).await.unwrap();
        assert!(
            outcome.revoke_warning.unwrap().contains("cannot reach"),
            "no warning"
        );
        assert_eq!(outcome.removed.len(), 1);
        assert!(!tmp.path().join(TOKEN_FILE).exists());
    }
}
