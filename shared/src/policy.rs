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

struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<(usize, String)>,
}

impl Problems<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.found.push((offset, message.into()));
    }
    fn span<T>(&mut self, value: &Spanned<T>, message: impl Into<String>) {
        self.at(value.span().start, message);
    }
    fn finish(mut self) -> Result<(), PolicyErrors> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|(offset, _)| *offset);
        Err(PolicyErrors(
            self.found
                .into_iter()
                .map(|(offset, m)| {
                    let (line, col) = position(self.text, offset);
                    format!("{}:{line}:{col}: {m}", self.file)
                })
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
        let doc: PolicyDocument = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or_else(
                || file.to_owned(),
                |s| {
                    let (line, col) = position(text, s.start);
                    format!("{file}:{line}:{col}")
                },
            );
            PolicyErrors(vec![format!("{at}: {}", e.message().trim())])
        })?;
        doc.validate(file, text, known)
    }

    fn validate(&self, file: &str, text: &str, known: &KnownNames) -> Result<Policy, PolicyErrors> {
        let mut p = Problems {
            file,
            text,
            found: Vec::new(),
        };
        if let Some(v) = &self.version
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
        let mut groups: BTreeSet<String> = known.groups.clone();
        for g in &self.groups {
            if g.get_ref().trim().is_empty() {
                p.span(g, "a group name must not be empty");
            }
            groups.insert(g.get_ref().clone());
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
        known_groups(&mut p, &self.admins, "admins");

        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for rule in &self.rules {
            let r = rule.get_ref();
            let name = r.name.get_ref();
            if !is_name(name) {
                p.span(&r.name, format!("rule name {name:?} {NAME_RULE}"));
            } else if !names.insert(name.clone()) {
                p.span(&r.name, format!("rule {name:?} is defined twice"));
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
            let max = parse_duration(&mut p, &r.max_duration, "max_duration")
                .unwrap_or(DEFAULT_MAX_DURATION);
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
        self.check_overlaps(&mut p, &rules, known);
        p.finish()?;
        Ok(Policy {
            groups: self.groups.iter().map(|g| g.get_ref().clone()).collect(),
            admins: self.admins.iter().map(|g| g.get_ref().clone()).collect(),
            rules,
        })
    }

    /// Two rules that can match the same identity on the same connection and
    /// decide differently: the order silently picks the outcome. That is
    /// refused unless the earlier rule says `overrides = ["later"]`.
    fn check_overlaps(&self, p: &mut Problems<'_>, rules: &[Rule], known: &KnownNames) {
        let expand = |r: &Rule| -> BTreeSet<String> {
            if r.connections.iter().any(|c| c == "*") {
                known.connections.clone()
            } else {
                r.connections.iter().cloned().collect()
            }
        };
        for (i, (a, a_doc)) in rules.iter().zip(&self.rules).enumerate() {
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
            for (b, _) in rules.iter().zip(&self.rules).skip(i + 1) {
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
                p.span(
                    &a_doc.get_ref().name,
                    format!(
                        "rules {:?} and {:?} both match {} on {} and decide differently, so their order \
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
}

fn list_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
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
