//! The policy document: who may reach which connection, how, and who approves.
//!
//! A policy is a TOML document (reference with examples: `docs/policy.md`):
//!
//! ```toml
//! groups = ["engineering", "sre", "admins"]   # the groups this policy refers to
//! admins = ["admins"]                         # who may change the policy
//!
//! [[rules]]
//! name = "engineering-prod-jit"
//! connections = ["pg-prod"]
//! groups = ["engineering"]
//! access = "approval"                         # allow | deny | approval
//! justification = true
//! approvers = { groups = ["sre"] }
//! approvals = 1
//! default_duration = "15m"
//! max_duration = "1h"
//! windows = [{ days = "mon-fri", from = "08:00", to = "20:00", timezone = "Europe/Berlin" }]
//! ```
//!
//! [`PolicyDocument::parse`] is strict: unknown keys, unknown connection,
//! group, service, guardrail or masking names, contradictory settings, and
//! rules whose order silently decides the outcome are all reported, every
//! problem at once, each as `FILE:LINE:COLUMN: what was expected`. The result
//! is a [`Policy`], and [`Policy::evaluate`] is the one place where a decision
//! is made: the first rule (in document order) whose subjects, connections
//! and time window match decides; nothing matching means deny. Every
//! [`Decision`] names the rule that made it and why.

// Documents and requests come from anyone who can reach the API.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::names::{NAME_RULE, is_name, line_col as position};

/// The policy format version this code reads.
pub const POLICY_VERSION: u32 = 1;
/// Default grant for `access = "approval"` when the rule gives none.
pub const DEFAULT_APPROVAL_DURATION: Duration = Duration::from_secs(3600);
/// Default maximum grant when the rule gives none.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(8 * 3600);
/// The longest grant any rule may give.
pub const LONGEST_GRANT: Duration = Duration::from_secs(7 * 24 * 3600);

// ---------------------------------------------------------------------------
// The document as written (spans kept for error positions).
// ---------------------------------------------------------------------------

/// The document as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Format version; must be 1.
    #[serde(default)]
    pub version: Option<Spanned<u32>>,
    /// Groups (as the identity provider names them) that rules may refer to.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// Groups whose members may change the policy.
    #[serde(default)]
    pub admins: Vec<Spanned<String>>,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleDoc>>,
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// Unique name, shown with every decision it makes.
    pub name: Spanned<String>,
    /// Connection names, or `"*"` for every connection.
    pub connections: Vec<Spanned<String>>,
    /// Members of any of these groups match.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// These users match.
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    /// These workload service identities match.
    #[serde(default)]
    pub services: Vec<Spanned<String>>,
    /// What matching identities get.
    pub access: Spanned<Access>,
    /// Whether a justification (`--reason`) is required.
    #[serde(default)]
    pub justification: Option<Spanned<bool>>,
    /// Who may approve (`access = "approval"` only).
    #[serde(default)]
    pub approvers: Option<Spanned<ApproversDoc>>,
    /// Distinct approvals needed (default 1).
    #[serde(default)]
    pub approvals: Option<Spanned<u32>>,
    /// Grant length when the requester names none, e.g. "15m".
    #[serde(default)]
    pub default_duration: Option<Spanned<String>>,
    /// Longest grant a requester may ask for, e.g. "1h".
    #[serde(default)]
    pub max_duration: Option<Spanned<String>>,
    /// When the rule applies; outside every window it does not match.
    #[serde(default)]
    pub windows: Vec<Spanned<WindowDoc>>,
    /// Guardrail rule sets for sessions granted by this rule.
    #[serde(default)]
    pub guardrails: Vec<Spanned<String>>,
    /// Masking rule sets for sessions granted by this rule.
    #[serde(default)]
    pub masking: Vec<Spanned<String>>,
    /// Later rules this rule is meant to take precedence over where both match.
    #[serde(default)]
    pub overrides: Vec<Spanned<String>>,
}

/// Approvers as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproversDoc {
    /// Members of these groups may approve.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// These users may approve.
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
}

/// A time window as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDoc {
    /// `"mon-fri"`, `"sat,sun"`, `"*"`.
    pub days: Spanned<String>,
    /// Start, `"HH:MM"`.
    pub from: Spanned<String>,
    /// End, `"HH:MM"` (exclusive; earlier than `from` means overnight).
    pub to: Spanned<String>,
    /// IANA time zone, e.g. `"Europe/Berlin"`, `"UTC"`.
    pub timezone: Spanned<String>,
}

// ---------------------------------------------------------------------------
// The validated policy.
// ---------------------------------------------------------------------------

/// What a rule grants.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Connect at once.
    Allow,
    /// Refuse.
    Deny,
    /// Connect after the required approvals.
    Approval,
}

/// A validated policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Policy {
    /// Groups rules may refer to.
    pub groups: Vec<String>,
    /// Groups whose members may change the policy.
    pub admins: Vec<String>,
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
}

/// A validated rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rule {
    /// Name.
    pub name: String,
    /// Connection names; `"*"` matches all.
    pub connections: Vec<String>,
    /// Groups that match.
    pub groups: Vec<String>,
    /// Users that match.
    pub users: Vec<String>,
    /// Workload services that match.
    pub services: Vec<String>,
    /// What matching identities get.
    pub access: Access,
    /// Whether a justification is required.
    pub justification: bool,
    /// Who may approve.
    pub approvers: Approvers,
    /// Distinct approvals needed (0 unless `access = "approval"`).
    pub approvals: u32,
    /// Default grant, seconds.
    pub default_duration_secs: u64,
    /// Longest grant, seconds.
    pub max_duration_secs: u64,
    /// When the rule applies (empty: always).
    pub windows: Vec<Window>,
    /// Guardrail rule sets.
    pub guardrails: Vec<String>,
    /// Masking rule sets.
    pub masking: Vec<String>,
}

/// Who may approve.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Approvers {
    /// Groups.
    pub groups: Vec<String>,
    /// Users.
    pub users: Vec<String>,
}

impl Approvers {
    /// True when `who` may approve.
    pub fn includes(&self, who: &Subject) -> bool {
        self.users.iter().any(|u| u == &who.user)
            || who.groups.iter().any(|g| self.groups.contains(g))
    }

    /// "groups sre; users dave", for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            parts.push(format!("group {}", self.groups.join(", ")));
        }
        if !self.users.is_empty() {
            parts.push(format!("user {}", self.users.join(", ")));
        }
        parts.join(" or ")
    }
}

/// A validated time window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Window {
    /// Days the window opens on, Monday = 0.
    pub days: Vec<u8>,
    /// Start, minutes after midnight.
    pub from_minute: u16,
    /// End, minutes after midnight (exclusive).
    pub to_minute: u16,
    /// IANA time zone.
    pub timezone: String,
    /// As written, for messages.
    pub text: String,
}

