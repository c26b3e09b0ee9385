//! JSON bodies of the broker's REST API (`/v1/...`).
//!
//! Every error answer, from every endpoint, is an [`ApiErrorBody`]: a stable
//! machine-readable `code`, a `message` for people, and where there is one, a
//! `hint` saying what to do next. Internal error text never goes into these.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Path of the unauthenticated endpoint that tells hoopctl how to log in.
pub const AUTH_CONFIG_PATH: &str = "/v1/auth/config";

/// The error shape of every endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    /// The error.
    pub error: ApiError,
}

/// One error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    /// Stable, machine-readable.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// What to do next, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bearer token was presented.
    MissingToken,
    /// The token is expired.
    TokenExpired,
    /// The token is not valid (signature, issuer, audience, malformed).
    InvalidToken,
    /// The identity may not do this.
    Forbidden,
    /// No connection by that name.
    UnknownConnection,
    /// No session by that id (or not yours).
    UnknownSession,
    /// The session's grant has ended.
    SessionEnded,
    /// The request itself is malformed.
    BadRequest,
    /// The policy requires a justification (`--reason`) for this access.
    JustificationRequired,
    /// The policy requires approval before this access.
    ApprovalRequired,
    /// Someone changed the resource since it was read (e.g. the policy).
    Conflict,
    /// A policy document did not validate; the message lists every problem.
    InvalidPolicy,
    /// No access request by that id (or not visible to you).
    UnknownRequest,
    /// The request is not in a state that allows this (e.g. approving an
    /// expired, cancelled or already decided request).
    RequestClosed,
    /// Approving your own request.
    SelfApproval,
    /// The identity provider could not be reached or answered badly.
    IdentityProviderUnavailable,
    /// Something failed inside the broker; the broker's log has details.
    Internal,
    /// Any code this client version does not know.
    #[serde(other)]
    Unknown,
}

/// `GET /v1/auth/config`: what hoopctl needs to log in, given only the broker URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    /// The OIDC issuer whose tokens the broker accepts.
    pub issuer: String,
    /// OAuth client id hoopctl uses.
    pub client_id: String,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_endpoint: String,
    /// OAuth token endpoint.
    pub token_endpoint: String,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// RFC 7009 token revocation endpoint, when the provider offers one
    /// (`hoopctl logout` revokes the refresh token there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// PEM of the CA the broker was told to trust for the provider
    /// (`[identity] ca_file`). hoopctl trusts it for the provider's endpoints
    /// only, never for the broker: it arrives over the broker's own
    /// authenticated TLS connection, so a provider behind a private CA needs
    /// no setup on each laptop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ca_pem: Option<String>,
}

/// Whether an identity is a person or a workload (a CI job, a service).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// A person, logged in through the organisation's identity provider.
    #[default]
    Person,
    /// A workload presenting its platform's OIDC token (GitHub Actions,
    /// GitLab CI, Kubernetes service account), mapped to a service identity
    /// by a rule in the broker config.
    Workload,
}

/// `GET /v1/me`: the identity the broker sees behind the presented token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WhoAmI {
    /// User name (from the configured claim).
    pub user: String,
    /// Token subject.
    pub subject: String,
    /// Groups (from the configured claim).
    pub groups: Vec<String>,
    /// Token issuer.
    pub issuer: String,
    /// Token expiry, Unix seconds.
    pub expires_at: u64,
    /// Person or workload.
    #[serde(default)]
    pub kind: IdentityKind,
    /// For a workload: the name of the trusted workload issuer and the rule
    /// that mapped it, e.g. `github: ci-deploy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_rule: Option<String>,
}

/// Kind of target behind a connection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// PostgreSQL, proxied message by message.
    Postgres,
    /// SSH: the broker is an SSH server to the client and a client to the target.
    Ssh,
}

impl std::fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectionKind::Postgres => "postgres",
            ConnectionKind::Ssh => "ssh",
        })
    }
}

