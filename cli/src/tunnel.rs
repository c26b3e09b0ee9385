//! The local end of a session: a listener on 127.0.0.1 whose every connection
//! is carried to the broker over its own tunnel.
//!
//! Per local connection: a fresh HTTP/1.1 `GET /v1/sessions/{id}/tunnel` with
//! `Upgrade: hoop-tunnel/1` and the bearer token; on `101`, one
//! [`ClientHello`] out and one [`ServerHello`] back
//! (`hoop_shared::tunnel`); on `Ready`, bytes are relayed both ways with
//! `copy_bidirectional`, which forwards a half-close (one side's EOF becomes a
//! shutdown of the other side's write half) instead of dropping the connection.
//!
//! If the tunnel cannot be opened, the reason goes to stderr and, for a
//! Postgres connection, to the local client as a Postgres `FATAL` error
//! ([`crate::pg_refusal`]), so psql shows it too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hoop_shared::api::{ConnectionKind, ErrorCode};
use hoop_shared::tunnel::{
    ClientHello, FrameError, HANDSHAKE_TIMEOUT, PROTOCOL_VERSION, RefusalCode, ServerHello,
    UPGRADE_PROTOCOL, read_frame, write_frame,
};
use reqwest::StatusCode;
use reqwest::header::{CONNECTION, UPGRADE};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::api::{ApiError, USER_AGENT};
use crate::auth::{AuthError, Credentials};
use crate::pg_refusal;

/// Most local connections relayed at once; further ones wait in the kernel's accept queue.
pub const MAX_LOCAL_CONNECTIONS: usize = 128;

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

/// Accepts local connections until the returned future is dropped; each is
/// relayed over its own tunnel. Dropping the future aborts all relays (they
/// live in a [`JoinSet`] owned here).
pub async fn serve(listener: TcpListener, target: Arc<TunnelTarget>) {
    let limit = Arc::new(Semaphore::new(MAX_LOCAL_CONNECTIONS));
    let mut relays = JoinSet::new();
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let target = Arc::clone(&target);
                    let span = tracing::info_span!("local_connection", %peer);
                    relays.spawn(
                        async move {
                            relay(socket, peer, &target).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Err(e) => {
                    // EMFILE and friends: say so and back off instead of spinning.
                    tracing::warn!("accepting a local connection failed: {e}");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(done) = relays.join_next(), if !relays.is_empty() => {
                drop(permit);
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!("a relay task panicked: {e}");
                }
            }
        }
    }
}

/// Relays one local connection, or tells its client why it cannot be.
async fn relay(mut local: TcpStream, peer: SocketAddr, target: &TunnelTarget) {
    let _ = local.set_nodelay(true);
    match open(target, Some(peer)).await {
        Ok(mut remote) => match tokio::io::copy_bidirectional(&mut local, &mut remote).await {
            Ok((up, down)) => tracing::debug!(up, down, "local connection closed"),
            Err(e) => tracing::debug!("relay ended: {e}"),
        },
        Err(e) => {
            let message = e.to_string();
            eprintln!(
                "hoopctl: cannot open a tunnel to {} for {peer}: {message}",
                target.connection
            );
            match target.kind {
                ConnectionKind::Postgres => {
                    let (code, hint) = e.postgres_code();
                    if let Err(e) = pg_refusal::refuse(&mut local, code, &message, hint).await {
                        tracing::debug!("could not tell the local client: {e}");
                    }
                }
                // An SSH client cannot be told anything before the key
                // exchange; the message above on stderr is what the user reads.
                ConnectionKind::Ssh => {}
            }
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
    use pgwire::messages::{DecodeContext, Message as _, ProtocolVersion};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
            let ready = ServerHello::Ready {
                version: PROTOCOL_VERSION,
                session_id: id,
                connection: "pg".into(),
                protocol: ConnectionKind::Postgres,
                expires_at: 0,
            };
            write_frame(&mut io, &ready).await.unwrap();
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

    /// hoopctl's listener for session `session`, with `token` as HOOP_TOKEN.
    async fn local_listener(
        broker: SocketAddr,
        session: &str,
        token: Option<&str>,
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
            kind: ConnectionKind::Postgres,
            ssh_public_key: None,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, target));
        (addr, tmp)
    }

    /// Sends a Postgres startup and returns the ErrorResponse fields.
    async fn startup_error(local: SocketAddr) -> Vec<(u8, String)> {
        let mut client = TcpStream::connect(local).await.unwrap();
        let mut out = BytesMut::new();
        let mut startup = Startup::new();
        startup.parameters.insert("user".into(), "alice".into());
        startup.encode(&mut out).unwrap();
        client.write_all(&out).await.unwrap();
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
        let (local, _tmp) = local_listener(broker, "ok", Some("tok")).await;
        for round in 0..3 {
            let mut client = TcpStream::connect(local).await.unwrap();
            let payload = format!("hello through the tunnel #{round}").repeat(1000);
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
            kind: ConnectionKind::Postgres,
            ssh_public_key: None,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, target));
        let before = REFRESHES.load(std::sync::atomic::Ordering::SeqCst);
        for round in 0..3 {
            let mut client = TcpStream::connect(local).await.unwrap();
            client.write_all(b"ping").await.unwrap();
            client.shutdown().await.unwrap();
            let mut echoed = String::new();
            client.read_to_string(&mut echoed).await.unwrap();
            assert_eq!(echoed, "ping", "connection {round}");
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
}
