//! Wiring: from a validated [`Config`] to a running broker.
//!
//! [`Broker::bind`] does everything that can fail at startup (bind the port,
//! TLS, data dir, store, credentials, identity provider) so that a bad config
//! stops the process before it serves anything; [`Broker::run`] then serves
//! until the shutdown token is cancelled and waits for its tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{
    Authenticator, DEFAULT_REFETCH_INTERVAL, LoginConfig, TokenVerifier, VerifierSettings,
    WorkloadIssuer, WorkloadRule,
};
use crate::config::UpstreamTls;
use crate::config::{Config, DEFAULT_SESSION_TTL};
use crate::idp::DevIdp;
use crate::proxy::postgres::{PgProxy, TlsSettings, Upstream};
use crate::secrets::{self, CredentialRef};
use crate::session::Grants;
use crate::state::AppState;
use crate::store::{Event, Store};
use crate::util::now_unix;

/// How often retention runs (when `[audit] retention` is set).
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// A broker that is bound and ready to serve.
pub struct Broker {
    /// The bound address.
    pub local_addr: SocketAddr,
    /// URL clients use.
    pub public_url: String,
    /// PEM of the generated CA, when `tls.self_signed` is set.
    pub ca_pem: Option<String>,
    /// Where the CA was written, when generated.
    pub ca_file: Option<PathBuf>,
    state: Arc<AppState>,
    notify_workers: crate::notify::Workers,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
}