/// One entry of `GET /v1/connections`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionSummary {
    /// Name used with `hoopctl connect NAME`.
    pub name: String,
    /// Target kind.
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    /// Default database (Postgres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Free text from the broker config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /v1/connections`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionList {
    /// Connections the caller may use.
    pub connections: Vec<ConnectionSummary>,
}

/// `POST /v1/sessions`: open a session on a connection.
///
/// When the policy requires approval, the broker answers 403
/// `approval_required` unless `request_id` names an approved request of the
/// caller's for this connection whose grant has not ended; the session then
/// lasts until the grant ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// Connection name.
    pub connection: String,
    /// Justification, recorded with the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An approved access request to open the session under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The AI agent acting for the caller (`hoopctl mcp`), recorded in the
    /// session's audit record. Sent only when set, so a broker that predates
    /// it still accepts every other client's sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
}

/// Which AI agent acts for the human or CI identity behind a session: the
/// `hoopctl mcp --agent` label and the MCP client's declared name/version.
/// All of it is the client's say-so (labels for the trail, not identities).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    /// `--agent NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The MCP client's name (from `initialize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The MCP client's version (from `initialize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
}

impl AgentInfo {
    /// Longest part kept in [`AgentInfo::describe`], in characters.
    pub const MAX_PART: usize = 100;

    /// One line for the audit trail: `NAME (client CLIENT VERSION)`, each
    /// part cut to [`AgentInfo::MAX_PART`] characters, control characters
    /// dropped (they come from the client).
    pub fn describe(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(Self::MAX_PART)
                .collect()
        };
        let label = self.label.as_deref().map(clean);
        let client = match (&self.client_name, &self.client_version) {
            (Some(n), Some(v)) => Some(format!("{} {}", clean(n), clean(v))),
            (Some(n), None) => Some(clean(n)),
            (None, Some(v)) => Some(format!("unnamed {}", clean(v))),
            (None, None) => None,
        };
        match (label, client) {
            (Some(l), Some(c)) => format!("{l} (client {c})"),
            (Some(l), None) => l,
            (None, Some(c)) => format!("unlabelled (client {c})"),
            (None, None) => "unlabelled".to_owned(),
        }
    }
}

/// Answer to `POST /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSessionResponse {
    /// Session id, used in the tunnel path.
    pub session_id: String,
    /// The connection.
    pub connection: ConnectionSummary,
    /// One-time secret the local client must present through the tunnel
    /// (for Postgres: as its password). It is not the upstream credential,
    /// which never leaves the broker.
    #[serde(with = "crate::secret::expose")]
    pub tunnel_secret: Secret,
    /// User name the local client should present (for Postgres: `PGUSER`).
    pub client_user: String,
    /// When the session's grant ends, Unix seconds.
    pub expires_at: u64,
    /// For an `ssh` connection: the broker's own SSH host key (one OpenSSH
    /// public key line), which hoopctl pins in a temporary known_hosts file
    /// for the user's `ssh`. Absent for other protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_optional_on_the_wire_and_described_cleanly() {
        let plain = OpenSessionRequest {
            connection: "pg".into(),
            reason: None,
            request_id: None,
            agent: None,
        };
        // A client without an agent sends what older brokers accept.
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"connection": "pg"})
        );
        let agent = AgentInfo {
            label: Some("billing-bot\n".into()),
            client_name: Some("claude-code".into()),
            client_version: Some("1.2".into()),
        };
        assert_eq!(agent.describe(), "billing-bot (client claude-code 1.2)");
        assert_eq!(AgentInfo::default().describe(), "unlabelled");
    }

    #[test]
    fn unknown_error_codes_from_newer_brokers_still_parse() {
        let body: ApiErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }
}

