//! Borrowed views of the messages a client sends: the untagged startup-phase
//! packets (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage) and the
//! tagged messages of a running session (`Query`, `Parse`, `Bind`, ...).
//!
//! A view borrows the relay's buffer: decoding reads the fixed fields and
//! finds the strings, and copies nothing. A body that does not match its
//! message's layout decodes to [`ClientMessage::Malformed`] with the reason;
//! the relay forwards such a message unchanged and the server refuses it
//! (it never executes a malformed message).

use super::WireError;
use super::cursor::Cursor;

/// Protocol 3.0, the version the broker speaks on both legs.
pub const PROTOCOL_3_0: i32 = 196_608;
/// SSLRequest's code.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// GSSENCRequest's code.
pub const GSS_REQUEST_CODE: i32 = 80_877_104;
/// CancelRequest's code.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// An untagged startup-phase packet (its length word included), classified
/// by its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    /// SSLRequest.
    SslRequest,
    /// GSSENCRequest.
    GssEncRequest,
    /// CancelRequest(pid, key): `key` is the secret as sent (4 bytes in
    /// protocol 3.0, longer in 3.2).
    Cancel {
        /// Process id the client was given.
        pid: i32,
        /// Secret key bytes.
        key: &'a [u8],
    },
    /// StartupMessage of protocol `major.minor`; `parameters` is the rest.
    Startup {
        /// Major version (3).
        major: i32,
        /// Minor version.
        minor: i32,
        /// Name/value pairs, NUL-terminated each, ending with an empty name.
        parameters: &'a [u8],
    },
}

impl<'a> StartupPacket<'a> {
    /// Classifies `packet` (length word included, already length-checked by
    /// the framing).
    pub fn decode(packet: &'a [u8]) -> Result<Self, WireError> {
        let mut c = Cursor::new(packet, "startup packet");
        c.i32()?; // length, checked by the framing
        let code = c.i32()?;
        Ok(match code {
            SSL_REQUEST_CODE => StartupPacket::SslRequest,
            GSS_REQUEST_CODE => StartupPacket::GssEncRequest,
            CANCEL_REQUEST_CODE => {
                let mut c = Cursor::new(c.rest(), "CancelRequest");
                let pid = c.i32()?;
                let key = c.rest();
                if key.len() < 4 {
                    return Err(WireError::Truncated {
                        message: "CancelRequest",
                    });
                }
                StartupPacket::Cancel { pid, key }
            }
            version => StartupPacket::Startup {
                major: version >> 16,
                minor: version & 0xffff,
                parameters: c.rest(),
            },
        })
    }
}

/// What a `Describe` or `Close` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A prepared statement (`S`).
    Statement,
    /// A portal (`P`).
    Portal,
}

impl Target {
    fn decode(c: &mut Cursor<'_>, message: &'static str) -> Result<Target, WireError> {
        match c.u8()? {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            other => Err(WireError::Invalid {
                message,
                what: "target",
                value: i64::from(other),
            }),
        }
    }
}

/// `Parse`: a statement name, its text and its parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name (empty: the unnamed statement).
    pub name: &'a [u8],
    /// The SQL text.
    pub sql: &'a [u8],
    /// Parameter type OIDs, 4 bytes each.
    pub param_types: &'a [u8],
}

/// Format codes (`Bind`'s parameter or result formats): none means all
/// text, one applies to every column, otherwise one per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Formats<'a>(&'a [u8]);

impl<'a> Formats<'a> {
    /// The codes over `raw` (2 bytes each, already bounds-checked).
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Formats(raw)
    }

    /// How many codes were sent.
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// Whether none was sent (every column in text).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The codes in order.
    pub fn iter(&self) -> impl Iterator<Item = i16> + 'a {
        self.0.chunks_exact(2).map(|b| {
            i16::from_be_bytes([
                b.first().copied().unwrap_or(0),
                b.get(1).copied().unwrap_or(0),
            ])
        })
    }

    /// Whether column `i` of `columns` arrives in binary under these codes.
    pub fn is_binary(&self, i: usize) -> bool {
        match self.len() {
            0 => false,
            1 => self.iter().next() == Some(1),
            _ => self.iter().nth(i) == Some(1),
        }
    }
}

/// `Bind`: a portal made from a statement with parameter values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Portal name (empty: the unnamed portal).
    pub portal: &'a [u8],
    /// Statement name.
    pub statement: &'a [u8],
    /// Parameter format codes.
    pub param_formats: Formats<'a>,
    /// The parameter values, still length-prefixed (never inspected).
    pub params: &'a [u8],
    /// How many parameter values there are.
    pub param_count: usize,
    /// Result format codes.
    pub result_formats: Formats<'a>,
}

