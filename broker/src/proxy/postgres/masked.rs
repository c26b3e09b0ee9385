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
//! The client→server observer ([`ClientSide`]) notes, in order, every message
//! the server will answer; the server→client hook ([`ServerSide`]) consumes
//! those notes as the answers arrive (ParseComplete, BindComplete, ...), so
//! it applies statement and portal state in the server's order, even for
//! pipelined batches. After an error the server skips to `Sync`, and so do
//! the notes; every ReadyForQuery re-synchronises them. The observer sees
//! each client message once, before any other client hook, so refusals that
//! replace a message with a marker (guardrails) keep the notes aligned: the
//! server answers the marker in its place.
//!
//! Each column of a result gets a plan once per result description
//! ([`Masker::plan`], with the source `schema.table.column` from
//! [`Catalog`]); rows whose columns need no work pass untouched, and a row
//! that needs work is rebuilt alone (memory bounded by one row).
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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{BufMut as _, Bytes, BytesMut};

use super::catalog::{Catalog, CatalogError, FieldDesc, Resolved, parse_row_description};
use super::frame::{cstr, error_message, i32_at};
use super::relay::{Frame, FrameHook, Verdict};
use crate::mask::{ColumnPlan, ColumnRef, Masker};
use crate::record::SessionLog;

/// What a fully masked text value looks like.
const FULL: &[u8] = b"****";

/// Types whose binary form is their text (client encoding).
const TEXT_LIKE: &[u32] = &[25, 1043, 1042, 19, 705, 114];
/// Types that cannot hold what detectors look for (booleans, dates, times).
const NEVER_SCANNED: &[u32] = &[16, 1082, 1083, 1114, 1184, 1186, 1266];

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

/// How a `COPY ... TO STDOUT` writes its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CopyFormat {
    /// Tab (or `delimiter`) separated, backslash escapes.
    Text {
        /// Field separator.
        delimiter: u8,
        /// How NULL is written (default `\N`).
        null: Vec<u8>,
    },
    /// CSV.
    Csv {
        /// Field separator.
        delimiter: u8,
        /// Quote character.
        quote: u8,
        /// Escape character inside quotes.
        escape: u8,
        /// How NULL is written (default: an unquoted empty field).
        null: Vec<u8>,
        /// Whether the first line is a header.
        header: bool,
    },
    /// Binary: not masked, refused.
    Binary,
}

/// A `COPY ... TO STDOUT` as the client sent it.
#[derive(Debug, Clone)]
pub(crate) struct CopySpec {
    /// A query whose description gives the copied columns.
    probe: Option<String>,
    format: CopyFormat,
}

/// A client message the server will answer, in order.
#[derive(Debug)]
enum Sent {
    Query {
        copies: VecDeque<CopySpec>,
    },
    Parse {
        stmt: String,
        copy: Option<CopySpec>,
    },
    Bind {
        portal: String,
        stmt: String,
        formats: Vec<i16>,
    },
    DescribeStmt {
        stmt: String,
    },
    DescribePortal {
        portal: String,
    },
    Execute {
        portal: String,
    },
    Close {
        statement: bool,
        name: String,
    },
    Sync,
    FunctionCall,
}

impl Sent {
    /// Ends at a ReadyForQuery.
    fn is_sync_point(&self) -> bool {
        matches!(self, Sent::Sync | Sent::Query { .. } | Sent::FunctionCall)
    }
}

/// The notes both directions share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    sent: Mutex<VecDeque<Sent>>,
}

impl Shared {
    fn push(&self, s: Sent) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(s);
    }
}

/// Client → server: notes what the server will answer, then lets `inner`
/// (guardrails, logging) decide. A frame `inner` waits on is shown again;
/// it is noted once.
pub(crate) struct ClientSide<H> {
    inner: H,
    shared: Option<Arc<Shared>>,
    reshow: bool,
}

