//! Bearer-token verification against any OIDC issuer: discovery, a JWKS cache, and JWT checks.
//!
//! Decisions, and why:
//! - Discovery and JWKS are fetched lazily, on the first token: the built-in
//!   provider is served by this same process, so fetching while the broker
//!   starts would wait on a server that is not listening yet.
//! - Keys are cached by `kid`. A token naming an unknown `kid` triggers a JWKS
//!   refetch (the provider may have rotated keys), but at most once per
//!   `refetch_interval` (default [`DEFAULT_REFETCH_INTERVAL`]), so a flood of forged tokens cannot make the broker
//!   hammer the provider. While the provider is down, cached keys keep working.
//! - Only asymmetric algorithms are accepted, and the token's `alg` must fit
//!   the key it names (its `alg` if the JWK states one, else its type and
//!   curve). `none` and HMAC are never accepted, which rules out the classic
//!   "HS256 signed with the public key" confusion. Key hints in the token
//!   header (`jku`, `jwk`, `x5u`) are ignored: keys come only from the JWKS.
//! - Error texts are short and fixed; they never echo the token or its claims.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{AuthError, Identity, RefusalClass};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// Default minimum time between two JWKS fetches triggered by unknown key ids
/// (`[identity] key_refetch_interval`).
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Minimum time between two attempts while nothing usable is cached: short, so
/// the broker recovers quickly once the provider is up, but still bounded.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// Cached keys older than this are refreshed on the next token (keeping the
/// old ones if that fails), so keys the provider withdrew stop working.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Timeout for each discovery or JWKS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or JWKS we read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest token we look at; real ones are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The signing algorithms accepted: asymmetric only.
const ACCEPTED_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What to expect of tokens (from `[identity]` in the config).
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Exact issuer URL; discovery is fetched from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Audience that must appear in `aud`.
    pub audience: String,
    /// Claim holding the user name (dotted path allowed); falls back to `sub`.
    pub username_claim: String,
    /// Claim holding the groups (dotted path allowed, e.g. `realm_access.roles`).
    pub groups_claim: String,
    /// Minimum time between two JWKS fetches triggered by tokens naming an
    /// unknown key ([`DEFAULT_REFETCH_INTERVAL`] unless configured).
    pub refetch_interval: Duration,
}

/// Validates bearer tokens; cheap to clone (shared cache).
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: VerifierSettings,
    http: reqwest::Client,
    /// Held only for lookups and updates, never across a fetch, so tokens
    /// with known keys are never delayed by a slow provider.
    cache: std::sync::Mutex<KeyCache>,
    /// Held across a fetch: requests that need new keys wait for one fetch
    /// instead of each starting their own.
    fetch_lock: Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    /// From discovery; `None` until discovery succeeded.
    jwks_uri: Option<String>,
    keys: Vec<VerifyKey>,
    /// When a JWKS was last fetched successfully; `None` means nothing usable.
    /// When the cached keys must be refetched; `Some` once keys were loaded.
    refresh_due: Option<Instant>,
    /// When a fetch was last attempted (success or not), for rate limiting.
    last_attempt: Option<Instant>,
}

#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    /// Algorithms this key may verify.
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

enum Lookup {
    Found(Box<DecodingKey>),
    /// The key exists but does not fit the token's algorithm.
    WrongAlg,
    NotFound,
}

