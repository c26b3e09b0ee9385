//! The server→client masking stage: follows each result's description
//! (from the protocol state: a simple query's RowDescription, a statement's
//! or portal's Describe, a Bind's result formats), plans its columns once,
//! masks its DataRows and COPY data, refuses a COPY it cannot mask, and
//! captures result rows for the recording as they leave the broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::MaskContext;
use super::copy_data::{mask_copy_csv, mask_copy_text};
use super::copy_spec::{CopyFormat, CopySpec, copy_specs};
use super::plan::{self, Col, ColumnMap};
use super::values::{mask_data_row, row_values};
use crate::mask::ColumnRef;
use crate::proxy::postgres::catalog::{CatalogError, Resolved};
use crate::proxy::postgres::pipeline::ServerStage;
use crate::proxy::postgres::relay::Verdict;
use crate::proxy::postgres::state::{Answer, AnsweredState};
use crate::proxy::postgres::wire::build::{self, error_message};
use crate::proxy::postgres::wire::framing::frames;
use crate::proxy::postgres::wire::{
    CopyResponse, DataRow, FieldDesc, RowDescription, ServerFrame, ServerMessage,
};
use crate::record::SessionLog;

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
    /// Column maps of portals already described or run, by portal name
    /// (the portals themselves are the protocol state's).
    portal_maps: HashMap<Vec<u8>, Arc<ColumnMap>>,
    /// The map of the rows now arriving.
    current: Option<Arc<ColumnMap>>,
    /// Columns of `current` already reported to the recording.
    reported: Vec<bool>,
    copy: CopyState,
    /// COPYs of the current simple query already answered (one Query may
    /// hold several).
    query_copies: usize,
    /// The frame now shown was already waited on once.
    waited: bool,
    probe: Option<ProbeSlot>,
    warned_unplaced: bool,
    /// Where result rows are recorded (`record_results` > 0).
    pub(super) capture: Option<Capture>,
}

/// Result rows going to the recording.
pub(super) struct Capture {
    log: Arc<SessionLog>,
    /// The recording wants no more rows until the next ReadyForQuery.
    full: bool,
}

