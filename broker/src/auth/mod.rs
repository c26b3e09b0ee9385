//! Token validation: the broker as a relying party of an OIDC issuer.
//!
//! Every API call and every tunnel presents a bearer token. [`TokenVerifier`]
//! validates it exactly as it would a token from any external provider, the
//! built-in development provider included: it reads the issuer's
//! `/.well-known/openid-configuration`, fetches and caches the JWKS it names,
//! and checks signature (asymmetric algorithms only), `iss`, `aud`, `exp`,
//! `nbf` with bounded clock skew. The result is an [`Identity`].

mod verifier;

pub use verifier::{TokenVerifier, VerifierSettings};

/// Who is behind a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub` claim.
    pub subject: String,
    /// User name, from the configured claim (falls back to `sub`).
    pub user: String,
    /// Groups, from the configured claim (empty when absent).
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

/// Why a token was refused. The text is safe to show to the client: it never
/// contains the token or key material.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// `exp` is in the past (beyond the allowed skew).
    #[error("the token has expired")]
    Expired,
    /// Signature, issuer, audience, algorithm, format or claims are wrong.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// Discovery or JWKS could not be fetched and nothing usable is cached.
    #[error("the identity provider could not be reached: {0}")]
    ProviderUnavailable(String),
}
