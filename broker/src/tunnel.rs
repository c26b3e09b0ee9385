//! The `hoop-tunnel/1` upgrade: an authenticated HTTP/1.1 upgrade that turns
//! one HTTPS request into a byte stream for one local client connection.
//!
//! Before the upgrade, everything is ordinary HTTP with JSON errors: the
//! bearer token is validated ([`crate::api::Caller`]), the session must exist,
//! belong to the caller, and not have ended. After `101 Switching Protocols`
//! the client sends a [`ClientHello`] frame and the broker answers with a
//! [`ServerHello`] (see `docs/protocol.md`); then the stream belongs to the
//! proxy for the connection's protocol (Postgres or SSH; for SSH the target
//! is connected and its host key verified before `Ready`). Every tunnel task is owned by the
//! broker's task tracker and ends on shutdown.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hoop_shared::api::{ConnectionKind, ErrorCode};
use hoop_shared::tunnel::{
    ClientHello, PROTOCOL_VERSION, RefusalCode, ServerHello, UPGRADE_PROTOCOL, read_frame,
    write_frame,
};
use hyper_util::rt::TokioIo;
use tracing::Instrument as _;

use crate::api::{ApiFailure, Caller};
use crate::app::{AppState, now_unix};
use crate::config::ConnectionType;
use crate::proxy::postgres::ClientSession;
use crate::store::Event;

/// The proxy a tunnel's stream goes to, by the connection's type.
enum Leg {
    Postgres(Arc<crate::proxy::postgres::Upstream>),
    Ssh(Arc<crate::proxy::ssh::SshTarget>),
}

/// `GET /v1/sessions/{id}/tunnel` with `Upgrade: hoop-tunnel/1`.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiFailure> {
    let asked = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !asked.eq_ignore_ascii_case(UPGRADE_PROTOCOL) {
        let message = if asked.starts_with("hoop-tunnel/") {
            format!("this broker speaks {UPGRADE_PROTOCOL}, not {asked}")
        } else {
            format!("this endpoint needs `Upgrade: {UPGRADE_PROTOCOL}`")
        };
        return Err(
            ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
                .hint("use a hoopctl version that matches the broker"),
        );
    }
    let session = state
        .store
        .session(&id)
        .await
        .map_err(|e| ApiFailure::internal("look up the session", &e))?
        .filter(|s| s.subject == who.subject)
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownSession,
                format!("no session {id} of yours"),
            )
            .hint("run `hoopctl connect` again")
        })?;
    let now = now_unix();
    if session.state(now) != crate::store::SessionState::Open {
        let when = humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(session.closed_at.unwrap_or(session.expires_at)),
        );
        return Err(ApiFailure::new(
            StatusCode::GONE,
            ErrorCode::SessionEnded,
            format!("session {id} on {} ended at {when}", session.connection),
        )
        .hint("run `hoopctl connect` again"));
    }
    // A session under a grant lives only while the grant does.
    let mut grant_ended = None;
    if let Some(request_id) = &session.request_id {
        let row = state
            .store
            .request(request_id)
            .await
            .map_err(|e| ApiFailure::internal("look up the grant", &e))?;
        // A statement review's approval is one run of one statement, never
        // a grant of access.
        let row = row.filter(|r| r.kind == crate::store::RequestKind::Access);
        let granted = row.as_ref().map(|r| crate::api::grant_state(r, now));
        if granted != Some(hoop_shared::api::RequestState::Approved) {
            return Err(ApiFailure::new(
                StatusCode::GONE,
                ErrorCode::SessionEnded,
                format!(
                    "the access grant behind session {id} is {}",
                    granted.map_or("gone".to_owned(), |g| g.to_string())
                ),
            )
            .hint("request access again with `hoopctl connect`"));
        }
        grant_ended = Some(state.grants.token(request_id));
    }
    let leg = match state.config.connection(&session.connection).map(|c| c.kind) {
        Some(ConnectionType::Postgres) => state
            .upstreams
            .get(&session.connection)
            .cloned()
            .map(Leg::Postgres),
        Some(ConnectionType::Ssh) => state.ssh.target(&session.connection).map(Leg::Ssh),
        None => None,
    };
    let Some(upstream) = leg else {
        return Err(ApiFailure::new(
            StatusCode::GONE,
            ErrorCode::SessionEnded,
            format!(
                "connection {} no longer exists on this broker",
                session.connection
            ),
        ));
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_state = state.clone();
    let span = tracing::info_span!(
        "tunnel",
        session = %session.id,
        user = %who.user,
        connection = %session.connection
    );
    state.tasks.spawn(
        async move {
            let stream = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(e) => {
                    tracing::warn!(session = %session.id, "tunnel upgrade failed: {e}");
                    return;
                }
            };
            let state = task_state;
            let shutdown = state.shutdown.clone();
            // A revoked grant is handled by the proxy, which tells the
            // client why before closing.
            tokio::select! {
                () = run_tunnel(state, who, session, upstream, stream, grant_ended) => {}
                () = shutdown.cancelled() => {}
            }
        }
        .instrument(span),
    );
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
    Ok(resp)
}

