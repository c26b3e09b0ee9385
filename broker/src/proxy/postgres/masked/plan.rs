//! Column plans: what happens to each column of one result, decided once
//! per result description from the masking rules, the column's source
//! (`schema.table.column`, from the catalog), its type and its format.

use super::MaskContext;
use crate::mask::{ColumnPlan, ColumnRef};
use crate::proxy::postgres::catalog::Resolved;
use crate::proxy::postgres::wire::FieldDesc;

/// Types whose binary form is their text (client encoding).
const TEXT_LIKE: &[u32] = &[25, 1043, 1042, 19, 705, 114];
/// Types that cannot hold what detectors look for (booleans, dates, times).
const NEVER_SCANNED: &[u32] = &[16, 1082, 1083, 1114, 1184, 1186, 1266];

/// What happens to one column's values.
#[derive(Debug, Clone)]
pub(crate) enum Col {
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
pub(crate) struct ColumnMap {
    pub(crate) cols: Vec<Col>,
    pub(crate) labels: Vec<String>,
    /// Column names as the RowDescription gives them (recorded rows).
    pub(crate) names: Vec<String>,
    /// Whether each column arrives in binary format (recorded rows).
    pub(crate) binary: Vec<bool>,
    pub(crate) any: bool,
}

impl ColumnMap {
    /// A map that masks every value as a whole (fail closed).
    pub(super) fn whole(n: usize, label: &str) -> ColumnMap {
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
    pub(super) fn pass(n: usize, label: &str) -> ColumnMap {
        ColumnMap {
            cols: vec![Col::Pass; n],
            labels: vec![label.to_owned(); n],
            names: vec![label.to_owned(); n],
            binary: vec![false; n],
            any: false,
        }
    }
}

/// Builds the map for `fields` (`formats`: the Bind's result formats, `None`
/// for the fields' own); `Err` with the table OIDs to look up first (only
/// while the frame has not been `waited` on).
pub(super) fn build(
    ctx: &MaskContext,
    fields: &[FieldDesc],
    formats: Option<&[i16]>,
    waited: bool,
) -> Result<ColumnMap, Vec<u32>> {
    let masker = &ctx.masker;
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
            match ctx.catalog.resolve(f.table_oid, f.attnum) {
                Resolved::Column(t, name) => {
                    column.schema = Some(t.schema.clone());
                    column.table = Some(t.table.clone());
                    column.column = Some(name);
                }
                Resolved::Absent => {}
                Resolved::Unknown => {
                    unresolved = true;
                    if !waited && !unknown.contains(&f.table_oid) {
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
