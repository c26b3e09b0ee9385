//! Getting a session when the policy asks for more than a valid token: a
//! justification, or an approval. Shared by `connect` and `exec`.
//!
//! The conversation, step by step:
//! 1. `POST /v1/sessions`. `justification_required` → ask for a reason (on a
//!    terminal, if the command may prompt) or say to pass `--reason`, and try
//!    again. `approval_required` → step 2.
//! 2. Use a request of the caller's that fits (an approved grant for the
//!    connection that still runs, or a pending request with the same reason
//!    and duration), so running the same command again after `--no-wait`
//!    picks up the approval instead of asking twice. Otherwise
//!    `POST /v1/requests`.
//! 3. Wait, polling `GET /v1/requests/{id}` every [`POLL_INTERVAL`]: a
//!    spinner on a terminal, a line per change (and every
//!    [`PLAIN_REPEAT`]) otherwise. Ctrl-C asks whether to cancel the request
//!    (on a terminal; without one it cancels it).
//! 4. Approved → `POST /v1/sessions` with the request id: the session lasts
//!    until the grant ends. Denied, expired, cancelled, revoked → an error
//!    saying so (exit status 1). Not waiting, or the wait bound passed →
//!    [`Access::Pending`], which the command turns into exit status
//!    [`EXIT_APPROVAL_PENDING`] with the request id on stdout.
//!
//! Statement reviews (a guardrail `review` rule held a statement; the broker
//! made the request and named it in the error) are followed the same way
//! with [`follow_review`]: same spinner, same Ctrl-C choices, same exit
//! statuses; an approval there means "run the statement again, once".

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use hoop_shared::api::{
    AccessRequestView, CreateAccessRequest, DecisionRequest, ErrorCode, OpenSessionRequest,
    OpenSessionResponse, RequestKind, RequestState,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::api::{ApiError, RequestAction};
use crate::auth::{AuthError, Credentials, now_unix};
use crate::render;

/// Exit status when an approval is still pending (`--no-wait`, `exec`
/// without `--wait`, or `--wait` ran out); the request id is on stdout.
pub const EXIT_APPROVAL_PENDING: u8 = 3;
/// Exit status after Ctrl-C while waiting for an approval (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;
/// How often a pending request is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Without a terminal, how often "still waiting" is repeated.
pub const PLAIN_REPEAT: Duration = Duration::from_secs(30);
/// Polls that may fail in a row (broker restarting, network blip) before
/// waiting gives up.
const MAX_POLL_FAILURES: u32 = 10;
/// Justification prompts before giving up.
const MAX_REASON_PROMPTS: u32 = 3;
/// An approved grant with less left than this is not reused.
const MIN_GRANT_LEFT_SECS: u64 = 5;

/// How long to wait for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: report the pending request.
    No,
    /// Up to this long.
    For(Duration),
    /// Until the request is decided or expires.
    Forever,
}