impl KeyCache {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) if k.algs.contains(&alg) => Lookup::Found(Box::new(k.key.clone())),
                Some(_) => Lookup::WrongAlg,
                None => Lookup::NotFound,
            },
            // Without a `kid`, only an unambiguous key will do.
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.algs.contains(&alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(Box::new(k.key.clone())),
                    _ => Lookup::NotFound,
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl TokenVerifier {
    /// A verifier for `settings.issuer`. Nothing is fetched until the first
    /// token arrives. `http` must trust the provider's CA.
    pub fn new(settings: VerifierSettings, http: reqwest::Client) -> Self {
        TokenVerifier {
            inner: Arc::new(Inner {
                settings,
                http,
                cache: std::sync::Mutex::new(KeyCache::default()),
                fetch_lock: Mutex::new(()),
            }),
        }
    }

    /// The settings this verifier enforces.
    pub fn settings(&self) -> &VerifierSettings {
        &self.inner.settings
    }

    /// Validates `token` and returns who it identifies (as a person).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self.verify_claims(token).await?;
        identity_from_claims(&claims, &self.inner.settings)
    }

    /// Validates `token` (signature, algorithm, `iss`, `aud`, `exp`, `nbf`,
    /// `iat`, `sub`) and returns its claims.
    pub async fn verify_claims(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid(RefusalClass::TooLarge));
        }
        let alg = header_alg(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| malformed("the header is not a JWT header"))?;
        if header.alg != alg {
            return Err(malformed("the header is not a JWT header"));
        }
        let key = self.key_for(header.kid.as_deref(), alg).await?;

        let settings = &self.inner.settings;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        check_common_claims(&data.claims)?;
        Ok(data.claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // The cache is replaced whole, so a panic elsewhere cannot leave it
        // half-updated; keep serving rather than propagate the poison.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key for (`kid`, `alg`), fetching the JWKS when needed and allowed.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let (found, stale) = {
            let cache = self.cache();
            let stale = cache.refresh_due.is_some_and(|due| Instant::now() >= due);
            (cache.lookup(kid, alg), stale)
        };
        match found {
            Lookup::Found(key) if !stale => return Ok(*key),
            Lookup::Found(_) => {
                // Old keys: one request refreshes them (keeping them if the
                // provider is down); the others carry on with the cache.
                if let Ok(_fetching) = self.inner.fetch_lock.try_lock() {
                    self.refresh().await?;
                }
            }
            Lookup::WrongAlg => return Err(wrong_alg()),
            Lookup::NotFound => {
                let _fetching = self.inner.fetch_lock.lock().await;
                // Another request may have fetched while we waited.
                // Bind first: the cache guard must be dropped before awaiting.
                let again = self.cache().lookup(kid, alg);
                if let Lookup::NotFound = again {
                    self.refresh().await?;
                }
            }
        }
        match self.cache().lookup(kid, alg) {
            Lookup::Found(key) => Ok(*key),
            Lookup::WrongAlg => Err(wrong_alg()),
            Lookup::NotFound => Err(AuthError::invalid(RefusalClass::UnknownKey)),
        }
    }

    /// Refetches the keys unless that was tried too recently. Fails only when
    /// no keys are cached at all; otherwise the cache is kept on failure.
    /// The caller holds `fetch_lock`.
    async fn refresh(&self) -> Result<(), AuthError> {
        let now = Instant::now();
        let (may_fetch, loaded, jwks_uri) = {
            let cache = self.cache();
            let min_gap = if cache.refresh_due.is_some() {
                self.inner.settings.refetch_interval
            } else {
                RETRY_INTERVAL
            };
            let may_fetch = cache
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= min_gap);
            (
                may_fetch,
                cache.refresh_due.is_some(),
                cache.jwks_uri.clone(),
            )
        };
        if !may_fetch {
            return if loaded {
                Ok(())
            } else {
                Err(AuthError::ProviderUnavailable(
                    "the last attempt failed; retrying shortly".into(),
                ))
            };
        }
        self.cache().last_attempt = Some(now);
        match self.fetch_keys(jwks_uri).await {
            Ok((jwks_uri, keys)) => {
                let mut cache = self.cache();
                cache.jwks_uri = Some(jwks_uri);
                cache.keys = keys;
                cache.refresh_due = Some(Instant::now() + MAX_KEY_AGE);
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(
                    issuer = %self.inner.settings.issuer,
                    "cannot refresh the identity provider's keys: {reason}"
                );
                if loaded {
                    Ok(())
                } else {
                    Err(AuthError::ProviderUnavailable(reason))
                }
            }
        }
    }

    /// Discovery (unless `jwks_uri` is known), then the JWKS. Errors are
    /// short texts without secrets.
    async fn fetch_keys(
        &self,
        jwks_uri: Option<String>,
    ) -> Result<(String, Vec<VerifyKey>), String> {
        let jwks_uri = match jwks_uri {
            Some(uri) => uri,
            None => {
                let issuer = &self.inner.settings.issuer;
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc: Discovery = serde_json::from_slice(&self.fetch(&url).await?)
                    .map_err(|_| format!("{url}: not an OpenID discovery document"))?;
                // OpenID Connect Discovery §4.3: the issuer in the document must
                // be exactly the one we were configured with.
                if doc.issuer != *issuer {
                    return Err(format!(
                        "{url}: announces issuer {:?}, expected {issuer:?}",
                        doc.issuer
                    ));
                }
                let parsed = url::Url::parse(&doc.jwks_uri)
                    .map_err(|_| format!("{url}: jwks_uri is not a URL"))?;
                if !matches!(parsed.scheme(), "https" | "http") {
                    return Err(format!("{url}: jwks_uri is not an http(s) URL"));
                }
                doc.jwks_uri
            }
        };
        let body = self.fetch(&jwks_uri).await?;
        let set: Value = serde_json::from_slice(&body)
            .map_err(|_| format!("{jwks_uri}: not a JSON document"))?;
        let Some(entries) = set.get("keys").and_then(Value::as_array) else {
            return Err(format!("{jwks_uri}: not a JWKS (no \"keys\" array)"));
        };
        // One odd key (an encryption key, an unsupported curve) must not make
        // the whole set unusable: parse each and keep what can verify.
        let keys: Vec<VerifyKey> = entries.iter().filter_map(verify_key).collect();
        tracing::debug!(jwks_uri, usable = keys.len(), "fetched signing keys");
        Ok((jwks_uri, keys))
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut resp = self
            .inner
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", describe_reqwest(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "{url}: response larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
impl TokenVerifier {
    /// Forgets when keys were last fetched, as if the refetch interval had passed.
    fn pretend_refetch_interval_passed(&self) {
        self.cache().last_attempt = None;
    }

    /// Makes the cached keys due for a refresh, as if [`MAX_KEY_AGE`] had passed.
    fn pretend_keys_are_old(&self) {
        let mut cache = self.cache();
        cache.refresh_due = Some(Instant::now());
        cache.last_attempt = None;
    }
}

fn describe_reqwest(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "request failed"
    }
}

