//! `hoopctl exec` end to end: the real hoopctl and broker, a real PostgreSQL,
//! with a person's login and with workload tokens (a file, GitHub Actions'
//! token service) from a test OIDC issuer the broker trusts.

use std::io::Write as _;
use std::process::{Command, Stdio};

use hoop_e2e::issuer::TestIssuer;
use hoop_e2e::*;

/// Runs a prepared hoopctl command, feeding `stdin` when given.
fn run(mut cmd: Command, stdin: Option<&str>) -> Run {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"))
}

#[test]
fn exec_runs_sql_from_c_f_and_stdin_with_a_persons_login() {
    let (_db, _broker, alice) = logged_in("alice");

    let r = alice.run(&["exec", "demo-pg", "--reason", "e2e", "-c", "select 42"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("42") && r.stdout.contains("(1 row)"),
        "{r:#?}"
    );

    // Several -c run in order; one -c may hold several statements.
    let r = alice.run(&[
        "exec",
        "demo-pg",
        "-c",
        "select 'a' as x",
        "-c",
        "select 'b' as y; select null as z",
    ]);
    r.assert_ok();
    let (a, b) = (r.stdout.find(" a").unwrap(), r.stdout.find(" b").unwrap());
    assert!(a < b, "{r:#?}");
    assert_eq!(r.stdout.matches("(1 row)").count(), 3, "{r:#?}");

    // -o json: one document with the session id, rows and counts.
    let r = alice.run(&[
        "exec",
        "demo-pg",
        "-o",
        "json",
        "-c",
        "select 42 as answer, null as nothing",
    ]);
    r.assert_ok();
    let v = json(&r);
    assert!(
        v["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["connection"], "demo-pg");
    let st = &v["statements"][0];
    assert_eq!(st["columns"], serde_json::json!(["answer", "nothing"]));
    assert_eq!(st["rows"], serde_json::json!([["42", null]]));
    assert_eq!(st["rows_affected"], 1);
    assert!(v["elapsed_ms"].is_u64() && v.get("error").is_none(), "{v}");

    // -f FILE with several statements, including one without a result set.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("q.sql");
    std::fs::write(
        &file,
        "create temp table t (n int);\ninsert into t values (1), (2), (3);\nselect sum(n) from t;\n",
    )
    .unwrap();
    let r = alice.run(&[
        "exec",
        "demo-pg",
        "-o",
        "json",
        "-f",
        file.to_str().unwrap(),
    ]);
    r.assert_ok();
    let v = json(&r);
    let sts = v["statements"].as_array().unwrap();
    assert_eq!(sts.len(), 3, "{v}");
    assert!(sts[0]["columns"].is_null());
    assert_eq!(sts[1]["rows_affected"], 3);
    assert_eq!(sts[2]["rows"], serde_json::json!([["6"]]));

    // SQL on stdin when neither -c nor -f is given.
    let mut cmd = alice.hoopctl();
    cmd.args(["exec", "demo-pg"]);
    let r = run(cmd, Some("select count(*) > 0 from customers"));
    r.assert_ok();
    assert!(r.stdout.contains(" t\n"), "{r:#?}");

    // Nothing to run is a usage error, before any session is opened.
    let r = alice.run(&["exec", "demo-pg"]);
    assert_eq!(r.code(), 2, "{r:#?}");
    assert!(r.stderr.contains("no SQL in stdin"), "{r:#?}");
}

#[test]
fn a_failing_statement_exits_1_with_its_sqlstate_and_commands_run_like_connect() {
    let (_db, _broker, alice) = logged_in("alice");

    let r = alice.run(&[
        "exec",
        "demo-pg",
        "-c",
        "select 1",
        "-c",
        "select 1/0",
        "-c",
        "select 3",
    ]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("division by zero") && r.stderr.contains("SQLSTATE 22012"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("-c #2"), "which input failed: {r:#?}");
    assert!(!r.stdout.contains(" 3\n"), "ran past the failure: {r:#?}");

    // In JSON the document is still printed, with the error.
    let r = alice.run(&["exec", "demo-pg", "-o", "json", "-c", "select 1; selec 2"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    let v = json(&r);
    assert_eq!(v["error"]["sqlstate"], "42601", "{v}");
    assert_eq!(v["error"]["position"], 11, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("selec"));
    assert!(r.stderr.contains("42601"), "{r:#?}");

    // `-- CMD`: the tunnel environment, as `connect -- CMD` gives it.
    let r = alice.run(&["exec", "demo-pg", "--", "psql", "-tAc", "select 1"]);
    r.assert_ok();
    assert_eq!(r.stdout.trim(), "1", "{r:#?}");
    let r = alice.run(&["exec", "demo-pg", "--", "sh", "-c", "exit 9"]);
    assert_eq!(r.code(), 9, "{r:#?}");
}

/// A broker trusting `issuer` for workloads: tokens with audience `hoop`
/// whose `sub` is acme/api's main branch become service `api-deploy` in
/// group `engineering`; nothing else matches.
fn workload_broker(db: &DemoDb, issuer: &TestIssuer) -> BrokerProcess {
    let identity = format!(
        "{BUILTIN_IDENTITY}\n[[identity.workload]]\nname = \"ci\"\nissuer = {:?}\n\
         audience = \"hoop\"\n\n[[identity.workload.rules]]\nservice = \"api-deploy\"\n\
         groups = [\"engineering\"]\nclaims = {{ sub = \"repo:acme/api:ref:refs/heads/main\" }}\n",
        issuer.url()
    );
    start_broker_config(&[db.connection("demo-pg", &["engineering"])], "", &identity)
}

const MAIN: &str = "repo:acme/api:ref:refs/heads/main";

#[test]
fn a_workload_token_from_a_file_runs_sql_and_an_unmatched_one_is_refused() {
    let db = DemoDb::start();
    let issuer = TestIssuer::start();
    let broker = workload_broker(&db, &issuer);
    let ci = User::new("ci", &broker);
    ci.configure();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("oidc-token");
    std::fs::write(&token_file, issuer.sign(&issuer.claims("hoop", MAIN))).unwrap();
    let tf = token_file.to_str().unwrap();

    let r = ci.run(&["--token-file", tf, "exec", "demo-pg", "-c", "select 42"]);
    r.assert_ok();
    assert!(r.stdout.contains("42"), "{r:#?}");

    let who = ci.run(&["whoami", "--token-file", tf]);
    who.assert_ok();
    assert!(who.stdout.contains("api-deploy"), "{who:#?}");
    assert!(who.stdout.contains("kind:     workload"), "{who:#?}");
    assert!(
        who.stdout.contains(&format!("token:    --token-file {tf}")),
        "{who:#?}"
    );

    // Same issuer and audience, but a branch no rule names.
    let stray = issuer.sign(&issuer.claims("hoop", "repo:acme/api:ref:refs/heads/feature"));
    std::fs::write(&token_file, &stray).unwrap();
    let r = ci.run(&["--token-file", tf, "exec", "demo-pg", "-c", "select 42"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("refused the token from --token-file"),
        "{r:#?}"
    );
    assert!(
        r.stderr.to_lowercase().contains("rule"),
        "reason class: {r:#?}"
    );
    assert!(
        !r.stderr.contains("hoopctl login"),
        "a login would not help: {r:#?}"
    );
    assert!(!r.all().contains(&stray), "token echoed: {r:#?}");
    assert!(!r.stdout.contains("42"));

    // HOOP_ID_TOKEN is the same token given directly.
    let good = issuer.sign(&issuer.claims("hoop", MAIN));
    let r = run(
        {
            let mut c = ci.hoopctl();
            c.env("HOOP_ID_TOKEN", &good)
                .args(["exec", "demo-pg", "-c", "select 43"]);
            c
        },
        None,
    );
    r.assert_ok();
    assert!(r.stdout.contains("43"), "{r:#?}");
}

/// The GitHub Actions path: hoopctl asks a (stand-in) token service for a
/// token with the configured audience, exactly as on a GitHub runner.
#[test]
fn a_github_actions_job_gets_its_token_from_the_token_service() {
    use std::collections::HashMap;
    let db = DemoDb::start();
    let issuer = TestIssuer::start();
    let broker = workload_broker(&db, &issuer);
    let ci = User::new("ci", &broker);
    ci.configure();

    // The runner's token service: checks the request token, signs `sub` for the asked audience.
    let claims_for = {
        let url = issuer.url().to_owned();
        let key = issuer.key();
        move |aud: &str| {
            let now = hoop_e2e::issuer::now();
            key.sign(&serde_json::json!({
                "iss": url, "aud": aud, "sub": MAIN, "repository_owner": "acme",
                "iat": now, "nbf": now, "exp": now + 300,
            }))
        }
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        let app =
            axum::Router::new().route(
                "/token",
                axum::routing::get(
                    move |headers: axum::http::HeaderMap,
                          axum::extract::Query(q): axum::extract::Query<
                        HashMap<String, String>,
                    >| {
                        let claims_for = claims_for.clone();
                        async move {
                            use axum::response::IntoResponse as _;
                            let auth = headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            if !auth.eq_ignore_ascii_case("bearer runner-request-token") {
                                return axum::http::StatusCode::UNAUTHORIZED.into_response();
                            }
                            let aud = q.get("audience").cloned().unwrap_or_default();
                            axum::Json(serde_json::json!({"value": claims_for(&aud)}))
                                .into_response()
                        }
                    },
                ),
            );
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    let on_runner = |audience: Option<&str>, args: &[&str]| {
        let mut c = ci.hoopctl();
        c.env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("http://{addr}/token?api-version=2.0"),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
        .env_remove("HOOP_AUDIENCE")
        .args(args);
        if let Some(a) = audience {
            c.env("HOOP_AUDIENCE", a);
        }
        run(c, None)
    };

    let r = on_runner(None, &["exec", "demo-pg", "-c", "select 42"]);
    r.assert_ok();
    assert!(r.stdout.contains("42"), "{r:#?}");
    let who = on_runner(None, &["whoami"]);
    who.assert_ok();
    assert!(
        who.stdout.contains("GitHub Actions") && who.stdout.contains("\"hoop\""),
        "{who:#?}"
    );
    assert!(who.stdout.contains("workload"), "{who:#?}");

    // A job asking for the wrong audience gets a token the broker refuses.
    let r = on_runner(Some("not-hoop"), &["exec", "demo-pg", "-c", "select 42"]);
    assert_eq!(r.code(), 1, "{r:#?}");
    assert!(r.stderr.contains("GitHub Actions"), "{r:#?}");
    drop(rt);
}