/// `GET /v1/policy`: the policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Store version (increases with every apply).
    pub version: u64,
    /// The document as applied.
    pub text: String,
    /// Who applied it.
    pub applied_by: String,
    /// When, Unix seconds.
    pub applied_at: u64,
    /// The validated policy.
    pub policy: crate::policy::Policy,
    /// For a policy kept as a directory: its files in name order (`text`
    /// then holds them each under a `# file: NAME` line). Empty for a policy
    /// that is one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::policy::PolicyFile>,
}

/// `POST /v1/policy/check`: validate a document and diff it against the
/// policy in force, changing nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheckRequest {
    /// The document.
    pub text: String,
    /// File name to use in messages (e.g. `policy.toml`); with `files`, the
    /// directory (messages then name `DIR/NAME`).
    #[serde(default)]
    pub file: Option<String>,
    /// A document kept as a directory: its `*.toml` files (any order; the
    /// broker sorts them by name). When set, `text` must be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::policy::PolicyFile>,
}

/// Answer to `POST /v1/policy/check`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyCheckResponse {
    /// Every problem, `FILE:LINE:COLUMN: message`; empty when valid.
    pub errors: Vec<String>,
    /// Unified diff from the policy in force (empty when equal).
    pub diff: String,
    /// Version the diff was made against (pass it to apply).
    pub active_version: u64,
}

/// `PUT /v1/policy`: make a document the policy in force (admins only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApplyPolicyRequest {
    /// The document.
    pub text: String,
    /// File name to use in messages.
    #[serde(default)]
    pub file: Option<String>,
    /// Apply only if this is still the version in force (from a check).
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// A document kept as a directory, as in [`PolicyCheckRequest::files`];
    /// it is stored as one policy version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::policy::PolicyFile>,
}

/// Answer to `PUT /v1/policy`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApplyPolicyResponse {
    /// The new version (unchanged when the document equals the one in force).
    pub version: u64,
    /// What changed.
    pub diff: String,
}

/// `POST /v1/policy/test`: how the policy decides for an identity, changing nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyTestRequest {
    /// User (or, with `workload`, service) name.
    pub user: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// True to test a workload identity.
    #[serde(default)]
    pub workload: bool,
    /// Connection name.
    pub connection: String,
    /// A document to test instead of the policy in force.
    #[serde(default)]
    pub text: Option<String>,
    /// SQL to judge as well (guardrails; answered once statement rules exist).
    #[serde(default)]
    pub sql: Option<String>,
    /// A document kept as a directory to test instead of the policy in
    /// force (instead of `text`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::policy::PolicyFile>,
}

/// `POST /v1/requests`: ask for access that the policy grants only with approval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessRequest {
    /// Connection name.
    pub connection: String,
    /// Justification (required when the rule says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Grant length asked for, seconds (default: the rule's; capped by its maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// Where an access request stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Approved: the grant runs until `grant_ends_at`.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Cancelled by the requester.
    Cancelled,
    /// Nobody decided in time, or the grant ran out.
    Expired,
    /// The grant was revoked by an approver or admin.
    Revoked,
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Cancelled => "cancelled",
            RequestState::Expired => "expired",
            RequestState::Revoked => "revoked",
        })
    }
}

/// One approver's decision on a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApprovalView {
    /// Who decided.
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// Their comment or reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When, Unix seconds.
    pub at: u64,
}

/// An access request as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessRequestView {
    /// Request id.
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// For which connection.
    pub connection: String,
    /// Their justification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Grant length asked for, seconds.
    pub duration_secs: u64,
    /// Where it stands (already `expired` when its deadline or grant passed).
    pub state: RequestState,
    /// The policy rule that required approval.
    pub rule: String,
    /// Who may approve.
    pub approvers: crate::policy::Approvers,
    /// Distinct approvals needed.
    pub approvals_needed: u32,
    /// Decisions so far.
    pub approvals: Vec<ApprovalView>,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// When a pending request expires, Unix seconds.
    pub expires_at: u64,
    /// When the grant ends (approved requests), Unix seconds. For a
    /// statement review: the end of the window in which the approved
    /// statement may run (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_ends_at: Option<u64>,
    /// Access to a connection, or one statement held for review.
    #[serde(default)]
    pub kind: RequestKind,
    /// For a statement review: the statement and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<StatementReview>,
}

