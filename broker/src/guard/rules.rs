//! Rule sets: named, serde-described lists of rules (kind / relation /
//! function matchers → `block`, `review` or `allow`), the built-in sets, and
//! the registry that resolves set names.
//!
//! A rule set is plain data so the policy document can carry or reference
//! it; its `name` is the stable handle (`guardrails = ["no-destructive"]`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::GuardError;

pub use crate::config::guardrails::{Action, Kind, ReviewApprovers, Rule, RuleSet};

/// Name of the built-in "no destructive statements" set.
pub const NO_DESTRUCTIVE: &str = "no-destructive";

/// Functions that read or write server files, run SQL from strings, reach
/// other servers, change settings or stop other sessions.
pub const DANGEROUS_FUNCTIONS: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_drop_replication_slot",
    "pg_replication_origin_drop",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "dblink*",
    "set_config",
    "query_to_xml*",
    "query_to_xmlschema",
    "cursor_to_xml*",
    "ts_stat",
    "ts_rewrite",
    "pg_logical_emit_message",
    "pg_log_backend_memory_contexts",
];

/// The built-in sets, by name.
pub fn builtin_sets() -> Vec<RuleSet> {
    let rule = |name: &str, kinds: &[Kind], action: Action, description: &str| Rule {
        name: name.to_owned(),
        kinds: kinds.to_vec(),
        relations: Vec::new(),
        functions: Vec::new(),
        action,
        description: Some(description.to_owned()),
        approvers: None,
        approvals: None,
    };
    vec![RuleSet {
        name: NO_DESTRUCTIVE.to_owned(),
        description: Some(
            "Blocks statements that destroy data or structure, change privileges, reach the \
             server's files or programs, or run code the guardrails cannot see."
                .to_owned(),
        ),
        rules: vec![
            rule("drop", &[Kind::Drop], Action::Block, "DROP of any object"),
            rule("truncate", &[Kind::Truncate], Action::Block, "TRUNCATE"),
            rule(
                "delete-without-where",
                &[Kind::DeleteWithoutWhere],
                Action::Block,
                "DELETE of every row",
            ),
            rule(
                "update-without-where",
                &[Kind::UpdateWithoutWhere],
                Action::Block,
                "UPDATE of every row",
            ),
            rule(
                "alter-drop",
                &[Kind::AlterDrop],
                Action::Block,
                "ALTER ... DROP COLUMN/CONSTRAINT/...",
            ),
            rule(
                "privileges",
                &[Kind::Grant, Kind::Revoke, Kind::Role, Kind::AlterSystem],
                Action::Block,
                "GRANT/REVOKE, role changes, ALTER SYSTEM",
            ),
            rule(
                "server-files",
                &[Kind::CopyProgram, Kind::CopyFile, Kind::Load],
                Action::Block,
                "COPY to/from a program or a server file, LOAD",
            ),
            rule(
                "do",
                &[Kind::Do],
                Action::Block,
                "DO blocks (PL/pgSQL the guardrails cannot inspect)",
            ),
            Rule {
                name: "dangerous-functions".to_owned(),
                kinds: Vec::new(),
                relations: Vec::new(),
                functions: DANGEROUS_FUNCTIONS
                    .iter()
                    .map(|f| (*f).to_owned())
                    .collect(),
                action: Action::Block,
                description: Some(
                    "functions that touch server files, other sessions, settings, other \
                     servers, or run SQL from strings"
                        .to_owned(),
                ),
                approvers: None,
                approvals: None,
            },
        ],
    }]
}

/// A rule ready for matching: its set's name and parsed globs.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub set: Arc<str>,
    pub rule: Rule,
    pub relations: Vec<RelationPattern>,
    pub functions: Vec<NamePattern>,
}

impl RuleSet {
    /// Parses one rule set from TOML:
    ///
    /// ```toml
    /// name = "orders-care"
    /// [[rule]]
    /// name = "orders-delete"
    /// kinds = ["delete", "update"]
    /// relations = ["public.orders"]
    /// action = "review"
    /// ```
    pub fn from_toml(text: &str) -> Result<RuleSet, GuardError> {
        let set: RuleSet =
            toml::from_str(text).map_err(|e| GuardError::RuleSet(e.message().trim().to_owned()))?;
        set.validate()?;
        Ok(set)
    }

