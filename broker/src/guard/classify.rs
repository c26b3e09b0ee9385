//! From SQL text to facts about each statement, with PostgreSQL's own
//! grammar (libpg_query through the `pg_query` crate).
//!
//! The parse tree is walked generically (its serde form): every node is
//! visited, so a `DELETE` inside a CTE, a sub-select, a `PREPARE`, an
//! `EXPLAIN ANALYZE`, a rule action or a `BEGIN ATOMIC` body is found
//! wherever it sits, and so is every function call. Only `EXPLAIN` without
//! `ANALYZE` is special: what it explains does not run, so its operations
//! are not counted (its function calls still are, conservatively).

use serde_json::{Map, Value};

use super::rules::Kind;

/// A table (or other relation) a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Schema as written (lowercased unless quoted), `None` when unqualified.
    pub schema: Option<String>,
    /// Relation name.
    pub name: String,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One thing a statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Its kinds (`delete` + `delete_without_where`, ...).
    pub kinds: Vec<Kind>,
    /// How to name it to a person: "DROP TABLE", "DELETE without WHERE".
    pub what: String,
    /// The relations it writes, drops, alters or copies (empty for reads;
    /// rules on reads use [`Statement::relations`]).
    pub targets: Vec<Relation>,
}

/// A change of `client_encoding` a statement asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodingChange {
    /// To this encoding name (as written).
    To(String),
    /// To something the classifier cannot read (an expression).
    Unknown,
}

/// Facts about one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statement {
    /// What it does, outermost first.
    pub ops: Vec<Op>,
    /// Every function it calls (lowercased; schema when written).
    pub functions: Vec<Relation>,
    /// Every relation it names anywhere.
    pub relations: Vec<Relation>,
    /// Whether it changes `client_encoding` (the lexer depends on it).
    pub encoding: Option<EncodingChange>,
}

impl Statement {
    /// The outermost operation's description ("SELECT" when unknown).
    pub fn what(&self) -> &str {
        self.ops.first().map_or("statement", |o| o.what.as_str())
    }
}

/// Why text could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unparsable {
    /// The parser rejected it (its message).
    #[error("{0}")]
    Syntax(String),
    /// The parser library failed unexpectedly.
    #[error("the SQL parser failed on this statement")]
    ParserFailed,
}

/// Parses `sql` (one or more statements) and classifies each statement.
///
/// Text containing a backslash is lexed twice, with
/// `standard_conforming_strings` on and off, because a session can switch it
/// and `'a\'; DROP ...'` reads differently under each; the statements of
/// every successful reading are returned, so the caller judges the union.
/// It fails only when no reading parses (then the server cannot parse it
/// either, under either setting).
pub fn classify(sql: &str) -> Result<Vec<Statement>, Unparsable> {
    let strict = classify_with(sql, pg_query::ParserOptions::DEFAULT);
    if !sql.contains('\\') {
        return strict;
    }
    let lax = classify_with(
        sql,
        pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS,
    );
    match (strict, lax) {
        (Ok(mut a), Ok(b)) => {
            if a != b {
                a.extend(b);
            }
            Ok(a)
        }
        (Ok(a), Err(_)) | (Err(_), Ok(a)) => Ok(a),
        (Err(e), Err(_)) => Err(e),
    }
}

