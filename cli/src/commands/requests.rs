//! `hoopctl requests [list|show ID|cancel ID|revoke ID]`: the caller's
//! access requests, and the calls that act on one request (shared with
//! `hoopctl approve` and `hoopctl deny`), with the broker's refusals turned
//! into advice.

use std::io::Write as _;

use anyhow::Context as _;
use hoop_shared::api::{
    AccessRequestList, AccessRequestView, DecisionRequest, ErrorCode, RequestKind, RequestState,
};

use super::{Context, describe_time};
use crate::access::{approvals_progress, approvers_line};
use crate::api::{ApiError, RequestAction};
use crate::auth::{AuthError, now_unix};
use crate::cli::{OutputFormat, RequestsArgs, RequestsCommand, ShowRequestArgs};
use crate::render;

/// Longest reason shown in a table cell (`requests show` shows all of it).
const REASON_WIDTH: usize = 48;

/// Runs `hoopctl requests`.
pub async fn run(ctx: &Context, args: &RequestsArgs) -> anyhow::Result<u8> {
    match &args.command {
        None => list(ctx, args.output).await,
        Some(RequestsCommand::List(o)) => list(ctx, o.output).await,
        Some(RequestsCommand::Show(a)) => show(ctx, a).await,
        Some(RequestsCommand::Cancel(a)) => {
            let view = act(ctx, &a.id, RequestAction::Cancel, None).await?;
            println!("Cancelled access request {}.", view.id);
            Ok(0)
        }
        Some(RequestsCommand::Revoke(a)) => {
            let view = act(ctx, &a.id, RequestAction::Revoke, a.reason.clone()).await?;
            println!(
                "Revoked access request {}: {}'s sessions on {} under it end now.",
                view.id,
                render::clean(&view.requester),
                render::clean(&view.connection)
            );
            Ok(0)
        }
    }
}

/// Which list [`print_list`] shows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Listing {
    /// The caller's own requests.
    Mine,
    /// Pending requests the caller may decide.
    ToApprove,
}

async fn list(ctx: &Context, output: OutputFormat) -> anyhow::Result<u8> {
    print_list(ctx, output, Listing::Mine).await
}