async fn run_tunnel(
    state: Arc<AppState>,
    who: crate::auth::Identity,
    session: crate::store::SessionRow,
    upstream: Leg,
    mut stream: TokioIo<hyper::upgrade::Upgraded>,
    grant: Option<tokio_util::sync::CancellationToken>,
) {
    let hello: ClientHello = match read_frame(&mut stream).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("tunnel hello refused: {e}");
            let _ = write_frame(
                &mut stream,
                &ServerHello::Refused {
                    code: RefusalCode::BadHello,
                    message: format!("the broker could not read the tunnel hello: {e}"),
                },
            )
            .await;
            return;
        }
    };
    if hello.version != PROTOCOL_VERSION {
        let _ = write_frame(
            &mut stream,
            &ServerHello::Refused {
                code: RefusalCode::UnsupportedVersion,
                message: format!(
                    "hello version {} is not supported; this broker speaks {PROTOCOL_VERSION}",
                    hello.version
                ),
            },
        )
        .await;
        return;
    }
    // For SSH: the client's one-time key, and a verified, logged-in target
    // before the stream is declared ready.
    let ssh = match &upstream {
        Leg::Postgres(_) => None,
        Leg::Ssh(target) => match prepare_ssh(&state, target, &hello).await {
            Ok(ready) => Some(ready),
            Err((code, message)) => {
                tracing::warn!("ssh tunnel refused: {message}");
                state
                    .audit(Event {
                        at: now_unix(),
                        kind: "tunnel.refused".into(),
                        user_name: Some(who.user.clone()),
                        connection: Some(session.connection.clone()),
                        session_id: Some(session.id.clone()),
                        detail: message.clone(),
                    })
                    .await;
                let _ = write_frame(&mut stream, &ServerHello::Refused { code, message }).await;
                return;
            }
        },
    };
    let ready = ServerHello::Ready {
        version: PROTOCOL_VERSION,
        session_id: session.id.clone(),
        connection: session.connection.clone(),
        protocol: match &upstream {
            Leg::Postgres(_) => ConnectionKind::Postgres,
            Leg::Ssh(_) => ConnectionKind::Ssh,
        },
        expires_at: session.expires_at,
    };
    if let Err(e) = write_frame(&mut stream, &ready).await {
        tracing::debug!("tunnel closed during hello: {e}");
        return;
    }
    let peer = hello.local_peer.clone().unwrap_or_default();
    state
        .audit(Event {
            at: now_unix(),
            kind: "tunnel.open".into(),
            user_name: Some(who.user.clone()),
            connection: Some(session.connection.clone()),
            session_id: Some(session.id.clone()),
            detail: format!("client {} local peer {peer}", hello.client),
        })
        .await;
    let expires_at = UNIX_EPOCH + Duration::from_secs(session.expires_at);
    let detail = match (upstream, ssh) {
        (Leg::Ssh(target), Some((client_key, up))) => {
            let info = crate::proxy::ssh::SessionInfo {
                session_id: session.id.clone(),
                user: who.user.clone(),
                expires_at,
                grant,
                client_key,
                requester: crate::review::Requester::of(&who),
            };
            match state
                .ssh
                .serve(state.clone(), stream, info, target, up)
                .await
            {
                Ok(()) => "closed".to_owned(),
                Err(e) => format!("ended: {e}"),
            }
        }
        (Leg::Postgres(upstream), _) => {
            let client_session = ClientSession {
                session_id: session.id.clone(),
                user: who.user.clone(),
                tunnel_secret_sha256: session.secret_sha256.clone(),
                expires_at,
                grant,
                masking: session_masking(&state, &who, &session.connection),
                record_results: state
                    .config
                    .connection(&session.connection)
                    .map_or(0, |c| c.record_results),
                guardrails: session_guardrails(&state, &who, &session.connection),
                requester: Some(crate::review::Requester::of(&who)),
            };
            match state.pg.serve(stream, client_session, upstream).await {
                Ok(()) => "closed".to_owned(),
                Err(e) => format!("ended: {e}"),
            }
        }
        (Leg::Ssh(_), None) => "closed".to_owned(),
    };
    tracing::info!("tunnel {detail}");
    state
        .audit(Event {
            at: now_unix(),
            kind: "tunnel.close".into(),
            user_name: Some(who.user),
            connection: Some(session.connection),
            session_id: Some(session.id),
            detail,
        })
        .await;
}