impl<H: FrameHook> FrameHook for ClientSide<H> {
    #[inline]
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        if !self.reshow
            && let Some(shared) = &self.shared
        {
            observe(shared, frame);
        }
        let verdict = self.inner.on_frame(frame);
        self.reshow = matches!(verdict, Verdict::Wait(_));
        verdict
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn observe(shared: &Shared, frame: Frame<'_>) {
    let body = frame.body;
    let sent = match frame.tag {
        b'Q' => {
            let sql = cstr(body).map_or(body, |(s, _)| s);
            Sent::Query {
                copies: copy_specs(sql).into(),
            }
        }
        b'P' => {
            let Some((name, rest)) = cstr(body) else {
                return;
            };
            let sql = cstr(rest).map_or(rest, |(s, _)| s);
            Sent::Parse {
                stmt: lossy(name),
                copy: copy_specs(sql).into_iter().next(),
            }
        }
        b'B' => {
            let Some((portal, stmt, formats)) = parse_bind(body) else {
                return;
            };
            Sent::Bind {
                portal,
                stmt,
                formats,
            }
        }
        b'D' => {
            let Some((&kind, rest)) = body.split_first() else {
                return;
            };
            let name = lossy(cstr(rest).map_or(rest, |(s, _)| s));
            if kind == b'S' {
                Sent::DescribeStmt { stmt: name }
            } else {
                Sent::DescribePortal { portal: name }
            }
        }
        b'E' => Sent::Execute {
            portal: lossy(cstr(body).map_or(body, |(s, _)| s)),
        },
        b'C' => {
            let Some((&kind, rest)) = body.split_first() else {
                return;
            };
            Sent::Close {
                statement: kind == b'S',
                name: lossy(cstr(rest).map_or(rest, |(s, _)| s)),
            }
        }
        b'S' => Sent::Sync,
        b'F' => Sent::FunctionCall,
        // Flush, CopyData/CopyDone/CopyFail (part of a statement already
        // noted), Terminate: no answer of their own.
        _ => return,
    };
    shared.push(sent);
}

/// (portal, statement, result format codes) of a Bind body.
fn parse_bind(body: &[u8]) -> Option<(String, String, Vec<i16>)> {
    let (portal, rest) = cstr(body)?;
    let (stmt, mut rest) = cstr(rest)?;
    let read_i16 =
        |b: &[u8]| -> Option<i16> { Some(i16::from_be_bytes([*b.first()?, *b.get(1)?])) };
    let nparam_formats = usize::try_from(read_i16(rest)?).ok()?;
    rest = rest.get(2 + 2 * nparam_formats..)?;
    let nparams = usize::try_from(read_i16(rest)?).ok()?;
    rest = rest.get(2..)?;
    for _ in 0..nparams {
        let len = i32_at(rest, 0)?;
        rest = rest.get(4..)?;
        if len > 0 {
            rest = rest.get(usize::try_from(len).ok()?..)?;
        }
    }
    let nresult = usize::try_from(read_i16(rest)?).ok()?;
    rest = rest.get(2..)?;
    let mut formats = Vec::with_capacity(nresult.min(rest.len() / 2));
    for _ in 0..nresult {
        formats.push(read_i16(rest)?);
        rest = rest.get(2..)?;
    }
    Some((lossy(portal), lossy(stmt), formats))
}

/// The `COPY ... TO STDOUT` statements in `sql`, in order. Only text that
/// mentions COPY is parsed.
pub(crate) fn copy_specs(sql: &[u8]) -> Vec<CopySpec> {
    const NEEDLE: &[u8] = b"copy";
    if !sql
        .windows(NEEDLE.len())
        .any(|w| w.eq_ignore_ascii_case(NEEDLE))
    {
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(sql) else {
        return Vec::new();
    };
    let Ok(parsed) = pg_query::parse(text, pg_query::ParserOptions::DEFAULT) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(pg_query::NodeEnum::CopyStmt(copy)) =
            raw.stmt.as_ref().and_then(|n| n.node.as_ref())
        else {
            continue;
        };
        if copy.is_from || copy.is_program || !copy.filename.is_empty() {
            continue;
        }
        out.push(copy_spec(copy));
    }
    out
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn copy_spec(copy: &pg_query::protobuf::CopyStmt) -> CopySpec {
    use pg_query::NodeEnum;
    let text_arg = |n: &Option<Box<pg_query::protobuf::Node>>| -> Option<String> {
        match n.as_ref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            Some(NodeEnum::Integer(i)) => Some(i.ival.to_string()),
            Some(NodeEnum::Boolean(b)) => Some(b.boolval.to_string()),
            Some(NodeEnum::AConst(c)) => match &c.val {
                Some(pg_query::protobuf::a_const::Val::Sval(s)) => Some(s.sval.clone()),
                Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i.ival.to_string()),
                Some(pg_query::protobuf::a_const::Val::Boolval(b)) => Some(b.boolval.to_string()),
                _ => None,
            },
            _ => None,
        }
    };
    let mut format = "text".to_owned();
    let (mut delimiter, mut quote, mut escape, mut null, mut header) =
        (None, None, None, None, false);
    for opt in &copy.options {
        let Some(NodeEnum::DefElem(d)) = opt.node.as_ref() else {
            continue;
        };
        let value = text_arg(&d.arg);
        match d.defname.as_str() {
            "format" => format = value.unwrap_or_default().to_ascii_lowercase(),
            "delimiter" => delimiter = value.and_then(|v| v.bytes().next()),
            "quote" => quote = value.and_then(|v| v.bytes().next()),
            "escape" => escape = value.and_then(|v| v.bytes().next()),
            "null" => null = value.map(String::into_bytes),
            "header" => {
                header = value
                    .is_none_or(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "1"))
            }
            _ => {}
        }
    }
    let format = match format.as_str() {
        "csv" => {
            let quote = quote.unwrap_or(b'"');
            CopyFormat::Csv {
                delimiter: delimiter.unwrap_or(b','),
                quote,
                escape: escape.unwrap_or(quote),
                null: null.unwrap_or_default(),
                header,
            }
        }
        "binary" => CopyFormat::Binary,
        _ => CopyFormat::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
            null: null.unwrap_or_else(|| b"\\N".to_vec()),
        },
    };
    let probe = if let Some(rel) = &copy.relation {
        let mut name = String::new();
        if !rel.schemaname.is_empty() {
            name.push_str(&quote_ident(&rel.schemaname));
            name.push('.');
        }
        name.push_str(&quote_ident(&rel.relname));
        let cols: Vec<String> = copy
            .attlist
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(quote_ident(&s.sval)),
                _ => None,
            })
            .collect();
        if cols.len() != copy.attlist.len() {
            None
        } else if cols.is_empty() {
            Some(format!("SELECT * FROM {name}"))
        } else {
            Some(format!("SELECT {} FROM {name}", cols.join(", ")))
        }
    } else {
        copy.query
            .as_ref()
            .and_then(|q| q.node.clone())
            .and_then(|node| {
                // Deparsing is libpg_query's own code; a statement kind it does
                // not support must not take the relay down.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    node.deparse(Default::default()).ok()
                }))
                .ok()
                .flatten()
            })
    };
    CopySpec { probe, format }
}

