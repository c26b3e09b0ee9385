//! Where the bearer token comes from, so one binary serves people and CI jobs.
//!
//! Order, first found wins:
//!
//! 1. `--token-file PATH`: a file holding a token (re-read when it expires,
//!    so a file rotated by its writer keeps working).
//! 2. `HOOP_ID_TOKEN`: a workload's OIDC ID token, given directly.
//! 3. `HOOP_TOKEN`: any token the broker accepts, given directly.
//! 4. GitHub Actions: with `ACTIONS_ID_TOKEN_REQUEST_URL` and
//!    `ACTIONS_ID_TOKEN_REQUEST_TOKEN` set (a job with `permissions:
//!    id-token: write`), hoopctl asks GitHub for an ID token whose `aud` is
//!    `--audience` / `HOOP_AUDIENCE` (default `hoop`).
//! 5. Kubernetes: the projected service account token at
//!    `HOOP_K8S_TOKEN_PATH` (default `/var/run/secrets/tokens/hoop`), if that
//!    file exists.
//! 6. The stored login (`hoopctl login`), refreshed as needed.
//!
//! Why `HOOP_TOKEN` sits above the platform sources: everything a person or a
//! script sets on purpose (a flag, `HOOP_ID_TOKEN`, `HOOP_TOKEN`) beats what
//! hoopctl merely discovers in its surroundings (a CI runner's token service, a
//! mounted file), as in the AWS and Google SDKs' credential chains. A job that
//! sets `HOOP_TOKEN` gets that token even on a runner that could mint one.
//!
//! Tokens from 1–5 are sent to the broker as they are; the broker validates
//! them against its identity provider or its trusted workload issuers.
//! Nothing here ever puts a token value into an error or a log line.

use std::path::{Path, PathBuf};

use hoop_shared::Secret;

use super::store::Location;

/// A workload's OIDC ID token, given directly.
pub const ID_TOKEN_ENV: &str = "HOOP_ID_TOKEN";
/// Any bearer token the broker accepts, given directly (scripts).
pub const TOKEN_ENV: &str = "HOOP_TOKEN";
/// Audience requested from a CI platform's token service.
pub const AUDIENCE_ENV: &str = "HOOP_AUDIENCE";
/// Audience when neither `--audience` nor `HOOP_AUDIENCE` says otherwise.
pub const DEFAULT_AUDIENCE: &str = "hoop";
/// Path of a Kubernetes projected token.
pub const K8S_TOKEN_PATH_ENV: &str = "HOOP_K8S_TOKEN_PATH";
/// Where a pod's projected token for hoop is mounted by convention.
pub const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/tokens/hoop";
/// GitHub Actions: URL of the job's OIDC token service.
pub const GITHUB_URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: bearer token for that service.
pub const GITHUB_TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// A token larger than this is not a token (and is not read into memory whole).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token could not be obtained from its source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The token file could not be read.
    #[error("cannot read the token from {location}: {source}")]
    Read {
        /// Which file.
        location: Location,
        /// Cause.
        source: std::io::Error,
    },
    /// The source holds nothing usable.
    #[error("{location} holds no token")]
    Empty {
        /// Which source.
        location: Location,
    },
    /// The source holds something far larger than a token.
    #[error("{location} holds more than {MAX_TOKEN_LEN} bytes; that is not a token")]
    TooLarge {
        /// Which source.
        location: Location,
    },
    /// GitHub's token service failed.
    #[error(
        "cannot get an OIDC token from GitHub Actions: {reason} (does the job have \
         `permissions: id-token: write`?)"
    )]
    Github {
        /// What went wrong (never a token).
        reason: String,
    },
}

/// The source chosen for this run.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// `--token-file PATH`.
    TokenFile(PathBuf),
    /// A token in an environment variable (`HOOP_ID_TOKEN` or `HOOP_TOKEN`).
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        token: Secret,
    },
    /// The GitHub Actions OIDC token service.
    GithubActions {
        /// `ACTIONS_ID_TOKEN_REQUEST_URL`.
        request_url: String,
        /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
        request_token: Secret,
        /// Requested `aud`.
        audience: String,
    },
    /// A Kubernetes projected token file.
    Kubernetes(PathBuf),
    /// The stored login.
    Store,
}

