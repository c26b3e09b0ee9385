//! The end-to-end suite: one test binary (linking the broker once, not once
//! per file), one module per capability. nextest still runs every test in
//! its own process.

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
mod pg_dump;
mod pg_protocol;
mod policy_dir;
mod psql_fidelity;
mod requests_api;
mod review;
mod sessions;
mod ssh;
mod tokens;
mod webhooks;