/// What happens to one column's values.
#[derive(Debug, Clone)]
enum Col {
    /// Nothing applies.
    Pass,
    /// Masked as text (text format, or a text-like type in binary).
    Text(ColumnPlan),
    /// A covered column in binary format: NULL.
    Null,
    /// Detectors over a binary value: NULL on a hit.
    BinaryScan(ColumnPlan, u32),
    /// Fail closed: `****` in text, NULL in binary.
    Whole { binary: bool },
}

/// The plan for every column of one result.
#[derive(Debug)]
struct ColumnMap {
    cols: Vec<Col>,
    labels: Vec<String>,
    /// Column names as the RowDescription gives them (recorded rows).
    names: Vec<String>,
    /// Whether each column arrives in binary format (recorded rows).
    binary: Vec<bool>,
    any: bool,
}

impl ColumnMap {
    /// A map that masks every value as a whole (fail closed).
    fn whole(n: usize, label: &str) -> ColumnMap {
        ColumnMap {
            cols: vec![Col::Whole { binary: false }; n],
            labels: vec![label.to_owned(); n],
            names: vec![label.to_owned(); n],
            binary: vec![false; n],
            any: n > 0,
        }
    }

    /// A map that passes every value (no masking sets: rows are only
    /// recorded).
    fn pass(n: usize, label: &str) -> ColumnMap {
        ColumnMap {
            cols: vec![Col::Pass; n],
            labels: vec![label.to_owned(); n],
            names: vec![label.to_owned(); n],
            binary: vec![false; n],
            any: false,
        }
    }
}

#[derive(Debug, Default)]
struct Stmt {
    fields: Option<Arc<Vec<FieldDesc>>>,
    copy: Option<CopySpec>,
}

#[derive(Debug)]
struct Portal {
    fields: Option<Arc<Vec<FieldDesc>>>,
    /// Result formats from Bind (`None`: as the RowDescription says).
    formats: Option<Vec<i16>>,
    copy: Option<CopySpec>,
    map: Option<Arc<ColumnMap>>,
}

/// Where a `COPY ... TO STDOUT` stands.
#[derive(Debug)]
enum CopyState {
    /// Not in a COPY.
    Off,
    /// Masking its rows.
    Masking {
        format: CopyFormat,
        map: Arc<ColumnMap>,
        header_pending: bool,
    },
    /// Refused: its data, CopyDone and CommandComplete are dropped.
    Refusing,
}

type ProbeSlot = Arc<Mutex<Option<Result<Option<Vec<FieldDesc>>, CatalogError>>>>;

/// Server → client: masks rows.
pub(crate) struct MaskRows {
    ctx: Arc<MaskContext>,
    shared: Arc<Shared>,
    statements: HashMap<String, Stmt>,
    portals: HashMap<String, Portal>,
    /// The map of the rows now arriving.
    current: Option<Arc<ColumnMap>>,
    /// Columns of `current` already reported to the recording.
    reported: Vec<bool>,
    copy: CopyState,
    /// The frame now shown was already waited on once.
    waited: bool,
    probe: Option<ProbeSlot>,
    warned_unplaced: bool,
    /// Where result rows are recorded (`record_results` > 0).
    capture: Option<Capture>,
}

/// Result rows going to the recording.
struct Capture {
    log: Arc<SessionLog>,
    /// The recording wants no more rows until the next ReadyForQuery.
    full: bool,
}

/// Server-side hook: masking when the session has rules, else nothing.
pub(crate) struct ServerSide {
    rows: Option<MaskRows>,
}

impl FrameHook for ServerSide {
    #[inline]
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match &mut self.rows {
            None => Verdict::Forward,
            Some(rows) => rows.on_frame(frame),
        }
    }
}

/// The hooks of a session: `client` is the client→server hook the
/// observer goes in front of; with no masking and no recorded rows both
/// are pass-through.
pub(crate) fn hooks<C: FrameHook>(
    masking: Option<Arc<MaskContext>>,
    client: C,
) -> (ClientSide<C>, ServerSide) {
    match masking {
        Some(ctx)
            if !ctx.masker.is_empty()
                || ctx.log.as_ref().is_some_and(|l| l.keeps_results() > 0) =>
        {
            let shared = Arc::new(Shared::default());
            (
                ClientSide {
                    inner: client,
                    shared: Some(shared.clone()),
                    reshow: false,
                },
                ServerSide {
                    rows: Some(MaskRows::new(ctx, shared)),
                },
            )
        }
        _ => (
            ClientSide {
                inner: client,
                shared: None,
                reshow: false,
            },
            ServerSide { rows: None },
        ),
    }
}

