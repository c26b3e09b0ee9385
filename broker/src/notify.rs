//! Webhook notifications: access-request events as Slack-compatible JSON, delivered off the request path.
//!
//! Handlers call [`Notifier::send`], which renders the payload once and
//! `try_send`s it into one bounded queue per webhook: it never waits, so a
//! slow or dead receiver can never delay an API answer. When a queue is full
//! the notification is dropped with a warning and counted ([`Notifier::dropped`]).
//!
//! One worker task per webhook (owned by the broker's `TaskTracker`, ended by
//! its shutdown token) delivers in order: each attempt has a 5 s timeout;
//! network errors, 5xx and 429 are retried with exponential backoff (0.5 s,
//! 1 s, 2 s, 4 s: five attempts at most); other answers are final. One queue
//! per webhook means a dead receiver only backs up its own deliveries.
//!
//! `request.expired` has no handler to come from (expiry is a deadline
//! passing), so a sweep task looks for pending requests past their deadline
//! every [`SWEEP_INTERVAL`] and claims each in the store
//! ([`Store::claim_expired_requests`]), which marks it announced: one notice
//! per expiry, across restarts and brokers sharing a store.
//!
//! The payload is what Slack incoming webhooks take as is (a top-level
//! `text`, user-supplied parts escaped so a reason cannot `<!channel>`
//! anyone), plus the structured fields (`event`, `request`, `broker`, `at`)
//! for anything else. With `secret_env` set, the body is signed:
//! `X-Hoop-Signature: sha256=HEX(HMAC-SHA256(secret, body))`. Each
//! notification carries an `X-Hoop-Delivery` id that stays the same across
//! retries, so receivers can drop duplicates.
//!
//! A webhook URL is a credential (Slack's carry their token in the path): it
//! is held as a [`Secret`], logs name only its scheme, host and port, and
//! HTTP errors are logged without their URL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac as _};
use hoop_shared::Secret;
use hoop_shared::api::{AccessRequestView, ApprovalView};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebhookConfig;
use crate::secrets::{self, CredentialRef, SecretError};
use crate::store::{Decision, Store};

/// Notifications waiting per webhook before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 256;
/// Limit on one delivery attempt (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per notification, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled before each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How often the sweep looks for requests that expired undecided.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Expiries older than this when first seen (the broker was down, or
/// webhooks were just configured) are marked but not announced: a burst of
/// stale notices helps nobody.
const STALE_EXPIRY_SECS: u64 = 3600;
/// Requests claimed per sweep.
const SWEEP_BATCH: usize = 100;

/// Header carrying the body's HMAC-SHA256, when the webhook has a secret.
pub const SIGNATURE_HEADER: &str = "x-hoop-signature";
/// Header naming the event.
pub const EVENT_HEADER: &str = "x-hoop-event";
/// Header with a per-notification id, the same on every retry.
pub const DELIVERY_HEADER: &str = "x-hoop-delivery";

/// An access-request event a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotifyEvent {
    /// Someone asked for access.
    #[serde(rename = "request.created")]
    Created,
    /// The approval that completes the count turned the request into a grant.
    #[serde(rename = "request.approved")]
    Approved,
    /// An approver denied it.
    #[serde(rename = "request.denied")]
    Denied,
    /// Nobody decided before its deadline.
    #[serde(rename = "request.expired")]
    Expired,
    /// The requester withdrew it.
    #[serde(rename = "request.cancelled")]
    Cancelled,
}

impl NotifyEvent {
    /// Every event (the default subscription).
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::Created,
        NotifyEvent::Approved,
        NotifyEvent::Denied,
        NotifyEvent::Expired,
        NotifyEvent::Cancelled,
    ];

    /// The wire name, e.g. `request.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Created => "request.created",
            NotifyEvent::Approved => "request.approved",
            NotifyEvent::Denied => "request.denied",
            NotifyEvent::Expired => "request.expired",
            NotifyEvent::Cancelled => "request.cancelled",
        }
    }
}

