//! `hoopctl logout`: forget the stored login, wherever it is.

use std::io::Write as _;

use super::Context;
use crate::auth::store::TOKEN_ENV;

/// Deletes the login from the keyring and the token file.
pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let store = ctx.token_store()?;
    let overridden = store.is_overridden();
    let removed = tokio::task::spawn_blocking(move || store.delete()).await??;
    let mut out = std::io::stdout();
    if removed.is_empty() {
        writeln!(out, "Not logged in; nothing to remove.")?;
    } else {
        for location in &removed {
            writeln!(out, "Removed the stored login from {location}.")?;
        }
        writeln!(out, "Logged out.")?;
    }
    if overridden {
        eprintln!(
            "note: {TOKEN_ENV} is set in this environment and is still used until you unset it."
        );
    }
    Ok(0)
}