impl MaskRows {
    fn new(ctx: Arc<MaskContext>, shared: Arc<Shared>) -> MaskRows {
        let capture = ctx
            .log
            .as_ref()
            .filter(|l| l.keeps_results() > 0)
            .map(|log| Capture {
                log: log.clone(),
                full: false,
            });
        MaskRows {
            capture,
            ctx,
            shared,
            statements: HashMap::new(),
            portals: HashMap::new(),
            current: None,
            reported: Vec::new(),
            copy: CopyState::Off,
            waited: false,
            probe: None,
            warned_unplaced: false,
        }
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, VecDeque<Sent>> {
        self.shared.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_current(&mut self, map: Option<Arc<ColumnMap>>) {
        self.reported.clear();
        if let Some(m) = &map {
            self.reported.resize(m.cols.len(), false);
        }
        self.current = map;
    }

    /// Builds the map for `fields`; `Err` with the table OIDs to look up
    /// first (only while this frame has not been waited on).
    fn build(&self, fields: &[FieldDesc], formats: Option<&[i16]>) -> Result<ColumnMap, Vec<u32>> {
        let masker = &self.ctx.masker;
        let need_sources = masker.has_column_rules();
        let mut unknown = Vec::new();
        let mut cols = Vec::with_capacity(fields.len());
        let mut labels = Vec::with_capacity(fields.len());
        let mut names = Vec::with_capacity(fields.len());
        let mut binaries = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            let binary = match formats {
                None => f.format == 1,
                Some([]) => false,
                Some([one]) => *one == 1,
                Some(many) => many.get(i).is_some_and(|x| *x == 1),
            };
            names.push(f.name.clone());
            binaries.push(binary);
            let mut column = ColumnRef {
                name: f.name.clone(),
                ..ColumnRef::default()
            };
            let mut unresolved = false;
            if need_sources && f.table_oid != 0 && f.attnum > 0 {
                match self.ctx.catalog.resolve(f.table_oid, f.attnum) {
                    Resolved::Column(t, name) => {
                        column.schema = Some(t.schema.clone());
                        column.table = Some(t.table.clone());
                        column.column = Some(name);
                    }
                    Resolved::Absent => {}
                    Resolved::Unknown => {
                        unresolved = true;
                        if !self.waited && !unknown.contains(&f.table_oid) {
                            unknown.push(f.table_oid);
                        }
                    }
                }
            }
            labels.push(column.label());
            if unresolved && masker.has_table_patterns() {
                cols.push(Col::Whole { binary });
                continue;
            }
            let col = match masker.plan(&column) {
                None => Col::Pass,
                Some(plan) if !plan.is_whole_value() && NEVER_SCANNED.contains(&f.type_oid) => {
                    Col::Pass
                }
                Some(plan) if !binary || TEXT_LIKE.contains(&f.type_oid) => Col::Text(plan),
                Some(plan) if plan.is_whole_value() => Col::Null,
                Some(plan) => Col::BinaryScan(plan, f.type_oid),
            };
            cols.push(col);
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let any = cols.iter().any(|c| !matches!(c, Col::Pass));
        Ok(ColumnMap {
            cols,
            labels,
            names,
            binary: binaries,
            any,
        })
    }

    /// The map for `fields`, or a Wait while the catalog is asked.
    fn map_or_wait(
        &mut self,
        fields: &[FieldDesc],
        formats: Option<&[i16]>,
    ) -> Result<Arc<ColumnMap>, Verdict> {
        match self.build(fields, formats) {
            Ok(map) => {
                self.waited = false;
                Ok(Arc::new(map))
            }
            Err(oids) => {
                self.waited = true;
                Err(Verdict::Wait(Box::pin(
                    self.ctx.catalog.clone().fetch(oids),
                )))
            }
        }
    }

    fn report(&mut self, column: usize) {
        if let Some(done) = self.reported.get_mut(column)
            && !*done
        {
            *done = true;
            if let (Some(log), Some(map)) = (&self.ctx.log, &self.current)
                && let Some(label) = map.labels.get(column)
            {
                log.masked(label);
            }
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match frame.tag {
            b'D' => self.data_row(frame.body),
            b'd' => self.copy_data(frame.body),
            b'T' => self.row_description(frame.body),
            b'1' => {
                let mut sent = self.sent();
                if let Some(Sent::Parse { .. }) = sent.front()
                    && let Some(Sent::Parse { stmt, copy }) = sent.pop_front()
                {
                    drop(sent);
                    self.statements.insert(stmt, Stmt { fields: None, copy });
                }
                Verdict::Forward
            }
            b'2' => {
                let mut sent = self.sent();
                if let Some(Sent::Bind { .. }) = sent.front()
                    && let Some(Sent::Bind {
                        portal,
                        stmt,
                        formats,
                    }) = sent.pop_front()
                {
                    drop(sent);
                    let s = self.statements.get(&stmt);
                    let portal_state = Portal {
                        fields: s.and_then(|s| s.fields.clone()),
                        formats: Some(formats),
                        copy: s.and_then(|s| s.copy.clone()),
                        map: None,
                    };
                    self.portals.insert(portal, portal_state);
                }
                Verdict::Forward
            }
            b'n' => {
                let mut sent = self.sent();
                if matches!(
                    sent.front(),
                    Some(Sent::DescribeStmt { .. } | Sent::DescribePortal { .. })
                ) {
                    sent.pop_front();
                }
                Verdict::Forward
            }
            b'3' => {
                let mut sent = self.sent();
                if let Some(Sent::Close { .. }) = sent.front()
                    && let Some(Sent::Close { statement, name }) = sent.pop_front()
                {
                    drop(sent);
                    if statement {
                        self.statements.remove(&name);
                    } else {
                        self.portals.remove(&name);
                    }
                }
                Verdict::Forward
            }
            b'C' | b'I' | b's' => {
                self.set_current(None);
                if let CopyState::Refusing = self.copy
                    && frame.tag == b'C'
                {
                    self.copy = CopyState::Off;
                    self.pop_execute();
                    return Verdict::Replace(Bytes::new());
                }
                self.copy = CopyState::Off;
                self.pop_execute();
                Verdict::Forward
            }
            b'E' => {
                self.set_current(None);
                self.copy = CopyState::Off;
                let mut sent = self.sent();
                // Extended protocol: the server skips to Sync.
                while sent.front().is_some_and(|s| !s.is_sync_point()) {
                    sent.pop_front();
                }
                Verdict::Forward
            }
            b'Z' => {
                self.set_current(None);
                self.copy = CopyState::Off;
                if let Some(c) = &mut self.capture {
                    c.full = false;
                }
                let mut sent = self.sent();
                while let Some(s) = sent.pop_front() {
                    if s.is_sync_point() {
                        break;
                    }
                }
                drop(sent);
                if frame.body.first() == Some(&b'I') {
                    // Outside a transaction no portal survives.
                    self.portals.clear();
                }
                Verdict::Forward
            }
            b'H' => self.copy_out(frame.body),
            b'c' => match self.copy {
                CopyState::Refusing => Verdict::Replace(Bytes::new()),
                _ => Verdict::Forward,
            },
            _ => Verdict::Forward,
        }
    }

    fn pop_execute(&mut self) {
        let mut sent = self.sent();
        if let Some(Sent::Execute { .. }) = sent.front() {
            sent.pop_front();
        }
    }

    fn row_description(&mut self, body: &[u8]) -> Verdict {
        let Some(fields) = parse_row_description(body) else {
            // Malformed: whatever rows follow are masked whole.
            self.waited = false;
            self.set_current(None);
            return Verdict::Forward;
        };
        enum Front {
            Stmt(String),
            Portal(String),
            Rows,
        }
        let front = match self.sent().front() {
            Some(Sent::DescribeStmt { stmt }) => Front::Stmt(stmt.clone()),
            Some(Sent::DescribePortal { portal }) => Front::Portal(portal.clone()),
            _ => Front::Rows,
        };
        match front {
            Front::Stmt(stmt) => {
                // Warm the catalog now; the rows come with a later Execute.
                let formats: Option<&[i16]> = Some(&[]);
                if let Err(wait) = self.map_or_wait(&fields, formats) {
                    return wait;
                }
                self.sent().pop_front();
                self.statements.entry(stmt).or_default().fields = Some(Arc::new(fields));
            }
            Front::Portal(portal) => {
                let map = match self.map_or_wait(&fields, None) {
                    Ok(map) => map,
                    Err(wait) => return wait,
                };
                self.sent().pop_front();
                let p = self.portals.entry(portal).or_insert(Portal {
                    fields: None,
                    formats: None,
                    copy: None,
                    map: None,
                });
                p.fields = Some(Arc::new(fields));
                p.formats = None;
                p.map = Some(map);
            }
            Front::Rows => {
                let map = match self.map_or_wait(&fields, None) {
                    Ok(map) => map,
                    Err(wait) => return wait,
                };
                self.set_current(Some(map));
            }
        }
        Verdict::Forward
    }

    /// The map for rows arriving without a RowDescription of their own
    /// (an Execute's), or a Wait.
    fn execute_map(&mut self) -> Result<Option<Arc<ColumnMap>>, Verdict> {
        let portal = match self.sent().front() {
            Some(Sent::Execute { portal }) => portal.clone(),
            _ => return Ok(None),
        };
        let Some(p) = self.portals.get(&portal) else {
            return Ok(None);
        };
        if let Some(map) = &p.map {
            return Ok(Some(map.clone()));
        }
        let Some(fields) = p.fields.clone() else {
            return Ok(None);
        };
        let formats = p.formats.clone();
        let map = self.map_or_wait(&fields, formats.as_deref())?;
        if let Some(p) = self.portals.get_mut(&portal) {
            p.map = Some(map.clone());
        }
        Ok(Some(map))
    }

    fn data_row(&mut self, body: &[u8]) -> Verdict {
        if self.current.is_none() {
            match self.execute_map() {
                Ok(Some(map)) => self.set_current(Some(map)),
                Ok(None) if self.ctx.masker.is_empty() => {
                    // Only recording: nothing to fail closed on.
                    let n = u16_at(body, 0).unwrap_or(0);
                    self.set_current(Some(Arc::new(ColumnMap::pass(n, "?column?"))));
                }
                Ok(None) => {
                    // Rows the notes cannot place: fail closed.
                    if !self.warned_unplaced {
                        self.warned_unplaced = true;
                        tracing::warn!(
                            connection = %self.ctx.connection,
                            "masking: result rows without a known description; masking them whole"
                        );
                    }
                    let n = u16_at(body, 0).unwrap_or(0);
                    self.set_current(Some(Arc::new(ColumnMap::whole(n, "(unknown column)"))));
                }
                Err(wait) => return wait,
            }
        }
        let Some(map) = self.current.clone() else {
            return Verdict::Forward;
        };
        let verdict = if !map.any {
            Verdict::Forward
        } else {
            match mask_data_row(body, &map, &mut |i| self.report(i)) {
                Some(bytes) => Verdict::Replace(bytes),
                None => Verdict::Forward,
            }
        };
        if let Some(c) = &mut self.capture
            && !c.full
        {
            // The row as the client gets it: the rebuilt frame's body, or
            // the server's.
            let sent = match &verdict {
                Verdict::Replace(frame) => frame.get(5..).unwrap_or_default(),
                _ => body,
            };
            if let Some(values) = row_values(sent, &map.binary) {
                c.full = !c.log.result_row(&map.names, values);
            }
        }
        verdict
    }

    fn copy_out(&mut self, body: &[u8]) -> Verdict {
        let spec = {
            let mut sent = self.sent();
            match sent.front_mut() {
                Some(Sent::Query { copies }) => copies.front().cloned(),
                Some(Sent::Execute { portal }) => {
                    let portal = portal.clone();
                    drop(sent);
                    self.portals.get(&portal).and_then(|p| p.copy.clone())
                }
                _ => None,
            }
        };
        let columns = u16_at(body, 1).unwrap_or(0);
        let overall_binary = body.first() == Some(&1);
        let decided = self.decide_copy(spec, columns, overall_binary);
        if matches!(decided, Verdict::Wait(_)) {
            return decided;
        }
        // The spec is used up (a multi-statement Query may hold several).
        if let Some(Sent::Query { copies }) = self.sent().front_mut() {
            copies.pop_front();
        }
        decided
    }

    fn decide_copy(&mut self, spec: Option<CopySpec>, columns: usize, binary: bool) -> Verdict {
        if self.ctx.masker.is_empty() {
            // Only recording rows: COPY passes as without this hook.
            return Verdict::Forward;
        }
        let refuse = |this: &mut MaskRows, why: &str| {
            this.probe = None;
            this.waited = false;
            this.copy = CopyState::Refusing;
            tracing::info!(connection = %this.ctx.connection, why, "masking: refused a COPY");
            Verdict::Replace(
                error_message(
                    "42501",
                    &format!(
                        "hoop: COPY refused on connection \"{}\": masking rules apply to its \
                         results and {why}",
                        this.ctx.connection
                    ),
                    Some("use COPY ... TO STDOUT in text or csv format, or a plain SELECT"),
                )
                .freeze(),
            )
        };
        let Some(spec) = spec else {
            return refuse(self, "the broker could not read the COPY statement");
        };
        if binary || spec.format == CopyFormat::Binary {
            return refuse(self, "binary COPY output cannot be masked");
        }
        let map = if self.ctx.masker.has_column_rules() {
            let Some(probe) = spec.probe.clone() else {
                return refuse(self, "its columns could not be worked out");
            };
            let slot = match &self.probe {
                Some(slot) => slot.clone(),
                None => {
                    let slot: ProbeSlot = Arc::new(Mutex::new(None));
                    self.probe = Some(slot.clone());
                    let catalog = self.ctx.catalog.clone();
                    let fetch_unknown = self.ctx.masker.has_table_patterns();
                    return Verdict::Wait(Box::pin(async move {
                        let described = catalog.clone().describe(probe).await;
                        if fetch_unknown && let Ok(Some(fields)) = &described {
                            let mut oids: Vec<u32> = fields
                                .iter()
                                .filter(|f| {
                                    f.table_oid != 0
                                        && f.attnum > 0
                                        && matches!(
                                            catalog.resolve(f.table_oid, f.attnum),
                                            Resolved::Unknown
                                        )
                                })
                                .map(|f| f.table_oid)
                                .collect();
                            oids.dedup();
                            if !oids.is_empty() {
                                catalog.clone().fetch(oids).await;
                            }
                        }
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(described);
                    }));
                }
            };
            self.probe = None;
            let described = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let fields = match described {
                Some(Ok(Some(fields))) if fields.len() == columns => fields,
                Some(Ok(_)) => {
                    return refuse(self, "its columns could not be matched to the table's");
                }
                Some(Err(e)) => {
                    tracing::info!(error = %e, "masking: could not describe a COPY");
                    return refuse(
                        self,
                        "its columns could not be looked up (a table only this session sees?)",
                    );
                }
                None => return refuse(self, "its columns could not be looked up"),
            };
            // Every field is text in COPY's text and csv formats.
            self.waited = true; // the catalog was asked with the probe
            let built = self.build(&fields, Some(&[]));
            self.waited = false;
            match built {
                Ok(map) => map,
                Err(_) => ColumnMap::whole(columns, "(copy)"),
            }
        } else {
            let plan = self.ctx.masker.plan(&ColumnRef::default());
            let cols = vec![plan.map_or(Col::Pass, Col::Text); columns];
            ColumnMap {
                any: cols.iter().any(|c| !matches!(c, Col::Pass)),
                cols,
                labels: vec!["(copy)".to_owned(); columns],
                names: vec!["(copy)".to_owned(); columns],
                binary: vec![false; columns],
            }
        };
        let header_pending = matches!(spec.format, CopyFormat::Csv { header: true, .. });
        let map = Arc::new(map);
        self.set_current(Some(map.clone()));
        self.copy = CopyState::Masking {
            format: spec.format,
            map,
            header_pending,
        };
        Verdict::Forward
    }

    fn copy_data(&mut self, body: &[u8]) -> Verdict {
        let (format, map, header) = match &mut self.copy {
            CopyState::Off => return Verdict::Forward,
            CopyState::Refusing => return Verdict::Replace(Bytes::new()),
            CopyState::Masking {
                format,
                map,
                header_pending,
            } => {
                let header = std::mem::take(header_pending);
                (format.clone(), map.clone(), header)
            }
        };
        if header || !map.any {
            return Verdict::Forward;
        }
        let masked = match &format {
            CopyFormat::Text { delimiter, null } => {
                mask_copy_text(body, *delimiter, null, &map, &mut |i| self.report(i))
            }
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => mask_copy_csv(body, (*delimiter, *quote, *escape), null, &map, &mut |i| {
                self.report(i)
            }),
            CopyFormat::Binary => return Verdict::Replace(Bytes::new()),
        };
        match masked {
            Some(payload) => {
                let mut out = BytesMut::with_capacity(payload.len() + 5);
                out.put_u8(b'd');
                out.put_u32(u32::try_from(payload.len() + 4).unwrap_or(u32::MAX));
                out.put_slice(&payload);
                Verdict::Replace(out.freeze())
            }
            None => Verdict::Forward,
        }
    }
}

/// A big-endian u16 at `at`.
fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

/// The new value of one field: `None` unchanged, `Some(None)` NULL.
fn mask_field(col: &Col, value: &[u8]) -> Option<Option<Vec<u8>>> {
    match col {
        Col::Pass => None,
        Col::Whole { binary: false } => Some(Some(FULL.to_vec())),
        Col::Whole { binary: true } | Col::Null => Some(None),
        Col::Text(plan) => mask_text(plan, value).map(Some),
        Col::BinaryScan(plan, type_oid) => {
            let text = match (*type_oid, value.len()) {
                (20, 8) | (23, 4) | (21, 2) => {
                    let mut n: i64 = 0;
                    for b in value {
                        n = (n << 8) | i64::from(*b);
                    }
                    // Sign-extend the narrower integers.
                    let shift = 64 - 8 * value.len() as u32;
                    ((n << shift) >> shift).to_string()
                }
                _ => String::from_utf8_lossy(value).into_owned(),
            };
            plan.apply(&text).map(|_| None)
        }
    }
}

/// A text value masked by `plan` (`None`: unchanged). A value that is not
/// UTF-8 and holds a detector hit is masked whole: its ranges cannot be
/// trusted.
fn mask_text(plan: &ColumnPlan, value: &[u8]) -> Option<Vec<u8>> {
    match std::str::from_utf8(value) {
        Ok(s) => {
            if !plan.may_touch(s) {
                return None;
            }
            plan.apply(s).map(String::into_bytes)
        }
        Err(_) => {
            let s = String::from_utf8_lossy(value);
            let masked = plan.apply(&s)?;
            Some(if plan.is_whole_value() {
                masked.into_bytes()
            } else {
                FULL.to_vec()
            })
        }
    }
}

/// A DataRow with its covered fields masked (the whole frame), or `None`
/// when nothing changed. Malformed rows are masked whole.
fn mask_data_row(body: &[u8], map: &ColumnMap, report: &mut dyn FnMut(usize)) -> Option<Bytes> {
    let Some(count) = u16_at(body, 0) else {
        return Some(whole_row(0));
    };
    let mut out: Option<BytesMut> = None;
    let mut at = 2usize;
    for i in 0..count {
        let Some(len) = i32_at(body, at) else {
            return Some(whole_row(count));
        };
        let start = at;
        at += 4;
        let value = if len < 0 {
            None
        } else {
            let Ok(n) = usize::try_from(len) else {
                return Some(whole_row(count));
            };
            let Some(v) = body.get(at..at + n) else {
                return Some(whole_row(count));
            };
            at += n;
            Some(v)
        };
        let col = map.cols.get(i).unwrap_or(&Col::Whole { binary: false });
        let replacement = match value {
            Some(v) => mask_field(col, v),
            None => None,
        };
        match (replacement, &mut out) {
            (None, None) => {}
            (None, Some(o)) => o.put_slice(body.get(start..at).unwrap_or_default()),
            (Some(new), o) => {
                report(i);
                let o = o.get_or_insert_with(|| {
                    let mut o = BytesMut::with_capacity(body.len() + 32);
                    o.put_u8(b'D');
                    o.put_u32(0);
                    o.put_slice(body.get(..start).unwrap_or_default());
                    o
                });
                match new {
                    None => o.put_i32(-1),
                    Some(bytes) => {
                        o.put_i32(i32::try_from(bytes.len()).unwrap_or(i32::MAX));
                        o.put_slice(&bytes);
                    }
                }
            }
        }
    }
    let mut o = out?;
    o.put_slice(body.get(at..).unwrap_or_default());
    let len = u32::try_from(o.len() - 1).unwrap_or(u32::MAX);
    if let Some(slot) = o.get_mut(1..5) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Some(o.freeze())
}

/// The values of a DataRow body as the recording keeps them: text as
/// [`crate::record::result_value`] makes it, binary columns as a
/// placeholder, NULL as `None`. `None` for a malformed row.
fn row_values(body: &[u8], binary: &[bool]) -> Option<Vec<Option<String>>> {
    let count = u16_at(body, 0)?;
    let mut at = 2usize;
    let mut values = Vec::with_capacity(count);
    for i in 0..count {
        let len = i32_at(body, at)?;
        at += 4;
        if len < 0 {
            values.push(None);
            continue;
        }
        let n = usize::try_from(len).ok()?;
        let value = body.get(at..at.checked_add(n)?)?;
        at += n;
        values.push(Some(if binary.get(i).copied().unwrap_or(false) {
            crate::record::BINARY_PLACEHOLDER.to_owned()
        } else {
            crate::record::result_value(value)
        }));
    }
    Some(values)
}

/// A DataRow of `count` NULLs (what a malformed row becomes).
fn whole_row(count: usize) -> Bytes {
    let mut o = BytesMut::with_capacity(7 + 4 * count);
    o.put_u8(b'D');
    o.put_u32(u32::try_from(6 + 4 * count).unwrap_or(u32::MAX));
    o.put_u16(u16::try_from(count).unwrap_or(u16::MAX));
    for _ in 0..count {
        o.put_i32(-1);
    }
    o.freeze()
}

/// Decodes a COPY text field (backslash escapes).
fn unescape_text(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(c) = it.next() else {
            out.push(b'\\');
            break;
        };
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match it.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(*d - b'0');
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match it.peek().and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            it.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push((v & 0xff) as u8);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Encodes a value as a COPY text field.
fn escape_text(value: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            d if d == delimiter => {
                out.push(b'\\');
                out.push(d);
            }
            other => out.push(other),
        }
    }
}

/// Masks COPY text rows (one or more whole lines); `None` when unchanged.
fn mask_copy_text(
    data: &[u8],
    delimiter: u8,
    null: &[u8],
    map: &ColumnMap,
    report: &mut dyn FnMut(usize),
) -> Option<Vec<u8>> {
    let mut changed = false;
    let out = rebuild_text(data, delimiter, null, map, &mut |i| {
        changed = true;
        report(i);
    });
    changed.then_some(out)
}

/// Every line of `data` with its fields masked; `report` hears of each change.
fn rebuild_text(
    data: &[u8],
    delimiter: u8,
    null: &[u8],
    map: &ColumnMap,
    report: &mut dyn FnMut(usize),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for line in data.split_inclusive(|&b| b == b'\n') {
        let (content, nl) = match line.strip_suffix(b"\n") {
            Some(c) => (c, true),
            None => (line, false),
        };
        for (i, field) in split_text_fields(content, delimiter)
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(delimiter);
            }
            let col = map.cols.get(i).unwrap_or(&Col::Whole { binary: false });
            if matches!(col, Col::Pass) || field == null {
                out.extend_from_slice(field);
                continue;
            }
            let value = unescape_text(field);
            match mask_field(col, &value) {
                None => out.extend_from_slice(field),
                Some(None) => {
                    report(i);
                    out.extend_from_slice(null);
                }
                Some(Some(new)) => {
                    report(i);
                    escape_text(&new, delimiter, &mut out);
                }
            }
        }
        if nl {
            out.push(b'\n');
        }
    }
    out
}

