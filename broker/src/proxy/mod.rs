//! Protocol-aware proxies.
pub mod postgres;
