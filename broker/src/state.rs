//! What every HTTP handler shares: [`AppState`], built by `crate::app`
//! from the config. Front layer: the API, the web page and the tunnel
//! endpoint take it; the domain and the proxies never do (they are built
//! from the explicit parts they need).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Authenticator, LoginConfig};
use crate::config::Config;
use crate::proxy::postgres::{PgProxy, Upstream};
use crate::session::Grants;
use crate::store::{Event, Store};

/// What every handler shares.
pub struct AppState {
    /// The validated config.
    pub config: Config,
    /// URL clients use to reach the broker.
    pub public_url: String,
    /// What `GET /v1/auth/config` answers (discovered on first use).
    pub login_config: LoginConfig,
    /// HTTP client for the person identity provider (trusts its CA).
    pub idp_http: reqwest::Client,
    /// Validates bearer tokens (person issuer and workload issuers).
    pub verifier: Authenticator,
    /// Sessions and events.
    pub store: Store,
    /// The policy in force.
    pub policy: Arc<crate::policy::PolicyHolder>,
    /// Live tunnels by grant, for revocation.
    pub grants: Grants,
    /// Tells the configured webhooks about access requests (never blocks).
    pub notifier: crate::notify::Notifier,
    /// The Postgres proxy (holds the cancel-key registry).
    pub pg: PgProxy,
    /// The SSH proxy: the broker's SSH host key and the `ssh` connections.
    pub ssh: crate::proxy::ssh::SshProxy,
    /// Held statements and commands become review requests here.
    pub reviews: Arc<crate::review::ReviewDesk>,
    /// Upstream targets by connection name, with resolved credentials.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    /// Lifetime of new sessions.
    pub session_ttl: Duration,
    /// Owns every spawned task (connections, tunnels).
    pub tasks: TaskTracker,
    /// Cancelled when the broker shuts down.
    pub shutdown: CancellationToken,
    /// The hash-chained audit log (also the statement recorder).
    pub audit_log: crate::audit::AuditLog,
    /// Where audit events go (the audit log and the store).
    pub trail: crate::trail::AuditTrail,
}

impl AppState {
    /// Appends an audit event (see [`crate::trail::AuditTrail::record`]).
    pub async fn audit(&self, event: Event) {
        self.trail.record(event).await;
    }
}
