//! One entry point for every bearer token: picks the issuer's verifier, then maps workloads by rule.
//!
//! Decisions, and why:
//! - The token's `iss` is read *unverified*, only to choose which issuer's
//!   keys to verify it with; the chosen verifier then checks `iss` (exactly),
//!   `aud`, the signature and the times as usual. An `iss` that no trusted
//!   issuer has is refused as `untrusted_issuer` before any network request,
//!   so tokens naming arbitrary URLs cannot make the broker fetch them.
//! - An `iss` that differs from a trusted issuer only by a trailing slash or
//!   letter case goes to that issuer's verifier and is refused there as
//!   `wrong_issuer`: OIDC requires an exact match, and the class tells the
//!   operator what to fix (a classic misconfiguration).
//! - Several issuers may share a URL (a GitLab instance is both the people's
//!   IdP and the CI token issuer); the unverified `aud` then picks the one
//!   whose audience it names. The config refuses two with the same issuer
//!   *and* audience, so the choice is never ambiguous.
//! - Workload rules are tried in config order; the first whose every claim
//!   matcher matches wins. No match is a refusal naming the issuer and the
//!   `sub` (not secret), never the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hoop_shared::api::IdentityKind;
use serde_json::{Map, Value};

use super::matcher::ClaimPattern;
use super::verifier::{checked_str, claim, expires_at};
use super::{AuthError, Identity, MAX_TOKEN_BYTES, RefusalClass, TokenVerifier, sanitize};

/// One rule of a workload issuer: claim matchers → a service identity.
#[derive(Debug, Clone)]
pub struct WorkloadRule {
    /// The identity's user name.
    pub service: String,
    /// The identity's groups.
    pub groups: Vec<String>,
    /// Claim name (dotted paths allowed) → matcher; all must match.
    pub claims: Vec<(String, ClaimPattern)>,
}

impl WorkloadRule {
    fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.claims
            .iter()
            .all(|(name, pattern)| pattern.matches_claim(claim(claims, name)))
    }
}

/// A trusted workload issuer (`[[identity.workload]]`).
#[derive(Clone)]
pub struct WorkloadIssuer {
    /// Label, e.g. `github`.
    pub name: String,
    /// Validates its tokens (its own discovery, JWKS and audience).
    pub verifier: TokenVerifier,
    /// Tried in order.
    pub rules: Vec<WorkloadRule>,
}

/// Validates bearer tokens from the person issuer and the workload issuers;
/// cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    person: TokenVerifier,
    workloads: Vec<WorkloadIssuer>,
    /// SHA-256 of tokens already accepted → their `exp`: each token's first
    /// use is audited once (the broker's record of a login), never the token.
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

/// Tokens remembered for [`Authenticator::first_use`] before expired ones
/// are dropped; past it even live ones are (their next use is audited again).
const MAX_SEEN_TOKENS: usize = 100_000;

enum Chosen<'a> {
    Person,
    Workload(&'a WorkloadIssuer),
}

impl Authenticator {
    /// Trusts `person` (the `[identity]` issuer) and `workloads`.
    pub fn new(person: TokenVerifier, workloads: Vec<WorkloadIssuer>) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                person,
                workloads,
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The person issuer's verifier.
    pub fn person(&self) -> &TokenVerifier {
        &self.inner.person
    }

    /// The trusted workload issuers.
    pub fn workloads(&self) -> &[WorkloadIssuer] {
        &self.inner.workloads
    }

