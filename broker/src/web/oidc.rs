//! The broker as an OpenID Connect relying party for its web pages: discovery, PKCE, the code exchange.
//!
//! Generic on purpose: the endpoints come from the issuer's
//! `/.well-known/openid-configuration` (the built-in development provider
//! publishes one like any other), so the same code signs people in against
//! an organisation's provider. The broker is a public client (the configured
//! `client_id`, no secret) protected by PKCE `S256`; that provider must list
//! `{public_url}/approvals/callback` as a redirect URI of that client.
//!
//! Endpoints are cached once discovered (a failed discovery is retried on
//! the next sign-in). Every request has a timeout and a bounded answer.

use std::time::Duration;

use base64::Engine as _;
use hoop_shared::Secret;
use serde::Deserialize;
use sha2::Digest as _;

/// Timeout of each request to the identity provider.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from the identity provider.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why signing in through the identity provider failed. The text is safe to
/// show the person signing in (it never holds a token or code).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered with an HTTP error.
    #[error("the identity provider is unavailable ({0})")]
    Unavailable(String),
    /// Discovery worked but names no authorization endpoint.
    #[error(
        "the identity provider {0} does not offer sign-in in a browser (no authorization_endpoint)"
    )]
    NoBrowserSignIn(String),
    /// The provider refused to exchange the code.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// An answer that is not what the protocol promises.
    #[error("the identity provider answered something unexpected: {0}")]
    BadAnswer(String),
}

/// The two endpoints a browser sign-in needs.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where the broker redeems the code.
    pub token: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A PKCE pair (RFC 7636): the verifier stays on the broker, the challenge
/// goes with the browser.
pub struct Pkce {
    /// 32 random bytes, URL-safe base64 (43 characters).
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair.
    pub fn generate() -> Pkce {
        let verifier = Secret::generate(32);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.expose().as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// One identity provider, as the web pages use it.
pub struct Provider {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    scope: String,
    redirect_uri: String,
    endpoints: tokio::sync::OnceCell<Endpoints>,
}

impl Provider {
    /// A relying party of `issuer` as `client_id`, receiving codes at
    /// `redirect_uri`. `http` must trust the provider's CA.
    pub fn new(
        http: reqwest::Client,
        issuer: &str,
        client_id: &str,
        scopes: &[String],
        redirect_uri: String,
    ) -> Provider {
        let mut scope: Vec<&str> = vec!["openid"];
        // Refresh tokens are useless to a page session; other scopes (an API
        // audience, say) may shape the access token, so they are kept.
        scope.extend(
            scopes
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "openid" && *s != "offline_access"),
        );
        Provider {
            http,
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.join(" "),
            redirect_uri,
            endpoints: tokio::sync::OnceCell::new(),
        }
    }

    /// The issuer URL (for RFC 9207's `iss` check on the callback).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The endpoints, discovered on first use.
    pub async fn endpoints(&self) -> Result<&Endpoints, OidcError> {
        self.endpoints.get_or_try_init(|| self.discover()).await
    }

    async fn discover(&self) -> Result<Endpoints, OidcError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let resp = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(describe(&e)))?;
        if !resp.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "discovery answered HTTP {}",
                resp.status()
            )));
        }
        let body = read_bounded(resp).await?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|_| OidcError::BadAnswer("not an OpenID discovery document".into()))?;
        if doc.issuer.trim_end_matches('/') != self.issuer {
            return Err(OidcError::BadAnswer(format!(
                "discovery names issuer {:?}, expected {:?}",
                doc.issuer, self.issuer
            )));
        }
        let authorization = doc
            .authorization_endpoint
            .ok_or_else(|| OidcError::NoBrowserSignIn(self.issuer.clone()))?;
        Ok(Endpoints {
            authorization,
            token: doc.token_endpoint,
        })
    }

    /// Where to send the browser: the authorization request (RFC 6749
    /// §4.1.1) with `state` and the PKCE challenge.
    pub async fn authorization_url(
        &self,
        state: &str,
        challenge: &str,
    ) -> Result<String, OidcError> {
        let endpoints = self.endpoints().await?;
        let mut url = url::Url::parse(&endpoints.authorization)
            .map_err(|_| OidcError::BadAnswer("authorization_endpoint is not a URL".into()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Redeems `code` (RFC 6749 §4.1.3 with the PKCE verifier) and returns
    /// the access token, which the caller validates like any bearer token.
    pub async fn exchange(&self, code: &str, verifier: &Secret) -> Result<Secret, OidcError> {
        let endpoints = self.endpoints().await?;
        let resp = self
            .http
            .post(&endpoints.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("client_id", self.client_id.as_str()),
                ("code_verifier", verifier.expose()),
            ])
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(describe(&e)))?;
        let status = resp.status();
        let body = read_bounded(resp).await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorAnswer>(&body) {
                Ok(e) => OidcError::Refused(match e.error_description {
                    Some(d) => format!("{}: {}", clip(&e.error), clip(&d)),
                    None => clip(&e.error),
                }),
                Err(_) => {
                    OidcError::Unavailable(format!("the token endpoint answered HTTP {status}"))
                }
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| OidcError::BadAnswer("the token answer holds no access_token".into()))?;
        Ok(Secret::new(answer.access_token))
    }
}

/// Words for a transport failure (never the URL's query, which may hold a code).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "request failed".into()
    }
}

/// At most 200 characters of provider-supplied text.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| OidcError::Unavailable("the answer was cut off".into()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(OidcError::BadAnswer(format!(
                "an answer larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let p = Pkce::generate();
        assert_eq!(p.verifier.expose().len(), 43);
        // RFC 7636 Appendix B's example, through the same code path.
        let digest = sha2::Sha256::digest(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let again = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(p.verifier.expose().as_bytes()));
        assert_eq!(p.challenge, again);
    }

    #[test]
    fn scopes_always_ask_for_openid_and_never_for_refresh_tokens() {
        let p = Provider::new(
            reqwest::Client::new(),
            "https://idp.example/",
            "hoopctl",
            &[
                "offline_access".into(),
                "api://hoop".into(),
                "openid".into(),
            ],
            "https://b.example/approvals/callback".into(),
        );
        assert_eq!(p.scope, "openid api://hoop");
        assert_eq!(p.issuer(), "https://idp.example");
    }
}