fn classify_with(
    sql: &str,
    options: pg_query::ParserOptions,
) -> Result<Vec<Statement>, Unparsable> {
    // The parser is C code behind a safe API that may still panic on a tree
    // it did not expect; a panic must become "unparsable", not a dead relay.
    let parsed = std::panic::catch_unwind(|| {
        pg_query::parse(sql, options).map(|r| serde_json::to_value(&r.protobuf))
    })
    .map_err(|_| Unparsable::ParserFailed)?;
    let tree = match parsed {
        Ok(Ok(tree)) => tree,
        Ok(Err(_)) => return Err(Unparsable::ParserFailed),
        Err(pg_query::Error::Parse(msg)) => return Err(Unparsable::Syntax(msg)),
        Err(e) => return Err(Unparsable::Syntax(e.to_string())),
    };
    let stmts = tree
        .get("stmts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(stmts.len());
    for raw in stmts {
        let mut st = Statement::default();
        match raw.get("stmt") {
            Some(node) if is_setting_pin(node) => {
                st.ops.push(Op {
                    kinds: vec![Kind::Select],
                    what: "SELECT".to_owned(),
                    targets: Vec::new(),
                });
                st.relations.push(Relation {
                    schema: None,
                    name: "pg_settings".to_owned(),
                });
            }
            Some(node) => walk(node, &mut st, true),
            None => {}
        }
        if st.ops.is_empty() {
            st.ops.push(Op {
                kinds: vec![Kind::Other],
                what: "statement".to_owned(),
                targets: Vec::new(),
            });
        }
        out.push(st);
    }
    Ok(out)
}

/// Visits every node under `v`; `runs` is false under a plain `EXPLAIN`.
fn walk(v: &Value, st: &mut Statement, runs: bool) {
    match v {
        Value::Object(m) => walk_map(m, st, runs),
        Value::Array(a) => a.iter().for_each(|c| walk(c, st, runs)),
        _ => {}
    }
}

fn walk_map(m: &Map<String, Value>, st: &mut Statement, runs: bool) {
    // RangeVar and FuncCall appear both as named nodes and as typed fields
    // (`DeleteStmt.relation`, `CallStmt.funccall`): recognise them by shape.
    if is_range_var(m) {
        if let Some(r) = relation(m) {
            st.relations.push(r);
        }
    } else if is_func_call(m) {
        func_call(m, st);
    }
    for (key, child) in m {
        if let Value::Object(body) = child
            && let Some(runs_inside) = node(key, body, st, runs)
        {
            walk_map(body, st, runs_inside);
            continue;
        }
        walk(child, st, runs);
    }
}

fn is_range_var(m: &Map<String, Value>) -> bool {
    m.contains_key("relname") && m.contains_key("relpersistence")
}

fn is_func_call(m: &Map<String, Value>) -> bool {
    m.contains_key("funcname") && m.contains_key("agg_star")
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn relation(m: &Map<String, Value>) -> Option<Relation> {
    let name = str_field(m, "relname");
    if name.is_empty() {
        return None;
    }
    let schema = str_field(m, "schemaname");
    Some(Relation {
        schema: (!schema.is_empty()).then(|| schema.to_owned()),
        name: name.to_owned(),
    })
}

/// `{"String": {"sval": ..}}` items of a name list (`funcname`, DROP objects).
fn name_list(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| {
            i.get("node")
                .unwrap_or(i)
                .get("String")?
                .get("sval")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn qualified(mut parts: Vec<String>) -> Option<Relation> {
    let name = parts.pop()?;
    Some(Relation {
        schema: parts.pop(),
        name,
    })
}

fn func_call(m: &Map<String, Value>, st: &mut Statement) {
    let parts = m
        .get("funcname")
        .and_then(Value::as_array)
        .map(|a| name_list(a))
        .unwrap_or_default();
    let Some(mut f) = qualified(parts) else {
        return;
    };
    f.name = f.name.to_lowercase();
    f.schema = f.schema.map(|s| s.to_lowercase());
    if f.name == "set_config" {
        let args = m
            .get("args")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // pg_dump and pg_restore pin the search path to nothing this way,
        // the safest value there is; that exact call is not a risk. Any other
        // value (a path an attacker controls) stays a dangerous call.
        let setting = args.first().and_then(string_const);
        let value = args.get(1).and_then(string_const);
        if setting.is_some_and(|n| n.eq_ignore_ascii_case("search_path"))
            && matches!(value, Some("" | "pg_catalog"))
        {
            return;
        }
        match setting {
            Some(setting) if setting.eq_ignore_ascii_case("client_encoding") => {
                st.encoding = Some(
                    args.get(1)
                        .and_then(string_const)
                        .map_or(EncodingChange::Unknown, |v| {
                            EncodingChange::To(v.to_owned())
                        }),
                );
            }
            Some(_) => {}
            None => st.encoding = Some(EncodingChange::Unknown),
        }
    }
    st.functions.push(f);
}

/// The value of a string constant node (`'abc'`), if that is what `v` is.
fn string_const(v: &Value) -> Option<&str> {
    let c = v.get("node").unwrap_or(v).get("AConst")?;
    c.get("val")?.get("Sval")?.get("sval")?.as_str()
}

/// Whether a `WHERE` clause restricts anything: absent, or free of column
/// references (`WHERE true`, `WHERE 1 = 1`), counts as no `WHERE`.
fn has_real_where(body: &Map<String, Value>) -> bool {
    match body.get("where_clause") {
        None | Some(Value::Null) => false,
        Some(w) => mentions(w, &["ColumnRef", "CurrentOfExpr"]),
    }
}

fn mentions(v: &Value, names: &[&str]) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, c)| names.contains(&k.as_str()) || mentions(c, names)),
        Value::Array(a) => a.iter().any(|c| mentions(c, names)),
        _ => false,
    }
}