/// Fetches a list of requests and prints it as a table or JSON.
pub(super) async fn print_list(
    ctx: &Context,
    output: OutputFormat,
    listing: Listing,
) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let (failure, empty) = match listing {
        Listing::Mine => (
            "cannot list your access requests",
            "You have no access requests. `hoopctl connect NAME` asks for one when a \
             connection needs an approval.",
        ),
        Listing::ToApprove => (
            "cannot list the requests waiting for your approval",
            "No access requests are waiting for your approval.",
        ),
    };
    let list = creds
        .call(|token| {
            let api = api.clone();
            async move {
                match listing {
                    Listing::Mine => api.requests(&token).await,
                    Listing::ToApprove => api.approvals(&token).await,
                }
            }
        })
        .await
        .context(failure)?;
    let mut out = std::io::stdout();
    match output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Table if list.requests.is_empty() => eprintln!("{empty}"),
        OutputFormat::Table => {
            let table = match listing {
                Listing::Mine => my_requests_table(&list, now_unix()),
                Listing::ToApprove => approvals_table(&list, now_unix()),
            };
            out.write_all(table.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

async fn show(ctx: &Context, args: &ShowRequestArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let id = args.id.as_str();
    let view = creds
        .call(|token| {
            let api = api.clone();
            async move { api.request(&token, id).await }
        })
        .await
        .map_err(|e| explain(e, id, None))?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        OutputFormat::Table => out.write_all(detail(&view, now_unix()).as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

/// `POST /v1/requests/{id}/{action}`; a refusal comes back as the broker's
/// message with a hint on what to do instead.
pub async fn act(
    ctx: &Context,
    id: &str,
    action: RequestAction,
    comment: Option<String>,
) -> anyhow::Result<AccessRequestView> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let body = DecisionRequest { comment };
    let body = &body;
    creds
        .call(|token| {
            let api = api.clone();
            async move { api.decide(&token, id, action, body).await }
        })
        .await
        .map_err(|e| explain(e, id, Some(action)))
}

/// The broker's refusal, with a hint of ours when it gave none.
pub fn explain(e: AuthError, id: &str, action: Option<RequestAction>) -> anyhow::Error {
    match e {
        AuthError::Api(ApiError::Broker {
            code,
            message,
            hint,
            ..
        }) => {
            let hint = hint.or_else(|| default_hint(code, id, action));
            anyhow::anyhow!(
                "{message}{}",
                hint.map(|h| format!("\nhint: {h}")).unwrap_or_default()
            )
        }
        other => anyhow::Error::new(other),
    }
}

/// What to do after a refusal, when the broker did not say.
pub fn default_hint(code: ErrorCode, id: &str, action: Option<RequestAction>) -> Option<String> {
    let hint = match (code, action) {
        (ErrorCode::SelfApproval, _) => format!(
            "a requester never decides their own request; one of its approvers must \
             (`hoopctl requests show {id}` lists them)"
        ),
        (ErrorCode::RequestClosed, _) => format!(
            "it was already decided, cancelled or has expired: `hoopctl requests show {id}`"
        ),
        (ErrorCode::UnknownRequest, _) => "check the id: `hoopctl approve list` shows requests \
             you may decide, `hoopctl requests` your own"
            .to_owned(),
        (ErrorCode::Forbidden, Some(RequestAction::Approve | RequestAction::Deny)) => {
            format!("only its approvers may decide it (`hoopctl requests show {id}` lists them)")
        }
        (ErrorCode::Forbidden, Some(RequestAction::Revoke)) => {
            "only its approvers and policy admins may revoke a grant".to_owned()
        }
        (ErrorCode::Forbidden, Some(RequestAction::Cancel)) => {
            "only the requester may cancel a request; approvers revoke grants with \
             `hoopctl requests revoke ID`"
                .to_owned()
        }
        _ => return None,
    };
    Some(hint)
}

/// `approved (12m left)`, `used 3m ago` (a statement review's one run),
/// `pending`, `denied`...
pub fn state_cell(view: &AccessRequestView, now: u64) -> String {
    if let Some(used) = view.statement.as_ref().and_then(|st| st.used_at) {
        return format!(
            "used {} ago",
            render::short_duration(now.saturating_sub(used))
        );
    }
    match (view.state, view.grant_ends_at) {
        (RequestState::Approved, Some(end)) if end > now => {
            format!("approved ({} left)", render::short_duration(end - now))
        }
        (state, _) => state.to_string(),
    }
}

/// Age of a request: `3m`.
pub fn age(view: &AccessRequestView, now: u64) -> String {
    render::short_duration(now.saturating_sub(view.created_at))
}

/// Longest statement shown in a table cell (`requests show` shows all of it).
const SQL_WIDTH: usize = 60;

fn reason_cell(view: &AccessRequestView) -> String {
    if let Some(st) = &view.statement {
        return format!("SQL: {}", render::clean_short(&st.sql, SQL_WIDTH));
    }
    view.reason
        .as_deref()
        .map(|r| render::clean_short(r, REASON_WIDTH))
        .unwrap_or_else(|| "-".into())
}

/// How long the request asks for: a grant's length, or `1 run` for a statement.
fn duration_cell(view: &AccessRequestView) -> String {
    match view.kind {
        RequestKind::Statement => "1 run".to_owned(),
        RequestKind::Access => render::short_duration(view.duration_secs),
    }
}

/// `hoopctl requests`: ID CONNECTION STATE DURATION APPROVALS AGE REASON.
pub fn my_requests_table(list: &AccessRequestList, now: u64) -> String {
    let rows: Vec<Vec<String>> = list
        .requests
        .iter()
        .map(|r| {
            vec![
                render::clean(&r.id),
                render::clean(&r.connection),
                state_cell(r, now),
                duration_cell(r),
                approvals_progress(r),
                age(r, now),
                reason_cell(r),
            ]
        })
        .collect();
    render::table(
        &[
            "ID",
            "CONNECTION",
            "STATE",
            "DURATION",
            "APPROVALS",
            "AGE",
            "REASON",
        ],
        &rows,
    )
}

/// `hoopctl approve list`: ID REQUESTER CONNECTION DURATION AGE APPROVALS REASON.
pub fn approvals_table(list: &AccessRequestList, now: u64) -> String {
    let rows: Vec<Vec<String>> = list
        .requests
        .iter()
        .map(|r| {
            vec![
                render::clean(&r.id),
                render::clean(&r.requester),
                render::clean(&r.connection),
                duration_cell(r),
                age(r, now),
                approvals_progress(r),
                reason_cell(r),
            ]
        })
        .collect();
    render::table(
        &[
            "ID",
            "REQUESTER",
            "CONNECTION",
            "DURATION",
            "AGE",
            "APPROVALS",
            "REASON",
        ],
        &rows,
    )
}

/// `hoopctl requests show ID`.
pub fn detail(view: &AccessRequestView, now: u64) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("ID", render::clean(&view.id)),
        ("Requester", render::clean(&view.requester)),
        ("Connection", render::clean(&view.connection)),
        ("State", state_cell(view, now)),
        (
            "Reason",
            view.reason
                .as_deref()
                .map(render::clean)
                .unwrap_or_else(|| "-".into()),
        ),
        ("Duration", render::short_duration(view.duration_secs)),
        ("Rule", render::clean(&view.rule)),
        ("Approvers", approvers_line(view)),
        ("Approvals", approvals_progress(view)),
    ];
    for (i, a) in view.approvals.iter().enumerate() {
        let verb = match a.decision.as_str() {
            "approve" => "approved".to_owned(),
            "deny" => "denied".to_owned(),
            other => render::clean(other),
        };
        let comment = a
            .comment
            .as_deref()
            .map(|c| format!(": {}", render::clean(c)))
            .unwrap_or_default();
        rows.push((
            if i == 0 { "Decisions" } else { "" },
            format!(
                "{} {verb} {}{comment}",
                render::clean(&a.approver),
                describe_time(a.at, now)
            ),
        ));
    }
    rows.push(("Created", describe_time(view.created_at, now)));
    if view.state == RequestState::Pending {
        rows.push(("Expires", describe_time(view.expires_at, now)));
    }
    if let Some(end) = view.grant_ends_at {
        rows.push(("Grant ends", describe_time(end, now)));
    }
    if let Some(st) = &view.statement {
        // A statement review: what runs, and whether it ran.
        rows.retain(|(k, _)| !matches!(*k, "Reason" | "Duration" | "Rule"));
        rows.insert(1, ("Kind", "statement review (one run)".to_owned()));
        rows.push(("Guardrail", render::clean(&st.guardrail)));
        rows.push(("Statement", render::clean(&st.sql)));
        if let Some(at) = st.used_at {
            rows.push(("Ran", describe_time(at, now)));
        }
    }
    render::fields(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::api::ApprovalView;
    use hoop_shared::policy::Approvers;

    fn view(id: &str, state: RequestState) -> AccessRequestView {
        AccessRequestView {
            id: id.into(),
            requester: "alice".into(),
            connection: "pg-prod".into(),
            reason: Some("INC-42 investigate".into()),
            duration_secs: 900,
            state,
            rule: "engineering-prod-jit".into(),
            approvers: Approvers {
                groups: vec!["sre".into()],
                users: vec!["dave".into()],
            },
            approvals_needed: 1,
            approvals: vec![],
            created_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            grant_ends_at: None,
            kind: RequestKind::Access,
            statement: None,
        }
    }

    const NOW: u64 = 1_700_000_180;

    #[test]
    fn my_requests_show_state_progress_and_age() {
        let mut approved = view("r2", RequestState::Approved);
        approved.grant_ends_at = Some(NOW + 720);
        approved.approvals = vec![ApprovalView {
            approver: "bob".into(),
            decision: "approve".into(),
            comment: None,
            at: NOW - 60,
        }];
        let list = AccessRequestList {
            requests: vec![approved, view("r1", RequestState::Pending)],
        };
        assert_eq!(
            my_requests_table(&list, NOW),
            "ID  CONNECTION  STATE                DURATION  APPROVALS  AGE  REASON\n\
             r2  pg-prod     approved (12m left)  15m       1/1        3m   INC-42 investigate\n\
             r1  pg-prod     pending              15m       0/1        3m   INC-42 investigate\n"
        );
    }

    #[test]
    fn a_statement_review_that_ran_shows_as_used_not_as_time_left() {
        let mut v = view("r3", RequestState::Approved);
        v.grant_ends_at = Some(NOW + 720);
        v.statement = Some(hoop_shared::api::StatementReview {
            sql: "delete from orders where id = 1".into(),
            fingerprint: "f".into(),
            guardrail: "orders-review/orders-writes".into(),
            session_id: None,
            used_at: Some(NOW - 120),
        });
        assert_eq!(state_cell(&v, NOW), "used 2m ago");
        let text = my_requests_table(&AccessRequestList { requests: vec![v] }, NOW);
        assert!(text.contains("used 2m ago"), "{text}");
        assert!(!text.contains("left"), "{text}");
    }

    #[test]
    fn approvers_see_requester_and_a_clean_reason() {
        let mut v = view("r1", RequestState::Pending);
        v.reason = Some("line one\nline two \x1b]0;pwned\x07".into());
        let t = approvals_table(&AccessRequestList { requests: vec![v] }, NOW);
        assert_eq!(
            t,
            "ID  REQUESTER  CONNECTION  DURATION  AGE  APPROVALS  REASON\n\
             r1  alice      pg-prod     15m       3m   0/1        line one line two  ]0;pwned\n"
        );
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn detail_lists_decisions_and_deadlines() {
        let mut v = view("r1", RequestState::Denied);
        v.approvals = vec![ApprovalView {
            approver: "bob".into(),
            decision: "deny".into(),
            comment: Some("use the replica".into()),
            at: NOW - 30,
        }];
        let text = detail(&v, NOW);
        assert!(
            text.starts_with("ID          r1\nRequester   alice\n"),
            "{text}"
        );
        assert!(text.contains("State       denied\n"), "{text}");
        assert!(
            text.contains("Approvers   group sre or user dave; 1 approval needed\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "Decisions   bob denied 30s ago (2023-11-14T22:15:50Z): use the replica\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("Expires"),
            "only pending requests expire: {text}"
        );
        let pending = detail(&view("r1", RequestState::Pending), NOW);
        assert!(pending.contains("Expires     in 57m"), "{pending}");
    }

    #[test]
    fn refusals_get_a_hint_when_the_broker_gives_none() {
        let hint = |code, action| default_hint(code, "r1", action).unwrap_or_default();
        assert!(
            hint(ErrorCode::SelfApproval, Some(RequestAction::Approve)).contains("own request")
        );
        assert!(
            hint(ErrorCode::RequestClosed, Some(RequestAction::Approve))
                .contains("requests show r1")
        );
        assert!(hint(ErrorCode::Forbidden, Some(RequestAction::Revoke)).contains("policy admins"));
        assert!(default_hint(ErrorCode::Internal, "r1", None).is_none());

        let e = explain(
            AuthError::Api(ApiError::Broker {
                status: reqwest::StatusCode::FORBIDDEN,
                code: ErrorCode::SelfApproval,
                message: "you cannot approve your own request".into(),
                hint: None,
            }),
            "r1",
            Some(RequestAction::Approve),
        )
        .to_string();
        assert!(
            e.starts_with("you cannot approve your own request\nhint: "),
            "{e}"
        );
        // The broker's own hint wins.
        let e = explain(
            AuthError::Api(ApiError::Broker {
                status: reqwest::StatusCode::CONFLICT,
                code: ErrorCode::RequestClosed,
                message: "closed".into(),
                hint: Some("theirs".into()),
            }),
            "r1",
            None,
        )
        .to_string();
        assert_eq!(e, "closed\nhint: theirs");
    }
}
