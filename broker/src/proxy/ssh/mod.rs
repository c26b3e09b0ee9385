//! The SSH proxy: towards hoopctl's side the broker is an SSH server (its
//! own host key, persisted in the data dir); towards the target it is an SSH
//! client holding the stored credential and checking the pinned host key.
//!
//! Layout:
//!
//! - this file: [`SshProxy`] (the broker's host key and the `ssh`
//!   connections, with their credentials resolved at startup) and the
//!   entry point [`SshProxy::serve`] for one tunnel;
//! - [`client`]: the broker → target leg (TCP, host key pin, login);
//! - [`server`]: the client-facing russh handler: accepts only the
//!   tunnel's one-time key, judges every channel request, rejects by default;
//! - [`bridge`]: carries one session channel's traffic from the target back
//!   to the client (data, stderr, EOF, exit status and signal, close);
//! - [`recording`]: asciicast v2 files for shells, an index of exec
//!   commands (exit codes) and sftp transfers (bytes), under
//!   `DATA_DIR/recordings/`.
//!
//! One tunnel is one SSH connection from the user's `ssh`/`scp`/`sftp`. The
//! broker connects to the target *before* it answers the tunnel hello, so an
//! unreachable target or a changed host key is refused with a clear message
//! that hoopctl prints, and no client ever talks to an unverified target.
//! The user's docs are `docs/ssh.md`.

pub mod bridge;
pub mod client;
pub mod recording;
pub mod server;
pub mod sftp_watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hoop_shared::Secret;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use tokio_util::sync::CancellationToken;

use crate::config::{ConnectionConfig, ConnectionType};
use crate::guard::shell::CommandGuard;
use crate::secrets::{self, CredentialRef};

pub use client::{Upstream, UpstreamError};
pub use recording::Recordings;

/// File (in the data dir) holding the broker's SSH host key.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Bound on reaching and logging in to the target.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on the client's SSH handshake and authentication on the tunnel.
pub const CLIENT_AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit status a client sees for a command the broker refused.
pub const EXIT_REFUSED: u32 = 126;

/// Why the SSH proxy could not be set up or a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host key file could not be read or written.
    #[error("SSH host key {path}: {message}")]
    HostKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A connection's credential could not be loaded.
    #[error("connection {connection}: {message}")]
    Credential {
        /// The connection.
        connection: String,
        /// What went wrong (never the value).
        message: String,
    },
    /// A connection's command rules are invalid.
    #[error("connection {0}: {1}")]
    Rules(String, crate::guard::shell::ShellGuardError),
    /// The client side of the session failed.
    #[error("ssh session: {0}")]
    Session(String),
}

/// The target's credential, loaded at startup. Never printed.
#[derive(Clone)]
pub enum UpstreamCredential {
    /// A private key.
    Key(Arc<PrivateKey>),
    /// A password.
    Password(Secret),
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamCredential::Key(_) => "Key(***)",
            UpstreamCredential::Password(_) => "Password(***)",
        })
    }
}

/// How the target's host key is known.
#[derive(Debug, Clone)]
pub enum HostKeys {
    /// The config's `host_key`.
    Pinned(PublicKey),
    /// Entries for the host in a known_hosts file (read at each connect).
    KnownHosts(PathBuf),
}

/// One `ssh` connection, ready to use.
#[derive(Debug)]
pub struct SshTarget {
    /// Connection name.
    pub connection: String,
    /// Target host.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// Login name on the target.
    pub user: String,
    /// The stored credential.
    pub credential: UpstreamCredential,
    /// The expected host key(s).
    pub host_keys: HostKeys,
    /// Whether interactive shells are offered.
    pub allow_shell: bool,
    /// Whether `direct-tcpip` channels (`ssh -L`, `-W`) are carried.
    pub allow_port_forwarding: bool,
    /// Environment variables the client may set.
    pub allow_env: Vec<String>,
    /// Judges exec commands.
    pub guard: CommandGuard,
}

