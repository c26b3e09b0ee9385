//! `hoop-broker dev` (orchestration being wired).

pub mod postgres;