impl std::fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The notifier could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A `secret_env` is not set.
    #[error("webhook {webhook}: secret_env: {source}")]
    Secret {
        /// Scheme, host and port of the webhook.
        webhook: String,
        /// What is missing.
        source: SecretError,
    },
    /// The URL did not parse (config validation normally catches this first).
    #[error("webhook #{0}: url is not a valid URL")]
    Url(usize),
    /// The HTTP client could not be built.
    #[error("webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The JSON body every webhook receives.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// Human summary; Slack shows this.
    pub text: String,
    /// What happened.
    pub event: NotifyEvent,
    /// The request, as the API shows it.
    pub request: &'a AccessRequestView,
    /// The broker's URL.
    pub broker: &'a str,
    /// When the notification was made, Unix seconds.
    pub at: u64,
}

/// Renders the body for `event` on `request`.
pub fn payload(
    event: NotifyEvent,
    request: &AccessRequestView,
    broker: &str,
    at: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Payload {
        text: summary(event, request),
        event,
        request,
        broker,
        at,
    })
}

/// The one-line human summary of an event (Slack `mrkdwn`, escaped).
pub fn summary(event: NotifyEvent, r: &AccessRequestView) -> String {
    let who = &r.requester;
    let conn = &r.connection;
    let id = &r.id;
    let text = match event {
        NotifyEvent::Created => {
            let dur = humantime::format_duration(Duration::from_secs(r.duration_secs));
            let reason = r.reason.as_deref().unwrap_or("(no reason given)");
            format!(
                "{who} requests access to {conn} for {dur}: {reason} — approve with \
                 `hoopctl approve {id}` ({} approval(s) from {} needed)",
                r.approvals_needed,
                r.approvers.describe()
            )
        }
        NotifyEvent::Approved => {
            let by = deciders(&r.approvals, Decision::Approve);
            let until = r
                .grant_ends_at
                .map(|end| format!(" until {}", time(end)))
                .unwrap_or_default();
            let comments = comments(&r.approvals, Decision::Approve);
            format!("{by} approved {who}'s access to {conn}{until}{comments} (request {id})")
        }
        NotifyEvent::Denied => {
            let by = deciders(&r.approvals, Decision::Deny);
            let comments = comments(&r.approvals, Decision::Deny);
            format!("{by} denied {who}'s access to {conn}{comments} (request {id})")
        }
        NotifyEvent::Expired => format!(
            "{who}'s request for {conn} expired at {} without a decision (request {id})",
            time(r.expires_at)
        ),
        NotifyEvent::Cancelled => {
            format!("{who} cancelled their request for {conn} (request {id})")
        }
    };
    slack_escape(&text)
}

/// Names of those who made `decision`, e.g. "bob, dave".
fn deciders(approvals: &[ApprovalView], decision: Decision) -> String {
    let names: Vec<&str> = approvals
        .iter()
        .filter(|a| a.decision == decision.as_str())
        .map(|a| a.approver.as_str())
        .collect();
    if names.is_empty() {
        "someone".into()
    } else {
        names.join(", ")
    }
}

/// ": comment; comment" of those who made `decision`, or nothing.
fn comments(approvals: &[ApprovalView], decision: Decision) -> String {
    let all: Vec<&str> = approvals
        .iter()
        .filter(|a| a.decision == decision.as_str())
        .filter_map(|a| a.comment.as_deref())
        .collect();
    if all.is_empty() {
        String::new()
    } else {
        format!(": {}", all.join("; "))
    }
}

/// Unix seconds as RFC 3339 UTC (the raw number when out of range).
fn time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| secs.to_string(), |t| t.to_string())
}