impl TokenSource {
    /// Picks the source (see the module docs for the order). `env` looks up
    /// an environment variable (`None` when unset or empty); `exists` tells
    /// whether a path exists (tests pass stand-ins for both).
    pub fn resolve(
        token_file: Option<&Path>,
        audience: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        exists: &dyn Fn(&Path) -> bool,
    ) -> TokenSource {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(path) = token_file {
            return TokenSource::TokenFile(path.to_path_buf());
        }
        for var in [ID_TOKEN_ENV, TOKEN_ENV] {
            if let Some(token) = env(var) {
                return TokenSource::Env {
                    var,
                    token: Secret::new(token.trim()),
                };
            }
        }
        if let (Some(request_url), Some(request_token)) =
            (env(GITHUB_URL_ENV), env(GITHUB_TOKEN_ENV))
        {
            let audience = audience
                .map(str::to_owned)
                .or_else(|| env(AUDIENCE_ENV))
                .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
            return TokenSource::GithubActions {
                request_url,
                request_token: Secret::new(request_token),
                audience,
            };
        }
        let k8s = env(K8S_TOKEN_PATH_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_K8S_TOKEN_PATH));
        if exists(&k8s) {
            return TokenSource::Kubernetes(k8s);
        }
        TokenSource::Store
    }

    /// Picks the source from the process environment and file system.
    pub fn from_env(token_file: Option<&Path>, audience: Option<&str>) -> TokenSource {
        Self::resolve(
            token_file,
            audience,
            &|name| std::env::var(name).ok(),
            &|path| path.exists(),
        )
    }

    /// Where the token comes from; `None` for the stored login (the store says where).
    pub fn location(&self) -> Option<Location> {
        match self {
            TokenSource::TokenFile(path) => Some(Location::TokenFile(path.clone())),
            TokenSource::Env { var, .. } => Some(Location::Env(var)),
            TokenSource::GithubActions { audience, .. } => Some(Location::GithubActions {
                audience: audience.clone(),
            }),
            TokenSource::Kubernetes(path) => Some(Location::Kubernetes(path.clone())),
            TokenSource::Store => None,
        }
    }

    /// Whether asking the source again can give a newer token (a rotated
    /// file, a fresh GitHub token); a variable's value cannot change.
    pub fn can_reacquire(&self) -> bool {
        matches!(
            self,
            TokenSource::TokenFile(_)
                | TokenSource::GithubActions { .. }
                | TokenSource::Kubernetes(_)
        )
    }

    /// Gets the token; `Ok(None)` for [`TokenSource::Store`].
    pub async fn acquire(&self, http: &reqwest::Client) -> Result<Option<Secret>, SourceError> {
        let token = match self {
            TokenSource::Store => return Ok(None),
            TokenSource::Env { token, .. } => token.clone(),
            TokenSource::TokenFile(path) | TokenSource::Kubernetes(path) => {
                read_token_file(
                    path,
                    self.location().unwrap_or(Location::TokenFile(path.clone())),
                )
                .await?
            }
            TokenSource::GithubActions {
                request_url,
                request_token,
                audience,
            } => github_token(http, request_url, request_token, audience).await?,
        };
        Ok(Some(token))
    }
}

/// Reads a token file: bounded, surrounding whitespace trimmed.
async fn read_token_file(path: &Path, location: Location) -> Result<Secret, SourceError> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| SourceError::Read {
            location: location.clone(),
            source,
        })?;
    let mut buf = Vec::new();
    file.take(MAX_TOKEN_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|source| SourceError::Read {
            location: location.clone(),
            source,
        })?;
    if buf.len() > MAX_TOKEN_LEN {
        return Err(SourceError::TooLarge { location });
    }
    let text = String::from_utf8(buf).map_err(|_| SourceError::Read {
        location: location.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(SourceError::Empty { location });
    }
    Ok(Secret::new(token))
}