/// `GET /v1/requests` (yours) and `GET /v1/approvals` (those you may decide).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessRequestList {
    /// Newest first.
    pub requests: Vec<AccessRequestView>,
}

/// `POST /v1/requests/{id}/approve`, `/deny`, `/revoke`, `/cancel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Comment (approve) or reason (deny, revoke; required for deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// What an access request asks for.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A grant of access to a connection for a while.
    #[default]
    Access,
    /// One run of one statement a guardrail `review` rule held.
    Statement,
}

/// The statement of a statement review (`kind = "statement"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatementReview {
    /// The SQL exactly as the client sent it.
    pub sql: String,
    /// What an approval covers: PostgreSQL's fingerprint of the statement
    /// (`pg_query`) joined with a digest of its normalized text, constants
    /// included, so whitespace, comments and keyword case do not matter but
    /// every value does (`docs/guardrails.md`).
    pub fingerprint: String,
    /// The guardrail set and rule that held it (`orders-review/orders-writes`).
    pub guardrail: String,
    /// The session it arrived in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// When the approved statement ran (its one run), Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<u64>,
}

/// One session as `GET /v1/sessions` lists it (newest first).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// The hoop user who opened it.
    pub user: String,
    /// The connection.
    pub connection: String,
    /// The connection's type; absent when the broker no longer has a
    /// connection by that name.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConnectionKind>,
    /// The justification given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was opened, Unix seconds.
    pub opened_at: u64,
    /// When its grant ends (or ended), Unix seconds.
    pub expires_at: u64,
    /// When it was closed, Unix seconds (absent while open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<u64>,
    /// The access request (grant) it was opened under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionSummary>,
}

/// One statement of a Postgres session's recording: what arrived, what the
/// broker decided, how it ended. Result values are recorded only on a
/// connection with `record_results` (see [`RecordedResults`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedStatement {
    /// Its audit record's seq.
    pub seq: u64,
    /// When the broker received it, Unix milliseconds.
    pub at_ms: i64,
    /// The statement text exactly as received.
    pub sql: String,
    /// `Q` (simple query) or `P` (extended-protocol Parse).
    pub protocol: String,
    /// `allowed`, `blocked`, `held_for_review` or `review_approved`.
    pub decision: String,
    /// The guardrail set and rule that decided, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The review request that held or approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// From forwarding to the server's complete answer (absent when it was
    /// not forwarded, or its outcome is not recorded yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Rows returned or affected, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Columns whose values were masked in its results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_columns: Vec<String>,
    /// The error the client saw (SQLSTATE and message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first result rows, on a connection with `record_results`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<RecordedResults>,
}

/// The first result rows of a statement, kept in the recording when the
/// connection's `record_results` is above 0: exactly the values the client
/// received, so masked values stay masked. Text values as UTF-8 (each cut
/// to 256 bytes with a `…[+N bytes]` marker); binary-format values as
/// `<binary>`; NULL as `null`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedResults {
    /// Column names, from the server's RowDescription.
    pub columns: Vec<String>,
    /// The kept rows, in the order the client received them.
    pub rows: Vec<Vec<Option<String>>>,
    /// True when the statement returned more than was kept.
    #[serde(default)]
    pub truncated: bool,
}

/// `GET /v1/sessions/{id}` (and, for Postgres, `/v1/sessions/{id}/export`):
/// a session and its recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionDetail {
    /// The session.
    #[serde(flatten)]
    pub session: SessionSummary,
    /// Postgres: its statements, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<RecordedStatement>,
    /// True when the session has more statements than one answer holds
    /// (the newest are shown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub statements_truncated: bool,
    /// SSH: the recording index (shells with their asciicast part, exec
    /// commands with exit status, sftp transfers, refusals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<serde_json::Value>,
}
