//! Where a login's tokens are kept between commands.
//!
//! The tokens are one JSON document ([`StoredTokens`]). By default
//! ([`StoreMode::Auto`]) it goes into the OS keyring (service `hoopctl`, one
//! entry per settings directory, so two `HOOP_CONFIG_DIR`s never share a
//! login); where no keyring is reachable (a headless Linux box has no D-Bus
//! session) it falls back to `<settings dir>/tokens.json`, mode 0600, written
//! atomically (temp file + rename) into a directory created 0700.
//!
//! `HOOP_TOKEN_STORE=file` forces the file, `=keyring` forces the keyring (and
//! fails where there is none). Tokens that do not come from a login
//! (`--token-file`, `HOOP_ID_TOKEN`, `HOOP_TOKEN`, a CI platform's token) are
//! found by [`super::source`] and never pass through this store.
//!
//! Token values are [`Secret`]s: they are written only into the store itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hoop_shared::Secret;
use hoop_shared::client_config::{ClientConfigError, write_private_file};
use serde::{Deserialize, Serialize};

/// Keyring service name.
pub const KEYRING_SERVICE: &str = "hoopctl";
/// File name of the fallback store inside the settings directory.
pub const TOKEN_FILE: &str = "tokens.json";
/// Environment variable choosing the store: `auto`, `keyring` or `file`.
pub const STORE_ENV: &str = "HOOP_TOKEN_STORE";

/// How long a keyring operation may take before hoopctl gives up on the
/// keyring (a D-Bus service that never answers must not hang every command).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(5);

/// A login, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    /// Bearer token presented to the broker.
    #[serde(with = "secret_field")]
    pub access_token: Secret,
    /// Used to get a new access token without a new login.
    #[serde(
        default,
        with = "opt_secret_field",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Secret>,
    /// The OIDC ID token, kept for identity display and future use.
    #[serde(
        default,
        with = "opt_secret_field",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_token: Option<Secret>,
    /// When the access token expires, Unix seconds (unknown: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The broker this login is for.
    pub broker_url: String,
}

mod secret_field {
    use hoop_shared::Secret;
    pub fn serialize<S: serde::Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        <Secret as serde::Deserialize>::deserialize(d)
    }
}

mod opt_secret_field {
    use hoop_shared::Secret;
    pub fn serialize<S: serde::Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v.expose()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        <Option<Secret> as serde::Deserialize>::deserialize(d)
    }
}

/// Which store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// The keyring where it works, else the file.
    Auto,
    /// Only the keyring.
    Keyring,
    /// Only the file.
    File,
}

impl StoreMode {
    /// Parses the value of `HOOP_TOKEN_STORE` (unset or empty: `auto`).
    pub fn parse(value: Option<&str>) -> Result<Self, StoreError> {
        match value.map(str::trim) {
            None | Some("") | Some("auto") => Ok(StoreMode::Auto),
            Some("keyring") => Ok(StoreMode::Keyring),
            Some("file") => Ok(StoreMode::File),
            Some(other) => Err(StoreError::BadMode(other.to_owned())),
        }
    }
}

/// Where the token in use was found (or a login put).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `--token-file PATH`.
    TokenFile(PathBuf),
    /// An environment variable holding the token (`HOOP_ID_TOKEN`, `HOOP_TOKEN`).
    Env(&'static str),
    /// The GitHub Actions OIDC token service, asked for this audience.
    GithubActions {
        /// The `aud` requested.
        audience: String,
    },
    /// A Kubernetes projected service account token.
    Kubernetes(PathBuf),
    /// The OS keyring, under this entry name.
    Keyring(String),
    /// This file.
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::TokenFile(path) => write!(f, "--token-file {}", path.display()),
            Location::Env(var) => write!(f, "the {var} environment variable"),
            Location::GithubActions { audience } => write!(
                f,
                "the GitHub Actions OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL, audience {audience:?})"
            ),
            Location::Kubernetes(path) => {
                write!(f, "the Kubernetes projected token {}", path.display())
            }
            Location::Keyring(entry) => {
                write!(
                    f,
                    "the OS keyring (service {KEYRING_SERVICE:?}, entry {entry:?})"
                )
            }
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Errors of the token store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `HOOP_TOKEN_STORE` has an unknown value.
    #[error("{STORE_ENV}={0:?} is not one of auto, keyring, file")]
    BadMode(String),
    /// The keyring failed (or is absent).
    #[error("the OS keyring is not available: {0}")]
    Keyring(String),
    /// The token file could not be read or written.
    #[error("token file {}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] ClientConfigError),
    /// The login could not be encoded (not expected to happen).
    #[error("cannot encode the login: {0}")]
    Encode(String),
    /// The stored document is not a login hoopctl can read.
    #[error("the login stored in {location} is unreadable ({reason}): run `hoopctl login`")]
    Corrupt {
        /// Where.
        location: Location,
        /// What was wrong (never the content).
        reason: String,
    },
}

