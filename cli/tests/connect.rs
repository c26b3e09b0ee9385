//! `hoopctl connect` as a user runs it, against a small stand-in for the
//! broker's session API on 127.0.0.1 (the real broker is driven end to end in
//! the workspace's `tests/` crate): the child's environment and exit code,
//! Ctrl-C going to the child only, the session closed afterwards, and the
//! broker's "unknown connection" advice reaching the user.

// Test helpers outside #[test] functions may panic on a broken setup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use hoop_shared::Secret;
use hoop_shared::api::{
    ApiError, ApiErrorBody, ConnectionKind, ConnectionSummary, ErrorCode, OpenSessionRequest,
    OpenSessionResponse,
};

#[derive(Default)]
struct Seen {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

async fn open(State(seen): State<Arc<Seen>>, Json(req): Json<OpenSessionRequest>) -> Response {
    if req.connection != "pg-demo" {
        let body = ApiErrorBody {
            error: ApiError {
                code: ErrorCode::UnknownConnection,
                message: format!("no connection named {:?}; known: pg-demo", req.connection),
                hint: Some("run `hoopctl connections`".into()),
            },
        };
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    seen.opened.fetch_add(1, Ordering::SeqCst);
    let body = OpenSessionResponse {
        session_id: "s1".into(),
        connection: ConnectionSummary {
            name: "pg-demo".into(),
            kind: ConnectionKind::Postgres,
            database: Some("app".into()),
            description: None,
        },
        tunnel_secret: Secret::new("one-time-secret"),
        client_user: "alice".into(),
        expires_at: 4_000_000_000,
        ssh_host_key: None,
    };
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn close(State(seen): State<Arc<Seen>>, Path(id): Path<String>) -> StatusCode {
    assert_eq!(id, "s1");
    seen.closed.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

fn stand_in_broker() -> (SocketAddr, Arc<Seen>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/v1/sessions", axum::routing::post(open))
        .route("/v1/sessions/{id}", axum::routing::delete(close))
        .with_state(Arc::clone(&seen));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen, rt)
}

fn hoopctl(broker: SocketAddr, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoopctl"))
        .env("HOOP_CONFIG_DIR", dir)
        .env("HOOP_TOKEN_STORE", "file")
        .env("HOOP_TOKEN", "tok")
        .env_remove("HOOP_BROKER")
        .arg("--broker")
        .arg(format!("http://{broker}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn child_gets_the_postgres_environment_and_its_exit_code_is_ours() {
    let (broker, seen, _rt) = stand_in_broker();
    let tmp = tempfile::tempdir().unwrap();
    let script = r#"
        test "$PGHOST" = 127.0.0.1 || exit 101
        test "$PGPORT" -gt 0 || exit 102
        test "$PGUSER" = alice || exit 103
        test "$PGPASSWORD" = one-time-secret || exit 104
        test "$PGDATABASE" = app || exit 105
        test "$PGSSLMODE" = disable || exit 106
        exit 7"#;
    let out = hoopctl(
        broker,
        tmp.path(),
        &["connect", "pg-demo", "--", "sh", "-c", script],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen.opened.load(Ordering::SeqCst), 1);
    assert_eq!(seen.closed.load(Ordering::SeqCst), 1, "session not closed");
}

#[test]
fn ctrl_c_goes_to_the_child_not_to_hoopctl() {
    let (broker, seen, _rt) = stand_in_broker();
    let tmp = tempfile::tempdir().unwrap();
    // The child interrupts its parent (as a terminal's Ctrl-C would) and
    // lingers briefly: a hoopctl that died of SIGINT would show as signal 2.
    let script = "kill -INT $PPID; sleep 0.3; kill -INT $PPID; sleep 0.3; exit 3";
    let out = hoopctl(
        broker,
        tmp.path(),
        &["connect", "pg-demo", "--", "sh", "-c", script],
    );
    assert_eq!(out.status.code(), Some(3), "{:?}", out.status);
    assert_eq!(seen.closed.load(Ordering::SeqCst), 1);
}

#[test]
fn child_killed_by_a_signal_exits_128_plus_n() {
    let (broker, _seen, _rt) = stand_in_broker();
    let tmp = tempfile::tempdir().unwrap();
    let out = hoopctl(
        broker,
        tmp.path(),
        &["connect", "pg-demo", "--", "sh", "-c", "kill -KILL $$"],
    );
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn missing_command_is_127() {
    let (broker, seen, _rt) = stand_in_broker();
    let tmp = tempfile::tempdir().unwrap();
    let out = hoopctl(
        broker,
        tmp.path(),
        &["connect", "pg-demo", "--", "no-such-program-hoop"],
    );
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(seen.closed.load(Ordering::SeqCst), 1, "session not closed");
}

#[test]
fn unknown_connection_shows_the_brokers_message_and_hint() {
    let (broker, _seen, _rt) = stand_in_broker();
    let tmp = tempfile::tempdir().unwrap();
    let out = hoopctl(broker, tmp.path(), &["connect", "pg-typo", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("known: pg-demo"), "{err}");
    assert!(err.contains("hint: run `hoopctl connections`"), "{err}");
}
