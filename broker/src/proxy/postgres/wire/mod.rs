//! The Postgres wire layer: the one place that knows the byte layout of
//! messages. Everything above it (the relay, the hooks, the login code, the
//! broker's own client) works with decoded, typed values.
//!
//! - [`framing`]: reading whole frames off a stream with their declared
//!   length checked against a limit before anything is buffered; walking the
//!   complete frames in a buffer.
//! - [`frontend`]: borrowed views of client messages ([`ClientMessage`]:
//!   `Query`, `Parse`, `Bind`, `Describe`, `Execute`, `Close`, `Sync`,
//!   `CopyData`/`CopyDone`/`CopyFail`, `FunctionCall`, ...) and of the
//!   untagged startup packets ([`StartupPacket`]).
//! - [`backend`]: borrowed views of server messages ([`ServerMessage`]:
//!   `RowDescription` with field iteration, `DataRow` with value iteration,
//!   `CommandComplete`, `ErrorResponse`/`NoticeResponse` fields,
//!   `ParameterDescription`, `ReadyForQuery`, `BackendKeyData`,
//!   `Authentication*`, ...).
//! - [`build`]: builders for the messages the broker writes (ErrorResponse,
//!   marker statements, rewritten DataRows, CopyData).
//!
//! Views borrow the relay's read buffer: decoding a message copies nothing,
//! `DataRow` values are slices of the buffer, and a message no hook changes
//! is forwarded from that same buffer. Every read is bounds-checked: a
//! malformed body decodes to a `Malformed` variant carrying a [`WireError`]
//! (never a panic), so a hostile peer can at worst get its message refused.
//!
//! What comes from crates: pgwire's codec encodes ErrorResponse and decodes
//! the StartupMessage's parameters, CancelRequest and PasswordMessage;
//! postgres-protocol encodes the broker's own client messages (`Query`,
//! `Parse`, `Describe`, SASL responses). Their *decoders* own their buffers
//! (`Bytes`), which would cost a copy or a refcount per relayed message, so
//! the views of relayed messages are written here.

pub(crate) mod backend;
pub(crate) mod build;
mod cursor;
pub(crate) mod framing;
pub(crate) mod frontend;

#[cfg(test)]
mod tests;

pub use backend::{
    Authentication, CopyResponse, DataRow, ErrorFields, FieldDesc, FieldView, RowDescription,
    RowValue, ServerMessage, command_rows,
};
pub use framing::{MAX_HANDSHAKE_LEN, MAX_MESSAGE_LEN, MAX_STARTUP_LEN};
pub use frontend::{Bind, ClientMessage, Formats, Named, Parse, StartupPacket, Target};

/// Why a message body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body ended before a field it must have.
    #[error("{message} message is truncated")]
    Truncated {
        /// The message being decoded.
        message: &'static str,
    },
    /// A string has no terminating NUL.
    #[error("{message} message has an unterminated string")]
    Unterminated {
        /// The message being decoded.
        message: &'static str,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{message} message has an invalid {what} ({value})")]
    Invalid {
        /// The message being decoded.
        message: &'static str,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: i64,
    },
    /// Bytes follow the last field.
    #[error("{message} message has {bytes} unexpected trailing bytes")]
    Trailing {
        /// The message being decoded.
        message: &'static str,
        /// How many.
        bytes: usize,
    },
}

/// Which way messages travel: decides how a frame's body is decoded.
pub trait Direction {
    /// The decoded message.
    type Message<'a>: std::fmt::Debug + Copy;
    /// Decodes one frame's body (never fails: malformed bodies decode to a
    /// `Malformed` variant).
    fn decode(tag: u8, body: &[u8]) -> Self::Message<'_>;
}

/// Client → server.
#[derive(Debug)]
pub enum FromClient {}

/// Server → client.
#[derive(Debug)]
pub enum FromServer {}

impl Direction for FromClient {
    type Message<'a> = ClientMessage<'a>;
    #[inline]
    fn decode(tag: u8, body: &[u8]) -> ClientMessage<'_> {
        ClientMessage::decode(tag, body)
    }
}

impl Direction for FromServer {
    type Message<'a> = ServerMessage<'a>;
    #[inline]
    fn decode(tag: u8, body: &[u8]) -> ServerMessage<'_> {
        ServerMessage::decode(tag, body)
    }
}

/// One complete message as it passes through the relay: its tag, its body
/// as it arrived (forwarded from the buffer when nothing changes it), and
/// its decoded form (decoded once, by the relay).
#[derive(Debug)]
pub struct Frame<'a, D: Direction> {
    /// The message type byte (`Q`, `P`, `D`, ...).
    pub tag: u8,
    /// The body, without tag and length.
    pub body: &'a [u8],
    /// The decoded message.
    pub msg: D::Message<'a>,
}

impl<D: Direction> Clone for Frame<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Direction> Copy for Frame<'_, D> {}

impl<'a, D: Direction> Frame<'a, D> {
    /// Decodes `body` as a `tag` message.
    #[inline]
    pub fn decode(tag: u8, body: &'a [u8]) -> Self {
        Frame {
            tag,
            body,
            msg: D::decode(tag, body),
        }
    }
}

/// A client message frame.
pub type ClientFrame<'a> = Frame<'a, FromClient>;
/// A server message frame.
pub type ServerFrame<'a> = Frame<'a, FromServer>;