    /// Checks what the types cannot: names, empty globs, ambiguous rules.
    pub fn validate(&self) -> Result<(), GuardError> {
        let bad = |msg: String| {
            Err(GuardError::RuleSet(format!(
                "rule set {:?}: {msg}",
                self.name
            )))
        };
        if !is_rule_name(&self.name) {
            return bad("the name must be 1-64 characters of a-z, 0-9, '-', '_'".to_owned());
        }
        let mut names = std::collections::BTreeSet::new();
        for r in &self.rules {
            if !is_rule_name(&r.name) {
                return bad(format!(
                    "rule name {:?} must be 1-64 characters of a-z, 0-9, '-', '_'",
                    r.name
                ));
            }
            if !names.insert(r.name.as_str()) {
                return bad(format!("rule {:?} is defined twice", r.name));
            }
            let mixes = !r.kinds.is_empty() || !r.relations.is_empty();
            if !r.functions.is_empty() && mixes {
                return bad(format!(
                    "rule {:?}: `functions` cannot be combined with `kinds` or `relations`; \
                     write two rules",
                    r.name
                ));
            }
            if r.action != Action::Review && (r.approvers.is_some() || r.approvals.is_some()) {
                return bad(format!(
                    "rule {:?}: approvers and approvals only apply to action = \"review\"",
                    r.name
                ));
            }
            if let Some(a) = &r.approvers
                && a.groups.is_empty()
                && a.users.is_empty()
            {
                return bad(format!("rule {:?}: approvers names nobody", r.name));
            }
            if r.approvals == Some(0) {
                return bad(format!("rule {:?}: approvals must be at least 1", r.name));
            }
            if let Some(p) = r.relations.iter().chain(&r.functions).find(|p| {
                p.trim().is_empty() || p.split('.').any(str::is_empty) || p.split('.').count() > 2
            }) {
                return bad(format!(
                    "rule {:?}: pattern {p:?} is not NAME or SCHEMA.NAME",
                    r.name
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn compile(&self) -> Vec<CompiledRule> {
        let set: Arc<str> = Arc::from(self.name.as_str());
        self.rules
            .iter()
            .map(|r| CompiledRule {
                set: set.clone(),
                rule: r.clone(),
                relations: r
                    .relations
                    .iter()
                    .map(|p| RelationPattern::new(p))
                    .collect(),
                functions: r.functions.iter().map(|p| NamePattern::new(p)).collect(),
            })
            .collect()
    }
}

fn is_rule_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Rule sets by name: the built-in ones plus any loaded from TOML.
#[derive(Debug, Clone)]
pub struct Registry {
    sets: BTreeMap<String, Arc<RuleSet>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The sets connections and policies may name: the built-in ones and
    /// the config's `[[guardrail_sets]]` (validated at load).
    pub fn with_config_sets(sets: &[toml::Spanned<RuleSet>]) -> Registry {
        let mut registry = Registry::builtin();
        for set in sets {
            if let Err(e) = registry.add(set.get_ref().clone()) {
                tracing::error!("[[guardrail_sets]]: {e}");
            }
        }
        registry
    }

    /// The built-in sets only.
    pub fn builtin() -> Registry {
        let sets = builtin_sets()
            .into_iter()
            .map(|s| (s.name.clone(), Arc::new(s)))
            .collect();
        Registry { sets }
    }

    /// Adds (or, for a name already present, refuses) a set.
    pub fn add(&mut self, set: RuleSet) -> Result<(), GuardError> {
        set.validate()?;
        if self.sets.contains_key(&set.name) {
            return Err(GuardError::RuleSet(format!(
                "rule set {:?} is defined twice (or shadows a built-in set)",
                set.name
            )));
        }
        self.sets.insert(set.name.clone(), Arc::new(set));
        Ok(())
    }

    /// The set with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<RuleSet>> {
        self.sets.get(name)
    }

    /// Names of every known set (for error messages).
    pub fn names(&self) -> Vec<&str> {
        self.sets.keys().map(String::as_str).collect()
    }

    /// The sets for these names, in order; the first unknown name is an error
    /// that lists the known ones.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<Arc<RuleSet>>, GuardError> {
        names
            .iter()
            .map(|n| {
                self.get(n).cloned().ok_or_else(|| GuardError::UnknownSet {
                    name: n.clone(),
                    known: self.names().join(", "),
                })
            })
            .collect()
    }
}

/// A glob on a (possibly qualified) name.
#[derive(Debug, Clone)]
pub(crate) struct NamePattern {
    schema: Option<String>,
    name: String,
}

impl NamePattern {
    pub fn new(pattern: &str) -> NamePattern {
        let lower = pattern.to_lowercase();
        match lower.split_once('.') {
            Some((s, n)) => NamePattern {
                schema: Some(s.to_owned()),
                name: n.to_owned(),
            },
            None => NamePattern {
                schema: None,
                name: lower,
            },
        }
    }

    /// Does `schema.name` (lowercase; schema `None` when unqualified) match?
    /// An unqualified name matches a qualified pattern on its name part:
    /// which schema it resolves to is decided by the server's search path.
    pub fn matches(&self, schema: Option<&str>, name: &str) -> bool {
        let schema_ok = match (&self.schema, schema) {
            (None, _) | (Some(_), None) => true,
            (Some(p), Some(s)) => glob(p, s),
        };
        schema_ok && glob(&self.name, name)
    }
}

/// Relation patterns work like function patterns.
pub(crate) type RelationPattern = NamePattern;

/// `*` (any run) and `?` (one character) glob, iterative with backtracking
/// to the last star: linear for the patterns people write, no recursion.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("dblink*", "dblink_exec"));
        assert!(glob("dblink*", "dblink"));
        assert!(!glob("dblink*", "xdblink"));
        assert!(glob("pg_?s_dir", "pg_ls_dir"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        let p = NamePattern::new("public.ord*");
        assert!(p.matches(Some("public"), "orders"));
        assert!(p.matches(None, "orders"));
        assert!(!p.matches(Some("audit"), "orders"));
        assert!(NamePattern::new("orders").matches(Some("sales"), "orders"));
    }

    #[test]
    fn rule_sets_load_from_toml_and_are_validated() {
        let set = RuleSet::from_toml(
            r#"
            name = "orders-care"
            description = "reviews on orders"
            [[rule]]
            name = "orders-writes"
            kinds = ["delete", "update"]
            relations = ["public.orders"]
            action = "review"
            approvers = { groups = ["sre"] }
            approvals = 2
            [[rule]]
            name = "no-sleep"
            functions = ["pg_sleep"]
            action = "block"
            "#,
        )
        .unwrap();
        assert_eq!(set.rules.len(), 2);
        assert_eq!(set.rules[0].approvals, Some(2));
        assert_eq!(
            set.rules[0].approvers.as_ref().map(|a| a.groups.clone()),
            Some(vec!["sre".to_owned()])
        );
        assert_eq!(set.rules[0].kinds, vec![Kind::Delete, Kind::Update]);
        // Round trip: the policy document can embed a set as data.
        let again: RuleSet = toml::from_str(&toml::to_string(&set).unwrap()).unwrap();
        assert_eq!(again, set);

        for bad in [
            "name = \"x\"\n[[rule]]\nname = \"r\"\nkinds = [\"dropp\"]\naction = \"block\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"deny\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"block\"\nextra = 1",
            "name = \"X Y\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\nkinds = [\"drop\"]\nfunctions = [\"f\"]\naction = \"block\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\nrelations = [\"a.b.c\"]\naction = \"block\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"block\"\n[[rule]]\nname = \"r\"\naction = \"allow\"",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"block\"\napprovals = 1",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"review\"\napprovals = 0",
            "name = \"x\"\n[[rule]]\nname = \"r\"\naction = \"review\"\napprovers = {}",
        ] {
            assert!(RuleSet::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_resolves_builtins_and_names_unknown_sets() {
        let mut reg = Registry::builtin();
        assert!(reg.resolve(&["no-destructive".to_owned()]).is_ok());
        let err = reg
            .resolve(&["no-such".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such") && err.contains("no-destructive"),
            "{err}"
        );
        assert!(reg.add(builtin_sets().remove(0)).is_err());
        for set in builtin_sets() {
            set.validate().unwrap();
        }
    }
}