fn malformed(detail: &str) -> AuthError {
    AuthError::invalid_with(RefusalClass::Malformed, detail)
}

fn missing(claim: &str) -> AuthError {
    AuthError::invalid_with(RefusalClass::MissingClaim, claim)
}

fn wrong_alg() -> AuthError {
    AuthError::invalid_with(
        RefusalClass::UnsupportedAlgorithm,
        "the algorithm does not fit the signing key",
    )
}

/// The `alg` of the token header, checked against the allow-list before any
/// other parsing, so `none` and `HS*` get a clear refusal.
fn header_alg(token: &str) -> Result<Algorithm, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    let raw = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&raw).map_err(|_| malformed("the header is not JSON"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the header has no alg"))?;
    alg.parse::<Algorithm>()
        .ok()
        .filter(|a| ACCEPTED_ALGS.contains(a))
        .ok_or_else(|| {
            AuthError::invalid_with(
                RefusalClass::UnsupportedAlgorithm,
                "only asymmetric signatures are accepted",
            )
        })
}

fn decoded_len(b64: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(b64).ok().map(|v| v.len())
}

/// A JWK from the set as a verification key, or `None` if it cannot or must
/// not verify signatures (symmetric, encryption-only, unknown, too weak).
fn verify_key(entry: &Value) -> Option<VerifyKey> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let (family, key): (&[Algorithm], DecodingKey) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = URL_SAFE_NO_PAD.decode(&p.n).ok()?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return None;
            }
            (
                &[
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ],
                DecodingKey::from_rsa_components(&p.n, &p.e).ok()?,
            )
        }
        AlgorithmParameters::EllipticCurve(p) => {
            // Coordinate lengths are checked here because the crypto backend
            // expects well-formed points.
            let (algs, len): (&[Algorithm], usize) = match p.curve {
                EllipticCurve::P256 => (&[Algorithm::ES256], 32),
                EllipticCurve::P384 => (&[Algorithm::ES384], 48),
                _ => return None,
            };
            if decoded_len(&p.x)? != len || decoded_len(&p.y)? != len {
                return None;
            }
            (algs, DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            // The EdDSA backend slices the first 32 bytes: insist on exactly 32.
            if p.curve != EllipticCurve::Ed25519 || decoded_len(&p.x)? != 32 {
                return None;
            }
            (
                &[Algorithm::EdDSA],
                DecodingKey::from_ed_components(&p.x).ok()?,
            )
        }
        // Symmetric keys would let anyone who reads the JWKS mint tokens.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_) => return None,
        _ => return None,
    };
    let algs = match jwk.common.key_algorithm {
        Some(stated) => {
            let stated = Algorithm::try_from(stated).ok()?;
            if !family.contains(&stated) {
                return None;
            }
            vec![stated]
        }
        None => family.to_vec(),
    };
    Some(VerifyKey {
        kid: jwk.common.key_id,
        algs,
        key,
    })
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::invalid(RefusalClass::BadSignature),
        ErrorKind::InvalidIssuer => AuthError::invalid_with(
            RefusalClass::WrongIssuer,
            "iss must be exactly the trusted issuer's URL",
        ),
        ErrorKind::InvalidAudience => AuthError::invalid(RefusalClass::WrongAudience),
        ErrorKind::ImmatureSignature => AuthError::invalid_with(RefusalClass::NotYetValid, "nbf"),
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            name @ ("exp" | "iss" | "aud" | "sub") => missing(name),
            _ => AuthError::invalid(RefusalClass::MissingClaim),
        },
        ErrorKind::InvalidClaimFormat(_) => malformed("a claim has the wrong type"),
        ErrorKind::InvalidAlgorithm => wrong_alg(),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) => {
            AuthError::invalid_with(
                RefusalClass::BadSignature,
                "the issuer's key cannot verify this token",
            )
        }
        _ => AuthError::invalid(RefusalClass::Malformed),
    }
}

