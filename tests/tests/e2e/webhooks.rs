//! Webhook notifications, end to end: the real broker process tells a real
//! HTTP receiver (axum on 127.0.0.1:0, in this test) about access requests —
//! created, approved, denied, cancelled, expired — with a valid HMAC
//! signature, while a second webhook that always answers 500 is retried in
//! the background and never slows the API down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hoop_e2e::*;
use serde_json::{Value, json};

/// A token-like path segment: the webhook URL is a credential, so it must not
/// show up in the broker's output.
const URL_TOKEN: &str = "T0KEN-in-the-path-7f3a";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    event: String,
    delivery: String,
    signature: Option<String>,
    body: Vec<u8>,
    at: Instant,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver: `/ok/...` answers 204, `/fail` answers 500; both record.
struct Receiver {
    /// Serves the receiver; dropping it stops the server.
    _rt: tokio::runtime::Runtime,
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start() -> Receiver {
        // Its own runtime thread, so it answers while the test blocks on API calls.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        async fn record(
            State(hits): State<Arc<Mutex<Vec<Hit>>>>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> StatusCode {
            let h = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let path = uri.path().to_owned();
            let failing = path == "/fail";
            hits.lock().unwrap().push(Hit {
                path,
                event: h("x-hoop-event").unwrap_or_default(),
                delivery: h("x-hoop-delivery").unwrap_or_default(),
                signature: h("x-hoop-signature"),
                body: body.to_vec(),
                at: Instant::now(),
            });
            if failing {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
        let app = axum::Router::new()
            .route("/ok/{token}", axum::routing::post(record))
            .route("/fail", axum::routing::post(record))
            .with_state(hits.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            _rt: rt,
            port,
            hits,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path_prefix: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// Polls until `done` holds for the hits under `path_prefix` (or panics after `limit`).
    fn wait_until(
        &self,
        path_prefix: &str,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Hit]) -> bool,
    ) -> Vec<Hit> {
        let deadline = Instant::now() + limit;
        loop {
            let hits = self.hits(path_prefix);
            if done(&hits) {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "webhook receiver: {what} not seen within {limit:?}; got {hits:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(broker: &BrokerProcess) -> Api {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&broker.ca_file).unwrap()).unwrap();
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .add_root_certificate(ca)
                .build()
                .unwrap(),
            url: broker.url.clone(),
        }
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self
                .http
                .request(method.parse().unwrap(), format!("{}{path}", self.url))
                .bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }
}

fn token(broker: &BrokerProcess, user: &str, groups: &[&str]) -> String {
    let (kid, alg) = broker.jwks_key();
    sign_token(
        &dev_claims(broker, user, groups, 3600),
        &broker.idp_key_pem(),
        &kid,
        &alg,
    )
}

/// A broker with the JIT policy on `demo-pg` and `webhooks` (TOML array
/// value). No database is needed: notifications are about requests, which
/// never touch the target. The connection's password variable
/// (`HOOP_TEST_PG_PASSWORD_0`, set by the harness) doubles as the webhook
/// signing key, so the test knows the key without touching its own
/// environment.
fn broker_with_webhooks(
    signing_key: &Secret,
    webhooks: &str,
    extra: &str,
) -> (BrokerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, JIT_POLICY).unwrap();
    let conn = PgConnection {
        name: "demo-pg".into(),
        host: "127.0.0.1".into(),
        port: closed_port(),
        database: "demo".into(),
        user: "app".into(),
        password: signing_key.clone(),
        allow_groups: vec!["engineering".into()],
    };
    let broker = start_broker_with(
        &[conn],
        &format!(
            "policy_file = {:?}\n{extra}webhooks = {webhooks}\n",
            policy.to_string_lossy()
        ),
    );
    (broker, dir)
}

fn create_request(api: &Api, alice: &str, reason: &str) -> String {
    let (status, req) = api.call(
        "POST",
        "/v1/requests",
        alice,
        Some(json!({"connection": "demo-pg", "reason": reason})),
    );
    assert_eq!(status, 201, "{req}");
    req["id"].as_str().unwrap().to_owned()
}

#[test]
fn receiver_gets_signed_events_and_a_failing_webhook_never_delays_the_api() {
    let receiver = Receiver::start();
    let key = Secret::generate(24);
    let (broker, _dir) = broker_with_webhooks(
        &key,
        &format!(
            "[\n  {{ url = {:?}, secret_env = \"HOOP_TEST_PG_PASSWORD_0\" }},\n  {{ url = {:?} }},\n]",
            receiver.url(&format!("/ok/{URL_TOKEN}")),
            receiver.url("/fail"),
        ),
        "",
    );
    let api = Api::new(&broker);
    let alice = token(&broker, "alice", &["engineering"]);
    let bob = token(&broker, "bob", &["sre"]);

    let id = create_request(&api, &alice, "INC-42 investigate");

    // The failing webhook is being retried (backoff 0.5 s, 1 s, ...) when bob
    // approves; the approval answers at once all the same.
    receiver.wait_until(
        "/fail",
        Duration::from_secs(10),
        "a first failing attempt",
        |h| !h.is_empty(),
    );
    let started = Instant::now();
    let (status, approved) = api.call(
        "POST",
        &format!("/v1/requests/{id}/approve"),
        &bob,
        Some(json!({"comment": "ok for INC-42"})),
    );
    let took = started.elapsed();
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    assert!(
        took < Duration::from_secs(2),
        "approving took {took:?} while a webhook was failing"
    );

    // The healthy receiver gets created, then approved, signed with the key.
    let hits = receiver.wait_until(
        "/ok/",
        Duration::from_secs(10),
        "request.created and request.approved",
        |h| h.len() >= 2,
    );
    let events: Vec<&str> = hits.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(events, ["request.created", "request.approved"]);
    for hit in &hits {
        // Computed here with the hmac crate, as a receiver would, not with
        // the broker's own signing code.
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.expose().as_bytes()).unwrap();
        mac.update(&hit.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(hit.signature.as_deref(), Some(expected.as_str()), "{hit:?}");
    }
    let created = hits[0].json();
    assert_eq!(created["event"], "request.created");
    assert_eq!(created["broker"], broker.url.as_str());
    assert_eq!(created["request"]["id"], id.as_str());
    assert_eq!(created["request"]["requester"], "alice");
    assert_eq!(created["request"]["connection"], "demo-pg");
    assert_eq!(created["request"]["reason"], "INC-42 investigate");
    assert_eq!(created["request"]["state"], "pending");
    assert!(created["at"].as_u64().is_some(), "{created}");
    let text = created["text"].as_str().unwrap();
    assert!(
        text.starts_with("alice requests access to demo-pg for 15m: INC-42 investigate")
            && text.contains(&format!("hoopctl approve {id}")),
        "{text}"
    );
    let approved = hits[1].json();
    assert_eq!(approved["request"]["state"], "approved");
    assert_eq!(approved["request"]["approvals"][0]["approver"], "bob");
    assert_eq!(
        approved["request"]["approvals"][0]["comment"],
        "ok for INC-42"
    );
    assert!(
        approved["request"]["grant_ends_at"].as_u64().is_some(),
        "{approved}"
    );
    assert!(
        approved["text"]
            .as_str()
            .unwrap()
            .starts_with("bob approved alice's access to demo-pg until "),
        "{approved}"
    );

    // The failing webhook was retried: the same delivery, attempted again, with backoff.
    let fails = receiver.wait_until("/fail", Duration::from_secs(10), "a retry", |h| {
        h.iter().filter(|x| x.event == "request.created").count() >= 2
    });
    let created_attempts: Vec<&Hit> = fails
        .iter()
        .filter(|h| h.event == "request.created")
        .collect();
    assert_eq!(created_attempts[0].delivery, created_attempts[1].delivery);
    assert!(
        created_attempts[1].at - created_attempts[0].at >= Duration::from_millis(400),
        "retries back off"
    );
    assert_eq!(
        created_attempts[0].signature, None,
        "no secret_env, no signature"
    );

    // Denied and cancelled requests are announced too, with the reason.
    let denied = create_request(&api, &alice, "INC-43 look around");
    let (status, body) = api.call(
        "POST",
        &format!("/v1/requests/{denied}/deny"),
        &bob,
        Some(json!({"comment": "use the read replica"})),
    );
    assert_eq!(status, 200, "{body}");
    let cancelled = create_request(&api, &alice, "INC-44 never mind");
    let (status, body) = api.call(
        "POST",
        &format!("/v1/requests/{cancelled}/cancel"),
        &alice,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let hits = receiver.wait_until(
        "/ok/",
        Duration::from_secs(10),
        "denied and cancelled",
        |h| h.iter().any(|x| x.event == "request.cancelled"),
    );
    let deny = hits
        .iter()
        .find(|h| h.event == "request.denied")
        .expect("request.denied")
        .json();
    assert_eq!(deny["request"]["id"], denied.as_str());
    assert_eq!(
        deny["text"],
        format!("bob denied alice's access to demo-pg: use the read replica (request {denied})")
    );
    let cancel = hits
        .iter()
        .find(|h| h.event == "request.cancelled")
        .unwrap()
        .json();
    assert_eq!(cancel["request"]["id"], cancelled.as_str());
    assert_eq!(cancel["request"]["state"], "cancelled");

    // Neither the signing key nor the webhook URL's token is in the broker's output.
    let log = broker.log();
    assert!(!log.contains(key.expose()), "the signing key was logged");
    assert!(
        !log.contains(URL_TOKEN),
        "the webhook URL was logged:\n{log}"
    );
    assert!(log.contains("retrying"), "retries are logged:\n{log}");
}

#[test]
fn a_request_nobody_decides_is_announced_as_expired_once() {
    let receiver = Receiver::start();
    let key = Secret::generate(24);
    let (broker, _dir) = broker_with_webhooks(
        &key,
        &format!(
            "[{{ url = {:?}, events = [\"request.expired\"] }}]",
            receiver.url(&format!("/ok/{URL_TOKEN}"))
        ),
        "request_ttl = \"1s\"\n",
    );
    let api = Api::new(&broker);
    let alice = token(&broker, "alice", &["engineering"]);
    let id = create_request(&api, &alice, "INC-45 nobody around");

    let hits = receiver.wait_until("/ok/", Duration::from_secs(15), "request.expired", |h| {
        !h.is_empty()
    });
    let expired = hits[0].json();
    assert_eq!(
        hits[0].event, "request.expired",
        "only subscribed events arrive"
    );
    assert_eq!(expired["event"], "request.expired");
    assert_eq!(expired["request"]["id"], id.as_str());
    assert_eq!(expired["request"]["state"], "expired");
    assert!(
        expired["text"]
            .as_str()
            .unwrap()
            .starts_with("alice's request for demo-pg expired at "),
        "{expired}"
    );
    // Once: a later sweep (every 2 s) does not announce it again.
    let seen_at = Instant::now();
    let (status, _) = api.call("GET", &format!("/v1/requests/{id}"), &alice, None);
    assert_eq!(status, 200);
    while seen_at.elapsed() < Duration::from_secs(5) {
        assert_eq!(receiver.hits("/ok/").len(), 1, "expiry announced twice");
        std::thread::sleep(Duration::from_millis(100));
    }
}
