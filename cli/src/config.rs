//! Which broker to talk to, and which CA to trust for it.
//!
//! Precedence, highest first: the flag (`--broker`, `--ca-file`), the
//! environment (`HOOP_BROKER`, `HOOP_CA_FILE`), then `config.toml` in the
//! settings directory (`HOOP_CONFIG_DIR`, default `~/.config/hoop`; written by
//! `hoopctl login --broker ...` and by `hoop-broker dev`). The CA file follows
//! the broker it came with: a `ca_file` in `config.toml` applies only to the
//! broker URL named in `config.toml`, so pointing `--broker` at another broker
//! never silently trusts the dev CA for it.
//!
//! The environment is read through a lookup function so that tests can
//! resolve settings without touching the process environment.

use std::fmt;
use std::path::{Path, PathBuf};

use hoop_shared::client_config::{self, CONFIG_DIR_ENV, ClientConfig, ClientConfigError};
use url::Url;

use crate::cli::GlobalArgs;

/// Environment variable naming the broker URL.
pub const BROKER_ENV: &str = "HOOP_BROKER";
/// Environment variable naming the broker's CA certificate file.
pub const CA_FILE_ENV: &str = "HOOP_CA_FILE";
/// Extra CA (PEM) to trust for the identity provider's endpoints.
pub const IDP_CA_FILE_ENV: &str = "HOOP_IDP_CA_FILE";

/// Errors resolving the settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings directory or file could not be read.
    #[error(transparent)]
    Client(#[from] ClientConfigError),
    /// The broker URL is not a usable URL.
    #[error("invalid broker URL {url:?} (from {source_name}): {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// Where it came from.
        source_name: Source,
        /// Why it is not usable.
        reason: String,
    },
    /// No broker is configured anywhere.
    #[error(
        "no broker configured: pass --broker URL (or set {BROKER_ENV}), or run \
         `hoop-broker dev`, which writes {}",
        .config_file.display()
    )]
    NoBroker {
        /// The config file that was consulted.
        config_file: PathBuf,
    },
}

/// Where a setting came from (shown by `hoopctl whoami -v` and in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The settings file.
    ConfigFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "{flag}"),
            Source::Env(var) => write!(f, "${var}"),
            Source::ConfigFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A broker: base URL and optional CA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTarget {
    /// Base URL, without a trailing slash in its path.
    pub url: Url,
    /// Where the URL came from.
    pub url_source: Source,
    /// Extra CA certificate (PEM) to trust for this broker.
    pub ca_file: Option<PathBuf>,
}

impl BrokerTarget {
    /// The URL as people write it (no trailing slash), also the key tokens are stored under.
    pub fn display_url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }
}

/// Everything resolved from flags, environment and `config.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The settings directory (may not exist yet).
    pub config_dir: PathBuf,
    /// The broker, when one is configured.
    pub broker: Option<BrokerTarget>,
    /// Extra CA (PEM) to trust for the identity provider, from
    /// `--idp-ca-file` or `$HOOP_IDP_CA_FILE`.
    pub idp_ca_file: Option<PathBuf>,
}

