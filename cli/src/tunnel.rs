//! The local end of a session: a listener on 127.0.0.1 whose every connection
//! is carried to the broker over its own tunnel.
//!
//! The local port is reachable by every process on the machine, so a new
//! local connection first proves itself to hoopctl ([`crate::local_gate`]:
//! the Postgres startup with the session's one-time secret, or the SSH
//! identification line) within [`LOCAL_STARTUP_TIMEOUT`]; until then it costs
//! the broker nothing. Every connection is accepted at once (none waits in the
//! kernel's queue); at most [`MAX_PENDING_LOCAL`] may be in their startup, the
//! oldest being shed for a newcomer; at most `--max-local-connections` are
//! relayed at once, one more is refused with a clear error. The threat model
//! is in docs/tunnel.md.
//!
//! Per proven connection: a fresh HTTP/1.1 `GET /v1/sessions/{id}/tunnel` with
//! `Upgrade: hoop-tunnel/1` and the bearer token; on `101`, one
//! [`ClientHello`] out and one [`ServerHello`] back
//! (`hoop_shared::tunnel`); on `Ready`, bytes are relayed both ways with
//! `copy_bidirectional`, which forwards a half-close (one side's EOF becomes a
//! shutdown of the other side's write half) instead of dropping the connection.
//!
//! If the tunnel cannot be opened, the reason goes to stderr and, for a
//! Postgres connection, to the local client as a Postgres `FATAL` error
//! ([`crate::pg_refusal`]), so psql shows it too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hoop_shared::api::{ConnectionKind, ErrorCode};
use hoop_shared::tunnel::{
    ClientHello, FrameError, HANDSHAKE_TIMEOUT, PROTOCOL_VERSION, RefusalCode, ServerHello,
    UPGRADE_PROTOCOL, read_frame, write_frame,
};
use pgwire::messages::Message as _;
use reqwest::StatusCode;
use reqwest::header::{CONNECTION, UPGRADE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument as _;

use crate::api::{ApiError, USER_AGENT};
use crate::auth::{AuthError, Credentials};
use crate::local_gate::{self, CancelKeys, GateError, Opening};
use crate::pg_refusal;

/// Upper bound for getting from "local client connected" to "tunnel ready":
/// the TCP/TLS connect, the upgrade, and the hello exchange.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10 + HANDSHAKE_TIMEOUT.as_secs());

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// No valid token.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The broker refused the upgrade request or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The broker answered, but not with `101 Switching Protocols`.
    #[error(
        "the broker did not open a tunnel (HTTP {0}); is it a hoop broker of a compatible version?"
    )]
    NoUpgrade(StatusCode),
    /// The upgraded stream broke during the hello exchange.
    #[error("tunnel handshake with the broker failed: {0}")]
    Handshake(String),
    /// The broker refused after the upgrade.
    #[error("{message}")]
    Refused {
        /// Why.
        code: RefusalCode,
        /// The broker's words.
        message: String,
    },
    /// The whole opening took too long.
    #[error("the broker did not open the tunnel within {}s", OPEN_TIMEOUT.as_secs())]
    Timeout,
}

impl TunnelError {
    /// The SQLSTATE a Postgres client should see for this failure, and a hint.
    fn postgres_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            TunnelError::Auth(AuthError::NotLoggedIn { .. })
            | TunnelError::Api(ApiError::Unauthorized { .. }) => (
                pg_refusal::SQLSTATE_AUTH,
                Some("run `hoopctl login`, then connect again"),
            ),
            TunnelError::Auth(
                AuthError::Refused { .. } | AuthError::SourceExpired { .. } | AuthError::Source(_),
            ) => (pg_refusal::SQLSTATE_AUTH, None),
            TunnelError::Api(ApiError::Broker {
                code: ErrorCode::SessionEnded | ErrorCode::UnknownSession,
                ..
            }) => (
                pg_refusal::SQLSTATE_REJECTED,
                Some("open a new session with `hoopctl connect`"),
            ),
            TunnelError::Api(ApiError::Unreachable { .. } | ApiError::Tls { .. })
            | TunnelError::Timeout
            | TunnelError::Handshake(_) => (pg_refusal::SQLSTATE_UNREACHABLE, None),
            _ => (pg_refusal::SQLSTATE_REJECTED, None),
        }
    }
}

