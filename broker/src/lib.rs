//! hoop-broker: the one place in the data path where identity, policy,
//! credential injection and recording apply.
//!
//! The modules form four layers; imports point down only (or sideways within
//! a layer, without cycles). `scripts/check-layers` checks it in CI, and
//! `docs/architecture.md` follows one statement and one SSH command through
//! them.
//!
//! **Ground** (plain data and helpers; imports nothing above):
//!
//! - [`config`]: the config file as plain data, strictly parsed; checks that
//!   need no other module ([`config::PartChecks`] lets each domain check its
//!   own part). Guardrail and masking set documents live in
//!   [`config::guardrails`] and [`config::masking`].
//! - [`util`]: the clock in Unix seconds, private directories.
//! - [`tls`]: the HTTPS port's certificates, the generated development CA,
//!   and [`tls::TlsSettings`] for connections to PostgreSQL servers.
//! - [`secrets`]: resolves credential references (`password_env`,
//!   `password_file`); values live only in [`hoop_shared::Secret`].
//!
//! **Domain** (no HTTP, no protocol code, no `app`):
//!
//! - [`auth`]: validates every token as a relying party of an OIDC issuer:
//!   discovery, JWKS cache, signature/issuer/audience/expiry checks; workload
//!   identity federation.
//! - [`policy`]: the policy in force and its decisions (who may use which
//!   connection, with which guardrail and masking sets).
//! - [`access`]: access requests and grants: their state, approvers, view.
//! - [`session`]: live tunnels per grant, opening a session
//!   ([`session::open`]), and the one function that decides a session's
//!   effective controls and follows policy changes ([`session::controls`]).
//! - [`guard`]: guardrails: every statement parsed with PostgreSQL's grammar
//!   and judged against named rule sets (`no-destructive` built in); SSH
//!   command rules ([`guard::shell`]).
//! - [`mask`]: inline masking of result values: column rules, detectors
//!   (cards with Luhn, emails, SSNs, IBANs, phones, regexes) and mask styles.
//! - [`review`]: statements and commands held for a human decision.
//! - [`notify`]: webhooks told about access requests (created, approved,
//!   denied, expired, cancelled), Slack-compatible, signed, retried, and
//!   never in the way of the API answer.
//! - [`statement_log`]: the statement log interface: each statement's record
//!   is durable before the statement is forwarded.
//! - [`audit`]: the tamper-evident audit log (hash chain, signed
//!   checkpoints, SQLite or PostgreSQL, group commit); implements the
//!   statement log interface. [`trail`]: audit events to the log and store.
//! - [`store`]: requests, grants, sessions, policies: SQLite or PostgreSQL.
//! - [`cluster`]: several brokers on one store: each polls it for grants
//!   revoked and policies applied through the others.
//!
//! **Protocol proxies** (peers, each built from explicit domain parts):
//!
//! - [`proxy::postgres`]: terminates the client's startup, logs in upstream
//!   with the stored credential (SCRAM), and relays message by message with
//!   hooks for guardrails, masking and recording.
//! - [`proxy::ssh`]: an SSH server for the client's one-time key, bridged to
//!   the target; command rules, reviews and recordings.
//!
//! **Front** (what clients talk to) and wiring:
//!
//! - [`server`]: the accept loop for the one HTTPS port: TLS (tokio-rustls),
//!   then HTTP/1.1 (hyper) with upgrades.
//! - [`api`]: REST endpoints (`/v1/...`, axum) and the bearer-token extractor.
//! - [`tunnel`]: the authenticated `hoop-tunnel/1` upgrade and hello; decides
//!   the session's controls, then hands the byte stream to the proxy for the
//!   connection's protocol.
//! - [`web`]: the approvers' page (`/approvals`): OIDC sign-in (code flow
//!   with PKCE), pending requests, approve or deny through the API's code.
//! - [`idp`]: the built-in development identity provider (RFC 8628 device
//!   flow, discovery, JWKS), served under `/idp` when configured.
//! - [`state`]: what every handler shares ([`state::AppState`]).
//! - [`app`]: wiring: builds the state from a config, mounts the routers,
//!   runs the background tasks. [`config_check`]: `Config::load` with every
//!   domain's checks. [`dev`]: `hoop-broker dev`, everything for a local
//!   try-out in one command, including a throwaway PostgreSQL
//!   ([`dev::postgres`]).
//!
//! Ground helper: [`fsperm`]: owner-only modes for everything in the data
//! dir (umask `077`, and a loose data dir tightened at start).

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod config_check;
pub mod dev;
pub mod fsperm;
pub mod guard;
pub mod idp;
pub mod mask;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod review;
pub mod secrets;
pub mod server;
pub mod session;
pub mod state;
pub mod statement_log;
pub mod store;
pub mod tls;
pub mod trail;
pub mod tunnel;
pub mod util;
pub mod web;
