//! Token validation: the broker as a relying party of OIDC issuers, for people and for workloads.
//!
//! Every API call and every tunnel presents a bearer token. The
//! [`Authenticator`] picks the issuer the token claims to come from (the
//! person issuer of `[identity]`, or one of the trusted workload issuers of
//! `[[identity.workload]]`) and hands the token to that issuer's
//! [`TokenVerifier`], which validates it exactly as it would a token from any
//! external provider, the built-in development provider included: it reads
//! the issuer's `/.well-known/openid-configuration`, fetches and caches the
//! JWKS it names, and checks signature (asymmetric algorithms only), `iss`,
//! `aud`, `exp`, `nbf`, `iat` with bounded clock skew. A person's token yields
//! an [`Identity`] from its claims; a workload's token is mapped to a service
//! identity by the first matching rule ([`matcher`]).
//!
//! Every refusal carries a stable [`RefusalClass`] (`expired`,
//! `wrong_audience`, ...), which the API names in its 401 message and the
//! audit trail records.

mod authenticator;
mod login_config;
pub mod matcher;
mod verifier;

pub use authenticator::{Authenticator, WorkloadIssuer, WorkloadRule};
pub use login_config::LoginConfig;
pub use verifier::{DEFAULT_REFETCH_INTERVAL, MAX_TOKEN_BYTES, TokenVerifier, VerifierSettings};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Who is behind a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub` claim.
    pub subject: String,
    /// User name, from the configured claim (falls back to `sub`); for a
    /// workload, the `service` of the rule that matched.
    pub user: String,
    /// Groups, from the configured claim (empty when absent); for a
    /// workload, the rule's groups.
    pub groups: Vec<String>,
    /// `iss` claim.
    pub issuer: String,
    /// `exp` claim, Unix seconds.
    pub expires_at: u64,
    /// Person or workload.
    pub kind: hoop_shared::api::IdentityKind,
    /// For a workload: `<issuer name>: <rule>` that mapped it.
    pub matched_rule: Option<String>,
}

/// Why a token was refused, as a stable machine-readable class. The API's
/// 401 message names it in words; the audit trail records [`Self::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// No bearer token was presented.
    MissingToken,
    /// `exp` is in the past (beyond the allowed skew).
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `iss` resembles a trusted issuer but is not exactly its URL.
    WrongIssuer,
    /// `iss` is not an issuer this broker trusts.
    UntrustedIssuer,
    /// `aud` does not name this broker.
    WrongAudience,
    /// The signature does not verify with the key the token names.
    BadSignature,
    /// The token names a key the issuer does not publish.
    UnknownKey,
    /// `alg` is not an accepted asymmetric algorithm, or does not fit the key.
    UnsupportedAlgorithm,
    /// Not a well-formed JWT (parts, base64, JSON, claim types).
    Malformed,
    /// Larger than any real token.
    TooLarge,
    /// A required claim (`iss`, `sub`, `aud`, `exp`) is absent.
    MissingClaim,
    /// A valid workload token whose claims match no rule.
    NoMatchingRule,
    /// The issuer's discovery or keys could not be fetched.
    ProviderUnavailable,
}

impl RefusalClass {
    /// The stable identifier, e.g. `wrong_audience`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalClass::MissingToken => "missing_token",
            RefusalClass::Expired => "expired",
            RefusalClass::NotYetValid => "not_yet_valid",
            RefusalClass::IssuedInFuture => "issued_in_future",
            RefusalClass::WrongIssuer => "wrong_issuer",
            RefusalClass::UntrustedIssuer => "untrusted_issuer",
            RefusalClass::WrongAudience => "wrong_audience",
            RefusalClass::BadSignature => "bad_signature",
            RefusalClass::UnknownKey => "unknown_key",
            RefusalClass::UnsupportedAlgorithm => "unsupported_algorithm",
            RefusalClass::Malformed => "malformed",
            RefusalClass::TooLarge => "too_large",
            RefusalClass::MissingClaim => "missing_claim",
            RefusalClass::NoMatchingRule => "no_matching_rule",
            RefusalClass::ProviderUnavailable => "provider_unavailable",
        }
    }

    /// The class in words, as the API message names it.
    pub fn words(self) -> &'static str {
        match self {
            RefusalClass::MissingToken => "missing token",
            RefusalClass::Expired => "expired",
            RefusalClass::NotYetValid => "not yet valid",
            RefusalClass::IssuedInFuture => "issued in the future",
            RefusalClass::WrongIssuer => "wrong issuer",
            RefusalClass::UntrustedIssuer => "untrusted issuer",
            RefusalClass::WrongAudience => "wrong audience",
            RefusalClass::BadSignature => "bad signature",
            RefusalClass::UnknownKey => "unknown signing key",
            RefusalClass::UnsupportedAlgorithm => "unsupported algorithm",
            RefusalClass::Malformed => "malformed token",
            RefusalClass::TooLarge => "token too large",
            RefusalClass::MissingClaim => "missing claim",
            RefusalClass::NoMatchingRule => "no matching rule",
            RefusalClass::ProviderUnavailable => "identity provider unavailable",
        }
    }
}