/// A claim by name; a name that is not a top-level claim is tried as a
/// dotted path (`realm_access.roles`). The literal name wins so that
/// namespaced claims such as `https://example.com/groups` keep working.
pub(super) fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Checks the library does not: `sub` is a non-empty string, `iss` a string,
/// `exp` a number, `iat` (when present) not in the future.
fn check_common_claims(claims: &Map<String, Value>) -> Result<(), AuthError> {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("sub"))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("iss"))?;
    expires_at(claims)?;
    if let Some(iat) = claims.get("iat") {
        let iat = iat
            .as_f64()
            .ok_or_else(|| malformed("a claim has the wrong type"))?;
        let now = jsonwebtoken::get_current_timestamp();
        if iat > (now + LEEWAY_SECS) as f64 {
            return Err(AuthError::invalid_with(RefusalClass::IssuedInFuture, "iat"));
        }
    }
    Ok(())
}

/// `exp` as Unix seconds.
pub(super) fn expires_at(claims: &Map<String, Value>) -> Result<u64, AuthError> {
    claims
        .get("exp")
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
        .ok_or_else(|| missing("exp"))
}

/// A string claim the verifier has already checked (`sub`, `iss`).
pub(super) fn checked_str(claims: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| missing(name))
}

fn identity_from_claims(
    claims: &Map<String, Value>,
    settings: &VerifierSettings,
) -> Result<Identity, AuthError> {
    let subject = checked_str(claims, "sub")?;
    let issuer = checked_str(claims, "iss")?;
    let expires_at = expires_at(claims)?;
    let user = claim(claims, &settings.username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| subject.clone(), str::to_owned);
    let groups = match claim(claims, &settings.groups_claim) {
        Some(Value::String(g)) => vec![g.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Identity {
        subject,
        user,
        groups,
        issuer,
        expires_at,
        kind: hoop_shared::api::IdentityKind::Person,
        matched_rule: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::extract::State;
    use axum::routing::get;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::Refusal;

    const AUDIENCE: &str = "hoopctl";

    /// A signing key as a test issuer would hold it.
    struct TestKey {
        kid: String,
        alg: Algorithm,
        encoding: EncodingKey,
        jwk: Value,
        raw_public: Vec<u8>,
    }

    impl TestKey {
        fn ed25519(kid: &str) -> TestKey {
            let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
            let raw = kp.public_key_raw().to_vec();
            TestKey {
                kid: kid.into(),
                alg: Algorithm::EdDSA,
                encoding: EncodingKey::from_ed_der(kp.serialized_der()),
                jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&raw),
                            "kid": kid, "alg": "EdDSA", "use": "sig"}),
                raw_public: raw,
            }
        }

        fn p256(kid: &str) -> TestKey {
            let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let raw = kp.public_key_raw().to_vec();
            assert_eq!(raw.len(), 65);
            TestKey {
                kid: kid.into(),
                alg: Algorithm::ES256,
                encoding: EncodingKey::from_ec_der(kp.serialized_der()),
                // No "alg" in the JWK: the verifier derives ES256 from the curve.
                jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
                            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                            "y": URL_SAFE_NO_PAD.encode(&raw[33..])}),
                raw_public: raw,
            }
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    /// A real HTTP OIDC issuer on 127.0.0.1 serving discovery and a JWKS.
    struct TestIssuer {
        issuer: String,
        jwks: Arc<std::sync::Mutex<Value>>,
        jwks_hits: Arc<AtomicUsize>,
        discovery_hits: Arc<AtomicUsize>,
        server: tokio::task::JoinHandle<()>,
    }

    #[derive(Clone)]
    struct IssuerState {
        issuer: String,
        announced_issuer: String,
        jwks: Arc<std::sync::Mutex<Value>>,
        jwks_hits: Arc<AtomicUsize>,
        discovery_hits: Arc<AtomicUsize>,
    }

    impl TestIssuer {
        async fn start(keys: &[&TestKey]) -> TestIssuer {
            Self::start_announcing(keys, None).await
        }

        /// `announce` overrides the issuer written in the discovery document.
        async fn start_announcing(keys: &[&TestKey], announce: Option<&str>) -> TestIssuer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let jwks = Arc::new(std::sync::Mutex::new(
                json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
            ));
            let state = IssuerState {
                issuer: issuer.clone(),
                announced_issuer: announce.map_or_else(|| issuer.clone(), str::to_owned),
                jwks: jwks.clone(),
                jwks_hits: Arc::new(AtomicUsize::new(0)),
                discovery_hits: Arc::new(AtomicUsize::new(0)),
            };
            let app = axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    get(|State(s): State<IssuerState>| async move {
                        s.discovery_hits.fetch_add(1, Ordering::SeqCst);
                        Json(json!({"issuer": s.announced_issuer,
                                    "jwks_uri": format!("{}/jwks", s.issuer)}))
                    }),
                )
                .route(
                    "/jwks",
                    get(|State(s): State<IssuerState>| async move {
                        s.jwks_hits.fetch_add(1, Ordering::SeqCst);
                        let body = s.jwks.lock().unwrap().clone();
                        Json(body)
                    }),
                )
                .with_state(state.clone());
            let server = tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            });
            TestIssuer {
                issuer,
                jwks,
                jwks_hits: state.jwks_hits,
                discovery_hits: state.discovery_hits,
                server,
            }
        }

        fn verifier(&self) -> TokenVerifier {
            verifier_for(&self.issuer)
        }

        fn claims(&self, user: &str) -> Value {
            let now = jsonwebtoken::get_current_timestamp();
            json!({"iss": self.issuer, "aud": AUDIENCE, "sub": format!("id-{user}"),
                   "preferred_username": user, "groups": ["engineering", "oncall"],
                   "iat": now, "nbf": now, "exp": now + 600})
        }
    }

    fn verifier_for(issuer: &str) -> TokenVerifier {
        verifier_with(issuer, "groups")
    }

    fn verifier_with(issuer: &str, groups_claim: &str) -> TokenVerifier {
        // No connection reuse, so a stopped server is really unreachable.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        TokenVerifier::new(
            VerifierSettings {
                issuer: issuer.into(),
                audience: AUDIENCE.into(),
                username_claim: "preferred_username".into(),
                groups_claim: groups_claim.into(),
                refetch_interval: DEFAULT_REFETCH_INTERVAL,
            },
            http,
        )
    }

    fn assert_invalid(result: Result<Identity, AuthError>, what: &str) -> Refusal {
        match result {
            Err(AuthError::Invalid(reason)) => reason,
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_good_token_yields_the_identity() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let id = idp
            .verifier()
            .verify(&key.sign(&idp.claims("alice")))
            .await
            .unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.subject, "id-alice");
        assert_eq!(id.groups, ["engineering", "oncall"]);
        assert_eq!(id.issuer, idp.issuer);
        assert!(id.expires_at > jsonwebtoken::get_current_timestamp());
    }

    #[tokio::test]
    async fn ecdsa_keys_without_alg_and_audience_arrays_work() {
        let key = TestKey::p256("ec1");
        let idp = TestIssuer::start(&[&key]).await;
        let mut claims = idp.claims("bob");
        claims["aud"] = json!(["account", AUDIENCE]);
        let id = idp.verifier().verify(&key.sign(&claims)).await.unwrap();
        assert_eq!(id.user, "bob");
    }

    #[tokio::test]
    async fn username_falls_back_to_sub_and_groups_follow_dotted_paths() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let mut claims = idp.claims("carol");
        let obj = claims.as_object_mut().unwrap();
        obj.remove("preferred_username");
        obj.remove("groups");
        obj.insert("realm_access".into(), json!({"roles": ["dba", 7, "admin"]}));
        let verifier = verifier_with(&idp.issuer, "realm_access.roles");
        let id = verifier.verify(&key.sign(&claims)).await.unwrap();
        assert_eq!(id.user, "id-carol");
        assert_eq!(id.groups, ["dba", "admin"]);

        // A single string counts as one group; a missing claim as none.
        claims["realm_access"] = json!({"roles": "dba"});
        let id = verifier.verify(&key.sign(&claims)).await.unwrap();
        assert_eq!(id.groups, ["dba"]);
        claims.as_object_mut().unwrap().remove("realm_access");
        let id = verifier.verify(&key.sign(&claims)).await.unwrap();
        assert!(id.groups.is_empty());
    }

    #[tokio::test]
    async fn expired_tokens_are_reported_as_expired_but_skew_is_tolerated() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = idp.claims("alice");
        claims["exp"] = json!(now - 3600);
        claims["iat"] = json!(now - 7200);
        claims["nbf"] = json!(now - 7200);
        assert_eq!(
            verifier.verify(&key.sign(&claims)).await,
            Err(AuthError::Expired)
        );
        // 30 s past expiry is within the 60 s leeway.
        claims["exp"] = json!(now - 30);
        verifier.verify(&key.sign(&claims)).await.unwrap();
        // Not valid before a time in the future, or issued in the future.
        let mut claims = idp.claims("alice");
        claims["nbf"] = json!(now + 600);
        let why = assert_invalid(verifier.verify(&key.sign(&claims)).await, "future nbf");
        assert_eq!(why.class, RefusalClass::NotYetValid);
        let mut claims = idp.claims("alice");
        claims["iat"] = json!(now + 600);
        let why = assert_invalid(verifier.verify(&key.sign(&claims)).await, "future iat");
        assert_eq!(why.class, RefusalClass::IssuedInFuture);
        let mut claims = idp.claims("alice");
        claims.as_object_mut().unwrap().remove("exp");
        let why = assert_invalid(verifier.verify(&key.sign(&claims)).await, "no exp");
        assert_eq!(why.class, RefusalClass::MissingClaim);
        assert_eq!(why.detail.as_deref(), Some("exp"));
    }

    #[tokio::test]
    async fn wrong_audience_and_wrong_issuer_are_refused() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        let mut claims = idp.claims("alice");
        claims["aud"] = json!("another-app");
        let why = assert_invalid(verifier.verify(&key.sign(&claims)).await, "audience");
        assert_eq!(why.class, RefusalClass::WrongAudience);
        let mut claims = idp.claims("alice");
        claims.as_object_mut().unwrap().remove("aud");
        assert_invalid(verifier.verify(&key.sign(&claims)).await, "no aud");
        let mut claims = idp.claims("alice");
        claims["iss"] = json!("https://evil.example");
        let why = assert_invalid(verifier.verify(&key.sign(&claims)).await, "issuer");
        assert_eq!(why.class, RefusalClass::WrongIssuer);
    }

    #[tokio::test]
    async fn a_provider_announcing_another_issuer_is_not_trusted() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start_announcing(&[&key], Some("https://elsewhere.example")).await;
        let result = idp.verifier().verify(&key.sign(&idp.claims("alice"))).await;
        match result {
            Err(AuthError::ProviderUnavailable(why)) => {
                assert!(why.contains("elsewhere.example"), "{why}")
            }
            other => panic!("expected ProviderUnavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tokens_from_other_keys_and_forged_algorithms_are_refused() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        let claims = idp.claims("alice");
        verifier.verify(&key.sign(&claims)).await.unwrap();

        // Another key claiming the trusted kid.
        let impostor = TestKey::ed25519("k1");
        let why = assert_invalid(verifier.verify(&impostor.sign(&claims)).await, "same kid");
        assert_eq!(why.class, RefusalClass::BadSignature);
        // Another key with its own kid.
        let stranger = TestKey::ed25519("k2");
        let why = assert_invalid(verifier.verify(&stranger.sign(&claims)).await, "other kid");
        assert_eq!(why.class, RefusalClass::UnknownKey);

        // alg "none", no signature.
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let none = format!(
            "{}.{}.",
            enc(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            enc(&claims)
        );
        let why = assert_invalid(verifier.verify(&none).await, "alg none");
        assert_eq!(why.class, RefusalClass::UnsupportedAlgorithm);

        // HS256 keyed with the public key (alg confusion), both as raw bytes
        // and as the JWK's text.
        for secret in [
            key.raw_public.clone(),
            key.jwk["x"].as_str().unwrap().into(),
        ] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            let forged =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
            let why = assert_invalid(verifier.verify(&forged).await, "HS256 confusion");
            assert_eq!(why.class, RefusalClass::UnsupportedAlgorithm);
        }

        // An ES256 token naming the Ed25519 key.
        let ec = TestKey::p256("k1");
        let why = assert_invalid(verifier.verify(&ec.sign(&claims)).await, "alg mismatch");
        assert_eq!(why.class, RefusalClass::UnsupportedAlgorithm);
    }

    #[tokio::test]
    async fn garbage_and_truncated_tokens_are_invalid_and_never_echoed() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        let good = key.sign(&idp.claims("alice"));
        let cut = &good[..good.len() - 10];
        let no_sig = &good[..good.rfind('.').unwrap()];
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        for bad in ["", "garbage", "a.b.c", "a.b.c.d", cut, no_sig, &huge] {
            let why = assert_invalid(verifier.verify(bad).await, bad).to_string();
            assert!(bad.len() < 8 || !why.contains(bad), "{why}");
        }
        // A flipped payload byte breaks the signature.
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["preferred_username"] = json!("root");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        let why = assert_invalid(verifier.verify(&parts.join(".")).await, "tampered");
        assert_eq!(why.class, RefusalClass::BadSignature);
    }

    #[tokio::test]
    async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        verifier.verify(&key.sign(&idp.claims("a"))).await.unwrap();
        assert_eq!(idp.discovery_hits.load(Ordering::SeqCst), 1);
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 1);

        // The provider rotates in a new key. Right after a fetch, a token
        // naming it is refused without asking the provider again...
        let rotated = TestKey::ed25519("k2");
        *idp.jwks.lock().unwrap() = json!({"keys": [key.jwk, rotated.jwk]});
        let rotated_token = rotated.sign(&idp.claims("a"));
        assert_invalid(verifier.verify(&rotated_token).await, "too soon");
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 1);
        // ...and once the interval has passed, it triggers one refetch and is
        // accepted.
        verifier.pretend_refetch_interval_passed();
        verifier.verify(&rotated_token).await.unwrap();
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 2);

        // A flood of tokens with unknown kids causes no further fetches.
        for i in 0..20 {
            let forged = TestKey::ed25519(&format!("forged-{i}"));
            assert_invalid(
                verifier.verify(&forged.sign(&idp.claims("a"))).await,
                "forged",
            );
        }
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 2);
        assert_eq!(idp.discovery_hits.load(Ordering::SeqCst), 1);
        // Known keys never cause a fetch.
        verifier.verify(&key.sign(&idp.claims("a"))).await.unwrap();
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn cached_keys_keep_working_while_the_provider_is_down() {
        let key = TestKey::ed25519("k1");
        let mut idp = TestIssuer::start(&[&key]).await;
        let verifier = idp.verifier();
        verifier.verify(&key.sign(&idp.claims("a"))).await.unwrap();

        idp.server.abort();
        let _ = (&mut idp.server).await;
        let id = verifier.verify(&key.sign(&idp.claims("a"))).await.unwrap();
        assert_eq!(id.user, "a");

        // A verifier that never reached the provider says so.
        let fresh = verifier_for(&idp.issuer);
        match fresh.verify(&key.sign(&idp.claims("a"))).await {
            Err(AuthError::ProviderUnavailable(why)) => {
                assert!(why.contains("cannot connect"), "{why}")
            }
            other => panic!("expected ProviderUnavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn old_keys_are_refreshed_so_withdrawn_keys_stop_working() {
        let key = TestKey::ed25519("k1");
        let next = TestKey::ed25519("k2");
        let mut idp = TestIssuer::start(&[&key, &next]).await;
        let verifier = idp.verifier();
        let token = key.sign(&idp.claims("a"));
        verifier.verify(&token).await.unwrap();
        verifier.pretend_keys_are_old();
        // The provider withdrew k1: after the refresh it no longer verifies.
        *idp.jwks.lock().unwrap() = json!({"keys": [next.jwk]});
        assert_invalid(verifier.verify(&token).await, "withdrawn");
        assert_eq!(idp.jwks_hits.load(Ordering::SeqCst), 2);
        verifier.verify(&next.sign(&idp.claims("a"))).await.unwrap();

        // Old keys and the provider down: the cached keys are kept.
        idp.server.abort();
        let _ = (&mut idp.server).await;
        verifier.pretend_keys_are_old();
        verifier.verify(&next.sign(&idp.claims("a"))).await.unwrap();
    }

    #[tokio::test]
    async fn symmetric_and_weak_keys_in_the_jwks_are_ignored() {
        let key = TestKey::ed25519("k1");
        let idp = TestIssuer::start(&[&key]).await;
        let secret = b"a-shared-secret-published-in-the-jwks";
        *idp.jwks.lock().unwrap() = json!({"keys": [
            key.jwk,
            {"kty": "oct", "kid": "sym", "k": URL_SAFE_NO_PAD.encode(secret), "alg": "HS256"},
            {"kty": "RSA", "kid": "weak", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 64]), "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": "AA", "y": "AA"},
        ]});
        let verifier = idp.verifier();
        let claims = idp.claims("a");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("sym".into());
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
        assert_invalid(verifier.verify(&forged).await, "oct key");
        // The good key in the same set still works.
        verifier.verify(&key.sign(&claims)).await.unwrap();
    }
}
