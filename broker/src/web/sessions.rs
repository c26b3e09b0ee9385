//! Server-side state of the approvers' pages: sign-ins in progress and signed-in sessions.
//!
//! The browser holds only random values (the session cookie, the login
//! cookie that doubles as OAuth `state`); the maps are keyed by their
//! SHA-256, so a dump of memory yields no usable cookie. Both maps are
//! bounded and pruned of expired entries on every access; a broker restart
//! signs everyone out (people sign in again, nothing else is lost).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hoop_shared::Secret;

use crate::auth::Identity;

/// How long a sign-in may take at the identity provider.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Longest a page session lasts (never beyond the token it came from).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Cap on each map, so a flood of sign-ins cannot exhaust memory.
const MAX_ENTRIES: usize = 10_000;

/// A message shown once on the next page: the result of the last action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Success (`true`) or refusal.
    pub ok: bool,
    /// For people (escaped when rendered).
    pub text: String,
}

/// A signed-in person.
pub struct WebSession {
    /// Who, as validated from their access token at sign-in.
    pub who: Identity,
    /// Ties forms to this session (hidden field, compared in constant time).
    pub csrf: Secret,
    /// Unix seconds.
    pub expires_at: u64,
    /// Shown once on the next page.
    pub flash: Option<Flash>,
}

struct PendingLogin {
    verifier: Secret,
    expires_at: u64,
}

#[derive(Default)]
struct Maps {
    sessions: HashMap<String, WebSession>,
    logins: HashMap<String, PendingLogin>,
}

/// Both maps behind one lock (every operation is a few map lookups).
#[derive(Default)]
pub struct Sessions {
    maps: Mutex<Maps>,
}

/// The maps are full of live entries.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once; try again in a few minutes")]
pub struct Full;

impl Sessions {
    fn lock(&self, now: u64) -> MutexGuard<'_, Maps> {
        // The maps stay consistent across a panic elsewhere: every update is
        // a single insert or remove.
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        maps.sessions.retain(|_, s| now < s.expires_at);
        maps.logins.retain(|_, l| now < l.expires_at);
        maps
    }

    /// Remembers a sign-in in progress: the `state` (also the login cookie)
    /// and the PKCE verifier to redeem its code with.
    pub fn start_login(&self, state: &Secret, verifier: Secret, now: u64) -> Result<(), Full> {
        let mut maps = self.lock(now);
        if maps.logins.len() >= MAX_ENTRIES {
            return Err(Full);
        }
        maps.logins.insert(
            state.sha256_hex(),
            PendingLogin {
                verifier,
                expires_at: now + LOGIN_TTL.as_secs(),
            },
        );
        Ok(())
    }

    /// The verifier of the sign-in with this `state`, once.
    pub fn finish_login(&self, state: &str, now: u64) -> Option<Secret> {
        let key = Secret::new(state).sha256_hex();
        self.lock(now).logins.remove(&key).map(|l| l.verifier)
    }

    /// A new session for `who` until `expires_at`; returns the cookie value.
    pub fn create(&self, who: Identity, expires_at: u64, now: u64) -> Result<Secret, Full> {
        let mut maps = self.lock(now);
        if maps.sessions.len() >= MAX_ENTRIES {
            return Err(Full);
        }
        let cookie = Secret::generate(32);
        maps.sessions.insert(
            cookie.sha256_hex(),
            WebSession {
                who,
                csrf: Secret::generate(32),
                expires_at,
                flash: None,
            },
        );
        Ok(cookie)
    }

    /// Runs `f` on the live session behind `cookie`.
    pub fn with<R>(
        &self,
        cookie: &str,
        now: u64,
        f: impl FnOnce(&mut WebSession) -> R,
    ) -> Option<R> {
        let key = Secret::new(cookie).sha256_hex();
        self.lock(now).sessions.get_mut(&key).map(f)
    }

    /// Ends the session behind `cookie` (if any).
    pub fn remove(&self, cookie: &str, now: u64) {
        let key = Secret::new(cookie).sha256_hex();
        self.lock(now).sessions.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            subject: "dev:alice".into(),
            user: "alice".into(),
            groups: vec![],
            issuer: "https://x/idp".into(),
            expires_at: 2_000,
            kind: hoop_shared::api::IdentityKind::Person,
            matched_rule: None,
        }
    }

    #[test]
    fn logins_finish_once_and_expire() {
        let s = Sessions::default();
        let state = Secret::generate(32);
        s.start_login(&state, Secret::new("v"), 100).unwrap();
        assert!(s.finish_login("other", 101).is_none());
        assert_eq!(s.finish_login(state.expose(), 101).unwrap().expose(), "v");
        assert!(s.finish_login(state.expose(), 102).is_none(), "used once");

        let late = Secret::generate(32);
        s.start_login(&late, Secret::new("v"), 100).unwrap();
        assert!(
            s.finish_login(late.expose(), 100 + LOGIN_TTL.as_secs())
                .is_none()
        );
    }

    #[test]
    fn sessions_expire_and_end_on_sign_out() {
        let s = Sessions::default();
        let cookie = s.create(alice(), 1_000, 100).unwrap();
        assert_eq!(
            s.with(cookie.expose(), 999, |w| w.who.user.clone())
                .as_deref(),
            Some("alice")
        );
        assert!(s.with(cookie.expose(), 1_000, |_| ()).is_none(), "expired");
        let cookie = s.create(alice(), 1_000, 100).unwrap();
        s.remove(cookie.expose(), 101);
        assert!(s.with(cookie.expose(), 102, |_| ()).is_none(), "signed out");
        assert!(s.with("guess", 102, |_| ()).is_none());
    }
}