/// `Describe` or `Close` of a statement or portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name.
    pub name: &'a [u8],
}

/// A tagged message from the client, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// `Q`: a simple query. `sql` is everything before the final NUL (the
    /// whole body when it has none), so text hidden after an embedded NUL
    /// is inspected too (the server refuses such a message).
    Query {
        /// The query text.
        sql: &'a [u8],
    },
    /// `P`.
    Parse(Parse<'a>),
    /// `B`.
    Bind(Bind<'a>),
    /// `D`.
    Describe(Named<'a>),
    /// `E`: run a portal (`max_rows` 0: all rows).
    Execute {
        /// Portal name.
        portal: &'a [u8],
        /// Row limit.
        max_rows: i32,
    },
    /// `C`.
    Close(Named<'a>),
    /// `S`.
    Sync,
    /// `H`.
    Flush,
    /// `F`: a fast-path function call by OID (arguments not decoded).
    FunctionCall {
        /// The function's OID.
        oid: u32,
    },
    /// `d`: COPY FROM STDIN data.
    CopyData(&'a [u8]),
    /// `c`.
    CopyDone,
    /// `f`: the client aborts a COPY FROM STDIN.
    CopyFail {
        /// Why.
        message: &'a [u8],
    },
    /// `X`.
    Terminate,
    /// Any other tag (passed on as it is).
    Other(u8),
    /// A known tag whose body does not match its layout.
    Malformed {
        /// The tag.
        tag: u8,
        /// What is wrong.
        error: WireError,
    },
}

impl<'a> ClientMessage<'a> {
    /// Decodes one message; never fails (see [`ClientMessage::Malformed`]).
    pub fn decode(tag: u8, body: &'a [u8]) -> Self {
        Self::try_decode(tag, body).unwrap_or_else(|error| ClientMessage::Malformed { tag, error })
    }

    fn try_decode(tag: u8, body: &'a [u8]) -> Result<Self, WireError> {
        Ok(match tag {
            // Lenient on purpose: an unterminated Query is still judged and
            // recorded as text (the server refuses it), so every Query keeps
            // its place in the statement log.
            b'Q' => ClientMessage::Query {
                sql: body.strip_suffix(&[0]).unwrap_or(body),
            },
            b'P' => {
                let mut c = Cursor::new(body, "Parse");
                let name = c.cstr()?;
                let sql = c.cstr()?;
                let n = c.count("parameter type count")?;
                let param_types = c.bytes(n.saturating_mul(4))?;
                c.finish()?;
                ClientMessage::Parse(Parse {
                    name,
                    sql,
                    param_types,
                })
            }
            b'B' => {
                let mut c = Cursor::new(body, "Bind");
                let portal = c.cstr()?;
                let statement = c.cstr()?;
                let n = c.count("parameter format count")?;
                let param_formats = Formats::new(c.bytes(n.saturating_mul(2))?);
                let param_count = c.count("parameter count")?;
                let before = c.remaining();
                let mut values = c;
                for _ in 0..param_count {
                    values.value()?;
                }
                let params = c.bytes(before - values.remaining())?;
                let n = c.count("result format count")?;
                let result_formats = Formats::new(c.bytes(n.saturating_mul(2))?);
                c.finish()?;
                ClientMessage::Bind(Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    param_count,
                    result_formats,
                })
            }
            b'D' | b'C' => {
                let message = if tag == b'D' { "Describe" } else { "Close" };
                let mut c = Cursor::new(body, message);
                let target = Target::decode(&mut c, message)?;
                let name = c.cstr()?;
                c.finish()?;
                let named = Named { target, name };
                if tag == b'D' {
                    ClientMessage::Describe(named)
                } else {
                    ClientMessage::Close(named)
                }
            }
            b'E' => {
                let mut c = Cursor::new(body, "Execute");
                let portal = c.cstr()?;
                let max_rows = c.i32()?;
                c.finish()?;
                ClientMessage::Execute { portal, max_rows }
            }
            b'S' => ClientMessage::Sync,
            b'H' => ClientMessage::Flush,
            b'X' => ClientMessage::Terminate,
            b'F' => ClientMessage::FunctionCall {
                oid: Cursor::new(body, "FunctionCall").u32()?,
            },
            b'd' => ClientMessage::CopyData(body),
            b'c' => ClientMessage::CopyDone,
            b'f' => ClientMessage::CopyFail {
                message: Cursor::new(body, "CopyFail").cstr()?,
            },
            other => ClientMessage::Other(other),
        })
    }
}
