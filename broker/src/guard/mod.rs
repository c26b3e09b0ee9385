//! Guardrails: every statement is parsed with PostgreSQL's own grammar and
//! judged against named rule sets before it may reach the database.
//!
//! - [`classify`] turns SQL text into facts per statement: operations with
//!   their kinds and target relations, every function called, every relation
//!   named (inside CTEs, sub-selects, `PREPARE`, `EXPLAIN ANALYZE` too).
//! - [`rules`] holds the serde-described [`RuleSet`]s, the built-in
//!   `no-destructive` set and the [`Registry`] that resolves set names.
//! - [`Guardrails`] is one connection's compiled rules plus a bounded cache of
//!   decisions by exact statement text ([`cache`]).
//!
//! How a statement is judged: each operation and each function call is a
//! separate fact; a fact is decided by the first rule (across the
//! connection's sets, in the order listed) that matches it, `allow` when none
//! does; the statement gets the strictest decision of its facts (block >
//! review > allow), and a multi-statement message the strictest of its
//! statements. So an `allow` rule only ever allows what it names: allowing
//! `select` does not let a `DELETE` hidden in a CTE of that `SELECT` through.
//!
//! The reference for users is `docs/guardrails.md`.

pub mod cache;
pub mod classify;
pub mod rules;
pub mod shell;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use classify::{EncodingChange, Op, Relation, Statement, Unparsable, classify};
pub use rules::{Action, Kind, NO_DESTRUCTIVE, Registry, ReviewApprovers, Rule, RuleSet};

use crate::config::UnparsableAction;
use cache::VerdictCache;
use rules::CompiledRule;

/// How many decisions a connection keeps per cache generation.
pub const CACHE_CAPACITY: usize = 4096;

/// SQLSTATE of a statement refused by a rule: insufficient_privilege.
pub const SQLSTATE_BLOCKED: &str = "42501";
/// SQLSTATE of a statement refused because it could not be parsed.
pub const SQLSTATE_UNPARSABLE: &str = "42601";

/// A rule-set problem (config or policy document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// A rule set is malformed.
    #[error("{0}")]
    RuleSet(String),
    /// A connection names a set nobody defined.
    #[error("unknown guardrail set {name:?} (known sets: {known})")]
    UnknownSet {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
}

/// The outcome for one message's SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Allow,
    /// Do not forward it; tell the client why.
    Deny(Denial),
}

/// Why a statement is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// `Block` or `Review`.
    pub action: Action,
    /// The deciding rule set (`None` for the parser and encoding checks).
    pub set: Option<String>,
    /// The deciding rule (`unparsable`, `client-encoding` for the built-in checks).
    pub rule: String,
    /// What was refused, for people: "DROP TABLE", "call to pg_read_file()".
    pub what: String,
    /// SQLSTATE for the client's ErrorResponse.
    pub sqlstate: &'static str,
    /// The full message for the client.
    pub message: String,
    /// `Review` only: the deciding rule's own approvers and approval count.
    pub review: Option<(Option<ReviewApprovers>, Option<u32>)>,
}

/// One connection's guardrails: its rule sets, compiled, and the decision cache.
#[derive(Debug)]
pub struct Guardrails {
    connection: String,
    set_names: Vec<String>,
    rules: Vec<CompiledRule>,
    on_unparsable: UnparsableAction,
    cache: VerdictCache,
}

impl Guardrails {
    /// Guardrails for `connection` with these sets (checked in order).
    pub fn new(
        connection: &str,
        sets: &[Arc<RuleSet>],
        on_unparsable: UnparsableAction,
    ) -> Guardrails {
        Guardrails {
            connection: connection.to_owned(),
            set_names: sets.iter().map(|s| s.name.clone()).collect(),
            rules: sets.iter().flat_map(|s| s.compile()).collect(),
            on_unparsable,
            cache: VerdictCache::new(CACHE_CAPACITY),
        }
    }

    /// Guardrails for a configured connection, or `None` when it names no set.
    pub fn for_connection(
        connection: &crate::config::ConnectionConfig,
        registry: &Registry,
    ) -> Result<Option<Arc<Guardrails>>, GuardError> {
        if connection.guardrails.is_empty() {
            return Ok(None);
        }
        let sets = registry.resolve(&connection.guardrails)?;
        Ok(Some(Arc::new(Guardrails::new(
            &connection.name,
            &sets,
            connection.on_unparsable,
        ))))
    }

    /// The connection these guardrails belong to.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The decision for message text that is not UTF-8: the parser reads
    /// UTF-8, so the text is unparsable (and `on_unparsable` decides).
    pub fn not_utf8(&self) -> Decision {
        self.unparsable(&Unparsable::Syntax(
            "the statement text is not valid UTF-8".to_owned(),
        ))
    }

