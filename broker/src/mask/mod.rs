//! Inline masking of result values: rule sets, detectors and mask styles.
//!
//! A masking rule says *where* (column patterns: `email`, `customers.email`,
//! `public.customers.card_*`), *what* inside the value (detectors: card
//! numbers with a Luhn check, emails, US SSNs, IBANs with their checksum,
//! phone numbers, custom regexes; none means the whole value), and *how*
//! (`full`, `keep-last` N characters, `keep-domain` for emails, or a keyed
//! deterministic `hash`, so equal values still group and join). A rule with
//! detectors and no columns scans every text value: a card number pasted into
//! a free-text note is masked wherever it appears.
//!
//! This module is pure: [`MaskSet::mask`] takes a column's identity and its
//! text value and returns the masked value, or `None` when nothing applies.
//! The Postgres relay calls it per `DataRow` field (see `docs/masking.md`).

pub mod detect;

use std::fmt::Write as _;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::auth::matcher::ClaimPattern;
use detect::Detector;

pub use crate::config::masking::{DetectSpec, MaskRuleDoc, MaskSetDoc, Style};

/// Errors building a rule set.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// A column pattern is not a valid glob.
    #[error("masking set {set:?} rule {rule:?}: column pattern {pattern:?}: {reason}")]
    Column {
        /// Set.
        set: String,
        /// Rule.
        rule: String,
        /// Pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A custom regex does not compile.
    #[error("masking set {set:?} rule {rule:?}: regex {pattern:?}: {reason}")]
    Regex {
        /// Set.
        set: String,
        /// Rule.
        rule: String,
        /// Pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A rule with neither columns nor detectors would mask every value.
    #[error("masking set {set:?} rule {rule:?}: give columns, detectors, or both")]
    Unbounded {
        /// Set.
        set: String,
        /// Rule.
        rule: String,
    },
}

/// Where a value comes from: resolved from RowDescription through the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnRef {
    /// Schema of the source table, when the column is a plain table column.
    pub schema: Option<String>,
    /// Source table.
    pub table: Option<String>,
    /// The source column's own name (`attname`), when known; differs from
    /// `name` when the query gave it an alias.
    pub column: Option<String>,
    /// The column's name as the client sees it (its alias, if any).
    pub name: String,
}

