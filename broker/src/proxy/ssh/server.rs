//! The client-facing SSH server on one tunnel stream.
//!
//! Authentication: `publickey` only, and only the one-time key hoopctl
//! announced in the tunnel hello; everything else is rejected (russh makes
//! rejections take a constant time). A client that has not logged in within
//! [`super::CLIENT_AUTH_TIMEOUT`] is disconnected.
//!
//! Channels: `session` channels are bridged to a channel on the target. Each
//! request is judged here, answered at once (so replies stay in the order the
//! client expects), and forwarded without `want_reply`:
//!
//! | request | what happens |
//! |---|---|
//! | pty-req, window-change, signal | forwarded (window changes are recorded) |
//! | env | forwarded when the name is in `allow_env`, else refused |
//! | shell | forwarded when `allow_shell`, recorded as asciicast |
//! | exec | judged by the command guard ([`crate::guard::shell`]); audited before it is forwarded |
//! | subsystem `sftp` | forwarded, bytes counted; other subsystems refused |
//! | x11-req, auth-agent-req | refused |
//!
//! `direct-tcpip` channels (`ssh -L`, `-W`) are opened only with
//! `allow_port_forwarding`; `tcpip-forward` (`ssh -R`), streamlocal and X11
//! channels are always refused (russh's defaults reject them).
//!
//! When the session's time runs out, the grant is revoked or the broker
//! stops, every open channel gets a line on stderr saying why, then the
//! connection is closed with the same reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelWriteHalf, MethodKind, MethodSet, Pty, Sig};
use tokio::task::JoinSet;

use super::bridge::{self, RecordSlot};
use super::client::Upstream;
use super::recording::{EntryKind, Recordings, SessionMeta};
use super::{CLIENT_AUTH_TIMEOUT, EXIT_REFUSED, SessionInfo, SshError, SshTarget};
use crate::app::{AppState, now_unix};
use crate::guard::Action;
use crate::store::Event;

/// Everything [`serve`] needs.
pub struct ServeArgs {
    /// The broker's host key.
    pub host_key: Arc<PrivateKey>,
    /// Where recordings go.
    pub recordings: Arc<Recordings>,
    /// For the audit trail.
    pub state: Arc<AppState>,
    /// The broker session.
    pub info: SessionInfo,
    /// The connection.
    pub target: Arc<SshTarget>,
    /// The logged-in target connection.
    pub upstream: Upstream,
}

struct Chan {
    up: ChannelWriteHalf<russh::client::Msg>,
    slot: RecordSlot,
    pty: Option<(u32, u32, String)>,
    /// A shell, exec or subsystem already runs on it.
    started: bool,
}