impl Settings {
    /// Resolves settings from the real environment.
    pub fn from_env(flags: &GlobalArgs) -> Result<Self, ConfigError> {
        resolve(flags, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// The broker, or an error that says how to configure one.
    pub fn broker(&self) -> Result<&BrokerTarget, ConfigError> {
        self.broker.as_ref().ok_or_else(|| ConfigError::NoBroker {
            config_file: self.config_dir.join(client_config::CONFIG_FILE),
        })
    }
}

/// Resolves settings; `env` looks up an environment variable (`None` when unset or empty).
pub fn resolve(
    flags: &GlobalArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let config_dir = match env(CONFIG_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => client_config::config_dir()?,
    };
    let file = ClientConfig::load(&config_dir)?;
    let file_path = config_dir.join(client_config::CONFIG_FILE);

    let url = if let Some(url) = &flags.broker {
        Some((url.clone(), Source::Flag("--broker")))
    } else if let Some(url) = env(BROKER_ENV) {
        Some((url, Source::Env(BROKER_ENV)))
    } else {
        file.broker_url
            .clone()
            .map(|url| (url, Source::ConfigFile(file_path.clone())))
    };

    let broker = match url {
        None => None,
        Some((raw, source)) => {
            let url = parse_broker_url(&raw, &source)?;
            let ca_file = if let Some(ca) = &flags.ca_file {
                Some(ca.clone())
            } else if let Some(ca) = env(CA_FILE_ENV) {
                Some(PathBuf::from(ca))
            } else if file_broker_is(&file, &url) {
                file.ca_file.clone().map(|p| relative_to(&config_dir, p))
            } else {
                None
            };
            Some(BrokerTarget {
                url,
                url_source: source,
                ca_file,
            })
        }
    };
    let idp_ca_file = flags
        .idp_ca_file
        .clone()
        .or_else(|| env(IDP_CA_FILE_ENV).map(PathBuf::from));
    Ok(Settings {
        config_dir,
        broker,
        idp_ca_file,
    })
}

/// True when `config.toml` names this same broker (so its CA applies).
fn file_broker_is(file: &ClientConfig, url: &Url) -> bool {
    let Some(raw) = &file.broker_url else {
        return false;
    };
    let source = Source::Flag("config.toml");
    parse_broker_url(raw, &source).is_ok_and(|file_url| &file_url == url)
}

/// A relative `ca_file` in `config.toml` is relative to the settings directory.
fn relative_to(dir: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

fn parse_broker_url(raw: &str, source: &Source) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        url: raw.to_owned(),
        source_name: source.clone(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("the scheme must be https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the URL must not have a query or fragment"));
    }
    // Normalise to "no trailing slash" so stored logins match however it was typed.
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixture {
        _tmp: tempfile::TempDir,
        dir: PathBuf,
    }

    fn fixture(config_toml: Option<&str>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hoop");
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(text) = config_toml {
            std::fs::write(dir.join("config.toml"), text).unwrap();
        }
        Fixture { _tmp: tmp, dir }
    }

    fn run(
        fx: &Fixture,
        flags: GlobalArgs,
        vars: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.insert(CONFIG_DIR_ENV.into(), fx.dir.display().to_string());
        resolve(&flags, &|name| map.get(name).cloned())
    }

    const FILE: &str = "broker_url = \"https://file.example:8443/\"\nca_file = \"ca.pem\"\n";

    #[test]
    fn flag_beats_env_beats_file() {
        let fx = fixture(Some(FILE));
        let flags = GlobalArgs {
            broker: Some("https://flag.example".into()),
            ca_file: None,
            ..GlobalArgs::default()
        };
        let s = run(&fx, flags, &[(BROKER_ENV, "https://env.example")]).unwrap();
        let b = s.broker().unwrap();
        assert_eq!(b.display_url(), "https://flag.example");
        assert_eq!(b.url_source, Source::Flag("--broker"));
        // The dev CA from the file does not follow a broker given elsewhere...
        assert_eq!(b.ca_file, None);
        // ...but applies when the flag names the file's broker.
        let flags = GlobalArgs {
            broker: Some("https://file.example:8443".into()),
            ca_file: None,
            ..GlobalArgs::default()
        };
        let s = run(&fx, flags, &[]).unwrap();
        assert_eq!(s.broker().unwrap().ca_file, Some(fx.dir.join("ca.pem")));

        let s = run(
            &fx,
            GlobalArgs::default(),
            &[(BROKER_ENV, "https://env.example")],
        )
        .unwrap();
        assert_eq!(s.broker().unwrap().display_url(), "https://env.example");
        assert_eq!(s.broker().unwrap().url_source, Source::Env(BROKER_ENV));

        let s = run(&fx, GlobalArgs::default(), &[]).unwrap();
        let b = s.broker().unwrap();
        assert_eq!(b.display_url(), "https://file.example:8443");
        assert_eq!(b.ca_file, Some(fx.dir.join("ca.pem")));
        assert!(matches!(b.url_source, Source::ConfigFile(_)));
    }

    #[test]
    fn ca_flag_and_env_apply_to_any_broker() {
        let fx = fixture(Some(FILE));
        let flags = GlobalArgs {
            broker: None,
            ca_file: Some("/x/flag.pem".into()),
            ..GlobalArgs::default()
        };
        let s = run(&fx, flags, &[(CA_FILE_ENV, "/x/env.pem")]).unwrap();
        assert_eq!(
            s.broker().unwrap().ca_file,
            Some(PathBuf::from("/x/flag.pem"))
        );
        let s = run(
            &fx,
            GlobalArgs::default(),
            &[(BROKER_ENV, "https://e"), (CA_FILE_ENV, "/x/env.pem")],
        )
        .unwrap();
        assert_eq!(
            s.broker().unwrap().ca_file,
            Some(PathBuf::from("/x/env.pem"))
        );
    }

    #[test]
    fn no_broker_anywhere_says_how_to_configure_one() {
        let fx = fixture(None);
        let s = run(&fx, GlobalArgs::default(), &[]).unwrap();
        let err = s.broker().unwrap_err().to_string();
        assert!(err.contains("--broker"), "{err}");
        assert!(err.contains(BROKER_ENV), "{err}");
        assert!(err.contains("config.toml"), "{err}");
    }

    #[test]
    fn bad_urls_are_rejected_naming_their_source() {
        let fx = fixture(None);
        for bad in ["not a url", "ftp://x", "https://x/?a=b"] {
            let err = run(&fx, GlobalArgs::default(), &[(BROKER_ENV, bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(BROKER_ENV), "{err}");
        }
    }

    #[test]
    fn broken_config_file_names_the_file() {
        let fx = fixture(Some("brokr_url = 1"));
        let err = run(&fx, GlobalArgs::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml"), "{err}");
    }
}