    /// The refusal while (or when switching to) a client encoding in which
    /// ASCII bytes may be parts of other characters: the classifier could read
    /// the text differently from the server there.
    pub fn unsafe_encoding(&self, shown: &str) -> Denial {
        Denial {
            action: Action::Block,
            set: None,
            rule: "client-encoding".to_owned(),
            what: "SET client_encoding".to_owned(),
            sqlstate: SQLSTATE_BLOCKED,
            review: None,
            message: format!(
                "hoop: blocked: connection \"{}\" checks statements with guardrails, which \
                 read SQL text as the server does only in an encoding where ASCII bytes are \
                 always ASCII; client_encoding {shown} is not one (use UTF8)",
                self.connection
            ),
        }
    }

    /// The names of the sets checked, in order.
    pub fn set_names(&self) -> &[String] {
        &self.set_names
    }

    /// Judges the SQL text of one `Query` or `Parse` message (cached by
    /// [`cache::cache_key`]: exact text, top-level numbers aside).
    pub fn judge(&self, sql: &str) -> Arc<Decision> {
        let key = cache::cache_key(sql);
        self.cache
            .get_or_insert_with(&key, || self.judge_uncached(sql))
    }

    /// Judges without the cache (benchmarks, tests).
    pub fn judge_uncached(&self, sql: &str) -> Decision {
        let statements = match classify(sql) {
            Ok(s) => s,
            Err(e) => return self.unparsable(&e),
        };
        let mut worst: Option<Denial> = None;
        for st in &statements {
            if let Some(d) = self.judge_statement(st)
                && worst.as_ref().is_none_or(|w| d.action > w.action)
            {
                worst = Some(d);
            }
            if worst.as_ref().is_some_and(|w| w.action == Action::Block) {
                break;
            }
        }
        worst.map_or(Decision::Allow, Decision::Deny)
    }

    fn unparsable(&self, e: &Unparsable) -> Decision {
        match self.on_unparsable {
            UnparsableAction::Allow => {
                tracing::info!(
                    connection = %self.connection,
                    error = %e,
                    "forwarding a statement the guardrails could not parse (on_unparsable = allow)"
                );
                Decision::Allow
            }
            UnparsableAction::Block => Decision::Deny(Denial {
                action: Action::Block,
                set: None,
                rule: "unparsable".to_owned(),
                what: "statement the SQL parser cannot read".to_owned(),
                sqlstate: SQLSTATE_UNPARSABLE,
                review: None,
                message: format!(
                    "hoop: blocked: connection \"{}\" refuses statements its guardrails cannot \
                     parse ({e})",
                    self.connection
                ),
            }),
        }
    }

    fn judge_statement(&self, st: &Statement) -> Option<Denial> {
        if let Some(change) = &st.encoding {
            let shown = match change {
                EncodingChange::To(e) if is_parser_safe_encoding(e) => None,
                EncodingChange::To(e) => Some(format!("{e:?}")),
                EncodingChange::Unknown => Some("a computed value".to_owned()),
            };
            if let Some(shown) = shown {
                return Some(self.unsafe_encoding(&shown));
            }
        }
        let mut worst: Option<(&CompiledRule, String)> = None;
        for op in &st.ops {
            let rule = self.rules.iter().find(|r| op_matches(r, op, st));
            stricter(&mut worst, rule, || op.what.clone());
        }
        for f in &st.functions {
            let rule = self.rules.iter().find(|r| {
                r.functions
                    .iter()
                    .any(|p| p.matches(f.schema.as_deref(), &f.name))
            });
            stricter(&mut worst, rule, || format!("call to {f}()"));
        }
        let (rule, what) = worst?;
        let message = match rule.rule.action {
            // The relay hook adds the review request (see `crate::review`).
            Action::Review => format!(
                "hoop: {what} on connection \"{}\" is held for review by guardrail \"{}\" rule \
                 \"{}\"",
                self.connection, rule.set, rule.rule.name
            ),
            _ => format!(
                "hoop: blocked by guardrail \"{}\" rule \"{}\": {what} is not allowed on \
                 connection \"{}\"",
                rule.set, rule.rule.name, self.connection
            ),
        };
        Some(Denial {
            action: rule.rule.action,
            set: Some(rule.set.to_string()),
            rule: rule.rule.name.clone(),
            what,
            sqlstate: SQLSTATE_BLOCKED,
            message,
            review: (rule.rule.action == Action::Review)
                .then(|| (rule.rule.approvers.clone(), rule.rule.approvals)),
        })
    }
}

/// Most distinct guardrail set lists [`GuardBook`] keeps compiled.
const BOOK_CAPACITY: usize = 256;

/// The guardrails of every session: a connection's own sets, plus the sets
/// of the policy rule that granted the session, compiled once per distinct
/// list and shared by every session with that list (and so is the decision
/// cache).
#[derive(Debug, Default)]
pub struct GuardBook {
    registry: Registry,
    /// Connection → (its sets, on_unparsable).
    connections: std::collections::HashMap<String, (Vec<String>, UnparsableAction)>,
    /// Compiled guardrails by (connection, set list).
    built: std::sync::Mutex<Built>,
}

/// Compiled guardrails by (connection, set list).
type Built = std::collections::HashMap<(String, Vec<String>), Arc<Guardrails>>;

