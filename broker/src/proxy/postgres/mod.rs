//! The broker side of a Postgres tunnel: terminates the client's startup,
//! authenticates it with the session's one-time secret, logs in to the real
//! server with the stored credential, and relays the session message by
//! message.
//!
//! # The path of one client stream
//!
//! 1. **Opening** (`startup`). SSLRequest and GSSENCRequest are answered
//!    `N`: the local leg is loopback and the hop from hoopctl to the broker is
//!    TLS already. A CancelRequest is looked up and forwarded (below). A
//!    StartupMessage must be protocol 3.x; a client asking for a newer minor
//!    (3.2, PostgreSQL 18's libpq) gets NegotiateProtocolVersion down to 3.0 and
//!    continues, as against any 3.0 server. Replication connections are refused.
//!    The database must be the connection's database (or absent, meaning it);
//!    otherwise the client gets a FATAL naming the allowed database.
//! 2. **Startup parameters.** Only an allow-list reaches the server:
//!    `application_name`, `client_encoding`, `DateStyle`, `TimeZone`,
//!    `IntervalStyle`, `extra_float_digits`, `search_path`
//!    ([`FORWARDED_STARTUP_PARAMETERS`]). The upstream `user` and `database`
//!    come from [`Upstream`], never from the client; `options` (arbitrary
//!    `-c` settings, including `role`/`session_authorization`) is dropped.
//! 3. **Client authentication: cleartext, on purpose.** The broker sends
//!    AuthenticationCleartextPassword and compares SHA-256 of the answer with
//!    the session's stored digest in constant time. Cleartext is acceptable
//!    here because the password is not a credential anyone keeps: it is the
//!    one-time, per-session tunnel secret hoopctl generated for the command it
//!    started, it only crosses the loopback interface and then the TLS tunnel,
//!    and it is worthless outside that session. (SCRAM would add round trips
//!    and need the broker to keep a verifier per session for no gain.) A wrong
//!    or missing secret gets FATAL 28P01 explaining that the port accepts only
//!    that secret (PGPASSWORD).
//! 4. **Upstream login** (`upstream`). TCP connect with a timeout, then
//!    SCRAM-SHA-256 (PostgreSQL's default), MD5 or cleartext with the stored
//!    credential, all under one deadline. AuthenticationOk reaches the client
//!    only after the server accepted the broker, so every upstream failure
//!    becomes a FATAL with a SQLSTATE and a message the user can act on
//!    (unreachable → 08001 naming the connection; credential rejected → the
//!    server's class-28 code and "an admin must check the credential").
//!    Server text is scrubbed of the upstream password before it is shown or
//!    logged; the password itself never leaves the SCRAM/MD5 exchange.
//! 5. **BackendKeyData substitution** (`cancel`). The server's (pid, key)
//!    is kept in the broker; the client gets a random broker-issued pair. A
//!    cancel (psql's Ctrl-C opens a new stream with CancelRequest) is honoured
//!    only if the pair is live *and* belongs to the same session, and is then
//!    sent to the server with its real pid and key. So a client can neither
//!    learn nor cancel another session's backend.
//! 6. **Relay** ([`relay`]): both directions framed (tag + length checked
//!    against [`MAX_MESSAGE_LEN`]), forwarded as each message completes, with
//!    a [`relay::FrameHook`] per direction as the one place for statement
//!    inspection and result masking. On a connection with guardrails
//!    (`guarded`), every `Query` and `Parse` is judged by [`crate::guard`]; a
//!    refused one never reaches the server: the client gets an ErrorResponse
//!    naming the rule, in the place and transaction state a server refusal
//!    would have, and the session stays usable.
//!
//! # The path of one message through the layers
//!
//! ```text
//! socket ─▶ relay (wire::framing: length checked, frame buffered)
//!        ─▶ wire (decoded once: ClientMessage / ServerMessage, borrowed views)
//!        ─▶ pipeline (fixed order):
//!             client → server: state::SentState ─▶ guarded (judge, review, record)
//!             server → client: state::AnsweredState ─▶ recorded (outcomes)
//!                              ─▶ guarded (refusals in place) ─▶ masked (rows, COPY)
//!        ─▶ relay writes the frame from its buffer (or what a stage replaced it with)
//! ```
//!
//! - [`wire`] is the only code that knows message layouts (startup packets
//!   included); builders for what the broker writes live there too.
//! - `state` is the one protocol-state tracker (statements, portals,
//!   batches, transaction status) the stages read.
//! - `pipeline` fixes the order of the stages in its types.
//! 7. **Session expiry**: when `expires_at` passes mid-session the client gets
//!    FATAL 57P01 ("your session on connection ... ended at ...; run hoopctl
//!    connect again") between two messages, a running statement is cancelled
//!    upstream, and both sides are closed.
//!
//! TLS from the broker to the server follows the connection's `tls` mode
//! (`disable`, `prefer`, `require`, `verify-full`, as libpq's sslmode) and
//! is negotiated in [`upstream`] before the startup message.
//!
//! Not done here: SCRAM channel binding (`SCRAM-SHA-256-PLUS`), GSSAPI/Kerberos upstream authentication, and protocol 3.2's longer
//! cancel keys (the broker speaks 3.0 on both legs).

