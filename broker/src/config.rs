//! The broker's config file: parse, then validate.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelled key stops the broker
//! at startup with `FILE:LINE:COLUMN: what was expected`. A second pass checks
//! values that the types alone cannot (duplicate connection names, empty
//! groups, both or neither of `password_env`/`password_file`), and reports them
//! with the position of the offending value too. The reference with examples is
//! `docs/config.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// A config problem, already formatted as `FILE:LINE:COLUMN: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Default time an access request waits for its approvals.
pub const DEFAULT_REQUEST_TTL: Duration = Duration::from_secs(3600);

/// Default lifetime of a session opened by `hoopctl connect`.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTPS port binds, e.g. `0.0.0.0:8443`. Port 0 picks a free port.
    pub listen: Spanned<String>,
    /// URL clients use to reach the broker (default: `https://` + the bound address).
    /// The built-in identity provider's issuer is this URL + `/idp`.
    #[serde(default)]
    pub public_url: Option<Spanned<String>>,
    /// Directory for the embedded store and generated keys.
    pub data_dir: PathBuf,
    /// TLS for the HTTPS port.
    pub tls: TlsConfig,
    /// Which identity provider the broker trusts.
    pub identity: IdentityConfig,
    /// How long a session opened with `hoopctl connect` lasts (e.g. "8h").
    #[serde(default, with = "humantime_opt")]
    pub session_ttl: Option<Duration>,
    /// How long an access request waits for approvers before it expires (default 1h).
    #[serde(default, with = "humantime_opt")]
    pub request_ttl: Option<Duration>,
    /// The policy document (docs/policy.md): one TOML file, or a directory
    /// whose `*.toml` files (in name order) form one policy. It seeds an empty store. Once a
    /// policy is stored, `hoopctl policy apply` changes it; this file is used
    /// again only when the stored policy no longer validates. Without it,
    /// each connection's `allow_groups`/`allow_users` become `allow` rules.
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
    /// Targets users can reach.
    #[serde(default, rename = "connections")]
    pub connections: Vec<Spanned<ConnectionConfig>>,
    /// Webhooks told about access requests (`[[webhooks]]`).
    #[serde(default)]
    pub webhooks: Vec<Spanned<WebhookConfig>>,
    /// Masking rule sets (`[[masking_sets]]`, docs/masking.md) that
    /// connections (`masking = [...]`) and policy rules refer to by name.
    #[serde(default)]
    pub masking_sets: Vec<Spanned<crate::mask::MaskSetDoc>>,
    /// Guardrail rule sets (`[[guardrail_sets]]`, docs/guardrails.md) that
    /// connections (`guardrails = [...]`) and policy rules refer to by
    /// name, besides the built-in ones.
    #[serde(default)]
    pub guardrail_sets: Vec<Spanned<crate::guard::RuleSet>>,
    /// The tamper-evident audit log (`[audit]`, docs/audit.md).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Where requests, grants, sessions and policies live (`[store]`, docs/store.md).
    #[serde(default)]
    pub store: StoreConfig,
    /// Several brokers on one store (`[cluster]`, docs/deploy.md).
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `[cluster]`: how a broker keeps up with the others sharing its store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How often the broker reads revocations and policy changes made
    /// through other brokers (default 1s): it bounds how long a session
    /// outlives a grant revoked elsewhere, and how long the old policy
    /// stays in force here after an apply elsewhere.
    #[serde(default, with = "humantime_opt")]
    pub poll_interval: Option<Duration>,
}