/// What the command asked for.
#[derive(Debug, Clone)]
pub struct AccessOptions {
    /// `--reason`.
    pub reason: Option<String>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--request ID`.
    pub request: Option<String>,
    /// How long to wait for an approval.
    pub wait: Wait,
    /// True when hoopctl may ask on the terminal (a justification; whether to
    /// cancel on Ctrl-C). `exec` never prompts.
    pub prompt: bool,
    /// True when stderr is a terminal (spinner instead of plain lines).
    pub spinner: bool,
}

/// How getting access ended.
#[derive(Debug)]
pub enum Access {
    /// A session is open.
    Session(OpenSessionResponse),
    /// The request is (still) pending and hoopctl stops waiting.
    Pending(AccessRequestView),
    /// The user stopped waiting with Ctrl-C (the request was cancelled).
    Interrupted,
}

/// The broker's error code behind an API failure, if it sent one.
pub fn broker_code(e: &AuthError) -> Option<ErrorCode> {
    match e {
        AuthError::Api(api) => api.code(),
        _ => None,
    }
}

fn broker_message(e: &AuthError) -> String {
    match e {
        AuthError::Api(ApiError::Broker { message, .. }) => message.clone(),
        other => other.to_string(),
    }
}

/// Opens a session on `name`, asking for a justification or an approval
/// when the policy wants one.
pub async fn open(creds: &Credentials, name: &str, opts: &AccessOptions) -> anyhow::Result<Access> {
    let mut reason = opts.reason.clone();
    if let Some(id) = &opts.request {
        let view = get_request(creds, id)
            .await
            .with_context(|| format!("cannot read access request {id}"))?;
        if view.connection != name {
            anyhow::bail!(
                "access request {id} is for {}, not {name}",
                render::clean(&view.connection)
            );
        }
        return follow(creds, name, view, reason, opts).await;
    }

    let mut prompts = 0;
    let refusal = loop {
        match open_session(creds, name, reason.clone(), None).await {
            Ok(session) => return Ok(Access::Session(session)),
            Err(e) if broker_code(&e) == Some(ErrorCode::JustificationRequired) => {
                prompts += 1;
                reason = Some(ask_reason(name, &broker_message(&e), opts, prompts).await?);
            }
            Err(e) if broker_code(&e) == Some(ErrorCode::ApprovalRequired) => {
                break broker_message(&e);
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot open a session on {name:?}"));
            }
        }
    };

    eprintln!("{}", render::clean(&refusal));
    if let Some(existing) = reusable(creds, name, reason.as_deref(), opts.duration).await {
        eprintln!(
            "Using your {} access request {} for {name}.",
            existing.state, existing.id
        );
        return follow(creds, name, existing, reason, opts).await;
    }
    let view = loop {
        let body = CreateAccessRequest {
            connection: name.to_owned(),
            reason: reason.clone(),
            duration_secs: opts.duration.map(|d| d.as_secs()),
        };
        let body = &body;
        let api = creds.api().clone();
        let created = creds
            .call(|token| {
                let api = api.clone();
                async move { api.create_request(&token, body).await }
            })
            .await;
        match created {
            Ok(view) => break view,
            Err(e) if broker_code(&e) == Some(ErrorCode::JustificationRequired) => {
                prompts += 1;
                reason = Some(ask_reason(name, &broker_message(&e), opts, prompts).await?);
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot ask for access to {name:?}"));
            }
        }
    };
    eprintln!(
        "Asked for {} of access to {name}: request {} (approvers: {}).",
        render::short_duration(view.duration_secs),
        view.id,
        approvers_line(&view)
    );
    follow(creds, name, view, reason, opts).await
}

/// Waits for `view` as `opts` says, then opens the session under its grant
/// or says why not.
async fn follow(
    creds: &Credentials,
    name: &str,
    view: AccessRequestView,
    reason: Option<String>,
    opts: &AccessOptions,
) -> anyhow::Result<Access> {
    let view = match (view.state, opts.wait) {
        (RequestState::Pending, Wait::No) => return Ok(Access::Pending(view)),
        (RequestState::Pending, wait) => match wait_for_decision(creds, view, wait, opts).await? {
            Waited::Decided(view) => view,
            Waited::StillPending(view) => return Ok(Access::Pending(view)),
            Waited::Interrupted => return Ok(Access::Interrupted),
        },
        _ => view,
    };
    match view.state {
        RequestState::Approved => {
            let id = view.id.clone();
            let session = open_session(creds, name, reason, Some(id.clone()))
                .await
                .with_context(|| {
                    format!("cannot open a session on {name:?} under access request {id}")
                })?;
            Ok(Access::Session(session))
        }
        RequestState::Pending => Ok(Access::Pending(view)),
        _ => Err(anyhow::anyhow!("{}", closed_message(&view, now_unix()))),
    }
}

/// How following a statement review ended.
#[derive(Debug)]
pub enum Review {
    /// Approved: the statement may run once now.
    Approved(AccessRequestView),
    /// Still pending and hoopctl stops waiting.
    Pending(AccessRequestView),
    /// The user stopped waiting with Ctrl-C (the review was cancelled).
    Interrupted,
}

/// Follows statement review `id` as `opts.wait` says. Denied, expired and
/// cancelled reviews are errors saying so.
pub async fn follow_review(
    creds: &Credentials,
    id: &str,
    opts: &AccessOptions,
) -> anyhow::Result<Review> {
    let view = get_request(creds, id)
        .await
        .with_context(|| format!("cannot read review request {id}"))?;
    let view = match (view.state, opts.wait) {
        (RequestState::Pending, Wait::No) => return Ok(Review::Pending(view)),
        (RequestState::Pending, wait) => match wait_for_decision(creds, view, wait, opts).await? {
            Waited::Decided(view) => view,
            Waited::StillPending(view) => return Ok(Review::Pending(view)),
            Waited::Interrupted => return Ok(Review::Interrupted),
        },
        _ => view,
    };
    match view.state {
        RequestState::Approved => Ok(Review::Approved(view)),
        RequestState::Pending => Ok(Review::Pending(view)),
        _ => Err(anyhow::anyhow!("{}", closed_message(&view, now_unix()))),
    }
}

/// Why a request that is neither pending nor approved gives no access.
pub fn closed_message(view: &AccessRequestView, now: u64) -> String {
    if view.kind == RequestKind::Statement {
        return closed_review_message(view, now);
    }
    let id = &view.id;
    let last = |decision: &str| {
        view.approvals
            .iter()
            .rev()
            .find(|a| a.decision == decision)
            .map(|a| {
                let comment = a
                    .comment
                    .as_deref()
                    .map(|c| format!(": {}", render::clean(c)))
                    .unwrap_or_default();
                format!(" by {}{comment}", render::clean(&a.approver))
            })
            .unwrap_or_default()
    };
    match view.state {
        RequestState::Denied => format!("access request {id} was denied{}", last("deny")),
        RequestState::Cancelled => format!("access request {id} was cancelled"),
        RequestState::Revoked => format!(
            "the grant of access request {id} was revoked{}; ask again if you still need access",
            last("revoke")
        ),
        RequestState::Expired => match view.grant_ends_at {
            Some(end) => format!(
                "the grant of access request {id} ended {}; ask again if you still need access",
                crate::render::describe_time(end, now)
            ),
            None => format!(
                "access request {id} expired: nobody approved it in time (deadline {})",
                crate::render::describe_time(view.expires_at, now)
            ),
        },
        RequestState::Pending => format!("access request {id} is still pending"),
        RequestState::Approved => format!("access request {id} is approved"),
    }
}

/// Why a statement review that is neither pending nor approved lets nothing run.
fn closed_review_message(view: &AccessRequestView, now: u64) -> String {
    let id = &view.id;
    let by = view
        .approvals
        .iter()
        .rev()
        .find(|a| a.decision == "deny")
        .map(|a| {
            let comment = a
                .comment
                .as_deref()
                .map(|c| format!(": {}", render::clean(c)))
                .unwrap_or_default();
            format!(" by {}{comment}", render::clean(&a.approver))
        })
        .unwrap_or_default();
    match view.state {
        RequestState::Denied => {
            format!("review request {id} was denied{by}; the statement did not run")
        }
        RequestState::Cancelled => {
            format!("review request {id} was cancelled; the statement did not run")
        }
        RequestState::Revoked => format!("the approval of review request {id} was revoked"),
        RequestState::Expired => match view.grant_ends_at {
            Some(end) => format!(
                "the approval of review request {id} ran out {} before the statement ran",
                crate::render::describe_time(end, now)
            ),
            None => format!(
                "review request {id} expired: nobody decided in time (deadline {})",
                crate::render::describe_time(view.expires_at, now)
            ),
        },
        RequestState::Pending => format!("review request {id} is still pending"),
        RequestState::Approved => format!("review request {id} is approved"),
    }
}

/// "group sre (1 approval needed)".
pub fn approvers_line(view: &AccessRequestView) -> String {
    let who = view.approvers.describe();
    let who = if who.is_empty() {
        "nobody named".to_owned()
    } else {
        render::clean(&who)
    };
    let n = view.approvals_needed;
    format!(
        "{who}; {n} approval{} needed",
        if n == 1 { "" } else { "s" }
    )
}

/// "1/2": approvals so far / needed.
pub fn approvals_progress(view: &AccessRequestView) -> String {
    let got = view
        .approvals
        .iter()
        .filter(|a| a.decision == "approve")
        .count();
    format!("{got}/{}", view.approvals_needed)
}

/// The line a spinner (or a plain progress line) shows while waiting.
pub fn waiting_line(view: &AccessRequestView, waited: Duration) -> String {
    format!(
        "Waiting for approval of request {} on {}: {} approvals from {} · waited {}",
        view.id,
        render::clean(&view.connection),
        approvals_progress(view),
        render::clean(&view.approvers.describe()),
        render::duration(waited)
    )
}

/// Prints what a command prints when it stops with the request pending: the
/// id alone on stdout (for scripts), and on stderr what to do next.
pub fn report_pending(view: &AccessRequestView, command: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "{}", view.id)?;
    out.flush()?;
    eprintln!("{}", pending_advice(view, command));
    Ok(())
}

/// What to do about a pending request.
pub fn pending_advice(view: &AccessRequestView, command: &str) -> String {
    if view.kind == RequestKind::Statement {
        return format!(
            "The statement is held for review: request {id} on {conn} is pending ({progress} \
             approvals from {who}).\n\
             Once it is approved, run `{command}` again (the statement may run once), or add \
             --wait to wait for the decision and run it; `hoopctl requests show {id}` shows \
             where it stands.",
            id = view.id,
            conn = render::clean(&view.connection),
            progress = approvals_progress(view),
            who = render::clean(&view.approvers.describe()),
        );
    }
    format!(
        "Access request {id} for {conn} is pending ({progress} approvals from {who}).\n\
         Once it is approved, run `{command}` again, or pass --request {id} to wait for it; \
         `hoopctl requests show {id}` shows where it stands.",
        id = view.id,
        conn = render::clean(&view.connection),
        progress = approvals_progress(view),
        who = render::clean(&view.approvers.describe()),
    )
}

async fn open_session(
    creds: &Credentials,
    name: &str,
    reason: Option<String>,
    request_id: Option<String>,
) -> Result<OpenSessionResponse, AuthError> {
    let api = creds.api().clone();
    let request = OpenSessionRequest {
        connection: name.to_owned(),
        reason,
        request_id,
        agent: None,
    };
    let request = &request;
    creds
        .call(|token| {
            let api = api.clone();
            async move { api.open_session(&token, request).await }
        })
        .await
}

async fn get_request(creds: &Credentials, id: &str) -> Result<AccessRequestView, AuthError> {
    let api = creds.api().clone();
    creds
        .call(|token| {
            let api = api.clone();
            async move { api.request(&token, id).await }
        })
        .await
}

/// A request of the caller's for `name` that can serve: a running grant,
/// or a pending request asking for the same thing.
async fn reusable(
    creds: &Credentials,
    name: &str,
    reason: Option<&str>,
    duration: Option<Duration>,
) -> Option<AccessRequestView> {
    let api = creds.api().clone();
    let list = creds
        .call(|token| {
            let api = api.clone();
            async move { api.requests(&token).await }
        })
        .await;
    match list {
        Ok(list) => pick_reusable(list.requests, name, reason, duration, now_unix()),
        Err(e) => {
            // Only a shortcut: without the list, a new request is made.
            tracing::debug!("cannot list access requests: {e}");
            None
        }
    }
}

/// The first (newest) request in `requests` that can serve for `name`.
pub fn pick_reusable(
    requests: Vec<AccessRequestView>,
    name: &str,
    reason: Option<&str>,
    duration: Option<Duration>,
    now: u64,
) -> Option<AccessRequestView> {
    requests.into_iter().find(|r| {
        r.kind == RequestKind::Access
            && r.connection == name
            && match r.state {
                RequestState::Approved => r
                    .grant_ends_at
                    .is_some_and(|end| end > now.saturating_add(MIN_GRANT_LEFT_SECS)),
                RequestState::Pending => {
                    r.expires_at > now
                        && reason.is_none_or(|want| r.reason.as_deref() == Some(want))
                        && duration.is_none_or(|d| d.as_secs() == r.duration_secs)
                }
                _ => false,
            }
    })
}

/// Asks for a justification on the terminal, or explains how to give one.
async fn ask_reason(
    name: &str,
    why: &str,
    opts: &AccessOptions,
    attempt: u32,
) -> anyhow::Result<String> {
    let why = render::clean(why);
    if !opts.prompt {
        anyhow::bail!(
            "{why}\nhint: pass --reason TEXT saying why you need access to {name} \
             (e.g. --reason 'INC-1234: check failed orders')"
        );
    }
    if attempt > MAX_REASON_PROMPTS {
        anyhow::bail!("{why}\nhint: pass --reason TEXT");
    }
    eprintln!("{why}");
    let prompt = format!("Why do you need access to {name}? (recorded and shown to approvers)");
    let answer = tokio::task::spawn_blocking(move || {
        dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .validate_with(|s: &String| {
                if s.trim().is_empty() {
                    Err("a justification is required")
                } else {
                    Ok(())
                }
            })
            .interact_text()
    })
    .await
    .context("the prompt failed")?
    .context("no justification given (pass --reason TEXT)")?;
    Ok(answer.trim().to_owned())
}

enum Waited {
    Decided(AccessRequestView),
    StillPending(AccessRequestView),
    Interrupted,
}

/// What the person chose after Ctrl-C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnInterrupt {
    Cancel,
    KeepWaiting,
    Leave,
}

async fn wait_for_decision(
    creds: &Credentials,
    mut view: AccessRequestView,
    wait: Wait,
    opts: &AccessOptions,
) -> anyhow::Result<Waited> {
    let started = Instant::now();
    let deadline = match wait {
        Wait::For(d) => Some(started + d),
        Wait::No | Wait::Forever => None,
    };
    // One SIGINT stream for the whole wait, created before the first poll,
    // so a Ctrl-C during a poll is not lost.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut progress = Progress::new(opts.spinner);
    progress.show(&view, started.elapsed(), true);
    let mut failures = 0;
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = timeout => {
                progress.finish();
                return Ok(Waited::StillPending(view));
            }
            _ = sigint.recv() => {
                progress.pause();
                let choice = if opts.prompt {
                    ask_on_interrupt(&view.id).await
                } else {
                    OnInterrupt::Cancel
                };
                match choice {
                    OnInterrupt::KeepWaiting => {
                        progress = Progress::new(opts.spinner);
                        progress.show(&view, started.elapsed(), true);
                        continue;
                    }
                    OnInterrupt::Leave => return Ok(Waited::StillPending(view)),
                    OnInterrupt::Cancel => {
                        cancel(creds, &view.id).await;
                        return Ok(Waited::Interrupted);
                    }
                }
            }
        }
        match get_request(creds, &view.id).await {
            Ok(now) => {
                failures = 0;
                let changed = now.state != view.state || now.approvals != view.approvals;
                view = now;
                if view.state != RequestState::Pending {
                    progress.finish();
                    if view.state == RequestState::Approved {
                        eprintln!("{}", approved_line(&view, now_unix()));
                    }
                    return Ok(Waited::Decided(view));
                }
                progress.show(&view, started.elapsed(), changed);
            }
            Err(e) => {
                failures += 1;
                tracing::debug!("polling request {} failed: {e}", view.id);
                if failures >= MAX_POLL_FAILURES {
                    progress.finish();
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot follow access request {id} (it stays pending; \
                         `hoopctl requests show {id}`)",
                        id = view.id
                    )));
                }
            }
        }
    }
}

/// "Approved by bob (ok for INC-42): access to demo-pg, ends in 15m (...)".
pub fn approved_line(view: &AccessRequestView, now: u64) -> String {
    let approvers: Vec<String> = view
        .approvals
        .iter()
        .filter(|a| a.decision == "approve")
        .map(|a| match &a.comment {
            Some(c) => format!("{} ({})", render::clean(&a.approver), render::clean(c)),
            None => render::clean(&a.approver),
        })
        .collect();
    let by = if approvers.is_empty() {
        String::new()
    } else {
        format!(" by {}", approvers.join(", "))
    };
    let until = view
        .grant_ends_at
        .map(|end| format!(", ends {}", crate::render::describe_time(end, now)))
        .unwrap_or_default();
    if view.kind == RequestKind::Statement {
        return format!(
            "Approved{by}: the statement may run once on {}{until}.",
            render::clean(&view.connection)
        );
    }
    format!(
        "Approved{by}: access to {}{until}.",
        render::clean(&view.connection)
    )
}

async fn ask_on_interrupt(id: &str) -> OnInterrupt {
    let prompt = format!("Stop waiting for access request {id}?");
    let choice = tokio::task::spawn_blocking(move || {
        dialoguer::Select::new()
            .with_prompt(prompt)
            .items([
                "Cancel the request and exit",
                "Keep waiting",
                "Exit, and leave the request pending",
            ])
            .default(0)
            .interact_opt()
    })
    .await;
    match choice {
        Ok(Ok(Some(1))) => OnInterrupt::KeepWaiting,
        Ok(Ok(Some(2))) => OnInterrupt::Leave,
        // Cancel, Esc, a second Ctrl-C, or a broken prompt: the person
        // wants out, and a request nobody waits for should not linger.
        _ => OnInterrupt::Cancel,
    }
}

async fn cancel(creds: &Credentials, id: &str) {
    let api = creds.api().clone();
    let body = DecisionRequest::default();
    let body = &body;
    let result = creds
        .call(|token| {
            let api = api.clone();
            async move { api.decide(&token, id, RequestAction::Cancel, body).await }
        })
        .await;
    match result {
        Ok(_) => eprintln!("Cancelled access request {id}."),
        Err(e) => eprintln!(
            "warning: could not cancel access request {id}: {e}\n\
             hint: `hoopctl requests cancel {id}`"
        ),
    }
}

/// The waiting display: an indicatif spinner on a terminal, plain lines
/// otherwise (on change, and every [`PLAIN_REPEAT`]).
struct Progress {
    spinner: Option<indicatif::ProgressBar>,
    last_line: Option<Instant>,
}

impl Progress {
    fn new(spinner: bool) -> Progress {
        let spinner = spinner.then(|| {
            let bar = crate::render::spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            spinner,
            last_line: None,
        }
    }

    fn show(&mut self, view: &AccessRequestView, waited: Duration, changed: bool) {
        let line = waiting_line(view, waited);
        match &self.spinner {
            Some(bar) => bar.set_message(format!("{line} · Ctrl-C to stop")),
            None => {
                let due = self.last_line.is_none_or(|at| at.elapsed() >= PLAIN_REPEAT);
                if changed || due {
                    eprintln!("{line}");
                    self.last_line = Some(Instant::now());
                }
            }
        }
    }

    fn pause(&mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use hoop_shared::api::ApprovalView;
    use hoop_shared::policy::Approvers;

    pub fn view(id: &str, connection: &str, state: RequestState) -> AccessRequestView {
        AccessRequestView {
            id: id.into(),
            requester: "alice".into(),
            connection: connection.into(),
            reason: Some("INC-42".into()),
            duration_secs: 900,
            state,
            rule: "jit".into(),
            approvers: Approvers {
                groups: vec!["sre".into()],
                users: vec![],
            },
            approvals_needed: 2,
            approvals: vec![],
            created_at: 1_000,
            expires_at: 2_000,
            grant_ends_at: None,
            kind: RequestKind::Access,
            statement: None,
        }
    }

    fn decision(who: &str, decision: &str, comment: Option<&str>) -> ApprovalView {
        ApprovalView {
            approver: who.into(),
            decision: decision.into(),
            comment: comment.map(str::to_owned),
            at: 1_100,
        }
    }

    #[test]
    fn a_running_grant_or_a_matching_pending_request_is_reused() {
        let mut granted = view("g", "pg", RequestState::Approved);
        granted.grant_ends_at = Some(1_500);
        let pending = view("p", "pg", RequestState::Pending);
        let other = view("o", "other", RequestState::Pending);
        let denied = view("d", "pg", RequestState::Denied);
        let all = vec![
            other.clone(),
            denied.clone(),
            granted.clone(),
            pending.clone(),
        ];

        let pick = |reqs: Vec<AccessRequestView>, reason, dur, now| {
            pick_reusable(reqs, "pg", reason, dur, now).map(|r| r.id)
        };
        assert_eq!(pick(all.clone(), None, None, 1_200), Some("g".into()));
        // A grant about to end is not worth a session.
        assert_eq!(pick(all.clone(), None, None, 1_497), Some("p".into()));
        // A pending request asked for another reason or duration is not ours to reuse.
        assert_eq!(pick(all.clone(), Some("other"), None, 1_497), None);
        assert_eq!(
            pick(
                all.clone(),
                Some("INC-42"),
                Some(Duration::from_secs(900)),
                1_497
            ),
            Some("p".into())
        );
        assert_eq!(
            pick(all.clone(), None, Some(Duration::from_secs(60)), 1_497),
            None
        );
        // Past its deadline a pending request is dead.
        assert_eq!(pick(all, None, None, 2_000), None);
        assert_eq!(pick(vec![denied], None, None, 0), None);
        // An approved statement review is one run of one statement, never access.
        let mut review = view("s", "pg", RequestState::Approved);
        review.kind = RequestKind::Statement;
        review.grant_ends_at = Some(1_500);
        assert_eq!(pick(vec![review], None, None, 1_200), None);
    }

    #[test]
    fn closed_requests_say_who_and_why() {
        let mut denied = view("r1", "pg", RequestState::Denied);
        denied.approvals = vec![
            decision("carol", "approve", None),
            decision("bob", "deny", Some("use the replica\x1b[2J")),
        ];
        assert_eq!(
            closed_message(&denied, 0),
            "access request r1 was denied by bob: use the replica [2J"
        );
        let expired = view("r2", "pg", RequestState::Expired);
        let text = closed_message(&expired, 1_000);
        assert!(text.starts_with("access request r2 expired: nobody approved it in time"));
        let mut ended = view("r3", "pg", RequestState::Expired);
        ended.grant_ends_at = Some(900);
        let text = closed_message(&ended, 1_000);
        assert!(
            text.contains("grant of access request r3 ended 1m 40s ago"),
            "{text}"
        );
        assert_eq!(
            closed_message(&view("r4", "pg", RequestState::Cancelled), 0),
            "access request r4 was cancelled"
        );
    }

    #[test]
    fn waiting_shows_progress_and_who_can_approve() {
        let mut v = view("r1", "pg-prod", RequestState::Pending);
        v.approvals = vec![decision("bob", "approve", Some("ok"))];
        assert_eq!(approvals_progress(&v), "1/2");
        assert_eq!(approvers_line(&v), "group sre; 2 approvals needed");
        assert_eq!(
            waiting_line(&v, Duration::from_secs(75)),
            "Waiting for approval of request r1 on pg-prod: 1/2 approvals from group sre · waited 1m 15s"
        );
        let advice = pending_advice(&v, "hoopctl connect pg-prod");
        assert!(
            advice.contains("run `hoopctl connect pg-prod` again"),
            "{advice}"
        );
        assert!(advice.contains("--request r1"), "{advice}");
        assert!(advice.contains("hoopctl requests show r1"), "{advice}");
        v.state = RequestState::Approved;
        v.grant_ends_at = Some(1_000 + 900);
        assert_eq!(
            approved_line(&v, 1_000),
            "Approved by bob (ok): access to pg-prod, ends in 15m (1970-01-01T00:31:40Z)."
        );
    }
}