impl ColumnRef {
    /// `schema.table.column` when the source is known, else the name the
    /// client sees (for recordings).
    pub fn label(&self) -> String {
        match (&self.schema, &self.table) {
            (Some(s), Some(t)) => {
                format!("{s}.{t}.{}", self.column.as_deref().unwrap_or(&self.name))
            }
            (None, Some(t)) => format!("{t}.{}", self.column.as_deref().unwrap_or(&self.name)),
            _ => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct MaskRule {
    name: String,
    columns: Vec<ClaimPattern>,
    detectors: Vec<Detector>,
    style: Style,
    keep: usize,
}

/// A compiled masking rule set.
#[derive(Debug, Clone)]
pub struct MaskSet {
    /// Name.
    pub name: String,
    rules: Vec<MaskRule>,
    key: Vec<u8>,
}

/// A masked value and the rule that masked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// The value to send instead.
    pub value: String,
    /// `set/rule`, for recordings.
    pub by: String,
}

impl MaskSet {
    /// Compiles a rule set; `hash_key` keys the `hash` style (per broker, so
    /// hashes cannot be reversed by trying likely values without it).
    pub fn compile(doc: &MaskSetDoc, hash_key: &[u8]) -> Result<MaskSet, MaskError> {
        let mut rules = Vec::new();
        for r in &doc.rules {
            if r.columns.is_empty() && r.detect.is_empty() {
                return Err(MaskError::Unbounded {
                    set: doc.name.clone(),
                    rule: r.name.clone(),
                });
            }
            let columns = r
                .columns
                .iter()
                .map(|p| {
                    ClaimPattern::parse(p).map_err(|e| MaskError::Column {
                        set: doc.name.clone(),
                        rule: r.name.clone(),
                        pattern: p.clone(),
                        reason: e.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?;
            let detectors = r
                .detect
                .iter()
                .map(|d| match d {
                    DetectSpec::Builtin(kind) => Ok(Detector::Builtin(kind.clone())),
                    DetectSpec::Regex { regex } => regex::RegexBuilder::new(regex)
                        .size_limit(1 << 20)
                        .build()
                        .map(Detector::Regex)
                        .map_err(|e| MaskError::Regex {
                            set: doc.name.clone(),
                            rule: r.name.clone(),
                            pattern: regex.clone(),
                            reason: e.to_string(),
                        }),
                })
                .collect::<Result<_, _>>()?;
            rules.push(MaskRule {
                name: r.name.clone(),
                columns,
                detectors,
                style: r.style,
                keep: r.keep.unwrap_or(4),
            });
        }
        Ok(MaskSet {
            name: doc.name.clone(),
            rules,
            key: hash_key.to_vec(),
        })
    }

    /// Whether any rule names this column (the relay uses it to decide which
    /// columns of a result need work at all).
    pub fn covers_column(&self, column: &ColumnRef) -> bool {
        self.rules
            .iter()
            .any(|r| column_matches(&r.columns, column))
    }

    /// Whether some rule scans every column with detectors.
    pub fn scans_all_columns(&self) -> bool {
        self.rules.iter().any(|r| r.columns.is_empty())
    }

    /// The masked form of `value` in `column`, or `None` when no rule applies
    /// (the same decision the relay makes, see [`Masker`]).
    pub fn mask(&self, column: &ColumnRef, value: &str) -> Option<Masked> {
        let masker = Masker::new(vec![std::sync::Arc::new(self.clone())]);
        let plan = masker.plan(column)?;
        plan.apply(value).map(|value| Masked {
            value,
            by: plan.by.clone(),
        })
    }

    fn apply_style(&self, rule: &MaskRule, s: &str) -> String {
        match rule.style {
            Style::Full => "****".to_owned(),
            Style::KeepLast => keep_last(s, rule.keep),
            Style::KeepDomain => match s.rsplit_once('@') {
                Some((_, domain)) if !domain.is_empty() => format!("****@{domain}"),
                _ => "****".to_owned(),
            },
            Style::Hash => {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
                    return "****".to_owned();
                };
                mac.update(s.as_bytes());
                let digest = mac.finalize().into_bytes();
                let mut out = String::from("h:");
                for b in digest.iter().take(8) {
                    let _ = write!(out, "{b:02x}");
                }
                out
            }
        }
    }

    /// `value` with every match of `rule`'s detectors masked, or `None`
    /// when nothing matched.
    fn mask_matches(&self, rule: &MaskRule, value: &str) -> Option<String> {
        let mut ranges: Vec<std::ops::Range<usize>> = rule
            .detectors
            .iter()
            .filter(|d| d.may_match(value))
            .flat_map(|d| d.find(value))
            .collect();
        if ranges.is_empty() {
            return None;
        }
        ranges.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut out = String::with_capacity(value.len());
        let mut at = 0;
        for r in ranges {
            if r.start < at {
                continue; // overlaps a range already masked
            }
            let (Some(before), Some(hit)) = (value.get(at..r.start), value.get(r.clone())) else {
                continue;
            };
            out.push_str(before);
            out.push_str(&self.apply_style(rule, hit));
            at = r.end;
        }
        out.push_str(value.get(at..).unwrap_or_default());
        Some(out)
    }
}

/// The masking sets of one session (the connection's and the policy's),
/// applied together.
///
/// How several rules meet on one value: a rule *with columns and without
/// detectors* replaces the whole value, and the first such rule (sets in
/// order, rules in order) decides the style; no other rule runs on that
/// value. Otherwise every applicable detector rule masks its matches in
/// turn, each on the output of the one before, so a note holding both a
/// ticket id and a card number loses both.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    sets: Vec<std::sync::Arc<MaskSet>>,
}

/// What happens to the values of one result column: the rules that apply
/// to it, worked out once per result description.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// A whole-value rule: (set index, rule index).
    whole: Option<(usize, usize)>,
    /// Detector rules, in order.
    detect: Vec<(usize, usize)>,
    sets: Vec<std::sync::Arc<MaskSet>>,
    /// `set/rule` of the deciding (or first) rule, for logs.
    pub by: String,
}

impl Masker {
    /// The sets, in the order they apply.
    pub fn new(sets: Vec<std::sync::Arc<MaskSet>>) -> Masker {
        Masker { sets }
    }

    /// True when there are no sets at all.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Whether any rule names columns (then results must be mapped to their
    /// source columns; with detectors only, every value is simply scanned).
    pub fn has_column_rules(&self) -> bool {
        self.sets
            .iter()
            .any(|s| s.rules.iter().any(|r| !r.columns.is_empty()))
    }

    /// Whether any column pattern names a table (`table.column` or
    /// `schema.table.column`), so it needs the catalog to be decided.
    pub fn has_table_patterns(&self) -> bool {
        self.sets.iter().any(|s| {
            s.rules
                .iter()
                .any(|r| r.columns.iter().any(|p| p.as_str().contains('.')))
        })
    }

    /// Whether the column part of some pattern could match a column named
    /// `name` in an unknown table (used to fail closed when the catalog
    /// cannot be read).
    pub fn might_cover_name(&self, name: &str) -> bool {
        self.sets.iter().any(|s| {
            s.rules.iter().any(|r| {
                r.columns.iter().any(|p| {
                    let last = p.as_str().rsplit('.').next().unwrap_or_default();
                    ClaimPattern::parse(last).is_ok_and(|lp| lp.matches(name))
                        || last.chars().all(|c| c == '*')
                })
            })
        })
    }

    /// The plan for `column`, or `None` when no rule can touch its values.
    pub fn plan(&self, column: &ColumnRef) -> Option<ColumnPlan> {
        let mut whole = None;
        let mut detect = Vec::new();
        let mut by = None;
        for (si, set) in self.sets.iter().enumerate() {
            for (ri, rule) in set.rules.iter().enumerate() {
                let applies = rule.columns.is_empty() || column_matches(&rule.columns, column);
                if !applies {
                    continue;
                }
                if rule.detectors.is_empty() {
                    if whole.is_none() {
                        whole = Some((si, ri));
                        by = Some(format!("{}/{}", set.name, rule.name));
                    }
                } else {
                    detect.push((si, ri));
                    by.get_or_insert_with(|| format!("{}/{}", set.name, rule.name));
                }
            }
        }
        if whole.is_some() {
            detect.clear();
        }
        let by = by?;
        Some(ColumnPlan {
            whole,
            detect,
            sets: self.sets.clone(),
            by,
        })
    }
}

impl ColumnPlan {
    /// True when a rule replaces the whole value (the column is *covered*),
    /// as opposed to detectors looking inside it.
    pub fn is_whole_value(&self) -> bool {
        self.whole.is_some()
    }

    /// The masked form of `value`, or `None` when it stays as it is.
    pub fn apply(&self, value: &str) -> Option<String> {
        let rule = |(si, ri): (usize, usize)| {
            let set = self.sets.get(si)?;
            Some((set, set.rules.get(ri)?))
        };
        if let Some(at) = self.whole {
            let (set, r) = rule(at)?;
            return Some(set.apply_style(r, value));
        }
        let mut current: Option<String> = None;
        for &at in &self.detect {
            let Some((set, r)) = rule(at) else { continue };
            let input = current.as_deref().unwrap_or(value);
            if let Some(masked) = set.mask_matches(r, input) {
                current = Some(masked);
            }
        }
        current
    }

    /// Whether some detector might match `value` (false: it passes as is).
    #[inline]
    pub fn may_touch(&self, value: &str) -> bool {
        self.whole.is_some()
            || self.detect.iter().any(|&(si, ri)| {
                self.sets
                    .get(si)
                    .and_then(|s| s.rules.get(ri))
                    .is_some_and(|r| r.detectors.iter().any(|d| d.may_match(value)))
            })
    }
}

/// Every letter and digit except the last `keep` become `*`.
fn keep_last(s: &str, keep: usize) -> String {
    let total = s.chars().filter(|c| c.is_alphanumeric()).count();
    let hide = total.saturating_sub(keep);
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen <= hide { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// Pattern `column` matches the name the client sees or the source
/// column's own name; `table.column` and `schema.table.column` need the
/// source, resolved through the catalog.
fn column_matches(patterns: &[ClaimPattern], column: &ColumnRef) -> bool {
    let source = column.column.as_deref().unwrap_or(&column.name);
    let table_col = column.table.as_ref().map(|t| format!("{t}.{source}"));
    let full = match (&column.schema, &column.table) {
        (Some(s), Some(t)) => Some(format!("{s}.{t}.{source}")),
        _ => None,
    };
    patterns.iter().any(|p| {
        let dots = p.as_str().matches('.').count();
        match dots {
            0 => p.matches(&column.name) || p.matches(source),
            1 => table_col.as_deref().is_some_and(|tc| p.matches(tc)),
            _ => full.as_deref().is_some_and(|f| p.matches(f)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PII: &str = r#"
name = "pii"
[[rule]]
name = "emails"
columns = ["customers.email"]
style = "keep-domain"
[[rule]]
name = "cards"
detect = ["card"]
style = "keep-last"
keep = 4
[[rule]]
name = "customer-ids"
columns = ["public.orders.customer_ref"]
style = "hash"
[[rule]]
name = "tickets"
columns = ["note*"]
detect = [{ regex = "TKT-[0-9]+" }]
style = "full"
"#;

    fn set() -> MaskSet {
        let doc: MaskSetDoc = toml::from_str(PII).unwrap();
        MaskSet::compile(&doc, b"test-key").unwrap()
    }

    fn col(table: Option<&str>, name: &str) -> ColumnRef {
        ColumnRef {
            schema: table.map(|_| "public".into()),
            table: table.map(Into::into),
            column: None,
            name: name.into(),
        }
    }

    #[test]
    fn columns_detectors_and_styles() {
        let s = set();
        let m = s
            .mask(&col(Some("customers"), "email"), "ada@example.com")
            .unwrap();
        assert_eq!(
            (m.value.as_str(), m.by.as_str()),
            ("****@example.com", "pii/emails")
        );
        // Same name on another table: not this rule.
        assert_eq!(
            s.mask(&col(Some("staff"), "email"), "bob@example.com"),
            None
        );
        // Card numbers anywhere, inside text too.
        let m = s
            .mask(
                &col(Some("orders"), "comment"),
                "card 4111 1111 1111 1111 declined",
            )
            .unwrap();
        assert_eq!(m.value, "card **** **** **** 1111 declined");
        assert_eq!(
            s.mask(&col(None, "x"), "4111111111111112"),
            None,
            "not Luhn-valid"
        );
        // Deterministic hash: equal values stay equal, different differ.
        let a = s
            .mask(&col(Some("orders"), "customer_ref"), "C-1")
            .unwrap()
            .value;
        let b = s
            .mask(&col(Some("orders"), "customer_ref"), "C-1")
            .unwrap()
            .value;
        let c = s
            .mask(&col(Some("orders"), "customer_ref"), "C-2")
            .unwrap()
            .value;
        assert!(
            a.starts_with("h:") && a.len() == 18 && a == b && a != c,
            "{a} {c}"
        );
        // Custom regex within a globbed column.
        let m = s.mask(&col(None, "notes"), "see TKT-42 and TKT-7").unwrap();
        assert_eq!(m.value, "see **** and ****");
        assert!(s.covers_column(&col(Some("customers"), "email")));
        assert!(s.scans_all_columns());
    }

    #[test]
    fn bad_rule_sets_are_refused_with_names() {
        let unbounded: MaskSetDoc =
            toml::from_str("name = \"x\"\n[[rule]]\nname = \"all\"\nstyle = \"full\"\n").unwrap();
        let err = MaskSet::compile(&unbounded, b"k").unwrap_err().to_string();
        assert!(
            err.contains("\"all\"") && err.contains("columns, detectors"),
            "{err}"
        );
        let bad_regex: MaskSetDoc = toml::from_str(
            "name = \"x\"\n[[rule]]\nname = \"r\"\ndetect = [{ regex = \"(\" }]\nstyle = \"full\"\n",
        )
        .unwrap();
        assert!(
            MaskSet::compile(&bad_regex, b"k")
                .unwrap_err()
                .to_string()
                .contains("regex")
        );
        let typo = toml::from_str::<MaskSetDoc>(
            "name = \"x\"\n[[rule]]\nname = \"r\"\ncolumn = [\"a\"]\nstyle = \"full\"\n",
        );
        assert!(
            typo.unwrap_err()
                .to_string()
                .contains("unknown field `column`")
        );
    }

    #[test]
    fn aliases_whole_value_rules_and_detector_chains() {
        let s = set();
        // An alias does not hide the source column.
        let aliased = ColumnRef {
            schema: Some("public".into()),
            table: Some("customers".into()),
            column: Some("email".into()),
            name: "contact".into(),
        };
        assert_eq!(
            s.mask(&aliased, "ada@example.com").unwrap().value,
            "****@example.com"
        );
        assert_eq!(aliased.label(), "public.customers.email");
        // Ticket regex and card detector both apply to a note.
        let m = s
            .mask(&col(None, "notes"), "TKT-9 paid 4111111111111111")
            .unwrap();
        assert_eq!(m.value, "**** paid ************1111");
        // A whole-value rule decides alone, on the original value.
        let masker = Masker::new(vec![std::sync::Arc::new(s)]);
        let plan = masker.plan(&col(Some("customers"), "email")).unwrap();
        assert!(plan.is_whole_value());
        assert!(masker.has_column_rules() && masker.has_table_patterns());
        assert!(masker.might_cover_name("email") && !masker.might_cover_name("city"));
        let plain = masker.plan(&col(Some("orders"), "status")).unwrap();
        assert!(!plain.is_whole_value());
        assert!(!plain.may_touch("paid"));
        assert_eq!(plain.apply("paid"), None);
    }

    #[test]
    fn keep_last_keeps_separators() {
        assert_eq!(keep_last("4111-1111-1111-1111", 4), "****-****-****-1111");
        assert_eq!(keep_last("ab", 4), "ab");
    }
}
