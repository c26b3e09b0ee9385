//! The masking hooks of the relay: result values leave the broker masked,
//! row by row, in the simple and the extended protocol and in
//! `COPY ... TO STDOUT` (see `docs/masking.md` for what clients see).
//!
//! # Knowing which column a value belongs to
//!
//! A `DataRow` carries values only. Their columns come from:
//!
//! - simple protocol: the `RowDescription` before the rows;
//! - extended protocol: the `RowDescription` answering a `Describe` of the
//!   statement (tokio-postgres, JDBC) or of the portal, plus the result
//!   format codes of the `Bind` that made the portal;
//! - `COPY ... TO STDOUT`: the COPY statement itself, read with the real SQL
//!   parser when the client sends it; its column list is described on the
//!   catalog's side connection (Parse + Describe, nothing executed).
//!
//! The protocol state ([`crate::proxy::postgres::state`]) says which client
//! message each answer belongs to, in the server's order even for pipelined
//! batches, and keeps each statement's and portal's description and result
//! formats; this stage reads it and keeps only its own column plans.
//!
//! Each column of a result gets a plan once per result description
//! ([`Masker::plan`], with the source `schema.table.column` from
//! [`Catalog`]; [`plan`]); rows whose columns need no work pass untouched, and a row
//! that needs work is rebuilt alone (memory bounded by one row).
//!
//! # Layout
//!
//! - [`plan`]: column plans for a result description;
//! - [`values`]: masking one value, and one DataRow;
//! - [`copy_spec`]: reading a `COPY ... TO STDOUT` statement;
//! - [`copy_data`]: masking COPY text and CSV payloads;
//! - [`rows`]: the server→client stage that ties them together.
//!
//! # Binary format
//!
//! Text-like types (`text`, `varchar`, `bpchar`, `name`, `unknown`, `json`)
//! are the same bytes in binary and text format, so they are masked alike.
//! A covered column of any other type in binary format is sent as **NULL**
//! (a placeholder of the type's own binary layout could be mistaken for real
//! data); detectors look into binary integers (as decimal) and into the raw
//! bytes of other binary values, and a hit makes the value NULL too.
//!
//! # COPY TO STDOUT
//!
//! Text and CSV output (with the statement's delimiter, quote, escape, NULL
//! and header options) is parsed field by field: covered columns are masked
//! and detectors scan every field. `COPY ... (FORMAT binary)`, and a COPY
//! whose columns cannot be mapped while column rules are in force (e.g. it
//! reads a table only the client's session can see), is refused: the client
//! gets an ErrorResponse instead of the data, which is dropped.
//!
//! # Recording result rows
//!
//! On a connection with `record_results = N` the hook also hands the
//! session's recording ([`SessionLog::result_row`]) the first N rows of
//! each statement, taken from the row as it leaves the broker: masked
//! values are recorded masked, exactly as the client received them.
//! Column names come from the RowDescription; binary-format values are
//! recorded as a placeholder, never decoded. Without masking sets the hook
//! still runs (every column passes) so rows can be recorded; it then never
//! refuses a COPY, and COPY data is not recorded. With recording off, a
//! DataRow costs one more branch.
//!
//! # Failing closed
//!
//! When the catalog cannot be read, every column that comes from a table is
//! masked as a whole (`****`, NULL in binary) if any rule names a table; a
//! `DataRow` the notes cannot place (which would be a bug) is masked as a
//! whole too, never passed in clear.

use std::sync::Arc;

use super::catalog::Catalog;
use super::pipeline::ServerStage;
use super::relay::Verdict;
use super::state::AnsweredState;
use super::wire::ServerFrame;
use crate::mask::Masker;
use crate::record::SessionLog;

mod copy_data;
mod copy_spec;
mod plan;
mod rows;
mod values;

#[cfg(test)]
use copy_spec::{CopyFormat, copy_specs};
use rows::MaskRows;

/// The masking of one session: its rules, its connection's catalog, and
/// where masked columns are reported.
pub struct MaskContext {
    /// The session's sets (connection ∪ policy), in order.
    pub masker: Masker,
    /// The connection's catalog.
    pub catalog: Arc<Catalog>,
    /// The session's recording, told which columns were masked.
    pub log: Option<Arc<SessionLog>>,
    /// Connection name (messages).
    pub connection: String,
}

impl std::fmt::Debug for MaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskContext")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// Server-side stage: masking when the session has rules or records result
/// rows, else nothing.
pub(crate) struct ServerSide {
    pub(crate) rows: Option<MaskRows>,
}

impl ServerSide {
    /// Whether the stage needs the protocol state's notes (what each answer
    /// answers, statement and portal descriptions).
    pub(crate) fn needs_notes(&self) -> bool {
        self.rows.is_some()
    }
}

impl ServerStage for ServerSide {
    #[inline]
    fn on_server(&mut self, frame: &ServerFrame<'_>, state: &AnsweredState) -> Verdict {
        match &mut self.rows {
            None => Verdict::Forward,
            Some(rows) => rows.on_server(frame, state),
        }
    }
}

/// The masking stage of a session: pass-through with no masking sets and
/// no recorded rows.
pub(crate) fn stage(masking: Option<Arc<MaskContext>>) -> ServerSide {
    match masking {
        Some(ctx)
            if !ctx.masker.is_empty()
                || ctx.log.as_ref().is_some_and(|l| l.keeps_results() > 0) =>
        {
            ServerSide {
                rows: Some(MaskRows::new(ctx)),
            }
        }
        _ => ServerSide { rows: None },
    }
}

#[cfg(test)]
mod tests;
