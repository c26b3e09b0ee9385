//! Detectors: find sensitive values inside text, with checksums where the
//! format has one, so that "looks like a card number" is not enough.
//!
//! Each detector returns the byte ranges of its matches; the masker replaces
//! only those ranges, so a card number inside a free-text note is masked while
//! the rest of the note stays readable.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

pub use crate::config::masking::DetectorKind;

/// A compiled detector.
#[derive(Debug, Clone)]
pub enum Detector {
    /// Built in.
    Builtin(DetectorKind),
    /// A custom regular expression (every match is sensitive).
    Regex(Regex),
}

#[allow(clippy::expect_used)] // Literal patterns, checked by the tests below.
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("card pattern"));
#[allow(clippy::expect_used)]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}\b")
        .expect("email pattern")
});
#[allow(clippy::expect_used)]
static SSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{3})-(\d{2})-(\d{4})\b").expect("ssn pattern"));
#[allow(clippy::expect_used)]
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b").expect("iban pattern"));
#[allow(clippy::expect_used)]
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+\d(?:[ -]?\d){7,14}\b)|(?:\(\d{3}\) ?\d{3}-\d{4}\b)|(?:\b\d{3}-\d{3}-\d{4}\b)",
    )
    .expect("phone pattern")
});

/// The Luhn checksum over the digits of `s`.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if !i.is_multiple_of(2) {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The IBAN mod-97 check (ISO 7064) over `s` (spaces ignored).
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        let base = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * base + value) % 97;
    }
    remainder == 1
}

fn ssn_plausible(area: &str, group: &str, serial: &str) -> bool {
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// True when `text` holds at least `n` ASCII digits (stops counting at `n`).
fn has_digits(text: &str, n: usize) -> bool {
    let mut seen = 0;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            seen += 1;
            if seen >= n {
                return true;
            }
        }
    }
    false
}

impl Detector {
    /// A cheap test that is false only when [`Detector::find`] cannot match
    /// (digit counts, an `@`): most values of a result skip the regex.
    #[inline]
    pub fn may_match(&self, text: &str) -> bool {
        match self {
            Detector::Regex(_) => true,
            Detector::Builtin(DetectorKind::Card) => has_digits(text, 13),
            Detector::Builtin(DetectorKind::Email) => text.as_bytes().contains(&b'@'),
            Detector::Builtin(DetectorKind::UsSsn) => {
                text.as_bytes().contains(&b'-') && has_digits(text, 9)
            }
            Detector::Builtin(DetectorKind::Iban) => {
                text.len() >= 15
                    && text.bytes().any(|b| b.is_ascii_uppercase())
                    && has_digits(text, 2)
            }
            Detector::Builtin(DetectorKind::Phone) => has_digits(text, 7),
        }
    }

    /// Byte ranges of the sensitive matches in `text`.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        match self {
            Detector::Regex(re) => re.find_iter(text).map(|m| m.range()).collect(),
            Detector::Builtin(DetectorKind::Card) => CARD
                .find_iter(text)
                .filter(|m| luhn_valid(m.as_str()))
                .map(|m| m.range())
                .collect(),
            Detector::Builtin(DetectorKind::Email) => {
                EMAIL.find_iter(text).map(|m| m.range()).collect()
            }
            Detector::Builtin(DetectorKind::UsSsn) => SSN
                .captures_iter(text)
                .filter(|c| {
                    ssn_plausible(
                        c.get(1).map_or("", |m| m.as_str()),
                        c.get(2).map_or("", |m| m.as_str()),
                        c.get(3).map_or("", |m| m.as_str()),
                    )
                })
                .filter_map(|c| c.get(0).map(|m| m.range()))
                .collect(),
            Detector::Builtin(DetectorKind::Iban) => IBAN
                .find_iter(text)
                .filter(|m| iban_valid(m.as_str()))
                .map(|m| m.range())
                .collect(),
            Detector::Builtin(DetectorKind::Phone) => {
                PHONE.find_iter(text).map(|m| m.range()).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: DetectorKind, text: &str) -> Vec<&str> {
        Detector::Builtin(kind)
            .find(text)
            .into_iter()
            .filter_map(|r| text.get(r))
            .collect()
    }

    #[test]
    fn cards_need_a_valid_luhn_checksum() {
        assert_eq!(
            found(DetectorKind::Card, "4111111111111111"),
            ["4111111111111111"]
        );
        assert_eq!(
            found(DetectorKind::Card, "paid with 4111 1111 1111 1111 today"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            found(DetectorKind::Card, "amex 3782-822463-10005."),
            ["3782-822463-10005"]
        );
        assert!(
            found(DetectorKind::Card, "4111111111111112").is_empty(),
            "bad checksum"
        );
        assert!(
            found(DetectorKind::Card, "order 1234567890").is_empty(),
            "too short"
        );
    }

    #[test]
    fn emails_ssns_ibans_and_phones() {
        assert_eq!(
            found(
                DetectorKind::Email,
                "mail Ada.Example+x@mail.example.com now"
            ),
            ["Ada.Example+x@mail.example.com"]
        );
        assert!(found(DetectorKind::Email, "not@an-email").is_empty());
        assert_eq!(
            found(DetectorKind::UsSsn, "ssn 123-45-6789"),
            ["123-45-6789"]
        );
        assert!(found(DetectorKind::UsSsn, "000-12-3456 666-12-3456 912-12-3456").is_empty());
        assert_eq!(
            found(DetectorKind::Iban, "IBAN DE89 3704 0044 0532 0130 00 ok"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            found(DetectorKind::Iban, "GB82WEST12345698765432"),
            ["GB82WEST12345698765432"]
        );
        assert!(
            found(DetectorKind::Iban, "GB82WEST12345698765433").is_empty(),
            "bad checksum"
        );
        assert_eq!(
            found(DetectorKind::Phone, "call +49 30 1234567"),
            ["+49 30 1234567"]
        );
        assert_eq!(
            found(DetectorKind::Phone, "(555) 123-4567"),
            ["(555) 123-4567"]
        );
    }

    #[test]
    fn the_prefilter_never_rejects_a_match() {
        let samples = [
            "4111 1111 1111 1111",
            "a@b.co",
            "123-45-6789",
            "DE89 3704 0044 0532 0130 00",
            "+49 30 1234567",
            "(555) 123-4567",
        ];
        for kind in [
            DetectorKind::Card,
            DetectorKind::Email,
            DetectorKind::UsSsn,
            DetectorKind::Iban,
            DetectorKind::Phone,
        ] {
            let d = Detector::Builtin(kind);
            for s in samples {
                if !d.find(s).is_empty() {
                    assert!(d.may_match(s), "{d:?} {s}");
                }
            }
        }
        assert!(!Detector::Builtin(DetectorKind::Card).may_match("order 12345"));
        assert!(!Detector::Builtin(DetectorKind::Email).may_match("no at sign"));
    }

    #[test]
    fn checksums() {
        assert!(luhn_valid("4111-1111-1111-1111"));
        assert!(!luhn_valid("4111-1111-1111-1112"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE88370400440532013000"));
    }
}
