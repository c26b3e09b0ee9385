//! `Config::load` and `Config::parse`: the config file parsed by
//! [`crate::config`] (plain data, strict serde, checks that need no other
//! module) with each part validated by the module that owns it: guardrail
//! sets by [`crate::guard`], masking sets by [`crate::mask`], claim patterns
//! by [`crate::auth`], store URLs by [`crate::store::pg_conn`], SSH host keys and
//! command rules by [`crate::proxy::ssh`] and [`crate::guard::shell`].
//!
//! Wiring layer: it sees every module, so `config` itself imports none.

use std::path::Path;

use crate::config::guardrails::RuleSet;
use crate::config::masking::MaskSetDoc;
use crate::config::{Config, ConfigError, ConnectionConfig, PartChecks};

/// Every domain's checks of its config part (guardrail sets: the built-in
/// ones, then those the config adds).
#[derive(Default)]
pub struct DomainChecks {
    guard_sets: crate::guard::Registry,
}

impl PartChecks for DomainChecks {
    fn postgres_url(&self, url: &str) -> Result<(), String> {
        crate::store::pg_conn::PgTarget::parse(url, None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn claim_pattern(&self, pattern: &str) -> Result<(), String> {
        crate::auth::matcher::ClaimPattern::parse(pattern)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn masking_set(&self, doc: &MaskSetDoc) -> Result<(), String> {
        crate::mask::MaskSet::compile(doc, b"validation")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn add_guardrail_set(&mut self, set: &RuleSet) -> Result<(), String> {
        self.guard_sets.add(set.clone()).map_err(|e| e.to_string())
    }

    fn guardrail_names(&self, names: &[String]) -> Result<(), String> {
        self.guard_sets
            .resolve(names)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn ssh_host_key(&self, line: &str) -> Result<(), String> {
        crate::proxy::ssh::parse_host_key(line).map(|_| ())
    }

    fn command_rules(&self, c: &ConnectionConfig) -> Result<(), String> {
        crate::guard::shell::CommandGuard::from_config(c)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &mut DomainChecks::default())
    }

    /// Parses and validates config text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &mut DomainChecks::default())
    }
}
