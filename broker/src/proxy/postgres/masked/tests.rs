//! Unit tests of the masking hooks on crafted frames (the catalog cache is
//! filled by hand; end-to-end tests with real clients are in
//! `tests/tests/masking.rs`).

use std::sync::Mutex;

use super::copy_data::{mask_copy_csv, mask_copy_text};
use super::plan::{Col, ColumnMap};
use super::*;
use crate::mask::{ColumnRef, MaskSet, MaskSetDoc};
use crate::proxy::postgres::catalog::TableInfo;
use crate::proxy::postgres::guarded::{ClientHook, ServerHook};
use crate::proxy::postgres::pipeline::{ClientPipeline, ClientStage, ServerPipeline};
use crate::proxy::postgres::recorded::RecordOutcomes;
use crate::proxy::postgres::relay::FrameHook;
use crate::proxy::postgres::state::{SentState, tracker};
use crate::proxy::postgres::wire::{ClientFrame, Direction, Frame};
use crate::proxy::postgres::{TlsSettings, Upstream};

/// The server→client pipeline of a session with masking only.
type Server = ServerPipeline<RecordOutcomes, ServerHook, ServerSide>;

/// The two pipelines of a session whose only other client stage is `guard`.
fn hooks<G: ClientStage>(
    masking: Option<Arc<MaskContext>>,
    guard: G,
) -> (ClientPipeline<G>, Server) {
    let mask = stage(masking);
    let (sent, answered) = tracker(false, mask.needs_notes());
    (
        ClientPipeline::new(sent, guard),
        ServerPipeline::new(answered, RecordOutcomes::new(None), ServerHook::Plain, mask),
    )
}

const RULES: &str = r#"
name = "pii"
[[rule]]
name = "emails"
columns = ["customers.email"]
style = "keep-domain"
[[rule]]
name = "cards"
detect = ["card"]
style = "keep-last"
keep = 4
[[rule]]
name = "secret"
columns = ["secret_num"]
style = "full"
"#;

const CUSTOMERS: u32 = 16_400;

fn upstream(port: u16) -> Arc<Upstream> {
    Arc::new(Upstream {
        connection: "pg".into(),
        host: "127.0.0.1".into(),
        port,
        database: "d".into(),
        user: "u".into(),
        password: hoop_shared::Secret::new("pw"),
        tls: TlsSettings::default(),
    })
}

fn context(rules: &str, port: u16, known: bool) -> Arc<MaskContext> {
    let doc: MaskSetDoc = toml::from_str(rules).unwrap();
    let set = MaskSet::compile(&doc, b"k").unwrap();
    let catalog = Catalog::new(upstream(port));
    if known {
        catalog.insert(
            CUSTOMERS,
            Some(TableInfo {
                schema: "public".into(),
                table: "customers".into(),
                columns: [(1, "id"), (2, "email"), (3, "card_number")]
                    .into_iter()
                    .map(|(n, c)| (n, c.to_owned()))
                    .collect(),
            }),
        );
    }
    Arc::new(MaskContext {
        masker: Masker::new(vec![Arc::new(set)]),
        catalog,
        log: None,
        connection: "pg".into(),
    })
}

fn wire(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// (name, table oid, attnum, type oid, format)
fn row_description(fields: &[(&str, u32, i16, u32, i16)]) -> Vec<u8> {
    let mut body = u16::try_from(fields.len()).unwrap().to_be_bytes().to_vec();
    for (name, oid, att, ty, fmt) in fields {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&att.to_be_bytes());
        body.extend_from_slice(&ty.to_be_bytes());
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&fmt.to_be_bytes());
    }
    body
}

fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = u16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
    for v in values {
        match v {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                body.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                body.extend_from_slice(v);
            }
        }
    }
    body
}

/// Shows `body` under `tag` to `hook`; the bytes sent on (`None`: Wait).
fn pass<D: Direction>(hook: &mut impl FrameHook<D>, tag: u8, body: &[u8]) -> Option<Vec<u8>> {
    match hook.on_frame(&Frame::decode(tag, body)) {
        Verdict::Forward => Some(wire(tag, body)),
        Verdict::Replace(b) => Some(b.to_vec()),
        Verdict::Wait(_) => None,
    }
}

