//! The session relay: both directions, message by message, after login.
//!
//! Each direction reads into one buffer, walks the complete frames in it
//! (checking each declared length), shows each frame to a [`FrameHook`], and
//! writes the run of accepted frames with one `write_all`. Nothing waits for a
//! whole result set: a frame is forwarded as soon as its last byte arrives, so
//! memory per direction is bounded by one message (plus one read chunk).
//!
//! Each frame is decoded once here ([`super::wire`]: a borrowed view, no
//! copy) and shown, decoded, to the direction's hook: the fixed pipeline of
//! [`super::pipeline`], where statement inspection (`Query`, `Parse`),
//! recording and result masking (`DataRow`) plug in. It is a generic
//! parameter, so stages that are off compile down to a branch each.
//!
//! Ending: the client's EOF (after Terminate or not) half-closes the upstream
//! and the relay keeps forwarding until the server closes, so no trailing
//! bytes are lost. The server's EOF ends the session. Session expiry and
//! protocol violations are reported to the client as a FATAL injected by the
//! server→client direction, which owns the client's write half and is always
//! at a message boundary between its writes.

use std::time::SystemTime;

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;

use super::wire::build::fatal_message;
use super::wire::framing::{
    FrameError, MAX_MESSAGE_LEN, READ_CHUNK, check_len, complete_frame, tagged_len,
};
use super::wire::{Direction, Frame, FromClient, FromServer};

/// Work a hook must finish (a catalog lookup, a durable audit write, a
/// review request) before it can decide on a frame.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// What the relay does with a frame.
pub enum Verdict {
    /// Send it on unchanged.
    Forward,
    /// Send these bytes (zero or more complete frames) instead.
    Replace(Bytes),
    /// Flush what was accepted before this frame, run the future to the end,
    /// then show the *same* frame to the hook again. The hook keeps whatever
    /// the future produced (behind an `Arc`) and must not answer `Wait` for
    /// ever: after the future completes it has to decide.
    Wait(Pending),
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Forward => f.write_str("Forward"),
            Verdict::Replace(b) => f.debug_tuple("Replace").field(&b.len()).finish(),
            Verdict::Wait(_) => f.write_str("Wait"),
        }
    }
}

/// Sees every frame of one direction, in order, decoded.
pub trait FrameHook<D: Direction>: Send {
    /// Called once per complete frame (again after a [`Verdict::Wait`]).
    fn on_frame(&mut self, frame: &Frame<'_, D>) -> Verdict;
}

/// Logs a simple query's text at debug level (the check keeps the
/// per-message cost at one branch when debug is off).
#[inline]
pub(crate) fn log_query(sql: &[u8]) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(query = %String::from_utf8_lossy(sql), "query");
    }
}

/// Why one direction stopped.
#[derive(Debug)]
pub(crate) enum DirectionEnd {
    /// The reading side closed cleanly at a message boundary.
    Eof,
    /// The reading side closed in the middle of a message (`n` bytes dropped).
    TruncatedEof(usize),
    /// A declared length was out of range.
    BadLength(i64),
    /// Reading failed.
    ReadError(std::io::Error),
    /// Writing failed.
    WriteError(std::io::Error),
}

/// Makes room in `buf` for the next read: a whole chunk, or what the pending
/// frame still needs (capped, so a declared length alone never allocates
/// much). Checks the pending frame's declared length first.
fn prepare_read(buf: &mut BytesMut) -> Result<(), DirectionEnd> {
    let want = match tagged_len(buf) {
        Some(declared) => {
            let len = check_len(declared, MAX_MESSAGE_LEN)
                .map_err(|_| DirectionEnd::BadLength(i64::from(declared)))?;
            (len + 1)
                .saturating_sub(buf.len())
                .clamp(READ_CHUNK, 1 << 20)
        }
        None => READ_CHUNK,
    };
    if buf.capacity() - buf.len() < want / 2 {
        buf.reserve(want);
    }
    Ok(())
}

/// What is left when the reading side reached EOF: forward what is complete;
/// a partial frame can never be completed.
async fn finish_at_eof<W, D, H>(writer: &mut W, buf: &mut BytesMut, hook: &mut H) -> DirectionEnd
where
    W: AsyncWrite + Unpin,
    D: Direction,
    H: FrameHook<D>,
{
    match forward_complete(writer, buf, hook).await {
        Err(e) => e,
        Ok(()) if buf.is_empty() => DirectionEnd::Eof,
        Ok(()) => DirectionEnd::TruncatedEof(buf.len()),
    }
}

