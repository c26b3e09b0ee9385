//! Running one SQL text for an MCP tool call through a broker session (the
//! connection path of `hoopctl exec`), keeping at most a row and byte budget
//! of the result, and shaping results as JSON for a model.
//!
//! Values are PostgreSQL's text form: the simple query protocol (the one
//! `exec` and psql use, where guardrails, review and masking are tested)
//! does not surface the column type OIDs through `tokio-postgres`, so
//! `query` results carry column names without types; `describe` gives types.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use hoop_shared::api::OpenSessionResponse;
use serde::Serialize;
use tokio_postgres::SimpleQueryMessage;

use crate::auth::Credentials;
use crate::commands::exec::{self, Script, SqlError};

/// Default rows returned by `query`.
pub const DEFAULT_ROWS: usize = 100;
/// Most rows `query` returns, whatever `max_rows` says.
pub const MAX_ROWS: usize = 1000;
/// About how many bytes of values one answer carries.
pub const MAX_BYTES: usize = 64 * 1024;
/// The catalogue answer's budget (columns are rows there).
pub const DESCRIBE_BUDGET: Budget = Budget {
    rows: 5000,
    bytes: 512 * 1024,
};

/// How much of a result is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rows kept per answer.
    pub rows: usize,
    /// Bytes of values (plus a little per value) kept per answer.
    pub bytes: usize,
}

impl Budget {
    /// `query`'s budget for `max_rows` (default [`DEFAULT_ROWS`], capped at [`MAX_ROWS`]).
    pub fn for_query(max_rows: Option<u32>) -> Budget {
        let rows = max_rows.map_or(DEFAULT_ROWS, |n| {
            usize::try_from(n).unwrap_or(MAX_ROWS).clamp(1, MAX_ROWS)
        });
        Budget {
            rows,
            bytes: MAX_BYTES,
        }
    }
}

/// One statement's result, within the budget.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResultSet {
    /// Column names; absent for a statement without a result set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The rows kept, in order.
    pub rows: Vec<Vec<Option<String>>>,
    /// The count of the command tag (rows returned, inserted, updated...).
    pub row_count: u64,
    /// True when rows were left out.
    pub truncated: bool,
}

/// What became of the text: results of the statements that completed, and
/// the error that stopped it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Completed statements.
    pub results: Vec<ResultSet>,
    /// The refusal or failure, as PostgreSQL (or the broker) sent it.
    pub error: Option<SqlError>,
}

/// Runs `sql` as one simple query in `session`, keeping `budget` of the rows
/// (the rest are read and counted, not kept).
pub async fn run_statement(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    sql: &str,
    budget: Budget,
) -> anyhow::Result<Outcome> {
    let (client, conn_task) = exec::pg_client(creds, session, "hoopctl mcp").await?;
    let script = Script {
        label: "query".into(),
        sql: sql.to_owned(),
    };
    let mut outcome = Outcome::default();
    let mut current = ResultSet::default();
    let mut used = 0usize;
    match client.simple_query_raw(sql).await {
        Err(e) => outcome.error = Some(exec::sql_error(&e, &script)),
        Ok(stream) => {
            let mut stream = std::pin::pin!(stream);
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(SimpleQueryMessage::RowDescription(cols)) => {
                        current.columns = Some(cols.iter().map(|c| c.name().to_owned()).collect());
                    }
                    Ok(SimpleQueryMessage::Row(row)) => {
                        if current.columns.is_none() {
                            current.columns =
                                Some(row.columns().iter().map(|c| c.name().to_owned()).collect());
                        }
                        let values: Vec<Option<String>> = (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect();
                        // Quotes, commas and brackets: about 4 bytes per value.
                        let size: usize = values
                            .iter()
                            .map(|v| v.as_ref().map_or(4, String::len) + 4)
                            .sum();
                        if current.rows.len() < budget.rows && used + size <= budget.bytes {
                            used += size;
                            current.rows.push(values);
                        } else {
                            current.truncated = true;
                        }
                    }
                    Ok(SimpleQueryMessage::CommandComplete(n)) => {
                        current.row_count = n;
                        outcome.results.push(std::mem::take(&mut current));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        outcome.error = Some(exec::sql_error(&e, &script));
                        break;
                    }
                }
            }
        }
    }
    drop(client);
    // The client's drop sends Terminate; give the connection a moment to say goodbye.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn_task).await;
    Ok(outcome)
}

