//! End-to-end tests of the proxy without the rest of the broker: a
//! throwaway PostgreSQL, a loopback listener whose streams go to
//! [`PgProxy::serve`], and real clients (psql, pgbench) or a small raw client
//! that records every byte it receives.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut as _, BytesMut};
use hoop_shared::Secret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::dev::postgres::{ThrowawayPostgres, find_pg_binary};

const APP_ROLE: &str = "app_role";
const APP_DB: &str = "appdb";

/// A proxy listening on 127.0.0.1 for one session; every stream's result is
/// reported on `results`.
struct ProxyUnderTest {
    addr: SocketAddr,
    secret: Secret,
    results: mpsc::UnboundedReceiver<Result<(), PgProxyError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProxyUnderTest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_proxy(upstream: Upstream, expires_at: SystemTime) -> ProxyUnderTest {
    start_session(&PgProxy::new(), "sess-1", upstream, expires_at).await
}

/// Like the tunnel: one listener per session, all sessions on one `PgProxy`.
async fn start_session(
    proxy: &PgProxy,
    session_id: &str,
    upstream: Upstream,
    expires_at: SystemTime,
) -> ProxyUnderTest {
    start_session_with(proxy, session_id, upstream, expires_at, None).await
}

/// [`start_session`] for a session under an access grant.
async fn start_session_with(
    proxy: &PgProxy,
    session_id: &str,
    upstream: Upstream,
    expires_at: SystemTime,
    grant: Option<tokio_util::sync::CancellationToken>,
) -> ProxyUnderTest {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let secret = Secret::generate(32);
    let session = ClientSession {
        session_id: session_id.to_owned(),
        user: "alice@example.com".to_owned(),
        tunnel_secret_sha256: secret.sha256_hex(),
        expires_at,
        grant,
        masking: Vec::new(),
        record_results: 0,
        guardrails: Vec::new(),
        requester: None,
    };
    let upstream = Arc::new(upstream);
    let proxy = proxy.clone();
    let (tx, results) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            stream.set_nodelay(true).unwrap();
            let (proxy, session, upstream, tx) =
                (proxy.clone(), session.clone(), upstream.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(proxy.serve(stream, session, upstream).await);
            });
        }
    });
    ProxyUnderTest {
        addr,
        secret,
        results,
        task,
    }
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A throwaway server with an app role and database, and a proxy in front.
async fn setup() -> (ThrowawayPostgres, Upstream, ProxyUnderTest) {
    setup_with_lifetime(Duration::from_secs(3600)).await
}

/// As [`setup`], with a session that ends `lifetime` after the proxy starts.
async fn setup_with_lifetime(lifetime: Duration) -> (ThrowawayPostgres, Upstream, ProxyUnderTest) {
    let (pg, app) = app_server().await;
    let proxy = start_proxy(app.clone(), SystemTime::now() + lifetime).await;
    (pg, app, proxy)
}

/// A throwaway server with the app role and database; the login is named "demo-pg".
async fn app_server() -> (ThrowawayPostgres, Upstream) {
    let pg = ThrowawayPostgres::start().await.unwrap();
    let mut app = pg
        .create_app_database(APP_ROLE, &Secret::generate(24), APP_DB)
        .await
        .unwrap();
    app.connection = "demo-pg".to_owned();
    (pg, app)
}

