//! End-to-end harness: the real `hoopctl` and `hoop-broker` binaries, a real
//! PostgreSQL, real TLS, the real device flow, on 127.0.0.1 with OS-chosen
//! ports, each test in its own temp dirs.
//!
//! - [`bin`] finds the binaries cargo built next to the test executable
//!   (run `cargo build --workspace --bins` first; the README's test command does).
//! - [`BrokerProcess`] writes a config, starts `hoop-broker serve`, waits for
//!   its "listening on" line (readiness, not a sleep) and keeps all its output
//!   in a file so tests can search it for secrets.
//! - [`User`] is one person with their own `HOOP_CONFIG_DIR`; [`User::login`]
//!   runs `hoopctl login` and approves the device code by POSTing the form to
//!   the verification URI, exactly as a script would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use hoop_broker::dev::postgres::ThrowawayPostgres;
pub use hoop_shared::Secret;

pub mod issuer;

/// Path of a workspace binary built by cargo (same profile as the tests).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// Output of a finished command, as text.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// The exit code (panics on death by signal).
    pub fn code(&self) -> i32 {
        self.status.code().expect("exited normally")
    }
    /// Panics with all output unless the command succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.status.success(), "command failed: {self:#?}");
        self
    }
}

/// A connection entry for the broker config.
#[derive(Debug, Clone)]
pub struct PgConnection {
    /// Name.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Upstream role.
    pub user: String,
    /// Upstream password (passed to the broker through its environment).
    pub password: Secret,
    /// Groups allowed.
    pub allow_groups: Vec<String>,
}

/// A `hoop-broker serve` process.
pub struct BrokerProcess {
    child: Child,
    /// Base URL.
    pub url: String,
    /// The generated CA certificate file.
    pub ca_file: PathBuf,
    /// The broker's data dir.
    pub data_dir: PathBuf,
    /// File holding everything the broker printed.
    pub log_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `hoop-broker serve` with the built-in identity provider (users
/// alice/engineering, bob/sre) and the given connections.
pub fn start_broker(connections: &[PgConnection]) -> BrokerProcess {
    start_broker_with(connections, "")
}

/// Like [`start_broker`], with extra top-level TOML appended before the
/// connections.
pub fn start_broker_with(connections: &[PgConnection], extra: &str) -> BrokerProcess {
    start_broker_config(connections, extra, BUILTIN_IDENTITY)
}

/// Copies a child's stdout and stderr into `log_file` and returns the rest
/// of the first stdout line starting with `prefix` (None if the child exits
/// first or 60 s pass).
pub fn wait_for_line(child: &mut Child, log_file: &Path, prefix: &str) -> Option<String> {
    let (tx, rx) = mpsc::channel::<String>();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log2 = log.try_clone().unwrap();
    std::thread::spawn(move || pump(stdout, log, Some(tx)));
    std::thread::spawn(move || pump(stderr, log2, None));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Some(rest.trim().to_owned());
                }
            }
            Err(_) => return None,
        }
    }
}

fn pump(from: impl std::io::Read, mut to: std::fs::File, tx: Option<mpsc::Sender<String>>) {
    use std::io::Write as _;
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(to, "{line}");
        if let Some(tx) = &tx {
            let _ = tx.send(line);
        }
    }
}

impl BrokerProcess {
    /// Everything the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        terminate(&mut self.child)
    }
}