/// Names a policy may refer to, known from the broker's configuration.
#[derive(Debug, Clone, Default)]
pub struct KnownNames {
    /// Connection names.
    pub connections: BTreeSet<String>,
    /// Groups known besides those the document declares (e.g. the built-in
    /// identity provider's).
    pub groups: BTreeSet<String>,
    /// Workload service identities.
    pub services: BTreeSet<String>,
    /// Guardrail rule sets.
    pub guardrails: BTreeSet<String>,
    /// Masking rule sets.
    pub masking: BTreeSet<String>,
}

/// Every problem found in a document, each `FILE:LINE:COLUMN: message`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{}", .0.join("\n"))]
pub struct PolicyErrors(pub Vec<String>);

// ---------------------------------------------------------------------------
// Parsing and validation.
// ---------------------------------------------------------------------------

/// Problems found so far, each at a byte offset in one of the files.
struct Problems<'a> {
    /// `(label, text)` of every file, in document order.
    sources: &'a [(&'a str, &'a str)],
    /// The file the plain `at`/`span` refer to.
    file: usize,
    found: Vec<(usize, usize, String)>,
}

impl Problems<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.found.push((self.file, offset, message.into()));
    }
    fn span<T>(&mut self, value: &Spanned<T>, message: impl Into<String>) {
        self.at(value.span().start, message);
    }
    /// `FILE:LINE:COLUMN` of `offset` in file number `file`.
    fn position(&self, file: usize, offset: usize) -> String {
        let (label, text) = self.sources.get(file).copied().unwrap_or(("?", ""));
        let (line, col) = position(text, offset);
        format!("{label}:{line}:{col}")
    }
    fn finish(mut self) -> Result<(), PolicyErrors> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|(file, offset, _)| (*file, *offset));
        let found = std::mem::take(&mut self.found);
        Err(PolicyErrors(
            found
                .into_iter()
                .map(|(file, offset, m)| format!("{}: {m}", self.position(file, offset)))
                .collect(),
        ))
    }
}

fn parse_duration(
    p: &mut Problems<'_>,
    v: &Option<Spanned<String>>,
    what: &str,
) -> Option<Duration> {
    let v = v.as_ref()?;
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) if d.is_zero() => {
            p.span(v, format!("{what} must be longer than zero"));
            None
        }
        Ok(d) if d > LONGEST_GRANT => {
            p.span(
                v,
                format!("{what} {:?} is longer than the 7-day limit", v.get_ref()),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            p.span(
                v,
                format!(
                    "{what} {:?} is not a duration; expected e.g. \"30s\", \"15m\", \"1h\"",
                    v.get_ref()
                ),
            );
            None
        }
    }
}

fn parse_minute(p: &mut Problems<'_>, v: &Spanned<String>) -> Option<u16> {
    let parsed = v.get_ref().split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (h <= 24 && m < 60 && (h < 24 || m == 0) && v.get_ref().len() == 5).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        p.span(
            v,
            format!(
                "{:?} is not a time of day; expected \"HH:MM\", e.g. \"08:00\"",
                v.get_ref()
            ),
        );
    }
    parsed
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_days(p: &mut Problems<'_>, v: &Spanned<String>) -> Option<Vec<u8>> {
    let text = v.get_ref().trim().to_ascii_lowercase();
    if text == "*" {
        return Some((0..7).collect());
    }
    let day = |s: &str| {
        DAY_NAMES
            .iter()
            .position(|d| *d == s.trim())
            .map(|i| i as u8)
    };
    let mut days = BTreeSet::new();
    for part in text.split(',') {
        let ok = match part.split_once('-') {
            Some((a, b)) => match (day(a), day(b)) {
                (Some(a), Some(b)) if a <= b => {
                    days.extend(a..=b);
                    true
                }
                _ => false,
            },
            None => day(part).map(|d| days.insert(d)).is_some(),
        };
        if !ok {
            p.span(
                v,
                format!(
                    "{:?} is not a set of days; expected e.g. \"mon-fri\", \"sat,sun\" or \"*\"",
                    v.get_ref()
                ),
            );
            return None;
        }
    }
    Some(days.into_iter().collect())
}

impl PolicyDocument {
    /// Parses and validates `text`; `file` names it in messages.
    pub fn parse(file: &str, text: &str, known: &KnownNames) -> Result<Policy, PolicyErrors> {
        Self::parse_many(&[(file, text)], known)
    }

    /// Parses and validates a policy written as several files, given as
    /// `(label, text)` in document order (a directory's files sorted by
    /// name). The files are one document: `groups` and `admins` are the union
    /// of every file's, `rules` are the first file's, then the second's, and
    /// so on, and every check (names, duplicates, overlaps, `overrides`)
    /// runs across files. Each problem is reported as `LABEL:LINE:COLUMN`
    /// against the file it is in. `version` may appear in any file (it says
    /// which format that file is written in); no other setting is singular.
    pub fn parse_many(
        sources: &[(&str, &str)],
        known: &KnownNames,
    ) -> Result<Policy, PolicyErrors> {
        if sources.is_empty() {
            return Err(PolicyErrors(vec![
                "the policy has no files; it needs at least one".to_owned(),
            ]));
        }
        let mut docs = Vec::with_capacity(sources.len());
        let mut errors = Vec::new();
        for (file, text) in sources {
            match toml::from_str::<PolicyDocument>(text) {
                Ok(doc) => docs.push(doc),
                Err(e) => {
                    let at = e.span().map_or_else(
                        || (*file).to_owned(),
                        |s| {
                            let (line, col) = position(text, s.start);
                            format!("{file}:{line}:{col}")
                        },
                    );
                    errors.push(format!("{at}: {}", e.message().trim()));
                }
            }
        }
        if !errors.is_empty() {
            // A file that does not parse stops validation: its rules are
            // unknown, so cross-file checks would only mislead.
            return Err(PolicyErrors(errors));
        }
        validate(&docs, sources, known)
    }
}

