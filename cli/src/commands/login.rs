//! `hoopctl login`: the device flow, then store the tokens and greet the user.
//!
//! The flow itself is in `auth/device.rs`; this file is the conversation with
//! the user: show the URL and code (stderr), maybe open a browser, wait with a
//! spinner, check the new token with the broker (`GET /v1/me`) before storing
//! it, and remember `--broker`/`--ca-file` in config.toml.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use hoop_shared::api::WhoAmI;
use hoop_shared::client_config::ClientConfig;

use super::Context;
use crate::api::ApiError;
use crate::auth::store::StoredTokens;
use crate::auth::{device, expiry_of, now_unix};
use crate::cli::LoginArgs;

/// Runs the device flow and stores the login.
pub async fn run(ctx: &Context, args: &LoginArgs) -> anyhow::Result<u8> {
    let broker = ctx.settings.broker()?.clone();
    let api = ctx.api()?;
    // Fail on a bad HOOP_TOKEN_STORE before the user approves anything.
    let store = ctx.token_store()?;

    let auth_config = api
        .auth_config()
        .await
        .context("cannot get the login settings from the broker")?;
    let idp_http = api.idp_http(&auth_config)?;
    let login = device::start(&idp_http, &auth_config)
        .await
        .context("cannot start the login")?;
    let prompt = login.prompt();
    show_prompt(&prompt);

    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).is_some();
    if should_open_browser(args.no_browser, &env, std::io::stdin().is_terminal()) {
        let url = prompt
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| prompt.verification_uri.clone());
        let opened = tokio::task::spawn_blocking(move || webbrowser::open(&url).is_ok())
            .await
            .unwrap_or(false);
        if opened {
            eprintln!("(A browser window was opened for you.)");
        }
    }

    let spinner = crate::render::spinner();
    spinner.set_message("Waiting for you to approve the login…");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let result = login.finish(&idp_http).await;
    spinner.finish_and_clear();
    let tokens = result.context("login failed")?;

    let me = api
        .whoami(&tokens.access_token)
        .await
        .map_err(|e| match e {
            ApiError::Unauthorized { message, .. } => anyhow::anyhow!(
                "the identity provider issued a token, but the broker at {} does not accept it: \
                 {message}. Ask the broker's administrator to check its identity settings \
                 (issuer, audience).",
                api.broker_url()
            ),
            other => {
                anyhow::Error::new(other).context("cannot check the new login with the broker")
            }
        })?;

    if ctx.global.broker.is_some() || ctx.global.ca_file.is_some() {
        remember_broker(ctx, &broker.display_url())?;
    }

    let stored = StoredTokens {
        expires_at: expiry_of(&tokens.access_token, tokens.expires_in, now_unix()),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        broker_url: broker.display_url(),
    };
    let overriding = ctx.token_source().location();
    let location = tokio::task::spawn_blocking(move || store.save(&stored))
        .await?
        .context("cannot store the login")?;

    super::whoami::remember(&ctx.settings.config_dir, api.broker_url(), &me);
    let mut out = std::io::stdout();
    writeln!(out, "{}", greeting(api.broker_url(), &me))?;
    out.flush()?;
    eprintln!("Login stored in {location}.");
    if let Some(location) = overriding {
        eprintln!(
            "note: hoopctl uses the token from {location} instead of this login until that is removed."
        );
    }
    Ok(0)
}

/// `Logged in to <broker> as <user> (groups: a, b)`.
pub fn greeting(broker: &str, me: &WhoAmI) -> String {
    let groups = if me.groups.is_empty() {
        "no groups".to_owned()
    } else {
        format!("groups: {}", me.groups.join(", "))
    };
    format!("Logged in to {broker} as {} ({groups})", me.user)
}

fn show_prompt(prompt: &device::DevicePrompt) {
    let minutes = prompt.expires_in.as_secs().div_ceil(60);
    eprintln!("To log in, open this page in a browser (on any device):");
    eprintln!();
    eprintln!("    {}", prompt.verification_uri);
    eprintln!();
    eprintln!("and enter the code:  {}", prompt.user_code);
    if let Some(complete) = &prompt.verification_uri_complete {
        eprintln!();
        eprintln!("Or open this link, which has the code filled in:");
        eprintln!("    {complete}");
    }
    eprintln!();
    eprintln!("The code is valid for {minutes} minute(s).");
}

/// Opens a browser only where one can plausibly appear in front of the user:
/// never with `--no-browser`, in CI, or without a terminal on stdin (scripts);
/// otherwise on macOS, or with an X11/Wayland display.
pub fn should_open_browser(
    no_browser: bool,
    env_set: &dyn Fn(&str) -> bool,
    stdin_tty: bool,
) -> bool {
    if no_browser || env_set("CI") || !stdin_tty {
        return false;
    }
    cfg!(target_os = "macos") || env_set("DISPLAY") || env_set("WAYLAND_DISPLAY")
}

/// Saves `--broker` (and `--ca-file`, made absolute) to config.toml.
fn remember_broker(ctx: &Context, broker_url: &str) -> anyhow::Result<()> {
    let dir = &ctx.settings.config_dir;
    let mut cfg = ClientConfig::load(dir)?;
    let same_broker =
        cfg.broker_url.as_deref().map(|u| u.trim_end_matches('/')) == Some(broker_url);
    cfg.broker_url = Some(broker_url.to_owned());
    if let Some(ca) = &ctx.global.ca_file {
        let ca = std::path::absolute(ca).with_context(|| format!("{}", ca.display()))?;
        cfg.ca_file = Some(ca);
    } else if !same_broker {
        // The old CA belonged to the old broker.
        cfg.ca_file = None;
    }
    cfg.save(dir)?;
    eprintln!(
        "Saved the broker settings to {}.",
        dir.join(hoop_shared::client_config::CONFIG_FILE).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |name| vars.contains(&name)
    }

    #[test]
    fn browser_only_where_one_can_appear() {
        assert!(should_open_browser(false, &env(&["DISPLAY"]), true));
        assert!(should_open_browser(false, &env(&["WAYLAND_DISPLAY"]), true));
        assert!(
            !should_open_browser(true, &env(&["DISPLAY"]), true),
            "--no-browser"
        );
        assert!(
            !should_open_browser(false, &env(&["DISPLAY", "CI"]), true),
            "CI"
        );
        assert!(
            !should_open_browser(false, &env(&["DISPLAY"]), false),
            "no tty"
        );
        if !cfg!(target_os = "macos") {
            assert!(!should_open_browser(false, &env(&[]), true), "headless");
        }
    }

    #[test]
    fn greeting_names_broker_user_and_groups() {
        let me = WhoAmI {
            user: "alice".into(),
            subject: "s".into(),
            groups: vec!["dba".into(), "eng".into()],
            issuer: "i".into(),
            expires_at: 0,
            kind: Default::default(),
            matched_rule: None,
        };
        assert_eq!(
            greeting("https://b:1", &me),
            "Logged in to https://b:1 as alice (groups: dba, eng)"
        );
    }
}