    /// True the first time this broker accepts `token` (until its `exp`,
    /// Unix seconds, passes). Only the token's SHA-256 is kept.
    pub fn first_use(&self, token: &str, expires_at: u64, now: u64) -> bool {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.trim().as_bytes()).into();
        let mut seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.contains_key(&digest) {
            return false;
        }
        if seen.len() >= MAX_SEEN_TOKENS {
            seen.retain(|_, exp| *exp > now);
            if seen.len() >= MAX_SEEN_TOKENS {
                seen.clear();
            }
        }
        seen.insert(digest, expires_at);
        true
    }

    /// Validates `token` and returns who it identifies.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid(RefusalClass::TooLarge));
        }
        let unverified = unverified_payload(token)?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::invalid_with(RefusalClass::MissingClaim, "iss"))?;
        match self.choose(iss, unverified.get("aud")) {
            Some(Chosen::Person) => self.inner.person.verify(token).await,
            Some(Chosen::Workload(w)) => {
                let claims = w.verifier.verify_claims(token).await?;
                map_workload(w, &claims)
            }
            None => Err(AuthError::invalid_with(
                RefusalClass::UntrustedIssuer,
                format!("{:?} is not an issuer this broker trusts", sanitize(iss)),
            )),
        }
    }

    /// The verifier for a claimed `iss` (see the module notes).
    fn choose(&self, iss: &str, aud: Option<&Value>) -> Option<Chosen<'_>> {
        let candidates = || {
            std::iter::once((
                Chosen::Person,
                self.inner.person.settings().issuer.as_str(),
                self.inner.person.settings().audience.as_str(),
            ))
            .chain(self.inner.workloads.iter().map(|w| {
                (
                    Chosen::Workload(w),
                    w.verifier.settings().issuer.as_str(),
                    w.verifier.settings().audience.as_str(),
                )
            }))
        };
        let names_audience = |audience: &str| match aud {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        let mut first_exact = None;
        for (chosen, issuer, audience) in candidates() {
            if issuer == iss {
                if names_audience(audience) {
                    return Some(chosen);
                }
                first_exact.get_or_insert(chosen);
            }
        }
        if first_exact.is_some() {
            return first_exact;
        }
        let loose = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        let wanted = loose(iss);
        candidates()
            .find(|(_, issuer, _)| loose(issuer) == wanted)
            .map(|(chosen, _, _)| chosen)
    }
}

/// The token's payload, unverified, with a precise class when it is not a JWT.
fn unverified_payload(token: &str) -> Result<Map<String, Value>, AuthError> {
    let malformed = |d: &str| AuthError::invalid_with(RefusalClass::Malformed, d);
    if token.is_empty() {
        return Err(malformed("the token is empty"));
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("the claims are not base64url"))?;
    match serde_json::from_slice(&raw) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed("the claims are not a JSON object")),
    }
}