/// `[store]`: where requests, approvals, grants, sessions, policy versions
/// and recordings live (docs/store.md).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `"sqlite"` (default: `DATA_DIR/hoop.sqlite3`) or a
    /// `postgres://user@host:port/db` URL (several brokers share one store;
    /// the audit log goes there too unless `[audit] store` says otherwise).
    /// A credential when it carries a password: never logged.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Environment variable holding the PostgreSQL password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the PostgreSQL password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The PostgreSQL URL, when `url` names one.
    pub fn postgres_url(&self) -> Option<&str> {
        self.url
            .as_ref()
            .map(|u| u.get_ref().as_str())
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }

    /// Where the password is, when `password_env` or `password_file` is set.
    pub fn credential(&self) -> Option<crate::secrets::CredentialRef> {
        match (&self.password_env, &self.password_file) {
            (Some(v), _) => Some(crate::secrets::CredentialRef::Env(v.clone())),
            (None, Some(p)) => Some(crate::secrets::CredentialRef::File(p.clone())),
            (None, None) => None,
        }
    }

    /// `url` for logs and `Debug`: `sqlite`, or the PostgreSQL URL without
    /// its password (and without query parameters, which may carry one).
    pub fn redacted_url(&self) -> String {
        let Some(url) = self.postgres_url() else {
            return "sqlite".to_owned();
        };
        match url::Url::parse(url) {
            Ok(mut u) => {
                let _ = u.set_password(None);
                if u.query().is_some() {
                    u.set_query(Some("***"));
                }
                u.to_string()
            }
            Err(_) => "postgres://***".to_owned(),
        }
    }

    /// The `[store]` checks that need no I/O: a known URL, a credential by
    /// reference at most once and only for PostgreSQL.
    fn check(&self) -> Result<(), (Option<std::ops::Range<usize>>, String)> {
        if let Some(url) = &self.url {
            let s = url.get_ref();
            if s != "sqlite" && self.postgres_url().is_none() {
                return Err((
                    Some(url.span()),
                    "[store] url must be \"sqlite\" or a postgres://user@host:port/db URL"
                        .to_owned(),
                ));
            }
            if self.postgres_url().is_some()
                && let Err(e) = crate::store::pg_conn::PgTarget::parse(s, None)
            {
                return Err((Some(url.span()), format!("[store] url: {e}")));
            }
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err((
                None,
                "[store] takes password_env or password_file, not both".to_owned(),
            ));
        }
        if self.postgres_url().is_none() && self.credential().is_some() {
            return Err((
                self.url.as_ref().map(Spanned::span),
                "[store] password_env/password_file apply to a postgres:// url only".to_owned(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted_url())
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// `[audit]`: where the hash-chained audit log lives, how often it is
/// signed, how durable a commit is, and how long records are kept.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `"sqlite"` (default: tables in the broker's SQLite file) or a
    /// `postgres://user@host:port/db` URL (several brokers share one chain).
    /// A credential when it carries a password: never logged.
    #[serde(default)]
    pub store: Option<Spanned<String>>,
    /// Environment variable holding the PostgreSQL password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the PostgreSQL password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Sign a checkpoint every this many records (default 1000).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// SQLite `synchronous` for the audit connection: `"normal"` (default;
    /// a commit survives a crash of the broker) or `"full"` (also a power loss).
    #[serde(default)]
    pub synchronous: Option<AuditSynchronous>,
    /// Ed25519 checkpoint key (PKCS#8 PEM). Default: `DATA_DIR/audit-signing.key`,
    /// created (0600) on first start.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Prune records older than this (e.g. `"90d"`), down to the newest
    /// signed checkpoint that anchors what remains.
    #[serde(default, with = "humantime_opt")]
    pub retention: Option<Duration>,
}

/// SQLite durability of an audit commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSynchronous {
    /// Survives a process crash (WAL, fsync at WAL checkpoints).
    #[default]
    Normal,
    /// Survives a power loss too (fsync at every commit).
    Full,
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = self.store.as_ref().map(|s| {
            if s.get_ref().contains("://") {
                "postgres://***"
            } else {
                "sqlite"
            }
        });
        f.debug_struct("AuditConfig")
            .field("store", &store)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("synchronous", &self.synchronous)
            .field("signing_key_file", &self.signing_key_file)
            .field("retention", &self.retention)
            .finish()
    }
}

impl AuditConfig {
    /// The `[audit]` checks that need no I/O: a known store, a credential by
    /// reference at most once, sane numbers.
    fn check(&self) -> Result<(), (Option<std::ops::Range<usize>>, String)> {
        if let Some(store) = &self.store {
            let s = store.get_ref();
            let postgres = s.starts_with("postgres://") || s.starts_with("postgresql://");
            if s != "sqlite" && !postgres {
                return Err((
                    Some(store.span()),
                    "[audit] store must be \"sqlite\" or a postgres:// URL".to_owned(),
                ));
            }
            if postgres && let Err(e) = crate::store::pg_conn::PgTarget::parse(s, None) {
                return Err((Some(store.span()), format!("[audit] store: {e}")));
            }
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err((
                None,
                "[audit] takes password_env or password_file, not both".to_owned(),
            ));
        }
        if self.checkpoint_every == Some(0) {
            return Err((
                None,
                "[audit] checkpoint_every must be at least 1".to_owned(),
            ));
        }
        if self
            .retention
            .is_some_and(|r| r < Duration::from_secs(3600))
        {
            return Err((None, "[audit] retention must be at least 1h".to_owned()));
        }
        Ok(())
    }
}

/// A webhook receiving access-request events as JSON (Slack-compatible).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST: `https://`, or `http://` on loopback only. A credential
    /// in its own right (Slack's carry their token): never logged.
    pub url: Spanned<String>,
    /// Events to send (default: all of them).
    #[serde(default)]
    pub events: Option<Vec<crate::notify::NotifyEvent>>,
    /// Environment variable holding a key; when set, each body is signed with
    /// HMAC-SHA256 in `X-Hoop-Signature: sha256=HEX`.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's path and query may hold the receiver's token.
        let shown = url::Url::parse(self.url.get_ref()).map_or_else(
            |_| "***".to_owned(),
            |u| format!("{}://{}/***", u.scheme(), u.host_str().unwrap_or_default()),
        );
        f.debug_struct("WebhookConfig")
            .field("url", &shown)
            .field("events", &self.events)
            .field("secret_env", &self.secret_env)
            .finish()
    }
}

/// TLS settings: certificate files, or a certificate generated at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Generate a private CA and a certificate for the listen address at start
    /// (the CA is written to `DATA_DIR/ca.pem`). For development only.
    #[serde(default)]
    pub self_signed: bool,
}

/// Identity provider settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// OIDC issuer URL of an external provider. Omit it with `[identity.builtin]`.
    #[serde(default)]
    pub issuer: Option<Spanned<String>>,
    /// OAuth client id hoopctl uses for the device flow (default `hoopctl`).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Expected `aud` of tokens (default: the client id).
    #[serde(default)]
    pub audience: Option<String>,
    /// Scopes hoopctl requests.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the user name.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim holding the list of groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Extra CA certificate (PEM) to trust when talking to the provider.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The built-in development identity provider.
    #[serde(default)]
    pub builtin: Option<BuiltinIdpConfig>,
    /// Least time between two JWKS fetches triggered by tokens naming an
    /// unknown key, per issuer (default 30s; at least 1s).
    #[serde(default, with = "humantime_opt")]
    pub key_refetch_interval: Option<Duration>,
    /// Trusted workload issuers (CI platforms, Kubernetes), `[[identity.workload]]`.
    #[serde(default)]
    pub workload: Vec<Spanned<WorkloadIssuerConfig>>,
}

/// A trusted issuer of workload identity tokens (GitHub Actions, GitLab CI,
/// a Kubernetes cluster), and the rules mapping its tokens to services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadIssuerConfig {
    /// Label used in messages and in `matched_rule` (a-z, 0-9, '-', '_').
    pub name: String,
    /// Exact `iss` of its tokens; discovery and JWKS are fetched from it.
    pub issuer: Spanned<String>,
    /// The `aud` its tokens must carry (what the CI job requests).
    pub audience: String,
    /// Extra CA certificate (PEM) to trust for this issuer.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Tried in order; the first whose every claim matcher matches wins.
    #[serde(default)]
    pub rules: Vec<Spanned<WorkloadRuleConfig>>,
}

/// One rule: claim matchers → a service identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRuleConfig {
    /// The identity's user name (a-z, 0-9, '-', '_').
    pub service: String,
    /// The identity's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Claim (dotted path allowed) → exact value or glob (`*`, `?`).
    pub claims: BTreeMap<String, String>,
}

/// The built-in development identity provider (RFC 8628 device flow).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinIdpConfig {
    /// Lifetime of issued access tokens (default 8h).
    #[serde(default, with = "humantime_opt")]
    pub token_ttl: Option<Duration>,
    /// Polling interval the device flow asks clients to keep (default 5s).
    #[serde(default, with = "humantime_opt")]
    pub poll_interval: Option<Duration>,
    /// Users who can be picked on the verification page.
    pub users: Vec<Spanned<DevUser>>,
}

/// A user of the built-in identity provider.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DevUser {
    /// Login name.
    pub name: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Kind of a connection.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    /// PostgreSQL.
    Postgres,
    /// An SSH server (docs/ssh.md).
    Ssh,
}

