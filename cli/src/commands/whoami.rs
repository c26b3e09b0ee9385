//! `hoopctl whoami`: the identity the broker sees (a person, or a workload
//! and the broker rule that mapped it), which token source hoopctl used, and
//! when the token expires.

use std::io::Write as _;

use anyhow::Context as _;

use hoop_shared::api::IdentityKind;

use super::{Context, describe_time};
use crate::auth::now_unix;
use crate::cli::WhoamiArgs;

/// Asks the broker (`GET /v1/me`) and prints the answer.
pub async fn run(ctx: &Context, args: &WhoamiArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let me = creds
        .call(|token| {
            let api = api.clone();
            async move { api.whoami(&token).await }
        })
        .await
        .context("cannot ask the broker who you are")?;
    let mut out = std::io::stdout();
    writeln!(out, "user:     {}", me.user)?;
    let groups = if me.groups.is_empty() {
        "(none)".to_owned()
    } else {
        me.groups.join(", ")
    };
    writeln!(out, "groups:   {groups}")?;
    match (me.kind, &me.matched_rule) {
        (IdentityKind::Person, _) => writeln!(out, "kind:     person")?,
        (IdentityKind::Workload, Some(rule)) => writeln!(out, "kind:     workload (rule: {rule})")?,
        (IdentityKind::Workload, None) => writeln!(out, "kind:     workload")?,
    }
    writeln!(out, "token:    {}", creds.location().await?)?;
    writeln!(
        out,
        "expires:  {}",
        describe_time(me.expires_at, now_unix())
    )?;
    if args.verbose {
        let broker = ctx.settings.broker()?;
        writeln!(out, "subject:  {}", me.subject)?;
        writeln!(out, "issuer:   {}", me.issuer)?;
        writeln!(
            out,
            "broker:   {} (from {})",
            api.broker_url(),
            broker.url_source
        )?;
        if let Some(ca) = &broker.ca_file {
            writeln!(out, "ca file:  {}", ca.display())?;
        }
        writeln!(out, "store:    {}", ctx.token_store()?.describe_mode())?;
        writeln!(out, "settings: {}", ctx.settings.config_dir.display())?;
    }
    out.flush()?;
    Ok(0)
}
