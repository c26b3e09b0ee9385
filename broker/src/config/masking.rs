//! Masking rule sets as plain data (`[[masking_sets]]`, docs/masking.md):
//! where, what and how to mask, as written. [`crate::mask`] compiles them
//! (and re-exports these types).

use serde::Deserialize;

/// A built-in or custom detector.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    /// Payment card numbers (13-19 digits, spaces or dashes allowed), Luhn-checked.
    Card,
    /// Email addresses.
    Email,
    /// US Social Security numbers (`AAA-GG-SSSS`, excluding never-issued ranges).
    UsSsn,
    /// IBANs (ISO 13616), mod-97 checked.
    Iban,
    /// Phone numbers: E.164 (`+` and 8-15 digits) and North American formats.
    Phone,
}

/// A masking rule set as written (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSetDoc {
    /// Name the policy refers to.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Rules, applied in order.
    #[serde(rename = "rule")]
    pub rules: Vec<MaskRuleDoc>,
}

/// A masking rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRuleDoc {
    /// Name, shown in recordings ("masked by pii/emails").
    pub name: String,
    /// Column patterns: `column`, `table.column` or `schema.table.column`, globs allowed.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Detectors; empty masks the whole value of matching columns.
    #[serde(default)]
    pub detect: Vec<DetectSpec>,
    /// How matches are masked.
    pub style: Style,
    /// For `keep-last`: how many characters stay visible (default 4).
    #[serde(default)]
    pub keep: Option<usize>,
}

/// A detector as written: a built-in name, or `{ regex = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DetectSpec {
    /// `"card"`, `"email"`, `"us-ssn"`, `"iban"`, `"phone"`.
    Builtin(DetectorKind),
    /// A custom regular expression.
    Regex {
        /// The pattern (Rust `regex` syntax, linear-time).
        regex: String,
    },
}

/// How a sensitive value is shown.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Style {
    /// `****`, whatever the length.
    Full,
    /// Every letter and digit but the last N becomes `*`; separators stay.
    KeepLast,
    /// `****@example.com`.
    KeepDomain,
    /// `h:` and 16 hex digits of a keyed HMAC-SHA256: equal values look equal.
    Hash,
}