/// What every tunnel of one session needs.
#[derive(Debug)]
pub struct TunnelTarget {
    /// Tokens (refreshed as needed) and the API client.
    pub credentials: Arc<Credentials>,
    /// The session the tunnels belong to.
    pub session_id: String,
    /// Connection name (for messages).
    pub connection: String,
    /// Protocol spoken through the tunnel.
    pub kind: ConnectionKind,
    /// For ssh: the one-time public key sent in every hello (`crate::ssh`).
    pub ssh_public_key: Option<String>,
}

/// Opens one tunnel and completes the hello exchange.
pub async fn open(
    target: &TunnelTarget,
    local_peer: Option<SocketAddr>,
) -> Result<reqwest::Upgraded, TunnelError> {
    tokio::time::timeout(OPEN_TIMEOUT, open_untimed(target, local_peer))
        .await
        .map_err(|_| TunnelError::Timeout)?
}

async fn open_untimed(
    target: &TunnelTarget,
    local_peer: Option<SocketAddr>,
) -> Result<reqwest::Upgraded, TunnelError> {
    let token = target.credentials.access_token().await?;
    let api = target.credentials.api();
    let url = api.endpoint(&["v1", "sessions", &target.session_id, "tunnel"]);
    let resp = api
        .tunnel_http()
        .get(url)
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, UPGRADE_PROTOCOL)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| api.transport_error(&e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        if resp.status().is_success() {
            return Err(TunnelError::NoUpgrade(resp.status()));
        }
        let e = api.error_from_response(resp).await;
        return Err(match target.credentials.explain_unauthorized(e) {
            AuthError::Api(e) => TunnelError::Api(e),
            other => TunnelError::Auth(other),
        });
    }
    let mut stream = resp
        .upgrade()
        .await
        .map_err(|e| TunnelError::Handshake(crate::api::root_cause(&e)))?;
    let hello = ClientHello {
        version: PROTOCOL_VERSION,
        client: USER_AGENT.to_owned(),
        local_peer: local_peer.map(|p| p.to_string()),
        ssh_public_key: target.ssh_public_key.clone(),
    };
    let handshake = |e: FrameError| TunnelError::Handshake(e.to_string());
    write_frame(&mut stream, &hello).await.map_err(handshake)?;
    match read_frame::<_, ServerHello>(&mut stream)
        .await
        .map_err(handshake)?
    {
        ServerHello::Ready { .. } => Ok(stream),
        ServerHello::Refused { code, message } => Err(TunnelError::Refused { code, message }),
    }
}

/// How long a new local connection has to prove itself (the Postgres startup
/// with the one-time secret, or the SSH identification line) before hoopctl
/// closes it. No broker connection is opened before that.
pub const LOCAL_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Local connections still proving themselves at once. When another arrives,
/// the oldest of them is closed: a flood of idle sockets delays nobody who
/// completes a startup in less time than it takes the flood to open this many.
pub const MAX_PENDING_LOCAL: usize = 256;

/// SQLSTATE `53300` too_many_connections.
const SQLSTATE_TOO_MANY: &str = "53300";

/// What the local listener admits (see [`crate::local_gate`]).
#[derive(Debug, Clone)]
pub struct LocalGate {
    /// Local connections relayed at once; one more is refused with a clear error.
    pub max_connections: usize,
    /// Deadline for a new connection's startup.
    pub startup_timeout: Duration,
    /// Most connections in their startup at once (the oldest is shed).
    pub max_pending: usize,
    /// Postgres: the session's one-time secret, checked by hoopctl itself.
    pub secret: Option<hoop_shared::Secret>,
}

impl LocalGate {
    /// The defaults, with this connection limit and (Postgres) secret.
    pub fn new(max_connections: usize, secret: Option<hoop_shared::Secret>) -> LocalGate {
        LocalGate {
            max_connections: max_connections.max(1),
            startup_timeout: LOCAL_STARTUP_TIMEOUT,
            max_pending: MAX_PENDING_LOCAL,
            secret,
        }
    }
}

