//! A session's effective controls, decided in one place: [`decide`] takes
//! the connection, the policy's decision for the user and the grant (if the
//! session runs under one) and answers either the controls in force
//! (guardrail sets, masking sets, who reviews held statements, rows kept in
//! the recording, the end time) or that the session must end, with the
//! reason the client reads.
//!
//! Every proxy takes its controls from here: the tunnel endpoint decides them
//! before the stream is handed to the proxy (a policy that denies the user
//! refuses the tunnel), and [`follow`] decides them again whenever a policy
//! version is installed ([`crate::policy::PolicyHolder`], through
//! `hoopctl policy apply` on this broker or the cluster sync from another),
//! publishing the result on a `watch` channel ([`LiveControls`]). The
//! Postgres proxy reads it before each statement, so a change of guardrail
//! or masking sets reaches open sessions at their next statement; an
//! [`Effective::Ended`] ends the session (Postgres: a FATAL naming the
//! reason; SSH: the reason on every channel, then a disconnect).
//!
//! A policy that now asks for approval does not end a session opened while
//! it allowed access (the user was let in under the rules of that time); a
//! policy that denies the user does. Budgets are not part of the policy
//! format yet; when they are, they join [`Controls`] here.

use std::sync::Arc;

use hoop_shared::policy::{Approvers, Decision, Outcome};
use tokio::sync::watch;

use crate::auth::Identity;
use crate::config::ConnectionConfig;
use crate::policy::PolicyHolder;

/// What applies to one session now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controls {
    /// Guardrail sets of the policy rule that lets the user in (the
    /// connection's own sets always apply first; the proxy's guard book adds
    /// them).
    pub guardrails: Vec<String>,
    /// Masking sets: the connection's, then the policy rule's (each once).
    pub masking: Vec<String>,
    /// Who decides on held statements when the `review` rule names nobody:
    /// the approvers of an `access = "approval"` policy rule, and how many.
    pub review: Option<(Approvers, u32)>,
    /// Result rows kept per statement in the recording.
    pub record_results: u32,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
}

/// The controls in force, or why the session must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effective {
    /// The session goes on under these controls.
    Open(Arc<Controls>),
    /// The session must end; the text says why (shown to the client).
    Ended(String),
}

impl Effective {
    /// The controls, unless the session must end.
    pub fn controls(&self) -> Option<&Arc<Controls>> {
        match self {
            Effective::Open(c) => Some(c),
            Effective::Ended(_) => None,
        }
    }
}

/// The one decision: the effective controls of `user`'s session on
/// `connection` under `decision` (the policy's, now) whose end time is
/// `expires_at` (already bounded by its grant, if any).
pub fn decide(
    connection: &ConnectionConfig,
    user: &str,
    decision: &Decision,
    expires_at: u64,
) -> Effective {
    let (guardrails, policy_masking, review) = match &decision.outcome {
        Outcome::Deny => {
            return Effective::Ended(format!(
                "the policy no longer allows {user} to use {}: {}",
                connection.name, decision.explanation
            ));
        }
        Outcome::Allow {
            guardrails,
            masking,
            ..
        } => (guardrails, masking, None),
        Outcome::Approval {
            guardrails,
            masking,
            ..
        } => (guardrails, masking, review_approvers(decision)),
    };
    let mut masking = connection.masking.clone();
    for m in policy_masking {
        if !masking.contains(m) {
            masking.push(m.clone());
        }
    }
    Effective::Open(Arc::new(Controls {
        guardrails: guardrails.clone(),
        masking,
        review,
        record_results: connection.record_results,
        expires_at,
    }))
}

/// Who decides on a held statement or command whose `review` rule names
/// nobody, under `decision`: the approvers of the `access = "approval"` rule
/// that lets the user in, and how many approvals it asks. `None` for other
/// outcomes (the review desk then falls back to the policy's admins). The
/// one place this is decided: [`decide`] and [`crate::review`] both ask here.
pub fn review_approvers(decision: &Decision) -> Option<(Approvers, u32)> {
    match &decision.outcome {
        Outcome::Approval {
            approvers,
            approvals,
            ..
        } => Some((approvers.clone(), *approvals)),
        Outcome::Allow { .. } | Outcome::Deny => None,
    }
}

/// A session's controls as they change: cheap to clone; each holder sees
/// the newest value.
#[derive(Debug, Clone)]
pub struct LiveControls {
    rx: watch::Receiver<Effective>,
}