struct ClientSide {
    target: Arc<SshTarget>,
    info: SessionInfo,
    meta: SessionMeta,
    state: Arc<AppState>,
    recordings: Arc<Recordings>,
    upstream: Arc<russh::client::Handle<super::client::PinnedHost>>,
    channels: HashMap<ChannelId, Chan>,
    open: Arc<Mutex<HashSet<ChannelId>>>,
    authed: tokio::sync::watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Serves the SSH protocol on `stream` until the client leaves or the
/// session must end.
pub async fn serve<S>(args: ServeArgs, stream: S) -> Result<(), SshError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let config = Arc::new(russh::server::Config {
        keys: vec![(*args.host_key).clone()],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_secs(1),
        // OpenSSH probes with "none" first; answering that at once is fine.
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 6,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    });
    let (authed_tx, mut authed_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(Mutex::new(HashSet::new()));
    let grant = args.info.grant.clone().unwrap_or_default();
    let expires_at = args.info.expires_at;
    let shutdown = args.state.shutdown.clone();
    let handler = ClientSide {
        meta: SessionMeta {
            session_id: args.info.session_id.clone(),
            user: args.info.user.clone(),
            connection: args.target.connection.clone(),
        },
        target: args.target,
        info: args.info,
        state: args.state,
        recordings: args.recordings,
        upstream: Arc::new(args.upstream.handle),
        channels: HashMap::new(),
        open: open.clone(),
        authed: authed_tx,
        tasks: JoinSet::new(),
    };
    let running = russh::server::run_stream(config, stream, handler)
        .await
        .map_err(|e| SshError::Session(e.to_string()))?;
    let handle = running.handle();
    tokio::pin!(running);
    let left = expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let expiry = tokio::time::sleep(left);
    let auth_deadline = tokio::time::sleep(CLIENT_AUTH_TIMEOUT);
    tokio::pin!(expiry, auth_deadline);
    let mut authed = false;
    let why = loop {
        tokio::select! {
            r = &mut running => {
                return r.map_err(|e| SshError::Session(e.to_string()));
            }
            () = &mut expiry => {
                let when = humantime::format_rfc3339_seconds(expires_at);
                break format!("the session ended at {when}; run `hoopctl connect` again");
            }
            () = grant.cancelled() => {
                break "the access grant behind this session was revoked".to_owned();
            }
            () = shutdown.cancelled() => break "the broker is shutting down".to_owned(),
            changed = authed_rx.changed(), if !authed => {
                authed = changed.is_ok() && *authed_rx.borrow();
            }
            () = &mut auth_deadline, if !authed => {
                break format!("no login within {}s", CLIENT_AUTH_TIMEOUT.as_secs());
            }
        }
    };
    tracing::info!("ending the ssh session: {why}");
    let ids: Vec<ChannelId> = open
        .lock()
        .map(|o| o.iter().copied().collect())
        .unwrap_or_default();
    let line = format!("\r\nhoop: {why}\r\n");
    for id in ids {
        let _ = handle.extended_data(id, 1, line.clone().into_bytes()).await;
        let _ = handle.close(id).await;
    }
    let _ = handle
        .disconnect(
            russh::Disconnect::ByApplication,
            format!("hoop: {why}"),
            "en".into(),
        )
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut running).await;
    Ok(())
}

impl ClientSide {
    async fn audit(&self, kind: &str, detail: String) {
        self.state
            .audit(Event {
                at: now_unix(),
                kind: kind.into(),
                user_name: Some(self.info.user.clone()),
                connection: Some(self.target.connection.clone()),
                session_id: Some(self.info.session_id.clone()),
                detail,
            })
            .await;
    }

    fn key_is_ours(&self, key: &russh::keys::PublicKey) -> bool {
        key.key_data() == self.info.client_key.key_data()
    }

    /// Answers a request with a message on stderr and a failed exit, and
    /// closes the channel (the client's ssh prints the message and exits
    /// with [`EXIT_REFUSED`]).
    fn refuse_on_channel(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
        message: &str,
    ) -> Result<(), russh::Error> {
        session.channel_success(channel)?;
        session.extended_data(channel, 1, format!("hoop: {message}\r\n").into_bytes())?;
        session.exit_status_request(channel, EXIT_REFUSED)?;
        session.eof(channel)?;
        session.close(channel)?;
        if let Some(c) = self.channels.remove(&channel) {
            // The target's side of the channel is not needed any more.
            self.tasks.spawn(async move {
                let _ = c.up.close().await;
            });
        }
        Ok(())
    }