mod cancel;
mod catalog;
mod error;
mod guarded;
mod masked;
mod pipeline;
mod recorded;
pub mod relay;
mod startup;
mod state;
pub(crate) mod upstream;
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use pgwire::messages::Message as _;
use pgwire::messages::startup::{Authentication, BackendKeyData, SecretKey};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tracing::Instrument as _;

pub use error::{PgProxyError, Side};
pub use startup::FORWARDED_STARTUP_PARAMETERS;
pub use upstream::{
    TlsSettings, UPSTREAM_CONNECT_TIMEOUT, UPSTREAM_LOGIN_TIMEOUT, UpstreamConn, connect,
};
pub use wire::{MAX_HANDSHAKE_LEN, MAX_MESSAGE_LEN, MAX_STARTUP_LEN};

use cancel::{CancelRegistry, CancelTarget};
use relay::{DirectionEnd, ServerEnd};
use startup::Opening;
use wire::build::fatal_message;

/// How long a client may take from its first byte to presenting the secret.
pub const CLIENT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The real database behind a connection, with the credential the broker uses.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The connection's name, as users know it (used in messages).
    pub connection: String,
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// The one database this connection reaches.
    pub database: String,
    /// The role the broker logs in as.
    pub user: String,
    /// That role's password; used only in the authentication exchange.
    pub password: hoop_shared::Secret,
    /// TLS for the broker → database leg.
    pub tls: TlsSettings,
}

/// The session a client stream belongs to.
#[derive(Clone, Debug)]
pub struct ClientSession {
    /// Session id (logs; cancel requests are honoured only within one session).
    pub session_id: String,
    /// The hoop identity's name, for logs.
    pub user: String,
    /// Lowercase hex SHA-256 of the session's one-time tunnel secret.
    pub tunnel_secret_sha256: String,
    /// When the session ends.
    pub expires_at: SystemTime,
    /// Set when the session runs under an access grant: cancelled when the
    /// grant is revoked, which ends the session with a FATAL saying so.
    pub grant: Option<tokio_util::sync::CancellationToken>,
    /// Masking rule sets for this session's results: the connection's and
    /// the policy rule's, in that order (names of sets the proxy was built
    /// with, see [`PgProxy::with_masking`]).
    pub masking: Vec<String>,
    /// Result rows kept per statement in the recording (the connection's
    /// `record_results`; 0 keeps no values). Kept after masking.
    pub record_results: u32,
    /// Guardrail sets of the policy rule that granted the session; checked
    /// after the connection's own (see [`crate::guard::GuardBook`]).
    pub guardrails: Vec<String>,
    /// Who the session belongs to, for query review (`None`: statements a
    /// `review` rule matches are refused).
    pub requester: Option<crate::review::Requester>,
}

