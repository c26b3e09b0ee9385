//! Protocol-aware proxies.
pub mod postgres;
pub mod ssh;
