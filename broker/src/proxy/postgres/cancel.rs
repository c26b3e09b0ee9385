//! Query cancellation across the proxy.
//!
//! A client cancels by opening a *new* connection whose only message is
//! CancelRequest(pid, key), using the BackendKeyData it received at login. The
//! client only ever sees a broker-generated pair, so the registry maps that
//! pair to the upstream server and its real pid/key, and to the session that
//! owns it: a cancel is honoured only when it arrives through a stream of the
//! same session. Entries live exactly as long as the client stream (a guard
//! removes them on drop).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::Message as _;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use rand::Rng as _;
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::upstream::tcp_connect;

/// How long forwarding a cancel may take (connect + send + the server closing).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a broker-issued (pid, key) pair leads.
#[derive(Clone, Debug)]
pub(crate) struct CancelTarget {
    pub session_id: String,
    pub host: String,
    pub port: u16,
    pub pid: i32,
    pub key: i32,
}

struct Entry {
    key: i32,
    target: CancelTarget,
}

/// Broker-issued BackendKeyData pairs of live client streams, keyed by the
/// broker pid.
#[derive(Default)]
pub(crate) struct CancelRegistry {
    entries: Mutex<HashMap<i32, Entry>>,
}

impl CancelRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Entry>> {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every operation is a single insert/remove/get).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a fresh random (pid, key) pair for `target`; the pair is
    /// forgotten when the returned guard drops.
    pub fn register(self: &Arc<Self>, target: CancelTarget) -> CancelGuard {
        let mut rng = rand::rng();
        let mut entries = self.lock();
        let pid = loop {
            // Positive, like a real process id, and unique among live streams.
            let pid = rng.random_range(1..=i32::MAX);
            if !entries.contains_key(&pid) {
                break pid;
            }
        };
        let key: i32 = rng.random();
        entries.insert(pid, Entry { key, target });
        CancelGuard {
            registry: Arc::clone(self),
            pid,
            key,
        }
    }

    /// The target of a cancel request, if the pair is live and belongs to `session_id`.
    pub fn lookup(&self, pid: i32, key: i32, session_id: &str) -> Option<CancelTarget> {
        let entries = self.lock();
        let entry = entries.get(&pid)?;
        let key_ok: bool = entry.key.to_be_bytes().ct_eq(&key.to_be_bytes()).into();
        let session_ok: bool = entry
            .target
            .session_id
            .as_bytes()
            .ct_eq(session_id.as_bytes())
            .into();
        (key_ok && session_ok).then(|| entry.target.clone())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Keeps a (pid, key) pair registered while alive.
pub(crate) struct CancelGuard {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub key: i32,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.pid);
    }
}

/// Sends CancelRequest(pid, key) to the server on a new connection and waits
/// (bounded) for the server to close it, which it does once the request is
/// processed: the client's own cancel connection stays open until then, as it
/// would against the server directly.
pub(crate) async fn forward_cancel(target: &CancelTarget) -> Result<(), String> {
    let work = async {
        let mut stream = tcp_connect(&target.host, target.port).await?;
        let mut out = BytesMut::new();
        CancelRequest::new(target.pid, SecretKey::I32(target.key))
            .encode(&mut out)
            .map_err(|e| e.to_string())?;
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut sink = [0u8; 64];
        // The server answers nothing; it closes the connection.
        while stream.read(&mut sink).await.map_err(|e| e.to_string())? > 0 {}
        Ok(())
    };
    tokio::time::timeout(CANCEL_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(session: &str) -> CancelTarget {
        CancelTarget {
            session_id: session.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: 5432,
            pid: 42,
            key: 7,
        }
    }

    #[test]
    fn pairs_resolve_only_for_their_session_and_die_with_the_guard() {
        let registry = Arc::new(CancelRegistry::default());
        let guard = registry.register(target("s1"));
        let found = registry.lookup(guard.pid, guard.key, "s1").unwrap();
        assert_eq!((found.pid, found.key), (42, 7));
        assert!(registry.lookup(guard.pid, guard.key, "s2").is_none());
        assert!(
            registry
                .lookup(guard.pid, guard.key.wrapping_add(1), "s1")
                .is_none()
        );
        let (pid, key) = (guard.pid, guard.key);
        drop(guard);
        assert!(registry.lookup(pid, key, "s1").is_none());
        assert_eq!(registry.len(), 0);
    }
}
