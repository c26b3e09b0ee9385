//! Postgres wire framing: reading whole messages off a stream with their
//! declared length checked first, and bounds-checked readers for the few
//! message bodies the broker itself must understand.
//!
//! Every length on the wire is untrusted. A frame is only handed on once its
//! length has been checked against a limit and all its bytes are buffered, so
//! no decoder (ours or pgwire's) ever reads past the end of a message.

use bytes::{Buf as _, BufMut as _, BytesMut};
use pgwire::messages::Message as _;
use pgwire::messages::response::ErrorResponse;
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
        if let Some(declared) = i32_at(buf, 0) {
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

/// Reads a big-endian i32 at `at`, if the body is long enough.
pub(crate) fn i32_at(body: &[u8], at: usize) -> Option<i32> {
    let b = body.get(at..at.checked_add(4)?)?;
    b.try_into().ok().map(i32::from_be_bytes)
}

/// Splits NUL-terminated strings from the front of `body`; `None` if the
/// string is not terminated.
pub(crate) fn cstr(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = body.iter().position(|&b| b == 0)?;
    let s = body.get(..end)?;
    let rest = body.get(end + 1..)?;
    Some((s, rest))
}

/// The fields of an ErrorResponse or NoticeResponse body, read defensively: a
/// truncated body yields the fields that were complete.
pub(crate) fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut fields = Vec::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        match cstr(tail) {
            Some((value, tail)) => {
                fields.push((code, String::from_utf8_lossy(value).into_owned()));
                rest = tail;
            }
            None => break,
        }
    }
    fields
}

/// SQLSTATE and primary message of an ErrorResponse body.
pub(crate) fn error_code_and_message(body: &[u8]) -> (String, String) {
    let fields = error_fields(body);
    let get = |want: u8| {
        fields
            .iter()
            .find(|(code, _)| *code == want)
            .map(|(_, v)| v.clone())
    };
    (
        get(b'C').unwrap_or_else(|| "XX000".to_owned()),
        get(b'M').unwrap_or_else(|| "(no message)".to_owned()),
    )
}

/// A FATAL ErrorResponse, encoded for the wire, with `hint` when given.
pub(crate) fn fatal_message(code: &str, message: &str, hint: Option<&str>) -> BytesMut {
    error_response("FATAL", code, message, None, hint)
}

/// An ERROR-level ErrorResponse (the session goes on), encoded for the wire.
pub(crate) fn error_message(code: &str, message: &str, hint: Option<&str>) -> BytesMut {
    error_response("ERROR", code, message, None, hint)
}

/// [`error_message`] with a DETAIL field (read by tools, e.g. a review id).
pub(crate) fn error_message_with_detail(
    code: &str,
    message: &str,
    detail: &str,
    hint: Option<&str>,
) -> BytesMut {
    error_response("ERROR", code, message, Some(detail), hint)
}

fn error_response(
    severity: &str,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> BytesMut {
    let fields = |message: &str, detail: Option<&str>, hint: Option<&str>| {
        let mut fields = vec![
            (b'S', severity.to_owned()),
            (b'V', severity.to_owned()),
            (b'C', code.to_owned()),
            (b'M', message.to_owned()),
        ];
        if let Some(detail) = detail {
            fields.push((b'D', detail.to_owned()));
        }
        if let Some(hint) = hint {
            fields.push((b'H', hint.to_owned()));
        }
        fields
    };
    let mut out = BytesMut::new();
    // Encoding only fails for messages over the codec's limit; a message we
    // compose ourselves is far below it, but fall back to a short one anyway.
    if ErrorResponse::new(fields(message, detail, hint))
        .encode(&mut out)
        .is_err()
    {
        out.clear();
        let _ = ErrorResponse::new(fields(
            "hoop: the statement or connection was refused",
            None,
            None,
        ))
        .encode(&mut out);
    }
    out
}

/// Text values of a DataRow body; `None` when the body is malformed.
pub(crate) fn data_row_text(body: &[u8]) -> Option<Vec<Option<String>>> {
    let count = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut rest = body.get(2..)?;
    let mut values = Vec::with_capacity(usize::from(count).min(rest.len() / 4));
    for _ in 0..count {
        let len = i32_at(rest, 0)?;
        rest = rest.get(4..)?;
        if len < 0 {
            values.push(None);
        } else {
            let len = usize::try_from(len).ok()?;
            let value = rest.get(..len)?;
            values.push(Some(String::from_utf8_lossy(value).into_owned()));
            rest = rest.get(len..)?;
        }
    }
    Some(values)
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

    #[test]
    fn malformed_bodies_do_not_panic() {
        assert!(error_fields(b"Mno terminator").is_empty());
        assert_eq!(error_fields(b"SFATAL\0C28P01\0Mbad\0\0").len(), 3);
        assert_eq!(
            error_code_and_message(b"C28P01\0Mbad\0\0"),
            ("28P01".to_owned(), "bad".to_owned())
        );
        assert_eq!(
            data_row_text(b"\0\x02\0\0\0\x01a\xff\xff\xff\xff").unwrap(),
            vec![Some("a".to_owned()), None]
        );
        assert!(data_row_text(b"\0\x02\0\0\0\x09a").is_none());
        assert!(data_row_text(b"\0").is_none());
        assert!(i32_at(b"\0\0\0", 0).is_none());
    }
}
