//! Sessions, the domain side: the live tunnels under each access grant (so
//! revoking a grant, here or through another broker, ends them at once) and
//! the controls in force for a session ([`controls`]).
//!
//! Opening a session (policy, grant, one-time secret, store row) is in
//! [`open`]; the HTTP endpoints that open, list and close sessions are in
//! `crate::api`.

pub mod controls;
pub mod open;

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

/// Live tunnels by the grant (access request) they run under, so revoking
/// a grant ends them at once.
///
/// Revoked ids are remembered (a revoked grant never comes back), so a
/// tunnel that checked its grant just before a revocation and registers just
/// after it gets an already-cancelled token instead of outliving it.
#[derive(Debug, Default)]
pub struct Grants {
    inner: std::sync::Mutex<GrantsInner>,
}

#[derive(Debug, Default)]
struct GrantsInner {
    live: HashMap<String, CancellationToken>,
    revoked: std::collections::HashSet<String>,
}

/// Revoked ids remembered; past this the oldest knowledge is dropped (the
/// store still refuses those grants to new tunnels).
const MAX_REVOKED_REMEMBERED: usize = 100_000;

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, GrantsInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token cancelled when `request_id` is revoked (already cancelled
    /// when it was).
    pub fn token(&self, request_id: &str) -> CancellationToken {
        let mut g = self.lock();
        if g.revoked.contains(request_id) {
            let t = CancellationToken::new();
            t.cancel();
            return t;
        }
        g.live.entry(request_id.to_owned()).or_default().clone()
    }

    /// Ends every tunnel under `request_id`, now and later.
    pub fn revoke(&self, request_id: &str) {
        let token = {
            let mut g = self.lock();
            if g.revoked.len() >= MAX_REVOKED_REMEMBERED {
                g.revoked.clear();
            }
            g.revoked.insert(request_id.to_owned());
            g.live.remove(request_id)
        };
        if let Some(t) = token {
            t.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Grants;

    #[test]
    fn revocation_ends_live_tunnels_and_those_that_register_after_it() {
        let grants = Grants::default();
        let live = grants.token("r1");
        let other = grants.token("r2");
        grants.revoke("r1");
        assert!(live.is_cancelled());
        assert!(!other.is_cancelled());
        // A tunnel that checked the grant before the revocation and
        // registers after it ends at once.
        assert!(grants.token("r1").is_cancelled());
        grants.revoke("r1"); // idempotent
        assert!(!grants.token("r2").is_cancelled());
    }
}