/// The values of a DataRow on the wire.
fn values(frame: &[u8]) -> Vec<Option<String>> {
    assert_eq!(frame[0], b'D');
    let body = &frame[5..];
    let n = u16::from_be_bytes([body[0], body[1]]);
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..n {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let len = len as usize;
            out.push(Some(
                String::from_utf8_lossy(&body[at..at + len]).into_owned(),
            ));
            at += len;
        }
    }
    out
}

#[test]
fn simple_protocol_rows_are_masked_by_source_column_and_detector() {
    let (mut client, mut server) = hooks(Some(context(RULES, 1, true)), ClientHook::Plain);
    pass(
        &mut client,
        b'Q',
        b"select id, email as contact, note from customers\0",
    )
    .unwrap();
    let t = row_description(&[
        ("id", CUSTOMERS, 1, 20, 0),
        ("contact", CUSTOMERS, 2, 25, 0),
        ("note", 0, 0, 25, 0),
    ]);
    pass(&mut server, b'T', &t).unwrap();
    let row = data_row(&[
        Some(b"1"),
        Some(b"ada@example.com"),
        Some(b"paid with 4111 1111 1111 1111"),
    ]);
    let out = pass(&mut server, b'D', &row).unwrap();
    assert_eq!(
        values(&out),
        [
            Some("1".to_owned()),
            Some("****@example.com".to_owned()),
            Some("paid with **** **** **** 1111".to_owned())
        ]
    );
    // A row with nothing to mask passes as it came (same bytes).
    let plain = data_row(&[Some(b"2"), None, Some(b"no card here")]);
    assert_eq!(pass(&mut server, b'D', &plain).unwrap(), wire(b'D', &plain));
    pass(&mut server, b'C', b"SELECT 2\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();

    // Same name on a table the rule does not name: only detectors apply.
    pass(&mut client, b'Q', b"select email from staff\0").unwrap();
    pass(
        &mut server,
        b'T',
        &row_description(&[("email", 0, 0, 25, 0)]),
    )
    .unwrap();
    let row = data_row(&[Some(b"bob@example.com")]);
    assert_eq!(pass(&mut server, b'D', &row).unwrap(), wire(b'D', &row));
}

#[tokio::test]
async fn an_unreadable_catalog_masks_table_columns_whole() {
    // Port 1: the side connection cannot open.
    let (mut client, mut server) = hooks(Some(context(RULES, 1, false)), ClientHook::Plain);
    pass(&mut client, b'Q', b"select email, 'x' from customers\0").unwrap();
    let t = row_description(&[("email", CUSTOMERS, 2, 25, 0), ("x", 0, 0, 25, 0)]);
    let Verdict::Wait(pending) = server.on_frame(&Frame::decode(b'T', &t)) else {
        panic!("an unknown table must be looked up first");
    };
    pending.await;
    pass(&mut server, b'T', &t).expect("decides after one wait");
    let row = data_row(&[Some(b"ada@example.com"), Some(b"x")]);
    let out = pass(&mut server, b'D', &row).unwrap();
    assert_eq!(
        values(&out),
        [Some("****".to_owned()), Some("x".to_owned())]
    );
}

#[test]
fn extended_protocol_uses_the_statement_description_and_bind_formats() {
    let (mut client, mut server) = hooks(Some(context(RULES, 1, true)), ClientHook::Plain);
    // tokio-postgres: Parse + Describe statement + Sync, then Bind (all
    // results binary) + Execute + Sync.
    pass(
        &mut client,
        b'P',
        b"s1\0select email, card_number, secret_num, id from customers\0\0\0",
    )
    .unwrap();
    pass(&mut client, b'D', b"Ss1\0").unwrap();
    pass(&mut client, b'S', b"").unwrap();
    pass(&mut server, b'1', b"").unwrap();
    pass(&mut server, b't', b"\0\0").unwrap();
    let t = row_description(&[
        ("email", CUSTOMERS, 2, 25, 0),
        ("card_number", CUSTOMERS, 3, 1043, 0),
        ("secret_num", 0, 0, 20, 0),
        ("id", CUSTOMERS, 1, 20, 0),
    ]);
    pass(&mut server, b'T', &t).unwrap();
    pass(&mut server, b'Z', b"I").unwrap();

    let mut bind = b"\0s1\0\0\0\0\0".to_vec(); // portal "", stmt s1, no params
    bind.extend_from_slice(&1u16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes()); // every result binary
    pass(&mut client, b'B', &bind).unwrap();
    pass(&mut client, b'E', b"\0\0\0\0\0").unwrap();
    pass(&mut client, b'S', b"").unwrap();
    pass(&mut server, b'2', b"").unwrap();
    let secret = 4_111_111_111_111_111i64.to_be_bytes();
    let id = 7i64.to_be_bytes();
    let row = data_row(&[
        Some(b"ada@example.com"),
        Some(b"4111111111111111"),
        Some(&secret),
        Some(&id),
    ]);
    let out = pass(&mut server, b'D', &row).unwrap();
    let v = values(&out);
    assert_eq!(
        v[0].as_deref(),
        Some("****@example.com"),
        "text type in binary"
    );
    assert_eq!(v[1].as_deref(), Some("************1111"));
    assert_eq!(v[2], None, "a covered int8 in binary becomes NULL");
    assert_eq!(v[3].as_deref().map(str::as_bytes), Some(&id[..]));
    // A binary integer holding a card number is caught by the detector too.
    let card_int = 4_111_111_111_111_111i64.to_be_bytes();
    let row = data_row(&[None, None, None, Some(&card_int)]);
    assert_eq!(values(&pass(&mut server, b'D', &row).unwrap())[3], None);
    pass(&mut server, b'C', b"SELECT 2\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
}

#[test]
fn errors_skip_to_sync_and_the_notes_stay_aligned() {
    let (mut client, mut server) = hooks(Some(context(RULES, 1, true)), ClientHook::Plain);
    // A batch whose Parse fails: Bind/Describe/Execute are skipped.
    pass(&mut client, b'P', b"\0select oops\0\0\0").unwrap();
    pass(&mut client, b'B', b"\0\0\0\0\0\0\0\0").unwrap();
    pass(&mut client, b'D', b"P\0").unwrap();
    pass(&mut client, b'E', b"\0\0\0\0\0").unwrap();
    pass(&mut client, b'S', b"").unwrap();
    // Then a simple query.
    pass(&mut client, b'Q', b"select email from customers\0").unwrap();
    pass(&mut server, b'E', b"SERROR\0C42703\0Moops\0\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
    pass(
        &mut server,
        b'T',
        &row_description(&[("email", CUSTOMERS, 2, 25, 0)]),
    )
    .unwrap();
    let row = data_row(&[Some(b"ada@example.com")]);
    assert_eq!(
        values(&pass(&mut server, b'D', &row).unwrap())[0].as_deref(),
        Some("****@example.com")
    );
}

#[test]
fn a_frame_the_next_hook_waits_on_is_noted_once() {
    struct WaitOnce(bool);
    impl ClientStage for WaitOnce {
        fn on_client(&mut self, _frame: &ClientFrame<'_>, _state: &SentState) -> Verdict {
            if std::mem::take(&mut self.0) {
                Verdict::Wait(Box::pin(async {}))
            } else {
                Verdict::Forward
            }
        }
    }
    let (mut client, mut server) = hooks(Some(context(RULES, 1, true)), WaitOnce(true));
    assert!(pass(&mut client, b'Q', b"select email from customers\0").is_none());
    pass(&mut client, b'Q', b"select email from customers\0").unwrap();
    pass(&mut client, b'Q', b"select 1\0").unwrap();
    pass(
        &mut server,
        b'T',
        &row_description(&[("email", CUSTOMERS, 2, 25, 0)]),
    )
    .unwrap();
    pass(&mut server, b'C', b"SELECT 0\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
    // Had the Query been noted twice, this Z would close the wrong one.
    assert_eq!(server.state.pending(), 1);
}

#[test]
fn rows_that_cannot_be_placed_are_masked_whole() {
    let (_client, mut server) = hooks(Some(context(RULES, 1, true)), ClientHook::Plain);
    let row = data_row(&[Some(b"x"), None]);
    assert_eq!(
        values(&pass(&mut server, b'D', &row).unwrap()),
        [Some("****".to_owned()), None]
    );
    // A malformed row never passes.
    let out = pass(&mut server, b'D', b"\0\x02\0\0\0\x09ab").unwrap();
    assert_eq!(values(&out), [None, None]);
}

#[test]
fn copy_statements_are_read_with_their_options() {
    let specs = copy_specs(
        b"COPY customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';'); \
          copy (select email from customers) to stdout; \
          COPY customers FROM STDIN; COPY customers TO '/tmp/x'; \
          COPY public.customers TO STDOUT (FORMAT binary)",
    );
    assert_eq!(specs.len(), 3, "{specs:?}");
    assert_eq!(
        specs[0].probe.as_deref(),
        Some("SELECT \"id\", \"email\" FROM \"customers\"")
    );
    assert_eq!(
        specs[0].format,
        CopyFormat::Csv {
            delimiter: b';',
            quote: b'"',
            escape: b'"',
            null: Vec::new(),
            header: true
        }
    );
    assert_eq!(
        specs[1].probe.as_deref(),
        Some("SELECT email FROM customers")
    );
    assert_eq!(
        specs[1].format,
        CopyFormat::Text {
            delimiter: b'\t',
            null: b"\\N".to_vec()
        }
    );
    assert_eq!(specs[2].format, CopyFormat::Binary);
    assert!(copy_specs(b"select 1").is_empty());
    assert!(copy_specs(b"select copy from t").is_empty());
    // Legacy syntax.
    let legacy = copy_specs(b"COPY customers TO STDOUT CSV HEADER");
    assert!(matches!(
        legacy[0].format,
        CopyFormat::Csv { header: true, .. }
    ));
}

fn copy_map(ctx: &MaskContext) -> ColumnMap {
    let email = ctx
        .masker
        .plan(&ColumnRef {
            schema: Some("public".into()),
            table: Some("customers".into()),
            column: Some("email".into()),
            name: "email".into(),
        })
        .unwrap();
    let other = ctx.masker.plan(&ColumnRef::default()).unwrap();
    ColumnMap {
        cols: vec![Col::Pass, Col::Text(email), Col::Text(other)],
        labels: vec!["id".into(), "email".into(), "note".into()],
        names: vec!["id".into(), "email".into(), "note".into()],
        binary: vec![false; 3],
        any: true,
    }
}

#[test]
fn copy_text_and_csv_rows_are_masked_field_by_field() {
    let ctx = context(RULES, 1, true);
    let map = copy_map(&ctx);
    let mut seen = Vec::new();
    let text = b"1\tada@example.com\tcard 4111111111111111 tab\\there\n2\t\\N\tnothing\n";
    let out = mask_copy_text(text, b'\t', b"\\N", &map, &mut |i| seen.push(i)).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "1\t****@example.com\tcard ************1111 tab\\there\n2\t\\N\tnothing\n"
    );
    assert_eq!(seen, [1, 2]);
    assert!(mask_copy_text(b"1\t\\N\tplain\n", b'\t', b"\\N", &map, &mut |_| {}).is_none());

    let csv = b"1,ada@example.com,\"a, \"\"quoted\"\" 4111 1111 1111 1111\nnext line\"\n2,,\n";
    let out = mask_copy_csv(csv, (b',', b'"', b'"'), b"", &map, &mut |_| {}).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "1,\"****@example.com\",\"a, \"\"quoted\"\" **** **** **** 1111\nnext line\"\n2,,\n"
    );
    assert!(mask_copy_csv(b"3,,x\n", (b',', b'"', b'"'), b"", &map, &mut |_| {}).is_none());
}

#[test]
fn copy_out_is_masked_and_binary_copy_refused() {
    let (mut client, mut server) = hooks(Some(context(RULES, 1, true)), ClientHook::Plain);
    // Detectors only need no catalog: a set without column rules.
    let detectors_only =
        "name = \"cards\"\n[[rule]]\nname = \"cards\"\ndetect = [\"card\"]\nstyle = \"full\"\n";
    let (mut c2, mut s2) = hooks(Some(context(detectors_only, 1, true)), ClientHook::Plain);
    pass(&mut c2, b'Q', b"copy (select note from notes) to stdout\0").unwrap();
    pass(&mut s2, b'H', b"\0\0\x01\0\0").unwrap();
    let out = pass(&mut s2, b'd', b"card 4111111111111111\n").unwrap();
    assert_eq!(&out[5..], b"card ****\n");
    pass(&mut s2, b'c', b"").unwrap();
    pass(&mut s2, b'C', b"COPY 1\0").unwrap();
    pass(&mut s2, b'Z', b"I").unwrap();

    pass(
        &mut client,
        b'Q',
        b"copy customers to stdout (format binary)\0",
    )
    .unwrap();
    let refused = pass(&mut server, b'H', b"\x01\0\x01\0\x01").unwrap();
    assert_eq!(refused[0], b'E');
    assert!(String::from_utf8_lossy(&refused).contains("binary COPY output cannot be masked"));
    assert!(pass(&mut server, b'd', b"PGCOPY...").unwrap().is_empty());
    assert!(pass(&mut server, b'c', b"").unwrap().is_empty());
    assert!(pass(&mut server, b'C', b"COPY 20\0").unwrap().is_empty());
    assert_eq!(pass(&mut server, b'Z', b"I").unwrap(), wire(b'Z', b"I"));
}

/// Outcomes as the audit log would get them.
#[derive(Default)]
struct Outcomes(Mutex<Vec<crate::record::StatementOutcome>>);

impl crate::record::Recorder for Outcomes {
    fn statement(&self, _record: crate::record::StatementRecord) -> crate::record::Durable {
        Box::pin(async { Ok(0) })
    }
    fn outcome(&self, _id: crate::record::StatementId, outcome: crate::record::StatementOutcome) {
        self.0.lock().unwrap().push(outcome);
    }
}

/// `rules` (or none) with a recording that keeps `keep` rows a statement.
fn recording(rules: Option<&str>, keep: u32) -> (Arc<MaskContext>, Arc<Outcomes>, Arc<SessionLog>) {
    let outcomes = Arc::new(Outcomes::default());
    let log = SessionLog::keeping_results(outcomes.clone(), "s", "alice", "pg", keep);
    let base = context(rules.unwrap_or(RULES), 1, true);
    let masker = match rules {
        Some(rules) => {
            let doc: MaskSetDoc = toml::from_str(rules).unwrap();
            Masker::new(vec![Arc::new(MaskSet::compile(&doc, b"k").unwrap())])
        }
        None => Masker::new(Vec::new()),
    };
    let ctx = Arc::new(MaskContext {
        masker,
        catalog: base.catalog.clone(),
        log: Some(log.clone()),
        connection: "pg".into(),
    });
    (ctx, outcomes, log)
}

fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_owned)).collect()
}

