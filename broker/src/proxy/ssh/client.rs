//! The broker → target leg: TCP, SSH key exchange with the host key checked
//! against the pin (or known_hosts file), then login with the stored
//! credential. Everything is bounded by [`super::UPSTREAM_TIMEOUT`].
//!
//! A host key that does not match is refused before any credential is sent,
//! and the error names the connection and both fingerprints, so the person
//! who sees it can tell a rotated key from an attack and knows what to fix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use super::{HostKeys, SshTarget, UPSTREAM_TIMEOUT, UpstreamCredential, fingerprint};

/// A logged-in connection to the target.
pub struct Upstream {
    /// The russh client handle (opens channels).
    pub handle: client::Handle<PinnedHost>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream")
    }
}

/// Why the target could not be used. Every message is fit for the user:
/// it names the connection and never a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed.
    #[error("cannot reach {connection} at {addr}: {reason}")]
    Unreachable {
        /// Connection name.
        connection: String,
        /// host:port.
        addr: String,
        /// The OS's words.
        reason: String,
    },
    /// The host key is not the pinned one.
    #[error(
        "the SSH host key of {connection} ({addr}) is not the one the broker was given: expected \
         {expected}, the server presented {presented}; if the server's key was rotated, an admin \
         must update host_key (or known_hosts_file) in the broker config"
    )]
    HostKeyMismatch {
        /// Connection name.
        connection: String,
        /// host:port.
        addr: String,
        /// Fingerprint(s) configured.
        expected: String,
        /// Fingerprint presented.
        presented: String,
    },
    /// The known_hosts file has no entry (or is unreadable).
    #[error("{connection}: {message}")]
    KnownHosts {
        /// Connection name.
        connection: String,
        /// What is wrong.
        message: String,
    },
    /// The target refused the stored credential.
    #[error("{connection}: the target refused the broker's credential for user {user}")]
    LoginRefused {
        /// Connection name.
        connection: String,
        /// Login name.
        user: String,
    },
    /// The SSH protocol failed.
    #[error("{connection}: SSH to the target failed: {reason}")]
    Protocol {
        /// Connection name.
        connection: String,
        /// russh's words.
        reason: String,
    },
    /// It all took too long.
    #[error("{connection}: the target did not complete the SSH login within {}s", UPSTREAM_TIMEOUT.as_secs())]
    Timeout {
        /// Connection name.
        connection: String,
    },
}

/// The russh client handler: checks the host key, rejects every channel
/// the target tries to open towards the broker (russh's default).
pub struct PinnedHost {
    expected: Vec<PublicKey>,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for PinnedHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            // Host certificates are not part of the pin; refuse.
            return Ok(false);
        };
        if let Ok(mut seen) = self.presented.lock() {
            *seen = Some(key.clone());
        }
        Ok(self
            .expected
            .iter()
            .any(|want| want.key_data() == key.key_data()))
    }
}

/// Connects to `target` and logs in.
pub async fn connect(target: &Arc<SshTarget>) -> Result<Upstream, UpstreamError> {
    tokio::time::timeout(UPSTREAM_TIMEOUT, connect_untimed(target))
        .await
        .map_err(|_| UpstreamError::Timeout {
            connection: target.connection.clone(),
        })?
}

async fn connect_untimed(target: &Arc<SshTarget>) -> Result<Upstream, UpstreamError> {
    let connection = target.connection.clone();
    let addr = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let expected = match &target.host_keys {
        HostKeys::Pinned(k) => vec![k.clone()],
        HostKeys::KnownHosts(path) => {
            let found =
                russh::keys::known_hosts::known_host_keys_path(&target.host, target.port, path)
                    .map_err(|e| UpstreamError::KnownHosts {
                        connection: connection.clone(),
                        message: format!("known_hosts_file {}: {e}", path.display()),
                    })?;
            if found.is_empty() {
                return Err(UpstreamError::KnownHosts {
                    connection: connection.clone(),
                    message: format!(
                        "known_hosts_file {} has no key for {addr}; add one (e.g. with \
                         `ssh-keyscan -p {} {}`) after checking it out of band",
                        path.display(),
                        target.port,
                        target.host
                    ),
                });
            }
            found.into_iter().map(|(_, k)| k).collect()
        }
    };
    let socket = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| UpstreamError::Unreachable {
            connection: connection.clone(),
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    let _ = socket.set_nodelay(true);
    let presented = Arc::new(Mutex::new(None));
    let handler = PinnedHost {
        expected: expected.clone(),
        presented: presented.clone(),
    };
    let config = Arc::new(client::Config {
        // Interactive sessions may idle for long; keepalives find dead peers.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        ..Default::default()
    });
    let mut handle = match client::connect_stream(config, socket, handler).await {
        Ok(h) => h,
        Err(e) => {
            let seen = presented.lock().ok().and_then(|s| s.clone());
            if let Some(key) = seen
                && !expected.iter().any(|k| k.key_data() == key.key_data())
            {
                return Err(UpstreamError::HostKeyMismatch {
                    connection,
                    addr,
                    expected: expected
                        .iter()
                        .map(fingerprint)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    presented: format!("{} ({})", fingerprint(&key), key.algorithm()),
                });
            }
            return Err(UpstreamError::Protocol {
                connection,
                reason: e.to_string(),
            });
        }
    };
    let protocol = |e: russh::Error| UpstreamError::Protocol {
        connection: target.connection.clone(),
        reason: e.to_string(),
    };
    let auth = match &target.credential {
        UpstreamCredential::Key(key) => {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(protocol)?
                .flatten();
            handle
                .authenticate_publickey(
                    target.user.clone(),
                    PrivateKeyWithHashAlg::new(key.clone(), hash),
                )
                .await
                .map_err(protocol)?
        }
        UpstreamCredential::Password(pw) => handle
            .authenticate_password(target.user.clone(), pw.expose())
            .await
            .map_err(protocol)?,
    };
    if !auth.success() {
        return Err(UpstreamError::LoginRefused {
            connection: target.connection.clone(),
            user: target.user.clone(),
        });
    }
    Ok(Upstream { handle })
}
