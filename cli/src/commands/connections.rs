//! `hoopctl connections`: what the caller may connect to.

use std::io::Write as _;

use anyhow::Context as _;
use hoop_shared::api::ConnectionList;

use super::Context;
use crate::auth::{AuthError, Credentials};
use crate::cli::{ConnectionsArgs, OutputFormat};

/// The connections the caller may use (`GET /v1/connections`).
pub async fn list(creds: &Credentials) -> Result<ConnectionList, AuthError> {
    let api = creds.api().clone();
    creds
        .call(|token| {
            let api = api.clone();
            async move { api.connections(&token).await }
        })
        .await
}

/// Lists connections as a table or JSON.
pub async fn run(ctx: &Context, args: &ConnectionsArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let list = list(&creds).await.context("cannot list connections")?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            if list.connections.is_empty() {
                eprintln!(
                    "No connections are available to you on {}.",
                    api.broker_url()
                );
            } else {
                out.write_all(table(&list).as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// Aligned columns: NAME TYPE DATABASE DESCRIPTION.
pub fn table(list: &ConnectionList) -> String {
    let rows: Vec<[String; 4]> = list
        .connections
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.kind.to_string(),
                c.database.clone().unwrap_or_else(|| "-".into()),
                c.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "TYPE", "DATABASE", "DESCRIPTION"].map(String::from);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let [name, kind, db, desc] = row;
        let line = format!(
            "{name:<w0$}  {kind:<w1$}  {db:<w2$}  {desc}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::api::{ConnectionKind, ConnectionSummary};

    #[test]
    fn table_aligns_columns() {
        let list = ConnectionList {
            connections: vec![
                ConnectionSummary {
                    name: "pg-demo".into(),
                    kind: ConnectionKind::Postgres,
                    database: Some("app".into()),
                    description: Some("Demo database".into()),
                },
                ConnectionSummary {
                    name: "pg-analytics-long".into(),
                    kind: ConnectionKind::Postgres,
                    database: None,
                    description: None,
                },
            ],
        };
        assert_eq!(
            table(&list),
            "NAME               TYPE      DATABASE  DESCRIPTION\n\
             pg-demo            postgres  app       Demo database\n\
             pg-analytics-long  postgres  -\n"
        );
    }
}
