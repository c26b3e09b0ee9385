//! `hoopctl approve [list|ID]` and `hoopctl deny ID --reason TEXT`: what an
//! approver does from the terminal. The broker enforces who may decide
//! (never the requester; only the rule's approvers) and counts distinct
//! approvals; hoopctl shows the result and, on a refusal, what to do instead.

use hoop_shared::api::{AccessRequestView, RequestState};

use super::Context;
use super::requests::{Listing, act, print_list};
use crate::access::approvals_progress;
use crate::api::RequestAction;
use crate::auth::now_unix;
use crate::cli::{ApproveArgs, ApproveCommand, DenyArgs, OutputFormat};
use crate::render;

/// Runs `hoopctl approve`.
pub async fn run(ctx: &Context, args: &ApproveArgs) -> anyhow::Result<u8> {
    match (&args.command, &args.id) {
        (Some(ApproveCommand::List(o)), _) => list(ctx, o.output).await,
        (None, None) => list(ctx, OutputFormat::Table).await,
        (None, Some(id)) => {
            let view = act(ctx, id, RequestAction::Approve, args.comment.clone()).await?;
            println!("{}", approved_summary(&view, now_unix()));
            Ok(0)
        }
    }
}

/// Runs `hoopctl deny`.
pub async fn deny(ctx: &Context, args: &DenyArgs) -> anyhow::Result<u8> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why (the requester sees it)");
    }
    let view = act(
        ctx,
        &args.id,
        RequestAction::Deny,
        Some(args.reason.trim().to_owned()),
    )
    .await?;
    println!(
        "Denied access request {} ({} on {}).",
        view.id,
        render::clean(&view.requester),
        render::clean(&view.connection)
    );
    Ok(0)
}

async fn list(ctx: &Context, output: OutputFormat) -> anyhow::Result<u8> {
    print_list(ctx, output, Listing::ToApprove).await
}

/// What `hoopctl approve ID` prints: granted, or how many approvals are still missing.
pub fn approved_summary(view: &AccessRequestView, now: u64) -> String {
    let who = render::clean(&view.requester);
    let conn = render::clean(&view.connection);
    if let Some(st) = &view.statement {
        let sql = render::clean_short(&st.sql, 200);
        return match view.state {
            RequestState::Approved => format!(
                "Approved review request {}: {who} may run this statement once on {conn}{}: {sql}",
                view.id,
                view.grant_ends_at
                    .map(|end| format!(" until {}", super::describe_time(end, now)))
                    .unwrap_or_default(),
            ),
            RequestState::Pending => format!(
                "Approved review request {} ({} approvals; more needed before {who} may run it).",
                view.id,
                approvals_progress(view),
            ),
            state => format!("Review request {} is {state}.", view.id),
        };
    }
    match view.state {
        RequestState::Approved => {
            let until = view
                .grant_ends_at
                .map(|end| format!("; the grant ends {}", super::describe_time(end, now)))
                .unwrap_or_default();
            format!(
                "Approved access request {}: {who} may use {conn}{until}.",
                view.id
            )
        }
        RequestState::Pending => {
            let got = view
                .approvals
                .iter()
                .filter(|a| a.decision == "approve")
                .count();
            let missing = usize::try_from(view.approvals_needed)
                .unwrap_or(usize::MAX)
                .saturating_sub(got);
            format!(
                "Approved access request {} ({} approvals; {missing} more needed before {who} may use {conn}).",
                view.id,
                approvals_progress(view),
            )
        }
        state => format!("Access request {} is {state}.", view.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::api::ApprovalView;
    use hoop_shared::policy::Approvers;

    fn view(state: RequestState, needed: u32, got: usize) -> AccessRequestView {
        AccessRequestView {
            id: "r1".into(),
            requester: "alice".into(),
            connection: "pg-prod".into(),
            reason: None,
            duration_secs: 900,
            state,
            rule: "jit".into(),
            approvers: Approvers::default(),
            approvals_needed: needed,
            approvals: (0..got)
                .map(|i| ApprovalView {
                    approver: format!("a{i}"),
                    decision: "approve".into(),
                    comment: None,
                    at: 0,
                })
                .collect(),
            created_at: 0,
            expires_at: 0,
            grant_ends_at: (state == RequestState::Approved).then_some(900),
            kind: Default::default(),
            statement: None,
        }
    }

    #[test]
    fn approving_a_review_names_the_statement() {
        let mut v = view(RequestState::Approved, 1, 1);
        v.kind = hoop_shared::api::RequestKind::Statement;
        v.statement = Some(hoop_shared::api::StatementReview {
            sql: "DELETE FROM orders WHERE id = 1".into(),
            fingerprint: "f".into(),
            guardrail: "orders-review/orders-writes".into(),
            session_id: None,
            used_at: None,
        });
        let text = approved_summary(&v, 0);
        assert!(
            text.starts_with(
                "Approved review request r1: alice may run this statement once on pg-prod"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(": DELETE FROM orders WHERE id = 1"),
            "{text}"
        );
    }

    #[test]
    fn approving_says_whether_access_is_granted_yet() {
        assert_eq!(
            approved_summary(&view(RequestState::Approved, 1, 1), 0),
            "Approved access request r1: alice may use pg-prod; the grant ends in 15m (1970-01-01T00:15:00Z)."
        );
        assert_eq!(
            approved_summary(&view(RequestState::Pending, 2, 1), 0),
            "Approved access request r1 (1/2 approvals; 1 more needed before alice may use pg-prod)."
        );
    }
}
