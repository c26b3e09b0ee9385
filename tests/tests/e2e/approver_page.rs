//! The approvers' web page in a real headless Chromium, driven over
//! WebDriver (chromedriver + fantoccini), against the real broker and
//! PostgreSQL: bob signs in through the built-in identity provider's
//! authorization page, sees alice's request with its reason, approves it
//! with a comment, and the API then shows the grant and opens a session
//! under it; alice, signed in on the same page, gets no button for her own
//! request, and a forged approval is refused.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hoop_e2e::*;
use serde_json::json;

/// How long any one page step may take.
const STEP: Duration = Duration::from_secs(30);

/// A chromedriver on a loopback port chosen by the OS, ended on drop.
struct ChromeDriver {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver and waits (bounded) until `/status` says ready.
    /// chromedriver has no `--port=0`: bind a free port, release it, pass it.
    async fn start() -> ChromeDriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + STEP;
        loop {
            let ready = match http.get(format!("{url}/status")).send().await {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ChromeDriver {
            child,
            url,
            _dir: dir,
        }
    }

    /// A fresh headless Chromium with its own empty profile.
    async fn browser(&self, profile: &std::path::Path) -> Client {
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            // The broker's dev CA is not in the browser's store.
            "--ignore-certificate-errors".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "binary": chromium(), "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("start a Chromium session through chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(names: &[&str]) -> PathBuf {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = PathBuf::from(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed: run .ci/run (apt: chromium chromium-driver)");
}

fn chromedriver() -> PathBuf {
    find_binary(&["chromedriver"])
}

fn chromium() -> String {
    find_binary(&["chromium", "chromium-browser"])
        .to_string_lossy()
        .into_owned()
}

async fn css(b: &Client, selector: &str) -> fantoccini::elements::Element {
    match b
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = b
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = b.source().await.unwrap_or_default();
            panic!("no {selector} on {url}: {e}\n{source}")
        }
    }
}

async fn text(b: &Client, selector: &str) -> String {
    css(b, selector).await.text().await.unwrap()
}

/// Opens the approvals page, signs in on the identity provider's page as
/// `user`, and waits to be back on the list.
async fn sign_in(b: &Client, broker_url: &str, user: &str) {
    b.goto(&format!("{broker_url}/approvals")).await.unwrap();
    // Redirected to the built-in provider's authorization page.
    css(b, &format!("input[name=username][value={user}]"))
        .await
        .click()
        .await
        .unwrap();
    let here = b.current_url().await.unwrap();
    assert!(
        here.as_str()
            .starts_with(&format!("{broker_url}/idp/authorize")),
        "{here}"
    );
    css(b, "button[name=action][value=approve]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(text(b, "#signed-in-as").await, user);
    let here = b.current_url().await.unwrap();
    assert_eq!(here.as_str(), format!("{broker_url}/approvals"));
}

#[test]
fn bob_approves_alices_request_in_the_browser_and_alice_cannot_approve_her_own() {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, JIT_POLICY).unwrap();
    let broker = start_broker_with(
        &[db.connection("demo-pg", &["engineering"])],
        &format!("policy_file = {:?}\n", policy.to_string_lossy()),
    );
    let api = Api::new(&broker);
    let alice = dev_token(&broker, "alice", &["engineering"]);
    // Markup in the reason must show as text.
    let reason = "INC-42 investigate <b>slow</b> & stuck";
    let create = |reason: &str| {
        let (status, req) = api.call(
            "POST",
            "/v1/requests",
            &alice,
            Some(json!({"connection": "demo-pg", "reason": reason})),
        );
        assert_eq!(status, 201, "{req}");
        req["id"].as_str().unwrap().to_owned()
    };
    let id = create(reason);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let driver = rt.block_on(ChromeDriver::start());
    let profile = tempfile::tempdir().unwrap();
    let b = rt.block_on(driver.browser(profile.path()));
    let url = broker.url.clone();

    rt.block_on(async {
        sign_in(&b, &url, "bob").await;
        let article = format!("#request-{id}");
        assert_eq!(text(&b, &format!("{article} .reason")).await, reason);
        let card = text(&b, &article).await;
        assert!(card.contains("alice asks for demo-pg"), "{card}");
        assert!(card.contains("15m"), "{card}");
        assert!(card.contains("0 of 1"), "{card}");
        css(&b, &format!("#approve-comment-{id}"))
            .await
            .send_keys("ok for INC-42")
            .await
            .unwrap();
        css(&b, &format!("#approve-{id} button"))
            .await
            .click()
            .await
            .unwrap();
        let flash = text(&b, "#flash[role=status]").await;
        assert!(
            flash.contains("Approved alice's request for demo-pg: access is granted until"),
            "{flash}"
        );
        // The updated list: nothing left for bob.
        css(&b, "#nothing-pending").await;
        let source = b.source().await.unwrap();
        assert!(!source.contains(&format!("request-{id}")), "{source}");
    });

    // The CLI's side (the API, as alice): the grant, and a session under it.
    let (status, req) = api.call("GET", &format!("/v1/requests/{id}"), &alice, None);
    assert_eq!(status, 200, "{req}");
    assert_eq!(req["state"], "approved", "{req}");
    assert_eq!(req["approvals"][0]["approver"], "bob");
    assert_eq!(req["approvals"][0]["comment"], "ok for INC-42");
    let (status, session) = api.call(
        "POST",
        "/v1/sessions",
        &alice,
        Some(json!({"connection": "demo-pg", "request_id": id})),
    );
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["expires_at"], req["grant_ends_at"]);

    // alice asks again, signs in on the page (after bob signs out): her own
    // request is listed without any button, and a forged approval is refused.
    let own = create("INC-43 follow-up");
    rt.block_on(async {
        css(&b, "#sign-out").await.click().await.unwrap();
        css(&b, "#sign-in").await;
        sign_in(&b, &url, "alice").await;
        css(&b, &format!("#own-{own}")).await;
        css(&b, "#nothing-pending").await;
        let source = b.source().await.unwrap();
        assert!(!source.contains(&format!("approve-{own}")), "{source}");
        // A hand-made form with alice's valid CSRF token, as a tampering
        // user would send it.
        b.execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = arguments[0]; \
             const c = document.createElement('input'); c.name = 'csrf'; \
             c.value = document.querySelector('input[name=csrf]').value; f.appendChild(c); \
             document.body.appendChild(f); f.submit();",
            vec![json!(format!("/approvals/{own}/approve"))],
        )
        .await
        .unwrap();
        let flash = text(&b, "#flash[role=alert]").await;
        assert!(
            flash.contains("alice cannot approve their own access request"),
            "{flash}"
        );
        // A form without the session's CSRF token decides nothing.
        b.execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = arguments[0]; document.body.appendChild(f); f.submit();",
            vec![json!(format!("/approvals/{own}/approve"))],
        )
        .await
        .unwrap();
        let heading = text(&b, "h1").await;
        assert_eq!(heading, "This form has expired");
        b.close().await.unwrap();
    });
    let (_, req) = api.call("GET", &format!("/v1/requests/{own}"), &alice, None);
    assert_eq!(req["state"], "pending", "{req}");
    assert_eq!(req["approvals"].as_array().unwrap().len(), 0, "{req}");
    drop(driver);
}