/// Forwards every complete frame at the front of `buf`, in one write when
/// nothing waits: accepted frames are written straight from `buf`; once a
/// hook replaces a frame, the rest of the batch is assembled in `out` (one
/// read's worth at most), so masking a million rows still costs one write per
/// read, not one per row.
async fn forward_complete<W, D, H>(
    writer: &mut W,
    buf: &mut BytesMut,
    hook: &mut H,
) -> Result<(), DirectionEnd>
where
    W: AsyncWrite + Unpin,
    D: Direction,
    H: FrameHook<D>,
{
    let mut pos = 0usize; // end of the frames examined so far
    let mut run_start = 0usize; // start of the accepted frames not yet in `out` or written
    let mut out = BytesMut::new(); // assembled output, used once something was replaced
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let (tag, body, size) = match complete_frame(rest, MAX_MESSAGE_LEN) {
            Ok(Some(frame)) => frame,
            Ok(None) => break, // incomplete
            Err(FrameError::BadLength(n)) => return Err(DirectionEnd::BadLength(n)),
            Err(_) => break,
        };
        // Decoded once, here; every hook reads the same view.
        match hook.on_frame(&Frame::<D>::decode(tag, body)) {
            Verdict::Forward => pos += size,
            Verdict::Replace(bytes) => {
                out.extend_from_slice(buf.get(run_start..pos).unwrap_or_default());
                out.extend_from_slice(&bytes);
                pos += size;
                run_start = pos;
            }
            Verdict::Wait(pending) => {
                // Everything before this frame goes out first: the hook may
                // be waiting on something that needs the peer to have it.
                flush(
                    writer,
                    &mut out,
                    buf.get(run_start..pos).unwrap_or_default(),
                )
                .await?;
                run_start = pos;
                pending.await;
                // Same `pos`: the frame is shown again.
            }
        }
    }
    flush(
        writer,
        &mut out,
        buf.get(run_start..pos).unwrap_or_default(),
    )
    .await?;
    buf.advance(pos);
    Ok(())
}

/// Writes `out` followed by `run` (with one write when `out` is empty) and
/// empties `out`.
async fn flush<W>(writer: &mut W, out: &mut BytesMut, run: &[u8]) -> Result<(), DirectionEnd>
where
    W: AsyncWrite + Unpin,
{
    if out.is_empty() {
        if !run.is_empty() {
            writer
                .write_all(run)
                .await
                .map_err(DirectionEnd::WriteError)?;
        }
        return Ok(());
    }
    out.extend_from_slice(run);
    writer
        .write_all(out)
        .await
        .map_err(DirectionEnd::WriteError)?;
    out.clear();
    Ok(())
}

/// Client → server. On EOF, half-closes the upstream so the server sees the
/// client leave, and returns. On a protocol violation, asks the other
/// direction to tell the client (through `abort`).
pub(crate) async fn client_to_server<R, W, H>(
    mut reader: R,
    mut writer: W,
    mut buf: BytesMut,
    mut hook: H,
    abort: oneshot::Sender<BytesMut>,
) -> DirectionEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: FrameHook<FromClient>,
{
    let end = loop {
        if let Err(e) = forward_complete(&mut writer, &mut buf, &mut hook).await {
            break e;
        }
        if let Err(e) = prepare_read(&mut buf) {
            break e;
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) => break finish_at_eof(&mut writer, &mut buf, &mut hook).await,
            Ok(_) => {}
            Err(e) => break DirectionEnd::ReadError(e),
        }
    };
    if let DirectionEnd::BadLength(n) = end {
        let _ = abort.send(fatal_message(
            "08P01",
            &format!("hoop: invalid message from the client (declared length {n}); closing the connection"),
            None,
        ));
    }
    let _ = writer.shutdown().await;
    end
}

/// How the server → client direction ended.
#[derive(Debug)]
pub(crate) enum ServerEnd {
    /// The direction itself stopped (EOF or error).
    Direction(DirectionEnd),
    /// The session's end time passed; the client has been told.
    Expired,
    /// The client→server direction found a violation; the client has been told.
    Aborted,
}

