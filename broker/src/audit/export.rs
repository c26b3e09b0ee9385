//! The export, read and sent in chunks: memory does not grow with the log.
//!
//! A backend reads the log inside one read snapshot (SQLite: a read
//! transaction on a connection of its own; PostgreSQL: a `REPEATABLE READ
//! READ ONLY` transaction on a connection of its own), so appends go on
//! meanwhile and the export is still the log of one moment, however slowly
//! its reader takes it. In that snapshot it reads the keys and where the
//! chain starts ([`Start`]), then [`CHUNK`] records at a time by seq (the
//! primary key), each chunk with the checkpoints that cover it, and hands
//! each chunk on as export lines ([`Chunk`]) through a bounded channel: a
//! reader that stops reading stops the export after [`QUEUED`] chunks.
//! The lines are in [`hoop_shared::audit::Export::to_jsonl`]'s order.

use hoop_shared::audit::{AuditRecord, Checkpoint, ExportLine, PublicKeyInfo};

use super::AuditError;

/// Records read (and sent) at a time.
pub const CHUNK: usize = 1000;

/// Chunks read ahead of the reader at most.
pub const QUEUED: usize = 2;

/// Checkpoints read with one chunk at most (one per record at the most
/// frequent checkpoint setting, plus those covering pruned records).
pub const CHECKPOINTS_PER_CHUNK: usize = 2 * CHUNK;

/// Export lines read in one go.
pub type Chunk = Vec<ExportLine>;

/// Where an export goes: each chunk, or the error that ended it.
pub type Sink = tokio::sync::mpsc::Sender<Result<Chunk, AuditError>>;

/// Read first, in the export's snapshot.
#[derive(Debug, Clone)]
pub struct Start {
    /// Every checkpoint signer's key.
    pub keys: Vec<PublicKeyInfo>,
    /// The lowest stored seq.
    pub first_seq: Option<u64>,
    /// The oldest stored checkpoint.
    pub oldest_checkpoint: Option<Checkpoint>,
}

/// Where the next chunk starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Records after this seq.
    pub seq: u64,
    /// Checkpoints after this number.
    pub number: u64,
}

impl Start {
    /// The header and anchor lines, and where the records start: the
    /// anchor is the checkpoint over the record just before the first
    /// stored one (after pruning), or the oldest checkpoint when every
    /// record was pruned.
    pub fn lines(self, exported_at: i64) -> (Chunk, Cursor) {
        let anchor_seq = match self.first_seq {
            Some(first) if first > 1 => Some(first - 1),
            Some(_) => None,
            None => self.oldest_checkpoint.as_ref().map(|c| c.seq),
        };
        let anchor = self.oldest_checkpoint.filter(|c| Some(c.seq) == anchor_seq);
        let cursor = Cursor {
            seq: 0,
            number: anchor.as_ref().map_or(0, |a| a.number),
        };
        let mut lines = vec![ExportLine::Header {
            format: hoop_shared::audit::EXPORT_FORMAT.to_owned(),
            exported_at,
            keys: self.keys,
        }];
        lines.extend(anchor.map(ExportLine::Anchor));
        (lines, cursor)
    }
}

/// One chunk's lines: each record followed by the checkpoints that cover
/// it (and, once no record is left, the remaining checkpoints). Returns the
/// cursor after it, or `None` when the log is done.
pub fn lines(
    records: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    mut cursor: Cursor,
) -> (Chunk, Option<Cursor>) {
    let done = records.len() < CHUNK && checkpoints.len() < CHECKPOINTS_PER_CHUNK;
    let mut out = Vec::with_capacity(records.len() + checkpoints.len());
    let mut cps = checkpoints.into_iter().peekable();
    for r in records {
        cursor.seq = r.seq;
        out.push(ExportLine::Record(r));
        while let Some(c) = cps.next_if(|c| c.seq <= cursor.seq) {
            cursor.number = c.number;
            out.push(ExportLine::Checkpoint(c));
        }
    }
    // Checkpoints over records beyond this chunk wait for their record,
    // unless there is none left.
    if done {
        for c in cps {
            cursor.number = c.number;
            out.push(ExportLine::Checkpoint(c));
        }
    }
    (out, (!done).then_some(cursor))
}

/// The highest seq whose checkpoints a chunk of `records` may carry: its
/// last record's, or every one when it is the last chunk.
pub fn checkpoint_bound(records: &[AuditRecord]) -> u64 {
    match records.last() {
        Some(last) if records.len() == CHUNK => last.seq,
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> AuditRecord {
        AuditRecord {
            seq,
            time: 0,
            kind: "k".into(),
            actor: None,
            connection: None,
            session: None,
            detail: serde_json::Value::Null,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn checkpoint(number: u64, seq: u64) -> Checkpoint {
        Checkpoint {
            number,
            seq,
            hash: String::new(),
            time: 0,
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn chunks_put_each_checkpoint_after_its_record_and_end_when_short() {
        let records: Vec<_> = (1..=CHUNK as u64).map(record).collect();
        let (out, next) = lines(records, vec![checkpoint(1, 5)], Cursor::default());
        assert_eq!(out.len(), CHUNK + 1);
        assert!(matches!(out.get(5), Some(ExportLine::Checkpoint(c)) if c.number == 1));
        assert_eq!(
            next,
            Some(Cursor {
                seq: CHUNK as u64,
                number: 1
            })
        );
        let (out, next) = lines(
            vec![record(1001)],
            vec![checkpoint(2, 1001)],
            Cursor::default(),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(next, None);
    }

    #[test]
    fn the_anchor_is_the_checkpoint_just_before_the_first_record() {
        let start = |first_seq, oldest| Start {
            keys: Vec::new(),
            first_seq,
            oldest_checkpoint: oldest,
        };
        let (l, c) = start(Some(6), Some(checkpoint(1, 5))).lines(0);
        assert!(matches!(l.get(1), Some(ExportLine::Anchor(a)) if a.number == 1));
        assert_eq!(c.number, 1);
        let (l, c) = start(Some(1), Some(checkpoint(1, 5))).lines(0);
        assert_eq!((l.len(), c.number), (1, 0));
        let (l, _) = start(None, Some(checkpoint(3, 9))).lines(0);
        assert!(matches!(l.get(1), Some(ExportLine::Anchor(a)) if a.number == 3));
    }
}