/// A real client command with the environment hoopctl would give it.
fn client_command(program: &str, addr: SocketAddr, password: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", addr.port().to_string())
        .env("PGUSER", "alice")
        .env("PGDATABASE", APP_DB)
        .env("PGPASSWORD", password)
        .env("PGAPPNAME", "hoop-test")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn psql(addr: SocketAddr, password: &str, args: &[&str]) -> Output {
    psql_with_stdin(addr, password, args, None).await
}

async fn psql_with_stdin(
    addr: SocketAddr,
    password: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut cmd = client_command("psql", addr, password);
    cmd.args(["-X", "-v", "ON_ERROR_STOP=1"]).args(args);
    if stdin.is_some() {
        cmd.stdin(std::process::Stdio::piped());
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("psql must be on PATH");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).await.unwrap();
        drop(pipe);
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("psql hung")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tiny client that records every byte the proxy sends it.
struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    received: Vec<u8>,
}

impl RawClient {
    async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            received: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn startup(&mut self, version: i32, params: &[(&str, &str)]) {
        let mut body = BytesMut::new();
        body.put_i32(version);
        for (k, v) in params {
            body.put_slice(k.as_bytes());
            body.put_u8(0);
            body.put_slice(v.as_bytes());
            body.put_u8(0);
        }
        body.put_u8(0);
        let mut msg = BytesMut::new();
        msg.put_i32(body.len() as i32 + 4);
        msg.put_slice(&body);
        self.send(&msg).await;
    }

    async fn password(&mut self, password: &str) {
        let mut msg = BytesMut::new();
        msg.put_u8(b'p');
        msg.put_i32(password.len() as i32 + 5);
        msg.put_slice(password.as_bytes());
        msg.put_u8(0);
        self.send(&msg).await;
    }

    async fn query(&mut self, sql: &str) {
        let mut msg = BytesMut::new();
        msg.put_u8(b'Q');
        msg.put_i32(sql.len() as i32 + 5);
        msg.put_slice(sql.as_bytes());
        msg.put_u8(0);
        self.send(&msg).await;
    }

    /// The next message, or None at EOF (or a connection reset).
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let frame = self.buf.split_to(len + 1);
                    return Some((frame[0], frame[5..].to_vec()));
                }
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk))
                .await
                .expect("the proxy went silent")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.received.extend_from_slice(&chunk[..n]);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Messages until (and including) the first of type `tag`, or EOF.
    async fn until(&mut self, tag: u8) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            let done = m.0 == tag;
            out.push(m);
            if done {
                break;
            }
        }
        out
    }

    /// Starts a 3.0 session and authenticates with `secret`; returns what came back.
    async fn login(addr: SocketAddr, secret: &str) -> (RawClient, Vec<(u8, Vec<u8>)>) {
        let mut c = RawClient::connect(addr).await;
        c.startup(196_608, &[("user", "alice"), ("database", APP_DB)])
            .await;
        let auth = c.next().await.unwrap();
        assert_eq!(auth, (b'R', vec![0, 0, 0, 3]), "cleartext password request");
        c.password(secret).await;
        let msgs = c.until(b'Z').await;
        (c, msgs)
    }
}

/// SQLSTATE and message of an ErrorResponse body.
fn error_of(body: &[u8]) -> (String, String) {
    wire::ErrorFields::decode(body).code_and_message()
}