impl Broker {
    /// Validates everything and binds the port.
    pub async fn bind(config: Config) -> anyhow::Result<Broker> {
        crate::tls::install_crypto_provider();
        crate::fsperm::secure_data_dir(&config.data_dir)
            .with_context(|| format!("data dir {}", config.data_dir.display()))?;
        let listener = TcpListener::bind(config.listen_addr())
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr()))?;
        let local_addr = listener.local_addr()?;
        let public_url = match &config.public_url {
            Some(u) => u.get_ref().trim_end_matches('/').to_owned(),
            None => {
                let host = if local_addr.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    match local_addr.ip() {
                        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                        ip @ std::net::IpAddr::V4(_) => ip.to_string(),
                    }
                };
                format!("https://{host}:{}", local_addr.port())
            }
        };

        let (tls, ca_pem, ca_file) = if config.tls.self_signed {
            let mut hosts = vec![local_addr.ip().to_string()];
            if let Some(h) = url::Url::parse(&public_url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
            {
                hosts.push(h);
            }
            // Kept in the data dir: a restart keeps the CA clients trust.
            let generated = crate::tls::load_or_generate(&config.data_dir, &hosts)?;
            let path = config.data_dir.join(crate::tls::DEV_CA_FILE);
            (generated.server_config, Some(generated.ca_pem), Some(path))
        } else {
            let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) else {
                anyhow::bail!("[tls] needs cert_file and key_file, or self_signed = true");
            };
            (crate::tls::load(cert, key)?, None, None)
        };

        // The HTTP client used to reach the identity provider. It trusts the
        // system roots, the configured extra CA, and our own generated CA (so
        // the built-in provider is fetched over HTTPS like any other).
        let http = idp_http_client(ca_pem.as_deref(), config.identity.ca_file.as_deref())
            .context("[identity]")?;

        let client_id = config.identity.client_id.clone();
        let audience = config
            .identity
            .audience
            .clone()
            .unwrap_or_else(|| client_id.clone());
        let refetch_interval = config
            .identity
            .key_refetch_interval
            .unwrap_or(DEFAULT_REFETCH_INTERVAL);
        let mut idp_router = None;
        let (issuer, login_config) = match (&config.identity.builtin, &config.identity.issuer) {
            (Some(builtin), _) => {
                let issuer = format!("{public_url}/idp");
                let idp = DevIdp::new(
                    &config.data_dir,
                    builtin,
                    issuer.clone(),
                    audience.clone(),
                    client_id.clone(),
                )
                .context("built-in identity provider")?;
                if let Some(interval) = builtin.poll_interval {
                    idp.set_poll_interval(interval);
                }
                let auth_config = idp.auth_config(config.identity.scopes.clone());
                idp_router = Some(Arc::new(idp).router());
                let login = LoginConfig::fixed(auth_config);
                (issuer, login)
            }
            (None, Some(issuer)) => {
                // Discovered on first use: the broker must start, and serve
                // people holding valid tokens, while the IdP is down.
                let issuer = issuer.get_ref().trim_end_matches('/').to_owned();
                let issuer_ca_pem = match &config.identity.ca_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("[identity] ca_file {}", path.display()))?,
                    ),
                    None => None,
                };
                let login = LoginConfig::discover(
                    http.clone(),
                    &issuer,
                    &client_id,
                    &config.identity.scopes,
                    issuer_ca_pem,
                );
                (issuer, login)
            }
            (None, None) => anyhow::bail!("[identity] needs issuer or [identity.builtin]"),
        };
        let person = TokenVerifier::new(
            VerifierSettings {
                issuer,
                audience,
                username_claim: config.identity.username_claim.clone(),
                groups_claim: config.identity.groups_claim.clone(),
                refetch_interval,
            },
            http.clone(),
        );
        let mut workloads = Vec::new();
        for w in config.identity.workload.iter().map(|w| w.get_ref()) {
            let what = format!("[[identity.workload]] {}", w.name);
            let http = idp_http_client(None, w.ca_file.as_deref()).context(what.clone())?;
            let mut rules = Vec::new();
            for r in w.rules.iter().map(|r| r.get_ref()) {
                let mut claims = Vec::new();
                for (name, pattern) in &r.claims {
                    let compiled = crate::auth::matcher::ClaimPattern::parse(pattern)
                        .with_context(|| format!("{what}: rule {}, claim {name}", r.service))?;
                    claims.push((name.clone(), compiled));
                }
                rules.push(WorkloadRule {
                    service: r.service.clone(),
                    groups: r.groups.clone(),
                    claims,
                });
            }
            tracing::info!(name = %w.name, issuer = %w.issuer.get_ref(), rules = rules.len(),
                "trusting workload issuer");
            workloads.push(WorkloadIssuer {
                name: w.name.clone(),
                verifier: TokenVerifier::new(
                    VerifierSettings {
                        issuer: w.issuer.get_ref().clone(),
                        audience: w.audience.clone(),
                        username_claim: config.identity.username_claim.clone(),
                        groups_claim: config.identity.groups_claim.clone(),
                        refetch_interval,
                    },
                    http,
                ),
                rules,
            });
        }
        let verifier = Authenticator::new(person, workloads);

        let mut upstreams = HashMap::new();
        for c in config
            .connections
            .iter()
            .map(|c| c.get_ref())
            .filter(|c| c.kind == crate::config::ConnectionType::Postgres)
        {
            let reference = match (&c.password_env, &c.password_file) {
                (Some(v), _) => CredentialRef::Env(v.clone()),
                (None, Some(p)) => CredentialRef::File(p.clone()),
                (None, None) => anyhow::bail!("connection {}: no credential reference", c.name),
            };
            let password =
                secrets::resolve(&reference).with_context(|| format!("connection {}", c.name))?;
            let tls = TlsSettings::new(c.tls, c.tls_ca_file.as_deref())
                .map_err(|e| anyhow::anyhow!("connection {}: {e}", c.name))?;
            if c.tls != UpstreamTls::VerifyFull && !is_loopback_host(&c.host) {
                tracing::warn!(
                    connection = %c.name,
                    "the broker does not verify the database's certificate (tls = {:?}); \
                     set tls = \"verify-full\" with tls_ca_file for a target off this machine",
                    c.tls
                );
            }
            upstreams.insert(
                c.name.clone(),
                Arc::new(Upstream {
                    connection: c.name.clone(),
                    host: c.host.clone(),
                    port: c.port(),
                    database: c.database.clone(),
                    user: c.user.clone(),
                    password,
                    tls,
                }),
            );
        }

        // Guardrails: each connection's sets plus those of the policy rule
        // granting a session, compiled once per distinct list (set names were
        // checked when the config loaded; the connections' own are built now).
        let postgres = || {
            config
                .connections
                .iter()
                .map(|c| c.get_ref())
                .filter(|c| c.kind == crate::config::ConnectionType::Postgres)
        };
        let guard_book = crate::guard::GuardBook::new(
            crate::guard::Registry::with_config_sets(&config.guardrail_sets),
            postgres(),
        );
        for c in postgres() {
            guard_book
                .for_session(&c.name, &[])
                .map_err(|e| anyhow::anyhow!("connection {}: {e}", c.name))?;
        }

        let ssh = crate::proxy::ssh::SshProxy::new(
            &config.data_dir,
            config.connections.iter().map(|c| c.get_ref()),
        )?;
        // Masking sets (checked when the config loaded); the `hash` style is
        // keyed per broker (DATA_DIR/masking.key).
        let masking_key = masking_key(&config.data_dir)?;
        let mut masking_sets = HashMap::new();
        for m in config.masking_sets.iter().map(|m| m.get_ref()) {
            let set = crate::mask::MaskSet::compile(m, masking_key.expose().as_bytes())
                .map_err(|e| anyhow::anyhow!("[[masking_sets]]: {e}"))?;
            masking_sets.insert(m.name.clone(), Arc::new(set));
        }

        let store = Store::open(&config.store, &config.data_dir)
            .await
            .with_context(|| format!("[store] {}", config.store.redacted_url()))?;
        let active_policy = crate::policy::load_active(&config, &store)
            .await
            .context("policy")?;
        tracing::info!(
            version = active_policy.version,
            applied_by = %active_policy.applied_by,
            rules = active_policy.policy.rules.len(),
            "policy in force"
        );
        let session_ttl = config.session_ttl.unwrap_or(DEFAULT_SESSION_TTL);
        let webhooks: Vec<_> = config
            .webhooks
            .iter()
            .map(|w| w.get_ref().clone())
            .collect();
        let (notifier, notify_workers) =
            crate::notify::Notifier::new(&webhooks, &public_url, store.clone())
                .context("[[webhooks]]")?;
        let audit_log =
            crate::audit::AuditLog::open(&config.audit, &config.store, &config.data_dir)
                .await
                .context("[audit]")?;
        // Query review: held statements become review requests (crate::review).
        let policy = Arc::new(crate::policy::PolicyHolder::new(active_policy));
        let reviews = Arc::new(crate::review::ReviewDesk::new(
            store.clone(),
            notifier.clone(),
            policy.clone(),
            config
                .request_ttl
                .unwrap_or(crate::config::DEFAULT_REQUEST_TTL),
        ));
        let store_for_trail = store.clone();
        let state =
            Arc::new(AppState {
                config,
                public_url: public_url.clone(),
                login_config,
                verifier,
                idp_http: http.clone(),
                store,
                policy,
                grants: Grants::default(),
                notifier,
                pg: PgProxy::new()
                    .with_guard_book(guard_book)
                    .with_reviews(reviews.clone())
                    .with_masking(masking_sets)
                    .with_recorder(Arc::new(audit_log.clone())),
                ssh: ssh.with_reviews(reviews.clone()).with_audit_trail(
                    crate::trail::AuditTrail::new(audit_log.clone(), store_for_trail.clone()),
                ),
                reviews,
                upstreams,
                session_ttl,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                trail: crate::trail::AuditTrail::new(audit_log.clone(), store_for_trail),
                audit_log,
            });
        state
            .audit(Event {
                at: now_unix(),
                kind: "broker.start".into(),
                user_name: None,
                connection: None,
                session_id: None,
                detail: serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "audit_key_id": state.audit_log.public_key().key_id,
                })
                .to_string(),
            })
            .await;
        // The REST API, the tunnel endpoint and the approvers' page, side by
        // side (the API imports neither of the others).
        let mut router = crate::api::router(state.clone())
            .merge(
                Router::new()
                    .route(
                        "/v1/sessions/{id}/tunnel",
                        axum::routing::get(crate::tunnel::upgrade),
                    )
                    .with_state(state.clone()),
            )
            .merge(crate::web::router(state.clone()));
        if let Some(idp) = idp_router {
            router = router.nest("/idp", idp);
        }
        let router = router.layer(axum::middleware::from_fn(log_request));
        Ok(Broker {
            local_addr,
            public_url,
            ca_pem,
            ca_file,
            state,
            notify_workers,
            listener,
            tls,
            router,
        })
    }

    /// Serves until `shutdown` is cancelled, then stops tunnels and waits
    /// (bounded) for connection tasks to finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let state = self.state;
        let tasks = state.tasks.clone();
        // Webhook workers stop with the broker (state.shutdown, below).
        self.notify_workers.spawn(&tasks, state.shutdown.clone());
        if let Some(retention) = state.config.audit.retention {
            let (log, stop) = (state.audit_log.clone(), state.shutdown.clone());
            let retained = state.clone();
            tasks.spawn(async move {
                loop {
                    match log.prune().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(records = n, "audit retention pruned old records"),
                        Err(e) => tracing::warn!("audit retention failed: {e}"),
                    }
                    // Recordings go with the records: SSH parts in the store
                    // and their files (Postgres recordings are audit records).
                    let cutoff = SystemTime::now()
                        .checked_sub(retention)
                        .unwrap_or(UNIX_EPOCH);
                    let cutoff_secs = cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    match retained.store.prune_recordings(cutoff_secs).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(parts = n, "retention pruned stored recordings"),
                        Err(e) => tracing::warn!("recording retention failed: {e}"),
                    }
                    let files = retained.ssh.recordings().prune_files(cutoff);
                    if files > 0 {
                        tracing::info!(files, "retention pruned recording files");
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(PRUNE_INTERVAL) => {}
                    }
                }
            });
        }
        // Revocations and policy changes made through other brokers sharing
        // the store (a single broker sees none; the poll is cheap).
        let interval = state
            .config
            .cluster
            .poll_interval
            .unwrap_or(crate::cluster::DEFAULT_POLL_INTERVAL);
        tasks.spawn(cluster_sync(state.clone(), interval));
        let serve = crate::server::run(
            self.listener,
            self.tls,
            self.router,
            shutdown.clone(),
            tasks.clone(),
        );
        serve.await;
        state.shutdown.cancel();
        state
            .audit(crate::store::Event {
                at: now_unix(),
                kind: "broker.stop".into(),
                user_name: None,
                connection: None,
                session_id: None,
                detail: String::new(),
            })
            .await;
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within 10s of shutdown");
        }
        // Last: what the connections wrote, then the shutdown checkpoint.
        state.audit_log.close().await;
    }
}