/// One place a login document can be kept.
pub trait Backend: Send + Sync {
    /// Where this backend keeps the document.
    fn location(&self) -> Location;
    /// The document, if one is stored.
    fn load(&self) -> Result<Option<Secret>, StoreError>;
    /// Stores the document, replacing any previous one.
    fn save(&self, document: &Secret) -> Result<(), StoreError>;
    /// Removes the document; true if there was one.
    fn delete(&self) -> Result<bool, StoreError>;
}

/// `<dir>/tokens.json`, 0600, written atomically.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    /// The file store in `dir`.
    pub fn new(dir: &Path) -> Self {
        FileBackend {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(TOKEN_FILE)
    }
}

impl Backend for FileBackend {
    fn location(&self) -> Location {
        Location::File(self.path())
    }

    fn load(&self) -> Result<Option<Secret>, StoreError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Secret::new(text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::File { path, source }),
        }
    }

    fn save(&self, document: &Secret) -> Result<(), StoreError> {
        write_private_file(&self.dir, TOKEN_FILE, document.expose().as_bytes())?;
        Ok(())
    }

    fn delete(&self) -> Result<bool, StoreError> {
        let path = self.path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::File { path, source }),
        }
    }
}

/// The OS keyring (`keyring` crate: Secret Service, Keychain, Credential Manager).
#[derive(Debug, Clone)]
pub struct KeyringBackend {
    entry: String,
}

impl KeyringBackend {
    /// The keyring entry for the settings directory `dir`.
    pub fn new(dir: &Path) -> Self {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        KeyringBackend {
            entry: format!("tokens:{}", dir.display()),
        }
    }

    /// Runs a keyring call on its own thread with a deadline: a keyring
    /// daemon that never answers must not hang hoopctl.
    fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<T, keyring::Error> {
        let entry = self.entry.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let result = keyring::Entry::new(KEYRING_SERVICE, &entry).and_then(|e| op(&e));
            let _ = tx.send(result);
        });
        rx.recv_timeout(KEYRING_TIMEOUT).unwrap_or_else(|_| {
            Err(keyring::Error::NotSupportedByStore(format!(
                "no answer within {}s",
                KEYRING_TIMEOUT.as_secs()
            )))
        })
    }
}

impl Backend for KeyringBackend {
    fn location(&self) -> Location {
        Location::Keyring(self.entry.clone())
    }

    fn load(&self) -> Result<Option<Secret>, StoreError> {
        match self.call(|e| e.get_password()) {
            Ok(doc) => Ok(Some(Secret::new(doc))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(StoreError::Keyring(e.to_string())),
        }
    }

    fn save(&self, document: &Secret) -> Result<(), StoreError> {
        let doc = document.clone();
        self.call(move |e| e.set_password(doc.expose()))
            .map_err(|e| StoreError::Keyring(e.to_string()))
    }

    fn delete(&self) -> Result<bool, StoreError> {
        match self.call(|e| e.delete_credential()) {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(StoreError::Keyring(e.to_string())),
        }
    }
}

/// A login found in the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The tokens.
    pub tokens: StoredTokens,
    /// Where they came from.
    pub location: Location,
}

/// The token store: keyring and/or file.
pub struct TokenStore {
    mode: StoreMode,
    keyring: Box<dyn Backend>,
    file: FileBackend,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("mode", &self.mode)
            .field("keyring", &self.keyring.location())
            .field("file", &self.file.location())
            .finish()
    }
}

impl TokenStore {
    /// The store for settings directory `dir`, configured from `HOOP_TOKEN_STORE`.
    pub fn from_env(dir: &Path) -> Result<Self, StoreError> {
        let mode = StoreMode::parse(std::env::var(STORE_ENV).ok().as_deref())?;
        Ok(Self::new(dir, mode, Box::new(KeyringBackend::new(dir))))
    }

    /// A store with explicit settings (tests use a stand-in keyring).
    pub fn new(dir: &Path, mode: StoreMode, keyring: Box<dyn Backend>) -> Self {
        TokenStore {
            mode,
            keyring,
            file: FileBackend::new(dir),
        }
    }

