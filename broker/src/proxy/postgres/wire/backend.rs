//! Borrowed views of the messages a server sends: the ones the broker reads
//! while logging in (`Authentication*`, `ParameterStatus`,
//! `BackendKeyData`, `ErrorResponse`) and the ones the hooks of a running
//! session read (`RowDescription`, `DataRow`, `CommandComplete`,
//! `ReadyForQuery`, `CopyOutResponse`, ...).
//!
//! Fixed fields are read when the message is decoded; the repeated parts
//! (the values of a `DataRow`, the fields of a `RowDescription` or an
//! `ErrorResponse`) are walked by iterators that check every length as they
//! go, so a row nobody inspects costs two bytes of decoding, and a value is
//! a slice of the relay's buffer, never a copy.

use super::WireError;
use super::cursor::Cursor;

/// One value of a `DataRow`: the value (`None`: NULL) and its bytes on the
/// wire (length word included), for copying it through unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowValue<'a> {
    /// The value; `None` for SQL NULL.
    pub value: Option<&'a [u8]>,
    /// The value as it travels (length word and bytes).
    pub raw: &'a [u8],
    /// Where `raw` starts in the DataRow body.
    pub offset: usize,
}

/// `DataRow`: a column count, then length-prefixed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a> {
    count: u16,
    values: &'a [u8],
}

impl<'a> DataRow<'a> {
    /// Reads the column count of a DataRow body.
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut c = Cursor::new(body, "DataRow");
        let count = c.u16()?;
        Ok(DataRow {
            count,
            values: c.rest(),
        })
    }

    /// How many values the row says it has.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values in order; an error ends the walk (a malformed row).
    #[inline]
    pub fn values(&self) -> RowValues<'a> {
        RowValues {
            cursor: Cursor::new(self.values, "DataRow"),
            offset: 2,
            left: self.count,
        }
    }
}

/// Iterator over the values of a [`DataRow`].
#[derive(Debug, Clone)]
pub struct RowValues<'a> {
    cursor: Cursor<'a>,
    /// Where the next value starts in the DataRow body.
    offset: usize,
    left: u16,
}

impl<'a> RowValues<'a> {
    /// The bytes not walked yet (after the last value: whatever trails it,
    /// nothing in a well-formed row).
    pub fn remainder(&self) -> &'a [u8] {
        let mut c = self.cursor;
        c.rest()
    }
}

impl<'a> Iterator for RowValues<'a> {
    type Item = Result<RowValue<'a>, WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let offset = self.offset;
        match self.cursor.value_raw() {
            Ok((value, raw)) => {
                self.offset += raw.len();
                Some(Ok(RowValue { value, raw, offset }))
            }
            Err(e) => {
                // A malformed row: nothing after this can be trusted.
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// One field of a `RowDescription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldView<'a> {
    /// Column name as the client sees it.
    pub name: &'a [u8],
    /// Source table OID (0: not a plain table column).
    pub table_oid: u32,
    /// Source attribute number (0: none).
    pub column_id: i16,
    /// Type OID.
    pub type_oid: u32,
    /// Type size.
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Format code (0 text, 1 binary; 0 in answers to Describe statement).
    pub format: i16,
}

/// `RowDescription`: a field count, then the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDescription<'a> {
    count: u16,
    fields: &'a [u8],
}

impl<'a> RowDescription<'a> {
    /// Reads the field count of a RowDescription body.
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut c = Cursor::new(body, "RowDescription");
        let count = c.u16()?;
        Ok(RowDescription {
            count,
            fields: c.rest(),
        })
    }

    /// How many fields it announces.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether it has no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The fields in order; an error ends the walk.
    pub fn fields(&self) -> impl Iterator<Item = Result<FieldView<'a>, WireError>> + 'a {
        let mut c = Cursor::new(self.fields, "RowDescription");
        let mut left = self.count;
        let mut failed = false;
        std::iter::from_fn(move || {
            if left == 0 || failed {
                return None;
            }
            left -= 1;
            let field = (|| {
                Ok(FieldView {
                    name: c.cstr()?,
                    table_oid: c.u32()?,
                    column_id: c.i16()?,
                    type_oid: c.u32()?,
                    type_size: c.i16()?,
                    type_modifier: c.i32()?,
                    format: c.i16()?,
                })
            })();
            failed = field.is_err();
            Some(field)
        })
    }
}

/// The fields of an `ErrorResponse` or `NoticeResponse`: (code, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorFields<'a>(&'a [u8]);

impl<'a> ErrorFields<'a> {
    /// A view over an ErrorResponse/NoticeResponse body (walked lazily).
    pub fn decode(body: &'a [u8]) -> Self {
        ErrorFields(body)
    }