/// Slack treats `<...>` as links and mentions (`<!channel>`) and `&` as an
/// entity: requester-supplied text must not be able to ping a whole channel.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `sha256=HEX` of HMAC-SHA256(`secret`, `body`): the `X-Hoop-Signature` value.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this constructor cannot fail.
    let mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map(|mut m| {
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("sha256={mac}")
}

/// One configured webhook, ready to deliver to.
struct Hook {
    /// `scheme://host:port`: what logs may show.
    label: String,
    /// The full URL; may carry a token.
    url: Secret,
    /// Subscribed events.
    events: Vec<NotifyEvent>,
    /// HMAC key.
    secret: Option<Secret>,
}

/// One notification waiting in a webhook's queue.
#[derive(Clone)]
struct Delivery {
    event: NotifyEvent,
    id: String,
    body: Bytes,
}

struct Inner {
    broker_url: String,
    hooks: Vec<(Arc<Hook>, mpsc::Sender<Delivery>)>,
    dropped: AtomicU64,
}

/// Hands access-request events to the webhook workers; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

/// The tasks behind a [`Notifier`], started by [`Workers::spawn`] once the
/// broker runs (so `serve --check` starts nothing).
pub struct Workers {
    notifier: Notifier,
    queues: Vec<(Arc<Hook>, mpsc::Receiver<Delivery>)>,
    http: reqwest::Client,
    store: Store,
    backoff: Duration,
}

impl Notifier {
    /// A notifier with no webhooks: `send` does nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                broker_url: String::new(),
                hooks: Vec::new(),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Builds the notifier for `webhooks` (resolving each `secret_env` now,
    /// so a missing one stops the broker at startup) and its workers.
    pub fn new(
        webhooks: &[WebhookConfig],
        broker_url: &str,
        store: Store,
    ) -> Result<(Notifier, Workers), NotifyError> {
        let mut hooks = Vec::new();
        let mut queues = Vec::new();
        for (i, w) in webhooks.iter().enumerate() {
            let url = url::Url::parse(w.url.get_ref()).map_err(|_| NotifyError::Url(i + 1))?;
            let label = url_label(&url);
            let secret = w
                .secret_env
                .as_ref()
                .map(|name| secrets::resolve(&CredentialRef::Env(name.clone())))
                .transpose()
                .map_err(|source| NotifyError::Secret {
                    webhook: label.clone(),
                    source,
                })?;
            let hook = Arc::new(Hook {
                label,
                url: Secret::new(url.as_str()),
                events: w
                    .events
                    .clone()
                    .unwrap_or_else(|| NotifyEvent::ALL.to_vec()),
                secret,
            });
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            hooks.push((hook.clone(), tx));
            queues.push((hook, rx));
        }
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            // A redirect could lead the signed body somewhere the operator
            // never configured; a receiver that moved must be reconfigured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hoop-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Client)?;
        let notifier = Notifier {
            inner: Arc::new(Inner {
                broker_url: broker_url.to_owned(),
                hooks,
                dropped: AtomicU64::new(0),
            }),
        };
        let workers = Workers {
            notifier: notifier.clone(),
            queues,
            http,
            store,
            backoff: FIRST_BACKOFF,
        };
        Ok((notifier, workers))
    }

    /// Queues `event` for every webhook subscribed to it. Never waits: a full
    /// queue drops the notification (logged and counted).
    pub fn send(&self, event: NotifyEvent, request: &AccessRequestView) {
        let inner = &self.inner;
        if !inner.hooks.iter().any(|(h, _)| h.events.contains(&event)) {
            return;
        }
        let body = match payload(event, request, &inner.broker_url, crate::app::now_unix()) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(%event, "could not render the webhook payload: {e}");
                return;
            }
        };
        let delivery = Delivery {
            event,
            id: uuid::Uuid::new_v4().to_string(),
            body,
        };
        for (hook, tx) in inner
            .hooks
            .iter()
            .filter(|(h, _)| h.events.contains(&event))
        {
            match tx.try_send(delivery.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let dropped = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(webhook = %hook.label, %event, request = %request.id,
                        dropped_total = dropped,
                        "webhook queue full (the receiver is slow or down); notification dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::debug!(webhook = %hook.label, %event, "webhook worker stopped; not queued");
                }
            }
        }
    }

    /// Notifications dropped because a queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl Workers {
    /// Starts one delivery task per webhook, and the expiry sweep when a
    /// webhook wants `request.expired`, on `tasks`; they end when `shutdown`
    /// is cancelled (undelivered notifications are then abandoned).
    pub fn spawn(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let sweep = self
            .notifier
            .inner
            .hooks
            .iter()
            .any(|(h, _)| h.events.contains(&NotifyEvent::Expired));
        for (hook, rx) in self.queues {
            tasks.spawn(run_hook(
                hook,
                rx,
                self.http.clone(),
                self.backoff,
                shutdown.clone(),
            ));
        }
        if sweep {
            tasks.spawn(run_sweep(self.notifier, self.store, shutdown));
        }
    }
}