/// Asks the GitHub Actions token service for an ID token with `audience`:
/// `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
/// `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answer `{"value": "<jwt>"}`.
pub async fn github_token(
    http: &reqwest::Client,
    request_url: &str,
    request_token: &Secret,
    audience: &str,
) -> Result<Secret, SourceError> {
    let err = |reason: String| SourceError::Github { reason };
    let mut url = url::Url::parse(request_url)
        .map_err(|e| err(format!("{GITHUB_URL_ENV} is not a URL ({e})")))?;
    url.query_pairs_mut().append_pair("audience", audience);
    let resp = http
        .get(url)
        .header(
            reqwest::header::AUTHORIZATION,
            format!("bearer {}", request_token.expose()),
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| err(crate::api::root_cause(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(format!("the token service answered HTTP {status}")));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_TOKEN_LEN as u64)
    {
        return Err(err("the answer is too large".into()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| err(crate::api::root_cause(&e)))?;
    if body.len() > MAX_TOKEN_LEN {
        return Err(err("the answer is too large".into()));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        value: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| err("the answer is not the expected JSON {\"value\": ...}".into()))?;
    match answer.value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(err("the answer holds no token".into())),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::collections::HashMap;

    fn resolve_with(flag: Option<&str>, vars: &[(&str, &str)], existing: &[&str]) -> TokenSource {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let existing: Vec<PathBuf> = existing.iter().map(PathBuf::from).collect();
        TokenSource::resolve(
            flag.map(Path::new),
            None,
            &|name| vars.get(name).cloned(),
            &|p| existing.iter().any(|e| e == p),
        )
    }

    const GH: [(&str, &str); 2] = [
        (GITHUB_URL_ENV, "https://gh.example/token?api-version=2.0"),
        (GITHUB_TOKEN_ENV, "req"),
    ];

    fn name(s: &TokenSource) -> String {
        match s {
            TokenSource::TokenFile(p) => format!("file:{}", p.display()),
            TokenSource::Env { var, .. } => format!("env:{var}"),
            TokenSource::GithubActions { audience, .. } => format!("github:{audience}"),
            TokenSource::Kubernetes(p) => format!("k8s:{}", p.display()),
            TokenSource::Store => "store".into(),
        }
    }

    #[test]
    fn sources_are_tried_in_the_documented_order() {
        let all: Vec<(&str, &str)> =
            [(ID_TOKEN_ENV, "id"), (TOKEN_ENV, "tok"), GH[0], GH[1]].into();
        let k8s = [DEFAULT_K8S_TOKEN_PATH];
        assert_eq!(name(&resolve_with(Some("/t"), &all, &k8s)), "file:/t");
        assert_eq!(name(&resolve_with(None, &all, &k8s)), "env:HOOP_ID_TOKEN");
        assert_eq!(name(&resolve_with(None, &all[1..], &k8s)), "env:HOOP_TOKEN");
        assert_eq!(name(&resolve_with(None, &all[2..], &k8s)), "github:hoop");
        assert_eq!(
            name(&resolve_with(None, &[], &k8s)),
            format!("k8s:{DEFAULT_K8S_TOKEN_PATH}")
        );
        assert_eq!(name(&resolve_with(None, &[], &[])), "store");
    }

    #[test]
    fn half_configured_or_empty_sources_are_skipped() {
        // Only one of the two GitHub variables: not a GitHub job with id-token access.
        assert_eq!(name(&resolve_with(None, &GH[..1], &[])), "store");
        assert_eq!(
            name(&resolve_with(None, &[(TOKEN_ENV, "  ")], &[])),
            "store"
        );
        // The Kubernetes path can be moved; a missing file is no source.
        let vars = [(K8S_TOKEN_PATH_ENV, "/pod/token")];
        assert_eq!(
            name(&resolve_with(None, &vars, &["/pod/token"])),
            "k8s:/pod/token"
        );
        assert_eq!(
            name(&resolve_with(None, &vars, &[DEFAULT_K8S_TOKEN_PATH])),
            "store"
        );
    }

    #[test]
    fn audience_comes_from_the_flag_then_the_environment() {
        let vars: HashMap<&str, &str> = [GH[0], GH[1], (AUDIENCE_ENV, "from-env")].into();
        let env = |n: &str| vars.get(n).map(|v| v.to_string());
        let aud = |flag| match TokenSource::resolve(None, flag, &env, &|_| false) {
            TokenSource::GithubActions { audience, .. } => audience,
            other => panic!("{other:?}"),
        };
        assert_eq!(aud(Some("flag")), "flag");
        assert_eq!(aud(None), "from-env");
    }

    #[tokio::test]
    async fn token_files_are_trimmed_bounded_and_named_in_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("token");
        let src = TokenSource::TokenFile(path.clone());
        let http = reqwest::Client::new();
        let err = src.acquire(&http).await.unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::write(&path, "\n  ").unwrap();
        let err = src.acquire(&http).await.unwrap_err().to_string();
        assert!(err.contains("holds no token"), "{err}");
        std::fs::write(&path, "a".repeat(MAX_TOKEN_LEN + 1)).unwrap();
        assert!(matches!(
            src.acquire(&http).await,
            Err(SourceError::TooLarge { .. })
        ));
        std::fs::write(&path, "header.payload.sig\n").unwrap();
        let tok = src.acquire(&http).await.unwrap().unwrap();
        assert_eq!(tok.expose(), "header.payload.sig");
    }

    /// A stand-in for GitHub's token service on 127.0.0.1: checks the
    /// request token and the audience, answers like GitHub does.
    async fn github_service() -> String {
        use axum::extract::Query;
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse as _;
        async fn token(
            headers: HeaderMap,
            Query(q): Query<HashMap<String, String>>,
        ) -> axum::response::Response {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !auth.eq_ignore_ascii_case("bearer request-token") {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if q.get("api-version").map(String::as_str) != Some("2.0") {
                return StatusCode::BAD_REQUEST.into_response();
            }
            match q.get("audience").map(String::as_str) {
                Some("empty") => axum::Json(serde_json::json!({"count": 0})).into_response(),
                Some(aud) => axum::Json(serde_json::json!({
                    "count": 1,
                    "value": format!("jwt-for-{aud}")
                }))
                .into_response(),
                None => StatusCode::BAD_REQUEST.into_response(),
            }
        }
        let app = axum::Router::new().route("/_apis/token", axum::routing::get(token));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/_apis/token?api-version=2.0")
    }

    #[tokio::test]
    async fn github_actions_token_is_requested_with_the_audience() {
        let url = github_service().await;
        let http = reqwest::Client::new();
        let src = TokenSource::GithubActions {
            request_url: url.clone(),
            request_token: Secret::new("request-token"),
            audience: "hoop-prod".into(),
        };
        let tok = src.acquire(&http).await.unwrap().unwrap();
        assert_eq!(tok.expose(), "jwt-for-hoop-prod");

        let err = github_token(&http, &url, &Secret::new("wrong"), "hoop")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 401") && err.contains("id-token: write"),
            "{err}"
        );
        assert!(!err.contains("wrong"), "request token echoed: {err}");

        let err = github_token(&http, &url, &Secret::new("request-token"), "empty")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no token"), "{err}");
    }
}