    /// The login, if any.
    pub fn load(&self) -> Result<Option<Loaded>, StoreError> {
        let found = match self.mode {
            StoreMode::File => self.file.load()?.map(|d| (d, self.file.location())),
            StoreMode::Keyring => self.keyring.load()?.map(|d| (d, self.keyring.location())),
            StoreMode::Auto => match self.keyring.load() {
                Ok(Some(doc)) => Some((doc, self.keyring.location())),
                Ok(None) | Err(_) => self.file.load()?.map(|d| (d, self.file.location())),
            },
        };
        let Some((doc, location)) = found else {
            return Ok(None);
        };
        match serde_json::from_str::<StoredTokens>(doc.expose()) {
            Ok(tokens) => Ok(Some(Loaded { tokens, location })),
            Err(e) => Err(StoreError::Corrupt {
                location,
                // serde_json's messages name positions and types, not content.
                reason: e.to_string(),
            }),
        }
    }

    /// Stores a login; says where it went.
    pub fn save(&self, tokens: &StoredTokens) -> Result<Location, StoreError> {
        let doc = Secret::new(
            serde_json::to_string(tokens).map_err(|e| StoreError::Encode(e.to_string()))?,
        );
        match self.mode {
            StoreMode::File => {
                self.file.save(&doc)?;
                Ok(self.file.location())
            }
            StoreMode::Keyring => {
                self.keyring.save(&doc)?;
                Ok(self.keyring.location())
            }
            StoreMode::Auto => match self.keyring.save(&doc) {
                Ok(()) => {
                    // An older file login would otherwise outlive this one.
                    let _ = self.file.delete();
                    Ok(self.keyring.location())
                }
                Err(e) => {
                    tracing::debug!("keyring unavailable, using the token file: {e}");
                    self.file.save(&doc)?;
                    Ok(self.file.location())
                }
            },
        }
    }

    /// Deletes the login from both stores; returns where one was found.
    /// A keyring that is not there is not an error (there is nothing in it).
    pub fn delete(&self) -> Result<Vec<Location>, StoreError> {
        let mut removed = Vec::new();
        match self.keyring.delete() {
            Ok(true) => removed.push(self.keyring.location()),
            Ok(false) => {}
            Err(e) if self.mode == StoreMode::Keyring => return Err(e),
            Err(e) => tracing::debug!("keyring not consulted: {e}"),
        }
        if self.file.delete()? {
            removed.push(self.file.location());
        }
        Ok(removed)
    }

    /// Where a login would be stored now (for `whoami -v`).
    pub fn describe_mode(&self) -> String {
        match self.mode {
            StoreMode::Auto => "auto: the OS keyring, or the token file where there is none".into(),
            StoreMode::Keyring => format!("keyring ({STORE_ENV}=keyring)"),
            StoreMode::File => format!("file ({STORE_ENV}=file)"),
        }
    }
}

/// A keyring stand-in for tests elsewhere in the crate.
#[cfg(test)]
pub mod test_support {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A keyring stand-in: the real one needs a desktop session this machine lacks.
    #[derive(Clone, Default)]
    pub struct FakeKeyring {
        /// The stored document.
        pub doc: Arc<Mutex<Option<String>>>,
        /// Every call fails, as without D-Bus.
        pub broken: bool,
    }

    impl Backend for FakeKeyring {
        fn location(&self) -> Location {
            Location::Keyring("fake".into())
        }
        fn load(&self) -> Result<Option<Secret>, StoreError> {
            if self.broken {
                return Err(StoreError::Keyring("no D-Bus".into()));
            }
            Ok(self.doc.lock().unwrap().clone().map(Secret::new))
        }
        fn save(&self, document: &Secret) -> Result<(), StoreError> {
            if self.broken {
                return Err(StoreError::Keyring("no D-Bus".into()));
            }
            *self.doc.lock().unwrap() = Some(document.expose().to_owned());
            Ok(())
        }
        fn delete(&self) -> Result<bool, StoreError> {
            if self.broken {
                return Err(StoreError::Keyring("no D-Bus".into()));
            }
            Ok(self.doc.lock().unwrap().take().is_some())
        }
    }

