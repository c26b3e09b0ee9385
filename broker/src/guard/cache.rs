//! A bounded map from exact statement text to its decision, so repeated
//! statements (pgbench, ORMs, prepared-statement churn) cost one hash lookup
//! instead of a parse.
//!
//! Two generations approximate LRU without per-hit bookkeeping: lookups try
//! the young map, then the old one (promoting a hit); when the young map is
//! full it becomes the old one and the previous old one is dropped. So the
//! cache never holds more than `2 × capacity` entries and keeps whatever was
//! used during the last generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Decision;

/// Statements longer than this are judged every time (and never held in memory).
pub const MAX_CACHED_TEXT: usize = 16 * 1024;

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
}