    fn start_record(
        &self,
        chan: &Chan,
        kind: EntryKind,
        command: Option<&str>,
        rule: Option<&str>,
    ) {
        let pty = chan.pty.as_ref().map(|(w, h, t)| (*w, *h, t.as_str()));
        let pty = if kind == EntryKind::Shell {
            Some(pty.unwrap_or((80, 24, "xterm")))
        } else {
            None
        };
        match self.recordings.start(&self.meta, kind, command, rule, pty) {
            Ok(r) => {
                *chan.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            Err(e) => tracing::error!("cannot start the recording: {e}"),
        }
    }
}

impl russh::server::Handler for ClientSide {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_is_ours(offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.key_is_ours(key.public_key) {
            let _ = self.authed.send(true);
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !*self.authed.borrow() {
            return Ok(());
        }
        let id = channel.id();
        let up = match self.upstream.channel_open_session().await {
            Ok(up) => up,
            Err(e) => {
                tracing::warn!("the target refused a session channel: {e}");
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        let (up_read, up_write) = up.split();
        let slot: RecordSlot = Arc::default();
        self.tasks.spawn(bridge::target_to_client(
            up_read,
            session.handle(),
            id,
            slot.clone(),
        ));
        reply.accept().await;
        if let Ok(mut o) = self.open.lock() {
            o.insert(id);
        }
        // The client's own Channel object is not needed: its traffic arrives
        // through the callbacks below.
        drop(channel);
        self.channels.insert(
            id,
            Chan {
                up: up_write,
                slot,
                pty: None,
                started: false,
            },
        );
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let to = format!("{host_to_connect}:{port_to_connect}");
        if !*self.authed.borrow() || !self.target.allow_port_forwarding {
            self.audit("ssh.forward.refused", format!("direct-tcpip to {to}"))
                .await;
            self.recordings.refused(
                &self.meta,
                EntryKind::Forward,
                Some(&to),
                "refused",
                None,
                "port forwarding is not allowed on this connection",
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let up = match self
            .upstream
            .channel_open_direct_tcpip(
                host_to_connect,
                port_to_connect,
                originator_address,
                originator_port,
            )
            .await
        {
            Ok(up) => up,
            Err(_) => {
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        self.audit("ssh.forward", format!("direct-tcpip to {to}"))
            .await;
        let rec = self
            .recordings
            .start(&self.meta, EntryKind::Forward, Some(&to), None, None)
            .ok();
        reply.accept().await;
        self.tasks.spawn(async move {
            let mut a = channel.into_stream();
            let mut b = up.into_stream();
            if let Ok((up_bytes, down_bytes)) = tokio::io::copy_bidirectional(&mut a, &mut b).await
                && let Some(r) = &rec
            {
                r.counted(up_bytes, down_bytes);
            }
        });
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.audit(
            "ssh.forward.refused",
            format!("tcpip-forward (ssh -R) on {address}:{port}"),
        )
        .await;
        Ok(false)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // Agent forwarding would hand the target a way back to the user's keys.
        Ok(false)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.get(&channel) {
            if let Some(r) = c.slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                r.input(data);
            }
            // Waits for the target's window: back-pressure reaches the client.
            c.up.data_bytes(bytes::Bytes::copy_from_slice(data)).await?;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.get(&channel) {
            c.up.eof().await?;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Ok(mut o) = self.open.lock() {
            o.remove(&channel);
        }
        if let Some(c) = self.channels.remove(&channel) {
            let _ = c.up.close().await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(c) = self.channels.get_mut(&channel) else {
            return session.channel_failure(channel);
        };
        c.up.request_pty(
            false, term, col_width, row_height, pix_width, pix_height, modes,
        )
        .await?;
        c.pty = Some((col_width, row_height, term.to_owned()));
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let allowed = self.target.allow_env.iter().any(|v| v == variable_name);
        match self.channels.get(&channel) {
            Some(c) if allowed => {
                c.up.set_env(false, variable_name, variable_value).await?;
                session.channel_success(channel)
            }
            _ => {
                tracing::debug!(variable = %variable_name, "env request refused (not in allow_env)");
                session.channel_failure(channel)
            }
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.get(&channel).is_none_or(|c| c.started) {
            return session.channel_failure(channel);
        }
        if !self.target.allow_shell {
            self.audit("ssh.shell.refused", "allow_shell = false".into())
                .await;
            self.recordings.refused(
                &self.meta,
                EntryKind::Shell,
                None,
                "refused",
                None,
                "interactive shells are not allowed",
            );
            let message = format!(
                "interactive shells are not allowed on {}; run a command instead \
                 (`hoopctl exec {} -- 'COMMAND'`)",
                self.target.connection, self.target.connection
            );
            return self.refuse_on_channel(channel, session, &message);
        }
        self.audit("ssh.shell", "interactive shell".into()).await;
        if let Some(c) = self.channels.get_mut(&channel) {
            c.started = true;
        }
        if let Some(c) = self.channels.get(&channel) {
            self.start_record(c, EntryKind::Shell, None, None);
            c.up.request_shell(false).await?;
        }
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.get(&channel).is_none_or(|c| c.started) {
            return session.channel_failure(channel);
        }
        let command = String::from_utf8_lossy(data).into_owned();
        let verdict = self.target.guard.judge(&command);
        let mut review_approved = None;
        match verdict.action {
            Action::Block => {
                self.audit(
                    "ssh.exec.blocked",
                    format!("{command:?}: {}", verdict.reason),
                )
                .await;
                self.recordings.refused(
                    &self.meta,
                    EntryKind::Exec,
                    Some(&command),
                    "blocked",
                    verdict.rule.as_deref(),
                    &verdict.reason,
                );
                let message = format!("command refused: {}", verdict.reason);
                return self.refuse_on_channel(channel, session, &message);
            }
            Action::Review => {
                // The same review flow as held SQL: an approved, unused
                // review of this exact command lets it run once; otherwise
                // the command waits for one (named in the refusal).
                let ask = crate::review::ReviewAsk {
                    requester: self.info.requester.clone(),
                    session_id: self.info.session_id.clone(),
                    connection: self.target.connection.clone(),
                    sql: command.clone(),
                    guardrail: verdict.rule.clone().unwrap_or_default(),
                    rule_approvers: None,
                    rule_approvals: None,
                };
                let refusal = match self.state.reviews.review(ask).await {
                    Ok(crate::review::ReviewOutcome::Run { request_id }) => {
                        review_approved = Some(request_id);
                        None
                    }
                    Ok(crate::review::ReviewOutcome::Held {
                        request_id,
                        approvers,
                        ..
                    }) => Some((
                        format!("held for review as request {request_id}"),
                        format!(
                            "command held for review ({}): request {request_id}, approvers: \
                             {approvers}. Follow it with `hoopctl requests show {request_id}`; \
                             once it is approved, run the same command again (once).",
                            verdict.reason
                        ),
                    )),
                    Err(e) => Some((
                        format!("review unavailable: {e}"),
                        format!("command held for review ({}), but {e}", verdict.reason),
                    )),
                };
                if let Some((why, message)) = refusal {
                    self.audit("ssh.exec.held", format!("{command:?}: {why}"))
                        .await;
                    self.recordings.refused(
                        &self.meta,
                        EntryKind::Exec,
                        Some(&command),
                        "held_for_review",
                        verdict.rule.as_deref(),
                        &why,
                    );
                    return self.refuse_on_channel(channel, session, &message);
                }
            }
            Action::Allow => {}
        }
        // The audit record is durable before the command reaches the target.
        self.audit(
            "ssh.exec",
            match (&verdict.rule, &review_approved) {
                (Some(rule), Some(id)) => {
                    format!("{command:?} (rule {rule}; approved in review {id})")
                }
                (Some(rule), None) => format!("{command:?} (rule {rule})"),
                (None, _) => format!("{command:?}"),
            },
        )
        .await;
        if let Some(c) = self.channels.get_mut(&channel) {
            c.started = true;
        }
        if let Some(c) = self.channels.get(&channel) {
            self.start_record(c, EntryKind::Exec, Some(&command), verdict.rule.as_deref());
            c.up.exec(false, data.to_vec()).await?;
        }
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" || self.channels.get(&channel).is_none_or(|c| c.started) {
            tracing::debug!(subsystem = %name, "subsystem refused");
            return session.channel_failure(channel);
        }
        self.audit("ssh.sftp", "sftp subsystem".into()).await;
        if let Some(c) = self.channels.get_mut(&channel) {
            c.started = true;
        }
        if let Some(c) = self.channels.get(&channel) {
            self.start_record(c, EntryKind::Sftp, None, None);
            c.up.request_subsystem(false, "sftp").await?;
        }
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.get(&channel) {
            if let Some(r) = c.slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                r.resize(col_width, row_height);
            }
            c.up.window_change(col_width, row_height, pix_width, pix_height)
                .await?;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.get(&channel) {
            c.up.signal(signal).await?;
        }
        Ok(())
    }
}