/// The Postgres proxy: serves client streams; cheap to clone (the cancel
/// registry shared by all streams is behind an `Arc`).
#[derive(Clone, Default)]
pub struct PgProxy {
    cancels: Arc<CancelRegistry>,
    /// Guardrails by connection name (connections without any are absent).
    guards: Arc<crate::guard::GuardBook>,
    /// Holds `review` statements (query review); `None` refuses them.
    reviews: Option<Arc<crate::review::ReviewDesk>>,
    /// Masking sets by name, and each connection's catalog.
    masking: Arc<MaskingRegistry>,
    /// Where each session's statements are recorded (the audit log).
    recorder: Option<Arc<dyn crate::record::Recorder>>,
}

/// The masking sets a proxy knows, and one [`catalog::Catalog`] per
/// connection (opened with its first masked session, shared by all).
#[derive(Debug, Default)]
struct MaskingRegistry {
    sets: std::collections::HashMap<String, Arc<crate::mask::MaskSet>>,
    catalogs: std::sync::Mutex<std::collections::HashMap<String, Arc<catalog::Catalog>>>,
}

impl PgProxy {
    /// A proxy with an empty cancel registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A proxy that checks every statement on the named connections against
    /// their guardrails (see `guarded` for how refusals reach the client).
    pub fn with_guardrails(
        guardrails: std::collections::HashMap<String, Arc<crate::guard::Guardrails>>,
    ) -> Self {
        PgProxy {
            guards: Arc::new(crate::guard::GuardBook::prebuilt(guardrails)),
            ..PgProxy::default()
        }
    }

    /// The same proxy, knowing these masking sets by name; a session names
    /// the ones that apply to it in [`ClientSession::masking`].
    pub fn with_masking(
        self,
        sets: std::collections::HashMap<String, Arc<crate::mask::MaskSet>>,
    ) -> Self {
        PgProxy {
            masking: Arc::new(MaskingRegistry {
                sets,
                catalogs: std::sync::Mutex::default(),
            }),
            ..self
        }
    }

    /// The same proxy, judging each session with the guardrails `book`
    /// gives for its connection and granting policy rule.
    pub fn with_guard_book(self, book: crate::guard::GuardBook) -> Self {
        PgProxy {
            guards: Arc::new(book),
            ..self
        }
    }

    /// The same proxy, holding statements a `review` rule matches with
    /// `desk` (query review; see `guarded`).
    pub fn with_reviews(self, desk: Arc<crate::review::ReviewDesk>) -> Self {
        PgProxy {
            reviews: Some(desk),
            ..self
        }
    }

    /// The same proxy, recording every session's statements and their
    /// outcomes with `recorder` ([`crate::record`]).
    pub fn with_recorder(self, recorder: Arc<dyn crate::record::Recorder>) -> Self {
        PgProxy {
            recorder: Some(recorder),
            ..self
        }
    }

    /// The masking of a session, `None` without sets (unless result rows
    /// are recorded: the masking hook is where they are captured, so it runs
    /// with no sets and passes every value); `Err` names a set the proxy
    /// does not know (the session is refused rather than unmasked). `log`
    /// hears which columns were masked, and the rows it keeps.
    fn masking_for(
        &self,
        session: &ClientSession,
        upstream: &Arc<Upstream>,
        log: Option<Arc<crate::record::SessionLog>>,
    ) -> Result<Option<Arc<masked::MaskContext>>, PgProxyError> {
        let captures = log.as_ref().is_some_and(|l| l.keeps_results() > 0);
        if session.masking.is_empty() && !captures {
            return Ok(None);
        }
        let mut sets = Vec::new();
        for name in &session.masking {
            let Some(set) = self.masking.sets.get(name) else {
                tracing::error!(set = %name, "masking set of the session is not defined");
                return Err(PgProxyError::Refused {
                    code: "XX000".to_owned(),
                    message: format!(
                        "hoop: masking set \"{name}\" applies to this session but is not \
                         defined on this broker; an admin must fix the configuration"
                    ),
                });
            };
            if !sets
                .iter()
                .any(|s: &Arc<crate::mask::MaskSet>| s.name == set.name)
            {
                sets.push(set.clone());
            }
        }
        let catalog = self
            .masking
            .catalogs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(upstream.connection.clone())
            .or_insert_with(|| catalog::Catalog::new(upstream.clone()))
            .clone();
        Ok(Some(Arc::new(masked::MaskContext {
            masker: crate::mask::Masker::new(sets),
            catalog,
            log,
            connection: upstream.connection.clone(),
        })))
    }