impl std::fmt::Display for RefusalClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token: the class and, where it helps the user, a short detail
/// (never the token, never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable class.
    pub class: RefusalClass,
    /// E.g. which claim is missing; `None` when the class says it all.
    pub detail: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} ({d})", self.class.words()),
            None => f.write_str(self.class.words()),
        }
    }
}

/// Why a token was refused. The text is safe to show to the client: it never
/// contains the token or key material.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// `exp` is in the past (beyond the allowed skew).
    #[error("the token has expired")]
    Expired,
    /// Signature, issuer, audience, algorithm, format, claims or rules are wrong.
    #[error("the token is not valid: {0}")]
    Invalid(Refusal),
    /// Discovery or JWKS could not be fetched and nothing usable is cached.
    #[error("the identity provider could not be reached: {0}")]
    ProviderUnavailable(String),
}

impl AuthError {
    /// A refusal of `class` without detail.
    pub fn invalid(class: RefusalClass) -> AuthError {
        AuthError::Invalid(Refusal {
            class,
            detail: None,
        })
    }

    /// A refusal of `class` with a detail for the user.
    pub fn invalid_with(class: RefusalClass, detail: impl Into<String>) -> AuthError {
        AuthError::Invalid(Refusal {
            class,
            detail: Some(detail.into()),
        })
    }

    /// The stable class of this refusal.
    pub fn class(&self) -> RefusalClass {
        match self {
            AuthError::Expired => RefusalClass::Expired,
            AuthError::Invalid(r) => r.class,
            AuthError::ProviderUnavailable(_) => RefusalClass::ProviderUnavailable,
        }
    }
}

/// Longest claimed value kept for messages and the audit trail.
pub const MAX_CLAIMED_CHARS: usize = 200;

/// What an (unverified) token claims: for choosing a verifier and for the
/// audit trail of refusals, never for trusting anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// `iss`, sanitized and truncated.
    pub iss: Option<String>,
    /// `sub`, sanitized and truncated.
    pub sub: Option<String>,
}

impl Claimed {
    /// Decodes the payload without checking anything; `Default` when the
    /// token is too large or not a decodable JWT.
    pub fn peek(token: &str) -> Claimed {
        let Some(claims) = unverified_claims(token.trim()) else {
            return Claimed::default();
        };
        let get = |name: &str| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(sanitize)
        };
        Claimed {
            iss: get("iss"),
            sub: get("sub"),
        }
    }
}

/// The payload of a compact JWT as a JSON object, unverified. `None` when it
/// is too large, has not exactly three parts, or is not base64url JSON.
pub(crate) fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let raw = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice(&raw).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A claimed value made safe to print: control characters replaced, at most
/// [`MAX_CLAIMED_CHARS`] characters (an ellipsis marks the cut).
pub fn sanitize(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_CLAIMED_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().nth(MAX_CLAIMED_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_class_in_words() {
        let e = AuthError::invalid(RefusalClass::WrongAudience);
        assert_eq!(e.to_string(), "the token is not valid: wrong audience");
        let e = AuthError::invalid_with(RefusalClass::MissingClaim, "exp");
        assert_eq!(e.to_string(), "the token is not valid: missing claim (exp)");
        assert_eq!(e.class().as_str(), "missing_claim");
        assert_eq!(AuthError::Expired.class(), RefusalClass::Expired);
    }

    #[test]
    fn peek_reads_iss_and_sub_without_trusting_and_sanitizes() {
        let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let long = "x".repeat(500);
        let token = format!(
            "{}.{}.sig",
            enc(&serde_json::json!({"alg": "none"})),
            enc(&serde_json::json!({"iss": "https://a\nb", "sub": long}))
        );
        let c = Claimed::peek(&token);
        assert_eq!(c.iss.as_deref(), Some("https://a?b"));
        let sub = c.sub.unwrap();
        assert_eq!(sub.chars().count(), MAX_CLAIMED_CHARS + 1);
        assert!(sub.ends_with('…'));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(Claimed::peek(bad), Claimed::default());
        }
    }
}
