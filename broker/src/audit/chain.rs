//! Sealing: turns a batch of new events into chained records (and the
//! checkpoints due), given the tip of the log read inside the append
//! transaction. Pure, so both backends chain exactly alike.

use hoop_shared::audit::{
    AuditRecord, Checkpoint, GENESIS_HASH, RecordFields, canonical_json, record_hash,
};

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

/// What one append stores.
#[derive(Debug, Clone, Default)]
pub struct Sealed {
    /// New records, in order.
    pub records: Vec<AuditRecord>,
    /// Checkpoints signed in this append.
    pub checkpoints: Vec<Checkpoint>,
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
        batch: &[NewRecord],
        checkpoint_at_end: bool,
        now_ms: i64,
    ) -> Sealed {
        let mut out = Sealed::default();
        let mut prev = tip.hash;
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
            out.records.push(AuditRecord {
                seq,
                time: r.time,
                kind: r.kind.clone(),
                actor: r.actor.clone(),
                connection: r.connection.clone(),
                session: r.session.clone(),
                detail: r.detail.clone(),
                prev_hash: hex::encode(prev),
                hash: hex::encode(hash),
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
        let a = sealer.seal(&Tip::GENESIS, &(0..6).map(ev).collect::<Vec<_>>(), false, 9);
        assert_eq!(a.records.len(), 6);
        assert_eq!(a.checkpoints.len(), 1);
        let last = a.records.last().unwrap();
        let tip = Tip {
            seq: last.seq,
            hash: hoop_shared::audit::parse_hash(&last.hash).unwrap(),
            checkpoint_number: 1,
            checkpoint_seq: 4,
        };
        let b = sealer.seal(&tip, &[ev(7)], true, 10);
        assert_eq!(b.records[0].seq, 7);
        assert_eq!(b.checkpoints.len(), 1, "shutdown checkpoint over #7");
        assert_eq!(b.checkpoints[0].number, 2);
        let records: Vec<_> = a.records.into_iter().chain(b.records).collect();
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
        assert!(sealer.seal(&tip, &[], true, 11).checkpoints.is_empty());
    }
}