/// A verified workload token → the identity of the first matching rule.
fn map_workload(w: &WorkloadIssuer, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
    let subject = checked_str(claims, "sub")?;
    let Some(rule) = w.rules.iter().find(|r| r.matches(claims)) else {
        tracing::info!(issuer = %w.name, sub = %sanitize(&subject), "workload token matches no rule");
        return Err(AuthError::invalid_with(
            RefusalClass::NoMatchingRule,
            format!(
                "no rule of workload issuer {:?} matches sub {:?}",
                w.name,
                sanitize(&subject)
            ),
        ));
    };
    Ok(Identity {
        issuer: checked_str(claims, "iss")?,
        expires_at: expires_at(claims)?,
        subject,
        user: rule.service.clone(),
        groups: rule.groups.clone(),
        kind: IdentityKind::Workload,
        matched_rule: Some(format!("{}: {}", w.name, rule.service)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::{DEFAULT_REFETCH_INTERVAL, VerifierSettings};

    fn verifier(issuer: &str, audience: &str) -> TokenVerifier {
        TokenVerifier::new(
            VerifierSettings {
                issuer: issuer.into(),
                audience: audience.into(),
                username_claim: "preferred_username".into(),
                groups_claim: "groups".into(),
                refetch_interval: DEFAULT_REFETCH_INTERVAL,
            },
            reqwest::Client::new(),
        )
    }

    fn rule(service: &str, claims: &[(&str, &str)]) -> WorkloadRule {
        WorkloadRule {
            service: service.into(),
            groups: vec!["ci".into()],
            claims: claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ClaimPattern::parse(v).unwrap()))
                .collect(),
        }
    }

    fn github() -> WorkloadIssuer {
        WorkloadIssuer {
            name: "github".into(),
            verifier: verifier("https://token.actions.githubusercontent.com", "hoop"),
            rules: vec![
                rule(
                    "api-deploy",
                    &[
                        ("sub", "repo:acme/api:ref:refs/heads/main"),
                        ("repository_owner", "acme"),
                    ],
                ),
                rule(
                    "acme-ci",
                    &[("sub", "repo:acme/*"), ("repository_owner", "acme")],
                ),
            ],
        }
    }

    fn auth() -> Authenticator {
        let gitlab_people = verifier("https://gitlab.example.com", "hoopctl");
        let gitlab_ci = WorkloadIssuer {
            name: "gitlab".into(),
            verifier: verifier("https://gitlab.example.com", "hoop-ci"),
            rules: vec![rule("gl", &[("project_path", "acme/*")])],
        };
        Authenticator::new(gitlab_people, vec![github(), gitlab_ci])
    }

    fn token(claims: &Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", enc(&json!({"alg": "RS256"})), enc(claims))
    }

    fn chosen_name(a: &Authenticator, iss: &str, aud: Value) -> Option<String> {
        a.choose(iss, Some(&aud)).map(|c| match c {
            Chosen::Person => "person".to_owned(),
            Chosen::Workload(w) => w.name.clone(),
        })
    }

    #[test]
    fn the_claimed_issuer_and_audience_pick_the_verifier() {
        let a = auth();
        let gh = "https://token.actions.githubusercontent.com";
        assert_eq!(
            chosen_name(&a, gh, json!("hoop")).as_deref(),
            Some("github")
        );
        // Same issuer URL, told apart by audience; unknown audience → the first.
        let gl = "https://gitlab.example.com";
        assert_eq!(
            chosen_name(&a, gl, json!("hoopctl")).as_deref(),
            Some("person")
        );
        assert_eq!(
            chosen_name(&a, gl, json!(["x", "hoop-ci"])).as_deref(),
            Some("gitlab")
        );
        assert_eq!(
            chosen_name(&a, gl, json!("other")).as_deref(),
            Some("person")
        );
        // Near misses go to the issuer they resemble (refused there as wrong_issuer).
        assert_eq!(
            chosen_name(&a, &format!("{gh}/"), json!("hoop")).as_deref(),
            Some("github")
        );
        assert_eq!(chosen_name(&a, "https://evil.example", json!("hoop")), None);
    }

    #[tokio::test]
    async fn untrusted_and_malformed_tokens_are_refused_without_any_fetch() {
        // The issuers above do not exist: reaching the network would fail
        // with provider_unavailable instead of these classes.
        let a = auth();
        let class = |r: Result<Identity, AuthError>| r.unwrap_err().class();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({"iss": "https://evil.example", "sub": "x", "exp": now + 60});
        let err = a.verify(&token(&claims)).await.unwrap_err();
        assert_eq!(err.class(), RefusalClass::UntrustedIssuer);
        assert!(err.to_string().contains("evil.example"), "{err}");
        assert_eq!(
            class(a.verify(&token(&json!({"sub": "x"}))).await),
            RefusalClass::MissingClaim
        );
        assert_eq!(class(a.verify("").await), RefusalClass::Malformed);
        assert_eq!(class(a.verify("a.b").await), RefusalClass::Malformed);
        assert_eq!(class(a.verify("a.!!.c").await), RefusalClass::Malformed);
        let not_json = format!("a.{}.c", URL_SAFE_NO_PAD.encode("not json"));
        assert_eq!(class(a.verify(&not_json).await), RefusalClass::Malformed);
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(class(a.verify(&huge).await), RefusalClass::TooLarge);
    }

    #[test]
    fn the_first_matching_rule_maps_the_workload() {
        let w = github();
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "iss": "https://token.actions.githubusercontent.com", "aud": "hoop",
            "sub": "repo:acme/api:ref:refs/heads/main", "repository_owner": "acme",
            "exp": now + 60,
        });
        let map = |c: &Value| map_workload(&w, c.as_object().unwrap());
        let id = map(&claims).unwrap();
        assert_eq!(id.user, "api-deploy");
        assert_eq!(id.groups, ["ci"]);
        assert_eq!(id.kind, IdentityKind::Workload);
        assert_eq!(id.matched_rule.as_deref(), Some("github: api-deploy"));
        assert_eq!(id.subject, "repo:acme/api:ref:refs/heads/main");

        // Another branch falls through to the glob rule.
        claims["sub"] = json!("repo:acme/api:ref:refs/heads/dev");
        assert_eq!(map(&claims).unwrap().user, "acme-ci");

        // Every matcher must match: right sub, wrong owner claim.
        claims["repository_owner"] = json!("evil");
        let err = map(&claims).unwrap_err();
        assert_eq!(err.class(), RefusalClass::NoMatchingRule);
        let msg = err.to_string();
        assert!(
            msg.contains("github") && msg.contains("refs/heads/dev"),
            "{msg}"
        );

        // A missing claim never matches.
        claims.as_object_mut().unwrap().remove("repository_owner");
        assert_eq!(
            map(&claims).unwrap_err().class(),
            RefusalClass::NoMatchingRule
        );
    }
}
