//! hoop-broker: the one place in the data path where identity, policy,
//! credential injection and recording apply.
//!
//! A tour, in the order a request meets the parts:
//!
//! - [`server`]: the accept loop for the one HTTPS port: TLS (tokio-rustls),
//!   then HTTP/1.1 (hyper) with upgrades, serving the [`api`] router.
//! - [`api`]: REST endpoints (`/v1/...`, axum) and the bearer-token extractor.
//! - [`auth`]: validates every token as a relying party of an OIDC issuer:
//!   discovery, JWKS cache, signature/issuer/audience/expiry checks.
//! - [`idp`]: the built-in development identity provider (RFC 8628 device
//!   flow, discovery, JWKS), served under `/idp` when configured.
//! - [`policy`]: who may use which connection.
//! - [`guard`]: guardrails: every statement parsed with PostgreSQL's grammar
//!   and judged against named rule sets (`no-destructive` built in).
//! - [`web`]: the approvers' page (`/approvals`): OIDC sign-in (code flow
//!   with PKCE), pending requests, approve or deny through the API's code.
//! - sessions (in [`api`]): opening one hands hoopctl a one-time tunnel secret
//!   and records who, what, why and until when.
//! - [`tunnel`]: the authenticated `hoop-tunnel/1` upgrade and hello, then
//!   hands the byte stream to the proxy for the connection's protocol.
//! - [`proxy`]: protocol-aware proxies; [`proxy::postgres`] terminates the
//!   client's startup, logs in upstream with the stored credential (SCRAM),
//!   and relays message by message.
//! - [`mask`]: inline masking of result values: column rules, detectors
//!   (cards with Luhn, emails, SSNs, IBANs, phones, regexes) and mask styles.
//! - [`record`]: the recording interface: each statement's record is
//!   durable before the statement is forwarded.
//! - [`audit`]: the tamper-evident audit log (hash chain, signed
//!   checkpoints, SQLite or PostgreSQL, group commit); implements the
//!   recording interface.
//! - [`secrets`]: resolves credential references (`password_env`,
//!   `password_file`); values live only in [`hoop_shared::Secret`].
//! - [`store`]: requests, grants, sessions, policies: SQLite or PostgreSQL.
//! - [`tls`]: certificate loading, and the generated CA for development.
//! - [`notify`]: webhooks told about access requests (created, approved,
//!   denied, expired, cancelled), Slack-compatible, signed, retried, and
//!   never in the way of the API answer.
//! - [`cluster`]: several brokers on one store: each polls it for grants
//!   revoked and policies applied through the others.
//! - [`config`]: the config file, strictly parsed and validated.
//! - [`fsperm`]: owner-only modes for everything in the data dir (umask
//!   `077`, and a loose data dir tightened at start).
//! - [`dev`]: `hoop-broker dev`, everything for a local try-out in one command,
//!   including a throwaway PostgreSQL ([`dev::postgres`]).
//! - [`app`]: wiring: builds the shared state from a config and runs it.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod dev;
pub mod fsperm;
pub mod guard;
pub mod idp;
pub mod mask;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod record;
pub mod review;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tls;
pub mod tunnel;
pub mod web;