/// The kernel's queue of connections not yet accepted (capped by
/// `net.core.somaxconn`). hoopctl accepts as fast as connections come, so
/// this only absorbs a burst; the default of 128 overflowed under one, and a
/// connection that overflows waits for the kernel's 1 s SYN-ACK retry.
const LOCAL_BACKLOG: u32 = 4096;

/// Binds the local listener on 127.0.0.1:`port` (0: a free port) with a
/// backlog that absorbs a burst of connections.
pub fn bind_local(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(LOCAL_BACKLOG)
}

/// State shared by the accept loop and the connection tasks of one listener.
struct Listener {
    target: Arc<TunnelTarget>,
    gate: LocalGate,
    /// One permit per relayed connection.
    slots: Arc<Semaphore>,
    /// Connections in their startup, oldest first, with the handle that closes them.
    pending: std::sync::Mutex<VecDeque<(u64, AbortHandle)>>,
    cancel_keys: CancelKeys,
}

impl Listener {
    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, AbortHandle)>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Accepts local connections until the returned future is dropped; each
/// proves itself to hoopctl ([`crate::local_gate`]) within the gate's
/// deadline, then is relayed over its own tunnel. Every connection is
/// accepted at once (none waits in the kernel's queue); the oldest unproven
/// one is shed when too many are pending. Dropping the future aborts all
/// connection tasks (they live in a [`JoinSet`] owned here).
pub async fn serve(listener: TcpListener, target: Arc<TunnelTarget>, gate: LocalGate) {
    let shared = Arc::new(Listener {
        target,
        slots: Arc::new(Semaphore::new(gate.max_connections)),
        gate,
        pending: std::sync::Mutex::new(VecDeque::new()),
        cancel_keys: CancelKeys::default(),
    });
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    next_id += 1;
                    let id = next_id;
                    let span = tracing::info_span!("local_connection", %peer);
                    // Under the lock, so a task cannot leave the queue before it is in it.
                    let mut pending = shared.pending();
                    while pending.len() >= shared.gate.max_pending {
                        let Some((_, oldest)) = pending.pop_front() else { break };
                        oldest.abort();
                        tracing::debug!("shed the oldest local connection still in its startup");
                    }
                    let handle = tasks.spawn(
                        handle_local(socket, peer, id, Arc::clone(&shared)).instrument(span),
                    );
                    pending.push_back((id, handle));
                }
                Err(e) => {
                    // EMFILE and friends: say so and back off instead of spinning.
                    tracing::warn!("accepting a local connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!("a local connection task panicked: {e}");
                }
            }
        }
    }
}

