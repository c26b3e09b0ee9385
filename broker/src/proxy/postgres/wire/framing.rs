//! Postgres wire framing: reading whole messages off a stream with their
//! declared length checked first (tagged messages, and the untagged packets
//! of the startup phase), and walking the complete frames in a buffer.
//!
//! Every length on the wire is untrusted. A frame is only handed on once its
//! length has been checked against a limit and all its bytes are buffered, so
//! no decoder (ours or pgwire's) ever reads past the end of a message.

use bytes::{Buf as _, BufMut as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Largest message either side may send once a session is running: 1 GiB - 1,
/// the same limit PostgreSQL applies (`PQ_LARGE_MESSAGE_LIMIT`).
pub const MAX_MESSAGE_LEN: usize = (1 << 30) - 1;

/// Largest untagged startup-phase packet (StartupMessage, SSLRequest,
/// CancelRequest): PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Largest message accepted while logging in (password messages, SASL
/// exchanges, ParameterStatus, login errors). Generous, but small enough that
/// an unauthenticated peer cannot make the broker allocate much.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;

/// How much to read at a time; a frame larger than this is read in chunks.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The stream failed.
    Io(std::io::Error),
    /// The stream ended in the middle of a frame.
    Truncated,
    /// The declared length is below the minimum or above the limit.
    BadLength(i64),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Truncated => f.write_str("the stream ended in the middle of a message"),
            FrameError::BadLength(n) => write!(f, "invalid message length {n}"),
        }
    }
}

/// The declared length of a tagged frame at the start of `buf` (tag byte +
/// i32 length that counts itself), if the header is complete.
pub(crate) fn tagged_len(buf: &[u8]) -> Option<i32> {
    i32_at(buf, 1)
}

/// The declared length of an untagged startup-phase packet at the start of
/// `buf` (the i32 that counts itself), if complete.
fn untagged_len(buf: &[u8]) -> Option<i32> {
    i32_at(buf, 0)
}

/// A big-endian i32 of a frame header at `at`, if `buf` holds it.
fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    b.try_into().ok().map(i32::from_be_bytes)
}

/// A complete frame in a buffer: tag, body, size on the wire.
pub(crate) type RawFrame<'a> = (u8, &'a [u8], usize);

/// The tagged frame at the front of `buf`: `Ok(None)` while it is
/// incomplete, an error when its declared length is out of range. Returns
/// the tag, the body and the frame's whole size on the wire.
#[inline]
pub(crate) fn complete_frame(buf: &[u8], max: usize) -> Result<Option<RawFrame<'_>>, FrameError> {
    let Some(declared) = tagged_len(buf) else {
        return Ok(None);
    };
    let len = check_len(declared, max)?;
    let (Some(&tag), Some(body)) = (buf.first(), buf.get(5..len + 1)) else {
        return Ok(None);
    };
    Ok(Some((tag, body, len + 1)))
}

/// The complete tagged frames at the front of `bytes`, as (tag, body); stops
/// at the first incomplete or invalid one.
pub(crate) fn frames(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (tag, body, size) = complete_frame(rest, MAX_MESSAGE_LEN).ok()??;
        rest = rest.get(size..)?;
        Some((tag, body))
    })
}

/// Checks a declared length: at least 4 (the length field itself) and at most `max`.
pub(crate) fn check_len(declared: i32, max: usize) -> Result<usize, FrameError> {
    match usize::try_from(declared) {
        Ok(n) if (4..=max).contains(&n) => Ok(n),
        _ => Err(FrameError::BadLength(i64::from(declared))),
    }
}

/// Reads more bytes into `buf`; `Ok(false)` on end of stream.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    want: usize,
) -> Result<bool, FrameError> {
    buf.reserve(want.clamp(1, READ_CHUNK));
    let n = reader.read_buf(buf).await.map_err(FrameError::Io)?;
    Ok(n > 0)
}

/// A whole tagged message: its tag and body (without tag and length).
#[derive(Debug)]
pub(crate) struct TaggedFrame {
    pub tag: u8,
    pub body: BytesMut,
}

impl TaggedFrame {
    /// The frame as it travels on the wire.
    pub fn to_wire(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.body.len() + 5);
        out.put_u8(self.tag);
        out.put_u32(u32::try_from(self.body.len() + 4).unwrap_or(u32::MAX));
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one tagged frame. `Ok(None)` when the stream ends cleanly between
/// frames; `buf` keeps any bytes read beyond the frame.
pub(crate) async fn read_tagged<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<TaggedFrame>, FrameError> {
    loop {
        if let Some(declared) = tagged_len(buf) {
            let len = check_len(declared, max)?;
            if buf.len() > len {
                let mut frame = buf.split_to(len + 1);
                let tag = frame.get_u8();
                frame.advance(4);
                return Ok(Some(TaggedFrame { tag, body: frame }));
            }
            let missing = len + 1 - buf.len();
            if !fill(reader, buf, missing).await? {
                return Err(FrameError::Truncated);
            }
        } else {
            let was_empty = buf.is_empty();
            if !fill(reader, buf, READ_CHUNK).await? {
                return if was_empty {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }
}

/// Reads one untagged startup-phase packet (length included). `Ok(None)` when
/// the stream ends before any byte of it.
pub(crate) async fn read_startup_packet<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Option<BytesMut>, FrameError> {
    loop {
        if let Some(declared) = untagged_len(buf) {
            let len = check_len(declared, MAX_STARTUP_LEN)?;
            // Every startup-phase packet carries at least a 4-byte code.
            if len < 8 {
                return Err(FrameError::BadLength(i64::from(declared)));
            }
            if buf.len() >= len {
                return Ok(Some(buf.split_to(len)));
            }
            let missing = len - buf.len();
            if !fill(reader, buf, missing).await? {
                return Err(FrameError::Truncated);
            }
        } else {
            let was_empty = buf.is_empty();
            if !fill(reader, buf, MAX_STARTUP_LEN).await? {
                return if was_empty {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tagged_frames_are_split_and_lengths_checked() {
        let mut wire: &[u8] = b"Q\0\0\0\x0bselect\0Z\0\0\0\x05I";
        let mut buf = BytesMut::new();
        let f = read_tagged(&mut wire, &mut buf, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.tag, b'Q');
        assert_eq!(&f.body[..], b"select\0");
        assert_eq!(&f.to_wire()[..], b"Q\0\0\0\x0bselect\0");
        let f = read_tagged(&mut wire, &mut buf, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((f.tag, &f.body[..]), (b'Z', &b"I"[..]));
        assert!(
            read_tagged(&mut wire, &mut buf, 100)
                .await
                .unwrap()
                .is_none()
        );

        for bad in [
            &b"Q\0\0\0\x02"[..],
            b"Q\x7f\xff\xff\xff",
            b"Q\xff\xff\xff\xff",
        ] {
            let mut wire = bad;
            let mut buf = BytesMut::new();
            assert!(matches!(
                read_tagged(&mut wire, &mut buf, 100).await,
                Err(FrameError::BadLength(_))
            ));
        }
        let mut wire: &[u8] = b"Q\0\0\0\x0asel";
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_tagged(&mut wire, &mut buf, 100).await,
            Err(FrameError::Truncated)
        ));
    }
}
