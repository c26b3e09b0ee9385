//! Masking the payload of `COPY ... TO STDOUT` in text and CSV format,
//! field by field, with the statement's delimiter, quote, escape and NULL
//! options; fields that stay unmasked pass through byte for byte.

use super::plan::{Col, ColumnMap};
use super::values::mask_field;

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
pub(super) fn mask_copy_text(
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
pub(super) fn mask_copy_csv(
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