/// A target users can reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Name used with `hoopctl connect NAME`.
    pub name: String,
    /// Kind of target.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Target host name or address.
    pub host: String,
    /// Target port (default 5432 for postgres).
    #[serde(default)]
    pub port: Option<u16>,
    /// Database users are connected to (postgres; required there).
    #[serde(default)]
    pub database: String,
    /// Upstream role the broker logs in as.
    pub user: String,
    /// Name of the environment variable holding the upstream password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the upstream password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Groups whose members may use this connection.
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// Users who may use this connection regardless of groups.
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// Free text shown by `hoopctl connections`.
    #[serde(default)]
    pub description: Option<String>,
    /// TLS from the broker to the target: `disable`, `prefer` (default, as
    /// libpq), `require`, or `verify-full` (certificate chain and host name
    /// checked against `tls_ca_file`, or the system roots).
    #[serde(default)]
    pub tls: UpstreamTls,
    /// CA certificate (PEM) for `tls = "verify-full"`.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Guardrail rule sets checked against every statement (docs/guardrails.md).
    #[serde(default)]
    pub guardrails: Vec<String>,
    /// What happens to a statement the SQL parser cannot parse: `block`
    /// (default: a parse differential must never become a bypass) or `allow`.
    #[serde(default)]
    pub on_unparsable: UnparsableAction,
    /// Masking rule sets applied to every result on this connection
    /// (names of `[[masking_sets]]`; docs/masking.md).
    #[serde(default)]
    pub masking: Vec<String>,
    /// Result rows kept per statement in the session recording (default 0:
    /// no values; at most [`crate::record::MAX_RECORD_RESULTS`]). The values
    /// are those the client received, masked (docs/sessions.md).
    #[serde(default)]
    pub record_results: u32,
    // --- ssh only (docs/ssh.md): the credential is a reference (private_key_file,
    // private_key_env, or password_env/password_file above), the host key pinned. ---
    /// ssh: the target's host key, one OpenSSH public key line
    /// (`ssh-ed25519 AAAA...`), e.g. from `ssh-keyscan`.
    #[serde(default)]
    pub host_key: Option<String>,
    /// A known_hosts file holding the target's key under its host name.
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// File holding the private key (OpenSSH or PKCS#8 PEM, unencrypted).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// Environment variable holding the private key (PEM text).
    #[serde(default)]
    pub private_key_env: Option<String>,
    /// Interactive shells (default true). A shell cannot be guarded command
    /// by command; only exec commands are checked against `commands`.
    #[serde(default)]
    pub allow_shell: Option<bool>,
    /// Local port forwarding (`ssh -L`, direct-tcpip); default false.
    #[serde(default)]
    pub allow_port_forwarding: bool,
    /// Environment variables the client may set (exact names).
    #[serde(default)]
    pub allow_env: Vec<String>,
    /// Command rule sets checked against every exec command (default
    /// `["no-destructive-shell"]`; `[]` for none).
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// Own command rules, checked before the sets, first match wins.
    #[serde(default)]
    pub command_rules: Vec<crate::guard::shell::CommandRuleConfig>,
}

/// TLS mode for the broker → target leg.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise.
    #[default]
    Prefer,
    /// TLS required, certificate not verified.
    Require,
    /// TLS required, chain and host name verified.
    VerifyFull,
}

/// What happens to a statement the SQL parser cannot parse.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnparsableAction {
    /// Refuse it with an error naming the reason.
    #[default]
    Block,
    /// Forward it (and record that it was not understood).
    Allow,
}

impl ConnectionConfig {
    /// The port, with the default for the kind.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.kind {
            ConnectionType::Postgres => 5432,
            ConnectionType::Ssh => 22,
        })
    }
}

fn default_client_id() -> String {
    "hoopctl".into()
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "offline_access".into()]
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

mod humantime_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            humantime::parse_duration(&s).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?}: {e} (expected e.g. \"30m\", \"8h\")"
                ))
            })
        })
        .transpose()
    }
}