impl GuardBook {
    /// A book resolving set names in `registry`, for these connections.
    pub fn new<'a>(
        registry: Registry,
        connections: impl IntoIterator<Item = &'a crate::config::ConnectionConfig>,
    ) -> GuardBook {
        GuardBook::from_parts(
            registry,
            connections
                .into_iter()
                .map(|c| (c.name.clone(), c.guardrails.clone(), c.on_unparsable)),
        )
    }

    /// A book for connections given as (name, sets, on_unparsable).
    pub fn from_parts(
        registry: Registry,
        connections: impl IntoIterator<Item = (String, Vec<String>, UnparsableAction)>,
    ) -> GuardBook {
        GuardBook {
            registry,
            connections: connections
                .into_iter()
                .map(|(name, sets, on_unparsable)| (name, (sets, on_unparsable)))
                .collect(),
            built: std::sync::Mutex::default(),
        }
    }

    /// A book holding already compiled guardrails (tests, tools): sessions
    /// get exactly these, plus any policy sets from the built-in registry.
    pub fn prebuilt(guardrails: std::collections::HashMap<String, Arc<Guardrails>>) -> GuardBook {
        let mut connections = std::collections::HashMap::new();
        let mut built = std::collections::HashMap::new();
        for (name, g) in guardrails {
            connections.insert(name.clone(), (g.set_names.clone(), g.on_unparsable));
            built.insert((name, g.set_names.clone()), g);
        }
        GuardBook {
            registry: Registry::builtin(),
            connections,
            built: std::sync::Mutex::new(built),
        }
    }

    /// The guardrails for a session on `connection` granted with the policy
    /// sets `policy_sets`: the connection's sets first, then the policy's
    /// (each once). `None` when both are empty. An unknown set name is an
    /// error (config and policy are validated against the same names, so it
    /// means a race with a change): the caller refuses the session.
    pub fn for_session(
        &self,
        connection: &str,
        policy_sets: &[String],
    ) -> Result<Option<Arc<Guardrails>>, GuardError> {
        let (mut names, on_unparsable) = self
            .connections
            .get(connection)
            .cloned()
            .unwrap_or_default();
        for s in policy_sets {
            if !names.contains(s) {
                names.push(s.clone());
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        let key = (connection.to_owned(), names);
        if let Some(g) = self
            .built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(g.clone()));
        }
        let sets = self.registry.resolve(&key.1)?;
        let g = Arc::new(Guardrails::new(connection, &sets, on_unparsable));
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if built.len() >= BOOK_CAPACITY {
            // Only reached with churning policies; compiling is cheap.
            built.clear();
        }
        Ok(Some(built.entry(key).or_insert(g).clone()))
    }
}

/// Keeps the stricter of the current worst and a newly matched rule.
fn stricter<'a>(
    worst: &mut Option<(&'a CompiledRule, String)>,
    rule: Option<&'a CompiledRule>,
    what: impl FnOnce() -> String,
) {
    let Some(rule) = rule else { return };
    if rule.rule.action == Action::Allow {
        return;
    }
    if worst
        .as_ref()
        .is_none_or(|(w, _)| rule.rule.action > w.rule.action)
    {
        *worst = Some((rule, what()));
    }
}

/// Does any relation match any of the rule's patterns?
fn any_relation_matches<'a>(
    rule: &CompiledRule,
    mut rels: impl Iterator<Item = &'a Relation>,
) -> bool {
    rels.any(|rel| {
        let schema = rel.schema.as_deref().map(str::to_lowercase);
        let name = rel.name.to_lowercase();
        rule.relations
            .iter()
            .any(|p| p.matches(schema.as_deref(), &name))
    })
}

/// Does a kind/relation rule match this operation? Function rules never do.
fn op_matches(rule: &CompiledRule, op: &Op, st: &Statement) -> bool {
    let r = &rule.rule;
    if !r.functions.is_empty() {
        return false;
    }
    if r.kinds.is_empty() {
        return r.relations.is_empty()
            || any_relation_matches(rule, st.relations.iter().chain(op.targets.iter()));
    }
    if !op.kinds.iter().any(|k| r.kinds.contains(k)) {
        return false;
    }
    if r.relations.is_empty() {
        return true;
    }
    // Reads have no targets of their own: what they read is the statement's.
    if op.kinds.contains(&Kind::Select) {
        any_relation_matches(rule, st.relations.iter())
    } else {
        any_relation_matches(rule, op.targets.iter())
    }
}

/// Encodings in which an ASCII byte always means that ASCII character, so
/// the parser (reading UTF-8 / ASCII structure) tokenizes as the server does.
/// The client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) have
/// multi-byte characters whose second byte can be `\` or `'`.
pub fn is_parser_safe_encoding(name: &str) -> bool {
    // PostgreSQL compares encoding names ignoring case and punctuation.
    let clean: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !matches!(
        clean.as_str(),
        "sjis"
            | "shiftjis"
            | "shiftjis2004"
            | "mskanji"
            | "win932"
            | "cp932"
            | "windows932"
            | "big5"
            | "win950"
            | "cp950"
            | "windows950"
            | "gbk"
            | "win936"
            | "cp936"
            | "windows936"
            | "uhc"
            | "win949"
            | "cp949"
            | "windows949"
            | "gb18030"
            | "johab"
    )
}