fn validate(
    docs: &[PolicyDocument],
    sources: &[(&str, &str)],
    known: &KnownNames,
) -> Result<Policy, PolicyErrors> {
    let mut p = Problems {
        sources,
        file: 0,
        found: Vec::new(),
    };
    for (i, doc) in docs.iter().enumerate() {
        p.file = i;
        if let Some(v) = &doc.version
            && *v.get_ref() != POLICY_VERSION
        {
            p.span(
                v,
                format!(
                    "version {} is not supported; this broker reads version {POLICY_VERSION}",
                    v.get_ref()
                ),
            );
        }
    }
    let mut groups: BTreeSet<String> = known.groups.clone();
    // The declared groups and admins in document order; a name an
    // earlier file already listed is not repeated.
    let mut declared = Vec::new();
    let mut admins = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        p.file = i;
        let earlier: BTreeSet<String> = declared.iter().cloned().collect();
        for g in &doc.groups {
            if g.get_ref().trim().is_empty() {
                p.span(g, "a group name must not be empty");
            }
            groups.insert(g.get_ref().clone());
            if !earlier.contains(g.get_ref()) {
                declared.push(g.get_ref().clone());
            }
        }
        let earlier: BTreeSet<String> = admins.iter().cloned().collect();
        admins.extend(
            doc.admins
                .iter()
                .map(|g| g.get_ref().clone())
                .filter(|g| !earlier.contains(g)),
        );
    }
    let known_groups = |p: &mut Problems<'_>, list: &[Spanned<String>], what: &str| {
        for g in list {
            if !groups.contains(g.get_ref()) {
                p.span(
                    g,
                    format!(
                        "unknown group {:?} in {what}; declare it in `groups = [...]` at the top \
                             (known: {})",
                        g.get_ref(),
                        list_or_none(&groups)
                    ),
                );
            }
        }
    };
    for (i, doc) in docs.iter().enumerate() {
        p.file = i;
        known_groups(&mut p, &doc.admins, "admins");
    }

    // Every rule with the number of the file it is in, in document order.
    let rule_docs: Vec<(usize, &Spanned<RuleDoc>)> = docs
        .iter()
        .enumerate()
        .flat_map(|(i, doc)| doc.rules.iter().map(move |r| (i, r)))
        .collect();
    // Where each rule name was first defined: (file, offset).
    let mut names: std::collections::BTreeMap<String, (usize, usize)> =
        std::collections::BTreeMap::new();
    let mut rules = Vec::new();
    for &(file, rule) in &rule_docs {
        p.file = file;
        let r = rule.get_ref();
        let name = r.name.get_ref();
        if !is_name(name) {
            p.span(&r.name, format!("rule name {name:?} {NAME_RULE}"));
        } else if let Some(&(first_file, first_offset)) = names.get(name) {
            let first = p.position(first_file, first_offset);
            p.span(
                &r.name,
                format!("rule {name:?} is defined twice: first at {first}"),
            );
        } else {
            names.insert(name.clone(), (file, r.name.span().start));
        }
        if r.connections.is_empty() {
            p.span(
                rule,
                format!(
                    "rule {name:?}: `connections` must name at least one connection (or \"*\")"
                ),
            );
        }
        for c in &r.connections {
            if c.get_ref() != "*" && !known.connections.contains(c.get_ref()) {
                p.span(
                    c,
                    format!(
                        "rule {name:?}: unknown connection {:?} (known: {})",
                        c.get_ref(),
                        list_or_none(&known.connections)
                    ),
                );
            }
        }
        known_groups(&mut p, &r.groups, &format!("rule {name:?}"));
        for s in &r.services {
            if !known.services.contains(s.get_ref()) {
                p.span(
                        s,
                        format!(
                            "rule {name:?}: unknown workload service {:?} (known from [[identity.workload.rules]]: {})",
                            s.get_ref(),
                            list_or_none(&known.services)
                        ),
                    );
            }
        }
        for u in &r.users {
            if u.get_ref().trim().is_empty() {
                p.span(u, "a user name must not be empty");
            }
        }
        if r.groups.is_empty() && r.users.is_empty() && r.services.is_empty() {
            p.span(
                &r.name,
                format!("rule {name:?} matches nobody: add groups, users or services"),
            );
        }
        let access = *r.access.get_ref();
        let mut approvers = Approvers::default();
        let mut approvals = 0;
        if access == Access::Approval {
            match &r.approvers {
                None => p.span(
                    &r.access,
                    format!("rule {name:?}: access = \"approval\" needs `approvers`"),
                ),
                Some(a) => {
                    known_groups(
                        &mut p,
                        &a.get_ref().groups,
                        &format!("rule {name:?} approvers"),
                    );
                    approvers = Approvers {
                        groups: a
                            .get_ref()
                            .groups
                            .iter()
                            .map(|g| g.get_ref().clone())
                            .collect(),
                        users: a
                            .get_ref()
                            .users
                            .iter()
                            .map(|u| u.get_ref().clone())
                            .collect(),
                    };
                    if approvers.groups.is_empty() && approvers.users.is_empty() {
                        p.span(a, format!("rule {name:?}: approvers names nobody"));
                    }
                }
            }
            approvals = r.approvals.as_ref().map_or(1, |a| *a.get_ref());
            if approvals == 0
                && let Some(a) = &r.approvals
            {
                p.span(a, format!("rule {name:?}: approvals must be at least 1"));
            }
        } else {
            if let Some(a) = &r.approvers {
                p.span(
                    a,
                    format!("rule {name:?}: approvers only apply to access = \"approval\""),
                );
            }
            if let Some(a) = &r.approvals {
                p.span(
                    a,
                    format!("rule {name:?}: approvals only apply to access = \"approval\""),
                );
            }
        }
        if access == Access::Deny {
            for (v, what) in [
                (&r.default_duration, "default_duration"),
                (&r.max_duration, "max_duration"),
            ] {
                if let Some(v) = v {
                    p.span(
                        v,
                        format!("rule {name:?}: {what} does not apply to access = \"deny\""),
                    );
                }
            }
        }
        let max =
            parse_duration(&mut p, &r.max_duration, "max_duration").unwrap_or(DEFAULT_MAX_DURATION);
        let default = parse_duration(&mut p, &r.default_duration, "default_duration")
            .unwrap_or_else(|| match access {
                Access::Approval => DEFAULT_APPROVAL_DURATION.min(max),
                _ => max,
            });
        if default > max
            && let Some(v) = &r.default_duration
        {
            p.span(
                v,
                format!("rule {name:?}: default_duration is longer than max_duration"),
            );
        }
        let mut windows = Vec::new();
        for w in &r.windows {
            let wd = w.get_ref();
            let days = parse_days(&mut p, &wd.days);
            let from = parse_minute(&mut p, &wd.from);
            let to = parse_minute(&mut p, &wd.to);
            let tz_ok = jiff::tz::TimeZone::get(wd.timezone.get_ref()).is_ok();
            if !tz_ok {
                p.span(
                        &wd.timezone,
                        format!("{:?} is not a time zone; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"", wd.timezone.get_ref()),
                    );
            }
            if let (Some(days), Some(from), Some(to)) = (days, from, to) {
                if from == to {
                    p.span(&wd.to, "a window must not start and end at the same time");
                }
                windows.push(Window {
                    days,
                    from_minute: from,
                    to_minute: to,
                    timezone: wd.timezone.get_ref().clone(),
                    text: format!(
                        "{} {}-{} {}",
                        wd.days.get_ref(),
                        wd.from.get_ref(),
                        wd.to.get_ref(),
                        wd.timezone.get_ref()
                    ),
                });
            }
        }
        for (list, set, what) in [
            (&r.guardrails, &known.guardrails, "guardrail rule set"),
            (&r.masking, &known.masking, "masking rule set"),
        ] {
            for v in list {
                if !set.contains(v.get_ref()) {
                    p.span(
                        v,
                        format!(
                            "rule {name:?}: unknown {what} {:?} (known: {})",
                            v.get_ref(),
                            list_or_none(set)
                        ),
                    );
                }
            }
        }
        rules.push(Rule {
            name: name.clone(),
            connections: r.connections.iter().map(|c| c.get_ref().clone()).collect(),
            groups: r.groups.iter().map(|g| g.get_ref().clone()).collect(),
            users: r.users.iter().map(|u| u.get_ref().clone()).collect(),
            services: r.services.iter().map(|s| s.get_ref().clone()).collect(),
            access,
            justification: r.justification.as_ref().is_some_and(|j| *j.get_ref()),
            approvers,
            approvals,
            default_duration_secs: default.as_secs(),
            max_duration_secs: max.as_secs(),
            windows,
            guardrails: r.guardrails.iter().map(|g| g.get_ref().clone()).collect(),
            masking: r.masking.iter().map(|m| m.get_ref().clone()).collect(),
        });
    }
    check_overlaps(&mut p, &rules, &rule_docs, known);
    p.finish()?;
    Ok(Policy {
        groups: declared,
        admins,
        rules,
    })
}