impl MaskRows {
    pub(super) fn new(ctx: Arc<MaskContext>) -> MaskRows {
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
            portal_maps: HashMap::new(),
            current: None,
            reported: Vec::new(),
            copy: CopyState::Off,
            query_copies: 0,
            waited: false,
            probe: None,
            warned_unplaced: false,
        }
    }

    fn set_current(&mut self, map: Option<Arc<ColumnMap>>) {
        self.reported.clear();
        if let Some(m) = &map {
            self.reported.resize(m.cols.len(), false);
        }
        self.current = map;
    }

    /// The map for `fields`, or a Wait while the catalog is asked.
    fn map_or_wait(
        &mut self,
        fields: &[FieldDesc],
        formats: Option<&[i16]>,
    ) -> Result<Arc<ColumnMap>, Verdict> {
        match plan::build(&self.ctx, fields, formats, self.waited) {
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

    fn row_description(
        &mut self,
        rd: Option<&RowDescription<'_>>,
        state: &AnsweredState,
    ) -> Verdict {
        match state.answer() {
            Answer::DescribeStatement(name) => {
                // Warm the catalog now; the rows come with a later Execute.
                if let Some(fields) = state.statement(name).and_then(|s| s.fields.clone()) {
                    let formats: Option<&[i16]> = Some(&[]);
                    if let Err(wait) = self.map_or_wait(&fields, formats) {
                        return wait;
                    }
                }
            }
            Answer::DescribePortal(name) => {
                if let Some(fields) = state.portal(name).and_then(|p| p.fields.clone()) {
                    let map = match self.map_or_wait(&fields, None) {
                        Ok(map) => map,
                        Err(wait) => return wait,
                    };
                    self.portal_maps.insert(name.clone(), map);
                }
            }
            _ => {
                let Some(Ok(fields)) = rd.map(RowDescription::to_descs) else {
                    // Malformed: whatever rows follow are masked whole.
                    self.waited = false;
                    self.set_current(None);
                    return Verdict::Forward;
                };
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
    fn execute_map(&mut self, state: &AnsweredState) -> Result<Option<Arc<ColumnMap>>, Verdict> {
        let Some(portal) = state.executing() else {
            return Ok(None);
        };
        if let Some(map) = self.portal_maps.get(&portal) {
            return Ok(Some(map.clone()));
        }
        let Some(p) = state.portal(&portal) else {
            return Ok(None);
        };
        let Some(fields) = p.fields.clone() else {
            return Ok(None);
        };
        let formats = p.formats.clone();
        let map = self.map_or_wait(&fields, formats.as_deref())?;
        self.portal_maps.insert(portal, map.clone());
        Ok(Some(map))
    }

    fn data_row(
        &mut self,
        body: &[u8],
        row: Result<DataRow<'_>, ()>,
        state: &AnsweredState,
    ) -> Verdict {
        if self.current.is_none() {
            let n = row.map_or(0, |r| r.len());
            match self.execute_map(state) {
                Ok(Some(map)) => self.set_current(Some(map)),
                Ok(None) if self.ctx.masker.is_empty() => {
                    // Only recording: nothing to fail closed on.
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
            match mask_data_row(body, row, &map, &mut |i| self.report(i)) {
                Some(bytes) => Verdict::Replace(bytes),
                None => Verdict::Forward,
            }
        };
        if let Some(c) = &mut self.capture
            && !c.full
        {
            // The row as the client gets it: the rebuilt frame's, or the
            // server's.
            let sent = match &verdict {
                Verdict::Replace(frame) => frames(frame)
                    .next()
                    .and_then(|(_, body)| DataRow::decode(body).ok()),
                _ => row.ok(),
            };
            if let Some(values) = sent.and_then(|r| row_values(&r, &map.binary)) {
                c.full = !c.log.result_row(&map.names, values);
            }
        }
        verdict
    }

    /// The COPY statement a CopyOutResponse answers, read from the text of
    /// its Query or of the statement its portal runs.
    fn copy_spec(&self, state: &AnsweredState) -> Option<CopySpec> {
        match state.answer() {
            Answer::Query => copy_specs(state.query_text()?.as_bytes())
                .into_iter()
                .nth(self.query_copies),
            Answer::Execute(portal) => {
                let statement = &state.portal(portal)?.statement;
                let sql = state.statement(statement)?.sql.clone()?;
                copy_specs(sql.as_bytes()).into_iter().next()
            }
            _ => None,
        }
    }

    fn copy_out(&mut self, response: Option<&CopyResponse<'_>>, state: &AnsweredState) -> Verdict {
        let spec = self.copy_spec(state);
        let columns = response.map_or(0, CopyResponse::columns);
        let overall_binary = response.is_some_and(|r| r.format == 1);
        let decided = self.decide_copy(spec, columns, overall_binary);
        if matches!(decided, Verdict::Wait(_)) {
            return decided;
        }
        // The spec is used up (a multi-statement Query may hold several).
        if *state.answer() == Answer::Query {
            self.query_copies += 1;
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
            let built = plan::build(&self.ctx, &fields, Some(&[]), self.waited);
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
            Some(payload) => Verdict::Replace(build::copy_data(&payload)),
            None => Verdict::Forward,
        }
    }
}

impl ServerStage for MaskRows {
    fn on_server(&mut self, frame: &ServerFrame<'_>, state: &AnsweredState) -> Verdict {
        match frame.msg {
            ServerMessage::DataRow(row) => self.data_row(frame.body, Ok(row), state),
            ServerMessage::Malformed { tag: b'D', .. } => self.data_row(frame.body, Err(()), state),
            ServerMessage::CopyData(data) => self.copy_data(data),
            ServerMessage::RowDescription(rd) => self.row_description(Some(&rd), state),
            ServerMessage::Malformed { tag: b'T', .. } => self.row_description(None, state),
            ServerMessage::BindComplete => {
                if let Answer::Bind(portal) = state.answer() {
                    // A new portal under this name: its map is made anew.
                    self.portal_maps.remove(portal);
                }
                Verdict::Forward
            }
            ServerMessage::CommandComplete { .. }
            | ServerMessage::EmptyQueryResponse
            | ServerMessage::PortalSuspended => {
                self.set_current(None);
                if let CopyState::Refusing = self.copy
                    && frame.tag == b'C'
                {
                    self.copy = CopyState::Off;
                    return Verdict::Replace(Bytes::new());
                }
                self.copy = CopyState::Off;
                Verdict::Forward
            }
            ServerMessage::ErrorResponse(_) => {
                self.set_current(None);
                self.copy = CopyState::Off;
                Verdict::Forward
            }
            ServerMessage::ReadyForQuery { status } => {
                self.set_current(None);
                self.copy = CopyState::Off;
                self.query_copies = 0;
                if let Some(c) = &mut self.capture {
                    c.full = false;
                }
                if status == b'I' {
                    // Outside a transaction no portal survives.
                    self.portal_maps.clear();
                }
                Verdict::Forward
            }
            ServerMessage::CopyOutResponse(response) => self.copy_out(Some(&response), state),
            ServerMessage::Malformed { tag: b'H', .. } => self.copy_out(None, state),
            ServerMessage::CopyDone => match self.copy {
                CopyState::Refusing => Verdict::Replace(Bytes::new()),
                _ => Verdict::Forward,
            },
            _ => Verdict::Forward,
        }
    }
}
