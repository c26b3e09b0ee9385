//! The end-to-end suite: one test binary (linking the broker once, not once
//! per file), one module per capability. nextest still runs every test in
//! its own process.

// The whole crate is test code: a broken setup may panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod approvals;
mod approver_page;
mod audit;
mod brokers;
mod connect_postgres;
mod dev_command;
mod dev_restart;
mod exec;
mod file_modes;
mod guardrails;
mod identity;
mod local_flood;
mod login_external_idp;
mod masking;
mod mcp;
mod pg_dump;
mod pg_protocol;
mod policy_changes;
mod policy_dir;
mod psql_fidelity;
mod requests_api;
mod review;
mod rough_edges;
mod sessions;
mod ssh;
mod tokens;
mod webhooks;
