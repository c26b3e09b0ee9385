//! `hoopctl mcp`: an MCP (Model Context Protocol) server over stdio, so an
//! AI agent reaches databases only through the broker, as the logged-in user
//! (or the CI identity), never with a credential of its own.
//!
//! Built on the official Rust SDK (`rmcp`): it owns JSON-RPC framing, the
//! `initialize` handshake, `tools/list` with JSON schemas derived from the
//! parameter types below, and protocol errors for malformed messages and
//! unknown tools. stdout is the protocol; logs go to stderr (`HOOP_LOG`).
//!
//! Every tool call that touches a database opens its own broker session,
//! exactly as `hoopctl exec` does (`exec::pg_client`: one tunnel, login with
//! the session's one-time secret, the simple query protocol), and closes it
//! afterwards. The session-open request carries the agent
//! ([`AgentInfo`]: the `--agent` label and the MCP client's declared
//! name/version), which the broker writes into the session's audit record,
//! so the trail says which agent acted for whom. Guardrails, masking, review
//! and recording are the broker's, unchanged.
//!
//! Secrets: the tunnel secret and the hoop token stay in this process; tool
//! results carry only what the database (through the broker) and the
//! broker's API answered, and neither puts a credential in an answer.
//!
//! Layout: this file (the server and its tools), [`sql`] (running one
//! statement within a row and byte budget, the catalogue query), [`stdio`]
//! (parse errors and a size bound in front of the SDK's line transport).

mod sql;
mod stdio;

use std::sync::Arc;

use hoop_shared::api::{
    AgentInfo, ConnectionKind, CreateAccessRequest, ErrorCode, OpenSessionRequest,
    OpenSessionResponse,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServiceExt as _, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

use crate::access::broker_code;
use crate::auth::{AuthError, Credentials};
use crate::cli::McpArgs;
use crate::commands::Context;
use crate::commands::connect;

/// Longest SQL text a `query` call may carry (larger: invalid params).
pub const MAX_SQL: usize = 64 * 1024;
/// Longest justification.
pub const MAX_REASON: usize = 2000;
/// Longest name (connection, schema, table, request id) in arguments.
pub const MAX_NAME: usize = 256;

/// Runs `hoopctl mcp` until the client closes stdin.
pub async fn run(ctx: &Context, args: &McpArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let server = HoopMcp {
        creds,
        agent: args.agent.clone(),
    };
    tracing::info!(agent = ?args.agent, "hoopctl mcp serving on stdio");
    let mut tasks = tokio::task::JoinSet::new();
    let sdk_side = stdio::guard(tokio::io::stdin(), tokio::io::stdout(), &mut tasks);
    let service = server
        .serve(sdk_side)
        .await
        .map_err(|e| anyhow::anyhow!("the MCP handshake failed: {e}"))?;
    let reason = service.waiting().await?;
    tracing::info!(?reason, "hoopctl mcp stopped");
    // Let the writer flush the last answers; the stdin reader may be stuck
    // in a read that cannot be cancelled, and is left to the runtime's end.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(0)
}

/// The MCP server: the user's credentials and the agent label.
#[derive(Clone)]
pub struct HoopMcp {
    creds: Arc<Credentials>,
    agent: Option<String>,
}

/// `list_connections` takes no arguments.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ListConnectionsParams {}

/// `describe` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct DescribeParams {
    /// The connection name, as list_connections returns it (a Postgres connection).
    pub connection: String,
    /// Only this schema (e.g. "public"); all non-system schemas when absent.
    #[serde(default)]
    pub schema: Option<String>,
    /// Only this table or view; all of them when absent.
    #[serde(default)]
    pub table: Option<String>,
    /// Why you need it, when the connection requires a justification.
    #[serde(default)]
    pub reason: Option<String>,
    /// An approved access request id (from request_access), when the connection needs approval.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `query` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct QueryParams {
    /// The connection name, as list_connections returns it (a Postgres connection).
    pub connection: String,
    /// Exactly one SQL statement (PostgreSQL dialect), without parameters.
    pub sql: String,
    /// Most rows to return (default 100, at most 1000); the rest are counted, not returned.
    #[serde(default)]
    pub max_rows: Option<u32>,
    /// Why you run it, when the connection requires a justification.
    #[serde(default)]
    pub reason: Option<String>,
    /// An approved access request id (from request_access), when the connection needs approval.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `request_access` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RequestAccessParams {
    /// The connection name.
    pub connection: String,
    /// Why access is needed: the task, the ticket, what you will look at. A human reads it.
    pub reason: String,
    /// How long the access should last, in minutes (default: what the policy grants).
    #[serde(default)]
    pub duration_minutes: Option<u32>,
}

/// One connection as `list_connections` shows it.
#[derive(Debug, Serialize)]
struct ConnectionOut {
    name: String,
    #[serde(rename = "type")]
    kind: ConnectionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Whether access needs an approved request first: the broker's
    /// connection list does not say yet, so this is always null ("try it").
    needs_request: Option<bool>,
}