    /// Serves one client stream to completion: startup, authentication,
    /// upstream login, relay. Never panics on any input. Returns `Ok` when
    /// either side ended the session normally (and for cancel requests and
    /// clients that leave before authenticating);
    /// [`PgProxyError::SessionExpired`] when the session's end time cut it off.
    ///
    /// Latency: the relay writes each batch of complete messages at once, so
    /// the caller should set `TCP_NODELAY` on the socket under `client` (the
    /// upstream socket gets it here).
    pub async fn serve<S>(
        &self,
        client: S,
        session: ClientSession,
        upstream: Arc<Upstream>,
    ) -> Result<(), PgProxyError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let span = tracing::info_span!(
            "pg",
            session = %session.session_id,
            user = %session.user,
            connection = %upstream.connection,
        );
        self.serve_inner(client, session, upstream)
            .instrument(span)
            .await
    }

    async fn serve_inner<S>(
        &self,
        mut client: S,
        session: ClientSession,
        upstream: Arc<Upstream>,
    ) -> Result<(), PgProxyError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = BytesMut::new();
        let opened = tokio::time::timeout(CLIENT_STARTUP_TIMEOUT, async {
            let opening = startup::read_opening(&mut client, &mut buf, &upstream).await?;
            if let Opening::Session { .. } = opening
                && !startup::authenticate_client(
                    &mut client,
                    &mut buf,
                    &session,
                    &upstream.connection,
                )
                .await?
            {
                return Ok(Opening::Gone);
            }
            Ok(opening)
        })
        .await
        .unwrap_or(Err(PgProxyError::ClientTimeout(CLIENT_STARTUP_TIMEOUT)));

        let (forwarded, client_user) = match opened {
            Ok(Opening::Gone) => {
                tracing::debug!("client left before authenticating");
                return Ok(());
            }
            Ok(Opening::Cancel { pid, key }) => {
                self.handle_cancel(pid, key, &session.session_id).await;
                return Ok(());
            }
            Ok(Opening::Session {
                forwarded,
                client_user,
            }) => (forwarded, client_user),
            Err(e) => {
                tracing::info!(error = %e, "client startup refused");
                return fail(&mut client, e).await;
            }
        };

        if SystemTime::now() >= session.expires_at {
            send_and_close(&mut client, expiry_fatal(&session, &upstream)).await;
            return Err(PgProxyError::SessionExpired);
        }
        // The session's statement log: statements are recorded by the client
        // hook, masked columns by the masking hook, outcomes by the server
        // hook (from the server's own answers, before any hook replaces or
        // masks them).
        let session_log = self.recorder.as_ref().map(|r| {
            crate::record::SessionLog::keeping_results(
                r.clone(),
                &session.session_id,
                &session.user,
                &upstream.connection,
                session.record_results,
            )
        });
        let masking = match self.masking_for(&session, &upstream, session_log.clone()) {
            Ok(m) => m,
            Err(e) => return fail(&mut client, e).await,
        };
        // The connection's guardrails and the granting rule's; a set that
        // cannot be found refuses the session rather than running unguarded.
        let guardrails = match self
            .guards
            .for_session(&upstream.connection, &session.guardrails)
        {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "guardrails of the session cannot be built");
                let refused = PgProxyError::Refused {
                    code: "XX000".to_owned(),
                    message: format!(
                        "hoop: the guardrails of this session cannot be applied ({e}); an \
                         admin must fix the configuration or policy"
                    ),
                };
                return fail(&mut client, refused).await;
            }
        };

        let logged_in = match upstream::login(&upstream, &forwarded).await {
            Ok(logged_in) => logged_in,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    addr = %format!("{}:{}", upstream.host, upstream.port),
                    "upstream login failed"
                );
                return fail(&mut client, e).await;
            }
        };
        tracing::info!(client_user = ?client_user, "session started");

        // The client gets a broker-issued cancel key; the server's stays here.
        let guard = self.cancels.register(CancelTarget {
            session_id: session.session_id.clone(),
            host: upstream.host.clone(),
            port: upstream.port,
            pid: logged_in
                .backend_key
                .map(|(pid, _)| pid)
                .unwrap_or_default(),
            key: logged_in
                .backend_key
                .map(|(_, key)| key)
                .unwrap_or_default(),
        });
        let mut hello = BytesMut::with_capacity(512);
        let encoded = Authentication::Ok.encode(&mut hello).and_then(|()| {
            hello.extend_from_slice(&logged_in.status_frames);
            BackendKeyData::new(guard.pid, SecretKey::I32(guard.key)).encode(&mut hello)
        });
        if let Err(e) = encoded {
            return fail(&mut client, PgProxyError::UpstreamProtocol(e.to_string())).await;
        }
        hello.extend_from_slice(&logged_in.ready);
        client
            .write_all(&hello)
            .await
            .map_err(PgProxyError::ClientIo)?;

        let (client_r, client_w) = tokio::io::split(client);
        let (up_r, up_w) = upstream::split(logged_in.stream);
        let (abort_tx, abort_rx) = oneshot::channel();
        let reviews = match (&self.reviews, &session.requester) {
            (Some(desk), Some(requester)) => Some(Arc::new(guarded::ReviewContext {
                desk: desk.clone(),
                requester: requester.clone(),
                session_id: session.session_id.clone(),
                connection: upstream.connection.clone(),
            })),
            _ => None,
        };
        let (guard_client, guard_server) = guarded::hooks(
            guardrails,
            session_log.clone(),
            reviews,
            &logged_in.status_frames,
        );
        let mask = masked::stage(masking);
        // One protocol state for every stage: batch indices when statements
        // are guarded or recorded, answer notes when results are masked.
        let (sent, answered) = state::tracker(guard_client.is_guarded(), mask.needs_notes());
        // The order of the stages is the pipelines' (see `pipeline`).
        let client_hook = pipeline::ClientPipeline::new(sent, guard_client);
        let server_hook = pipeline::ServerPipeline::new(
            answered,
            recorded::RecordOutcomes::new(session_log),
            guard_server,
            mask,
        );
        let c2s = relay::client_to_server(client_r, up_w, buf, client_hook, abort_tx);
        let s2c = relay::server_to_client(
            up_r,
            client_w,
            logged_in.leftover,
            server_hook,
            relay::Interrupts {
                abort: abort_rx,
                expires_at: session.expires_at,
                expiry_fatal: expiry_fatal(&session, &upstream),
                revoked: session.grant.clone(),
                revoked_fatal: revoked_fatal(&upstream),
                connection: upstream.connection.clone(),
            },
        );
        tokio::pin!(c2s, s2c);
        let (client_end, server_end) = tokio::select! {
            s = &mut s2c => (None, s),
            c = &mut c2s => (Some(c), s2c.await),
        };
        tracing::debug!(?client_end, ?server_end, "relay ended");

        let result = match server_end {
            ServerEnd::Expired => {
                // Stop whatever the session was running, not just the socket.
                if let Some((pid, key)) = logged_in.backend_key {
                    let target = CancelTarget {
                        session_id: session.session_id.clone(),
                        host: upstream.host.clone(),
                        port: upstream.port,
                        pid,
                        key,
                    };
                    if let Err(e) = cancel::forward_cancel(&target).await {
                        tracing::debug!(error = %e, "cancel at session expiry failed");
                    }
                }
                tracing::info!("session expired; stream closed");
                Err(PgProxyError::SessionExpired)
            }
            ServerEnd::Aborted => match client_end {
                Some(DirectionEnd::BadLength(n)) => Err(PgProxyError::ClientProtocol(format!(
                    "invalid message length {n}"
                ))),
                _ => Err(PgProxyError::ClientProtocol("invalid message".to_owned())),
            },
            ServerEnd::Direction(DirectionEnd::BadLength(n)) => Err(
                PgProxyError::UpstreamProtocol(format!("invalid message length {n}")),
            ),
            ServerEnd::Direction(DirectionEnd::ReadError(e)) => Err(PgProxyError::UpstreamIo(e)),
            ServerEnd::Direction(DirectionEnd::WriteError(e)) => {
                // The client went away while results were flowing: normal enough.
                tracing::debug!(error = %e, "client stopped reading");
                Ok(())
            }
            ServerEnd::Direction(DirectionEnd::TruncatedEof(n)) => {
                tracing::warn!(bytes = n, "the server closed in the middle of a message");
                Ok(())
            }
            ServerEnd::Direction(DirectionEnd::Eof) => Ok(()),
        };
        if let Some(DirectionEnd::TruncatedEof(n)) = client_end {
            tracing::debug!(bytes = n, "the client closed in the middle of a message");
        }
        drop(guard);
        tracing::info!("session stream ended");
        result
    }

    /// Forwards a cancel request if (pid, key) is live and belongs to `session_id`.
    async fn handle_cancel(&self, pid: i32, key: i32, session_id: &str) {
        match self.cancels.lookup(pid, key, session_id) {
            Some(target) if target.pid != 0 => match cancel::forward_cancel(&target).await {
                Ok(()) => tracing::info!("forwarded a cancel request"),
                Err(e) => tracing::warn!(error = %e, "could not forward a cancel request"),
            },
            // Like the server: an unknown key gets no answer at all.
            _ => tracing::info!("ignored a cancel request with an unknown key"),
        }
    }
}