/// Where a value sits in the file, as `FILE:LINE:COLUMN`.
fn position(file: &Path, text: &str, offset: usize) -> String {
    let (line, col) = hoop_shared::names::line_col(text, offset);
    format!("{}:{line}:{col}", file.display())
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read config: {e}", path.display())))?;
        Config::parse(path, &text)
    }

    /// Parses and validates config text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or_else(
                || path.display().to_string(),
                |s| position(path, text, s.start),
            );
            ConfigError(format!("{at}: {}", e.message().trim()))
        })?;
        cfg.validate(path, text)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, msg: String| {
            ConfigError(format!("{}: {msg}", position(path, text, span.start)))
        };
        self.audit.check().map_err(|(span, msg)| match span {
            Some(span) => at(span, msg),
            None => ConfigError(format!("{}: {msg}", path.display())),
        })?;
        self.store.check().map_err(|(span, msg)| match span {
            Some(span) => at(span, msg),
            None => ConfigError(format!("{}: {msg}", path.display())),
        })?;
        if let Some(every) = self.cluster.poll_interval
            && !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&every)
        {
            return Err(ConfigError(format!(
                "{}: [cluster] poll_interval must be between 100ms and 60s",
                path.display()
            )));
        }
        self.listen.get_ref().parse::<SocketAddr>().map_err(|_| {
            at(
                self.listen.span(),
                format!(
                    "listen: {:?} is not an address; expected IP:PORT such as \"127.0.0.1:8443\"",
                    self.listen.get_ref()
                ),
            )
        })?;
        if let Some(u) = &self.public_url {
            let parsed = url::Url::parse(u.get_ref())
                .ok()
                .filter(|p| p.scheme() == "https");
            if parsed.is_none() {
                return Err(at(
                    u.span(),
                    format!("public_url: {:?} is not an https:// URL", u.get_ref()),
                ));
            }
        }
        match (
            &self.tls.cert_file,
            &self.tls.key_file,
            self.tls.self_signed,
        ) {
            (Some(_), Some(_), false) | (None, None, true) => {}
            _ => {
                return Err(ConfigError(format!(
                    "{}: [tls]: set either cert_file and key_file, or self_signed = true",
                    path.display()
                )));
            }
        }
        match (&self.identity.issuer, &self.identity.builtin) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(format!(
                    "{}: [identity]: set either issuer (an external OIDC provider) or \
                     [identity.builtin], not both",
                    path.display()
                )));
            }
            (None, None) => {
                return Err(ConfigError(format!(
                    "{}: [identity]: set issuer (an external OIDC provider) or add \
                     [identity.builtin] (development provider)",
                    path.display()
                )));
            }
            (Some(issuer), None) => {
                check_issuer_url(issuer.get_ref()).map_err(|e| at(issuer.span(), e))?;
            }
            (None, Some(b)) => {
                let mut names = BTreeSet::new();
                for u in &b.users {
                    let name = &u.get_ref().name;
                    if !is_name(name) {
                        return Err(at(u.span(), format!("user name {name:?} {NAME_RULE}")));
                    }
                    if !names.insert(name.clone()) {
                        return Err(at(u.span(), format!("user {name:?} is defined twice")));
                    }
                }
            }
        }
        self.validate_workloads(&at)?;
        self.validate_webhooks(&at)?;
        self.validate_masking(&at)?;
        let mut guard_sets = crate::guard::Registry::builtin();
        for set in &self.guardrail_sets {
            guard_sets
                .add(set.get_ref().clone())
                .map_err(|e| at(set.span(), format!("[[guardrail_sets]]: {e}")))?;
        }
        let mut names = BTreeSet::new();
        for c in &self.connections {
            let span = c.span();
            let c = c.get_ref();
            if !is_name(&c.name) {
                return Err(at(
                    span,
                    format!("connection name {:?} {NAME_RULE}", c.name),
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(at(
                    span,
                    format!("connection {:?} is defined twice", c.name),
                ));
            }
            if c.port == Some(0) {
                return Err(at(
                    span,
                    format!("connection {:?}: port 0 is not a port", c.name),
                ));
            }
            match c.kind {
                ConnectionType::Postgres => {
                    validate_postgres(c, &guard_sets).map_err(|m| at(span.clone(), m))?
                }
                ConnectionType::Ssh => validate_ssh(c).map_err(|m| at(span.clone(), m))?,
            }
            if c.allow_groups.is_empty() && c.allow_users.is_empty() && self.policy_file.is_none() {
                return Err(at(
                    span,
                    format!(
                        "connection {:?}: nobody may use it; add allow_groups or allow_users \
                         (or a policy_file)",
                        c.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Masking sets compile (names unique, patterns and regexes valid) and
    /// every connection names only defined sets.
    fn validate_masking(
        &self,
        at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let mut names = BTreeSet::new();
        for m in &self.masking_sets {
            let doc = m.get_ref();
            if !is_name(&doc.name) {
                return Err(at(
                    m.span(),
                    format!("masking set name {:?} {NAME_RULE}", doc.name),
                ));
            }
            if !names.insert(doc.name.clone()) {
                return Err(at(
                    m.span(),
                    format!("masking set {:?} is defined twice", doc.name),
                ));
            }
            crate::mask::MaskSet::compile(doc, b"validation")
                .map_err(|e| at(m.span(), e.to_string()))?;
        }
        for c in &self.connections {
            for name in &c.get_ref().masking {
                if !names.contains(name) {
                    let known: Vec<&str> = names.iter().map(String::as_str).collect();
                    return Err(at(
                        c.span(),
                        format!(
                            "connection {:?}: unknown masking set {name:?} (defined sets: {}); \
                             define it with [[masking_sets]]",
                            c.get_ref().name,
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_webhooks(
        &self,
        at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        for w in &self.webhooks {
            let span = w.span();
            let w = w.get_ref();
            // Messages never echo the URL: its path may be the receiver's token.
            let Ok(u) = url::Url::parse(w.url.get_ref()) else {
                return Err(at(w.url.span(), "webhooks: url is not a URL".into()));
            };
            let host = u.host_str().unwrap_or_default().to_owned();
            match u.scheme() {
                "https" if !host.is_empty() => {}
                "http" if is_loopback_url(&u) => {}
                "http" => {
                    return Err(at(
                        w.url.span(),
                        format!(
                            "webhooks: url to {host} must use https:// (plain http is allowed \
                             only on loopback)"
                        ),
                    ));
                }
                _ => {
                    return Err(at(
                        w.url.span(),
                        "webhooks: url is not an https:// URL".into(),
                    ));
                }
            }
            if w.events.as_ref().is_some_and(Vec::is_empty) {
                return Err(at(
                    span,
                    "webhooks: events is empty, so nothing would be sent; leave it out to \
                     send every event"
                        .into(),
                ));
            }
            if let Some(name) = &w.secret_env
                && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(at(
                    span,
                    format!(
                        "webhooks: secret_env {name:?} is not an environment variable name \
                         (A-Z, 0-9, '_'); it names the variable, the key itself never goes \
                         in this file"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_workloads(
        &self,
        at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let id = &self.identity;
        if let Some(every) = id.key_refetch_interval
            && every < Duration::from_secs(1)
        {
            return Err(ConfigError(format!(
                "[identity]: key_refetch_interval must be at least 1s (it rate-limits key \
                 fetches that forged tokens can trigger); got {every:?}"
            )));
        }
        // (issuer, audience) pairs already trusted, to refuse ambiguous ones.
        let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
        let person_audience = id.audience.clone().unwrap_or_else(|| id.client_id.clone());
        let person_issuer = match (&id.issuer, &self.public_url) {
            (Some(i), _) => Some(i.get_ref().trim_end_matches('/').to_owned()),
            (None, Some(u)) => Some(format!("{}/idp", u.get_ref().trim_end_matches('/'))),
            (None, None) => None,
        };
        if let Some(i) = person_issuer {
            pairs.insert((i, person_audience));
        }
        let mut names = BTreeSet::new();
        for w in &id.workload {
            let span = w.span();
            let w = w.get_ref();
            let label = format!("[[identity.workload]] {:?}", w.name);
            if !is_name(&w.name) {
                return Err(at(
                    span,
                    format!("workload issuer name {:?} {NAME_RULE}", w.name),
                ));
            }
            if !names.insert(w.name.clone()) {
                return Err(at(
                    span,
                    format!("workload issuer {:?} is defined twice", w.name),
                ));
            }
            check_issuer_url(w.issuer.get_ref())
                .map_err(|e| at(w.issuer.span(), format!("{label}: {e}")))?;
            if w.audience.trim().is_empty() {
                return Err(at(span, format!("{label}: audience must not be empty")));
            }
            let pair = (
                w.issuer.get_ref().trim_end_matches('/').to_owned(),
                w.audience.clone(),
            );
            if !pairs.insert(pair) {
                return Err(at(
                    span,
                    format!(
                        "{label}: another issuer entry has the same issuer and audience, so \
                         its tokens could not be told apart; use a distinct audience"
                    ),
                ));
            }
            if w.rules.is_empty() {
                return Err(at(
                    span,
                    format!(
                        "{label}: no rules, so every token would be refused; add [[identity.workload.rules]]"
                    ),
                ));
            }
            for r in &w.rules {
                let rspan = r.span();
                let r = r.get_ref();
                if !is_name(&r.service) {
                    return Err(at(
                        rspan,
                        format!("{label}: service name {:?} {NAME_RULE}", r.service),
                    ));
                }
                if r.claims.is_empty() {
                    return Err(at(
                        rspan,
                        format!(
                            "{label}: rule {:?} has no claims; a rule must constrain something \
                             (e.g. claims = {{ sub = \"repo:acme/api:ref:refs/heads/main\" }})",
                            r.service
                        ),
                    ));
                }
                if let Some(g) = r.groups.iter().find(|g| g.trim().is_empty()) {
                    return Err(at(
                        rspan,
                        format!("{label}: rule {:?} has an empty group {g:?}", r.service),
                    ));
                }
                for (claim, pattern) in &r.claims {
                    if claim.is_empty() {
                        return Err(at(
                            rspan,
                            format!("{label}: rule {:?} has an empty claim name", r.service),
                        ));
                    }
                    crate::auth::matcher::ClaimPattern::parse(pattern).map_err(|e| {
                        at(
                            rspan.clone(),
                            format!("{label}: rule {:?}, claim {claim}: {e}", r.service),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .get_ref()
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443)))
    }

    /// The guardrail sets connections and policies may name: the built-in
    /// ones and `[[guardrail_sets]]` (validated at load).
    pub fn guard_registry(&self) -> crate::guard::Registry {
        let mut registry = crate::guard::Registry::builtin();
        for set in &self.guardrail_sets {
            if let Err(e) = registry.add(set.get_ref().clone()) {
                tracing::error!("[[guardrail_sets]]: {e}");
            }
        }
        registry
    }

    /// The connection with this name.
    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections
            .iter()
            .map(Spanned::get_ref)
            .find(|c| c.name == name)
    }
}

/// The checks of a `postgres` connection (message without position).
fn validate_postgres(
    c: &ConnectionConfig,
    guard_sets: &crate::guard::Registry,
) -> Result<(), String> {
    let name = &c.name;
    if c.host.trim().is_empty() || c.database.is_empty() || c.user.is_empty() {
        return Err(format!(
            "connection {name:?}: host, database and user must not be empty"
        ));
    }
    if !matches!(
        (&c.password_env, &c.password_file),
        (Some(_), None) | (None, Some(_))
    ) {
        return Err(format!(
            "connection {name:?}: set exactly one of password_env or password_file \
             (the password itself never goes in this file)"
        ));
    }
    let ssh_only = [
        ("host_key", c.host_key.is_some()),
        ("known_hosts_file", c.known_hosts_file.is_some()),
        ("private_key_file", c.private_key_file.is_some()),
        ("private_key_env", c.private_key_env.is_some()),
        ("allow_shell", c.allow_shell.is_some()),
        ("allow_port_forwarding", c.allow_port_forwarding),
        ("allow_env", !c.allow_env.is_empty()),
        ("commands", c.commands.is_some()),
        ("command_rules", !c.command_rules.is_empty()),
    ];
    if let Some((field, _)) = ssh_only.iter().find(|(_, set)| *set) {
        return Err(format!(
            "connection {name:?}: {field} is for type = \"ssh\" connections only"
        ));
    }
    if c.record_results > crate::record::MAX_RECORD_RESULTS {
        return Err(format!(
            "connection {name:?}: record_results = {} is more than {} rows per statement",
            c.record_results,
            crate::record::MAX_RECORD_RESULTS
        ));
    }
    // Guardrail set names must exist (built-in or [[guardrail_sets]]).
    guard_sets
        .resolve(&c.guardrails)
        .map(|_| ())
        .map_err(|e| format!("connection {name:?}: {e}"))
}

/// The checks of an `ssh` connection (message without position).
fn validate_ssh(c: &ConnectionConfig) -> Result<(), String> {
    let name = &c.name;
    if c.host.trim().is_empty() || c.user.is_empty() {
        return Err(format!(
            "connection {name:?}: host and user must not be empty"
        ));
    }
    if !c.database.is_empty()
        || !c.guardrails.is_empty()
        || c.tls_ca_file.is_some()
        || c.record_results > 0
    {
        return Err(format!(
            "connection {name:?}: database, guardrails, tls_ca_file and record_results are \
             for postgres connections; an ssh connection uses commands and command_rules"
        ));
    }
    let credentials = [
        c.private_key_file.is_some(),
        c.private_key_env.is_some(),
        c.password_env.is_some(),
        c.password_file.is_some(),
    ];
    if credentials.iter().filter(|set| **set).count() != 1 {
        return Err(format!(
            "connection {name:?}: set exactly one of private_key_file, private_key_env, \
             password_env or password_file (the credential itself never goes in this file)"
        ));
    }
    match (&c.host_key, &c.known_hosts_file) {
        (Some(line), None) => {
            crate::proxy::ssh::parse_host_key(line)
                .map_err(|e| format!("connection {name:?}: host_key: {e}"))?;
        }
        (None, Some(_)) => {}
        _ => {
            return Err(format!(
                "connection {name:?}: set exactly one of host_key (the target's public key \
                 line, e.g. from `ssh-keyscan -t ed25519 HOST`) or known_hosts_file; the broker \
                 never trusts a host key it has not been given"
            ));
        }
    }
    if let Some(bad) = c
        .allow_env
        .iter()
        .find(|v| v.is_empty() || !v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    {
        return Err(format!(
            "connection {name:?}: allow_env entry {bad:?} is not an environment variable name"
        ));
    }
    crate::guard::shell::CommandGuard::from_config(c)
        .map(|_| ())
        .map_err(|e| format!("connection {name:?}: {e}"))
}

/// True when the URL's host is `localhost` or a loopback address.
fn is_loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An issuer must be https, except on loopback (tests, a local IdP), where
/// plain http cannot be intercepted by anyone off the machine.
fn check_issuer_url(issuer: &str) -> Result<(), String> {
    let Ok(u) = url::Url::parse(issuer) else {
        return Err(format!("issuer: {issuer:?} is not a URL"));
    };
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match u.scheme() {
        "https" if u.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "issuer: {issuer:?} must use https:// (plain http is allowed only on loopback)"
        )),
        _ => Err(format!("issuer: {issuer:?} is not an https:// URL")),
    }
}

use hoop_shared::names::{NAME_RULE, is_name};

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
data_dir = "/tmp/x"

[tls]
self_signed = true

[identity.builtin]
users = [{ name = "alice", groups = ["engineering"] }]

[[connections]]
name = "pg-prod"
type = "postgres"
host = "127.0.0.1"
database = "app"
user = "app"
password_env = "PG_PROD_PASSWORD"
allow_groups = ["engineering"]
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("broker.toml"), text).map_err(|e| e.0)
    }

    #[test]
    fn store_section_is_checked_and_its_password_never_shown() {
        let with = |store: &str| GOOD.replace("[tls]", &format!("[store]\n{store}\n\n[tls]"));
        assert!(parse(GOOD).unwrap().store.postgres_url().is_none());
        let cfg = parse(&with(
            "url = \"postgres://hoop:s3cret@db:5432/hoop?password=s3cret\"",
        ))
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("hoop@db:5432/hoop"),
            "{shown}"
        );
        let cfg = parse(&with(
            "url = \"postgres://hoop@db/hoop\"\npassword_file = \"/run/pw\"",
        ))
        .unwrap();
        assert!(cfg.store.credential().is_some());
        for (store, message) in [
            (
                "url = \"mysql://x\"",
                "broker.toml:6:7: [store] url must be \"sqlite\" or a postgres://",
            ),
            (
                "url = \"postgres://h:notaport/db\"",
                "not a valid postgres:// URL",
            ),
            (
                "url = \"postgres://h/d\"\npassword_env = \"A\"\npassword_file = \"/b\"",
                "not both",
            ),
            ("password_env = \"A\"", "apply to a postgres:// url only"),
        ] {
            let err = parse(&with(store)).unwrap_err();
            assert!(err.contains(message), "{store}: {err}");
        }
    }

    #[test]
    fn audit_section_is_checked_and_its_url_never_shown() {
        let with = |audit: &str| GOOD.replace("[tls]", &format!("[audit]\n{audit}\n\n[tls]"));
        let cfg = parse(GOOD).unwrap();
        assert!(cfg.audit.store.is_none() && cfg.audit.checkpoint_every.is_none());
        let cfg = parse(&with(
            "store = \"postgres://hoop:s3cret@db:5432/hoop\"\nsynchronous = \"full\"\n\
             checkpoint_every = 10\nretention = \"90d\"",
        ))
        .unwrap();
        assert_eq!(cfg.audit.synchronous, Some(AuditSynchronous::Full));
        assert_eq!(cfg.audit.retention, Some(Duration::from_secs(90 * 86400)));
        assert!(!format!("{cfg:?}").contains("s3cret"));
        for (audit, message) in [
            (
                "store = \"mysql://x\"",
                "must be \"sqlite\" or a postgres:// URL",
            ),
            (
                "checkpoint_every = 0",
                "checkpoint_every must be at least 1",
            ),
            ("retention = \"5m\"", "retention must be at least 1h"),
            ("synchronous = \"off\"", "unknown variant"),
            ("password_env = \"A\"\npassword_file = \"/b\"", "not both"),
        ] {
            let err = parse(&with(audit)).unwrap_err();
            assert!(err.contains(message), "{audit}: {err}");
        }
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let cfg = parse(GOOD).unwrap();
        let c = cfg.connection("pg-prod").unwrap();
        assert_eq!(c.port(), 5432);
        assert_eq!(cfg.identity.client_id, "hoopctl");
        assert_eq!(cfg.identity.groups_claim, "groups");
    }

    #[test]
    fn unknown_key_names_file_line_column_and_expected_keys() {
        let bad = GOOD.replace("database = \"app\"", "databse = \"app\"");
        let err = parse(&bad).unwrap_err();
        assert!(err.starts_with("broker.toml:15:1: "), "{err}");
        assert!(err.contains("unknown field `databse`"), "{err}");
        assert!(err.contains("database"), "{err}");
    }

    #[test]
    fn bad_values_are_reported_with_position() {
        let err = parse(&GOOD.replace("127.0.0.1:0", "nowhere")).unwrap_err();
        assert!(err.starts_with("broker.toml:2:10: listen:"), "{err}");
        let err = parse(&GOOD.replace("type = \"postgres\"", "type = \"mysql\"")).unwrap_err();
        assert!(err.contains("broker.toml:13:8"), "{err}");
        assert!(err.contains("postgres"), "{err}");
        let err = parse(&GOOD.replace("name = \"pg-prod\"", "name = \"PG Prod\"")).unwrap_err();
        assert!(err.contains("connection name \"PG Prod\" must be"), "{err}");
    }

    #[test]
    fn password_must_be_by_reference_exactly_once() {
        let both = GOOD.replace(
            "password_env = \"PG_PROD_PASSWORD\"",
            "password_env = \"A\"\npassword_file = \"/f\"",
        );
        assert!(
            parse(&both)
                .unwrap_err()
                .contains("exactly one of password_env")
        );
        let inline = GOOD.replace(
            "password_env = \"PG_PROD_PASSWORD\"",
            "password = \"hunter2\"",
        );
        let err = parse(&inline).unwrap_err();
        assert!(err.contains("unknown field `password`"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "a secret value must not be echoed: {err}"
        );
    }

    #[test]
    fn duplicate_connections_and_unusable_connections_are_refused() {
        let dup = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[connections]]").unwrap()..]);
        assert!(parse(&dup).unwrap_err().contains("defined twice"));
        let nobody = GOOD.replace("allow_groups = [\"engineering\"]", "");
        assert!(parse(&nobody).unwrap_err().contains("nobody may use it"));
    }

    #[test]
    fn record_results_is_off_by_default_and_capped() {
        assert_eq!(
            parse(GOOD)
                .unwrap()
                .connection("pg-prod")
                .unwrap()
                .record_results,
            0
        );
        let with = |n: &str| {
            GOOD.replace(
                "allow_groups = [\"engineering\"]\n",
                &format!("allow_groups = [\"engineering\"]\nrecord_results = {n}\n"),
            )
        };
        let cfg = parse(&with("1000")).unwrap();
        assert_eq!(cfg.connection("pg-prod").unwrap().record_results, 1000);
        let err = parse(&with("1001")).unwrap_err();
        assert!(
            err.contains("record_results = 1001 is more than 1000"),
            "{err}"
        );
        assert!(parse(&with("-1")).is_err());
    }

    #[test]
    fn masking_sets_are_compiled_and_connections_name_only_known_ones() {
        let sets = "[[masking_sets]]\nname = \"pii\"\n[[masking_sets.rule]]\nname = \"emails\"\n\
                    columns = [\"customers.email\"]\nstyle = \"keep-domain\"\n";
        let with = |conn_masking: &str, sets: &str| {
            GOOD.replace(
                "allow_groups = [\"engineering\"]\n",
                &format!("allow_groups = [\"engineering\"]\n{conn_masking}\n{sets}"),
            )
        };
        let cfg = parse(&with("masking = [\"pii\"]", sets)).unwrap();
        assert_eq!(cfg.connection("pg-prod").unwrap().masking, ["pii"]);
        assert_eq!(cfg.masking_sets[0].get_ref().rules.len(), 1);

        let err = parse(&with("masking = [\"pi\"]", sets)).unwrap_err();
        let line = GOOD[..GOOD.find("[[connections]]").unwrap()]
            .lines()
            .count()
            + 1;
        assert!(err.starts_with(&format!("broker.toml:{line}:1: ")), "{err}");
        assert!(
            err.contains("unknown masking set \"pi\" (defined sets: pii)"),
            "{err}"
        );
        let bad_regex = sets.replace(
            "columns = [\"customers.email\"]",
            "detect = [{ regex = \"(\" }]",
        );
        let err = parse(&with("", &bad_regex)).unwrap_err();
        assert!(
            err.starts_with("broker.toml:") && err.contains("regex"),
            "{err}"
        );
        let err = parse(&with("", &format!("{sets}{sets}"))).unwrap_err();
        assert!(err.contains("defined twice"), "{err}");
        let err = parse(&with("", &sets.replace("style = ", "styl = "))).unwrap_err();
        assert!(err.contains("unknown field `styl`"), "{err}");
    }

    #[test]
    fn identity_needs_exactly_one_provider() {
        let none = GOOD.replace(
            "[identity.builtin]\nusers = [{ name = \"alice\", groups = [\"engineering\"] }]",
            "[identity]",
        );
        assert!(parse(&none).unwrap_err().contains("set issuer"));
    }

    const WORKLOAD: &str = r#"
[[identity.workload]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audience = "hoop"

[[identity.workload.rules]]
service = "api-deploy"
groups = ["ci"]
claims = { sub = "repo:acme/api:ref:refs/heads/main", repository_owner = "acme" }

[[identity.workload.rules]]
service = "acme-ci"
claims = { sub = "repo:acme/*" }
"#;

    /// GOOD with `extra` inserted before the connections.
    fn with_identity(extra: &str) -> String {
        GOOD.replace("\n[[connections]]", &format!("{extra}\n[[connections]]"))
    }

    #[test]
    fn workload_issuers_parse_with_rules_in_order() {
        let cfg = parse(&with_identity(WORKLOAD)).unwrap();
        let w = cfg.identity.workload[0].get_ref();
        assert_eq!(w.name, "github");
        assert_eq!(w.audience, "hoop");
        let services: Vec<_> = w
            .rules
            .iter()
            .map(|r| r.get_ref().service.as_str())
            .collect();
        assert_eq!(services, ["api-deploy", "acme-ci"]);
        let first = w.rules[0].get_ref();
        assert_eq!(first.claims["repository_owner"], "acme");
        assert_eq!(first.groups, ["ci"]);
    }

    #[test]
    fn workload_config_mistakes_are_refused_with_position() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "audience = \"hoop\"",
                "audiense = \"hoop\"",
                "unknown field `audiense`",
            ),
            ("audience = \"hoop\"\n", "", "missing field `audience`"),
            (
                "audience = \"hoop\"",
                "audience = \"\"",
                "audience must not be empty",
            ),
            (
                "claims = { sub = \"repo:acme/*\" }",
                "claims = {}",
                "a rule must constrain something",
            ),
            (
                "claims = { sub = \"repo:acme/*\" }",
                "claims = { sub = \"*\" }",
                "matches anything",
            ),
            (
                "claims = { sub = \"repo:acme/*\" }",
                "claims = { sub = \"a\\\\b\" }",
                "backslash",
            ),
            (
                "claims = { sub = \"repo:acme/*\" }",
                "claims = { sub = 7 }",
                "string",
            ),
            (
                "service = \"acme-ci\"",
                "service = \"ACME CI\"",
                "service name \"ACME CI\"",
            ),
            (
                "name = \"github\"",
                "name = \"Git Hub\"",
                "workload issuer name",
            ),
            (
                "https://token.actions",
                "http://token.actions",
                "plain http is allowed only on loopback",
            ),
            (
                "https://token.actions.githubusercontent.com",
                "not a url",
                "not a URL",
            ),
            ("groups = [\"ci\"]", "groups = [\"\"]", "empty group"),
            (
                "groups = [\"ci\"]",
                "grups = [\"ci\"]",
                "unknown field `grups`",
            ),
        ];
        for (from, to, expect) in cases {
            assert!(WORKLOAD.contains(from), "{from}");
            let err = parse(&with_identity(&WORKLOAD.replacen(from, to, 1))).unwrap_err();
            assert!(err.contains(expect), "{from} -> {to}: {err}");
            assert!(err.starts_with("broker.toml:"), "{err}");
        }
    }

    #[test]
    fn duplicate_and_ambiguous_workload_issuers_are_refused() {
        let twice = format!("{WORKLOAD}{WORKLOAD}");
        let err = parse(&with_identity(&twice)).unwrap_err();
        assert!(err.contains("\"github\" is defined twice"), "{err}");
        let same_pair = format!("{WORKLOAD}{}", WORKLOAD.replace("\"github\"", "\"gh2\""));
        let err = parse(&with_identity(&same_pair)).unwrap_err();
        assert!(err.contains("same issuer and audience"), "{err}");
        // Same issuer with another audience is fine (e.g. one GitLab for people and CI).
        let other_aud = format!(
            "{WORKLOAD}{}",
            WORKLOAD
                .replace("\"github\"", "\"gh2\"")
                .replace("\"hoop\"", "\"hoop-2\"")
        );
        parse(&with_identity(&other_aud)).unwrap();
        let no_rules = WORKLOAD
            .split("[[identity.workload.rules]]")
            .next()
            .unwrap();
        let err = parse(&with_identity(no_rules)).unwrap_err();
        assert!(err.contains("no rules"), "{err}");
    }

    #[test]
    fn webhooks_default_to_every_event_and_refuse_unsafe_urls() {
        use crate::notify::NotifyEvent;
        let hooks = "webhooks = [\n  { url = \"https://hooks.slack.com/services/T0/B0/TOKEN\" },\n  \
                     { url = \"http://127.0.0.1:9000/h\", events = [\"request.created\", \
                     \"request.expired\"], secret_env = \"HOOK_KEY\" },\n]\n";
        let cfg = parse(&format!("{hooks}{GOOD}")).unwrap();
        let (a, b) = (cfg.webhooks[0].get_ref(), cfg.webhooks[1].get_ref());
        assert_eq!(a.events, None, "absent means every event");
        assert_eq!(a.secret_env, None);
        assert_eq!(
            b.events.as_deref(),
            Some(&[NotifyEvent::Created, NotifyEvent::Expired][..])
        );
        assert_eq!(b.secret_env.as_deref(), Some("HOOK_KEY"));
        assert!(!format!("{a:?}").contains("TOKEN"), "Debug hides the token");

        let cases: &[(&str, &str, &str)] = &[
            (
                "http://127.0.0.1:9000",
                "http://hooks.example.com",
                "only on loopback",
            ),
            (
                "http://127.0.0.1:9000",
                "ftp://127.0.0.1",
                "not an https:// URL",
            ),
            ("https://hooks.slack.com", "hooks.slack.com", "not a URL"),
            (
                "\"request.expired\"",
                "\"request.exploded\"",
                "unknown variant `request.exploded`",
            ),
            (
                "events = [\"request.created\", \"request.expired\"]",
                "events = []",
                "events is empty",
            ),
            (
                "\"HOOK_KEY\"",
                "\"s3cr3t value\"",
                "not an environment variable name",
            ),
            ("secret_env", "secret", "unknown field `secret`"),
        ];
        for (from, to, expect) in cases {
            assert!(hooks.contains(from), "{from}");
            let err = parse(&format!("{}{GOOD}", hooks.replacen(from, to, 1))).unwrap_err();
            assert!(err.contains(expect), "{from} -> {to}: {err}");
            assert!(err.starts_with("broker.toml:"), "{err}");
            assert!(!err.contains("TOKEN"), "{err}");
        }
    }

    #[test]
    fn issuers_on_loopback_may_use_plain_http_and_refetch_has_a_floor() {
        for host in ["127.0.0.1:9999", "localhost:9999", "[::1]:9999"] {
            let local = WORKLOAD.replace(
                "https://token.actions.githubusercontent.com",
                &format!("http://{host}"),
            );
            parse(&with_identity(&local)).unwrap();
        }
        let person = GOOD.replace(
            "[identity.builtin]\nusers = [{ name = \"alice\", groups = [\"engineering\"] }]",
            "[identity]\nissuer = \"http://idp.example.com\"",
        );
        assert!(parse(&person).unwrap_err().contains("only on loopback"));
        let fast = GOOD.replace(
            "[identity.builtin]",
            "[identity]\nkey_refetch_interval = \"10ms\"\n[identity.builtin]",
        );
        assert!(parse(&fast).unwrap_err().contains("at least 1s"));
    }

    const SSH: &str = "\n[[connections]]\nname = \"ssh-prod\"\ntype = \"ssh\"\nhost = \"10.0.0.5\"\n\
        user = \"deploy\"\nhost_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"\n\
        private_key_env = \"SSH_PROD_KEY\"\nallow_groups = [\"engineering\"]\n";

    #[test]
    fn ssh_connections_parse_with_defaults_and_need_no_postgres_fields() {
        let cfg = parse(&format!("{GOOD}{SSH}")).unwrap();
        let c = cfg.connection("ssh-prod").unwrap();
        assert_eq!(c.kind, ConnectionType::Ssh);
        assert_eq!(c.port(), 22);
        assert_eq!(c.allow_shell, None, "absent means shells are allowed");
        assert!(!c.allow_port_forwarding);
        assert!(c.commands.is_none(), "absent means no-destructive-shell");
        // Postgres configs are unchanged: still need their database.
        let err = parse(&GOOD.replace("database = \"app\"\n", "")).unwrap_err();
        assert!(
            err.contains("host, database and user must not be empty"),
            "{err}"
        );
    }

    #[test]
    fn ssh_connection_mistakes_are_refused_with_position() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "private_key_env = \"SSH_PROD_KEY\"\n",
                "",
                "exactly one of private_key_file",
            ),
            (
                "private_key_env = \"SSH_PROD_KEY\"",
                "private_key_env = \"K\"\npassword_env = \"P\"",
                "exactly one of private_key_file",
            ),
            (
                "host_key = \"ssh-ed25519 AAAA",
                "host_kye = \"ssh-ed25519 AAAA",
                "unknown field `host_kye`",
            ),
            (
                "host_key = \"ssh-ed25519 AAAAC3",
                "host_key = \"ssh-ed25519 XXXXC3",
                "host_key: not an OpenSSH",
            ),
            (
                "user = \"deploy\"",
                "user = \"deploy\"\ndatabase = \"app\"",
                "are for postgres connections",
            ),
            (
                "user = \"deploy\"",
                "user = \"deploy\"\ncommands = [\"nope\"]",
                "unknown command rule set",
            ),
            (
                "user = \"deploy\"",
                "user = \"deploy\"\nallow_env = [\"A B\"]",
                "not an environment variable name",
            ),
            (
                "user = \"deploy\"",
                "user = \"deploy\"\ncommand_rules = [{ action = \"maybe\", pattern = \"x\" }]",
                "unknown variant `maybe`",
            ),
        ];
        for (from, to, expect) in cases {
            assert!(SSH.contains(from), "{from}");
            let err = parse(&format!("{GOOD}{}", SSH.replacen(from, to, 1))).unwrap_err();
            assert!(err.contains(expect), "{from} -> {to}: {err}");
            assert!(err.starts_with("broker.toml:"), "{err}");
        }
        // Both or neither host key source.
        let neither = SSH.replace(
            "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"\n",
            "",
        );
        let err = parse(&format!("{GOOD}{neither}")).unwrap_err();
        assert!(err.contains("never trusts a host key"), "{err}");
        // ssh-only fields on a postgres connection.
        let err = parse(&GOOD.replace("user = \"app\"", "user = \"app\"\nallow_shell = false"))
            .unwrap_err();
        assert!(err.contains("allow_shell is for type = \"ssh\""), "{err}");
    }
}