/// One local connection: the gate, then a slot, then the tunnel.
async fn handle_local(mut local: TcpStream, peer: SocketAddr, id: u64, shared: Arc<Listener>) {
    let _ = local.set_nodelay(true);
    let proof = async {
        match (&shared.gate.secret, shared.target.kind) {
            (Some(secret), ConnectionKind::Postgres) => {
                local_gate::prove_postgres(&mut local, secret).await
            }
            (None, ConnectionKind::Postgres) => Err(GateError::Protocol(
                "no one-time secret to check local clients against".into(),
            )),
            (_, ConnectionKind::Ssh) => local_gate::prove_ssh(&mut local).await,
        }
    };
    let opening = tokio::time::timeout(shared.gate.startup_timeout, proof).await;
    shared.pending().retain(|(p, _)| *p != id);
    let opening = match opening {
        Ok(Ok(opening)) => opening,
        Ok(Err(e)) => {
            tracing::debug!("local connection refused: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(
                "local connection closed: no startup within {}s",
                shared.gate.startup_timeout.as_secs()
            );
            return;
        }
    };
    match opening {
        Opening::Gone => {}
        Opening::Cancel(key) => {
            // Only a key the broker issued on this tunnel reaches it.
            if !shared.cancel_keys.contains(&key) {
                tracing::debug!("dropped a cancel request with an unknown key");
                return;
            }
            match open(&shared.target, Some(peer)).await {
                Ok(mut remote) => {
                    let _ = remote.write_all(&key.request()).await;
                    let _ = remote.flush().await;
                    let mut sink = Vec::new();
                    let _ = tokio::time::timeout(OPEN_TIMEOUT, remote.read_to_end(&mut sink)).await;
                }
                Err(e) => tracing::debug!("could not forward a cancel request: {e}"),
            }
        }
        Opening::Postgres {
            startup,
            negotiated,
        } => {
            let Ok(_slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
                let message = format!(
                    "hoop: too many connections through this tunnel (at most {}; \
                     start hoopctl with --max-local-connections to allow more)",
                    shared.gate.max_connections
                );
                eprintln!("hoopctl: refused a local connection from {peer}: {message}");
                let _ = local_gate_fatal(&mut local, SQLSTATE_TOO_MANY, &message, None).await;
                return;
            };
            let mut remote = match open(&shared.target, Some(peer)).await {
                Ok(remote) => remote,
                Err(e) => return report(&mut local, peer, &shared.target, &e, true).await,
            };
            let secret = shared.gate.secret.as_ref();
            let started = match secret {
                Some(secret) => tokio::time::timeout(
                    OPEN_TIMEOUT,
                    local_gate::finish_postgres_startup(
                        &mut local,
                        &mut remote,
                        &startup,
                        negotiated,
                        secret,
                    ),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the broker did not finish the startup in time",
                    ))
                }),
                None => Ok(None),
            };
            let key = match started {
                Ok(key) => key,
                Err(e) => {
                    tracing::debug!("startup through the tunnel failed: {e}");
                    return;
                }
            };
            if let Some(key) = &key {
                shared.cancel_keys.insert(key.clone());
            }
            relay_bytes(&mut local, &mut remote).await;
            if let Some(key) = &key {
                shared.cancel_keys.remove(key);
            }
        }
        Opening::Ssh(first) => {
            let Ok(_slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
                eprintln!(
                    "hoopctl: refused a local connection from {peer}: too many connections \
                     through this tunnel (at most {}; see --max-local-connections)",
                    shared.gate.max_connections
                );
                return;
            };
            let mut remote = match open(&shared.target, Some(peer)).await {
                Ok(remote) => remote,
                Err(e) => return report(&mut local, peer, &shared.target, &e, false).await,
            };
            if let Err(e) = remote.write_all(&first).await {
                tracing::debug!("relay ended: {e}");
                return;
            }
            relay_bytes(&mut local, &mut remote).await;
        }
    }
}

async fn relay_bytes(local: &mut TcpStream, remote: &mut reqwest::Upgraded) {
    match tokio::io::copy_bidirectional(local, remote).await {
        Ok((up, down)) => tracing::debug!(up, down, "local connection closed"),
        Err(e) => tracing::debug!("relay ended: {e}"),
    }
}

