//! Reading `COPY ... TO STDOUT` statements with the real SQL parser: their
//! output format and options, and a query whose description gives the
//! copied columns (COPY's own answer has no RowDescription).

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
    pub(crate) probe: Option<String>,
    pub(crate) format: CopyFormat,
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