fn first_error(msgs: &[(u8, Vec<u8>)]) -> (String, String) {
    let (_, body) = msgs
        .iter()
        .find(|(tag, _)| *tag == b'E')
        .unwrap_or_else(|| panic!("no ErrorResponse in {msgs:?}"));
    error_of(body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_runs_as_the_upstream_role_and_sees_server_errors() {
    let (pg, _app, mut proxy) = setup().await;
    let secret = proxy.secret.expose().to_owned();

    let out = psql(
        proxy.addr,
        &secret,
        &[
            "-tAc",
            "select current_user || ' ' || current_database() || ' ' || current_setting('application_name')",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The upstream role, not the PGUSER the client sent; the allow-listed
    // application_name made it through.
    assert_eq!(text(&out.stdout).trim(), "app_role appdb hoop-test");

    let out = psql(proxy.addr, &secret, &["-c", "select 1/0"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("division by zero"),
        "{}",
        text(&out.stderr)
    );

    // psql ends with Terminate: both streams ended cleanly.
    for _ in 0..2 {
        let result = proxy.results.recv().await.unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_told_about_the_one_time_secret() {
    let (pg, app, proxy) = setup().await;
    // Even the upstream's real password is not accepted on the local port.
    for wrong in ["not-the-secret", app.password.expose()] {
        let out = psql(proxy.addr, wrong, &["-c", "select 1"]).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("one-time secret"), "{stderr}");
        assert!(stderr.contains("PGPASSWORD"), "{stderr}");
    }
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_and_large_results_stream_through() {
    let (pg, _app, proxy) = setup().await;
    let secret = proxy.secret.expose().to_owned();

    let out = psql(
        proxy.addr,
        &secret,
        &["-c", "create table t (id int, name text)"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // 50k rows in: many CopyData messages across many reads.
    let mut input = String::new();
    for i in 0..50_000 {
        input.push_str(&format!("{i}\tname-{i}\n"));
    }
    let out = psql_with_stdin(
        proxy.addr,
        &secret,
        &["-c", "\\copy t from stdin"],
        Some(input.as_bytes()),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("COPY 50000"),
        "{}",
        text(&out.stdout)
    );

    let out = psql(
        proxy.addr,
        &secret,
        &["-c", "\\copy (select * from t order by id) to stdout"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), input);

    // One 5 MB value: a single message far larger than a read chunk.
    let out = psql(
        proxy.addr,
        &secret,
        &["-tAc", "select repeat('x', 5000000)"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end().len(), 5_000_000);

    // LISTEN/NOTIFY: the asynchronous NotificationResponse reaches the client.
    let out = psql(
        proxy.addr,
        &secret,
        &["-c", "listen ch", "-c", "notify ch, 'hello'"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(
        all.contains("Asynchronous notification \"ch\" with payload \"hello\""),
        "{all}"
    );
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extended_protocol_works_with_pgbench() {
    let (pg, _app, proxy) = setup().await;
    let pgbench = find_pg_binary("pgbench").expect("pgbench");
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "\\set x random(1, 1000)\nselect :x::int + 1;\nselect 'v' || :x::text;\n",
    )
    .unwrap();
    for mode in ["extended", "prepared"] {
        let out = client_command(pgbench.to_str().unwrap(), proxy.addr, proxy.secret.expose())
            .args(["-n", "-M", mode, "-c", "2", "-t", "20", "-f"])
            .arg(script.path())
            .output()
            .await
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains("number of transactions actually processed: 40/40"),
            "{stdout}"
        );
    }
    pg.stop().await.unwrap();
}

/// Waits until the server runs `query_prefix` in an active backend.
async fn wait_until_running(pg: &ThrowawayPostgres, query_prefix: &str, want: bool) {
    let mut su = connect(&pg.superuser("postgres")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = su
            .simple_query(&format!(
                "select count(*) from pg_stat_activity where state = 'active' and query like '{query_prefix}%'"
            ))
            .await
            .unwrap();
        let running = rows[0][0].as_deref() != Some("0");
        if running == want {
            su.close().await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query_prefix}: running={running}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_psql_cancels_the_running_query() {
    let (pg, _app, proxy) = setup().await;
    let started = Instant::now();
    let mut child = client_command("psql", proxy.addr, proxy.secret.expose())
        .args(["-X", "-c", "select pg_sleep(60)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_running(&pg, "select pg_sleep(60)", true).await;

    // What Ctrl-C does: psql sends CancelRequest with the key it was given
    // (the broker's), on a new connection.
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), async {
        let mut stderr = Vec::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .await
            .unwrap();
        (child.wait().await.unwrap(), stderr)
    })
    .await
    .expect("psql did not finish after the cancel");
    let stderr = text(&out.1);
    assert!(!out.0.success());
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_key_from_another_session_is_ignored() {
    let (pg, app) = app_server().await;
    let shared = PgProxy::new();
    let mine = start_session(&shared, "sess-mine", app.clone(), in_an_hour()).await;
    let theirs = start_session(&shared, "sess-theirs", app.clone(), in_an_hour()).await;

    let (mut c, hello) = RawClient::login(mine.addr, mine.secret.expose()).await;
    let key = hello.iter().find(|(t, _)| *t == b'K').unwrap().1.clone();
    c.query("select pg_sleep(3), 'finished'").await;
    wait_until_running(&pg, "select pg_sleep(3)", true).await;

    // The right (pid, key), but arriving through another session's tunnel.
    let mut cancel = RawClient::connect(theirs.addr).await;
    let mut msg = BytesMut::new();
    msg.put_i32(16);
    msg.put_i32(80_877_102);
    msg.put_slice(&key);
    cancel.send(&msg).await;
    assert!(cancel.next().await.is_none(), "a cancel gets no answer");

    let msgs = c.until(b'Z').await;
    assert!(msgs.iter().all(|(t, _)| *t != b'E'), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|(t, b)| *t == b'D' && contains(b, b"finished"))
    );

    // The same request through the owning session does cancel.
    c.query("select pg_sleep(60)").await;
    wait_until_running(&pg, "select pg_sleep(60)", true).await;
    let mut cancel = RawClient::connect(mine.addr).await;
    cancel.send(&msg).await;
    assert!(cancel.next().await.is_none());
    let (code, message) = first_error(&c.until(b'Z').await);
    assert_eq!(code, "57014", "{message}");
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_gets_08001_and_never_the_password() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let password = "upstream-pw-7f3a9c-DO-NOT-LEAK";
    let upstream = Upstream {
        connection: "demo-pg".to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
        database: APP_DB.to_owned(),
        user: APP_ROLE.to_owned(),
        password: Secret::new(password),
        tls: TlsSettings::default(),
    };
    let mut proxy = start_proxy(upstream, in_an_hour()).await;

    let (c, msgs) = RawClient::login(proxy.addr, proxy.secret.expose()).await;
    let (code, message) = first_error(&msgs);
    assert_eq!(code, "08001");
    assert!(
        message.contains(
            "cannot reach the database behind connection \"demo-pg\" (connection refused)"
        ),
        "{message}"
    );
    assert!(!contains(&c.received, password.as_bytes()));
    let err = proxy.results.recv().await.unwrap().unwrap_err();
    assert_eq!(err.side(), Side::Upstream);
    assert!(err.is_retryable());
    assert!(!format!("{err} {err:?}").contains(password));

    // What a psql user sees.
    let out = psql(proxy.addr, proxy.secret.expose(), &["-c", "select 1"]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the database behind connection \"demo-pg\""),
        "{stderr}"
    );
    assert!(!stderr.contains(password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_credential_tells_the_user_an_admin_must_check_it() {
    let (pg, app, _proxy) = setup().await;
    let wrong = "wrong-upstream-pw-5d1e-DO-NOT-LEAK";
    let mut upstream = app.clone();
    upstream.password = Secret::new(wrong);
    let mut proxy = start_proxy(upstream, in_an_hour()).await;

    let (c, msgs) = RawClient::login(proxy.addr, proxy.secret.expose()).await;
    let (code, message) = first_error(&msgs);
    assert_eq!(code, "28P01");
    assert!(
        message.contains("rejected the broker's stored credential"),
        "{message}"
    );
    let hint =
        wire::ErrorFields::decode(&msgs.iter().find(|(t, _)| *t == b'E').unwrap().1).to_vec();
    assert!(
        hint.iter()
            .any(|(k, v)| *k == b'H' && v.contains("An admin must check the credential")),
        "{hint:?}"
    );
    assert!(!contains(&c.received, wrong.as_bytes()));
    let err = proxy.results.recv().await.unwrap().unwrap_err();
    assert!(!format!("{err} {err:?}").contains(wrong));
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_an_error_and_the_proxy_keeps_serving() {
    let (pg, _app, proxy) = setup().await;
    let secret = proxy.secret.expose().to_owned();

    // Startup packets: too short, absurdly long, HTTP garbage, protocol 2.0.
    let cases: [(&[u8], Option<&str>); 4] = [
        (b"\0\0\0\x03", Some("08P01")),
        (b"\x7f\xff\xff\xff\0\x03\0\0", Some("08P01")),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Some("08P01")),
        (b"\0\0\0\x09\0\x02\0\0\0", Some("0A000")),
    ];
    for (bytes, want) in cases {
        let mut c = RawClient::connect(proxy.addr).await;
        c.send(bytes).await;
        let msgs = c.until(b'Z').await;
        match want {
            Some(code) => assert_eq!(first_error(&msgs).0, code, "{bytes:?}"),
            None => assert!(msgs.is_empty()),
        }
    }

    // After login: a frame whose length is below 4, and one above the limit.
    for bad in [&b"Q\0\0\0\x02"[..], b"Q\x7f\xff\xff\xff"] {
        let (mut c, _) = RawClient::login(proxy.addr, &secret).await;
        c.send(bad).await;
        let msgs = c.until(b'Z').await;
        let (code, message) = first_error(&msgs);
        assert_eq!(code, "08P01");
        assert!(
            message.contains("invalid message from the client"),
            "{message}"
        );
        assert!(c.next().await.is_none(), "the connection must be closed");
    }

    // A message other than a password during authentication.
    let mut c = RawClient::connect(proxy.addr).await;
    c.startup(196_608, &[("user", "alice")]).await;
    let _ = c.next().await;
    c.query("select 1").await;
    assert_eq!(first_error(&c.until(b'Z').await).0, "08P01");

    let out = psql(proxy.addr, &secret, &["-tAc", "select 41 + 1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "42");
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_rules_database_replication_and_protocol_downgrade() {
    let (pg, _app, proxy) = setup().await;
    let secret = proxy.secret.expose().to_owned();

    let out = psql(proxy.addr, &secret, &["-d", "postgres", "-c", "select 1"]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("connection \"demo-pg\" allows only database \"appdb\""),
        "{stderr}"
    );

    let out = psql(
        proxy.addr,
        &secret,
        &["-d", "dbname=appdb replication=database", "-c", "select 1"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("replication connections are not allowed"),
        "{stderr}"
    );

    // A 3.2 client with a protocol extension is negotiated down to 3.0 and continues.
    let mut c = RawClient::connect(proxy.addr).await;
    c.startup(
        196_610,
        &[
            ("user", "alice"),
            ("database", APP_DB),
            ("_pq_.magic", "on"),
        ],
    )
    .await;
    let (tag, body) = c.next().await.unwrap();
    assert_eq!(tag, b'v');
    assert_eq!(&body[..8], &[0, 3, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&body[8..], b"_pq_.magic\0");
    assert_eq!(c.next().await.unwrap(), (b'R', vec![0, 0, 0, 3]));
    c.password(&secret).await;
    let msgs = c.until(b'Z').await;
    assert!(msgs.iter().any(|(t, _)| *t == b'K'));
    c.query("select current_user").await;
    let msgs = c.until(b'Z').await;
    assert!(
        msgs.iter()
            .any(|(t, b)| *t == b'D' && contains(b, APP_ROLE.as_bytes()))
    );
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_ends_a_running_session_with_a_message() {
    let (pg, _app, mut proxy) = setup_with_lifetime(Duration::from_secs(3)).await;
    let started = Instant::now();
    let out = psql(
        proxy.addr,
        proxy.secret.expose(),
        &["-c", "select pg_sleep(30)"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("your session on connection \"demo-pg\" ended at"),
        "{stderr}"
    );
    assert!(stderr.contains("run hoopctl connect again"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(matches!(
        proxy.results.recv().await.unwrap(),
        Err(PgProxyError::SessionExpired)
    ));
    // The statement was cancelled upstream too, not left running.
    wait_until_running(&pg, "select pg_sleep(30)", false).await;

    // A new stream after the end is refused at once.
    let out = psql(proxy.addr, proxy.secret.expose(), &["-c", "select 1"]).await;
    assert!(
        text(&out.stderr).contains("ended at"),
        "{}",
        text(&out.stderr)
    );
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_client_logs_in_with_md5_and_cleartext_too() {
    let pg = ThrowawayPostgres::start().await.unwrap();
    let mut su = connect(&pg.superuser("postgres")).await.unwrap();
    let md5_pw = Secret::generate(12);
    let clear_pw = Secret::generate(12);
    let md5_verifier = postgres_protocol::password::md5(md5_pw.expose().as_bytes(), "md5_user");
    su.simple_query(&format!(
        "create role md5_user login password '{md5_verifier}'; create role clear_user login password '{}'",
        postgres_protocol::password::scram_sha_256(clear_pw.expose().as_bytes())
    ))
    .await
    .unwrap();
    // Those two roles authenticate with md5 and password (cleartext) methods.
    let hba = pg.data_dir().unwrap().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "host all md5_user 127.0.0.1/32 md5\nhost all clear_user 127.0.0.1/32 password\n{old}"
        ),
    )
    .unwrap();
    su.simple_query("select pg_reload_conf()").await.unwrap();
    let methods = su
        .simple_query("select auth_method from pg_hba_file_rules order by line_number limit 2")
        .await
        .unwrap();
    assert_eq!(
        methods,
        vec![
            vec![Some("md5".to_owned())],
            vec![Some("password".to_owned())]
        ]
    );
    su.close().await;

    for (user, pw) in [("md5_user", &md5_pw), ("clear_user", &clear_pw)] {
        let mut login = pg.superuser("postgres");
        login.user = user.to_owned();
        login.password = pw.clone();
        // The reload is asynchronous: poll until the new rules apply.
        let deadline = Instant::now() + Duration::from_secs(10);
        let rows = loop {
            match connect(&login).await {
                Ok(mut c) => break c.simple_query("select current_user").await.unwrap(),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{user}: {e}"),
            }
        };
        assert_eq!(rows, vec![vec![Some(user.to_owned())]]);
        let mut wrong = login.clone();
        wrong.password = Secret::new("nope");
        let err = connect(&wrong).await.err().unwrap();
        assert!(matches!(err, PgProxyError::UpstreamAuth { .. }), "{err}");
    }
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_input_never_panics_and_always_ends() {
    use rand::{Rng as _, RngCore as _};
    let upstream = Arc::new(Upstream {
        connection: "nowhere".to_owned(),
        host: "127.0.0.1".to_owned(),
        port: 1,
        database: APP_DB.to_owned(),
        user: APP_ROLE.to_owned(),
        password: Secret::new("pw"),
        tls: TlsSettings::default(),
    });
    let session = ClientSession {
        session_id: "fuzz".to_owned(),
        user: "fuzz".to_owned(),
        tunnel_secret_sha256: Secret::new("s").sha256_hex(),
        expires_at: in_an_hour(),
        grant: None,
        masking: Vec::new(),
        record_results: 0,
        guardrails: Vec::new(),
        requester: None,
    };
    let proxy = PgProxy::new();
    let mut rng = rand::rng();
    // Valid openings followed by garbage, and plain garbage.
    let mut startup = BytesMut::new();
    startup.put_i32(8 + 5 + 6);
    startup.put_i32(196_608);
    startup.put_slice(b"user\0alice\0\0");
    for i in 0..300 {
        let mut input = match i % 3 {
            0 => Vec::new(),
            1 => startup.to_vec(),
            _ => [&startup[..], b"p\0\0\0\x06s\0"].concat(),
        };
        let mut noise = vec![0u8; rng.random_range(0..64)];
        rng.fill_bytes(&mut noise);
        input.extend_from_slice(&noise);

        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn({
            let (proxy, session, upstream) = (proxy.clone(), session.clone(), upstream.clone());
            async move { proxy.serve(server, session, upstream).await }
        });
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut sink))
            .await
            .expect("the proxy did not close")
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve did not return");
        assert!(result.is_ok(), "serve panicked on {input:?}");
    }
}

/// A proxy for one session on "demo-pg" with the `no-destructive` guardrails.
async fn guarded_setup() -> (ThrowawayPostgres, Upstream, ProxyUnderTest) {
    let (pg, app) = app_server().await;
    let reg = crate::guard::Registry::builtin();
    let sets = reg.resolve(&["no-destructive".to_owned()]).unwrap();
    let guard = Arc::new(crate::guard::Guardrails::new(
        "demo-pg",
        &sets,
        crate::config::UnparsableAction::Block,
    ));
    let proxy = PgProxy::with_guardrails([("demo-pg".to_owned(), guard)].into());
    let p = start_session(&proxy, "sess-g", app.clone(), in_an_hour()).await;
    (pg, app, p)
}

fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn query_msg(sql: &str) -> Vec<u8> {
    tagged(b'Q', format!("{sql}\0").as_bytes())
}

fn tags(msgs: &[(u8, Vec<u8>)]) -> String {
    msgs.iter().map(|(t, _)| *t as char).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrails_refuse_in_place_and_the_session_goes_on() {
    let (pg, app, proxy) = guarded_setup().await;
    let mut setup = connect(&pg.superuser(APP_DB)).await.unwrap();
    setup
        .simple_query(&format!(
            "create table public.keep (id int); insert into public.keep values (1), (2); \
             alter table public.keep owner to {APP_ROLE}"
        ))
        .await
        .unwrap();
    let (mut c, _) = RawClient::login(proxy.addr, proxy.secret.expose()).await;

    // Simple query: an ERROR naming the rule, then ReadyForQuery idle.
    c.query("DROP TABLE keep").await;
    let msgs = c.until(b'Z').await;
    assert_eq!(tags(&msgs), "EZ");
    let (code, message) = first_error(&msgs);
    assert_eq!(code, "42501");
    assert_eq!(
        message,
        "hoop: blocked by guardrail \"no-destructive\" rule \"drop\": DROP TABLE is not \
         allowed on connection \"demo-pg\""
    );
    assert_eq!(msgs.last().unwrap().1, b"I");

    // Pipelined: answers stay in order, the refusal sits between the two.
    let mut batch = query_msg("select 1");
    batch.extend(query_msg("delete from keep"));
    batch.extend(query_msg("select count(*) from keep"));
    c.send(&batch).await;
    let first = c.until(b'Z').await;
    assert_eq!(tags(&first), "TDCZ");
    let second = c.until(b'Z').await;
    assert_eq!(tags(&second), "EZ");
    assert!(first_error(&second).1.contains("delete-without-where"));
    let third = c.until(b'Z').await;
    assert_eq!(tags(&third), "TDCZ");
    assert_eq!(third[1].1[6..], *b"2");

    // Inside a transaction the refusal aborts it, as a server error would:
    // COMMIT then rolls back the insert made before it.
    c.query("begin; insert into keep values (3)").await;
    assert_eq!(c.until(b'Z').await.last().unwrap().1, b"T");
    c.query("truncate keep").await;
    let msgs = c.until(b'Z').await;
    assert_eq!(tags(&msgs), "EZ");
    assert_eq!(msgs.last().unwrap().1, b"E", "transaction failed");
    c.query("commit").await;
    let msgs = c.until(b'Z').await;
    assert_eq!(msgs.last().unwrap().1, b"I");

    // Extended protocol: Parse refused; Bind/Execute are skipped until Sync.
    let mut ext = tagged(b'P', b"\0delete from keep\0\0\0");
    ext.extend(tagged(b'B', b"\0\0\0\0\0\0\0\0"));
    ext.extend(tagged(b'E', b"\0\0\0\0\0"));
    ext.extend(tagged(b'S', b""));
    ext.extend(tagged(b'P', b"\0select count(*) from keep\0\0\0"));
    ext.extend(tagged(b'B', b"\0\0\0\0\0\0\0\0"));
    ext.extend(tagged(b'E', b"\0\0\0\0\0"));
    ext.extend(tagged(b'S', b""));
    c.send(&ext).await;
    let msgs = c.until(b'Z').await;
    assert_eq!(tags(&msgs), "EZ");
    assert!(first_error(&msgs).1.contains("DELETE without WHERE"));
    let msgs = c.until(b'Z').await;
    assert_eq!(tags(&msgs), "12DCZ");
    assert_eq!(msgs[2].1[6..], *b"2", "nothing was deleted");

    // Fast-path function calls bypass SQL text: refused.
    c.send(&tagged(b'F', b"\0\0\x08\x1e\0\0\0\0\0\0")).await;
    let msgs = c.until(b'Z').await;
    assert_eq!(tags(&msgs), "EZ");
    assert!(first_error(&msgs).1.contains("fast-path"));

    // A client encoding the parser cannot follow is refused before it is set.
    c.query("set client_encoding = 'SJIS'").await;
    let msgs = c.until(b'Z').await;
    assert!(first_error(&msgs).1.contains("client_encoding"));

    let rows = setup
        .simple_query("select count(*) from public.keep")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("2".to_owned())]]);
    setup.close().await;
    drop(app);
}

#[tokio::test]
async fn a_revoked_grant_ends_a_running_session_with_a_message() {
    let (pg, app) = app_server().await;
    let grant = tokio_util::sync::CancellationToken::new();
    let mut proxy = start_session_with(
        &PgProxy::new(),
        "granted",
        app,
        SystemTime::now() + Duration::from_secs(3600),
        Some(grant.clone()),
    )
    .await;
    let (addr, secret) = (proxy.addr, proxy.secret.expose().to_owned());
    let running =
        tokio::spawn(async move { psql(addr, &secret, &["-c", "select pg_sleep(30)"]).await });
    wait_until_running(&pg, "select pg_sleep(30)", true).await;
    let started = Instant::now();
    grant.cancel();
    let out = running.await.unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("your access grant on connection \"demo-pg\" was revoked"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(
        proxy.results.recv().await.unwrap(),
        Err(PgProxyError::SessionExpired)
    ));
    // The statement was cancelled upstream too.
    wait_until_running(&pg, "select pg_sleep(30)", false).await;
}
