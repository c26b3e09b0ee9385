//! `hoopctl audit list|export|verify`: read the broker's hash-chained audit
//! log, export it as JSON Lines, and verify an export (offline, with the
//! same verifier the broker uses: `hoop_shared::audit`).

use std::io::Write as _;

use anyhow::Context as _;
use hoop_shared::Secret;
use hoop_shared::audit::{AuditList, AuditRecord, Export, canonical_json};

use super::Context;
use crate::api::{ApiClient, ApiError};
use crate::cli::{AuditArgs, AuditCommand, AuditListArgs, AuditVerifyArgs, OutputFormat};
use crate::render;

/// Exit status of `audit verify` when the log is not intact.
pub const NOT_INTACT: u8 = 4;

/// Widest detail cell in the table.
const DETAIL_WIDTH: usize = 72;

/// Runs `hoopctl audit`.
pub async fn run(ctx: &Context, args: &AuditArgs) -> anyhow::Result<u8> {
    match &args.command {
        AuditCommand::List(a) => list(ctx, a).await,
        AuditCommand::Export(a) => {
            let text = fetch_export(ctx).await?;
            match &a.output {
                Some(path) => {
                    std::fs::write(path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    let records = text
                        .lines()
                        .filter(|l| l.contains("\"type\":\"record\""))
                        .count();
                    eprintln!("Wrote {records} records to {}.", path.display());
                }
                None => {
                    let mut out = std::io::stdout();
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
            }
            Ok(0)
        }
        AuditCommand::Verify(a) => verify(ctx, a).await,
    }
}

/// `GET` a path with query pairs; the broker's refusal becomes an [`ApiError`].
async fn get(
    api: &ApiClient,
    token: &Secret,
    segments: &[&str],
    query: &[(&str, String)],
) -> Result<reqwest::Response, ApiError> {
    let mut url = api.endpoint(segments);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    let resp = api
        .http()
        .get(url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| api.transport_error(&e))?;
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(api.error_from_response(resp).await)
    }
}

async fn list(ctx: &Context, args: &AuditListArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let mut query = vec![("limit", args.limit.to_string())];
    for (k, v) in [
        ("since", &args.since),
        ("user", &args.user),
        ("connection", &args.connection),
        ("kind", &args.kind),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let query = &query;
    let list: AuditList = creds
        .call(|token| {
            let api = api.clone();
            async move {
                let resp = get(&api, &token, &["v1", "audit"], query).await?;
                let url = resp.url().to_string();
                let status = resp.status();
                resp.json().await.map_err(|e| ApiError::BadResponse {
                    url,
                    status,
                    detail: e.to_string(),
                })
            }
        })
        .await
        .context("cannot list the audit log")?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Table if list.records.is_empty() => {
            eprintln!("No audit records match.");
        }
        OutputFormat::Table => out.write_all(table(&list.records).as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

/// SEQ TIME KIND USER CONNECTION DETAIL.
pub fn table(records: &[AuditRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let time = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(r.time).unwrap_or(0));
            let detail = match &r.detail {
                serde_json::Value::Object(m) if m.is_empty() => "-".to_owned(),
                d => canonical_json(d),
            };
            vec![
                r.seq.to_string(),
                humantime::format_rfc3339_seconds(time).to_string(),
                render::clean(&r.kind),
                r.actor.as_deref().map_or_else(|| "-".into(), render::clean),
                r.connection
                    .as_deref()
                    .map_or_else(|| "-".into(), render::clean),
                render::clean_short(&detail, DETAIL_WIDTH),
            ]
        })
        .collect();
    render::table(
        &["SEQ", "TIME", "KIND", "USER", "CONNECTION", "DETAIL"],
        &rows,
    )
}

/// The broker's export, as text.
async fn fetch_export(ctx: &Context) -> anyhow::Result<String> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    creds
        .call(|token| {
            let api = api.clone();
            async move {
                let resp = get(&api, &token, &["v1", "audit", "export"], &[]).await?;
                resp.text().await.map_err(|e| api.transport_error(&e))
            }
        })
        .await
        .context("cannot export the audit log")
}

async fn verify(ctx: &Context, args: &AuditVerifyArgs) -> anyhow::Result<u8> {
    let (text, source) = match &args.file {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            fetch_export(ctx).await?,
            "the broker's audit log".to_owned(),
        ),
    };
    let trusted = (!args.keys.is_empty()).then_some(args.keys.as_slice());
    let result = Export::parse(&text).and_then(|export| export.verify(trusted));
    match result {
        Ok(verified) => {
            println!("{verified}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {source} is not intact: {e}");
            Ok(NOT_INTACT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_one_line_per_record_with_clean_cells() {
        let r = AuditRecord {
            seq: 7,
            time: 1_700_000_000_123,
            kind: "statement.allowed".into(),
            actor: Some("alice".into()),
            connection: Some("pg-demo".into()),
            session: Some("s".into()),
            detail: serde_json::json!({"sql": "select 1\n\u{1b}[31m"}),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let t = table(&[r]);
        assert_eq!(
            t,
            "SEQ  TIME                  KIND               USER   CONNECTION  DETAIL\n\
             7    2023-11-14T22:13:20Z  statement.allowed  alice  pg-demo     {\"sql\":\"select 1\\n\\u001b[31m\"}\n"
        );
    }
}
