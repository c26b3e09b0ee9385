//! A bounded map from statement text to its decision, so repeated
//! statements (pgbench, ORMs, prepared-statement churn) cost one hash lookup
//! instead of a parse.
//!
//! The key is the exact text, except that numeric constants outside any
//! parentheses are replaced by `0` ([`cache_key`]): `... WHERE aid = 17` and
//! `... WHERE aid = 42` share one entry. This is sound because no guardrail
//! rule looks at the value of a numeric constant outside a function call's
//! argument list (the one rule that reads a number, `set_config`'s
//! `is_local`, sees it inside parentheses, where constants are kept). The
//! constants are found by PostgreSQL's own lexer (`pg_query::scan_tokens`),
//! not by pattern matching, and the key is itself SQL whose verdict is the
//! original's; text the lexer rejects is keyed as it is.
//!
//! Two generations approximate LRU without per-hit bookkeeping: lookups try
//! the young map, then the old one (promoting a hit); when the young map is
//! full it becomes the old one and the previous old one is dropped. So the
//! cache never holds more than `2 × capacity` entries and keeps whatever was
//! used during the last generation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Decision;

/// Statements longer than this are judged every time (and never held in memory).
pub const MAX_CACHED_TEXT: usize = 16 * 1024;

/// The cache key of `sql` (see the module docs): the text with every
/// numeric constant at parenthesis depth 0 replaced by `0`.
pub fn cache_key(sql: &str) -> Cow<'_, str> {
    use pg_query::protobuf::Token;
    if !sql.bytes().any(|b| b.is_ascii_digit()) || sql.len() > MAX_CACHED_TEXT {
        return Cow::Borrowed(sql);
    }
    let Ok(tokens) = pg_query::scan_tokens(sql) else {
        return Cow::Borrowed(sql);
    };
    let mut depth = 0usize;
    let mut key = String::new();
    let mut copied = 0usize; // bytes of `sql` already in `key`
    for t in &tokens {
        match Token::try_from(t.token) {
            Ok(Token::Ascii40) => depth += 1,
            Ok(Token::Ascii41) => depth = depth.saturating_sub(1),
            Ok(Token::Iconst | Token::Fconst) if depth == 0 => {
                let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end))
                else {
                    return Cow::Borrowed(sql);
                };
                let (Some(before), Some(_)) = (sql.get(copied..start), sql.get(start..end)) else {
                    return Cow::Borrowed(sql);
                };
                key.push_str(before);
                key.push('0');
                copied = end;
            }
            _ => {}
        }
    }
    if copied == 0 {
        return Cow::Borrowed(sql);
    }
    match sql.get(copied..) {
        Some(rest) => {
            key.push_str(rest);
            Cow::Owned(key)
        }
        None => Cow::Borrowed(sql),
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct VerdictCache {
    capacity: usize,
    maps: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Box<str>, Arc<Decision>>,
    old: HashMap<Box<str>, Arc<Decision>>,
}

impl VerdictCache {
    /// A cache holding at most about `2 × capacity` decisions.
    pub fn new(capacity: usize) -> VerdictCache {
        VerdictCache {
            capacity: capacity.max(1),
            maps: Mutex::new(Generations::default()),
        }
    }

    /// The cached decision for `text`, or `judge(text)` (then cached).
    pub fn get_or_insert_with(
        &self,
        text: &str,
        judge: impl FnOnce() -> Decision,
    ) -> Arc<Decision> {
        if text.len() > MAX_CACHED_TEXT {
            return Arc::new(judge());
        }
        if let Some(hit) = self.lookup(text) {
            return hit;
        }
        // Judge outside the lock: parsing is the slow part and other
        // sessions of the connection should not wait for it.
        let decision = Arc::new(judge());
        self.insert(text, decision.clone());
        decision
    }

    fn lookup(&self, text: &str) -> Option<Arc<Decision>> {
        let mut g = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = g.young.get(text) {
            return Some(d.clone());
        }
        let (key, d) = g.old.remove_entry(text)?;
        g.young.insert(key, d.clone());
        Some(d)
    }

    fn insert(&self, text: &str, decision: Arc<Decision>) {
        let mut g = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if g.young.len() >= self.capacity {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(text.into(), decision);
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        let g = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        g.young.len() + g.old.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_recently_used() {
        let c = VerdictCache::new(2);
        let mut judged = 0;
        for t in ["a", "b", "c", "a", "d", "e"] {
            c.get_or_insert_with(t, || {
                judged += 1;
                Decision::Allow
            });
        }
        assert!(c.len() <= 4);
        // "a" was judged once: its second use hit the old generation.
        assert_eq!(judged, 5);
        let big = "x".repeat(MAX_CACHED_TEXT + 1);
        c.get_or_insert_with(&big, || Decision::Allow);
        assert!(c.len() <= 4);
    }

    #[test]
    fn numbers_outside_parentheses_share_a_key() {
        let a = cache_key("SELECT abalance FROM pgbench_accounts WHERE aid = 17;");
        let b = cache_key("SELECT abalance FROM pgbench_accounts WHERE aid = 904211;");
        assert_eq!(a, b);
        assert_eq!(a, "SELECT abalance FROM pgbench_accounts WHERE aid = 0;");
        assert_eq!(cache_key("select 1.5e3, 2 limit 10"), "select 0, 0 limit 0");
        // Inside parentheses (function arguments, IN lists) constants stay.
        for kept in [
            "select set_config('a', 'b', 0)",
            "select * from t where id in (1, 2)",
            "select pg_terminate_backend(4242)",
        ] {
            assert_eq!(cache_key(kept), kept);
        }
        // Digits inside strings, identifiers and comments are not constants.
        for kept in [
            "select 'x1'",
            "select c1 from t2",
            "select /* 7 */ x",
            "select $1",
        ] {
            assert!(matches!(cache_key(kept), Cow::Borrowed(_)), "{kept}");
        }
        assert_eq!(cache_key("select 1 /* 7 */"), "select 0 /* 7 */");
        // Text the lexer rejects is its own key.
        assert_eq!(
            cache_key("select 'unterminated 1"),
            "select 'unterminated 1"
        );
    }
}
