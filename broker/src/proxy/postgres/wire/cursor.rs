//! A bounds-checked reader over one message body: every read says which
//! message it was decoding when the body ran out, and none can panic.

use super::WireError;

/// Reads big-endian integers, NUL-terminated strings and byte runs from the
/// front of a message body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, the body of a `message` (named in errors).
    pub(crate) fn new(buf: &'a [u8], message: &'static str) -> Self {
        Cursor { buf, message }
    }

    fn truncated(&self) -> WireError {
        WireError::Truncated {
            message: self.message,
        }
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(self.truncated());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let b = self.bytes(N)?;
        b.try_into().map_err(|_| self.truncated())
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// A big-endian i16.
    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// A big-endian u16 (counts the protocol sends as Int16 but never negative).
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian i32.
    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A big-endian u32 (OIDs).
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A non-negative Int16 count.
    pub(crate) fn count(&mut self, what: &'static str) -> Result<usize, WireError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| WireError::Invalid {
            message: self.message,
            what,
            value: i64::from(n),
        })
    }

    /// A NUL-terminated string, without its NUL.
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], WireError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Unterminated {
                message: self.message,
            })?;
        let s = self.bytes(end)?;
        self.bytes(1)?;
        Ok(s)
    }

    /// A length-prefixed value (Int32 length, -1 for NULL).
    pub(crate) fn value(&mut self) -> Result<Option<&'a [u8]>, WireError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| self.truncated())?;
        self.bytes(n).map(Some)
    }

    /// A length-prefixed value and its bytes on the wire (length word
    /// included), taken with one bounds check.
    #[inline]
    pub(crate) fn value_raw(&mut self) -> Result<(Option<&'a [u8]>, &'a [u8]), WireError> {
        let len = i32::from_be_bytes(
            self.buf
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| self.truncated())?,
        );
        let Ok(n) = usize::try_from(len) else {
            // Negative: NULL (-1 on the wire; other negatives read alike).
            return Ok((None, self.bytes(4)?));
        };
        let raw = self.bytes(n.checked_add(4).ok_or_else(|| self.truncated())?)?;
        Ok((raw.get(4..), raw))
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless the whole body was read.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing {
                message: self.message,
                bytes: self.buf.len(),
            })
        }
    }
}
