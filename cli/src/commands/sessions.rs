//! `hoopctl sessions replay ID [--speed X]`: fetches an SSH session's
//! asciicast v2 recording from the broker (`GET /v1/sessions/{id}/recording`)
//! and writes its output events to the terminal with the recorded timing
//! (divided by `--speed`, pauses capped by `--max-idle`). Resize events are
//! noted on stderr when they change the size; nothing is sent to the broker.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use super::Context;
use crate::cli::{ReplayArgs, SessionsArgs, SessionsCommand};

/// Runs `hoopctl sessions ...`.
pub async fn run(ctx: &Context, args: &SessionsArgs) -> anyhow::Result<u8> {
    match &args.command {
        SessionsCommand::Replay(a) => replay(ctx, a).await,
    }
}

/// One event of an asciicast v2 file.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEvent {
    /// Seconds since the start.
    pub at: f64,
    /// `o` (output), `i` (input), `r` (resize), `m` (marker).
    pub code: String,
    /// The data.
    pub data: String,
}

/// An asciicast v2 recording: header size and events.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// Terminal width.
    pub width: u64,
    /// Terminal height.
    pub height: u64,
    /// Events in order.
    pub events: Vec<CastEvent>,
}

/// Parses asciicast v2 text (header line, then one JSON array per line).
pub fn parse_cast(text: &str) -> anyhow::Result<Cast> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: serde_json::Value =
        serde_json::from_str(lines.next().context("the recording is empty")?)
            .context("the recording's header is not JSON")?;
    anyhow::ensure!(
        header.get("version").and_then(serde_json::Value::as_u64) == Some(2),
        "not an asciicast v2 recording"
    );
    let size = |k: &str| {
        header
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut events = Vec::new();
    for (n, line) in lines.enumerate() {
        let v: (f64, String, String) = serde_json::from_str(line)
            .with_context(|| format!("event {} of the recording is malformed", n + 1))?;
        events.push(CastEvent {
            at: v.0,
            code: v.1,
            data: v.2,
        });
    }
    Ok(Cast {
        width: size("width"),
        height: size("height"),
        events,
    })
}

/// The pause before each event at `speed`, idle time capped at `max_idle`.
pub fn delays(events: &[CastEvent], speed: f64, max_idle: Option<f64>) -> Vec<Duration> {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let mut last = 0.0;
    events
        .iter()
        .map(|e| {
            let mut gap = (e.at - last).max(0.0);
            last = e.at;
            if let Some(cap) = max_idle.filter(|c| c.is_finite() && *c >= 0.0) {
                gap = gap.min(cap);
            }
            Duration::from_secs_f64(gap / speed)
        })
        .collect()
}

async fn replay(ctx: &Context, args: &ReplayArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let token = creds.access_token().await?;
    let api = creds.api();
    let mut url = api.endpoint(&["v1", "sessions", &args.id, "recording"]);
    if args.index {
        url.set_query(Some("index"));
    } else if args.part > 0 {
        url.set_query(Some(&format!("part={}", args.part)));
    }
    let resp = api
        .http()
        .get(url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| api.transport_error(&e))?;
    if !resp.status().is_success() {
        return Err(api.error_from_response(resp).await.into());
    }
    let body = resp.text().await.map_err(|e| api.transport_error(&e))?;
    let mut out = std::io::stdout();
    if args.index {
        out.write_all(body.as_bytes())?;
        out.write_all(b"\n")?;
        return Ok(0);
    }
    let cast = parse_cast(&body)?;
    eprintln!(
        "Replaying session {} ({}x{}, {} events){}",
        args.id,
        cast.width,
        cast.height,
        cast.events.len(),
        if args.speed == 1.0 {
            String::new()
        } else {
            format!(" at {}x speed", args.speed)
        }
    );
    let waits = delays(&cast.events, args.speed, args.max_idle);
    for (event, wait) in cast.events.iter().zip(waits) {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match event.code.as_str() {
            "o" => {
                out.write_all(event.data.as_bytes())?;
                out.flush()?;
            }
            "r" => tracing::debug!(size = %event.data, "terminal resized"),
            _ => {}
        }
    }
    eprintln!("\nEnd of the recording.");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = "{\"version\":2,\"width\":100,\"height\":30}\n\
                        [0.5,\"o\",\"$ \"]\n[1.5,\"r\",\"120x40\"]\n[11.5,\"o\",\"hi\\r\\n\"]\n";

    #[test]
    fn casts_parse_and_play_at_speed_with_idle_capped() {
        let cast = parse_cast(CAST).unwrap();
        assert_eq!((cast.width, cast.height), (100, 30));
        assert_eq!(cast.events.len(), 3);
        assert_eq!(cast.events[2].data, "hi\r\n");
        let d = delays(&cast.events, 2.0, None);
        assert_eq!(d, [0.25, 0.5, 5.0].map(Duration::from_secs_f64));
        let d = delays(&cast.events, 1.0, Some(2.0));
        assert_eq!(d[2], Duration::from_secs(2));
        // A nonsense speed plays at recorded speed.
        assert_eq!(
            delays(&cast.events, 0.0, None)[0],
            Duration::from_millis(500)
        );
    }

    #[test]
    fn bad_recordings_are_refused() {
        assert!(parse_cast("").is_err());
        assert!(parse_cast("{\"version\":1}").is_err());
        assert!(parse_cast("{\"version\":2}\n[1,2]").is_err());
    }
}