fn target(body: &Map<String, Value>, key: &str) -> Vec<Relation> {
    match body.get(key) {
        Some(Value::Object(m)) => relation(m).into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|n| match n.get("node").unwrap_or(n).get("RangeVar") {
                Some(Value::Object(m)) => relation(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn object_type_name(v: Option<&Value>) -> String {
    let n = v.and_then(Value::as_i64).unwrap_or_default();
    pg_query::protobuf::ObjectType::try_from(i32::try_from(n).unwrap_or_default())
        .map(|t| {
            t.as_str_name()
                .trim_start_matches("OBJECT_")
                .replace('_', " ")
        })
        .unwrap_or_else(|_| "OBJECT".to_owned())
}

const TABLE_LIKE: &[&str] = &[
    "TABLE",
    "VIEW",
    "MATVIEW",
    "INDEX",
    "SEQUENCE",
    "FOREIGN TABLE",
];

fn push(st: &mut Statement, runs: bool, kinds: Vec<Kind>, what: String, targets: Vec<Relation>) {
    if runs {
        st.ops.push(Op {
            kinds,
            what,
            targets,
        });
    }
}

/// Records the operation a statement node stands for and says whether its
/// children run (`Some(runs)`), or `None` when `key` is not a statement.
fn node(key: &str, body: &Map<String, Value>, st: &mut Statement, runs: bool) -> Option<bool> {
    let runs_inside = runs;
    match key {
        "SelectStmt" => {
            let into = body.get("into_clause").is_some_and(|v| !v.is_null());
            if into {
                push(
                    st,
                    runs,
                    vec![Kind::Create],
                    "SELECT INTO".to_owned(),
                    Vec::new(),
                );
            } else {
                push(
                    st,
                    runs,
                    vec![Kind::Select],
                    "SELECT".to_owned(),
                    Vec::new(),
                );
            }
        }
        "InsertStmt" => push(
            st,
            runs,
            vec![Kind::Insert],
            "INSERT".to_owned(),
            target(body, "relation"),
        ),
        "DeleteStmt" => {
            if has_real_where(body) {
                push(
                    st,
                    runs,
                    vec![Kind::Delete],
                    "DELETE".to_owned(),
                    target(body, "relation"),
                );
            } else {
                push(
                    st,
                    runs,
                    vec![Kind::Delete, Kind::DeleteWithoutWhere],
                    "DELETE without WHERE".to_owned(),
                    target(body, "relation"),
                );
            }
        }
        "UpdateStmt" => {
            if has_real_where(body) {
                push(
                    st,
                    runs,
                    vec![Kind::Update],
                    "UPDATE".to_owned(),
                    target(body, "relation"),
                );
            } else {
                push(
                    st,
                    runs,
                    vec![Kind::Update, Kind::UpdateWithoutWhere],
                    "UPDATE without WHERE".to_owned(),
                    target(body, "relation"),
                );
            }
        }
        "MergeStmt" => {
            let mut kinds = vec![Kind::Merge];
            let actions = body
                .get("merge_when_clauses")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for a in actions {
                let cmd = a
                    .get("node")
                    .unwrap_or(a)
                    .get("MergeWhenClause")
                    .and_then(|c| c.get("command_type"))
                    .and_then(Value::as_i64)
                    .unwrap_or_default();
                // CmdType: 3 update, 5 delete. A MERGE's row set is a join
                // the classifier cannot bound, so its DELETE counts as
                // unrestricted.
                if cmd == 3 && !kinds.contains(&Kind::Update) {
                    kinds.push(Kind::Update);
                }
                if cmd == 5 && !kinds.contains(&Kind::Delete) {
                    kinds.extend([Kind::Delete, Kind::DeleteWithoutWhere]);
                }
            }
            push(
                st,
                runs,
                kinds,
                "MERGE".to_owned(),
                target(body, "relation"),
            );
        }
        "TruncateStmt" => push(
            st,
            runs,
            vec![Kind::Truncate],
            "TRUNCATE".to_owned(),
            target(body, "relations"),
        ),
        "DropStmt" => {
            let what = object_type_name(body.get("remove_type"));
            let targets = if TABLE_LIKE.contains(&what.as_str()) {
                body.get("objects")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|o| {
                        let items = o.get("node").unwrap_or(o).get("List")?.get("items")?;
                        qualified(name_list(items.as_array()?))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            push(st, runs, vec![Kind::Drop], format!("DROP {what}"), targets);
        }
        "DropdbStmt" => push(
            st,
            runs,
            vec![Kind::Drop],
            "DROP DATABASE".to_owned(),
            Vec::new(),
        ),
        "DropRoleStmt" => push(
            st,
            runs,
            vec![Kind::Drop, Kind::Role],
            "DROP ROLE".to_owned(),
            Vec::new(),
        ),
        "DropTableSpaceStmt" => push(
            st,
            runs,
            vec![Kind::Drop],
            "DROP TABLESPACE".to_owned(),
            Vec::new(),
        ),
        "DropOwnedStmt" => push(
            st,
            runs,
            vec![Kind::Drop],
            "DROP OWNED".to_owned(),
            Vec::new(),
        ),
        "DropSubscriptionStmt" => push(
            st,
            runs,
            vec![Kind::Drop],
            "DROP SUBSCRIPTION".to_owned(),
            Vec::new(),
        ),
        "DropUserMappingStmt" => push(
            st,
            runs,
            vec![Kind::Drop],
            "DROP USER MAPPING".to_owned(),
            Vec::new(),
        ),
        "AlterTableStmt" => {
            let what = object_type_name(body.get("objtype"));
            let drops = body
                .get("cmds")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .any(|c| {
                    let sub = c
                        .get("node")
                        .unwrap_or(c)
                        .get("AlterTableCmd")
                        .and_then(|c| c.get("subtype"))
                        .and_then(Value::as_i64)
                        .unwrap_or_default();
                    pg_query::protobuf::AlterTableType::try_from(
                        i32::try_from(sub).unwrap_or_default(),
                    )
                    .is_ok_and(|t| {
                        t.as_str_name().starts_with("AT_Drop")
                            || t.as_str_name() == "AT_DetachPartition"
                    })
                });
            if drops {
                push(
                    st,
                    runs,
                    vec![Kind::Alter, Kind::AlterDrop],
                    format!("ALTER {what} ... DROP"),
                    target(body, "relation"),
                );
            } else {
                push(
                    st,
                    runs,
                    vec![Kind::Alter],
                    format!("ALTER {what}"),
                    target(body, "relation"),
                );
            }
        }
        "AlterSystemStmt" => push(
            st,
            runs,
            vec![Kind::Alter, Kind::AlterSystem],
            "ALTER SYSTEM".to_owned(),
            Vec::new(),
        ),
        "AlterRoleStmt" | "AlterRoleSetStmt" => push(
            st,
            runs,
            vec![Kind::Alter, Kind::Role],
            "ALTER ROLE".to_owned(),
            Vec::new(),
        ),
        "CreateRoleStmt" => push(
            st,
            runs,
            vec![Kind::Create, Kind::Role],
            "CREATE ROLE".to_owned(),
            Vec::new(),
        ),
        "AlterDefaultPrivilegesStmt" => {
            let grant = body
                .get("action")
                .and_then(|a| a.get("is_grant"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let kind = if grant { Kind::Grant } else { Kind::Revoke };
            push(
                st,
                runs,
                vec![Kind::Alter, kind],
                "ALTER DEFAULT PRIVILEGES".to_owned(),
                Vec::new(),
            );
            // Its nested GrantStmt is the same operation.
            return Some(false);
        }
        "GrantStmt" | "GrantRoleStmt" => {
            let grant = body
                .get("is_grant")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let (kind, what) = if grant {
                (Kind::Grant, "GRANT")
            } else {
                (Kind::Revoke, "REVOKE")
            };
            push(
                st,
                runs,
                vec![kind],
                what.to_owned(),
                target(body, "objects"),
            );
        }
        "RenameStmt" | "ReassignOwnedStmt" => push(
            st,
            runs,
            vec![Kind::Alter],
            if key == "RenameStmt" {
                "ALTER ... RENAME".to_owned()
            } else {
                "REASSIGN OWNED".to_owned()
            },
            target(body, "relation"),
        ),
        "CopyStmt" => {
            let from = body
                .get("is_from")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let program = body
                .get("is_program")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let file = !str_field(body, "filename").is_empty();
            let dir = if from { "FROM" } else { "TO" };
            let (kinds, what) = if program {
                (vec![Kind::CopyProgram], format!("COPY ... {dir} PROGRAM"))
            } else if file {
                (
                    vec![Kind::CopyFile],
                    format!("COPY ... {dir} a server file"),
                )
            } else if from {
                (vec![Kind::CopyFrom], "COPY ... FROM STDIN".to_owned())
            } else {
                (vec![Kind::CopyTo], "COPY ... TO STDOUT".to_owned())
            };
            push(st, runs, kinds, what, target(body, "relation"));
        }
        "CallStmt" => push(st, runs, vec![Kind::Call], "CALL".to_owned(), Vec::new()),
        "DoStmt" => push(st, runs, vec![Kind::Do], "DO block".to_owned(), Vec::new()),
        "PrepareStmt" => push(
            st,
            runs,
            vec![Kind::Prepare],
            "PREPARE".to_owned(),
            Vec::new(),
        ),
        "ExecuteStmt" => push(
            st,
            runs,
            vec![Kind::Execute],
            "EXECUTE".to_owned(),
            Vec::new(),
        ),
        "ExplainStmt" => {
            let analyze = body
                .get("options")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|o| o.get("node").unwrap_or(o).get("DefElem"))
                .any(|d| {
                    d.get("defname").and_then(Value::as_str) == Some("analyze")
                        && !is_false(d.get("arg"))
                });
            push(
                st,
                runs,
                vec![Kind::Explain],
                if analyze {
                    "EXPLAIN ANALYZE"
                } else {
                    "EXPLAIN"
                }
                .to_owned(),
                Vec::new(),
            );
            return Some(runs && analyze);
        }
        "VariableSetStmt" => {
            let name = str_field(body, "name");
            if name.eq_ignore_ascii_case("client_encoding") {
                let value = body
                    .get("args")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(string_const);
                // SET/RESET to DEFAULT (no args) returns to the session's
                // start value, which was checked when the session began.
                let kind = body.get("kind").and_then(Value::as_i64).unwrap_or_default();
                if kind == 1 {
                    st.encoding = Some(value.map_or(EncodingChange::Unknown, |v| {
                        EncodingChange::To(v.to_owned())
                    }));
                }
            }
            push(st, runs, vec![Kind::Set], "SET".to_owned(), Vec::new());
        }
        "ConstraintsSetStmt" => push(
            st,
            runs,
            vec![Kind::Set],
            "SET CONSTRAINTS".to_owned(),
            Vec::new(),
        ),
        "VariableShowStmt" => push(st, runs, vec![Kind::Show], "SHOW".to_owned(), Vec::new()),
        "TransactionStmt" => push(
            st,
            runs,
            vec![Kind::Transaction],
            "transaction control".to_owned(),
            Vec::new(),
        ),
        "LockStmt" => push(
            st,
            runs,
            vec![Kind::Lock],
            "LOCK".to_owned(),
            target(body, "relations"),
        ),
        "VacuumStmt" | "ReindexStmt" | "ClusterStmt" | "RefreshMatViewStmt" | "CheckPointStmt" => {
            push(
                st,
                runs,
                vec![Kind::Maintenance],
                key.trim_end_matches("Stmt").to_uppercase(),
                Vec::new(),
            )
        }
        "LoadStmt" => push(st, runs, vec![Kind::Load], "LOAD".to_owned(), Vec::new()),
        "ListenStmt" | "UnlistenStmt" | "NotifyStmt" => push(
            st,
            runs,
            vec![Kind::Listen],
            key.trim_end_matches("Stmt").to_uppercase(),
            Vec::new(),
        ),
        "DeclareCursorStmt" | "FetchStmt" | "ClosePortalStmt" => push(
            st,
            runs,
            vec![Kind::Cursor],
            "cursor".to_owned(),
            Vec::new(),
        ),
        "CreateTableAsStmt"
        | "ViewStmt"
        | "IndexStmt"
        | "RuleStmt"
        | "DefineStmt"
        | "CompositeTypeStmt"
        | "CreatedbStmt"
        | "ImportForeignSchemaStmt" => push(
            st,
            runs,
            vec![Kind::Create],
            format!("CREATE ({})", key.trim_end_matches("Stmt")),
            target(body, "relation"),
        ),
        k if k.starts_with("Create") && k.ends_with("Stmt") => push(
            st,
            runs,
            vec![Kind::Create],
            format!(
                "CREATE ({})",
                k.trim_start_matches("Create").trim_end_matches("Stmt")
            ),
            target(body, "relation"),
        ),
        k if k.starts_with("Alter") && k.ends_with("Stmt") => push(
            st,
            runs,
            vec![Kind::Alter],
            format!(
                "ALTER ({})",
                k.trim_start_matches("Alter").trim_end_matches("Stmt")
            ),
            target(body, "relation"),
        ),
        k if k.starts_with("Drop") && k.ends_with("Stmt") => push(
            st,
            runs,
            vec![Kind::Drop],
            format!(
                "DROP ({})",
                k.trim_start_matches("Drop").trim_end_matches("Stmt")
            ),
            Vec::new(),
        ),
        k if k.ends_with("Stmt") && k != "RawStmt" => push(
            st,
            runs,
            vec![Kind::Other],
            k.trim_end_matches("Stmt").to_owned(),
            Vec::new(),
        ),
        _ => return None,
    }
    Some(runs_inside)
}

/// `ANALYZE false` / `ANALYZE off` / `ANALYZE 0`.
fn is_false(arg: Option<&Value>) -> bool {
    let Some(a) = arg.filter(|a| !a.is_null()) else {
        return false;
    };
    let a = a.get("node").unwrap_or(a);
    if let Some(b) = a.get("Boolean").and_then(|b| b.get("boolval")) {
        return b.as_bool() == Some(false) || b.is_null();
    }
    if let Some(s) = a
        .get("String")
        .and_then(|s| s.get("sval"))
        .and_then(Value::as_str)
    {
        return matches!(s.to_lowercase().as_str(), "false" | "off" | "0" | "no");
    }
    if let Some(i) = a.get("Integer") {
        return i.get("ival").and_then(Value::as_i64).unwrap_or(0) == 0;
    }
    false
}

/// Settings pg_dump pins by name from `pg_settings` (so that it works on
/// servers that lack them): restricting which relation kinds a session may
/// use only ever makes it safer.
const PINNED_SETTINGS: &[&str] = &["restrict_nonsystem_relation_kind"];

/// pg_dump (15+, with backpatched security releases) runs
/// `SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings
/// WHERE name = 'restrict_nonsystem_relation_kind'`: the setting's name is
/// a column, not a literal, so the `set_config` guard could not see which
/// setting changes. The `WHERE` pins the column to a literal from
/// [`PINNED_SETTINGS`], so it can: this exact shape (one target, one
/// `pg_settings` in FROM, `name = '<pinned>'`, a literal value and a boolean
/// literal, nothing else anywhere in the statement) is an ordinary read. Any
/// other non-literal `set_config` stays a dangerous call. (pg_dump sets
/// `search_path` to '' first, so `pg_settings` and `=` are the catalog's.)
fn is_setting_pin(stmt: &Value) -> bool {
    setting_pin(stmt).unwrap_or(false)
}

fn setting_pin(stmt: &Value) -> Option<bool> {
    let sel = node_of(stmt, "SelectStmt")?;
    let [target] = sel.get("target_list")?.as_array()?.as_slice() else {
        return None;
    };
    let [from] = sel.get("from_clause")?.as_array()?.as_slice() else {
        return None;
    };
    let rt = node_of(target, "ResTarget")?;
    let call = node_of(rt.get("val")?, "FuncCall")?;
    let name = name_list(call.get("funcname")?.as_array()?);
    let [column, value, local] = call.get("args")?.as_array()?.as_slice() else {
        return None;
    };
    let rel = node_of(from, "RangeVar")?;
    let cond = node_of(sel.get("where_clause")?, "AExpr")?;
    let pinned = string_const(cond.get("rexpr")?)?;
    Some(
        only(sel, &["target_list", "from_clause", "where_clause"])
            && only(rt, &["val"])
            && only(call, &["funcname", "args"])
            && (name == ["set_config"] || name == ["pg_catalog", "set_config"])
            && is_column(column, "name")
            && string_const(value).is_some()
            && node_of(local, "AConst")
                .and_then(|c| c.get("val")?.get("Boolval"))
                .is_some()
            && only(rel, &[])
            && str_field(rel, "relname") == "pg_settings"
            && matches!(str_field(rel, "schemaname"), "" | "pg_catalog")
            && only(cond, &["lexpr", "rexpr", "name"])
            && cond.get("kind").and_then(Value::as_i64) == Some(1)
            && cond
                .get("name")
                .and_then(Value::as_array)
                .is_some_and(|n| name_list(n) == ["="])
            && is_column(cond.get("lexpr")?, "name")
            && PINNED_SETTINGS.contains(&pinned),
    )
}

/// The body of a `kind` node (`{"node": {"Kind": {...}}}` or `{"Kind": {...}}`).
fn node_of<'a>(v: &'a Value, kind: &str) -> Option<&'a Map<String, Value>> {
    v.get("node").unwrap_or(v).get(kind)?.as_object()
}

/// A bare column reference `name` (no table, no star).
fn is_column(v: &Value, name: &str) -> bool {
    node_of(v, "ColumnRef")
        .and_then(|c| c.get("fields")?.as_array())
        .is_some_and(|f| name_list(f) == [name] && f.len() == 1)
}

/// Every field of `m` other than `keep` holds no node (null, empty list,
/// or a scalar such as a location, a flag or an enum number).
fn only(m: &Map<String, Value>, keep: &[&str]) -> bool {
    m.iter().all(|(k, v)| {
        keep.contains(&k.as_str())
            || match v {
                Value::Object(_) => false,
                Value::Array(a) => a.is_empty(),
                _ => true,
            }
    })
}
