//! Guardrail rule sets as plain data (`[[guardrail_sets]]` in the config,
//! `guardrail_sets` in policy documents): statement kinds, actions, rules.
//! What they mean, the built-in sets and the compiled form live in
//! [`crate::guard`], which re-exports these types.

use std::fmt;

use serde::{Deserialize, Serialize};

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
