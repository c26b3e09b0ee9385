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

pub use crate::render::describe_time;
