//! Opening a session: the policy decides (allowed, denied, needs approval,
//! needs a justification), an approved grant is checked when one is named,
//! and the session is stored with a one-time tunnel secret and an end time,
//! and audited. `POST /v1/sessions` (`crate::api`) calls [`open`] and turns
//! an [`OpenError`] into the HTTP answer.

use std::time::Duration;

use hoop_shared::Secret;
use hoop_shared::api::RequestState;
use hoop_shared::policy::{Approvers, Outcome};

use crate::auth::Identity;
use crate::config::ConnectionConfig;
use crate::policy::PolicyHolder;
use crate::store::{Event, SessionRow, Store, StoreError};
use crate::trail::AuditTrail;
use crate::util::now_unix;

/// What opening a session needs from the broker.
pub struct OpenParts<'a> {
    /// Where sessions and grants live.
    pub store: &'a Store,
    /// The policy in force.
    pub policy: &'a PolicyHolder,
    /// Where the `session.open` / `session.denied` events go.
    pub trail: &'a AuditTrail,
    /// Lifetime of sessions not under a grant (bounded by the policy rule).
    pub session_ttl: Duration,
}

/// Why no session was opened.
#[derive(Debug)]
pub enum OpenError {
    /// The policy does not allow the user (already audited).
    Denied {
        /// The policy's explanation.
        explanation: String,
    },
    /// The named request is not one of the user's access requests for this
    /// connection.
    UnknownRequest {
        /// The request id given.
        id: String,
    },
    /// The named request is not an active grant.
    NotGranted {
        /// The request id given.
        id: String,
        /// Its state now.
        state: RequestState,
    },
    /// The policy wants approval first and no grant was named.
    ApprovalRequired {
        /// Who may approve.
        approvers: Approvers,
        /// How many approvals.
        approvals: u32,
        /// The rule that asks for them.
        rule: String,
    },
    /// The policy wants a reason and none was given.
    JustificationRequired {
        /// The rule that asks for it.
        rule: String,
    },
    /// The store failed; `context` says doing what.
    Store {
        /// What the broker was doing.
        context: &'static str,
        /// The store's error.
        error: StoreError,
    },
}

/// A stored session and its one-time tunnel secret (shown once).
pub struct Opened {
    /// The stored session.
    pub row: SessionRow,
    /// The tunnel secret; only its hash is stored.
    pub secret: Secret,
}

/// Opens `who`'s session on `conn`, under grant `request_id` when given.
pub async fn open(
    parts: OpenParts<'_>,
    who: &Identity,
    conn: &ConnectionConfig,
    reason: Option<String>,
    request_id: Option<String>,
    agent: Option<String>,
) -> Result<Opened, OpenError> {
    let decision = parts.policy.decide(who, &conn.name);
    let mut grant: Option<(String, u64)> = None;
    let rule = decision
        .rule
        .clone()
        .unwrap_or_else(|| "default deny".to_owned());
    let max_secs = match &decision.outcome {
        Outcome::Deny => {
            parts
                .trail
                .record(Event {
                    at: now_unix(),
                    kind: "session.denied".into(),
                    user_name: Some(who.user.clone()),
                    connection: Some(conn.name.clone()),
                    session_id: None,
                    detail: decision.explanation.clone(),
                })
                .await;
            return Err(OpenError::Denied {
                explanation: decision.explanation.clone(),
            });
        }
        Outcome::Approval { .. } if request_id.is_some() => {
            let id = request_id.clone().unwrap_or_default();
            let row = parts
                .store
                .request(&id)
                .await
                .map_err(|error| OpenError::Store {
                    context: "look up the access request",
                    error,
                })?
                // A statement review is approval to run one statement, never
                // a grant to open sessions.
                .filter(|r| {
                    r.subject == who.subject
                        && r.connection == conn.name
                        && r.kind != crate::store::RequestKind::Statement
                })
                .ok_or_else(|| OpenError::UnknownRequest { id: id.clone() })?;
            let now = now_unix();
            let state_now = crate::access::effective_state(&row, now);
            if state_now != RequestState::Approved {
                return Err(OpenError::NotGranted {
                    id,
                    state: state_now,
                });
            }
            grant = Some((id, row.grant_ends_at.unwrap_or(now)));
            u64::MAX
        }
        Outcome::Approval {
            approvers,
            approvals,
            ..
        } => {
            return Err(OpenError::ApprovalRequired {
                approvers: approvers.clone(),
                approvals: *approvals,
                rule,
            });
        }
        Outcome::Allow {
            justification,
            max_duration_secs,
            ..
        } => {
            if *justification && reason.is_none() {
                return Err(OpenError::JustificationRequired { rule });
            }
            *max_duration_secs
        }
    };
    let why = decision.explanation.clone();
    let secret = Secret::generate(32);
    let now = now_unix();
    let row = SessionRow {
        id: uuid::Uuid::new_v4().to_string(),
        subject: who.subject.clone(),
        user_name: who.user.clone(),
        connection: conn.name.clone(),
        reason: reason.clone(),
        secret_sha256: secret.sha256_hex(),
        created_at: now,
        expires_at: match &grant {
            Some((_, ends)) => *ends,
            None => now + parts.session_ttl.as_secs().min(max_secs),
        },
        closed_at: None,
        request_id: grant.as_ref().map(|(id, _)| id.clone()),
    };
    parts
        .store
        .insert_session(row.clone())
        .await
        .map_err(|error| OpenError::Store {
            context: "open the session",
            error,
        })?;
    parts
        .trail
        .record(Event {
            at: now,
            kind: "session.open".into(),
            user_name: Some(who.user.clone()),
            connection: Some(conn.name.clone()),
            session_id: Some(row.id.clone()),
            detail: {
                let mut detail = why;
                if let Some(r) = &reason {
                    detail.push_str(&format!("; reason: {r}"));
                }
                // `hoopctl mcp`: which agent acts for this user.
                if let Some(agent) = &agent {
                    detail.push_str(&format!("; agent: {agent}"));
                }
                detail
            },
        })
        .await;
    tracing::info!(session = %row.id, user = %who.user, connection = %conn.name, "session opened");
    Ok(Opened { row, secret })
}