impl LiveControls {
    /// Controls that never change (tests, tools).
    pub fn fixed(effective: Effective) -> LiveControls {
        let (tx, rx) = watch::channel(effective);
        // Keep the value readable after the sender is gone.
        drop(tx);
        LiveControls { rx }
    }

    /// The value now.
    pub fn current(&self) -> Effective {
        self.rx.borrow().clone()
    }

    /// A receiver of the changes (its current value counts as seen).
    pub fn subscribe(&self) -> watch::Receiver<Effective> {
        let mut rx = self.rx.clone();
        rx.mark_unchanged();
        rx
    }

    /// Resolves with the reason once the session must end; never resolves
    /// while it may go on.
    pub async fn ended(mut self) -> String {
        loop {
            if let Effective::Ended(why) = &*self.rx.borrow_and_update() {
                return why.clone();
            }
            if self.rx.changed().await.is_err() {
                // No more changes will come: the current value stands.
                return std::future::pending().await;
            }
        }
    }
}

/// Decides the controls of `who`'s session on `connection` now, and returns
/// them with the task that decides them again at every policy install (run
/// it beside the session; it ends when every [`LiveControls`] is dropped or
/// the session must end).
pub fn follow(
    policy: Arc<PolicyHolder>,
    who: Identity,
    connection: ConnectionConfig,
    expires_at: u64,
) -> (
    LiveControls,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut installs = policy.subscribe();
    let first = decide(
        &connection,
        &who.user,
        &policy.decide(&who, &connection.name),
        expires_at,
    );
    let (tx, rx) = watch::channel(first);
    let task = async move {
        loop {
            if matches!(&*tx.borrow(), Effective::Ended(_)) {
                return;
            }
            tokio::select! {
                changed = installs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
            let next = decide(
                &connection,
                &who.user,
                &policy.decide(&who, &connection.name),
                expires_at,
            );
            tx.send_if_modified(|now| {
                if *now == next {
                    return false;
                }
                tracing::info!(user = %who.user, connection = %connection.name, effective = ?next, "session controls changed by a policy install");
                *now = next;
                true
            });
        }
    };
    (LiveControls { rx }, task)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn connection(masking: &[&str]) -> ConnectionConfig {
        let text = format!(
            r#"
listen = "127.0.0.1:0"
data_dir = "/tmp/x"
[tls]
self_signed = true
[identity.builtin]
users = [{{ name = "alice", groups = ["eng"] }}]
[[masking_sets]]
name = "pii"
[[masking_sets.rule]]
name = "emails"
detect = ["email"]
style = "full"
[[masking_sets]]
name = "cards"
[[masking_sets.rule]]
name = "cards"
detect = ["card"]
style = "full"
[[connections]]
name = "pg"
type = "postgres"
host = "127.0.0.1"
database = "app"
user = "app"
password_env = "PW"
allow_groups = ["eng"]
masking = [{}]
"#,
            masking
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cfg = crate::config::Config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        cfg.connection("pg").unwrap().clone()
    }

    fn decision(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            rule: Some("r".into()),
            explanation: "rule r decides".into(),
        }
    }

    #[test]
    fn deny_ends_the_session_and_says_why() {
        let e = decide(&connection(&[]), "alice", &decision(Outcome::Deny), 100);
        assert_eq!(
            e,
            Effective::Ended("the policy no longer allows alice to use pg: rule r decides".into())
        );
    }

    #[test]
    fn allow_merges_the_connection_and_policy_sets() {
        let e = decide(
            &connection(&["pii"]),
            "alice",
            &decision(Outcome::Allow {
                justification: false,
                max_duration_secs: 60,
                guardrails: vec!["no-destructive".into()],
                masking: vec!["cards".into(), "pii".into()],
            }),
            100,
        );
        let c = e.controls().unwrap();
        assert_eq!(c.guardrails, vec!["no-destructive".to_owned()]);
        assert_eq!(c.masking, vec!["pii".to_owned(), "cards".to_owned()]);
        assert_eq!(c.review, None);
        assert_eq!(c.expires_at, 100);
    }

    #[tokio::test]
    async fn fixed_controls_that_end_resolve_ended() {
        let live = LiveControls::fixed(Effective::Ended("why".into()));
        assert_eq!(live.ended().await, "why");
    }
}