/// `scheme://host[:port]` of a URL: safe to log, unlike its path and query.
fn url_label(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

async fn run_hook(
    hook: Arc<Hook>,
    mut rx: mpsc::Receiver<Delivery>,
    http: reqwest::Client,
    backoff: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => break,
            d = rx.recv() => match d {
                Some(d) => d,
                None => break,
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = deliver(&http, &hook, &delivery, backoff) => {}
        }
    }
    // Anything still queued is abandoned: say how much, so it is not silent.
    rx.close();
    let mut left = 0usize;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        tracing::warn!(webhook = %hook.label, undelivered = left,
            "broker stopping; queued webhook notifications abandoned");
    }
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Delivered,
    /// Worth another try (network error, timeout, 5xx, 429).
    Retry(String),
    /// The receiver refused it for good (other 4xx, redirects).
    GiveUp(String),
}

fn classify(status: reqwest::StatusCode) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Attempt::Retry(format!("HTTP {status}"))
    } else {
        Attempt::GiveUp(format!("HTTP {status}"))
    }
}

async fn attempt(http: &reqwest::Client, hook: &Hook, d: &Delivery) -> Attempt {
    let mut req = http
        .post(hook.url.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, d.event.as_str())
        .header(DELIVERY_HEADER, &d.id)
        .body(d.body.clone());
    if let Some(secret) = &hook.secret {
        req = req.header(SIGNATURE_HEADER, signature(secret, &d.body));
    }
    match req.send().await {
        Ok(resp) => classify(resp.status()),
        // Without the URL: it may carry the receiver's token.
        Err(e) => Attempt::Retry(e.without_url().to_string()),
    }
}

