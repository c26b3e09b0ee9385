//! The local port's gate: a new local connection proves itself to hoopctl
//! before any broker resource is spent on it.
//!
//! Any process on the machine can connect to 127.0.0.1:PORT. So hoopctl, not
//! the broker, checks the first bytes, under a short deadline
//! ([`crate::tunnel::LOCAL_STARTUP_TIMEOUT`], enforced by the caller):
//!
//! - **Postgres**: hoopctl plays the server for the startup. It answers `N`
//!   to SSLRequest/GSSENCRequest (the loopback leg is plain TCP; the broker
//!   leg is TLS), reads the StartupMessage, asks for a cleartext password
//!   and compares it, in constant time, with the session's one-time secret.
//!   Only then is a tunnel opened; the StartupMessage is replayed to the
//!   broker, whose own password request hoopctl answers with the same secret
//!   ([`finish_postgres_startup`]), and the client sees the broker's
//!   `AuthenticationOk` and everything after. A wrong secret gets the same
//!   `FATAL 28P01` the broker would send, from hoopctl, and nothing reaches
//!   the broker.
//! - **Postgres CancelRequest** (psql's Ctrl-C, which carries no password):
//!   forwarded only when its (pid, key) is one the broker issued on a
//!   connection of this tunnel ([`CancelKeys`]); any other is dropped, as
//!   PostgreSQL itself answers nothing to a cancel.
//! - **SSH**: the client speaks first with its identification line
//!   (`SSH-2.0-...`, RFC 4253 §4.2); the bytes read are replayed to the broker,
//!   which authenticates the session's one-time key.
//!
//! Input comes from an arbitrary local program: lengths are bounded before
//! anything is allocated, no indexing can panic.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::BytesMut;
use hoop_shared::Secret;
use pgwire::messages::startup::{Authentication, NegotiateProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::pg_refusal;

/// Longest startup packet accepted (PostgreSQL's own limit is 10000).
const MAX_STARTUP_LEN: usize = 10_000;
/// Longest password message accepted.
const MAX_PASSWORD_LEN: usize = 1024;
/// Longest message the broker may send before `ReadyForQuery`.
const MAX_BROKER_STARTUP_MESSAGE: usize = 1 << 20;
/// Most messages the broker may send before `ReadyForQuery`.
const MAX_BROKER_STARTUP_MESSAGES: usize = 10_000;
/// Longest SSH identification line (RFC 4253 §4.2).
const MAX_SSH_IDENT: usize = 255;

const SSL_REQUEST: i32 = 80_877_103;
const GSS_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// Protocol 3.0, the one the broker speaks.
const PROTOCOL_3_0: i32 = 196_608;

/// What hoopctl tells a client whose password is not the one-time secret
/// (the broker's words, so the client sees one message whoever checks).
pub const BAD_SECRET_MESSAGE: &str = "hoop: password authentication failed: this local port \
     accepts only the one-time secret that hoopctl gave the command it started (PGPASSWORD)";

/// Why a local connection did not prove itself.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The socket failed.
    #[error("local connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// Not the expected protocol, or malformed.
    #[error("local client: {0}")]
    Protocol(String),
    /// The wrong one-time secret (the client was told).
    #[error("local client presented a wrong one-time secret")]
    BadSecret,
}

/// How a local connection opened.
#[derive(Debug)]
pub enum Opening {
    /// A Postgres client that presented the one-time secret.
    Postgres {
        /// The StartupMessage as received, to replay to the broker.
        startup: Vec<u8>,
        /// hoopctl already sent NegotiateProtocolVersion; the broker's is dropped.
        negotiated: bool,
    },
    /// A Postgres CancelRequest (the whole 16-byte packet).
    Cancel(CancelKey),
    /// An SSH client: the bytes read so far, starting with `SSH-`.
    Ssh(Vec<u8>),
    /// The client left before saying anything that needs the broker.
    Gone,
}

/// A Postgres cancel key: backend pid and secret key, as the broker issued them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CancelKey {
    /// BackendKeyData's process id.
    pub pid: i32,
    /// BackendKeyData's secret key bytes.
    pub key: Vec<u8>,
}

impl CancelKey {
    /// The CancelRequest packet for this key.
    pub fn request(&self) -> Vec<u8> {
        let len = 12 + self.key.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&i32::try_from(len).unwrap_or(16).to_be_bytes());
        out.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
        out.extend_from_slice(&self.pid.to_be_bytes());
        out.extend_from_slice(&self.key);
        out
    }
}