#[tool_router]
impl HoopMcp {
    #[tool(
        name = "list_connections",
        description = "List the connections (databases, servers) you may use through the hoop \
broker, with their type, default database and description. Use a connection's name with \
describe and query (type \"postgres\"). needs_request is null when the broker does not say: a \
connection that needs approval answers query/describe with an error telling you to call \
request_access.",
        annotations(read_only_hint = true)
    )]
    async fn list_connections(
        &self,
        Parameters(_): Parameters<ListConnectionsParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let api = self.creds.api().clone();
        let list = self
            .creds
            .call(|token| {
                let api = api.clone();
                async move { api.connections(&token).await }
            })
            .await;
        match list {
            Err(e) => Ok(tool_error(format!("cannot list connections: {e}"))),
            Ok(list) => {
                let connections: Vec<ConnectionOut> = list
                    .connections
                    .into_iter()
                    .map(|c| ConnectionOut {
                        name: c.name,
                        kind: c.kind,
                        database: c.database,
                        description: c.description,
                        needs_request: None,
                    })
                    .collect();
                Ok(json_result(
                    &serde_json::json!({ "connections": connections }),
                ))
            }
        }
    }

    #[tool(
        name = "describe",
        description = "Describe a Postgres connection's tables: schemas, tables and views, and \
their columns with data types and nullability, read from information_schema through the broker. \
Optionally narrow it to one schema and/or table. Masked columns are not marked yet (the broker \
does not publish its masking rules): any value may come back masked from query, e.g. emails as \
'***@example.com'. Call it before writing queries.",
        annotations(read_only_hint = true)
    )]
    async fn describe(
        &self,
        Parameters(p): Parameters<DescribeParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        check_len("connection", &p.connection, MAX_NAME)?;
        check_opt_len("schema", p.schema.as_deref(), MAX_NAME)?;
        check_opt_len("table", p.table.as_deref(), MAX_NAME)?;
        check_opt_len("reason", p.reason.as_deref(), MAX_REASON)?;
        check_opt_len("request_id", p.request_id.as_deref(), MAX_NAME)?;
        let session = match self
            .open(&ctx, &p.connection, p.reason.clone(), p.request_id.clone())
            .await
        {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal),
        };
        let text = sql::describe_sql(p.schema.as_deref(), p.table.as_deref());
        let outcome = sql::run_statement(&self.creds, &session, &text, sql::DESCRIBE_BUDGET).await;
        connect::close_session(&self.creds, &session.session_id).await;
        Ok(match outcome {
            Err(e) => tool_error(format!("{e:#}")),
            Ok(outcome) => match outcome.error {
                Some(e) => tool_error(crate::commands::exec::format_error(&e)),
                None => json_result(&sql::describe_document(&p.connection, &outcome)),
            },
        })
    }

    #[tool(
        name = "query",
        description = "Run one SQL statement on a Postgres connection through the hoop broker, as \
the user who started you. The broker applies its guardrails (a refused statement comes back as \
an error naming the rule: do not try to work around it), masks sensitive values (masked values \
are all you get), and records the statement. Results: columns and rows (values in PostgreSQL's \
text form, null as null), at most max_rows rows and about 64 KiB; 'truncated' and 'note' say when \
rows were left out (narrow the query: WHERE, LIMIT, fewer columns). A statement held for human \
review returns status \"held_for_review\" with a review_id: tell the user; once a human approves \
it, the same statement run again executes once.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn query(
        &self,
        Parameters(p): Parameters<QueryParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        check_len("connection", &p.connection, MAX_NAME)?;
        check_len("sql", &p.sql, MAX_SQL)?;
        check_opt_len("reason", p.reason.as_deref(), MAX_REASON)?;
        check_opt_len("request_id", p.request_id.as_deref(), MAX_NAME)?;
        if p.sql.trim().is_empty() {
            return Err(ErrorData::invalid_params("sql is empty", None));
        }
        let budget = sql::Budget::for_query(p.max_rows);
        let session = match self
            .open(&ctx, &p.connection, p.reason.clone(), p.request_id.clone())
            .await
        {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal),
        };
        let outcome = sql::run_statement(&self.creds, &session, &p.sql, budget).await;
        connect::close_session(&self.creds, &session.session_id).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return Ok(tool_error(format!("{e:#}"))),
        };
        if let Some(error) = &outcome.error {
            if let Some(id) = crate::commands::exec::review_request(error) {
                return Ok(json_result(&serde_json::json!({
                    "status": "held_for_review",
                    "review_id": id,
                    "message": error.message,
                    "instructions": format!(
                        "The statement did not run: a guardrail holds it for a human's review. \
                         Tell the user; an approver runs `hoopctl approve {id}`. Once approved, \
                         call query again with exactly the same statement: it then runs once."
                    ),
                })));
            }
            let mut text = String::from("The broker or the database refused the statement:\n");
            text.push_str(&crate::commands::exec::format_error(error));
            if !outcome.results.is_empty() {
                text.push_str("(statements before it in the same text ran)\n");
            }
            return Ok(tool_error(text));
        }
        Ok(json_result(&sql::query_document(
            &p.connection,
            &session.session_id,
            &outcome,
            budget,
        )))
    }

    #[tool(
        name = "request_access",
        description = "Ask for just-in-time access to a connection that needs approval, with a \
justification a human will read (required). Returns the request id. A human approves it with \
`hoopctl approve ID` (or on the approvers' page); then pass request_id to query or describe.",
        annotations(read_only_hint = false, destructive_hint = false)
    )]
    async fn request_access(
        &self,
        Parameters(p): Parameters<RequestAccessParams>,
    ) -> Result<CallToolResult, ErrorData> {
        check_len("connection", &p.connection, MAX_NAME)?;
        check_len("reason", &p.reason, MAX_REASON)?;
        if p.reason.trim().is_empty() {
            return Err(ErrorData::invalid_params(
                "reason is required: say why access is needed",
                None,
            ));
        }
        let body = CreateAccessRequest {
            connection: p.connection.clone(),
            reason: Some(p.reason.clone()),
            duration_secs: p.duration_minutes.map(|m| u64::from(m) * 60),
        };
        let body = &body;
        let api = self.creds.api().clone();
        let view = self
            .creds
            .call(|token| {
                let api = api.clone();
                async move { api.create_request(&token, body).await }
            })
            .await;
        Ok(match view {
            Err(e) => tool_error(format!(
                "cannot request access to {}: {}",
                p.connection,
                describe_broker_error(&e)
            )),
            Ok(view) => json_result(&serde_json::json!({
                "request_id": view.id,
                "connection": view.connection,
                "state": view.state,
                "approvals_needed": view.approvals_needed,
                "instructions": format!(
                    "Tell the user: a human approves it with `hoopctl approve {}`. Once approved, \
                     call query or describe with request_id \"{}\".",
                    view.id, view.id
                ),
            })),
        })
    }
}

