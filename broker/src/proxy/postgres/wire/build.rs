//! Builders for the messages the broker writes itself: ErrorResponses
//! (refusals, FATALs), the marker statements that stand in for a refused
//! one, DataRows with some values replaced, and CopyData.
//!
//! Encoding goes through pgwire's codec where it has the message
//! (`ErrorResponse`); the rest are written here with their length words
//! computed, never taken from input.

use bytes::{BufMut as _, Bytes, BytesMut};
use pgwire::messages::Message as _;
use pgwire::messages::response::ErrorResponse;

use super::backend::RowValue;

/// Writes a tagged frame: `tag`, the length word, then what `body` writes.
fn frame(tag: u8, body_len: usize, body: impl FnOnce(&mut BytesMut)) -> BytesMut {
    let mut out = BytesMut::with_capacity(body_len + 5);
    out.put_u8(tag);
    out.put_u32(u32::try_from(body_len + 4).unwrap_or(u32::MAX));
    body(&mut out);
    out
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

/// A `Query` of `sql`.
pub(crate) fn query(sql: &[u8]) -> Bytes {
    frame(b'Q', sql.len() + 1, |out| {
        out.put_slice(sql);
        out.put_u8(0);
    })
    .freeze()
}

/// A `Parse` of `sql` as statement `name`, with no parameter types.
pub(crate) fn parse(name: &[u8], sql: &[u8]) -> Bytes {
    frame(b'P', name.len() + 1 + sql.len() + 1 + 2, |out| {
        out.put_slice(name);
        out.put_u8(0);
        out.put_slice(sql);
        out.put_u8(0);
        out.put_u16(0);
    })
    .freeze()
}

/// A `CopyData` (either direction) carrying `data`.
pub(crate) fn copy_data(data: &[u8]) -> Bytes {
    frame(b'd', data.len(), |out| out.put_slice(data)).freeze()
}

/// A DataRow of `count` NULLs (what a malformed row becomes when masked).
pub(crate) fn null_row(count: usize) -> Bytes {
    frame(b'D', 2 + 4 * count, |out| {
        out.put_u16(u16::try_from(count).unwrap_or(u16::MAX));
        for _ in 0..count {
            out.put_i32(-1);
        }
    })
    .freeze()
}

/// Rebuilds a DataRow when some of its values change: the values before the
/// first change are copied in one piece, unchanged values after it are
/// copied through as they came (length word and bytes), replaced ones are
/// written anew. Nothing is allocated until the first change.
pub(crate) struct DataRowBuilder<'a> {
    row: &'a [u8],
    out: Option<BytesMut>,
}

impl<'a> DataRowBuilder<'a> {
    /// A builder for the DataRow whose body is `body`.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        DataRowBuilder {
            row: body,
            out: None,
        }
    }

    fn started(&mut self, at: &RowValue<'a>) -> &mut BytesMut {
        let row = self.row;
        self.out.get_or_insert_with(|| {
            // Everything before this value's length word, in one copy.
            let start = at.offset;
            let mut o = BytesMut::with_capacity(row.len() + 37);
            o.put_u8(b'D');
            o.put_u32(0);
            o.put_slice(row.get(..start).unwrap_or_default());
            o
        })
    }

    /// Keeps `value` as it came.
    #[inline]
    pub(crate) fn keep(&mut self, value: &RowValue<'a>) {
        if let Some(o) = &mut self.out {
            o.put_slice(value.raw);
        }
    }

    /// Replaces `value` with `new` (`None`: NULL).
    pub(crate) fn replace(&mut self, value: &RowValue<'a>, new: Option<&[u8]>) {
        let o = self.started(value);
        match new {
            None => o.put_i32(-1),
            Some(bytes) => {
                o.put_i32(i32::try_from(bytes.len()).unwrap_or(i32::MAX));
                o.put_slice(bytes);
            }
        }
    }

    /// The rebuilt frame, or `None` when nothing was replaced; `trailing`
    /// (bytes after the last value) is kept as it came.
    pub(crate) fn finish(self, trailing: &[u8]) -> Option<Bytes> {
        let mut o = self.out?;
        o.put_slice(trailing);
        let len = u32::try_from(o.len() - 1).unwrap_or(u32::MAX);
        if let Some(slot) = o.get_mut(1..5) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        Some(o.freeze())
    }
}