/// SIGTERM, then wait (SIGKILL after 20 s).
pub fn terminate(child: &mut Child) -> ExitStatus {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    wait_deadline(child, Duration::from_secs(20))
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One person using hoopctl, with their own config dir.
pub struct User {
    /// Dev user name.
    pub name: String,
    /// `HOOP_CONFIG_DIR`.
    pub config_dir: PathBuf,
    broker_url: String,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl User {
    /// A user of `broker` with an empty config dir.
    pub fn new(name: &str, broker: &BrokerProcess) -> User {
        let dir = tempfile::tempdir().unwrap();
        User {
            name: name.into(),
            config_dir: dir.path().join("hoop"),
            broker_url: broker.url.clone(),
            ca_file: broker.ca_file.clone(),
            _dir: dir,
        }
    }

    /// A `hoopctl` command for this user.
    pub fn hoopctl(&self) -> Command {
        let mut c = Command::new(bin("hoopctl"));
        c.env("HOOP_CONFIG_DIR", &self.config_dir)
            .env_remove("HOOP_TOKEN")
            .env_remove("HOOP_BROKER")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Runs hoopctl with `args` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.hoopctl().args(args).output().unwrap())
    }

    /// `hoopctl login --broker URL --ca-file CA --no-browser`, approving the
    /// device code as this user through the verification URI.
    pub fn login(&self) -> Run {
        self.login_with(&[
            "login",
            "--broker",
            &self.broker_url,
            "--ca-file",
            &self.ca_file.to_string_lossy(),
            "--no-browser",
        ])
    }

    /// Runs a login command and approves the code it prints as this user.
    pub fn login_with(&self, args: &[&str]) -> Run {
        let mut cmd = self.hoopctl();
        cmd.args(args);
        drive_login(cmd, &self.broker_url, &self.ca_file, &self.name)
    }
}

/// Runs a `hoopctl login` command, reads the user code it prints, approves it
/// as `user` through the verification URI, and waits for the login to finish.
pub fn drive_login(mut cmd: Command, broker_url: &str, ca_file: &Path, user: &str) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let collect = |r: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>| {
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    let out = collect(Box::new(child.stdout.take().unwrap()), tx.clone());
    let err = collect(Box::new(child.stderr.take().unwrap()), tx);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut code = None;
    while code.is_none() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok(line) => code = find_user_code(&line),
            Err(_) => break,
        }
    }
    if let Some(code) = &code {
        approve_device_code(broker_url, ca_file, code, user);
    }
    let status = wait_deadline(&mut child, Duration::from_secs(60));
    let run = Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        code.is_some(),
        "hoopctl login printed no user code: {run:#?}"
    );
    run
}

/// Finds a device user code (`XXXX-XXXX`) in a line of output.
pub fn find_user_code(line: &str) -> Option<String> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            w.len() == 9
                && w.as_bytes()[4] == b'-'
                && w.chars()
                    .filter(|c| *c != '-')
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// Approves `code` as `user` by POSTing the verification form, as a script would.
pub fn approve_device_code(broker_url: &str, ca_file: &Path, code: &str, user: &str) {
    let ca = std::fs::read(ca_file).unwrap();
    let client = reqwest::blocking_client(&ca);
    let resp = client(
        &format!("{broker_url}/idp/device"),
        &[("user_code", code), ("username", user)],
    );
    assert!(resp.0 < 300, "approving the device code failed: {resp:?}");
}

mod reqwest {
    //! A tiny blocking form POST over the async client (the tests crate
    //! does not enable reqwest's blocking feature).
    pub fn blocking_client(ca_pem: &[u8]) -> impl Fn(&str, &[(&str, &str)]) -> (u16, String) {
        let ca = ::reqwest::Certificate::from_pem(ca_pem).unwrap();
        move |url: &str, form: &[(&str, &str)]| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = ::reqwest::Client::builder()
                .add_root_certificate(ca.clone())
                .pool_idle_timeout(hoop_broker::server::CLIENT_POOL_IDLE)
                .build()
                .unwrap();
            rt.block_on(async {
                let r = client.post(url).form(form).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            })
        }
    }
}

/// Waits for a child with a deadline, killing it after.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file under `dir`, read as bytes, with its path.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(mut f) = std::fs::File::open(&p) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            out.push((p, buf));
        }
    }
    out
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A throwaway PostgreSQL with an `app` role (random password) owning `demo`.
/// Tests are plain `#[test]`s driving processes; this owns the small tokio
/// runtime the server helper needs.
pub struct DemoDb {
    /// The server (dropped before the runtime).
    pub pg: ThrowawayPostgres,
    /// The app role's password.
    pub password: Secret,
    /// Runtime for async helpers.
    pub rt: tokio::runtime::Runtime,
}