#[test]
fn recorded_rows_are_the_masked_values_capped_with_binary_placeholders() {
    let (ctx, outcomes, log) = recording(Some(RULES), 2);
    let (mut client, mut server) = hooks(Some(ctx), ClientHook::Plain);
    // Simple protocol: three rows, two kept, as the client got them.
    log.forwarded(1);
    pass(
        &mut client,
        b'Q',
        b"select id, email, note from customers\0",
    )
    .unwrap();
    let t = row_description(&[
        ("id", CUSTOMERS, 1, 20, 0),
        ("email", CUSTOMERS, 2, 25, 0),
        ("note", 0, 0, 25, 0),
    ]);
    pass(&mut server, b'T', &t).unwrap();
    let long = "n".repeat(300);
    let rows = [
        data_row(&[
            Some(b"1"),
            Some(b"ada@example.com"),
            Some(b"card 4111111111111111"),
        ]),
        data_row(&[Some(b"2"), None, Some(long.as_bytes())]),
        data_row(&[Some(b"3"), Some(b"bob@example.com"), None]),
    ];
    let sent: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| values(&pass(&mut server, b'D', r).unwrap()))
        .collect();
    pass(&mut server, b'C', b"SELECT 3\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
    log.finish(Some(3), None);

    // Extended protocol, every result binary: placeholders, NULL stays NULL.
    log.forwarded(2);
    pass(
        &mut client,
        b'P',
        b"s1\0select email, secret_num from customers\0\0\0",
    )
    .unwrap();
    pass(&mut client, b'D', b"Ss1\0").unwrap();
    let mut bind = b"\0s1\0\0\0\0\0".to_vec();
    bind.extend_from_slice(&1u16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes());
    pass(&mut client, b'B', &bind).unwrap();
    pass(&mut client, b'E', b"\0\0\0\0\0").unwrap();
    pass(&mut client, b'S', b"").unwrap();
    pass(&mut server, b'1', b"").unwrap();
    pass(&mut server, b't', b"\0\0").unwrap();
    pass(
        &mut server,
        b'T',
        &row_description(&[("email", CUSTOMERS, 2, 25, 0), ("secret_num", 0, 0, 20, 0)]),
    )
    .unwrap();
    pass(&mut server, b'2', b"").unwrap();
    let secret = 42i64.to_be_bytes();
    let out = pass(
        &mut server,
        b'D',
        &data_row(&[Some(b"ada@example.com"), Some(&secret)]),
    )
    .unwrap();
    assert_eq!(
        values(&out)[1],
        None,
        "a covered int8 in binary is sent as NULL"
    );
    pass(&mut server, b'C', b"SELECT 1\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
    log.finish(Some(1), None);

    let got = outcomes.0.lock().unwrap();
    assert_eq!(got.len(), 2);
    let first = got[0].results.as_ref().unwrap();
    assert_eq!(first.columns, ["id", "email", "note"]);
    // Exactly what the client received (the long value cut, below).
    assert_eq!(first.rows[0], sent[0]);
    assert_eq!(first.rows[1][..2], sent[1][..2]);
    assert_eq!(
        first.rows[0],
        strings(&[
            Some("1"),
            Some("****@example.com"),
            Some("card ************1111")
        ])
    );
    assert_eq!(
        first.rows[1][2].as_deref(),
        Some(format!("{}…[+44 bytes]", "n".repeat(256)).as_str())
    );
    assert!(first.truncated, "three rows, two kept");
    assert_eq!(got[0].masked_columns, ["note", "public.customers.email"]);
    let second = got[1].results.as_ref().unwrap();
    assert_eq!(second.columns, ["email", "secret_num"]);
    assert_eq!(second.rows, [strings(&[Some("<binary>"), None])]);
    assert!(!second.truncated);
    let text = format!("{got:?}");
    assert!(
        !text.contains("ada@example.com") && !text.contains("4111111111111111"),
        "{text}"
    );
}

#[test]
fn without_masking_sets_rows_are_recorded_and_pass_untouched() {
    let (ctx, outcomes, log) = recording(None, 5);
    let (mut client, mut server) = hooks(Some(ctx), ClientHook::Plain);
    log.forwarded(1);
    pass(&mut client, b'Q', b"select email from customers\0").unwrap();
    pass(
        &mut server,
        b'T',
        &row_description(&[("email", CUSTOMERS, 2, 25, 0)]),
    )
    .unwrap();
    let row = data_row(&[Some(b"ada@example.com")]);
    assert_eq!(pass(&mut server, b'D', &row).unwrap(), wire(b'D', &row));
    pass(&mut server, b'C', b"SELECT 1\0").unwrap();
    pass(&mut server, b'Z', b"I").unwrap();
    log.finish(Some(1), None);
    // Rows no note places pass too (nothing to fail closed on).
    log.forwarded(2);
    let stray = data_row(&[Some(b"x")]);
    assert_eq!(pass(&mut server, b'D', &stray).unwrap(), wire(b'D', &stray));
    pass(&mut server, b'Z', b"I").unwrap();
    log.finish(Some(1), None);
    // A binary COPY is not refused: no rule applies to it.
    pass(
        &mut client,
        b'Q',
        b"copy customers to stdout (format binary)\0",
    )
    .unwrap();
    let header = b"\x01\0\x01\0\x01";
    assert_eq!(pass(&mut server, b'H', header).unwrap(), wire(b'H', header));
    assert_eq!(
        pass(&mut server, b'd', b"PGCOPY").unwrap(),
        wire(b'd', b"PGCOPY")
    );

    let got = outcomes.0.lock().unwrap();
    let r = got[0].results.as_ref().unwrap();
    assert_eq!(
        (r.columns.as_slice(), r.rows.as_slice()),
        (
            &["email".to_owned()][..],
            &[strings(&[Some("ada@example.com")])][..]
        )
    );
    assert!(got[0].masked_columns.is_empty());
    assert_eq!(
        got[1].results.as_ref().unwrap().rows,
        [strings(&[Some("x")])]
    );
}

#[test]
fn without_masking_sets_or_recorded_rows_the_hooks_stay_out_of_the_way() {
    let (ctx, _outcomes, _log) = recording(None, 0);
    let (_client, server) = hooks(Some(ctx), ClientHook::Plain);
    assert!(
        server.mask.rows.is_none(),
        "no masking and no recording: pass-through"
    );
    let (ctx, _outcomes, _log) = recording(Some(RULES), 0);
    let (_client, server) = hooks(Some(ctx), ClientHook::Plain);
    assert!(
        server
            .mask
            .rows
            .as_ref()
            .is_some_and(|r| r.capture.is_none())
    );
}
