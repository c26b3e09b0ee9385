//! `hoopctl whoami`: the identity the broker sees (a person, or a workload
//! and the broker rule that mapped it), which token source hoopctl used, and
//! when the token expires.
//!
//! Every answer the broker gives is saved (`identity.json`, mode 0600, no
//! token in it) so that, with the broker unreachable, `whoami` still shows
//! who this login is, marked as not verified now.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use hoop_shared::api::{IdentityKind, WhoAmI};

use super::{Context, describe_time};
use crate::api::ApiError;
use crate::auth::{AuthError, now_unix};
use crate::cli::{OutputFormat, WhoamiArgs};

/// The file in the settings directory that holds the last confirmed identity.
pub const IDENTITY_FILE: &str = "identity.json";

/// The last identity a broker confirmed, as saved.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    broker: String,
    confirmed_at: u64,
    me: WhoAmI,
}

/// `whoami -o json`.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    me: &'a WhoAmI,
    broker: &'a str,
    token_source: String,
    /// Whether the broker confirmed the identity in this run.
    verified: bool,
    /// When the broker last confirmed it (Unix seconds).
    confirmed_at: u64,
}

/// Saves `me` as the identity `broker` confirmed now (best effort: a
/// read-only settings directory must not fail the command).
pub fn remember(dir: &Path, broker: &str, me: &WhoAmI) {
    let saved = Saved {
        broker: broker.to_owned(),
        confirmed_at: now_unix(),
        me: me.clone(),
    };
    let Ok(text) = serde_json::to_vec_pretty(&saved) else {
        return;
    };
    if let Err(e) = hoop_shared::client_config::write_private_file(dir, IDENTITY_FILE, &text) {
        tracing::debug!("cannot save the confirmed identity: {e}");
    }
}

/// The identity `broker` last confirmed, if saved.
fn recall(dir: &Path, broker: &str) -> Option<Saved> {
    let text = std::fs::read(dir.join(IDENTITY_FILE)).ok()?;
    let saved: Saved = serde_json::from_slice(&text).ok()?;
    (saved.broker == broker).then_some(saved)
}

/// Whether `e` means the broker did not answer at all.
fn unreachable(e: &AuthError) -> bool {
    matches!(e, AuthError::Api(ApiError::Unreachable { .. }))
}

/// Asks the broker (`GET /v1/me`) and prints the answer; without a broker,
/// the identity it confirmed last.
pub async fn run(ctx: &Context, args: &WhoamiArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let dir = &ctx.settings.config_dir;
    let asked = creds
        .call(|token| {
            let api = api.clone();
            async move { api.whoami(&token).await }
        })
        .await;
    let (me, verified, confirmed_at) = match asked {
        Ok(me) => {
            remember(dir, api.broker_url(), &me);
            (me, true, now_unix())
        }
        Err(e) if unreachable(&e) => match recall(dir, api.broker_url()) {
            Some(saved) => {
                eprintln!(
                    "warning: {e}\nShowing the identity the broker confirmed {} (not verified now).",
                    describe_time(saved.confirmed_at, now_unix())
                );
                (saved.me, false, saved.confirmed_at)
            }
            None => return Err(anyhow::Error::new(e).context("cannot ask the broker who you are")),
        },
        Err(e) => return Err(anyhow::Error::new(e).context("cannot ask the broker who you are")),
    };
    let location = creds.location().await?;
    let mut out = std::io::stdout();
    if args.output == OutputFormat::Json {
        let report = Report {
            me: &me,
            broker: api.broker_url(),
            token_source: location.to_string(),
            verified,
            confirmed_at,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
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
    writeln!(out, "token:    {location}")?;
    writeln!(
        out,
        "expires:  {}",
        describe_time(me.expires_at, now_unix())
    )?;
    if !verified {
        writeln!(
            out,
            "verified: no (the broker cannot be reached; confirmed {})",
            describe_time(confirmed_at, now_unix())
        )?;
    }
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
