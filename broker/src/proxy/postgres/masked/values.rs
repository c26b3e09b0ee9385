//! Masking one value, and one DataRow: a row is walked as borrowed values
//! (no copy); a row with nothing to change is forwarded as it came, and one
//! that changes is rebuilt alone ([`DataRowBuilder`]), so memory is bounded
//! by one row.

use bytes::Bytes;

use super::plan::{Col, ColumnMap};
use crate::mask::ColumnPlan;
use crate::proxy::postgres::wire::DataRow;
use crate::proxy::postgres::wire::build::{DataRowBuilder, null_row};

/// What a fully masked text value looks like.
pub(super) const FULL: &[u8] = b"****";

/// The new value of one field: `None` unchanged, `Some(None)` NULL.
pub(super) fn mask_field(col: &Col, value: &[u8]) -> Option<Option<Vec<u8>>> {
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
pub(super) fn mask_data_row(
    body: &[u8],
    row: Result<DataRow<'_>, ()>,
    map: &ColumnMap,
    report: &mut dyn FnMut(usize),
) -> Option<Bytes> {
    let Ok(row) = row else {
        return Some(null_row(0));
    };
    let mut out = DataRowBuilder::new(body);
    let mut values = row.values();
    for i in 0..row.len() {
        let Some(Ok(value)) = values.next() else {
            return Some(null_row(row.len()));
        };
        let col = map.cols.get(i).unwrap_or(&Col::Whole { binary: false });
        let replacement = match value.value {
            Some(v) => mask_field(col, v),
            None => None,
        };
        match replacement {
            None => out.keep(&value),
            Some(new) => {
                report(i);
                out.replace(&value, new.as_deref());
            }
        }
    }
    out.finish(values.remainder())
}

/// The values of a DataRow as the recording keeps them: text as
/// [`crate::record::result_value`] makes it, binary columns as a
/// placeholder, NULL as `None`. `None` for a malformed row.
pub(super) fn row_values(row: &DataRow<'_>, binary: &[bool]) -> Option<Vec<Option<String>>> {
    let mut values = Vec::with_capacity(row.len());
    for (i, v) in row.values().enumerate() {
        let Some(value) = v.ok()?.value else {
            values.push(None);
            continue;
        };
        values.push(Some(if binary.get(i).copied().unwrap_or(false) {
            crate::record::BINARY_PLACEHOLDER.to_owned()
        } else {
            crate::record::result_value(value)
        }));
    }
    Some(values)
}
