//! Sealing: turns a batch of new events into chained records (and the
//! checkpoints due), given the tip of the log read inside the append
//! transaction. Pure, so both backends chain exactly alike.

use hoop_shared::audit::{Checkpoint, GENESIS_HASH, RecordFields, canonical_json, record_hash};

use super::NewRecord;
use super::checkpoint::CheckpointSigner;

/// The end of the log as stored: the last record (or the anchor when every
/// record was pruned) and the last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Last record's seq (0 for an empty log).
    pub seq: u64,
    /// Last record's hash ([`GENESIS_HASH`] for an empty log).
    pub hash: [u8; 32],
    /// Last checkpoint's number (0: none yet).
    pub checkpoint_number: u64,
    /// The seq the last checkpoint covers (0: none yet).
    pub checkpoint_seq: u64,
}

impl Tip {
    /// The tip of an empty log.
    pub const GENESIS: Tip = Tip {
        seq: 0,
        hash: GENESIS_HASH,
        checkpoint_number: 0,
        checkpoint_seq: 0,
    };
}

/// One chained record, as stored: the detail already in canonical JSON
/// (the text the hash covers), the hashes in hex. Serialized as a line of
/// the SQLite log's append journal (without `hash_bytes`, derived from
/// `hash` when read back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedRecord {
    /// Position in the chain.
    pub seq: u64,
    /// Unix milliseconds.
    pub time: i64,
    /// Event kind.
    pub kind: String,
    /// Who.
    pub actor: Option<String>,
    /// Connection.
    pub connection: Option<String>,
    /// Session.
    pub session: Option<String>,
    /// The detail in canonical JSON.
    pub detail: String,
    /// The previous record's hash (hex).
    pub prev_hash: String,
    /// This record's hash (hex).
    pub hash: String,
    /// This record's hash.
    #[serde(skip)]
    pub hash_bytes: [u8; 32],
}

/// What one append stores.
#[derive(Debug, Clone, Default)]
pub struct Sealed {
    /// New records, in order.
    pub records: Vec<SealedRecord>,
    /// Checkpoints signed in this append.
    pub checkpoints: Vec<Checkpoint>,
}

impl Sealed {
    /// The tip once this is stored after `before`.
    pub fn tip_after(&self, before: &Tip) -> Tip {
        let mut tip = *before;
        if let Some(last) = self.records.last() {
            tip.seq = last.seq;
            tip.hash = last.hash_bytes;
        }
        if let Some(c) = self.checkpoints.last() {
            tip.checkpoint_number = c.number;
            tip.checkpoint_seq = c.seq;
        }
        tip
    }
}

/// Chains and signs.
#[derive(Debug)]
pub struct Sealer {
    signer: CheckpointSigner,
    every: u64,
}

impl Sealer {
    /// A checkpoint every `every` records (at seq multiples of it).
    pub fn new(signer: CheckpointSigner, every: u64) -> Sealer {
        Sealer {
            signer,
            every: every.max(1),
        }
    }

    /// The signer (for its public key).
    pub fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }

    /// Chains `batch` after `tip`; signs a checkpoint at each multiple of the
    /// interval, and one at the end when `checkpoint_at_end` and the end is
    /// not covered yet (shutdown).
    pub fn seal(
        &self,
        tip: &Tip,
        batch: Vec<NewRecord>,
        checkpoint_at_end: bool,
        now_ms: i64,
    ) -> Sealed {
        let mut out = Sealed {
            records: Vec::with_capacity(batch.len()),
            checkpoints: Vec::new(),
        };
        let mut prev = tip.hash;
        let mut prev_hex = hex::encode(prev);
        let mut number = tip.checkpoint_number;
        let mut covered = tip.checkpoint_seq;
        let mut seq = tip.seq;
        for r in batch {
            seq += 1;
            let detail = canonical_json(&r.detail);
            let hash = record_hash(&RecordFields {
                seq,
                time: r.time,
                kind: &r.kind,
                actor: r.actor.as_deref(),
                connection: r.connection.as_deref(),
                session: r.session.as_deref(),
                detail_canonical: &detail,
                prev_hash: &prev,
            });
            let hash_hex = hex::encode(hash);
            out.records.push(SealedRecord {
                seq,
                time: r.time,
                kind: r.kind,
                actor: r.actor,
                connection: r.connection,
                session: r.session,
                detail,
                prev_hash: std::mem::replace(&mut prev_hex, hash_hex.clone()),
                hash: hash_hex,
                hash_bytes: hash,
            });
            prev = hash;
            if seq.is_multiple_of(self.every) {
                number += 1;
                covered = seq;
                out.checkpoints
                    .push(self.signer.sign(number, seq, &hash, now_ms));
            }
        }
        if checkpoint_at_end && seq > covered && seq > 0 {
            number += 1;
            out.checkpoints
                .push(self.signer.sign(number, seq, &prev, now_ms));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::audit::verify;

    fn stored(r: SealedRecord) -> hoop_shared::audit::AuditRecord {
        hoop_shared::audit::AuditRecord {
            seq: r.seq,
            time: r.time,
            kind: r.kind,
            actor: r.actor,
            connection: r.connection,
            session: r.session,
            detail: serde_json::from_str(&r.detail).unwrap(),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }

    fn ev(i: u64) -> NewRecord {
        NewRecord {
            time: 1_000 + i as i64,
            kind: "test.event".into(),
            actor: Some("alice".into()),
            connection: None,
            session: None,
            detail: serde_json::json!({ "i": i }),
        }
    }

    #[test]
    fn batches_chain_onto_the_tip_and_checkpoint_on_schedule() {
        let sealer = Sealer::new(
            CheckpointSigner::from_key(ed25519_dalek::SigningKey::from_bytes(&[1; 32])),
            4,
        );
        let a = sealer.seal(&Tip::GENESIS, (0..6).map(ev).collect(), false, 9);
        assert_eq!(a.records.len(), 6);
        assert_eq!(a.checkpoints.len(), 1);
        let last = a.records.last().unwrap();
        let tip = Tip {
            seq: last.seq,
            hash: hoop_shared::audit::parse_hash(&last.hash).unwrap(),
            checkpoint_number: 1,
            checkpoint_seq: 4,
        };
        let b = sealer.seal(&tip, vec![ev(7)], true, 10);
        assert_eq!(b.records[0].seq, 7);
        assert_eq!(b.checkpoints.len(), 1, "shutdown checkpoint over #7");
        assert_eq!(b.checkpoints[0].number, 2);
        let records: Vec<_> = a.records.into_iter().chain(b.records).map(stored).collect();
        let cps: Vec<_> = a.checkpoints.into_iter().chain(b.checkpoints).collect();
        let v = verify(
            &records,
            &cps,
            None,
            &[sealer.signer().public().clone()],
            None,
        )
        .unwrap();
        assert_eq!(v.records, 7);
        assert_eq!(v.last_checkpoint.map(|c| c.0), Some(2));
        // Nothing new: no second shutdown checkpoint.
        let tip = Tip {
            seq: 7,
            hash: tip.hash,
            checkpoint_number: 2,
            checkpoint_seq: 7,
        };
        assert!(
            sealer
                .seal(&tip, Vec::new(), true, 11)
                .checkpoints
                .is_empty()
        );
    }
}