/// What one tunnel's SSH session needs to know about its broker session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id.
    pub session_id: String,
    /// The hoop user.
    pub user: String,
    /// When the session ends.
    pub expires_at: SystemTime,
    /// Cancelled when the grant behind the session is revoked.
    pub grant: Option<CancellationToken>,
    /// The only key the client may log in with (from the tunnel hello).
    pub client_key: PublicKey,
    /// Who opened it (reviews of held commands are theirs).
    pub requester: crate::review::Requester,
}

/// The broker's SSH side: host key, targets, recordings.
pub struct SshProxy {
    host_key: Arc<PrivateKey>,
    host_key_line: String,
    targets: HashMap<String, Arc<SshTarget>>,
    recordings: Arc<Recordings>,
}

impl std::fmt::Debug for SshProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshProxy")
            .field("host_key", &self.host_key_line)
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Parses one OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`);
/// a known_hosts-style line with a leading host name is accepted too.
pub fn parse_host_key(line: &str) -> Result<PublicKey, String> {
    let line = line.trim();
    if let Ok(k) = PublicKey::from_openssh(line) {
        return Ok(k);
    }
    // `host ssh-ed25519 AAAA...` (ssh-keyscan output).
    if let Some((_, rest)) = line.split_once(char::is_whitespace)
        && let Ok(k) = PublicKey::from_openssh(rest.trim())
    {
        return Ok(k);
    }
    Err("not an OpenSSH public key line (expected e.g. `ssh-ed25519 AAAA...`)".into())
}

/// `SHA256:...` of a key, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl SshProxy {
    /// Loads (or creates) the host key in `data_dir` and resolves every
    /// `ssh` connection's credential. Fails at startup, not at first use.
    pub fn new<'a>(
        data_dir: &Path,
        connections: impl Iterator<Item = &'a ConnectionConfig>,
    ) -> Result<SshProxy, SshError> {
        let mut targets = HashMap::new();
        for c in connections.filter(|c| c.kind == ConnectionType::Ssh) {
            targets.insert(c.name.clone(), Arc::new(target_from_config(c)?));
        }
        // A broker without ssh connections does not need a host key file.
        let host_key = if targets.is_empty() {
            Arc::new(PrivateKey::from(
                russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
                    &hoop_shared::tunnel::one_time_key_seed(),
                ),
            ))
        } else {
            Arc::new(load_or_create_host_key(&data_dir.join(HOST_KEY_FILE))?)
        };
        let host_key_line = host_key
            .public_key()
            .to_openssh()
            .map_err(|e| SshError::HostKey {
                path: data_dir.join(HOST_KEY_FILE),
                message: e.to_string(),
            })?;
        Ok(SshProxy {
            host_key,
            host_key_line,
            targets,
            recordings: Arc::new(Recordings::new(data_dir.join("recordings"))),
        })
    }

    /// The broker's host key as one OpenSSH public key line.
    pub fn host_key_line(&self) -> &str {
        &self.host_key_line
    }

    /// The `ssh` connection named `name`.
    pub fn target(&self, name: &str) -> Option<Arc<SshTarget>> {
        self.targets.get(name).cloned()
    }

    /// The recordings store.
    pub fn recordings(&self) -> &Arc<Recordings> {
        &self.recordings
    }

    /// Connects and logs in to the target (bounded by [`UPSTREAM_TIMEOUT`]).
    pub async fn connect(&self, target: &Arc<SshTarget>) -> Result<Upstream, UpstreamError> {
        client::connect(target).await
    }

    /// Serves one tunnel: the SSH server on `stream`, bridged to `upstream`,
    /// until the client leaves, the session ends or the grant is revoked.
    pub async fn serve<S>(
        &self,
        state: Arc<crate::app::AppState>,
        stream: S,
        info: SessionInfo,
        target: Arc<SshTarget>,
        upstream: Upstream,
    ) -> Result<(), SshError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        server::serve(
            server::ServeArgs {
                host_key: self.host_key.clone(),
                recordings: self.recordings.clone(),
                state,
                info,
                target,
                upstream,
            },
            stream,
        )
        .await
    }
}

fn target_from_config(c: &ConnectionConfig) -> Result<SshTarget, SshError> {
    let err = |message: String| SshError::Credential {
        connection: c.name.clone(),
        message,
    };
    let credential = match (
        &c.private_key_file,
        &c.private_key_env,
        &c.password_env,
        &c.password_file,
    ) {
        (Some(path), _, _, _) => {
            let text = Secret::new(
                std::fs::read_to_string(path)
                    .map_err(|e| err(format!("private_key_file {}: {e}", path.display())))?,
            );
            UpstreamCredential::Key(Arc::new(
                decode_key(text.expose())
                    .map_err(|e| err(format!("private_key_file {}: {e}", path.display())))?,
            ))
        }
        (None, Some(var), _, _) => {
            let text = secrets::resolve(&CredentialRef::Env(var.clone()))
                .map_err(|e| err(format!("private_key_env: {e}")))?;
            UpstreamCredential::Key(Arc::new(
                decode_key(text.expose())
                    .map_err(|e| err(format!("private_key_env {var}: {e}")))?,
            ))
        }
        (None, None, Some(var), _) => UpstreamCredential::Password(
            secrets::resolve(&CredentialRef::Env(var.clone())).map_err(|e| err(e.to_string()))?,
        ),
        (None, None, None, Some(path)) => UpstreamCredential::Password(
            secrets::resolve(&CredentialRef::File(path.clone())).map_err(|e| err(e.to_string()))?,
        ),
        (None, None, None, None) => return Err(err("no credential reference".into())),
    };
    let host_keys = match (&c.host_key, &c.known_hosts_file) {
        (Some(line), _) => HostKeys::Pinned(parse_host_key(line).map_err(err)?),
        (None, Some(path)) => HostKeys::KnownHosts(path.clone()),
        (None, None) => return Err(err("no host_key or known_hosts_file".into())),
    };
    Ok(SshTarget {
        connection: c.name.clone(),
        host: c.host.clone(),
        port: c.port(),
        user: c.user.clone(),
        credential,
        host_keys,
        allow_shell: c.allow_shell.unwrap_or(true),
        allow_port_forwarding: c.allow_port_forwarding,
        allow_env: c.allow_env.clone(),
        guard: CommandGuard::from_config(c).map_err(|e| SshError::Rules(c.name.clone(), e))?,
    })
}

/// Decodes an unencrypted private key (OpenSSH or PKCS#8 PEM). The error
/// says what is wrong with the key, never its content.
fn decode_key(text: &str) -> Result<PrivateKey, String> {
    russh::keys::decode_secret_key(text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            "the key is encrypted; the broker needs an unencrypted key (protect the file \
             instead)"
                .to_owned()
        }
        _ => "not a private key the broker can read (OpenSSH or PKCS#8 PEM)".to_owned(),
    })
}

/// Reads the host key, or makes one (mode 0600) on first start.
fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, SshError> {
    let fail = |message: String| SshError::HostKey {
        path: path.to_owned(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Secret::new(text);
            PrivateKey::from_openssh(text.expose().as_bytes()).map_err(|e| fail(e.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
                &hoop_shared::tunnel::one_time_key_seed(),
            ));
            let text = key
                .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                .map_err(|e| fail(e.to_string()))?;
            let dir = path.parent().unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(HOST_KEY_FILE);
            hoop_shared::client_config::write_private_file(dir, name, text.as_bytes())
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(fingerprint = %fingerprint(key.public_key()), "created the broker's SSH host key");
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        let a = load_or_create_host_key(&path).unwrap();
        let b = load_or_create_host_key(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "host key readable by others: {mode:o}");
    }

    #[test]
    fn host_key_lines_parse_with_or_without_a_host_name() {
        let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[7u8; 32],
        ));
        let line = key.public_key().to_openssh().unwrap();
        assert_eq!(&parse_host_key(&line).unwrap(), key.public_key());
        let scanned = format!("[127.0.0.1]:2222 {line}");
        assert_eq!(&parse_host_key(&scanned).unwrap(), key.public_key());
        assert!(parse_host_key("ssh-ed25519 nope").is_err());
        assert!(fingerprint(key.public_key()).starts_with("SHA256:"));
    }

    #[test]
    fn key_errors_never_echo_the_key() {
        let err = decode_key("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n").unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
