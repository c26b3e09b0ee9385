//! The checkpoint signing key: Ed25519, PKCS#8 PEM on disk (0600), created
//! on first start, and the signing of checkpoints with it.
//!
//! The default file is `DATA_DIR/audit-signing.key`; `[audit]
//! signing_key_file` names another (e.g. one provisioned by a secrets
//! manager, shared by several brokers or not). A key file that other users
//! can read is refused: it may have leaked, and whoever holds it can sign a
//! rewritten history.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::{Signer as _, SigningKey};
use hoop_shared::Secret;
use hoop_shared::audit::{Checkpoint, PublicKeyInfo, checkpoint_message, key_id};

use super::AuditError;

/// Default file name inside the data dir.
pub const KEY_FILE: &str = "audit-signing.key";

/// Signs checkpoints.
pub struct CheckpointSigner {
    key: SigningKey,
    public: PublicKeyInfo,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Loads the key at `file` (or `data_dir/audit-signing.key`), creating
    /// the default file when it does not exist yet.
    pub fn load_or_create(data_dir: &Path, file: Option<&Path>) -> Result<Self, AuditError> {
        let (path, may_create) = match file {
            Some(f) => (f.to_path_buf(), false),
            None => (data_dir.join(KEY_FILE), true),
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(AuditError::Key(format!(
                        "{} is readable by other users (mode {mode:o}); chmod 600 it",
                        path.display()
                    )));
                }
                let pem = Secret::new(std::fs::read_to_string(&path).map_err(|e| {
                    AuditError::Key(format!("cannot read {}: {e}", path.display()))
                })?);
                let key = SigningKey::from_pkcs8_pem(pem.expose()).map_err(|_| {
                    AuditError::Key(format!(
                        "{} is not an Ed25519 PKCS#8 PEM private key",
                        path.display()
                    ))
                })?;
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => Self::create(&path),
            Err(e) => Err(AuditError::Key(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn create(path: &Path) -> Result<Self, AuditError> {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| AuditError::Key(format!("cannot encode the new key: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(KEY_FILE);
        hoop_shared::client_config::write_private_file(dir, name, pem.as_bytes())
            .map_err(|e| AuditError::Key(format!("cannot write {}: {e}", path.display())))?;
        let signer = Self::from_key(key);
        tracing::info!(key_id = %signer.public.key_id, path = %path.display(),
            "created the audit checkpoint signing key");
        Ok(signer)
    }

    /// A signer for a key given in memory (tests).
    pub fn from_key(key: SigningKey) -> Self {
        let pk = key.verifying_key().to_bytes();
        let public = PublicKeyInfo {
            key_id: key_id(&pk),
            public_key: hex::encode(pk),
        };
        CheckpointSigner { key, public }
    }

    /// The public half, as published.
    pub fn public(&self) -> &PublicKeyInfo {
        &self.public
    }

    /// Signs checkpoint `number` over record `seq` with hash `hash`.
    pub fn sign(&self, number: u64, seq: u64, hash: &[u8; 32], time: i64) -> Checkpoint {
        let msg = checkpoint_message(number, seq, hash, time, &self.public.key_id);
        let sig = self.key.sign(&msg);
        Checkpoint {
            number,
            seq,
            hash: hex::encode(hash),
            time,
            key_id: self.public.key_id.clone(),
            signature: hex::encode(sig.to_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_private_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = CheckpointSigner::load_or_create(dir.path(), None).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = CheckpointSigner::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.public(), b.public());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = CheckpointSigner::load_or_create(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");

        // A configured file must exist: it is never made up.
        let e = CheckpointSigner::load_or_create(dir.path(), Some(&dir.path().join("nope")))
            .unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