/// Delivers with retries; logs the outcome.
async fn deliver(http: &reqwest::Client, hook: &Hook, d: &Delivery, first_backoff: Duration) {
    let mut wait = first_backoff;
    for n in 1..=MAX_ATTEMPTS {
        match attempt(http, hook, d).await {
            Attempt::Delivered => {
                tracing::debug!(webhook = %hook.label, event = %d.event, delivery = %d.id,
                    attempt = n, "webhook delivered");
                return;
            }
            Attempt::GiveUp(why) => {
                tracing::warn!(webhook = %hook.label, event = %d.event, delivery = %d.id,
                    attempt = n, "webhook refused the notification ({why}); not retrying");
                return;
            }
            Attempt::Retry(why) if n < MAX_ATTEMPTS => {
                tracing::info!(webhook = %hook.label, event = %d.event, delivery = %d.id,
                    attempt = n, "webhook delivery failed ({why}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            Attempt::Retry(why) => {
                tracing::warn!(webhook = %hook.label, event = %d.event, delivery = %d.id,
                    "webhook delivery failed {MAX_ATTEMPTS} times ({why}); notification dropped");
            }
        }
    }
}

async fn run_sweep(notifier: Notifier, store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = crate::app::now_unix();
        let rows = match store.claim_expired_requests(now, SWEEP_BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("expiry sweep: {e}");
                continue;
            }
        };
        for row in rows {
            if now.saturating_sub(row.expires_at) > STALE_EXPIRY_SECS {
                tracing::debug!(request = %row.id, "expired long ago; not announced");
                continue;
            }
            notifier.send(NotifyEvent::Expired, &crate::api::request_view(&row, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::api::RequestState;
    use hoop_shared::policy::Approvers;

    fn request() -> AccessRequestView {
        AccessRequestView {
            id: "r-1".into(),
            requester: "alice".into(),
            connection: "demo-pg".into(),
            reason: Some("INC-42 investigate".into()),
            duration_secs: 900,
            state: RequestState::Pending,
            rule: "engineering-demo-jit".into(),
            approvers: Approvers {
                groups: vec!["sre".into()],
                users: vec![],
            },
            approvals_needed: 1,
            approvals: vec![],
            created_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            grant_ends_at: None,
            kind: Default::default(),
            statement: None,
        }
    }

    #[test]
    fn created_payload_is_slack_text_plus_structured_fields() {
        let body = payload(
            NotifyEvent::Created,
            &request(),
            "https://hoop.example.com",
            1_700_000_001,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["text"],
            "alice requests access to demo-pg for 15m: INC-42 investigate — approve with \
             `hoopctl approve r-1` (1 approval(s) from group sre needed)"
        );
        assert_eq!(v["event"], "request.created");
        assert_eq!(v["broker"], "https://hoop.example.com");
        assert_eq!(v["at"], 1_700_000_001);
        // `request` is exactly the API's view, so receivers can parse it with the same type.
        let back: AccessRequestView = serde_json::from_value(v["request"].clone()).unwrap();
        assert_eq!(back, request());
    }

    #[test]
    fn decisions_name_who_decided_and_why() {
        let mut r = request();
        r.state = RequestState::Approved;
        r.grant_ends_at = Some(1_700_000_900);
        r.approvals = vec![ApprovalView {
            approver: "bob".into(),
            decision: "approve".into(),
            comment: Some("ok for INC-42".into()),
            at: 1_700_000_000,
        }];
        assert_eq!(
            summary(NotifyEvent::Approved, &r),
            "bob approved alice's access to demo-pg until 2023-11-14T22:28:20Z: ok for INC-42 \
             (request r-1)"
        );
        r.approvals[0].decision = "deny".into();
        r.approvals[0].comment = Some("not during the freeze".into());
        assert_eq!(
            summary(NotifyEvent::Denied, &r),
            "bob denied alice's access to demo-pg: not during the freeze (request r-1)"
        );
        assert!(summary(NotifyEvent::Expired, &r).contains("expired at 2023-11-14T23:13:20Z"));
        assert!(summary(NotifyEvent::Cancelled, &r).starts_with("alice cancelled"));
    }

    #[test]
    fn requester_text_cannot_mention_a_whole_channel() {
        let mut r = request();
        r.reason = Some("<!channel> look & see <http://evil|click>".into());
        let text = summary(NotifyEvent::Created, &r);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt; look &amp; see"), "{text}");
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231, test case 2.
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn status_codes_decide_retries() {
        use reqwest::StatusCode as S;
        assert_eq!(classify(S::NO_CONTENT), Attempt::Delivered);
        for s in [
            S::INTERNAL_SERVER_ERROR,
            S::BAD_GATEWAY,
            S::TOO_MANY_REQUESTS,
        ] {
            assert!(matches!(classify(s), Attempt::Retry(_)), "{s}");
        }
        for s in [S::BAD_REQUEST, S::NOT_FOUND, S::GONE, S::FOUND] {
            assert!(matches!(classify(s), Attempt::GiveUp(_)), "{s}");
        }
    }

    /// A receiver on 127.0.0.1 answering `statuses` in turn (then 200), counting hits.
    async fn receiver(statuses: Vec<u16>) -> (String, Arc<AtomicU64>) {
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
                let code = statuses.get(n).copied().unwrap_or(200);
                async move { axum::http::StatusCode::from_u16(code).unwrap() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    fn hook(url: &str) -> Hook {
        Hook {
            label: "test".into(),
            url: Secret::new(url),
            events: NotifyEvent::ALL.to_vec(),
            secret: None,
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            event: NotifyEvent::Created,
            id: "d-1".into(),
            body: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn server_errors_are_retried_client_errors_are_not() {
        let http = reqwest::Client::new();
        let quick = Duration::from_millis(5);
        let (url, hits) = receiver(vec![503, 429, 500]).await;
        deliver(&http, &hook(&url), &delivery(), quick).await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "three failures, then delivered"
        );
        let (url, hits) = receiver(vec![500; 10]).await;
        deliver(&http, &hook(&url), &delivery(), quick).await;
        assert_eq!(hits.load(Ordering::SeqCst), u64::from(MAX_ATTEMPTS));
        let (url, hits) = receiver(vec![400, 200]).await;
        deliver(&http, &hook(&url), &delivery(), quick).await;
        assert_eq!(hits.load(Ordering::SeqCst), 1, "a 4xx is final");
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_waiting() {
        let store = Store::in_memory().unwrap();
        let cfg: crate::config::WebhookConfig =
            toml::from_str("url = \"http://127.0.0.1:9/x\"").unwrap();
        // Workers never started: nothing drains the queue.
        let (notifier, _workers) = Notifier::new(&[cfg], "https://b", store).unwrap();
        for _ in 0..QUEUE_CAPACITY + 3 {
            notifier.send(NotifyEvent::Created, &request());
        }
        assert_eq!(notifier.dropped(), 3);
    }

    #[test]
    fn labels_hide_the_path_that_carries_the_token() {
        let u = url::Url::parse("https://hooks.slack.com/services/T0/B0/XXXXSECRET").unwrap();
        assert_eq!(url_label(&u), "https://hooks.slack.com");
        let u = url::Url::parse("http://127.0.0.1:9000/hook?token=s").unwrap();
        assert_eq!(url_label(&u), "http://127.0.0.1:9000");
    }
}