    /// The fields in order; a truncated body yields the complete ones and
    /// then an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u8, &'a [u8]), WireError>> + 'a {
        let mut c = Cursor::new(self.0, "ErrorResponse");
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let field = c.u8().and_then(|code| {
                if code == 0 {
                    return Ok(None);
                }
                Ok(Some((code, c.cstr()?)))
            });
            match field {
                Ok(Some(f)) => Some(Ok(f)),
                Ok(None) => {
                    done = true;
                    None
                }
                Err(e) => {
                    done = true;
                    Some(Err(e))
                }
            }
        })
    }

    /// The value of field `code` (`C` SQLSTATE, `M` message, ...), if present
    /// among the complete fields.
    pub fn get(&self, code: u8) -> Option<&'a [u8]> {
        self.iter()
            .map_while(Result::ok)
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v)
    }

    /// The complete fields, as text.
    pub fn to_vec(&self) -> Vec<(u8, String)> {
        self.iter()
            .map_while(Result::ok)
            .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    /// SQLSTATE and primary message (`XX000` and `(no message)` when absent).
    pub fn code_and_message(&self) -> (String, String) {
        let text = |code: u8, default: &str| {
            self.get(code).map_or_else(
                || default.to_owned(),
                |v| String::from_utf8_lossy(v).into_owned(),
            )
        };
        (text(b'C', "XX000"), text(b'M', "(no message)"))
    }
}

/// `CopyOutResponse` / `CopyInResponse` / `CopyBothResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// Overall format: 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes (2 bytes each).
    pub column_formats: super::Formats<'a>,
}

impl<'a> CopyResponse<'a> {
    fn decode(body: &'a [u8], message: &'static str) -> Result<Self, WireError> {
        let mut c = Cursor::new(body, message);
        let format = c.u8()?;
        let n = usize::from(c.u16()?);
        let column_formats = super::Formats::new(c.bytes(n.saturating_mul(2))?);
        Ok(CopyResponse {
            format,
            column_formats,
        })
    }

    /// How many columns the COPY has.
    pub fn columns(&self) -> usize {
        self.column_formats.len()
    }
}

/// An `Authentication*` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// `AuthenticationOk`.
    Ok,
    /// `AuthenticationCleartextPassword`.
    CleartextPassword,
    /// `AuthenticationMD5Password` with its salt.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// `AuthenticationSASL`: the mechanisms, each NUL-terminated, then a NUL.
    Sasl {
        /// The raw list (see [`Authentication::sasl_mechanisms`]).
        mechanisms: &'a [u8],
    },
    /// `AuthenticationSASLContinue`.
    SaslContinue(&'a [u8]),
    /// `AuthenticationSASLFinal`.
    SaslFinal(&'a [u8]),
    /// Any other method (Kerberos 2, SCM 6, GSS 7/8, SSPI 9, ...).
    Other(i32),
}

impl<'a> Authentication<'a> {
    /// Decodes an Authentication body.
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut c = Cursor::new(body, "Authentication");
        Ok(match c.i32()? {
            0 => Authentication::Ok,
            3 => Authentication::CleartextPassword,
            5 => {
                let salt = c.bytes(4)?;
                let mut s = [0u8; 4];
                s.copy_from_slice(salt);
                Authentication::Md5Password { salt: s }
            }
            10 => Authentication::Sasl {
                mechanisms: c.rest(),
            },
            11 => Authentication::SaslContinue(c.rest()),
            12 => Authentication::SaslFinal(c.rest()),
            other => Authentication::Other(other),
        })
    }

    /// The mechanism names of an `AuthenticationSASL` (empty otherwise).
    pub fn sasl_mechanisms(&self) -> Vec<&'a [u8]> {
        let Authentication::Sasl { mechanisms } = self else {
            return Vec::new();
        };
        let mut c = Cursor::new(mechanisms, "AuthenticationSASL");
        let mut out = Vec::new();
        while let Ok(m) = c.cstr() {
            if m.is_empty() {
                break;
            }
            out.push(m);
        }
        out
    }
}

