//! Upstream credentials, resolved from references.
//!
//! The config never holds a password, only where to find it: `password_env`
//! (an environment variable of the broker process) or `password_file` (a file
//! readable by the broker; one trailing newline is ignored). Values are read at
//! startup, so a missing one stops the broker with a clear message, and held
//! only as [`Secret`]s. Error messages name the reference, never the value.

use std::path::PathBuf;

use hoop_shared::Secret;

/// Where a credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// An environment variable of the broker process.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialRef::Env(v) => write!(f, "password_env {v}"),
            CredentialRef::File(p) => write!(f, "password_file {}", p.display()),
        }
    }
}

/// A credential reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or empty.
    #[error("{0}: the variable is not set (or empty) in the broker's environment")]
    EnvMissing(CredentialRef),
    /// The file could not be read.
    #[error("{0}: {1}")]
    File(CredentialRef, std::io::Error),
    /// The file is empty or not UTF-8.
    #[error("{0}: the file is empty or not UTF-8 text")]
    FileInvalid(CredentialRef),
}

/// Reads the credential a reference points at.
pub fn resolve(r: &CredentialRef) -> Result<Secret, SecretError> {
    match r {
        CredentialRef::Env(name) => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| SecretError::EnvMissing(r.clone())),
        CredentialRef::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| SecretError::File(r.clone(), e))?;
            let text = String::from_utf8(bytes).map_err(|_| SecretError::FileInvalid(r.clone()))?;
            let value = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(&text);
            if value.is_empty() {
                return Err(SecretError::FileInvalid(r.clone()));
            }
            Ok(Secret::new(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_reference_strips_one_newline_and_errors_never_show_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret-value\n").unwrap();
        let s = resolve(&CredentialRef::File(p.clone())).unwrap();
        assert_eq!(s.expose(), "s3cret-value");
        std::fs::write(&p, "\n").unwrap();
        let err = resolve(&CredentialRef::File(p)).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let err = resolve(&CredentialRef::Env("HOOP_TEST_SURELY_UNSET_VAR".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOOP_TEST_SURELY_UNSET_VAR"), "{err}");
    }
}