/// The cancel keys the broker issued on this tunnel's live connections.
#[derive(Debug, Default)]
pub struct CancelKeys(Mutex<HashSet<CancelKey>>);

impl CancelKeys {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<CancelKey>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Remembers a key (the connection is live).
    pub fn insert(&self, key: CancelKey) {
        self.set().insert(key);
    }
    /// Forgets a key (its connection ended).
    pub fn remove(&self, key: &CancelKey) {
        self.set().remove(key);
    }
    /// True when the broker issued this key on a live connection.
    pub fn contains(&self, key: &CancelKey) -> bool {
        self.set().contains(key)
    }
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

/// Reads one startup-phase packet (length, then body); `None` on EOF before any byte.
async fn read_startup_packet<S>(s: &mut S) -> Result<Option<Vec<u8>>, GateError>
where
    S: AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    match s.read(&mut len[..1]).await? {
        0 => return Ok(None),
        _ => s.read_exact(&mut len[1..]).await?,
    };
    let len = usize::try_from(i32::from_be_bytes(len)).unwrap_or(0);
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(GateError::Protocol(format!(
            "invalid startup packet length {len}"
        )));
    }
    let mut packet = vec![0u8; len];
    packet
        .get_mut(..4)
        .ok_or_else(|| GateError::Protocol("short packet".into()))?
        .copy_from_slice(&i32::try_from(len).unwrap_or(0).to_be_bytes());
    s.read_exact(
        packet
            .get_mut(4..)
            .ok_or_else(|| GateError::Protocol("short packet".into()))?,
    )
    .await?;
    Ok(Some(packet))
}

/// The `key\0value\0...\0` parameters of a StartupMessage body.
fn startup_parameters(packet: &[u8]) -> Vec<(String, String)> {
    let body = packet.get(8..).unwrap_or_default();
    let mut fields = body.split(|b| *b == 0);
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
        if k.is_empty() {
            break;
        }
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    out
}

async fn send<S, M>(s: &mut S, message: M) -> Result<(), GateError>
where
    S: AsyncWrite + Unpin,
    M: pgwire::messages::Message,
{
    let mut out = BytesMut::new();
    message
        .encode(&mut out)
        .map_err(|e| GateError::Protocol(e.to_string()))?;
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}

/// Reads one tagged message (`tag`, length, body) of at most `max` bytes.
/// `None` on EOF before the tag.
pub async fn read_message<S>(s: &mut S, max: usize) -> std::io::Result<Option<(u8, Vec<u8>)>>
where
    S: AsyncRead + Unpin,
{
    let mut tag = [0u8; 1];
    if s.read(&mut tag).await? == 0 {
        return Ok(None);
    }
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = usize::try_from(i32::from_be_bytes(len)).unwrap_or(0);
    if !(4..=max).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid message length {len}"),
        ));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await?;
    let [tag] = tag;
    Ok(Some((tag, body)))
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(
        &i32::try_from(body.len() + 4)
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(body);
    out
}

/// The Postgres side of the gate: see the module docs. `secret` is the
/// session's one-time secret.
pub async fn prove_postgres<S>(client: &mut S, secret: &Secret) -> Result<Opening, GateError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A client may try SSL, then GSS, before its startup; more is not a client.
    for _ in 0..3 {
        let Some(packet) = read_startup_packet(client).await? else {
            return Ok(Opening::Gone);
        };
        let code = be_i32(&packet, 4).unwrap_or_default();
        match code {
            SSL_REQUEST | GSS_REQUEST if packet.len() == 8 => {
                client.write_all(b"N").await?;
                client.flush().await?;
            }
            CANCEL_REQUEST => {
                let pid = be_i32(&packet, 8)
                    .ok_or_else(|| GateError::Protocol("malformed cancel request".into()))?;
                let key = packet.get(12..).unwrap_or_default().to_vec();
                return Ok(Opening::Cancel(CancelKey { pid, key }));
            }
            version if version >> 16 == 3 => {
                return check_password(client, packet, secret).await;
            }
            version => {
                let message = format!(
                    "hoop: unsupported frontend protocol {}.{}: the broker supports protocol 3.0",
                    version >> 16,
                    version & 0xffff
                );
                send(client, pg_refusal::fatal("0A000", &message, None)).await?;
                return Err(GateError::Protocol(message));
            }
        }
    }
    Err(GateError::Protocol(
        "too many encryption requests before the startup message".into(),
    ))
}

