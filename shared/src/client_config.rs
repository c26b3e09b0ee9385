//! hoopctl's settings directory and file.
//!
//! The directory is `$HOOP_CONFIG_DIR` when set, otherwise `<config dir>/hoop`
//! (`~/.config/hoop` on Linux). `config.toml` in it names the broker and, for a
//! broker with a private CA (as `hoop-broker dev` has), the CA certificate
//! file. `hoop-broker dev` writes both, so `hoopctl login` on the same machine
//! needs no flags.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that selects the config directory.
pub const CONFIG_DIR_ENV: &str = "HOOP_CONFIG_DIR";
/// File name of the settings file inside the config directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Errors finding, reading or writing the client config.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// Neither `$HOOP_CONFIG_DIR` nor a home directory is known.
    #[error("cannot find a config directory: set {CONFIG_DIR_ENV} or HOME")]
    NoConfigDir,
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {source}")]
    Parse {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
}

/// Contents of `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Broker base URL, e.g. `https://127.0.0.1:8443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_url: Option<String>,
    /// PEM file with the CA certificate that signs the broker's TLS
    /// certificate, when it is not in the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The config directory (not created).
pub fn config_dir() -> Result<PathBuf, ClientConfigError> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("hoop"))
        .ok_or(ClientConfigError::NoConfigDir)
}

impl ClientConfig {
    /// Reads `config.toml` from `dir`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<Self, ClientConfigError> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|source| ClientConfigError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ClientConfigError::Io { path, source }),
        }
    }

    /// Writes `config.toml` into `dir` atomically (temp file + rename), creating
    /// `dir` with mode 0700 if needed.
    pub fn save(&self, dir: &Path) -> Result<(), ClientConfigError> {
        let text = toml::to_string(self).unwrap_or_default();
        write_private_file(dir, CONFIG_FILE, text.as_bytes())
    }
}

/// Creates `dir` (mode 0700) if needed and atomically writes `name` in it with
/// mode 0600. Used for the config file, the CA file and token files.
pub fn write_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ClientConfigError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ClientConfigError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let final_path = dir.join(name);
    let tmp_path = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp_path)
        .map_err(io(&tmp_path))?;
    f.write_all(bytes).map_err(io(&tmp_path))?;
    f.sync_all().map_err(io(&tmp_path))?;
    drop(f);
    std::fs::rename(&tmp_path, &final_path).map_err(io(&final_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn save_then_load_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hoop");
        let cfg = ClientConfig {
            broker_url: Some("https://127.0.0.1:1".into()),
            ca_file: Some(dir.join("ca.pem")),
        };
        cfg.save(&dir).unwrap();
        assert_eq!(ClientConfig::load(&dir).unwrap(), cfg);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CONFIG_FILE)), 0o600);
    }

    #[test]
    fn missing_file_is_empty_config_and_bad_file_names_itself() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            ClientConfig::load(tmp.path()).unwrap(),
            ClientConfig::default()
        );
        std::fs::write(tmp.path().join(CONFIG_FILE), "broker_ur = 1").unwrap();
        let err = ClientConfig::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("broker_ur"), "{err}");
    }
}
