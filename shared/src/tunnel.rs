//! The tunnel handshake between hoopctl and the broker (see `docs/protocol.md`).
//!
//! 1. hoopctl opens TLS to the broker's one HTTPS port and sends
//!    `GET /v1/sessions/{id}/tunnel` with `Connection: Upgrade`,
//!    `Upgrade: hoop-tunnel/1` and `Authorization: Bearer <token>`.
//!    Anything wrong at this stage (no or bad token, unknown or foreign
//!    session, expired grant) is an ordinary HTTP error with an
//!    [`crate::api::ApiErrorBody`].
//! 2. The broker answers `101 Switching Protocols`. From here the stream is
//!    ours: hoopctl sends one [`ClientHello`] frame, the broker answers one
//!    [`ServerHello`] frame. A frame is a 4-byte big-endian length followed by
//!    that many bytes of JSON, at most [`MAX_FRAME_LEN`]. Each side gives the
//!    other [`HANDSHAKE_TIMEOUT`] to send its frame.
//! 3. After `ServerHello::Ready`, the stream carries the target protocol's
//!    bytes unchanged (for Postgres: the client's startup message onwards),
//!    and the broker speaks that protocol to the client. For `ssh`, the
//!    hello carries hoopctl's one-time public key
//!    ([`ClientHello::ssh_public_key`]) and the broker connects to the target
//!    (checking its pinned host key) before it answers `Ready`; a target it
//!    cannot reach or trust is a [`RefusalCode::Upstream`] refusal.

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::api::ConnectionKind;

/// Value of the HTTP `Upgrade` header; the suffix is the major protocol version.
pub const UPGRADE_PROTOCOL: &str = "hoop-tunnel/1";

/// Version carried in the hello frames. A broker refuses a hello whose version
/// it does not speak with [`RefusalCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side accepts during the handshake.
pub const MAX_FRAME_LEN: usize = 16 * 1024;

/// How long either side waits for the other's hello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// hoopctl → broker, first frame after the upgrade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientHello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// Client name and version, e.g. `hoopctl/0.1.0`, for the audit trail.
    pub client: String,
    /// Address of the local program that connected to hoopctl's listener,
    /// for the audit trail (e.g. `127.0.0.1:51234`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_peer: Option<String>,
    /// For an `ssh` connection: the public half of the one-time key pair
    /// hoopctl made for this session (one OpenSSH line, `ssh-ed25519 ...`).
    /// The broker's SSH server on this stream accepts that key and nothing
    /// else, so whoever reaches hoopctl's local port without the private
    /// half gets nowhere. Absent for other protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_key: Option<String>,
}

/// broker → hoopctl, answer to the [`ClientHello`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerHello {
    /// The broker now speaks `protocol` on this stream.
    Ready {
        /// [`PROTOCOL_VERSION`] the broker speaks on this stream.
        version: u32,
        /// The session this stream belongs to.
        session_id: String,
        /// Name of the connection.
        connection: String,
        /// Target protocol spoken from now on.
        protocol: ConnectionKind,
        /// When the grant behind this session ends (Unix seconds).
        expires_at: u64,
    },
    /// The broker will not carry this stream; it closes after this frame.
    Refused {
        /// Machine-readable reason.
        code: RefusalCode,
        /// What the user should read, and what to do next.
        message: String,
    },
}

/// Why a tunnel was refused after the upgrade.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The hello's version is not one the broker speaks.
    UnsupportedVersion,
    /// The hello could not be read (malformed, too large, too slow).
    BadHello,
    /// The session ended while the stream was being set up.
    SessionEnded,
    /// The broker is shutting down.
    ShuttingDown,
    /// The target could not be reached, refused the broker's credential, or
    /// failed verification (an SSH host key that is not the pinned one).
    Upstream,
    /// The hello lacks what this connection's protocol needs (an SSH
    /// connection without `ssh_public_key`).
    MissingCredential,
}

/// A fresh random seed for hoopctl's one-time Ed25519 SSH key (zeroed on drop).
pub fn one_time_key_seed() -> zeroize::Zeroizing<[u8; 32]> {
    use rand::RngCore as _;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *seed);
    seed
}

/// Errors reading or writing a handshake frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a frame larger than [`MAX_FRAME_LEN`].
    #[error("handshake frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    /// The frame was not the expected JSON message.
    #[error("malformed handshake frame: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The peer did not send its frame within [`HANDSHAKE_TIMEOUT`].
    #[error("timed out after {}s waiting for the handshake", HANDSHAKE_TIMEOUT.as_secs())]
    Timeout,
    /// The stream failed or closed.
    #[error("handshake stream failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one frame: 4-byte big-endian length, then JSON.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame within [`HANDSHAKE_TIMEOUT`]. Reads exactly the frame's
/// bytes, so whatever follows stays in the stream for the target protocol.
pub async fn read_frame<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame_untimed(r))
        .await
        .map_err(|_| FrameError::Timeout)?
}

async fn read_frame_untimed<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hello_round_trips_and_leaves_following_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let hello = ClientHello {
            version: PROTOCOL_VERSION,
            client: "hoopctl/test".into(),
            local_peer: Some("127.0.0.1:5".into()),
            ssh_public_key: None,
        };
        write_frame(&mut a, &hello).await.unwrap();
        a.write_all(b"\x00\x00\x00\x08").await.unwrap();
        let got: ClientHello = read_frame(&mut b).await.unwrap();
        assert_eq!(got, hello);
        let mut rest = [0u8; 4];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, [0, 0, 0, 8]);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_frame::<_, ClientHello>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(n) if n == u32::MAX as usize));
    }

    #[tokio::test]
    async fn garbage_frame_is_malformed() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&3u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{x}").await.unwrap();
        let err = read_frame::<_, ClientHello>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out() {
        let (_a, mut b) = tokio::io::duplex(64);
        let err = read_frame::<_, ClientHello>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::Timeout));
    }

    #[test]
    fn server_hello_wire_shape_is_stable() {
        let refused = ServerHello::Refused {
            code: RefusalCode::SessionEnded,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"status":"refused","code":"session_ended","message":"m"}"#
        );
    }
}