/// Logs each request's method, path and status (never headers: they carry tokens).
async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// An HTTP client for an identity provider: system roots, plus our own
/// generated CA (the built-in provider) and an operator-given CA file.
fn idp_http_client(
    own_ca_pem: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<reqwest::Client> {
    let mut http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = own_ca_pem {
        http = http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("ca_file {}", ca.display()))?;
        http = http.add_root_certificate(
            reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("ca_file {}", ca.display()))?,
        );
    }
    Ok(http.build()?)
}

/// The key of the masking `hash` style: `DATA_DIR/masking.key`, created
/// (0600) on first start. Brokers that must hash alike share this file.
fn masking_key(data_dir: &std::path::Path) -> anyhow::Result<hoop_shared::Secret> {
    let path = data_dir.join("masking.key");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(hoop_shared::Secret::new(text.trim().to_owned())),
        _ => {
            let key = hoop_shared::Secret::generate(32);
            hoop_shared::client_config::write_private_file(
                data_dir,
                "masking.key",
                key.expose().as_bytes(),
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(key)
        }
    }
}

/// True for `localhost` and loopback addresses.
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs the cluster sync ([`crate::cluster`]) every `interval` until the
/// broker shuts down.
async fn cluster_sync(state: Arc<AppState>, interval: Duration) {
    let sync =
        crate::cluster::ClusterSync::new(crate::policy::known_names(&state.config), now_unix());
    let trail = state.trail.clone();
    crate::cluster::drive(
        sync,
        &state.store,
        &state.policy,
        &state.grants,
        interval,
        state.shutdown.clone(),
        |e| {
            let trail = trail.clone();
            async move { trail.record(e).await }
        },
    )
    .await;
}
