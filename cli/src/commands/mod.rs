//! One file per command; each `run` returns the process exit code.
//!
//! Commands print results on stdout and progress/instructions on stderr, so
//! `hoopctl connections -o json | jq` stays clean.

pub mod approve;
pub mod audit;
pub mod completions;
pub mod connect;
pub mod connections;
pub mod exec;
pub mod login;
pub mod logout;
pub mod policy;
pub mod requests;
pub mod sessions;
pub mod whoami;

use std::sync::Arc;

use anyhow::Context as _;

use crate::api::ApiClient;
use crate::auth::Credentials;
use crate::auth::source::TokenSource;
use crate::auth::store::TokenStore;
use crate::cli::GlobalArgs;
use crate::config::Settings;

/// What every command gets: the parsed global flags and the resolved settings.
#[derive(Debug)]
pub struct Context {
    /// `--broker`, `--ca-file`, `--token-file`, `--audience` as given.
    pub global: GlobalArgs,
    /// Flags + environment + config.toml, resolved.
    pub settings: Settings,
}

impl Context {
    /// The token store for the settings directory.
    pub fn token_store(&self) -> anyhow::Result<TokenStore> {
        Ok(TokenStore::from_env(&self.settings.config_dir)?)
    }

    /// API client for the configured broker.
    pub fn api(&self) -> anyhow::Result<ApiClient> {
        let broker = self.settings.broker()?;
        Ok(ApiClient::new(broker)?.with_idp_ca_file(self.settings.idp_ca_file.clone()))
    }

    /// Where tokens come from in this run (`--token-file`, environment, CI
    /// platform, else the stored login); see `auth/source.rs`.
    pub fn token_source(&self) -> TokenSource {
        TokenSource::from_env(
            self.global.token_file.as_deref(),
            self.global.audience.as_deref(),
        )
    }

    /// Credentials (from the token source, refreshed as needed) for the configured broker.
    pub fn credentials(&self) -> anyhow::Result<Arc<Credentials>> {
        let api = self.api()?;
        let store = self.token_store().context("cannot open the token store")?;
        Ok(Arc::new(Credentials::new(api, store, self.token_source())))
    }
}

/// Formats a Unix time as "in 7h 59m (2025-01-01T08:00:00Z)" or "5m ago (...)".
pub fn describe_time(at: u64, now: u64) -> String {
    let absolute = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(at),
    );
    // Whole minutes beyond an hour, whole seconds below: enough precision for people.
    let round = |secs: u64| if secs >= 3600 { secs - secs % 60 } else { secs };
    if at >= now {
        let d = std::time::Duration::from_secs(round(at - now));
        format!("in {} ({absolute})", humantime::format_duration(d))
    } else {
        let d = std::time::Duration::from_secs(round(now - at));
        format!("{} ago ({absolute})", humantime::format_duration(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        assert_eq!(
            describe_time(1_700_003_600 + 59 * 60 + 30, 1_700_000_000),
            "in 1h 59m (2023-11-15T00:12:50Z)"
        );
        assert_eq!(
            describe_time(1_700_000_000, 1_700_000_090),
            "1m 30s ago (2023-11-14T22:13:20Z)"
        );
    }
}