/// Two rules that can match the same identity on the same connection and
/// decide differently: the order silently picks the outcome. That is refused
/// unless the earlier rule says `overrides = ["later"]`. Rules are in
/// document order across files, so this holds across files too.
fn check_overlaps(
    p: &mut Problems<'_>,
    rules: &[Rule],
    rule_docs: &[(usize, &Spanned<RuleDoc>)],
    known: &KnownNames,
) {
    let expand = |r: &Rule| -> BTreeSet<String> {
        if r.connections.iter().any(|c| c == "*") {
            known.connections.clone()
        } else {
            r.connections.iter().cloned().collect()
        }
    };
    for (i, (a, &(a_file, a_doc))) in rules.iter().zip(rule_docs).enumerate() {
        p.file = a_file;
        let declared: BTreeSet<&str> = a_doc
            .get_ref()
            .overrides
            .iter()
            .map(|o| o.get_ref().as_str())
            .collect();
        for o in &a_doc.get_ref().overrides {
            let later = rules.iter().skip(i + 1).any(|r| &r.name == o.get_ref());
            if !later {
                p.span(
                    o,
                    format!(
                        "rule {:?}: overrides names {:?}, which is not a later rule",
                        a.name,
                        o.get_ref()
                    ),
                );
            }
        }
        for (b, &(b_file, b_doc)) in rules.iter().zip(rule_docs).skip(i + 1) {
            let same_outcome = a.access == b.access
                && a.approvers == b.approvers
                && a.approvals == b.approvals
                && a.justification == b.justification
                && a.max_duration_secs == b.max_duration_secs
                && a.default_duration_secs == b.default_duration_secs
                && a.guardrails == b.guardrails
                && a.masking == b.masking;
            if same_outcome || declared.contains(b.name.as_str()) {
                continue;
            }
            let connections: Vec<_> = expand(a).intersection(&expand(b)).cloned().collect();
            let mut shared: Vec<String> = Vec::new();
            shared.extend(
                a.groups
                    .iter()
                    .filter(|g| b.groups.contains(g))
                    .map(|g| format!("group {g}")),
            );
            shared.extend(
                a.users
                    .iter()
                    .filter(|u| b.users.contains(u))
                    .map(|u| format!("user {u}")),
            );
            shared.extend(
                a.services
                    .iter()
                    .filter(|s| b.services.contains(s))
                    .map(|s| format!("service {s}")),
            );
            if connections.is_empty() || shared.is_empty() {
                continue;
            }
            // Across files, say where the other rule is.
            let elsewhere = if b_file == a_file {
                String::new()
            } else {
                format!(
                    " (at {})",
                    p.position(b_file, b_doc.get_ref().name.span().start)
                )
            };
            p.span(
                    &a_doc.get_ref().name,
                    format!(
                        "rules {:?} and {:?}{elsewhere} both match {} on {} and decide differently, so their order \
                         decides; narrow one of them, or add overrides = [{:?}] to {:?} if that is intended",
                        a.name,
                        b.name,
                        shared.join(", "),
                        connections.join(", "),
                        b.name,
                        a.name
                    ),
                );
        }
    }
}

fn list_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------
// A policy written as several files (a directory).
// ---------------------------------------------------------------------------

/// Largest policy document accepted, all files together (bytes).
pub const MAX_POLICY_LEN: usize = 1024 * 1024;
/// Most files a policy directory may hold.
pub const MAX_POLICY_FILES: usize = 256;
/// The name a one-file policy takes when it is written into a directory
/// (`hoopctl policy get --out-dir`) or compared file by file with one.
pub const SINGLE_FILE_NAME: &str = "policy.toml";
/// What [`check_file_name`] accepts, for messages.
pub const FILE_NAME_RULE: &str = "a policy file name is 1-100 characters of A-Z, a-z, 0-9, \
     '-', '_' and '.', does not start with '.', and ends with \".toml\"";

/// One file of a policy kept as a directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// File name without any directory, e.g. `10-base.toml`.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// A policy document as written: one file, or the `*.toml` files of a
/// directory in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// One TOML document.
    Single(String),
    /// Several files, sorted by name (see [`PolicySource::files`]).
    Files(Vec<PolicyFile>),
}

/// Refuses names that could escape a directory, hide, or read ambiguously
/// in a `# file: NAME` header: the names come from the broker or a request
/// and `hoopctl policy get --out-dir` writes files under them.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.len() > ".toml".len()
        && name.ends_with(".toml")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a policy file name: {FILE_NAME_RULE}"
        ))
    }
}

