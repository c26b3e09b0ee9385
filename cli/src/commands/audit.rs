//! `hoopctl audit list|export|verify`: read the broker's hash-chained audit
//! log, export it as JSON Lines, and verify an export (offline, with the
//! same verifier the broker uses: `hoop_shared::audit`).
//!
//! Export and verify stream: the export is written as it arrives, and
//! verification checks the chain line by line
//! ([`hoop_shared::audit::StreamVerifier`]), so hoopctl's memory does not
//! grow with the log (one line at most, [`MAX_LINE`]).

use std::io::Write as _;

use anyhow::Context as _;
use hoop_shared::Secret;
use hoop_shared::audit::{AuditList, AuditRecord, StreamVerifier, VerifyError, canonical_json};

use super::Context;
use crate::api::{ApiClient, ApiError};
use crate::cli::{AuditArgs, AuditCommand, AuditListArgs, AuditVerifyArgs, OutputFormat};
use crate::render;

/// Exit status of `audit verify` when the log is not intact.
pub const NOT_INTACT: u8 = 4;

/// Longest export line accepted (one record, its detail included).
pub const MAX_LINE: usize = 64 << 20;

/// Widest detail cell in the table.
const DETAIL_WIDTH: usize = 72;

/// Runs `hoopctl audit`.
pub async fn run(ctx: &Context, args: &AuditArgs) -> anyhow::Result<u8> {
    match &args.command {
        AuditCommand::List(a) => list(ctx, a).await,
        AuditCommand::Export(a) => {
            let mut resp = fetch_export(ctx).await?;
            let mut out: Box<dyn std::io::Write> = match &a.output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut lines = Lines::default();
            let mut records = 0usize;
            while let Some(chunk) = resp
                .chunk()
                .await
                .context("the export broke off; what was written is incomplete")?
            {
                out.write_all(&chunk)?;
                lines.push(&chunk, |line| {
                    records += usize::from(line.starts_with(b"{\"type\":\"record\""));
                    Ok::<_, std::convert::Infallible>(())
                })?;
            }
            out.flush()?;
            if let Some(path) = &a.output {
                eprintln!("Wrote {records} records to {}.", path.display());
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

/// The broker's export: the answer, its body still to be read.
async fn fetch_export(ctx: &Context) -> anyhow::Result<reqwest::Response> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    creds
        .call(|token| {
            let api = api.clone();
            async move { get(&api, &token, &["v1", "audit", "export"], &[]).await }
        })
        .await
        .context("cannot export the audit log")
}

/// Splits a byte stream into lines (without their newline), holding one
/// partial line at most.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Feeds `chunk`; calls `f` with each line it completes.
    fn push<E>(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(i);
            if self.partial.is_empty() {
                f(line)?;
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                f(&whole)?;
            }
            rest = after.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Bytes of the line not finished yet.
    fn pending(&self) -> usize {
        self.partial.len()
    }

    /// The last line, when the stream did not end with a newline.
    fn finish<E>(self, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.partial.is_empty() {
            Ok(())
        } else {
            f(&self.partial)
        }
    }
}

/// Gives one export line to the verifier.
fn verify_line(v: &mut StreamVerifier, line: &[u8]) -> Result<(), VerifyError> {
    let text = std::str::from_utf8(line).unwrap_or("\u{fffd}");
    v.line(text.strip_suffix('\r').unwrap_or(text))
}

/// Verifies the broker's export as it arrives.
async fn verify_broker(
    ctx: &Context,
    trusted: Option<&[String]>,
) -> anyhow::Result<Result<hoop_shared::audit::Verified, VerifyError>> {
    let mut resp = fetch_export(ctx).await?;
    let mut v = StreamVerifier::new(trusted);
    let mut lines = Lines::default();
    while let Some(chunk) = resp
        .chunk()
        .await
        .context("the export broke off before its end")?
    {
        if let Err(e) = lines.push(&chunk, |line| verify_line(&mut v, line)) {
            return Ok(Err(e));
        }
        if lines.pending() > MAX_LINE {
            anyhow::bail!("the broker's export has a line longer than {MAX_LINE} bytes");
        }
    }
    if let Err(e) = lines.finish(|line| verify_line(&mut v, line)) {
        return Ok(Err(e));
    }
    Ok(v.finish())
}

async fn verify(ctx: &Context, args: &AuditVerifyArgs) -> anyhow::Result<u8> {
    let trusted = (!args.keys.is_empty()).then_some(args.keys.as_slice());
    let (result, source) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            (
                hoop_shared::audit::verify_reader(std::io::BufReader::new(file), trusted, MAX_LINE)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                path.display().to_string(),
            )
        }
        None => (
            verify_broker(ctx, trusted).await?,
            "the broker's audit log".to_owned(),
        ),
    };
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

    #[test]
    fn lines_come_whole_however_the_stream_is_cut() {
        let text = b"one\ntwo\r\n\nthree";
        for cut in 1..text.len() {
            let mut lines = Lines::default();
            let mut got: Vec<Vec<u8>> = Vec::new();
            for chunk in text.chunks(cut) {
                lines
                    .push(chunk, |l| {
                        got.push(l.to_vec());
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                assert!(lines.pending() <= 5);
            }
            lines
                .finish(|l| {
                    got.push(l.to_vec());
                    Ok::<_, ()>(())
                })
                .unwrap();
            assert_eq!(
                got,
                [&b"one"[..], b"two\r", b"", b"three"].map(<[u8]>::to_vec),
                "cut {cut}"
            );
        }
    }
}
