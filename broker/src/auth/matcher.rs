//! Claim matchers of workload rules: an exact value, or a glob with `*` and `?`.
//!
//! Decisions, and why:
//! - `*` matches any run of characters, `/` and `:` included (GitHub's `sub`
//!   is `repo:OWNER/REPO:ref:refs/heads/BRANCH`, so path-aware globbing would
//!   only surprise); `?` matches one character; `\*`, `\?` and `\\` match the
//!   literal character. Matching is case-sensitive, like the claims.
//! - A pattern must constrain something: empty patterns and patterns made
//!   only of `*` are refused when the config is loaded.
//! - Only string, number and boolean claims can match (numbers and booleans
//!   as their JSON text); arrays, objects and absent claims never match, so a
//!   rule cannot be satisfied by accident through an unexpected claim shape.
//! - Matching is a linear backtracking scan (no regex, no recursion): the
//!   cost is bounded by pattern length times claim length.

use serde_json::Value;

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty.
    #[error("the pattern is empty")]
    Empty,
    /// The pattern matches every value.
    #[error("{0:?} matches anything; constrain it or remove the claim")]
    MatchesAnything(String),
    /// A backslash that escapes nothing.
    #[error("{0:?}: a backslash must be followed by *, ? or \\")]
    BadEscape(String),
    /// Longer than [`MAX_PATTERN_LEN`].
    #[error("the pattern is longer than {MAX_PATTERN_LEN} characters")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    AnyOne,
    AnyRun,
}

/// A compiled claim matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPattern {
    source: String,
    pieces: Vec<Piece>,
}

impl ClaimPattern {
    /// Compiles `pattern`.
    pub fn parse(pattern: &str) -> Result<ClaimPattern, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        let mut pieces = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            pieces.push(match c {
                '*' => Piece::AnyRun,
                '?' => Piece::AnyOne,
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => Piece::Char(e),
                    _ => return Err(PatternError::BadEscape(pattern.to_owned())),
                },
                other => Piece::Char(other),
            });
        }
        if pieces.iter().all(|p| *p == Piece::AnyRun) {
            return Err(PatternError::MatchesAnything(pattern.to_owned()));
        }
        Ok(ClaimPattern {
            source: pattern.to_owned(),
            pieces,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a claim value matches (see the module notes on types).
    pub fn matches_claim(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::String(s)) => self.matches(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => self.matches(&v.to_string()),
            _ => false,
        }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        // Where to resume after the last `*`: (piece after it, text position).
        let mut resume: Option<(usize, usize)> = None;
        loop {
            match (self.pieces.get(p), text.get(t)) {
                (Some(Piece::AnyRun), _) => {
                    resume = Some((p + 1, t));
                    p += 1;
                }
                (Some(Piece::AnyOne), Some(_)) => {
                    p += 1;
                    t += 1;
                }
                (Some(Piece::Char(want)), Some(got)) if want == got => {
                    p += 1;
                    t += 1;
                }
                (None, None) => return true,
                _ => match resume {
                    // Let the last `*` swallow one more character and retry.
                    Some((rp, rt)) if rt < text.len() => {
                        resume = Some((rp, rt + 1));
                        p = rp;
                        t = rt + 1;
                    }
                    _ => return false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        ClaimPattern::parse(pattern).unwrap().matches(text)
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        let sub = "repo:acme/api:ref:refs/heads/main";
        assert!(m(sub, sub));
        assert!(!m(sub, "repo:acme/api:ref:refs/heads/mainx"));
        assert!(!m(sub, "repo:acme/api:ref:refs/heads/mai"));
        assert!(!m("acme", "ACME"));
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(m(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/api:ref:refs/heads/main"
        ));
        assert!(m(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/a/b:ref:refs/heads/main"
        ));
        assert!(!m(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/api:ref:refs/heads/dev"
        ));
        assert!(!m("repo:acme/*", "repo:evil/acme/x"));
        assert!(m("repo:acme/api:*", "repo:acme/api:"));
        assert!(m("*-prod", "db-prod"));
        assert!(!m("*-prod", "db-prod-2"));
        assert!(m("v?.?", "v1.2"));
        assert!(!m("v?.?", "v1.23"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(m("a*b*c", "abcbc"));
        assert!(!m("a*b*c", "abcb"));
        assert!(m("é*", "été"));
    }

    #[test]
    fn escapes_match_literal_metacharacters() {
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"what\?", "what?"));
        assert!(m(r"back\\slash", r"back\slash"));
    }

    #[test]
    fn patterns_that_constrain_nothing_or_do_not_compile_are_refused() {
        assert_eq!(ClaimPattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(
            ClaimPattern::parse("**"),
            Err(PatternError::MatchesAnything(_))
        ));
        assert!(matches!(
            ClaimPattern::parse(r"a\b"),
            Err(PatternError::BadEscape(_))
        ));
        assert!(matches!(
            ClaimPattern::parse("trailing\\"),
            Err(PatternError::BadEscape(_))
        ));
        assert_eq!(
            ClaimPattern::parse(&"a".repeat(MAX_PATTERN_LEN + 1)),
            Err(PatternError::TooLong)
        );
        // One `?` is a constraint (exactly one character).
        assert!(ClaimPattern::parse("?").is_ok());
    }

    #[test]
    fn only_scalar_claims_can_match() {
        let p = ClaimPattern::parse("acme").unwrap();
        assert!(p.matches_claim(Some(&json!("acme"))));
        assert!(!p.matches_claim(Some(&json!(["acme"]))));
        assert!(!p.matches_claim(Some(&json!({"acme": true}))));
        assert!(!p.matches_claim(None));
        let n = ClaimPattern::parse("12*").unwrap();
        assert!(n.matches_claim(Some(&json!(1234))));
        let b = ClaimPattern::parse("true").unwrap();
        assert!(b.matches_claim(Some(&json!(true))));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let p = ClaimPattern::parse(&"*a".repeat(100)).unwrap();
        let text = "a".repeat(99) + "b";
        let start = std::time::Instant::now();
        assert!(!p.matches(&text.repeat(100)));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
