//! A test OIDC token issuer: a real HTTP server on 127.0.0.1 serving discovery and a JWKS, with key rotation.
//!
//! It plays a workload identity issuer (GitHub Actions, GitLab CI) or an
//! external person IdP in end-to-end tests. It runs on its own thread with
//! its own tokio runtime, so plain `#[test]`s drive it synchronously. Keys are
//! RSA-2048 (RS256, what GitHub Actions uses), generated with the `openssl`
//! command because RSA key generation in an unoptimized test build is slow.
//! [`TestIssuer::rotate`] replaces the published key (the old one is gone
//! from the JWKS at once), as a provider rotating keys does.
//! [`TestIssuer::set_available`] makes every endpoint answer 503, to play
//! a provider that is down.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::BrokerProcess;

/// An RSA signing key with its public forms.
#[derive(Clone)]
pub struct RsaKey {
    /// Key id published in the JWKS and put in token headers.
    pub kid: String,
    /// PKCS#8 PEM private key.
    pub private_pem: Vec<u8>,
    /// SubjectPublicKeyInfo PEM public key.
    pub public_pem: Vec<u8>,
    /// The public JWK.
    pub jwk: Value,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the `openssl` command is needed to generate test RSA keys");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl RsaKey {
    /// A new RSA-2048 key with a random kid.
    pub fn generate() -> RsaKey {
        let private_pem = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        );
        let public_pem = openssl(&["pkey", "-pubout"], Some(&private_pem));
        let modulus = openssl(&["rsa", "-noout", "-modulus"], Some(&private_pem));
        let modulus = String::from_utf8(modulus).unwrap();
        let hex_n = modulus.trim().strip_prefix("Modulus=").unwrap();
        let n = hex::decode(hex_n).unwrap();
        let kid = format!("k-{:016x}", rand::random::<u64>());
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB",
        });
        RsaKey {
            kid,
            private_pem,
            public_pem,
            jwk,
        }
    }

    /// Signs `claims` (RS256, this key's kid).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with(&header, claims)
    }

    /// Signs `claims` with a caller-made header.
    pub fn sign_with(&self, header: &jsonwebtoken::Header, claims: &Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&self.private_pem).unwrap();
        jsonwebtoken::encode(header, claims, &key).unwrap()
    }
}

#[derive(Clone)]
struct IssuerState {
    url: String,
    /// Published keys; the first one signs.
    keys: Arc<Mutex<Vec<RsaKey>>>,
    available: Arc<AtomicBool>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

/// A running test issuer; stops when dropped.
pub struct TestIssuer {
    state: IssuerState,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestIssuer {
    /// Starts an issuer with one fresh key on `http://127.0.0.1:<port>`.
    pub fn start() -> TestIssuer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = IssuerState {
            url: format!("http://{addr}"),
            keys: Arc::new(Mutex::new(vec![RsaKey::generate()])),
            available: Arc::new(AtomicBool::new(true)),
            jwks_hits: Arc::new(AtomicUsize::new(0)),
            discovery_hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        TestIssuer {
            state,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The issuer URL (`iss` of its tokens), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key that signs now.
    pub fn key(&self) -> RsaKey {
        self.state.keys.lock().unwrap()[0].clone()
    }

    /// Replaces the signing key with a new one; the old key is removed from
    /// the JWKS at once. Returns the old key (to sign tokens it no longer
    /// vouches for).
    pub fn rotate(&self) -> RsaKey {
        let new = RsaKey::generate();
        std::mem::replace(&mut self.state.keys.lock().unwrap()[0], new)
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        self.key().sign(claims)
    }

    /// Valid claims for `sub` and `aud`, issued now, expiring in 10 minutes.
    pub fn claims(&self, aud: &str, sub: &str) -> Value {
        let now = now();
        json!({"iss": self.url(), "aud": aud, "sub": sub,
               "iat": now, "nbf": now, "exp": now + 600,
               "jti": format!("{:x}", rand::random::<u64>())})
    }

    /// When false, every endpoint answers 503 (a provider that is down).
    pub fn set_available(&self, up: bool) {
        self.state.available.store(up, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// How many times discovery was fetched.
    pub fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response()
}

async fn discovery(State(s): State<IssuerState>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if !s.available.load(Ordering::SeqCst) {
        return unavailable();
    }
    let u = &s.url;
    Json(json!({
        "issuer": u,
        "jwks_uri": format!("{u}/jwks"),
        "token_endpoint": format!("{u}/token"),
        "device_authorization_endpoint": format!("{u}/device/code"),
        "revocation_endpoint": format!("{u}/revoke"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

async fn jwks(State(s): State<IssuerState>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if !s.available.load(Ordering::SeqCst) {
        return unavailable();
    }
    let keys: Vec<Value> = s
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk.clone())
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

/// Starts `hoop-broker serve` with a self-signed TLS port, no connections,
/// and `identity` as the whole identity part of the config (e.g. an
/// `[identity]` table naming an external issuer). Waits until it listens.
pub fn start_broker_with_identity(identity: &str) -> BrokerProcess {
    crate::start_broker_config(&[], "", identity)
}

/// One `token.refused` audit event: its row id and parsed detail.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Row id (increasing).
    pub id: i64,
    /// The detail object (`class`, `iss`, `sub`, `ip`, `method`, `path`, `message`).
    pub detail: Value,
    /// The detail as stored.
    pub raw: String,
}

impl BrokerProcess {
    /// The `token.refused` events in the broker's store with id > `after`,
    /// oldest first (read straight from the SQLite file).
    pub fn refusals_after(&self, after: i64) -> Vec<Refusal> {
        let db = rusqlite::Connection::open_with_flags(
            self.data_dir.join("hoop.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = db
            .prepare(
                "SELECT id, detail FROM events WHERE kind = 'token.refused' AND id > ?1 \
                 ORDER BY id",
            )
            .unwrap();
        stmt.query_map([after], |r| {
            let id: i64 = r.get(0)?;
            let raw: String = r.get(1)?;
            Ok((id, raw))
        })
        .unwrap()
        .map(|row| {
            let (id, raw) = row.unwrap();
            Refusal {
                id,
                detail: serde_json::from_str(&raw).unwrap_or(Value::Null),
                raw,
            }
        })
        .collect()
    }
}