impl DemoDb {
    /// Starts the server, creates the role and database, loads the demo schema.
    pub fn start() -> DemoDb {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let password = Secret::generate(24);
        let pg = rt.block_on(async {
            let pg = ThrowawayPostgres::start()
                .await
                .expect("throwaway postgres");
            let app = pg
                .create_app_database("app", &password, "demo")
                .await
                .expect("app database");
            hoop_broker::dev::postgres::load_demo_schema(&app)
                .await
                .expect("demo schema");
            pg
        });
        DemoDb { pg, password, rt }
    }

    /// A connection entry pointing at this database.
    pub fn connection(&self, name: &str, groups: &[&str]) -> PgConnection {
        PgConnection {
            name: name.into(),
            host: self.pg.host().into(),
            port: self.pg.port(),
            database: "demo".into(),
            user: "app".into(),
            password: self.password.clone(),
            allow_groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }
}

impl User {
    /// Points this user's hoopctl at the broker without logging in.
    pub fn configure(&self) {
        hoop_shared::client_config::ClientConfig {
            broker_url: Some(self.broker_url.clone()),
            ca_file: Some(self.ca_file.clone()),
        }
        .save(&self.config_dir)
        .unwrap();
    }
}

/// What a raw Postgres client saw.
#[derive(Debug, Default)]
pub struct RawPgSession {
    /// Every byte received from the server side.
    pub received: Vec<u8>,
    /// Messages of ErrorResponses, in order.
    pub errors: Vec<String>,
    /// First column of each DataRow, as text.
    pub values: Vec<String>,
}

/// Speaks the Postgres protocol by hand to `addr` (startup, cleartext/any
/// password request answered with `password`, then `queries`), recording
/// every byte received. Stops at the first FATAL error.
pub fn raw_pg_session(addr: &str, password: &str, queries: &[&str]) -> RawPgSession {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = RawPgSession::default();
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for kv in [
        "user",
        "app",
        "database",
        "demo",
        "application_name",
        "raw-test",
    ] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    s.write_all(&msg).unwrap();
    let send = |s: &mut std::net::TcpStream, tag: u8, payload: &[u8]| {
        let mut m = vec![tag];
        m.extend_from_slice(&((payload.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(payload);
        s.write_all(&m).unwrap();
    };
    let mut queries = queries.iter();
    loop {
        let mut head = [0u8; 5];
        if s.read_exact(&mut head).is_err() {
            return out;
        }
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len.saturating_sub(4)];
        s.read_exact(&mut payload).unwrap();
        out.received.extend_from_slice(&head);
        out.received.extend_from_slice(&payload);
        match head[0] {
            b'R' if payload.get(..4) == Some(&3i32.to_be_bytes()) => {
                let mut p = password.as_bytes().to_vec();
                p.push(0);
                send(&mut s, b'p', &p);
            }
            b'E' => {
                let mut fatal = false;
                for field in payload.split(|b| *b == 0) {
                    if let Some((&code, text)) = field.split_first() {
                        let text = String::from_utf8_lossy(text).into_owned();
                        if code == b'M' {
                            out.errors.push(text.clone());
                        }
                        if code == b'S' && text == "FATAL" {
                            fatal = true;
                        }
                    }
                }
                if fatal {
                    return out;
                }
            }
            b'D' if payload.len() >= 6 => {
                let n = i32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
                if let Ok(n) = usize::try_from(n) {
                    let v = payload.get(6..6 + n).unwrap_or_default();
                    out.values.push(String::from_utf8_lossy(v).into_owned());
                }
            }
            b'Z' => match queries.next() {
                Some(q) => {
                    let mut p = q.as_bytes().to_vec();
                    p.push(0);
                    send(&mut s, b'Q', &p);
                }
                None => {
                    send(&mut s, b'X', &[]);
                    return out;
                }
            },
            _ => {}
        }
    }
}

/// Claims of a hand-made token for the built-in provider.
pub fn dev_claims(
    broker: &BrokerProcess,
    user: &str,
    groups: &[&str],
    exp_offset: i64,
) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    serde_json::json!({
        "iss": format!("{}/idp", broker.url),
        "aud": "hoopctl",
        "sub": format!("dev:{user}"),
        "preferred_username": user,
        "groups": groups,
        "iat": now - 7200,
        "nbf": now - 7200,
        "exp": now + exp_offset,
    })
}

/// Signs `claims` with a PKCS#8 PEM key, as the key's JWKS entry says (kid, alg).
pub fn sign_token(claims: &serde_json::Value, key_pem: &[u8], kid: &str, alg: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let (alg, key) = match alg {
        "EdDSA" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(key_pem).unwrap()),
        "RS256" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(key_pem).unwrap(),
        ),
        "ES256" => (Algorithm::ES256, EncodingKey::from_ec_pem(key_pem).unwrap()),
        other => panic!("unexpected alg {other}"),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

impl BrokerProcess {
    /// The built-in provider's first JWKS key: (kid, alg).
    pub fn jwks_key(&self) -> (String, String) {
        let ca = ::reqwest::Certificate::from_pem(&std::fs::read(&self.ca_file).unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let jwks: serde_json::Value = rt.block_on(async {
            ::reqwest::Client::builder()
                .add_root_certificate(ca)
                .pool_idle_timeout(hoop_broker::server::CLIENT_POOL_IDLE)
                .build()
                .unwrap()
                .get(format!("{}/idp/jwks", self.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        let k = &jwks["keys"][0];
        let alg = k["alg"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| match k["kty"].as_str() {
                Some("OKP") => "EdDSA".into(),
                Some("EC") => "ES256".into(),
                _ => "RS256".into(),
            });
        (k["kid"].as_str().unwrap().to_owned(), alg)
    }

    /// The built-in provider's signing key (PEM), from the data dir.
    pub fn idp_key_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("idp").join("signing-key.pem")).unwrap()
    }
}

/// A loopback port nothing listens on (bound by the OS, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails if `secret` occurs in any file under `dir`.
pub fn assert_not_in_dir(dir: &Path, secret: &str) {
    for (path, bytes) in files_under(dir) {
        assert!(
            !contains_bytes(&bytes, secret.as_bytes()),
            "secret found in {}",
            path.display()
        );
    }
}

/// A demo database, a broker with `demo-pg` open to `engineering`, and
/// `user` logged in.
pub fn logged_in(user: &str) -> (DemoDb, BrokerProcess, User) {
    let db = DemoDb::start();
    let broker = start_broker(&[db.connection("demo-pg", &["engineering"])]);
    let u = User::new(user, &broker);
    u.login().assert_ok();
    (db, broker, u)
}

/// Calls `f` every `every` until it returns `Some` (that value), for at
/// most `limit`; `None` when time ran out. The one polling loop of the
/// suite: prefer [`poll_until`], which fails the test on time-out.
pub fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Calls `f` every 100 ms until it returns `Some`, for at most `limit`;
/// fails the test naming `what` when time runs out.
pub fn poll_until<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(limit, Duration::from_millis(100), f)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// The built-in identity provider section used by [`start_broker`]: users
/// alice (engineering) and bob (sre), polling every second.
pub const BUILTIN_IDENTITY: &str = "[identity.builtin]\npoll_interval = \"1s\"\nusers = [\n  \
     { name = \"alice\", groups = [\"engineering\"] },\n  \
     { name = \"bob\", groups = [\"sre\"] },\n]\n";

/// Starts `hoop-broker serve` with `extra` top-level TOML, `identity` as
/// the whole identity part of the config (after `[tls]`, before the
/// connections; [`BUILTIN_IDENTITY`] is the default), and the connections.
pub fn start_broker_config(
    connections: &[PgConnection],
    extra: &str,
    identity: &str,
) -> BrokerProcess {
    start_broker_config_env(connections, extra, identity, &[])
}

/// Like [`start_broker_config`], with extra environment variables for the
/// broker process (e.g. `SSL_CERT_FILE`, its system trust store).
pub fn start_broker_config_env(
    connections: &[PgConnection],
    extra: &str,
    identity: &str,
    env: &[(&str, &Path)],
) -> BrokerProcess {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let q = |s: &str| format!("{s:?}");
    let mut cfg = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {}\n{extra}\n[tls]\nself_signed = true\n\n{identity}\n",
        q(&data_dir.to_string_lossy()),
    );
    let mut cmd = Command::new(bin("hoop-broker"));
    for (i, c) in connections.iter().enumerate() {
        let env = format!("HOOP_TEST_PG_PASSWORD_{i}");
        cfg.push_str(&format!(
            "\n[[connections]]\nname = {}\ntype = \"postgres\"\nhost = {}\nport = {}\n\
             database = {}\nuser = {}\npassword_env = {}\nallow_groups = {:?}\n",
            q(&c.name),
            q(&c.host),
            c.port,
            q(&c.database),
            q(&c.user),
            q(&env),
            c.allow_groups,
        ));
        cmd.env(env, c.password.expose());
    }
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, cfg).unwrap();
    let log_file = dir.path().join("broker.log");
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HOOP_LOG", "debug")
        .env_remove("HOOP_CONFIG_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let url =
        wait_for_line(&mut child, &log_file, "hoop-broker listening on ").unwrap_or_else(|| {
            panic!(
                "broker did not start:\n{}",
                std::fs::read_to_string(&log_file).unwrap_or_default()
            )
        });
    BrokerProcess {
        child,
        url,
        ca_file: data_dir.join("ca.pem"),
        data_dir,
        log_file,
        _dir: dir,
    }
}

/// Like [`logged_in`], with extra TOML fields on the `demo-pg` connection
/// (e.g. `guardrails = ["no-destructive"]`). The connection is written as an
/// inline table through [`start_broker_with`], its password in a file; the
/// returned dir holds that file and must outlive the broker.
pub fn logged_in_with(
    user: &str,
    connection_fields: &str,
) -> (DemoDb, BrokerProcess, User, tempfile::TempDir) {
    let (db, broker, dir) = start_demo_broker(connection_fields, "");
    let u = User::new(user, &broker);
    u.login().assert_ok();
    (db, broker, u, dir)
}

/// A demo database and a broker whose `demo-pg` connection (open to
/// `engineering`) has the extra `connection_fields`, with `extra` TOML after
/// the connections (rule sets, `policy_file`, ...). The returned dir holds the
/// connection's password file and must outlive the broker.
pub fn start_demo_broker(
    connection_fields: &str,
    extra: &str,
) -> (DemoDb, BrokerProcess, tempfile::TempDir) {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("demo-pg.password");
    std::fs::write(&password_file, db.password.expose()).unwrap();
    let c = db.connection("demo-pg", &["engineering"]);
    let q = |s: &str| format!("{s:?}");
    let sep = if connection_fields.is_empty() {
        ""
    } else {
        ", "
    };
    let config = format!(
        "connections = [{{ name = {}, type = \"postgres\", host = {}, port = {}, \
         database = {}, user = {}, password_file = {}, allow_groups = {:?}{sep}{connection_fields} }}]\n{extra}",
        q(&c.name),
        q(&c.host),
        c.port,
        q(&c.database),
        q(&c.user),
        q(&password_file.to_string_lossy()),
        c.allow_groups,
    );
    let broker = start_broker_with(&[], &config);
    (db, broker, dir)
}

/// A blocking client for the broker's REST API (trusts the broker's CA).
pub struct Api {
    /// The runtime the calls run on.
    pub rt: tokio::runtime::Runtime,
    /// The HTTP client.
    pub http: ::reqwest::Client,
    /// Broker base URL.
    pub url: String,
}

impl Api {
    /// A client for `broker`.
    pub fn new(broker: &BrokerProcess) -> Api {
        let ca =
            ::reqwest::Certificate::from_pem(&std::fs::read(&broker.ca_file).unwrap()).unwrap();
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: ::reqwest::Client::builder()
                .add_root_certificate(ca)
                .pool_idle_timeout(hoop_broker::server::CLIENT_POOL_IDLE)
                .build()
                .unwrap(),
            url: broker.url.clone(),
        }
    }

    /// `method path` with an optional raw `Authorization` value and JSON body:
    /// (status, body as JSON, or as a JSON string when it is not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let mut req = self
                .http
                .request(method.parse().unwrap(), format!("{}{path}", self.url));
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            )
        })
    }

    /// `method path` with a bearer token.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.request(method, path, Some(&format!("Bearer {token}")), body)
    }
}