/// What can cut the server → client direction short.
pub(crate) struct Interrupts {
    /// A FATAL from the client → server direction (protocol violation).
    pub abort: oneshot::Receiver<BytesMut>,
    /// When the session ends.
    pub expires_at: SystemTime,
    /// The FATAL sent at `expires_at`.
    pub expiry_fatal: BytesMut,
    /// Cancelled when the grant behind the session is revoked.
    pub revoked: Option<tokio_util::sync::CancellationToken>,
    /// The FATAL sent on revocation.
    pub revoked_fatal: BytesMut,
    /// Connection name, for the message about an invalid server message.
    pub connection: String,
}

/// Server → client. Also the one writer to the client: it injects the FATAL
/// for session expiry and for violations reported through `abort`, always
/// between two whole messages.
pub(crate) async fn server_to_client<R, W, H>(
    mut reader: R,
    mut writer: W,
    mut buf: BytesMut,
    mut hook: H,
    interrupts: Interrupts,
) -> ServerEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: FrameHook<FromServer>,
{
    let Interrupts {
        mut abort,
        expires_at,
        expiry_fatal,
        revoked,
        revoked_fatal,
        connection,
    } = interrupts;
    let revoked = async move {
        match revoked {
            Some(token) => token.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(revoked);
    let invalid_server_message = |n: i64| {
        fatal_message(
            "08P01",
            &format!(
                "hoop: the database behind connection \"{connection}\" sent an invalid message (declared length {n}); closing the connection"
            ),
            None,
        )
    };
    let lost_connection = |reason: &str| {
        fatal_message(
            "08006",
            &format!(
                "hoop: lost the connection to the database behind connection \"{connection}\" ({reason})"
            ),
            None,
        )
    };
    let mut abort_open = true;
    let sleep = tokio::time::sleep(until(expires_at));
    tokio::pin!(sleep);
    let end = loop {
        // Writes happen here, outside the select: only the read (which is
        // cancel-safe) races the timer and the abort signal, so an injected
        // FATAL always lands between two whole messages.
        match forward_complete(&mut writer, &mut buf, &mut hook).await {
            Ok(()) => {}
            Err(DirectionEnd::BadLength(n)) => {
                let _ = writer.write_all(&invalid_server_message(n)).await;
                break ServerEnd::Direction(DirectionEnd::BadLength(n));
            }
            Err(e) => break ServerEnd::Direction(e),
        }
        if let Err(DirectionEnd::BadLength(n)) = prepare_read(&mut buf) {
            let _ = writer.write_all(&invalid_server_message(n)).await;
            break ServerEnd::Direction(DirectionEnd::BadLength(n));
        }
        tokio::select! {
            biased;
            msg = &mut abort, if abort_open => {
                match msg {
                    Ok(fatal) => {
                        let _ = writer.write_all(&fatal).await;
                        break ServerEnd::Aborted;
                    }
                    // The client side finished normally: keep relaying.
                    Err(_) => abort_open = false,
                }
            }
            () = &mut revoked => {
                let _ = writer.write_all(&revoked_fatal).await;
                break ServerEnd::Expired;
            }
            () = &mut sleep => {
                if SystemTime::now() >= expires_at {
                    let _ = writer.write_all(&expiry_fatal).await;
                    break ServerEnd::Expired;
                }
                // The capped timer fired before a far-future expiry: re-arm.
                sleep.as_mut().reset(tokio::time::Instant::now() + until(expires_at));
            }
            read = reader.read_buf(&mut buf) => {
                let end = match read {
                    Ok(0) => finish_at_eof(&mut writer, &mut buf, &mut hook).await,
                    Ok(_) => continue,
                    Err(e) => DirectionEnd::ReadError(e),
                };
                // A clean EOF follows the server's own FATAL or the client's
                // Terminate; anything else would leave the client without a word.
                let reason = match &end {
                    DirectionEnd::ReadError(e) => Some(e.to_string()),
                    DirectionEnd::TruncatedEof(_) => {
                        Some("it closed in the middle of a message".to_owned())
                    }
                    _ => None,
                };
                if let Some(reason) = reason {
                    let _ = writer.write_all(&lost_connection(&reason)).await;
                }
                break ServerEnd::Direction(end);
            }
        }
    };
    let _ = writer.shutdown().await;
    end
}

/// Time until `at`, capped so the timer stays within tokio's range.
fn until(at: SystemTime) -> std::time::Duration {
    const CAP: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
    at.duration_since(SystemTime::now())
        .unwrap_or_default()
        .min(CAP)
}