impl PolicySource {
    /// Several files as one document: names checked, sorted by name (byte
    /// order, as `LC_ALL=C ls` lists them), no name twice, at most
    /// [`MAX_POLICY_FILES`] files and [`MAX_POLICY_LEN`] bytes together.
    pub fn files(mut files: Vec<PolicyFile>) -> Result<PolicySource, PolicyErrors> {
        let mut errors: Vec<String> = files
            .iter()
            .filter_map(|f| check_file_name(&f.name).err())
            .collect();
        if files.is_empty() {
            errors.push("the policy has no files; it needs at least one".to_owned());
        }
        if files.len() > MAX_POLICY_FILES {
            errors.push(format!(
                "the policy has {} files; at most {MAX_POLICY_FILES} are accepted",
                files.len()
            ));
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in files.windows(2) {
            if let [a, b] = pair
                && a.name == b.name
            {
                errors.push(format!("the file {:?} is given twice", a.name));
            }
        }
        let source = PolicySource::Files(files);
        if source.len() > MAX_POLICY_LEN {
            errors.push(format!(
                "the document is larger than {} KiB",
                MAX_POLICY_LEN / 1024
            ));
        }
        if errors.is_empty() {
            Ok(source)
        } else {
            Err(PolicyErrors(errors))
        }
    }

    /// Parses and validates the document. `label` names it in messages: a
    /// single file's label as is (default `policy.toml`), files as
    /// `LABEL/NAME` (just `NAME` without a label).
    pub fn parse(&self, label: Option<&str>, known: &KnownNames) -> Result<Policy, PolicyErrors> {
        match self {
            PolicySource::Single(text) => {
                PolicyDocument::parse(label.unwrap_or(SINGLE_FILE_NAME), text, known)
            }
            PolicySource::Files(files) => {
                let labels: Vec<String> = files
                    .iter()
                    .map(|f| match label {
                        Some(dir) => format!("{}/{}", dir.trim_end_matches('/'), f.name),
                        None => f.name.clone(),
                    })
                    .collect();
                let sources: Vec<(&str, &str)> = labels
                    .iter()
                    .zip(files)
                    .map(|(l, f)| (l.as_str(), f.text.as_str()))
                    .collect();
                PolicyDocument::parse_many(&sources, known)
            }
        }
    }

    /// The files as `(name, text)`; a single document is one file named
    /// [`SINGLE_FILE_NAME`].
    pub fn named_files(&self) -> Vec<(&str, &str)> {
        match self {
            PolicySource::Single(text) => vec![(SINGLE_FILE_NAME, text.as_str())],
            PolicySource::Files(files) => files
                .iter()
                .map(|f| (f.name.as_str(), f.text.as_str()))
                .collect(),
        }
    }

    /// Bytes of text, all files together.
    pub fn len(&self) -> usize {
        match self {
            PolicySource::Single(text) => text.len(),
            PolicySource::Files(files) => files.iter().map(|f| f.text.len()).sum(),
        }
    }

    /// True when there is no text at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document as `hoopctl policy get` prints it: a single file as
    /// is; files each under a `# file: NAME` line (a TOML comment), each
    /// ending in a newline.
    pub fn display_text(&self) -> String {
        match self {
            PolicySource::Single(text) => text.clone(),
            PolicySource::Files(files) => {
                let mut out = String::new();
                for f in files {
                    out.push_str(&format!("# file: {}\n", f.name));
                    out.push_str(&f.text);
                    if !f.text.is_empty() && !f.text.ends_with('\n') {
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

/// Why a policy directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyDirError {
    /// Listing the directory or reading a file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// No `*.toml` file in the directory.
    #[error(
        "{} holds no *.toml files; a policy directory needs at least one (other files are ignored)",
        dir.display()
    )]
    Empty {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// A `*.toml` file whose name is not accepted, or too many or too large files.
    #[error("{}: {message}", dir.display())]
    Invalid {
        /// The directory.
        dir: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads a policy directory: every regular file (or link to one) whose name
/// ends in `.toml`, sorted by name. Hidden files (`.name`) and everything
/// else are ignored; subdirectories are not read. The result is checked as
/// [`PolicySource::files`] checks.
pub fn read_dir(dir: &std::path::Path) -> Result<PolicySource, PolicyDirError> {
    use std::io::Read as _;
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| PolicyDirError::Io { path, source }
    };
    let invalid = |message: String| PolicyDirError::Invalid {
        dir: dir.to_path_buf(),
        message,
    };
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            if name.to_string_lossy().ends_with(".toml") {
                return Err(invalid(format!(
                    "{:?} is not a policy file name: not UTF-8",
                    name
                )));
            }
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        // Follows links, so a link to a file counts as the file.
        if !std::fs::metadata(&path).map_err(io(&path))?.is_file() {
            continue;
        }
        check_file_name(name).map_err(invalid)?;
        if files.len() >= MAX_POLICY_FILES {
            return Err(invalid(format!(
                "more than {MAX_POLICY_FILES} *.toml files; a policy directory holds at most that many"
            )));
        }
        let mut text = String::new();
        let left = (MAX_POLICY_LEN as u64).saturating_sub(total);
        std::fs::File::open(&path)
            .and_then(|f| f.take(left + 1).read_to_string(&mut text))
            .map_err(io(&path))?;
        total += text.len() as u64;
        if total > MAX_POLICY_LEN as u64 {
            return Err(invalid(format!(
                "the *.toml files together are larger than {} KiB",
                MAX_POLICY_LEN / 1024
            )));
        }
        files.push(PolicyFile {
            name: name.to_owned(),
            text,
        });
    }
    if files.is_empty() {
        return Err(PolicyDirError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    PolicySource::files(files).map_err(|e| invalid(e.0.join("; ")))
}

// ---------------------------------------------------------------------------
// Evaluation.
// ---------------------------------------------------------------------------

/// The identity a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// User (or service) name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// True for a workload identity (matched by `services`, not `users`).
    pub workload: bool,
}

/// The decision for one identity on one connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
    /// What happens.
    pub outcome: Outcome,
    /// The rule that decided; `None` when no rule matched (default deny).
    pub rule: Option<String>,
    /// Why, in words.
    pub explanation: String,
}

/// What a decision allows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "access", rename_all = "snake_case")]
pub enum Outcome {
    /// Connect now.
    Allow {
        /// Whether a justification must be given.
        justification: bool,
        /// Longest session, seconds.
        max_duration_secs: u64,
        /// Guardrail sets.
        guardrails: Vec<String>,
        /// Masking sets.
        masking: Vec<String>,
    },
    /// Refused.
    Deny,
    /// Connect after approvals.
    Approval {
        /// Whether a justification must be given.
        justification: bool,
        /// Who may approve.
        approvers: Approvers,
        /// Distinct approvals needed.
        approvals: u32,
        /// Grant when none is asked for, seconds.
        default_duration_secs: u64,
        /// Longest grant, seconds.
        max_duration_secs: u64,
        /// Guardrail sets.
        guardrails: Vec<String>,
        /// Masking sets.
        masking: Vec<String>,
    },
}

impl Window {
    /// True when `at` falls inside the window (in its time zone).
    pub fn contains(&self, at: jiff::Timestamp) -> bool {
        let Ok(tz) = jiff::tz::TimeZone::get(&self.timezone) else {
            return false;
        };
        let local = at.to_zoned(tz);
        let minute = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        let day = local.weekday().to_monday_zero_offset() as u8;
        if self.from_minute < self.to_minute {
            self.days.contains(&day) && minute >= self.from_minute && minute < self.to_minute
        } else {
            // Overnight: the part after midnight belongs to the previous day's window.
            let previous = (day + 6) % 7;
            (self.days.contains(&day) && minute >= self.from_minute)
                || (self.days.contains(&previous) && minute < self.to_minute)
        }
    }
}

impl Rule {
    /// Workloads match by service name or by the groups their workload rule
    /// gives them; people by user name or group. A person never matches a
    /// `services` entry and a workload never matches a `users` entry, so a
    /// name shared by both cannot cross over.
    fn matches_subject(&self, who: &Subject) -> bool {
        let by_name = if who.workload {
            self.services.contains(&who.user)
        } else {
            self.users.contains(&who.user)
        };
        by_name || who.groups.iter().any(|g| self.groups.contains(g))
    }

    fn matches_connection(&self, connection: &str) -> bool {
        self.connections.iter().any(|c| c == "*" || c == connection)
    }
}

impl Policy {
    /// Decides access of `who` to `connection` at `now`.
    pub fn evaluate(&self, who: &Subject, connection: &str, now: jiff::Timestamp) -> Decision {
        let mut closed_windows = Vec::new();
        for rule in &self.rules {
            if !rule.matches_subject(who) || !rule.matches_connection(connection) {
                continue;
            }
            if !rule.windows.is_empty() && !rule.windows.iter().any(|w| w.contains(now)) {
                closed_windows.push(format!(
                    "rule {:?} applies only {}",
                    rule.name,
                    rule.windows
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
                continue;
            }
            let (outcome, what) = match rule.access {
                Access::Allow => (
                    Outcome::Allow {
                        justification: rule.justification,
                        max_duration_secs: rule.max_duration_secs,
                        guardrails: rule.guardrails.clone(),
                        masking: rule.masking.clone(),
                    },
                    "allows".to_owned(),
                ),
                Access::Deny => (Outcome::Deny, "denies".to_owned()),
                Access::Approval => (
                    Outcome::Approval {
                        justification: rule.justification,
                        approvers: rule.approvers.clone(),
                        approvals: rule.approvals,
                        default_duration_secs: rule.default_duration_secs,
                        max_duration_secs: rule.max_duration_secs,
                        guardrails: rule.guardrails.clone(),
                        masking: rule.masking.clone(),
                    },
                    format!(
                        "requires {} approval{} from {}",
                        rule.approvals,
                        if rule.approvals == 1 { "" } else { "s" },
                        rule.approvers.describe()
                    ),
                ),
            };
            return Decision {
                outcome,
                rule: Some(rule.name.clone()),
                explanation: format!("rule {:?} {what} {} on {connection}", rule.name, who.user),
            };
        }
        let mut explanation = format!(
            "no rule gives {} access to {connection} (default deny)",
            who.user
        );
        if !closed_windows.is_empty() {
            explanation.push_str(&format!("; {}", closed_windows.join("; ")));
        }
        Decision {
            outcome: Outcome::Deny,
            rule: None,
            explanation,
        }
    }

    /// True when `who` may change the policy.
    pub fn is_admin(&self, who: &Subject) -> bool {
        !who.workload && who.groups.iter().any(|g| self.admins.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownNames {
        KnownNames {
            connections: ["pg-prod", "pg-staging"].map(String::from).into(),
            groups: BTreeSet::new(),
            services: ["api-deploy"].map(String::from).into(),
            guardrails: ["no-destructive"].map(String::from).into(),
            masking: BTreeSet::new(),
        }
    }

    const GOOD: &str = r#"
groups = ["engineering", "sre", "admins", "contractors"]
admins = ["admins"]

[[rules]]
name = "contractors-never-prod"
connections = ["pg-prod"]
groups = ["contractors"]
access = "deny"

[[rules]]
name = "engineering-prod-jit"
connections = ["pg-prod"]
groups = ["engineering"]
access = "approval"
justification = true
approvers = { groups = ["sre"] }
approvals = 2
default_duration = "15m"
max_duration = "1h"
guardrails = ["no-destructive"]

[[rules]]
name = "engineering-staging"
connections = ["pg-staging"]
groups = ["engineering"]
access = "allow"
windows = [{ days = "mon-fri", from = "08:00", to = "20:00", timezone = "Europe/Berlin" }]

[[rules]]
name = "ci-deploys"
connections = ["*"]
services = ["api-deploy"]
access = "allow"
max_duration = "10m"
"#;

    fn parse(text: &str) -> Result<Policy, Vec<String>> {
        PolicyDocument::parse("policy.toml", text, &known()).map_err(|e| e.0)
    }

    fn person(user: &str, groups: &[&str]) -> Subject {
        Subject {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            workload: false,
        }
    }

    /// 2026-11-23 is a Monday.
    fn at(rfc3339: &str) -> jiff::Timestamp {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn first_matching_rule_decides_and_is_named() {
        let p = parse(GOOD).unwrap();
        let noon = at("2026-11-23T11:00:00Z");
        let d = p.evaluate(&person("alice", &["engineering"]), "pg-prod", noon);
        assert_eq!(d.rule.as_deref(), Some("engineering-prod-jit"));
        let Outcome::Approval {
            approvals,
            approvers,
            default_duration_secs,
            justification,
            ..
        } = d.outcome
        else {
            panic!("{d:?}")
        };
        assert_eq!(
            (approvals, default_duration_secs, justification),
            (2, 900, true)
        );
        assert!(approvers.includes(&person("bob", &["sre"])));
        assert!(
            d.explanation
                .contains("requires 2 approvals from group sre"),
            "{}",
            d.explanation
        );

        let d = p.evaluate(
            &person("eve", &["contractors", "engineering"]),
            "pg-prod",
            noon,
        );
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(d.rule.as_deref(), Some("contractors-never-prod"));

        let d = p.evaluate(&person("mallory", &["marketing"]), "pg-prod", noon);
        assert_eq!((d.outcome, d.rule), (Outcome::Deny, None));
    }

    #[test]
    fn windows_apply_in_their_time_zone() {
        let p = parse(GOOD).unwrap();
        let alice = person("alice", &["engineering"]);
        // 07:30 UTC on a Monday is 08:30 in Berlin: open.
        assert!(matches!(
            p.evaluate(&alice, "pg-staging", at("2026-11-23T07:30:00Z"))
                .outcome,
            Outcome::Allow { .. }
        ));
        // 06:30 UTC is 07:30 in Berlin: closed, and the reason says so.
        let d = p.evaluate(&alice, "pg-staging", at("2026-11-23T06:30:00Z"));
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(
            d.explanation.contains("mon-fri 08:00-20:00 Europe/Berlin"),
            "{}",
            d.explanation
        );
        // Saturday noon: closed.
        assert_eq!(
            p.evaluate(&alice, "pg-staging", at("2026-11-28T11:00:00Z"))
                .outcome,
            Outcome::Deny
        );
    }

    #[test]
    fn workloads_match_services_and_groups_never_users() {
        let p = parse(GOOD).unwrap();
        let ci = Subject {
            user: "api-deploy".into(),
            groups: vec![],
            workload: true,
        };
        let d = p.evaluate(&ci, "pg-staging", at("2026-11-28T11:00:00Z"));
        assert_eq!(d.rule.as_deref(), Some("ci-deploys"));
        // A person who happens to be called like the service gets nothing from it.
        let d = p.evaluate(
            &person("api-deploy", &[]),
            "pg-staging",
            at("2026-11-23T11:00:00Z"),
        );
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(!p.is_admin(&Subject {
            user: "x".into(),
            groups: vec!["admins".into()],
            workload: true
        }));
        assert!(p.is_admin(&person("carol", &["admins"])));
    }

    #[test]
    fn unknown_keys_and_names_are_reported_with_positions_all_at_once() {
        let bad = GOOD
            .replace("approvals = 2", "aprovals = 2")
            .replace("groups = [\"contractors\"]", "groups = [\"contractorz\"]");
        let errs = parse(&bad).unwrap_err();
        assert_eq!(errs.len(), 1, "a TOML schema error stops parsing: {errs:?}");
        assert!(
            errs[0].starts_with("policy.toml:18:1: unknown field `aprovals`"),
            "{errs:?}"
        );

        let bad = GOOD
            .replace("groups = [\"contractors\"]", "groups = [\"contractorz\"]")
            .replace(
                "connections = [\"pg-staging\"]",
                "connections = [\"pg-stagin\"]",
            )
            .replace(
                "timezone = \"Europe/Berlin\"",
                "timezone = \"Mars/Olympus\"",
            )
            .replace(
                "guardrails = [\"no-destructive\"]",
                "guardrails = [\"no-destructiv\"]",
            );
        let errs = parse(&bad).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(
            errs[0].starts_with("policy.toml:8:11: unknown group \"contractorz\""),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("unknown guardrail rule set \"no-destructiv\""),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains("unknown connection \"pg-stagin\" (known: pg-prod, pg-staging)"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].contains("\"Mars/Olympus\" is not a time zone"),
            "{}",
            errs[3]
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let cases = [
            (
                GOOD.replace("approvers = { groups = [\"sre\"] }\n", ""),
                "needs `approvers`",
            ),
            (
                GOOD.replace("default_duration = \"15m\"", "default_duration = \"2h\""),
                "longer than max_duration",
            ),
            (
                GOOD.replace(
                    "access = \"deny\"",
                    "access = \"deny\"\nmax_duration = \"1h\"",
                ),
                "does not apply to access = \"deny\"",
            ),
            (GOOD.replace("approvals = 2", "approvals = 0"), "at least 1"),
            (
                GOOD.replace("max_duration = \"10m\"", "max_duration = \"8d\""),
                "7-day limit",
            ),
            (
                GOOD.replace("from = \"08:00\"", "from = \"8am\""),
                "not a time of day",
            ),
            (
                GOOD.replace("days = \"mon-fri\"", "days = \"fri-mon\""),
                "not a set of days",
            ),
            (
                GOOD.replace("name = \"ci-deploys\"", "name = \"engineering-staging\""),
                "defined twice",
            ),
            (
                GOOD.replace("services = [\"api-deploy\"]", "services = [\"api-deplo\"]"),
                "unknown workload service",
            ),
            (
                GOOD.replace("admins = [\"admins\"]", "admins = [\"admin\"]"),
                "unknown group \"admin\" in admins",
            ),
        ];
        for (text, expected) in cases {
            let errs = parse(&text).unwrap_err();
            assert!(
                errs.iter().any(|e| e.contains(expected)),
                "{expected}: {errs:#?}"
            );
        }
    }

    #[test]
    fn overlapping_rules_whose_order_matters_need_an_explicit_override() {
        let overlapping = format!(
            "{GOOD}\n[[rules]]\nname = \"engineering-all\"\nconnections = [\"*\"]\ngroups = [\"engineering\"]\naccess = \"allow\"\n"
        );
        let errs = parse(&overlapping).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("rules \"engineering-prod-jit\" and \"engineering-all\" both match group engineering on pg-prod"),
            "{}",
            errs[0]
        );
        assert!(errs[0].starts_with("policy.toml:12:8:"), "{}", errs[0]);
        // Declaring the precedence resolves it. (engineering-staging overlaps
        // engineering-all too, but both allow: the order changes nothing.)
        let resolved = overlapping.replace(
            "name = \"engineering-prod-jit\"",
            "name = \"engineering-prod-jit\"\noverrides = [\"engineering-all\"]",
        );
        let p = parse(&resolved).unwrap();
        let d = p.evaluate(
            &person("alice", &["engineering"]),
            "pg-prod",
            at("2026-11-23T11:00:00Z"),
        );
        assert_eq!(d.rule.as_deref(), Some("engineering-prod-jit"));
        // An override must name a later rule.
        let wrong = resolved.replace(
            "overrides = [\"engineering-all\"]",
            "overrides = [\"contractors-never-prod\"]",
        );
        assert!(
            parse(&wrong)
                .unwrap_err()
                .iter()
                .any(|e| e.contains("not a later rule"))
        );
    }

    fn files(list: &[(&str, &str)]) -> PolicySource {
        PolicySource::files(
            list.iter()
                .map(|(name, text)| PolicyFile {
                    name: (*name).into(),
                    text: (*text).into(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn files_merge_in_name_order_into_one_policy() {
        let base = "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n\n\
                    [[rules]]\nname = \"sre-all\"\nconnections = [\"*\"]\ngroups = [\"sre\"]\naccess = \"allow\"\n";
        // The second file uses a group only the first declares, and adds its own.
        let team = "version = 1\ngroups = [\"contractors\", \"sre\"]\nadmins = [\"contractors\"]\n\n\
                    [[rules]]\nname = \"engineering-staging\"\nconnections = [\"pg-staging\"]\n\
                    groups = [\"engineering\"]\naccess = \"allow\"\n";
        // Given in any order, the files are read in name order.
        let source = files(&[("20-team.toml", team), ("10-base.toml", base)]);
        assert_eq!(
            source.named_files().iter().map(|f| f.0).collect::<Vec<_>>(),
            ["10-base.toml", "20-team.toml"]
        );
        let p = source.parse(Some("policy.d"), &known()).unwrap();
        assert_eq!(p.groups, ["engineering", "sre", "contractors"]);
        assert_eq!(p.admins, ["sre", "contractors"]);
        assert_eq!(
            p.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["sre-all", "engineering-staging"]
        );
        let d = p.evaluate(
            &person("alice", &["engineering"]),
            "pg-staging",
            at("2026-11-28T11:00:00Z"),
        );
        assert_eq!(d.rule.as_deref(), Some("engineering-staging"));
        // What `policy get` prints: each file under its header.
        assert_eq!(
            source.display_text(),
            format!("# file: 10-base.toml\n{base}# file: 20-team.toml\n{team}")
        );
        // One file parses exactly as `parse` does.
        assert_eq!(
            PolicySource::Single(GOOD.into()).parse(None, &known()),
            PolicyDocument::parse("policy.toml", GOOD, &known())
        );
    }

    #[test]
    fn errors_name_the_file_they_are_in() {
        let good = "groups = [\"engineering\", \"sre\"]\n";
        let bad_key = "groups = [\"x\"]\n\n[[rules]]\nname = \"r\"\nconections = []\n";
        let broken = "groups = [\n";
        let errs = files(&[("a.toml", good), ("b.toml", bad_key), ("c.toml", broken)])
            .parse(Some("dir/"), &known())
            .unwrap_err()
            .0;
        // Every file that does not parse is reported, each against itself.
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].starts_with("dir/b.toml:5:1: unknown field `conections`"),
            "{errs:#?}"
        );
        assert!(errs[1].starts_with("dir/c.toml:"), "{errs:#?}");

        // Validation problems too, sorted by file and position.
        let a = "groups = [\"engineering\"]\nadmins = [\"sre\"]\n";
        let b = "\n[[rules]]\nname = \"r\"\nconnections = [\"pg-prdo\"]\ngroups = [\"engineering\"]\naccess = \"allow\"\n";
        let errs = files(&[("b.toml", b), ("a.toml", a)])
            .parse(None, &known())
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].starts_with("a.toml:2:11: unknown group \"sre\" in admins"),
            "{errs:#?}"
        );
        assert!(
            errs[1].starts_with("b.toml:4:16: rule \"r\": unknown connection \"pg-prdo\""),
            "{errs:#?}"
        );
    }

    #[test]
    fn a_rule_name_defined_in_two_files_names_both() {
        let rule = |access: &str| {
            format!(
                "groups = [\"engineering\"]\n\n[[rules]]\nname = \"eng\"\nconnections = [\"pg-prod\"]\n\
                 groups = [\"engineering\"]\naccess = \"{access}\"\n"
            )
        };
        let (a, b) = (rule("allow"), format!("# team file\n{}", rule("allow")));
        let errs = files(&[("10-base.toml", &a), ("20-team.toml", &b)])
            .parse(Some("policy.d"), &known())
            .unwrap_err()
            .0;
        assert_eq!(
            errs,
            [
                "policy.d/20-team.toml:5:8: rule \"eng\" is defined twice: first at policy.d/10-base.toml:4:8"
            ]
        );
    }

    #[test]
    fn overlaps_and_overrides_work_across_files() {
        let a = "groups = [\"engineering\"]\n\n[[rules]]\nname = \"eng-prod\"\nconnections = [\"pg-prod\"]\n\
                 groups = [\"engineering\"]\naccess = \"deny\"\n";
        let b = "[[rules]]\nname = \"eng-all\"\nconnections = [\"*\"]\ngroups = [\"engineering\"]\naccess = \"allow\"\n";
        let errs = files(&[("a.toml", a), ("b.toml", b)])
            .parse(None, &known())
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with(
                "a.toml:4:8: rules \"eng-prod\" and \"eng-all\" (at b.toml:2:8) both match group engineering on pg-prod"
            ),
            "{errs:#?}"
        );
        // The earlier file's rule may override the later file's.
        let a2 = a.replace(
            "access = \"deny\"",
            "access = \"deny\"\noverrides = [\"eng-all\"]",
        );
        let p = files(&[("a.toml", &a2), ("b.toml", b)])
            .parse(None, &known())
            .unwrap();
        assert_eq!(p.rules.len(), 2);
        // But a later file's rule cannot override an earlier one: order is file order.
        let b2 = b.replace(
            "access = \"allow\"",
            "access = \"allow\"\noverrides = [\"eng-prod\"]",
        );
        let errs = files(&[("a.toml", a), ("b.toml", &b2)])
            .parse(None, &known())
            .unwrap_err()
            .0;
        assert!(
            errs.iter()
                .any(|e| e.starts_with("b.toml:6:14:") && e.contains("not a later rule")),
            "{errs:#?}"
        );
    }

    #[test]
    fn file_lists_are_checked_before_parsing() {
        let bad = |list: Vec<(&str, &str)>| {
            PolicySource::files(
                list.into_iter()
                    .map(|(n, t)| PolicyFile {
                        name: n.into(),
                        text: t.into(),
                    })
                    .collect(),
            )
            .unwrap_err()
            .0
            .join("\n")
        };
        assert!(bad(vec![]).contains("no files"));
        for name in [
            "../x.toml",
            "a/b.toml",
            ".hidden.toml",
            "x.yaml",
            ".toml",
            "a b.toml",
        ] {
            assert!(
                bad(vec![(name, "")]).contains("is not a policy file name"),
                "{name}"
            );
        }
        assert!(bad(vec![("a.toml", ""), ("a.toml", "")]).contains("given twice"));
        let big = "#".repeat(MAX_POLICY_LEN / 2 + 1);
        assert!(bad(vec![("a.toml", &big), ("b.toml", &big)]).contains("larger than"));
        assert!(check_file_name("10-Base_v2.toml").is_ok());
    }

    #[test]
    fn a_directory_is_its_toml_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("holds no *.toml files"), "{e}");
        std::fs::write(dir.path().join("20-b.toml"), "b").unwrap();
        std::fs::write(dir.path().join("10-a.toml"), "a").unwrap();
        std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
        std::fs::write(dir.path().join(".10-a.toml.swp"), "ignored").unwrap();
        std::fs::write(dir.path().join(".#lock.toml"), "ignored").unwrap();
        std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
        let source = read_dir(dir.path()).unwrap();
        assert_eq!(
            source.named_files(),
            [("10-a.toml", "a"), ("20-b.toml", "b")]
        );
        std::fs::write(dir.path().join("bad name.toml"), "").unwrap();
        let e = read_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("\"bad name.toml\" is not a policy file name"),
            "{e}"
        );
    }

    #[test]
    fn overnight_windows_wrap_past_midnight() {
        let w = Window {
            days: vec![4], // Friday
            from_minute: 22 * 60,
            to_minute: 2 * 60,
            timezone: "UTC".into(),
            text: String::new(),
        };
        assert!(w.contains(at("2026-11-27T23:00:00Z"))); // Friday 23:00
        assert!(w.contains(at("2026-11-28T01:00:00Z"))); // Saturday 01:00 (Friday's night)
        assert!(!w.contains(at("2026-11-28T23:00:00Z"))); // Saturday 23:00
    }
}