/// Tells the client why its startup failed (when there is someone to tell)
/// and returns the error.
async fn fail<S>(client: &mut S, error: PgProxyError) -> Result<(), PgProxyError>
where
    S: AsyncWrite + Unpin,
{
    if let Some((code, message, hint)) = error.client_fatal() {
        send_and_close(client, fatal_message(&code, &message, hint.as_deref())).await;
    }
    Err(error)
}

/// Writes `bytes` and closes the write side; errors mean the client is gone.
async fn send_and_close<S>(client: &mut S, bytes: BytesMut)
where
    S: AsyncWrite + Unpin,
{
    let _ = client.write_all(&bytes).await;
    let _ = client.flush().await;
    let _ = client.shutdown().await;
}

fn expiry_fatal(session: &ClientSession, upstream: &Upstream) -> BytesMut {
    let at = humantime::format_rfc3339_seconds(session.expires_at);
    let message = if session.grant.is_some() {
        format!(
            "hoop: your access grant on connection \"{}\" expired at {at}; request access again with hoopctl connect",
            upstream.connection
        )
    } else {
        format!(
            "hoop: your session on connection \"{}\" ended at {at}; run hoopctl connect again",
            upstream.connection
        )
    };
    fatal_message("57P01", &message, None)
}

/// The FATAL a client gets when the grant behind its session is revoked.
fn revoked_fatal(upstream: &Upstream) -> BytesMut {
    fatal_message(
        "57P01",
        &format!(
            "hoop: your access grant on connection \"{}\" was revoked; request access again with hoopctl connect",
            upstream.connection
        ),
        None,
    )
}
