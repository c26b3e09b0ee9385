//! Rule sets: named, serde-described lists of rules (kind / relation /
//! function matchers → `block`, `review` or `allow`), the built-in sets, and
//! the registry that resolves set names.
//!
//! A rule set is plain data so the policy document can carry or reference
//! it; its `name` is the stable handle (`guardrails = ["no-destructive"]`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::GuardError;

/// What a statement is, as far as rules are concerned. One operation can
/// carry several kinds: `DELETE FROM t` is both `delete` and
/// `delete_without_where`; `ALTER TABLE t DROP COLUMN c` is `alter` and
/// `alter_drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `SELECT`, `VALUES`, `TABLE t` (and every sub-select).
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `UPDATE` with no `WHERE`, or a `WHERE` that references no column
    /// (`WHERE true`, `WHERE 1 = 1`).
    UpdateWithoutWhere,
    /// `DELETE` (and a `MERGE` with a `DELETE` action).
    Delete,
    /// `DELETE` with no `WHERE` (or a column-free one), and `MERGE ... THEN DELETE`.
    DeleteWithoutWhere,
    /// `MERGE`.
    Merge,
    /// `TRUNCATE`.
    Truncate,
    /// Any `DROP ...` (table, schema, database, role, function, ...), `DROP OWNED`.
    Drop,
    /// Any `ALTER ...`, `... RENAME ...`, `REASSIGN OWNED`.
    Alter,
    /// `ALTER TABLE ... DROP COLUMN / CONSTRAINT / ...`.
    AlterDrop,
    /// `ALTER SYSTEM` (server configuration).
    AlterSystem,
    /// Any `CREATE ...` (including `CREATE TABLE AS`, `SELECT INTO`, indexes, views, rules).
    Create,
    /// `CREATE/ALTER/DROP ROLE|USER|GROUP`.
    Role,
    /// `GRANT`, `ALTER DEFAULT PRIVILEGES ... GRANT`.
    Grant,
    /// `REVOKE`, `ALTER DEFAULT PRIVILEGES ... REVOKE`.
    Revoke,
    /// `COPY ... FROM STDIN` (data from the client).
    CopyFrom,
    /// `COPY ... TO STDOUT` (data to the client).
    CopyTo,
    /// `COPY ... TO/FROM PROGRAM` (runs a shell command on the server).
    CopyProgram,
    /// `COPY ... TO/FROM 'file'` (a file on the server).
    CopyFile,
    /// `CALL procedure(...)`.
    Call,
    /// `DO` (an anonymous PL/pgSQL block the classifier cannot see into).
    Do,
    /// `PREPARE name AS ...` (the prepared statement is judged too).
    Prepare,
    /// `EXECUTE name` (judged when it was prepared).
    Execute,
    /// `EXPLAIN` (with `ANALYZE`, the explained statement runs and is judged too).
    Explain,
    /// `SET`, `RESET`, `SET CONSTRAINTS`.
    Set,
    /// `SHOW`.
    Show,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, savepoints, `PREPARE TRANSACTION`.
    Transaction,
    /// `LOCK`.
    Lock,
    /// `VACUUM`, `ANALYZE`, `REINDEX`, `CLUSTER`, `REFRESH MATERIALIZED VIEW`, `CHECKPOINT`.
    Maintenance,
    /// `LOAD 'library'`.
    Load,
    /// `LISTEN`, `NOTIFY`, `UNLISTEN`.
    Listen,
    /// `DECLARE`, `FETCH`, `MOVE`, `CLOSE`.
    Cursor,
    /// Anything else (`COMMENT`, `DISCARD`, `DEALLOCATE`, ...).
    Other,
}

impl Kind {
    /// The name used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::UpdateWithoutWhere => "update_without_where",
            Kind::Delete => "delete",
            Kind::DeleteWithoutWhere => "delete_without_where",
            Kind::Merge => "merge",
            Kind::Truncate => "truncate",
            Kind::Drop => "drop",
            Kind::Alter => "alter",
            Kind::AlterDrop => "alter_drop",
            Kind::AlterSystem => "alter_system",
            Kind::Create => "create",
            Kind::Role => "role",
            Kind::Grant => "grant",
            Kind::Revoke => "revoke",
            Kind::CopyFrom => "copy_from",
            Kind::CopyTo => "copy_to",
            Kind::CopyProgram => "copy_program",
            Kind::CopyFile => "copy_file",
            Kind::Call => "call",
            Kind::Do => "do",
            Kind::Prepare => "prepare",
            Kind::Execute => "execute",
            Kind::Explain => "explain",
            Kind::Set => "set",
            Kind::Show => "show",
            Kind::Transaction => "transaction",
            Kind::Lock => "lock",
            Kind::Maintenance => "maintenance",
            Kind::Load => "load",
            Kind::Listen => "listen",
            Kind::Cursor => "cursor",
            Kind::Other => "other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a statement a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward it.
    Allow,
    /// Hold it for a human: not forwarded; a review request is made, and once
    /// approved the same statement may run once (see `crate::review`).
    Review,
    /// Refuse it with an error naming the rule.
    Block,
}

/// One rule. Every matcher that is given must hold; a rule with none matches
/// everything (a catch-all at the end of an allow-list).
///
/// - `kinds` + optional `relations`: matches an operation of one of these
///   kinds whose target relation (the table deleted from, dropped, altered,
///   copied...) matches one of the globs.
/// - `relations` alone: matches any operation touching a matching relation
///   anywhere in the statement (read or written).
/// - `functions`: matches a call of a matching function anywhere in the
///   statement (target lists, `WHERE`, `FROM`, CTEs, `CALL`, defaults...).
///   Cannot be combined with `kinds`/`relations` (write two rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable name, shown in the client's error ("rule \"drop\"").
    pub name: String,
    /// Statement kinds this rule is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Globs on `schema.table` (`*`, `?`); a pattern without a dot matches
    /// the table name in any schema. A relation written without a schema
    /// matches a pattern's table part whatever its schema (the search path
    /// is the server's business, so the broker assumes the worst).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<String>,
    /// Globs on function names; without a dot they match the unqualified
    /// name (so `pg_read_file` also catches `pg_catalog.pg_read_file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    /// What happens to a matching statement.
    pub action: Action,
    /// Free text for people reading the rule set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `review` only: who decides on a held statement. Without it, the
    /// approvers of the policy rule that grants the connection decide (an
    /// `access = "approval"` rule), else the policy admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<ReviewApprovers>,
    /// `review` only: distinct approvals needed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
}

/// Who decides on statements a `review` rule holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewApprovers {
    /// Members of these groups may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// These users may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

impl ReviewApprovers {
    /// As the approval machinery stores them.
    pub fn to_policy(&self) -> hoop_shared::policy::Approvers {
        hoop_shared::policy::Approvers {
            groups: self.groups.clone(),
            users: self.users.clone(),
        }
    }
}

/// A named, ordered list of rules: the first rule that matches a part of a
/// statement decides for that part; no match means allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Stable name, referenced from connections and the policy document.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rules, in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

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