    impl FakeKeyring {
        /// True when nothing is stored.
        pub fn is_empty(&self) -> bool {
            self.doc.lock().unwrap().is_none()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::FakeKeyring;
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn tokens(access: &str) -> StoredTokens {
        StoredTokens {
            access_token: Secret::new(access),
            refresh_token: Some(Secret::new("refresh-1")),
            id_token: Some(Secret::new("id-1")),
            expires_at: Some(1_700_000_000),
            broker_url: "https://b:1".into(),
        }
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn mode_parsing() {
        assert_eq!(StoreMode::parse(None).unwrap(), StoreMode::Auto);
        assert_eq!(StoreMode::parse(Some("")).unwrap(), StoreMode::Auto);
        assert_eq!(StoreMode::parse(Some("file")).unwrap(), StoreMode::File);
        assert_eq!(
            StoreMode::parse(Some("keyring")).unwrap(),
            StoreMode::Keyring
        );
        let err = StoreMode::parse(Some("vault")).unwrap_err().to_string();
        assert!(
            err.contains("HOOP_TOKEN_STORE") && err.contains("vault"),
            "{err}"
        );
    }

    #[test]
    fn file_store_is_private_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hoop");
        let store = TokenStore::new(&dir, StoreMode::File, Box::new(FakeKeyring::default()));
        assert!(store.load().unwrap().is_none());
        let loc = store.save(&tokens("access-1")).unwrap();
        assert_eq!(loc, Location::File(dir.join(TOKEN_FILE)));
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&dir.join(TOKEN_FILE)), 0o600);
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.tokens.access_token.expose(), "access-1");
        assert_eq!(loaded.tokens.refresh_token.unwrap().expose(), "refresh-1");
        assert_eq!(loaded.tokens.id_token.unwrap().expose(), "id-1");
        assert_eq!(loaded.tokens.expires_at, Some(1_700_000_000));
    }

    #[test]
    fn file_writes_replace_atomically_without_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FakeKeyring::default()),
        );
        store.save(&tokens(&"a".repeat(5000))).unwrap();
        store.save(&tokens("short")).unwrap();
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [TOKEN_FILE], "temp files left behind");
        // The whole document was replaced, not overwritten in place.
        let text = std::fs::read_to_string(tmp.path().join(TOKEN_FILE)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["access_token"], "short");
    }

    #[test]
    fn auto_mode_prefers_the_keyring_and_falls_back_to_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let keyring = FakeKeyring::default();
        let store = TokenStore::new(tmp.path(), StoreMode::Auto, Box::new(keyring.clone()));
        assert_eq!(
            store.save(&tokens("k")).unwrap(),
            Location::Keyring("fake".into())
        );
        assert!(
            !tmp.path().join(TOKEN_FILE).exists(),
            "keyring login leaked to disk"
        );
        assert_eq!(
            store.load().unwrap().unwrap().location,
            Location::Keyring("fake".into())
        );

        let broken = FakeKeyring {
            broken: true,
            ..FakeKeyring::default()
        };
        let store = TokenStore::new(tmp.path(), StoreMode::Auto, Box::new(broken));
        let loc = store.save(&tokens("f")).unwrap();
        assert_eq!(loc, Location::File(tmp.path().join(TOKEN_FILE)));
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.tokens.access_token.expose(), "f");
        // Logout with no keyring still removes the file.
        assert_eq!(store.delete().unwrap(), [loc]);
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn keyring_mode_does_not_fall_back() {
        let tmp = tempfile::tempdir().unwrap();
        let broken = FakeKeyring {
            broken: true,
            ..FakeKeyring::default()
        };
        let store = TokenStore::new(tmp.path(), StoreMode::Keyring, Box::new(broken));
        assert!(matches!(
            store.save(&tokens("x")),
            Err(StoreError::Keyring(_))
        ));
        assert!(!tmp.path().join(TOKEN_FILE).exists());
    }

    #[test]
    fn logout_removes_the_login_from_both_stores() {
        let tmp = tempfile::tempdir().unwrap();
        let keyring = FakeKeyring::default();
        TokenStore::new(tmp.path(), StoreMode::File, Box::new(keyring.clone()))
            .save(&tokens("f"))
            .unwrap();
        let store = TokenStore::new(tmp.path(), StoreMode::Auto, Box::new(keyring.clone()));
        *keyring.doc.lock().unwrap() = Some(serde_json::to_string(&tokens("k")).unwrap());
        let removed = store.delete().unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(store.load().unwrap().is_none());
        assert!(store.delete().unwrap().is_empty());
    }

    #[test]
    fn corrupt_store_says_what_to_do_without_echoing_content() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(TOKEN_FILE), "{\"access_token\": \"sekrit\"").unwrap();
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FakeKeyring::default()),
        );
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("hoopctl login"), "{err}");
        assert!(!err.contains("sekrit"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let t = tokens("access-secret-value");
        let shown = format!("{t:?}");
        assert!(!shown.contains("access-secret-value"), "{shown}");
        assert!(!shown.contains("refresh-1"), "{shown}");
    }

    #[test]
    fn keyring_entries_differ_per_settings_directory() {
        let a = KeyringBackend::new(Path::new("/tmp/a/hoop"));
        let b = KeyringBackend::new(Path::new("/tmp/b/hoop"));
        assert_ne!(a.location(), b.location());
        assert!(a.entry.contains("/tmp/a/hoop"));
    }
}
