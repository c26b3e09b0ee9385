//! The development provider's signing key: an Ed25519 key kept on disk so tokens survive restarts.
//!
//! The key lives at `DATA_DIR/idp/signing-key.pem` (PKCS#8 PEM, mode 0600, in a
//! 0700 directory). A new file is written under a temporary name and renamed
//! into place, so a crash never leaves half a key behind. A key file that other
//! users can read is refused, as OpenSSH does: it may have leaked.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hoop_shared::Secret;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::IdpError;

/// File name of the key inside `DATA_DIR/idp/`.
pub const KEY_FILE: &str = "signing-key.pem";

/// The provider's signing key and its public JWK.
pub(super) struct SigningKey {
    pub(super) encoding: EncodingKey,
    /// RFC 7638 thumbprint of the public key: stable for the life of the key.
    pub(super) kid: String,
    /// The public JWK served at `/jwks`.
    pub(super) jwk: Value,
}

impl SigningKey {
    /// The algorithm every token is signed with.
    pub const ALG: Algorithm = Algorithm::EdDSA;

    /// Loads `dir/signing-key.pem`, or creates it (and `dir`) when missing.
    pub(super) fn load_or_create(dir: &Path) -> Result<SigningKey, IdpError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| IdpError::io("cannot create", dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| IdpError::io("cannot restrict permissions of", dir, e))?;
        let path = dir.join(KEY_FILE);
        match fs::metadata(&path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(IdpError::InsecureKeyFile { path, mode });
                }
                let pem = Secret::new(
                    fs::read_to_string(&path).map_err(|e| IdpError::io("cannot read", &path, e))?,
                );
                SigningKey::from_pem(&pem, &path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| {
                    IdpError::BadKey {
                        path: path.clone(),
                        reason: format!("cannot generate a key: {e}"),
                    }
                })?;
                let pem = Secret::new(key.serialize_pem());
                write_private(&path, &pem)?;
                tracing::info!(path = %path.display(), "generated the development identity provider's signing key");
                SigningKey::from_pem(&pem, &path)
            }
            Err(e) => Err(IdpError::io("cannot read", &path, e)),
        }
    }

    fn from_pem(pem: &Secret, path: &Path) -> Result<SigningKey, IdpError> {
        let bad = |reason: &str| IdpError::BadKey {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let pair = rcgen::KeyPair::from_pem(pem.expose())
            .map_err(|_| bad("not a PKCS#8 PEM private key"))?;
        if pair.algorithm() != &rcgen::PKCS_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        // RFC 7638: SHA-256 over the required members, in lexicographic order.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid,
                         "alg": "EdDSA", "use": "sig"});
        Ok(SigningKey {
            encoding: EncodingKey::from_ed_der(pair.serialized_der()),
            kid,
            jwk,
        })
    }
}

/// Writes `pem` to `path` with mode 0600, atomically (temporary file + rename).
fn write_private(path: &Path, pem: &Secret) -> Result<(), IdpError> {
    let tmp: PathBuf = path.with_extension(format!("pem.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(pem.expose().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(IdpError::io("cannot write", path, e));
    }
    // Make the rename durable; failing here loses nothing already written.
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