/// A tagged message from the server, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// `D`.
    DataRow(DataRow<'a>),
    /// `T`.
    RowDescription(RowDescription<'a>),
    /// `C`: the command tag (`SELECT 5`, `INSERT 0 3`, `CREATE TABLE`).
    CommandComplete {
        /// The tag.
        tag: &'a [u8],
    },
    /// `E`.
    ErrorResponse(ErrorFields<'a>),
    /// `N`.
    NoticeResponse(ErrorFields<'a>),
    /// `S`.
    ParameterStatus {
        /// Setting name.
        name: &'a [u8],
        /// Its value.
        value: &'a [u8],
    },
    /// `t`: parameter type OIDs, 4 bytes each.
    ParameterDescription {
        /// The OIDs.
        types: &'a [u8],
    },
    /// `Z`: `I` idle, `T` in a transaction, `E` in a failed one.
    ReadyForQuery {
        /// Transaction status.
        status: u8,
    },
    /// `K`.
    BackendKeyData {
        /// Process id.
        pid: i32,
        /// Secret key (4 bytes in protocol 3.0).
        key: i32,
    },
    /// `R`.
    Authentication(Authentication<'a>),
    /// `1`.
    ParseComplete,
    /// `2`.
    BindComplete,
    /// `3`.
    CloseComplete,
    /// `n`.
    NoData,
    /// `s`.
    PortalSuspended,
    /// `I`.
    EmptyQueryResponse,
    /// `H`.
    CopyOutResponse(CopyResponse<'a>),
    /// `G`.
    CopyInResponse(CopyResponse<'a>),
    /// `W`.
    CopyBothResponse(CopyResponse<'a>),
    /// `d`.
    CopyData(&'a [u8]),
    /// `c`.
    CopyDone,
    /// Any other tag (notifications, NegotiateProtocolVersion, ...).
    Other(u8),
    /// A known tag whose body does not match its layout.
    Malformed {
        /// The tag.
        tag: u8,
        /// What is wrong.
        error: WireError,
    },
}

impl<'a> ServerMessage<'a> {
    /// Decodes one message; never fails (see [`ServerMessage::Malformed`]).
    #[inline]
    pub fn decode(tag: u8, body: &'a [u8]) -> Self {
        Self::try_decode(tag, body).unwrap_or_else(|error| ServerMessage::Malformed { tag, error })
    }

    #[inline]
    fn try_decode(tag: u8, body: &'a [u8]) -> Result<Self, WireError> {
        Ok(match tag {
            b'D' => ServerMessage::DataRow(DataRow::decode(body)?),
            b'd' => ServerMessage::CopyData(body),
            b'T' => ServerMessage::RowDescription(RowDescription::decode(body)?),
            b'C' => {
                let mut c = Cursor::new(body, "CommandComplete");
                ServerMessage::CommandComplete { tag: c.cstr()? }
            }
            b'E' => ServerMessage::ErrorResponse(ErrorFields::decode(body)),
            b'N' => ServerMessage::NoticeResponse(ErrorFields::decode(body)),
            b'S' => {
                let mut c = Cursor::new(body, "ParameterStatus");
                let name = c.cstr()?;
                let value = c.cstr()?;
                ServerMessage::ParameterStatus { name, value }
            }
            b't' => {
                let mut c = Cursor::new(body, "ParameterDescription");
                let n = usize::from(c.u16()?);
                let types = c.bytes(n.saturating_mul(4))?;
                ServerMessage::ParameterDescription { types }
            }
            b'Z' => {
                let mut c = Cursor::new(body, "ReadyForQuery");
                let status = c.u8()?;
                ServerMessage::ReadyForQuery { status }
            }
            b'K' => {
                let mut c = Cursor::new(body, "BackendKeyData");
                let pid = c.i32()?;
                let key = c.i32()?;
                ServerMessage::BackendKeyData { pid, key }
            }
            b'R' => ServerMessage::Authentication(Authentication::decode(body)?),
            b'1' => ServerMessage::ParseComplete,
            b'2' => ServerMessage::BindComplete,
            b'3' => ServerMessage::CloseComplete,
            b'n' => ServerMessage::NoData,
            b's' => ServerMessage::PortalSuspended,
            b'I' => ServerMessage::EmptyQueryResponse,
            b'H' => ServerMessage::CopyOutResponse(CopyResponse::decode(body, "CopyOutResponse")?),
            b'G' => ServerMessage::CopyInResponse(CopyResponse::decode(body, "CopyInResponse")?),
            b'W' => {
                ServerMessage::CopyBothResponse(CopyResponse::decode(body, "CopyBothResponse")?)
            }
            b'c' => ServerMessage::CopyDone,
            other => ServerMessage::Other(other),
        })
    }
}

/// The row count of a CommandComplete tag: its last word, when a number.
pub fn command_rows(tag: &[u8]) -> Option<u64> {
    let tag = std::str::from_utf8(tag).ok()?;
    tag.rsplit(' ').next()?.parse().ok()
}

/// A `RowDescription` field, owned: what the protocol state keeps of a
/// statement's or portal's description (names for the recording, sources and
/// types for the masking plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDesc {
    /// The name the client sees.
    pub name: String,
    /// Source table OID (0 when the value is not a plain table column).
    pub table_oid: u32,
    /// Source attribute number (0 when none).
    pub attnum: i16,
    /// Type OID.
    pub type_oid: u32,
    /// Format code (0 text, 1 binary; 0 in answers to Describe statement).
    pub format: i16,
}

impl From<FieldView<'_>> for FieldDesc {
    fn from(f: FieldView<'_>) -> Self {
        FieldDesc {
            name: String::from_utf8_lossy(f.name).into_owned(),
            table_oid: f.table_oid,
            attnum: f.column_id,
            type_oid: f.type_oid,
            format: f.format,
        }
    }
}

impl RowDescription<'_> {
    /// Every field, owned; an error when the body is malformed.
    pub fn to_descs(&self) -> Result<Vec<FieldDesc>, WireError> {
        let mut out = Vec::with_capacity(self.len().min(self.fields.len() / 19));
        for f in self.fields() {
            out.push(FieldDesc::from(f?));
        }
        Ok(out)
    }
}
