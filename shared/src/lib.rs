//! What `hoopctl` and `hoop-broker` both speak.
//!
//! - [`secret`]: the [`Secret`] type. Every credential, token and one-time
//!   tunnel secret travels in memory as a `Secret`, whose `Debug`/`Display`
//!   print `***`, and which serializes only through an explicit opt-in.
//! - [`tunnel`]: the versioned tunnel handshake (HTTP upgrade, then one framed
//!   hello each way), with a maximum frame length and a timeout. Documented in
//!   `docs/protocol.md`.
//! - [`api`]: the JSON bodies of the broker's REST API, including the one
//!   error shape every endpoint answers with.
//! - [`policy`]: the policy document (who may reach what, how, who approves),
//!   its strict validation, and the one function that makes decisions.
//! - [`client_config`]: where hoopctl keeps its settings, so the broker's `dev`
//!   command can write the broker URL and CA certificate where hoopctl finds them.

pub mod api;
pub mod audit;
pub mod client_config;
pub mod names;
pub mod policy;
pub mod secret;
pub mod tunnel;

pub use secret::Secret;