/// The SSH leg's preconditions: the hello names the client's one-time key,
/// and the target is reachable, presents its pinned host key and accepts the
/// stored credential. The error is the refusal the client reads.
async fn prepare_ssh(
    state: &AppState,
    target: &Arc<crate::proxy::ssh::SshTarget>,
    hello: &ClientHello,
) -> Result<(russh::keys::PublicKey, crate::proxy::ssh::Upstream), (RefusalCode, String)> {
    let Some(line) = hello.ssh_public_key.as_deref() else {
        return Err((
            RefusalCode::MissingCredential,
            format!(
                "{} is an ssh connection and the tunnel hello carries no one-time SSH key; \
                 use a hoopctl version that supports ssh connections",
                target.connection
            ),
        ));
    };
    let key = crate::proxy::ssh::parse_host_key(line).map_err(|e| {
        (
            RefusalCode::BadHello,
            format!("the tunnel hello's ssh_public_key: {e}"),
        )
    })?;
    let upstream = state
        .ssh
        .connect(target)
        .await
        .map_err(|e| (RefusalCode::Upstream, e.to_string()))?;
    Ok((key, upstream))
}

/// The masking sets of a session: the connection's, then those of the
/// policy rule that lets `who` in now (decided again at tunnel time, so a
/// policy change applies to new tunnels at once).
fn session_masking(state: &AppState, who: &crate::auth::Identity, connection: &str) -> Vec<String> {
    use hoop_shared::policy::Outcome;
    let mut sets: Vec<String> = state
        .config
        .connection(connection)
        .map(|c| c.masking.clone())
        .unwrap_or_default();
    let decision = state.policy.decide(who, connection);
    if let Outcome::Allow { masking, .. } | Outcome::Approval { masking, .. } = &decision.outcome {
        for m in masking {
            if !sets.contains(m) {
                sets.push(m.clone());
            }
        }
    }
    sets
}

/// The guardrail sets of the policy rule that lets `who` in now (the
/// connection's own are added by the proxy's [`crate::guard::GuardBook`]).
fn session_guardrails(
    state: &AppState,
    who: &crate::auth::Identity,
    connection: &str,
) -> Vec<String> {
    use hoop_shared::policy::Outcome;
    match state.policy.decide(who, connection).outcome {
        Outcome::Allow { guardrails, .. } | Outcome::Approval { guardrails, .. } => guardrails,
        Outcome::Deny => Vec::new(),
    }
}