/// Splits a COPY text line at unescaped delimiters.
fn split_text_fields(line: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        match line.get(i) {
            Some(b'\\') => i += 2,
            Some(b) if *b == delimiter => {
                fields.push(line.get(start..i).unwrap_or_default());
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    fields.push(line.get(start..).unwrap_or_default());
    fields
}

/// One CSV field: its raw bytes, whether it was quoted, and its value.
struct CsvField<'a> {
    raw: &'a [u8],
    quoted: bool,
    value: Vec<u8>,
}

/// Parses CSV records from `data`; each record is a list of fields and
/// whether it ended with a newline.
///
/// Not the `csv` crate: PostgreSQL's CSV tells a NULL (unquoted, equal to
/// the NULL string) from an empty string (quoted), and fields that stay
/// unmasked must pass through byte for byte; `csv`/`csv-core` report
/// neither a field's quoting nor its raw bytes.
fn parse_csv(
    data: &[u8],
    (delimiter, quote, escape): (u8, u8, u8),
) -> Vec<(Vec<CsvField<'_>>, bool)> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let mut value = Vec::new();
    let mut quoted = false;
    let mut in_quotes = false;
    while i < data.len() {
        let b = data.get(i).copied().unwrap_or_default();
        if in_quotes {
            if b == escape
                && escape != quote
                && data.get(i + 1).is_some_and(|n| *n == quote || *n == escape)
            {
                value.push(data.get(i + 1).copied().unwrap_or_default());
                i += 2;
                continue;
            }
            if b == quote {
                if escape == quote && data.get(i + 1) == Some(&quote) {
                    value.push(quote);
                    i += 2;
                    continue;
                }
                in_quotes = false;
                i += 1;
                continue;
            }
            value.push(b);
            i += 1;
            continue;
        }
        if b == quote {
            in_quotes = true;
            quoted = true;
            i += 1;
            continue;
        }
        if b == delimiter || b == b'\n' {
            fields.push(CsvField {
                raw: data.get(start..i).unwrap_or_default(),
                quoted,
                value: std::mem::take(&mut value),
            });
            quoted = false;
            i += 1;
            start = i;
            if b == b'\n' {
                records.push((std::mem::take(&mut fields), true));
            }
            continue;
        }
        if b != b'\r' || data.get(i + 1) != Some(&b'\n') {
            value.push(b);
        }
        i += 1;
    }
    if start < data.len() || !fields.is_empty() {
        fields.push(CsvField {
            raw: data.get(start..).unwrap_or_default(),
            quoted,
            value,
        });
        records.push((fields, false));
    }
    records
}

/// Masks CSV records; `None` when unchanged.
fn mask_copy_csv(
    data: &[u8],
    chars: (u8, u8, u8),
    null: &[u8],
    map: &ColumnMap,
    report: &mut dyn FnMut(usize),
) -> Option<Vec<u8>> {
    let (delimiter, quote, escape) = chars;
    let records = parse_csv(data, chars);
    let mut changed = false;
    let mut out = Vec::with_capacity(data.len() + 16);
    for (fields, nl) in &records {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            let col = map.cols.get(i).unwrap_or(&Col::Whole { binary: false });
            let is_null = !f.quoted && f.raw == null;
            let new = if matches!(col, Col::Pass) || is_null {
                None
            } else {
                mask_field(col, &f.value)
            };
            match new {
                None => out.extend_from_slice(f.raw),
                Some(None) => {
                    changed = true;
                    report(i);
                    out.extend_from_slice(null);
                }
                Some(Some(v)) => {
                    changed = true;
                    report(i);
                    out.push(quote);
                    for b in v {
                        if b == quote || b == escape {
                            out.push(escape);
                        }
                        out.push(b);
                    }
                    out.push(quote);
                }
            }
        }
        if *nl {
            out.push(b'\n');
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests;