async fn check_password<S>(
    client: &mut S,
    startup: Vec<u8>,
    secret: &Secret,
) -> Result<Opening, GateError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let minor = be_i32(&startup, 4).unwrap_or_default() & 0xffff;
    let unsupported: Vec<String> = startup_parameters(&startup)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    // As the broker does: a 3.2 client (PostgreSQL 18 libpq) continues at 3.0.
    let negotiated = minor > 0 || !unsupported.is_empty();
    if negotiated {
        send(
            client,
            NegotiateProtocolVersion::new(PROTOCOL_3_0, unsupported),
        )
        .await?;
    }
    send(client, Authentication::CleartextPassword).await?;
    let Some((tag, body)) = read_message(client, MAX_PASSWORD_LEN).await? else {
        // psql closes here to prompt for a password, then reconnects.
        return Ok(Opening::Gone);
    };
    if tag != b'p' {
        return Err(GateError::Protocol(format!(
            "expected a password message, got message type '{}'",
            char::from(tag).escape_default()
        )));
    }
    let presented = body.split(|b| *b == 0).next().unwrap_or_default();
    if !secret.matches(presented) {
        let hint = "Start your client through hoopctl (e.g. `hoopctl connect NAME -- psql`), \
                    or use the PGPASSWORD it printed";
        send(
            client,
            pg_refusal::fatal("28P01", BAD_SECRET_MESSAGE, Some(hint)),
        )
        .await?;
        let _ = client.shutdown().await;
        return Err(GateError::BadSecret);
    }
    Ok(Opening::Postgres {
        startup,
        negotiated,
    })
}

/// After the tunnel is open: replays the client's StartupMessage to the
/// broker, answers the broker's password request with the one-time secret,
/// and passes everything else on to the client until `ReadyForQuery` or an
/// error. Returns the cancel key the broker issued, if any.
pub async fn finish_postgres_startup<C, B>(
    client: &mut C,
    broker: &mut B,
    startup: &[u8],
    negotiated: bool,
    secret: &Secret,
) -> std::io::Result<Option<CancelKey>>
where
    C: AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    broker.write_all(startup).await?;
    broker.flush().await?;
    let mut cancel_key = None;
    for _ in 0..MAX_BROKER_STARTUP_MESSAGES {
        let Some((tag, body)) = read_message(broker, MAX_BROKER_STARTUP_MESSAGE).await? else {
            break;
        };
        match tag {
            // Already told the client.
            b'v' if negotiated => continue,
            b'R' if be_i32(&body, 0) == Some(3) => {
                let mut password = secret.expose().as_bytes().to_vec();
                password.push(0);
                broker.write_all(&frame(b'p', &password)).await?;
                broker.flush().await?;
                continue;
            }
            b'K' => {
                if let Some(pid) = be_i32(&body, 0) {
                    cancel_key = Some(CancelKey {
                        pid,
                        key: body.get(4..).unwrap_or_default().to_vec(),
                    });
                }
            }
            _ => {}
        }
        client.write_all(&frame(tag, &body)).await?;
        if matches!(tag, b'Z' | b'E') {
            break;
        }
    }
    client.flush().await?;
    Ok(cancel_key)
}

