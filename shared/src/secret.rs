//! A credential in memory that never prints its value.
//!
//! `Secret` wraps a string that is zeroed on drop. `Debug` and `Display` show
//! `***`. It deserializes normally (so config and API bodies can carry one in),
//! but it does not implement `Serialize`: a field that must deliberately carry a
//! secret out (the one-time tunnel secret handed to hoopctl) opts in with
//! `#[serde(with = "hoop_shared::secret::expose")]`, which makes every such place
//! easy to find. Comparison is constant time over SHA-256 digests, so neither the
//! content nor the length of the expected value leaks through timing.

use std::fmt;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// A secret string: a password, token, or one-time tunnel secret.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// A fresh random secret of `bytes` random bytes, URL-safe base64 without
    /// padding (so it is safe in environment variables, URLs and connection strings).
    pub fn generate(bytes: usize) -> Self {
        let mut raw = Zeroizing::new(vec![0u8; bytes]);
        rand::rng().fill_bytes(&mut raw);
        Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*raw))
    }

    /// The value itself. Call this only where the value is handed to the one
    /// party that must receive it (an upstream authentication exchange, the
    /// OS keyring, a child process's environment).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret holds no characters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(presented);
        want.ct_eq(&got).into()
    }

    /// SHA-256 of the value, hex: what a store keeps instead of the value.
    pub fn sha256_hex(&self) -> String {
        hex_lower(&Sha256::digest(self.0.as_bytes()))
    }

    /// Constant-time check of this value against a stored [`sha256_hex`]
    /// digest. A digest that is not 64 hex digits matches nothing.
    ///
    /// [`sha256_hex`]: Secret::sha256_hex
    pub fn matches_sha256_hex(&self, expected: &str) -> bool {
        let got = hex_lower(&Sha256::digest(self.0.as_bytes()));
        let expected = expected.trim().to_ascii_lowercase();
        // Equal lengths for valid digests; ct_eq on unequal lengths is false
        // without comparing content.
        got.as_bytes().ct_eq(expected.as_bytes()).into()
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Opt-in serialization of a [`Secret`] field: `#[serde(with = "hoop_shared::secret::expose")]`.
pub mod expose {
    use super::Secret;

    /// Writes the secret's value.
    pub fn serialize<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    /// Reads a secret's value.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        <Secret as serde::Deserialize>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2-super-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert!(!format!("{s:?} {s} {s:#?}").contains("hunter2"));
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"abcd"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn matches_its_own_stored_digest_only() {
        let s = Secret::new("one-time");
        assert!(s.matches_sha256_hex(&s.sha256_hex()));
        assert!(s.matches_sha256_hex(&s.sha256_hex().to_uppercase()));
        assert!(!Secret::new("other").matches_sha256_hex(&s.sha256_hex()));
        assert!(!s.matches_sha256_hex("not hex"));
        assert!(!s.matches_sha256_hex(""));
    }

    #[test]
    fn generated_secrets_are_distinct_and_env_safe() {
        let a = Secret::generate(32);
        let b = Secret::generate(32);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn serializes_only_through_opt_in() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Carrier {
            #[serde(with = "super::expose")]
            secret: Secret,
        }
        let json = serde_json::to_string(&Carrier {
            secret: Secret::new("v"),
        })
        .unwrap();
        assert_eq!(json, r#"{"secret":"v"}"#);
        let back: Carrier = serde_json::from_str(&json).unwrap();
        assert!(back.secret.matches(b"v"));
    }
}