/// `query`'s answer.
pub fn query_document(
    connection: &str,
    session_id: &str,
    outcome: &Outcome,
    budget: Budget,
) -> serde_json::Value {
    let truncated = outcome.results.iter().any(|r| r.truncated);
    let mut doc = serde_json::json!({
        "status": "ok",
        "connection": connection,
        "session_id": session_id,
        "results": outcome.results,
    });
    if truncated {
        add_note(
            &mut doc,
            format!(
                "Truncated: at most {} rows and about {} KiB are returned; row_count is the full \
                 count. Narrow the query (WHERE, LIMIT, fewer columns) to see the rest.",
                budget.rows,
                budget.bytes / 1024
            ),
        );
    }
    doc
}

/// Adds a `note` to an answer (an object).
fn add_note(doc: &mut serde_json::Value, note: String) {
    if let Some(map) = doc.as_object_mut() {
        map.insert("note".into(), serde_json::Value::String(note));
    }
}

/// The catalogue query: columns of tables and views outside the system
/// schemas, optionally of one schema and/or table.
pub fn describe_sql(schema: Option<&str>, table: Option<&str>) -> String {
    let mut sql = String::from(
        "select table_schema, table_name, column_name, data_type, is_nullable \
         from information_schema.columns \
         where table_schema not in ('pg_catalog', 'information_schema') \
         and table_schema not like 'pg\\_toast%'",
    );
    if let Some(s) = schema {
        sql.push_str(&format!(" and table_schema = {}", literal(s)));
    }
    if let Some(t) = table {
        sql.push_str(&format!(" and table_name = {}", literal(t)));
    }
    sql.push_str(" order by table_schema, table_name, ordinal_position");
    sql
}

/// A SQL string literal (standard-conforming strings: only `'` is special).
fn literal(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '\0').collect();
    format!("'{}'", clean.replace('\'', "''"))
}

/// One table in `describe`'s answer.
#[derive(Debug, Serialize)]
struct TableOut {
    schema: String,
    name: String,
    columns: Vec<ColumnOut>,
}

/// One column in `describe`'s answer.
#[derive(Debug, Serialize)]
struct ColumnOut {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    nullable: bool,
}

/// `describe`'s answer, from the catalogue query's rows.
pub fn describe_document(connection: &str, outcome: &Outcome) -> serde_json::Value {
    let mut tables: Vec<TableOut> = Vec::new();
    let mut truncated = false;
    for set in &outcome.results {
        truncated |= set.truncated;
        for row in &set.rows {
            let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let (schema, table) = (cell(0), cell(1));
            let column = ColumnOut {
                name: cell(2),
                data_type: cell(3),
                nullable: cell(4) == "YES",
            };
            match tables.last_mut() {
                Some(t) if t.schema == schema && t.name == table => t.columns.push(column),
                _ => tables.push(TableOut {
                    schema,
                    name: table,
                    columns: vec![column],
                }),
            }
        }
    }
    let mut doc = serde_json::json!({
        "connection": connection,
        "tables": tables,
        "masked_columns": "not reported: the broker does not publish its masking rules yet; \
                           values from query may arrive masked",
    });
    if truncated {
        add_note(
            &mut doc,
            "Truncated: too many columns for one answer; pass schema and/or table.".into(),
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_catalogue_query_are_quoted_literals() {
        let sql = describe_sql(Some("public"), Some("o'rders"));
        assert!(sql.contains("table_schema = 'public'"), "{sql}");
        assert!(sql.contains("table_name = 'o''rders'"), "{sql}");
        assert!(!describe_sql(None, None).contains("table_name ="));
    }

    #[test]
    fn the_row_budget_is_bounded() {
        assert_eq!(Budget::for_query(None).rows, DEFAULT_ROWS);
        assert_eq!(Budget::for_query(Some(0)).rows, 1);
        assert_eq!(Budget::for_query(Some(1_000_000)).rows, MAX_ROWS);
    }

    #[test]
    fn truncated_answers_say_so() {
        let outcome = Outcome {
            results: vec![ResultSet {
                columns: Some(vec!["id".into()]),
                rows: vec![vec![Some("1".into())]],
                row_count: 5,
                truncated: true,
            }],
            error: None,
        };
        let doc = query_document("pg", "s1", &outcome, Budget::for_query(Some(1)));
        assert!(doc["note"].as_str().unwrap().contains("at most 1 rows"));
        assert_eq!(doc["results"][0]["row_count"], 5);
    }
}