/// The SSH side of the gate: reads until the client's first bytes show
/// `SSH-` (or its identification line is complete), and returns them.
pub async fn prove_ssh<S>(client: &mut S) -> Result<Opening, GateError>
where
    S: AsyncRead + Unpin,
{
    let mut seen = Vec::with_capacity(64);
    let mut buf = [0u8; MAX_SSH_IDENT];
    while seen.len() < 4 {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(Opening::Gone);
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    if !seen.starts_with(b"SSH-") {
        return Err(GateError::Protocol(
            "not an SSH client (no SSH- identification line)".into(),
        ));
    }
    Ok(Opening::Ssh(seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::messages::Message as _;
    use pgwire::messages::startup::{SslRequest, Startup};
    use tokio::io::duplex;

    fn startup_bytes(params: &[(&str, &str)]) -> Vec<u8> {
        let mut s = Startup::new();
        for (k, v) in params {
            s.parameters.insert((*k).into(), (*v).into());
        }
        let mut out = BytesMut::new();
        s.encode(&mut out).unwrap();
        out.to_vec()
    }

    #[tokio::test]
    async fn ssl_then_startup_then_the_right_secret_opens() {
        let (mut client, mut server) = duplex(64 * 1024);
        let secret = Secret::new("s3cret");
        let gate = tokio::spawn(async move { prove_postgres(&mut server, &secret).await });
        let mut out = BytesMut::new();
        SslRequest::new().encode(&mut out).unwrap();
        client.write_all(&out).await.unwrap();
        let mut n = [0u8; 1];
        client.read_exact(&mut n).await.unwrap();
        assert_eq!(&n, b"N");
        let startup = startup_bytes(&[("user", "alice"), ("database", "demo")]);
        client.write_all(&startup).await.unwrap();
        let (tag, body) = read_message(&mut client, 1024).await.unwrap().unwrap();
        assert_eq!((tag, be_i32(&body, 0)), (b'R', Some(3)));
        client.write_all(&frame(b'p', b"s3cret\0")).await.unwrap();
        match gate.await.unwrap().unwrap() {
            Opening::Postgres {
                startup: got,
                negotiated,
            } => {
                assert_eq!(got, startup);
                assert!(!negotiated);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_wrong_secret_gets_fatal_28p01_from_hoopctl() {
        let (mut client, mut server) = duplex(64 * 1024);
        let gate =
            tokio::spawn(async move { prove_postgres(&mut server, &Secret::new("right")).await });
        client
            .write_all(&startup_bytes(&[("user", "alice")]))
            .await
            .unwrap();
        read_message(&mut client, 1024).await.unwrap().unwrap();
        client.write_all(&frame(b'p', b"wrong\0")).await.unwrap();
        let (tag, body) = read_message(&mut client, 4096).await.unwrap().unwrap();
        assert_eq!(tag, b'E');
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("28P01") && text.contains("one-time secret"),
            "{text}"
        );
        assert!(matches!(gate.await.unwrap(), Err(GateError::BadSecret)));
    }

    #[tokio::test]
    async fn lengths_are_bounded_and_cancel_keys_parsed() {
        let (mut client, mut server) = duplex(1024);
        client.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
        let r = prove_postgres(&mut server, &Secret::new("x")).await;
        assert!(matches!(r, Err(GateError::Protocol(_))), "{r:?}");

        let key = CancelKey {
            pid: 42,
            key: vec![1, 2, 3, 4],
        };
        let (mut client, mut server) = duplex(1024);
        client.write_all(&key.request()).await.unwrap();
        match prove_postgres(&mut server, &Secret::new("x"))
            .await
            .unwrap()
        {
            Opening::Cancel(got) => assert_eq!(got, key),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_broker_leg_gets_the_secret_and_the_client_the_rest() {
        let (mut client, mut client_end) = duplex(64 * 1024);
        let (mut broker, mut broker_end) = duplex(64 * 1024);
        let secret = Secret::new("s3cret");
        let startup = startup_bytes(&[("user", "alice")]);
        let sent = startup.clone();
        let relay = tokio::spawn(async move {
            finish_postgres_startup(&mut client_end, &mut broker_end, &sent, true, &secret).await
        });
        // The broker: sees the startup, negotiates, asks for the password.
        let got = read_startup_packet(&mut broker).await.unwrap().unwrap();
        assert_eq!(got, startup);
        broker.write_all(&frame(b'v', &[0; 8])).await.unwrap();
        broker
            .write_all(&frame(b'R', &3i32.to_be_bytes()))
            .await
            .unwrap();
        let (tag, body) = read_message(&mut broker, 1024).await.unwrap().unwrap();
        assert_eq!((tag, body.as_slice()), (b'p', &b"s3cret\0"[..]));
        broker
            .write_all(&frame(b'R', &0i32.to_be_bytes()))
            .await
            .unwrap();
        broker
            .write_all(&frame(b'K', &[0, 0, 0, 7, 9, 9, 9, 9]))
            .await
            .unwrap();
        broker.write_all(&frame(b'Z', b"I")).await.unwrap();
        let key = relay.await.unwrap().unwrap();
        assert_eq!(
            key,
            Some(CancelKey {
                pid: 7,
                key: vec![9, 9, 9, 9]
            })
        );
        // The client sees no 'v' (hoopctl sent its own) and no password request.
        let mut tags = Vec::new();
        while let Ok(Some((tag, _))) = read_message(&mut client, 1024).await {
            tags.push(tag);
            if tag == b'Z' {
                break;
            }
        }
        assert_eq!(tags, b"RKZ");
    }

    #[tokio::test]
    async fn ssh_needs_its_identification_line() {
        let (mut client, mut server) = duplex(1024);
        client.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
        match prove_ssh(&mut server).await.unwrap() {
            Opening::Ssh(bytes) => assert!(bytes.starts_with(b"SSH-2.0")),
            other => panic!("{other:?}"),
        }
        let (mut client, mut server) = duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(prove_ssh(&mut server).await.is_err());
    }
}