async fn local_gate_fatal(
    local: &mut TcpStream,
    sqlstate: &str,
    message: &str,
    hint: Option<&str>,
) -> std::io::Result<()> {
    let mut out = bytes::BytesMut::new();
    pg_refusal::fatal(sqlstate, message, hint)
        .encode(&mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    local.write_all(&out).await?;
    local.flush().await?;
    local.shutdown().await
}

/// Tells the user (stderr) and, for Postgres, the local client (a `FATAL`
/// error; its startup was read already) why the tunnel could not be opened.
async fn report(
    local: &mut TcpStream,
    peer: SocketAddr,
    target: &TunnelTarget,
    e: &TunnelError,
    postgres: bool,
) {
    let message = e.to_string();
    eprintln!(
        "hoopctl: cannot open a tunnel to {} for {peer}: {message}",
        target.connection
    );
    // An SSH client cannot be told anything before the key exchange; the
    // message above on stderr is what the user reads.
    if postgres {
        let (code, hint) = e.postgres_code();
        if let Err(e) = local_gate_fatal(local, code, &message, hint).await {
            tracing::debug!("could not tell the local client: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    //! hoopctl's side of the tunnel against a minimal stand-in for the
    //! broker's upgrade endpoint (the real broker is exercised end to end in
    //! the `tests/` crate): the upgrade + hello, half-close relaying, and how
    //! each failure reaches a Postgres client.

    use super::*;
    use crate::api::ApiClient;
    use crate::auth::source::{self, TokenSource};
    use crate::auth::store::{FileBackend, StoreMode, TokenStore};
    use crate::config::{BrokerTarget, Source};
    use axum::extract::{Path, Request};
    use axum::http::{HeaderValue, StatusCode as AxStatus, header};
    use axum::response::{IntoResponse as _, Response};
    use bytes::BytesMut;
    use hoop_shared::Secret;
    use hoop_shared::api::{ApiError as ApiErr, ApiErrorBody};
    use pgwire::messages::response::ErrorResponse;
    use pgwire::messages::startup::Startup;
    use pgwire::messages::{DecodeContext, ProtocolVersion};

    fn json_error(status: AxStatus, code: ErrorCode, message: &str) -> Response {
        let body = ApiErrorBody {
            error: ApiErr {
                code,
                message: message.into(),
                hint: None,
            },
        };
        (status, axum::Json(body)).into_response()
    }

    async fn tunnel_endpoint(Path(id): Path<String>, mut req: Request) -> Response {
        if req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some("Bearer tok")
        {
            return json_error(AxStatus::UNAUTHORIZED, ErrorCode::InvalidToken, "bad token");
        }
        if req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            != Some(UPGRADE_PROTOCOL)
        {
            return json_error(AxStatus::BAD_REQUEST, ErrorCode::BadRequest, "no upgrade");
        }
        if id == "ended" {
            return json_error(
                AxStatus::GONE,
                ErrorCode::SessionEnded,
                "session ended at 2030-01-01T00:00:00Z",
            );
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        UPGRADES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            let mut io = hyper_util::rt::TokioIo::new(on_upgrade.await.unwrap());
            let hello: ClientHello = read_frame(&mut io).await.unwrap();
            assert_eq!(hello.version, PROTOCOL_VERSION);
            assert!(hello.local_peer.is_some());
            if id == "refused" {
                let refusal = ServerHello::Refused {
                    code: RefusalCode::SessionEnded,
                    message: "the grant was revoked".into(),
                };
                write_frame(&mut io, &refusal).await.unwrap();
                return;
            }
            let tiny_postgres = id == "pg";
            let ready = ServerHello::Ready {
                version: PROTOCOL_VERSION,
                session_id: id,
                connection: "pg".into(),
                protocol: ConnectionKind::Postgres,
                expires_at: 0,
            };
            write_frame(&mut io, &ready).await.unwrap();
            if tiny_postgres {
                // A tiny Postgres: the startup hoopctl replays, the one-time
                // secret hoopctl answers with, then ReadyForQuery.
                let mut len = [0u8; 4];
                io.read_exact(&mut len).await.unwrap();
                let mut rest = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                io.read_exact(&mut rest).await.unwrap();
                io.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.unwrap();
                let (tag, body) = local_gate::read_message(&mut io, 1024)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!((tag, body.as_slice()), (b'p', &b"pw\0"[..]));
                io.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]).await.unwrap();
                io.write_all(&[b'Z', 0, 0, 0, 5, b'I']).await.unwrap();
            }
            // Echo until the client's EOF, then close our side too.
            let mut buf = Vec::new();
            io.read_to_end(&mut buf).await.unwrap();
            io.write_all(&buf).await.unwrap();
            io.shutdown().await.unwrap();
        });
        let mut resp = AxStatus::SWITCHING_PROTOCOLS.into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        resp.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
        resp
    }

    /// Tunnels the stand-in has opened (upgrades answered).
    static UPGRADES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Refresh grants the stand-in's token endpoint has answered.
    static REFRESHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// The stand-in broker: the tunnel endpoint (token `tok`), plus an auth
    /// config and a token endpoint that trades refresh token `rt` for `tok`,
    /// valid for one second (so every later use must refresh again).
    async fn stand_in_broker() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = hoop_shared::api::AuthConfig {
            issuer: format!("http://{addr}"),
            client_id: "hoopctl".into(),
            device_authorization_endpoint: format!("http://{addr}/device/code"),
            token_endpoint: format!("http://{addr}/token"),
            scopes: vec![],
            revocation_endpoint: None,
            issuer_ca_pem: None,
        };
        let token = |axum::extract::Form(f): axum::extract::Form<
            std::collections::HashMap<String, String>,
        >| async move {
            assert_eq!(
                f.get("grant_type").map(String::as_str),
                Some("refresh_token")
            );
            assert_eq!(f.get("refresh_token").map(String::as_str), Some("rt"));
            REFRESHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            axum::Json(serde_json::json!({
                "access_token": "tok", "token_type": "bearer", "expires_in": 1
            }))
        };
        let app = axum::Router::new()
            .route(
                "/v1/sessions/{id}/tunnel",
                axum::routing::get(tunnel_endpoint),
            )
            .route(
                hoop_shared::api::AUTH_CONFIG_PATH,
                axum::routing::get(move || async move { axum::Json(cfg) }),
            )
            .route("/token", axum::routing::post(token));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// hoopctl's Postgres listener for session `session`, with `token` as
    /// HOOP_TOKEN and `pw` as the one-time secret.
    async fn local_listener(
        broker: SocketAddr,
        session: &str,
        token: Option<&str>,
    ) -> (SocketAddr, tempfile::TempDir) {
        local_listener_with(
            broker,
            session,
            token,
            ConnectionKind::Postgres,
            LocalGate::new(8, Some(Secret::new("pw"))),
        )
        .await
    }

    /// The same, for any kind and gate.
    async fn local_listener_with(
        broker: SocketAddr,
        session: &str,
        token: Option<&str>,
        kind: ConnectionKind,
        gate: LocalGate,
    ) -> (SocketAddr, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        let api = ApiClient::new(&BrokerTarget {
            url: format!("http://{broker}").parse().unwrap(),
            url_source: Source::Flag("--broker"),
            ca_file: None,
        })
        .unwrap();
        let store = TokenStore::new(
            tmp.path(),
            StoreMode::File,
            Box::new(FileBackend::new(tmp.path())),
        );
        let source = match token {
            Some(t) => TokenSource::Env {
                var: source::TOKEN_ENV,
                token: Secret::new(t),
            },
            None => TokenSource::Store,
        };
        let target = Arc::new(TunnelTarget {
            credentials: Arc::new(Credentials::new(api, store, source)),
            session_id: session.into(),
            connection: "pg".into(),
            kind,
            ssh_public_key: None,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, target, gate));
        (addr, tmp)
    }

    /// Connects and does the Postgres startup with `password`.
    async fn pg_login(local: SocketAddr, password: &str) -> TcpStream {
        let mut client = TcpStream::connect(local).await.unwrap();
        let mut out = BytesMut::new();
        let mut startup = Startup::new();
        startup.parameters.insert("user".into(), "alice".into());
        startup.encode(&mut out).unwrap();
        client.write_all(&out).await.unwrap();
        let (tag, body) = local_gate::read_message(&mut client, 1024)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((tag, body.as_slice()), (b'R', &[0, 0, 0, 3][..]));
        let mut p = vec![b'p'];
        p.extend_from_slice(&(password.len() as i32 + 5).to_be_bytes());
        p.extend_from_slice(password.as_bytes());
        p.push(0);
        client.write_all(&p).await.unwrap();
        client
    }

    /// Logs in with the right secret and returns the ErrorResponse fields.
    async fn startup_error(local: SocketAddr) -> Vec<(u8, String)> {
        error_fields(pg_login(local, "pw").await).await
    }

    async fn error_fields(mut client: TcpStream) -> Vec<(u8, String)> {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut buf = BytesMut::from(&got[..]);
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ErrorResponse::decode(&mut buf, &ctx)
            .unwrap()
            .unwrap()
            .fields
    }

    fn field(fields: &[(u8, String)], code: u8) -> &str {
        fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_and_half_close_is_forwarded() {
        let broker = stand_in_broker().await;
        let (local, _tmp) = local_listener_with(
            broker,
            "ok",
            Some("tok"),
            ConnectionKind::Ssh,
            LocalGate::new(8, None),
        )
        .await;
        for round in 0..3 {
            let mut client = TcpStream::connect(local).await.unwrap();
            let payload = format!("SSH-2.0-test\r\nhello through the tunnel #{round}").repeat(1000);
            client.write_all(payload.as_bytes()).await.unwrap();
            // Half-close: the echo side only answers after seeing our EOF.
            client.shutdown().await.unwrap();
            let mut echoed = String::new();
            client.read_to_string(&mut echoed).await.unwrap();
            assert_eq!(echoed, payload);
        }
    }

    #[tokio::test]
    async fn ended_session_reaches_psql_as_a_fatal_error() {
        let broker = stand_in_broker().await;
        let (local, _tmp) = local_listener(broker, "ended", Some("tok")).await;
        let fields = startup_error(local).await;
        assert_eq!(field(&fields, b'S'), "FATAL");
        assert_eq!(field(&fields, b'C'), pg_refusal::SQLSTATE_REJECTED);
        assert!(
            field(&fields, b'M').contains("session ended at 2030"),
            "{fields:?}"
        );
        assert!(
            field(&fields, b'H').contains("hoopctl connect"),
            "{fields:?}"
        );
    }

    #[tokio::test]
    async fn refusal_after_the_upgrade_is_shown_too() {
        let broker = stand_in_broker().await;
        let (local, _tmp) = local_listener(broker, "refused", Some("tok")).await;
        let fields = startup_error(local).await;
        assert_eq!(field(&fields, b'M'), "the grant was revoked");
    }

    #[tokio::test]
    async fn missing_login_says_run_hoopctl_login_and_a_bad_token_names_its_source() {
        let broker = stand_in_broker().await;
        let (local, _tmp) = local_listener(broker, "ok", None).await;
        let fields = startup_error(local).await;
        assert_eq!(field(&fields, b'C'), pg_refusal::SQLSTATE_AUTH);
        assert!(
            field(&fields, b'M').contains("run `hoopctl login`"),
            "{fields:?}"
        );
        // A login would not help while HOOP_TOKEN is set: say where the token came from.
        let (local, _tmp) = local_listener(broker, "ok", Some("wrong")).await;
        let fields = startup_error(local).await;
        assert_eq!(field(&fields, b'C'), pg_refusal::SQLSTATE_AUTH);
        let msg = field(&fields, b'M');
        assert!(
            msg.contains("HOOP_TOKEN") && msg.contains("bad token"),
            "{fields:?}"
        );
        assert!(!msg.contains("wrong"), "token echoed: {msg}");
    }

    /// A long `connect`: the access token expires between local
    /// connections; each new connection refreshes it before opening its
    /// tunnel (not only the first), and the new token is stored.
    #[tokio::test]
    async fn every_new_local_connection_refreshes_an_expiring_token_first() {
        let broker = stand_in_broker().await;
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("http://{broker}");
        let store = || {
            TokenStore::new(
                tmp.path(),
                StoreMode::File,
                Box::new(FileBackend::new(tmp.path())),
            )
        };
        store()
            .save(&crate::auth::store::StoredTokens {
                access_token: Secret::new("expired"),
                refresh_token: Some(Secret::new("rt")),
                id_token: None,
                expires_at: Some(crate::auth::now_unix() - 60),
                broker_url: url.clone(),
            })
            .unwrap();
        let api = ApiClient::new(&BrokerTarget {
            url: url.parse().unwrap(),
            url_source: Source::Flag("--broker"),
            ca_file: None,
        })
        .unwrap();
        let target = Arc::new(TunnelTarget {
            credentials: Arc::new(Credentials::new(api, store(), TokenSource::Store)),
            session_id: "ok".into(),
            connection: "pg".into(),
            kind: ConnectionKind::Ssh,
            ssh_public_key: None,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, target, LocalGate::new(8, None)));
        let before = REFRESHES.load(std::sync::atomic::Ordering::SeqCst);
        for round in 0..3 {
            let mut client = TcpStream::connect(local).await.unwrap();
            client.write_all(b"SSH-ping").await.unwrap();
            client.shutdown().await.unwrap();
            let mut echoed = String::new();
            client.read_to_string(&mut echoed).await.unwrap();
            assert_eq!(echoed, "SSH-ping", "connection {round}");
        }
        // Other tests share the counter, so at least one refresh per connection.
        assert!(REFRESHES.load(std::sync::atomic::Ordering::SeqCst) - before >= 3);
        let stored = store().load().unwrap().unwrap();
        assert_eq!(stored.tokens.access_token.expose(), "tok");
        assert_eq!(stored.tokens.refresh_token.unwrap().expose(), "rt");
    }

    #[tokio::test]
    async fn unreachable_broker_is_reported_to_the_client() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (local, _tmp) =
            local_listener(SocketAddr::from(([127, 0, 0, 1], port)), "ok", Some("tok")).await;
        let fields = startup_error(local).await;
        assert_eq!(field(&fields, b'C'), pg_refusal::SQLSTATE_UNREACHABLE);
        assert!(
            field(&fields, b'M').contains("cannot reach the broker"),
            "{fields:?}"
        );
    }

    /// The one-time secret is checked by hoopctl: a wrong one gets FATAL
    /// 28P01 and never costs a tunnel; the right one is relayed, with the
    /// broker's own password request answered by hoopctl.
    #[tokio::test]
    async fn the_secret_is_checked_before_any_tunnel_is_opened() {
        let broker = stand_in_broker().await;
        let (local, _tmp) = local_listener(broker, "pg", Some("tok")).await;
        let before = UPGRADES.load(std::sync::atomic::Ordering::SeqCst);
        let fields = error_fields(pg_login(local, "not-the-secret").await).await;
        assert_eq!(field(&fields, b'C'), "28P01");
        assert!(
            field(&fields, b'M').contains("one-time secret"),
            "{fields:?}"
        );
        // Idle and garbage connections cost nothing either.
        let mut garbage = TcpStream::connect(local).await.unwrap();
        garbage.write_all(&[0, 0, 0, 8, 1, 2, 3, 4]).await.unwrap();
        let mut sink = Vec::new();
        garbage.read_to_end(&mut sink).await.unwrap();
        assert_eq!(
            UPGRADES.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "a tunnel was opened for an unproven client"
        );

        let mut client = pg_login(local, "pw").await;
        let mut ready = [0u8; 15];
        client.read_exact(&mut ready).await.unwrap();
        assert_eq!(
            &ready,
            &[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I']
        );
        client.write_all(b"after the startup").await.unwrap();
        client.shutdown().await.unwrap();
        let mut echoed = Vec::new();
        client.read_to_end(&mut echoed).await.unwrap();
        assert_eq!(echoed, b"after the startup");
    }

    /// Idle sockets are accepted at once, the oldest shed beyond the pending
    /// bound, the rest closed at the startup deadline; a real client gets in
    /// meanwhile. One more relayed connection than allowed gets FATAL 53300.
    #[tokio::test]
    async fn idle_floods_are_shed_and_the_limit_is_per_tunnel() {
        let broker = stand_in_broker().await;
        let gate = LocalGate {
            max_connections: 1,
            startup_timeout: Duration::from_millis(500),
            max_pending: 4,
            secret: Some(Secret::new("pw")),
        };
        let (local, _tmp) =
            local_listener_with(broker, "pg", Some("tok"), ConnectionKind::Postgres, gate).await;
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(TcpStream::connect(local).await.unwrap());
        }
        let started = std::time::Instant::now();
        let mut client = pg_login(local, "pw").await;
        let mut ready = [0u8; 15];
        client.read_exact(&mut ready).await.unwrap();
        // Every idle socket sees EOF: shed at once, or at the deadline.
        for mut s in idle {
            let mut sink = Vec::new();
            let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink))
                .await
                .expect("idle socket closed by hoopctl")
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        // The one slot is taken by `client`.
        let fields = error_fields(pg_login(local, "pw").await).await;
        assert_eq!(field(&fields, b'C'), "53300", "{fields:?}");
        assert!(
            field(&fields, b'M').contains("--max-local-connections"),
            "{fields:?}"
        );
        drop(client);
    }
}