/// A valid token from the broker's built-in provider, signed with its key.
pub fn dev_token(broker: &BrokerProcess, user: &str, groups: &[&str]) -> String {
    let (kid, alg) = broker.jwks_key();
    sign_token(
        &dev_claims(broker, user, groups, 3600),
        &broker.idp_key_pem(),
        &kid,
        &alg,
    )
}

/// A policy under which `demo-pg` needs a justification and one approval from
/// `sre` for `engineering` (15 minutes by default, at most 1 hour); `admins`
/// may change it.
pub const JIT_POLICY: &str = r#"
groups = ["engineering", "sre", "admins"]
admins = ["admins"]

[[rules]]
name = "engineering-demo-jit"
connections = ["demo-pg"]
groups = ["engineering"]
access = "approval"
justification = true
approvers = { groups = ["sre"] }
approvals = 1
default_duration = "15m"
max_duration = "1h"
"#;

/// A command-less `hoopctl connect` serving a local port, stopped on drop.
pub struct Tunnel {
    /// The hoopctl process.
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The one-time secret (PGPASSWORD) it printed.
    pub secret: String,
}

impl Tunnel {
    /// A libpq-style connection string for tokio-postgres.
    pub fn conninfo(&self) -> String {
        let (host, port) = self.addr.split_once(':').unwrap();
        format!(
            "host={host} port={port} user=app dbname=demo password={} sslmode=disable",
            self.secret
        )
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hoopctl connect CONNECTION` without a command and reads the
/// address and secret it prints.
pub fn open_tunnel(user: &User, connection: &str) -> Tunnel {
    open_tunnel_with(user, connection, &[])
}

/// [`open_tunnel`] with extra `hoopctl connect` arguments.
pub fn open_tunnel_with(user: &User, connection: &str, extra: &[&str]) -> Tunnel {
    let mut cmd = user.hoopctl();
    cmd.args(["connect", connection, "--reason", "e2e test"])
        .args(extra);
    open_tunnel_cmd(cmd)
}

/// Runs a command-less `hoopctl connect ...` command and reads the address
/// and secret it prints.
pub fn open_tunnel_cmd(mut cmd: Command) -> Tunnel {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("Listening on ")
        .unwrap_or_else(|| panic!("first line names the address: {first}"))
        .to_owned();
    let mut secret = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(v) = line.trim().strip_prefix("export PGPASSWORD=") {
            secret = Some(v.trim_matches('\'').to_owned());
        }
        if line.trim() == "psql" {
            break;
        }
    }
    Tunnel {
        child,
        addr,
        secret: secret.expect("a PGPASSWORD line"),
    }
}

impl BrokerProcess {
    /// Stops the broker (SIGKILL when `kill`, else SIGTERM and a wait) and
    /// starts it again with the same config file, data dir and port, so
    /// logins and the CA path stay valid. Connection passwords must come from
    /// files (`password_file`): the first start's environment is not kept.
    pub fn restart(&mut self, kill: bool) {
        if kill {
            let _ = self.child.kill();
            let _ = self.child.wait();
        } else {
            terminate(&mut self.child);
        }
        let config = self.data_dir.parent().unwrap().join("broker.toml");
        let port = self.url.rsplit(':').next().unwrap().to_owned();
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(bin("hoop-broker"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("HOOP_LOG", "debug")
            .env_remove("HOOP_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = wait_for_line(&mut child, &self.log_file, "hoop-broker listening on ")
            .unwrap_or_else(|| panic!("broker did not restart:\n{}", self.log()));
        assert_eq!(url, self.url, "restarted on the same port");
        self.child = child;
    }
}

/// Removes on drop the demo cluster `hoop-broker dev` printed as `kept in
/// DIR` in `log`, when it lies outside `inside` (as root, dev keeps it under
/// the system temp dir, where the `postgres` user can reach it).
pub struct KeptCluster(Option<PathBuf>);

impl KeptCluster {
    /// Reads the cluster's dir from dev's summary in `log`.
    pub fn from_log(log: &Path, inside: &Path) -> KeptCluster {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let dir = text.lines().find_map(|l| {
            l.split_once(", kept in ")
                .map(|(_, d)| PathBuf::from(d.trim()))
        });
        KeptCluster(dir.filter(|d| !d.starts_with(inside)))
    }
}

impl Drop for KeptCluster {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A real OpenSSH sshd for the SSH tests.
pub mod sshd;