#[tool_handler(
    name = "hoopctl",
    instructions = "hoop: reach databases only through the hoop broker, as the user who started \
this server. Call list_connections, then describe, then query with one SQL statement at a time. \
Results may be masked; guardrails may refuse or hold statements for a human's review; every call \
is audited with this agent's name."
)]
impl rmcp::ServerHandler for HoopMcp {}

impl HoopMcp {
    /// The agent as the broker records it: `--agent` and the client's
    /// declared name/version from `initialize`.
    fn agent_info(&self, ctx: &RequestContext<RoleServer>) -> AgentInfo {
        let client = ctx.client_info();
        AgentInfo {
            label: self.agent.clone(),
            client_name: client.as_ref().map(|c| c.name.clone()),
            client_version: client.map(|c| c.version),
        }
    }

    /// Opens a session on `connection` for one tool call; a refusal is the
    /// tool result to answer with (what the agent should do next).
    async fn open(
        &self,
        ctx: &RequestContext<RoleServer>,
        connection: &str,
        reason: Option<String>,
        request_id: Option<String>,
    ) -> Result<OpenSessionResponse, CallToolResult> {
        let request = OpenSessionRequest {
            connection: connection.to_owned(),
            reason,
            request_id,
            agent: Some(self.agent_info(ctx)),
        };
        let request = &request;
        let api = self.creds.api().clone();
        let session = self
            .creds
            .call(|token| {
                let api = api.clone();
                async move { api.open_session(&token, request).await }
            })
            .await
            .map_err(|e| {
                tool_error(match broker_code(&e) {
                    Some(ErrorCode::JustificationRequired) => format!(
                        "{} requires a justification: call again with `reason` saying why. ({})",
                        connection,
                        describe_broker_error(&e)
                    ),
                    Some(ErrorCode::ApprovalRequired) => format!(
                        "{} needs an approved access request: call request_access with a \
                         justification, ask the user to have it approved, then call again with \
                         its request_id. ({})",
                        connection,
                        describe_broker_error(&e)
                    ),
                    _ => format!(
                        "cannot open a session on {connection}: {}",
                        describe_broker_error(&e)
                    ),
                })
            })?;
        if session.connection.kind != ConnectionKind::Postgres {
            connect::close_session(&self.creds, &session.session_id).await;
            return Err(tool_error(format!(
                "{connection} is a {} connection; these tools work on postgres connections",
                session.connection.kind
            )));
        }
        Ok(session)
    }
}

/// A broker API failure in one line (the broker's message and hint; never
/// a token: the API client's errors do not carry it).
fn describe_broker_error(e: &AuthError) -> String {
    e.to_string()
}

/// A tool-level error the agent sees (`isError: true`).
fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// A JSON document as the tool's text result.
fn json_result(value: &serde_json::Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// Oversized arguments are a protocol error (invalid params), not a tool result.
fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ErrorData> {
    if value.len() > max {
        return Err(ErrorData::invalid_params(
            format!("{field} is longer than {max} bytes"),
            None,
        ));
    }
    Ok(())
}

fn check_opt_len(field: &'static str, value: Option<&str>, max: usize) -> Result<(), ErrorData> {
    value.map_or(Ok(()), |v| check_len(field, v, max))
}
