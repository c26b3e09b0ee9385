//! The tamper-evident audit log's record format, its canonical hash encoding,
//! signed checkpoints, the JSON Lines export, and the one verifier that both
//! the broker and `hoopctl audit verify` run (so an auditor verifies offline
//! with exactly the code the broker trusts).
//!
//! # Canonical encoding (also in `docs/audit.md`)
//!
//! A record's `hash` is SHA-256 over:
//!
//! ```text
//! "hoop-audit-record/1\n"
//! u64be(seq) || i64be(time)
//! str(kind) || opt(actor) || opt(connection) || opt(session)
//! str(canonical_json(detail))
//! prev_hash (32 raw bytes)
//! ```
//!
//! where `str(x)` is `u32be(len(x)) || x` (UTF-8 bytes), `opt(None)` is the
//! byte `0x00` and `opt(Some(x))` is `0x01 || str(x)`. `canonical_json` is
//! compact JSON with object keys sorted by their UTF-8 bytes (serde_json's
//! number and string formatting). Length prefixes make the encoding
//! unambiguous: no two different records encode to the same bytes. The first
//! record's `prev_hash` is 32 zero bytes, or, after retention pruned a
//! prefix, the hash the anchoring checkpoint signed.
//!
//! A checkpoint's Ed25519 `signature` is over:
//!
//! ```text
//! "hoop-audit-checkpoint/1\n"
//! u64be(number) || u64be(seq) || hash (32 raw bytes) || i64be(time) || str(key_id)
//! ```
//!
//! `key_id` is the first 16 hex digits of SHA-256 of the 32-byte public key.

use std::collections::HashMap;

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The first line of an export says this.
pub const EXPORT_FORMAT: &str = "hoop-audit-export/1";

/// Domain separation for record hashes.
const RECORD_DOMAIN: &[u8] = b"hoop-audit-record/1\n";
/// Domain separation for checkpoint signatures.
const CHECKPOINT_DOMAIN: &[u8] = b"hoop-audit-checkpoint/1\n";

/// The `prev_hash` of the very first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain: 1, 2, 3... without gaps.
    pub seq: u64,
    /// When it happened, Unix milliseconds.
    pub time: i64,
    /// What happened: `session.open`, `statement.allowed`, `token.refused`...
    pub kind: String,
    /// Who did it (the hoop identity), when known.
    pub actor: Option<String>,
    /// Which connection, when relevant.
    pub connection: Option<String>,
    /// Which session, when relevant.
    pub session: Option<String>,
    /// Kind-specific details (a JSON object; never secrets).
    pub detail: serde_json::Value,
    /// Hex SHA-256 of the previous record (zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this record's canonical encoding.
    pub hash: String,
}

/// A signed statement "the chain up to record `seq` has hash `hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1, 2, 3... without gaps.
    pub number: u64,
    /// The last record it covers.
    pub seq: u64,
    /// That record's hash (hex).
    pub hash: String,
    /// When it was signed, Unix milliseconds.
    pub time: i64,
    /// Which key signed it ([`key_id`]).
    pub key_id: String,
    /// Hex Ed25519 signature over [`checkpoint_message`].
    pub signature: String,
}

/// A checkpoint signing key's public half, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// [`key_id`] of the key.
    pub key_id: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// One line of a JSON Lines export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// First line: format and the public keys that signed checkpoints.
    Header {
        /// [`EXPORT_FORMAT`].
        format: String,
        /// When the export was made, Unix milliseconds.
        exported_at: i64,
        /// Keys that signed the checkpoints.
        keys: Vec<PublicKeyInfo>,
    },
    /// The checkpoint the remaining records chain from, after retention pruned
    /// the records before it.
    Anchor(Checkpoint),
    /// A record, in chain order.
    Record(AuditRecord),
    /// A checkpoint, after the record it covers.
    Checkpoint(Checkpoint),
}

/// The `GET /v1/audit` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditList {
    /// Matching records, oldest first.
    pub records: Vec<AuditRecord>,
}

/// The `GET /v1/audit/key` answer: the keys that sign checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditKeys {
    /// This broker's signing key.
    pub current: Option<PublicKeyInfo>,
    /// Every key that ever signed a checkpoint in this log.
    pub keys: Vec<PublicKeyInfo>,
}

/// Compact JSON with object keys sorted by their bytes, recursively.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            put_str(buf, s);
        }
    }
}

/// The fields of a record that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    /// Position in the chain.
    pub seq: u64,
    /// Unix milliseconds.
    pub time: i64,
    /// Event kind.
    pub kind: &'a str,
    /// Who.
    pub actor: Option<&'a str>,
    /// Connection.
    pub connection: Option<&'a str>,
    /// Session.
    pub session: Option<&'a str>,
    /// The detail, already in canonical JSON.
    pub detail_canonical: &'a str,
    /// The previous record's hash.
    pub prev_hash: &'a [u8; 32],
}

/// SHA-256 of a record's canonical encoding.
pub fn record_hash(f: &RecordFields<'_>) -> [u8; 32] {
    let mut buf = Vec::with_capacity(128 + f.detail_canonical.len());
    buf.extend_from_slice(RECORD_DOMAIN);
    buf.extend_from_slice(&f.seq.to_be_bytes());
    buf.extend_from_slice(&f.time.to_be_bytes());
    put_str(&mut buf, f.kind);
    put_opt(&mut buf, f.actor);
    put_opt(&mut buf, f.connection);
    put_opt(&mut buf, f.session);
    put_str(&mut buf, f.detail_canonical);
    buf.extend_from_slice(f.prev_hash);
    Sha256::digest(&buf).into()
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(
    number: u64,
    seq: u64,
    hash: &[u8; 32],
    time: i64,
    key_id: &str,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(CHECKPOINT_DOMAIN);
    buf.extend_from_slice(&number.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(hash);
    buf.extend_from_slice(&time.to_be_bytes());
    put_str(&mut buf, key_id);
    buf
}

/// The short id of a public key: 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Parses 64 hex digits.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl AuditRecord {
    /// The hash this record's contents (with its stored `prev_hash`) give.
    /// `None` when `prev_hash` is not 64 hex digits.
    pub fn computed_hash(&self) -> Option<[u8; 32]> {
        let prev = parse_hash(&self.prev_hash)?;
        let detail = canonical_json(&self.detail);
        Some(record_hash(&RecordFields {
            seq: self.seq,
            time: self.time,
            kind: &self.kind,
            actor: self.actor.as_deref(),
            connection: self.connection.as_deref(),
            session: self.session.as_deref(),
            detail_canonical: &detail,
            prev_hash: &prev,
        }))
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// First and last record seq, when there are records.
    pub range: Option<(u64, u64)>,
    /// The newest checkpoint: (number, key id).
    pub last_checkpoint: Option<(u64, String)>,
    /// The checkpoint the records chain from, after pruning.
    pub anchor: Option<u64>,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record{} intact",
            self.records,
            if self.records == 1 { "" } else { "s" }
        )?;
        match &self.last_checkpoint {
            Some((n, key)) => write!(f, ", last checkpoint #{n} signed by {key}")?,
            None => write!(f, ", no signed checkpoint yet")?,
        }
        if let Some(a) = self.anchor {
            write!(
                f,
                " (older records pruned; chain anchored at checkpoint #{a})"
            )?;
        }
        Ok(())
    }
}

/// Why a log does not verify. The message names the first record found
/// modified, deleted, inserted or reordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A record's contents do not match its hash.
    #[error("record #{seq} was modified: its contents do not match its hash")]
    Modified {
        /// The record.
        seq: u64,
    },
    /// A record was rewritten along with its hash: the next record (or a
    /// checkpoint) no longer chains to it.
    #[error("record #{seq} was modified: {why}")]
    Rewritten {
        /// The record.
        seq: u64,
        /// What gave it away.
        why: String,
    },
    /// Records are missing.
    #[error("{}", deleted_message(*from, *to))]
    Deleted {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// A record that was never appended by the broker sits in the chain.
    #[error("record #{seq} was inserted: {why}")]
    Inserted {
        /// The record.
        seq: u64,
        /// What gave it away.
        why: String,
    },
    /// A record is out of its place.
    #[error("record #{seq} was reordered: {why}")]
    Reordered {
        /// The record.
        seq: u64,
        /// What gave it away.
        why: String,
    },
    /// A checkpoint is not valid.
    #[error("checkpoint #{number} is not valid: {why}")]
    Checkpoint {
        /// The checkpoint.
        number: u64,
        /// Why.
        why: String,
    },
    /// The export itself cannot be read.
    #[error("line {line} of the export: {why}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

fn deleted_message(from: u64, to: u64) -> String {
    if from == to {
        format!(
            "record #{from} was deleted: the chain skips from #{} to #{}",
            from.saturating_sub(1),
            to + 1
        )
    } else {
        format!("records #{from} to #{to} were deleted")
    }
}

/// Verifies a chain of records (in stored order), its checkpoints, and the
/// anchor it starts from when a prefix was pruned. `trusted` restricts the
/// keys accepted for checkpoint signatures (key ids); `None` accepts every
/// key in `keys` (and the caller should show the key id to a person).
pub fn verify(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    anchor: Option<&Checkpoint>,
    keys: &[PublicKeyInfo],
    trusted: Option<&[String]>,
) -> Result<Verified, VerifyError> {
    let mut verifying: HashMap<&str, VerifyingKey> = HashMap::new();
    for k in keys {
        if trusted.is_some_and(|t| !t.iter().any(|id| id == &k.key_id)) {
            continue;
        }
        let mut raw = [0u8; 32];
        if hex::decode_to_slice(&k.public_key, &mut raw).is_err() {
            continue;
        }
        if key_id(&raw) != k.key_id {
            continue;
        }
        if let Ok(vk) = VerifyingKey::from_bytes(&raw) {
            verifying.insert(k.key_id.as_str(), vk);
        }
    }
    let check_signature = |c: &Checkpoint| -> Result<[u8; 32], VerifyError> {
        let bad = |why: &str| VerifyError::Checkpoint {
            number: c.number,
            why: why.to_owned(),
        };
        let hash = parse_hash(&c.hash).ok_or_else(|| bad("its hash is not 64 hex digits"))?;
        let vk = verifying.get(c.key_id.as_str()).ok_or_else(|| {
            bad(&format!(
                "it is signed by key {}, which is not among the trusted keys",
                c.key_id
            ))
        })?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&c.signature, &mut sig)
            .map_err(|_| bad("its signature is not 128 hex digits"))?;
        let msg = checkpoint_message(c.number, c.seq, &hash, c.time, &c.key_id);
        vk.verify(&msg, &Signature::from_bytes(&sig))
            .map_err(|_| bad("its signature does not verify"))?;
        Ok(hash)
    };

    // Where the chain starts.
    let (mut expected_seq, mut prev) = match anchor {
        Some(a) => (a.seq + 1, check_signature(a)?),
        None => (1, GENESIS_HASH),
    };
    let by_hash: HashMap<&str, u64> = records.iter().map(|r| (r.hash.as_str(), r.seq)).collect();
    let later_seqs: std::collections::HashSet<u64> = records.iter().map(|r| r.seq).collect();

    for r in records {
        if r.seq > expected_seq {
            // A missing seq that shows up later was moved, not deleted.
            if later_seqs.contains(&expected_seq) {
                return Err(VerifyError::Reordered {
                    seq: r.seq,
                    why: format!("it comes where record #{expected_seq} belongs"),
                });
            }
            let to = (expected_seq..r.seq)
                .take_while(|s| !later_seqs.contains(s))
                .last()
                .unwrap_or(expected_seq);
            return Err(VerifyError::Deleted {
                from: expected_seq,
                to,
            });
        }
        if r.seq < expected_seq {
            // Every seq below `expected_seq` was seen already: this is a second one.
            return Err(VerifyError::Inserted {
                seq: r.seq,
                why: format!(
                    "a second record #{} appears after record #{}",
                    r.seq,
                    expected_seq - 1
                ),
            });
        }
        let computed = r.computed_hash();
        let self_consistent = computed.is_some_and(|h| hex::encode(h) == r.hash);
        let chains = r.prev_hash == hex::encode(prev);
        // The record the stored prev_hash points at, if it is in the log.
        let points_at = by_hash.get(r.prev_hash.as_str()).copied();
        match (self_consistent, chains) {
            (true, true) => {}
            (false, true) => return Err(VerifyError::Modified { seq: r.seq }),
            (_, false) => {
                let prev_seq = r.seq.saturating_sub(1);
                return Err(match points_at {
                    Some(q) if q > prev_seq => VerifyError::Reordered {
                        seq: r.seq,
                        why: format!("it was written after record #{q} but sits before it"),
                    },
                    Some(q) if q < prev_seq => VerifyError::Inserted {
                        seq: q + 1,
                        why: format!(
                            "record #{} (as stored) chains to record #{q}, so what sits between them was not written by the broker",
                            r.seq
                        ),
                    },
                    _ if self_consistent && prev_seq > 0 => VerifyError::Rewritten {
                        seq: prev_seq,
                        why: format!("record #{} no longer chains to it", r.seq),
                    },
                    _ => VerifyError::Modified { seq: r.seq },
                });
            }
        }
        prev = computed.unwrap_or(prev);
        expected_seq = r.seq + 1;
    }

    // Checkpoints: signed, consecutive, each matching the record it covers.
    let by_seq: HashMap<u64, &AuditRecord> = records.iter().map(|r| (r.seq, r)).collect();
    let last_seq = expected_seq - 1;
    let mut last_checkpoint = None;
    let mut next_number = anchor.map(|a| a.number + 1);
    for c in checkpoints {
        let hash = check_signature(c)?;
        if let Some(n) = next_number
            && c.number != n
        {
            return Err(VerifyError::Checkpoint {
                number: n,
                why: if c.number > n {
                    "it was deleted (the numbering skips it)".to_owned()
                } else {
                    format!("checkpoint #{} appears twice or out of order", c.number)
                },
            });
        }
        next_number = Some(c.number + 1);
        if c.seq > last_seq {
            return Err(VerifyError::Deleted {
                from: last_seq + 1,
                to: c.seq,
            });
        }
        match by_seq.get(&c.seq) {
            Some(r) if r.hash == hex::encode(hash) => {}
            Some(r) => {
                return Err(VerifyError::Rewritten {
                    seq: r.seq,
                    why: format!(
                        "signed checkpoint #{} recorded a different hash for it (the record or one before it was rewritten)",
                        c.number
                    ),
                });
            }
            // Covers a pruned record (or the anchor itself): nothing to match.
            None => {}
        }
        last_checkpoint = Some((c.number, c.key_id.clone()));
    }
    if last_checkpoint.is_none()
        && let Some(a) = anchor
    {
        last_checkpoint = Some((a.number, a.key_id.clone()));
    }
    Ok(Verified {
        records: records.len() as u64,
        range: records
            .first()
            .zip(records.last())
            .map(|(a, b)| (a.seq, b.seq)),
        last_checkpoint,
        anchor: anchor.map(|a| a.number),
    })
}

/// A parsed export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    /// Public keys from the header.
    pub keys: Vec<PublicKeyInfo>,
    /// The anchor, when a prefix was pruned.
    pub anchor: Option<Checkpoint>,
    /// Records in file order.
    pub records: Vec<AuditRecord>,
    /// Checkpoints in file order.
    pub checkpoints: Vec<Checkpoint>,
}

impl Export {
    /// Parses JSON Lines text; the first line must be the header.
    pub fn parse(text: &str) -> Result<Export, VerifyError> {
        let mut out = Export::default();
        let mut header = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: ExportLine =
                serde_json::from_str(line).map_err(|e| VerifyError::Malformed {
                    line: n,
                    why: e.to_string(),
                })?;
            match parsed {
                ExportLine::Header { format, keys, .. } => {
                    if header {
                        return Err(VerifyError::Malformed {
                            line: n,
                            why: "a second header".into(),
                        });
                    }
                    if format != EXPORT_FORMAT {
                        return Err(VerifyError::Malformed {
                            line: n,
                            why: format!("format {format:?}, expected {EXPORT_FORMAT:?}"),
                        });
                    }
                    header = true;
                    out.keys = keys;
                }
                _ if !header => {
                    return Err(VerifyError::Malformed {
                        line: n,
                        why: format!("the first line must be the {EXPORT_FORMAT} header"),
                    });
                }
                ExportLine::Anchor(a) => {
                    if out.anchor.is_some() || !out.records.is_empty() {
                        return Err(VerifyError::Malformed {
                            line: n,
                            why: "the anchor must come once, before the records".into(),
                        });
                    }
                    out.anchor = Some(a);
                }
                ExportLine::Record(r) => out.records.push(r),
                ExportLine::Checkpoint(c) => out.checkpoints.push(c),
            }
        }
        if !header {
            return Err(VerifyError::Malformed {
                line: 1,
                why: "empty export (no header)".into(),
            });
        }
        Ok(out)
    }

    /// Verifies the parsed export (see [`verify`]).
    pub fn verify(&self, trusted: Option<&[String]>) -> Result<Verified, VerifyError> {
        verify(
            &self.records,
            &self.checkpoints,
            self.anchor.as_ref(),
            &self.keys,
            trusted,
        )
    }

    /// The export as JSON Lines: header, anchor, then each record followed by
    /// the checkpoints that cover it.
    pub fn to_jsonl(&self, exported_at: i64) -> String {
        let mut out = String::new();
        let mut push = |line: &ExportLine| {
            if let Ok(s) = serde_json::to_string(line) {
                out.push_str(&s);
                out.push('\n');
            }
        };
        push(&ExportLine::Header {
            format: EXPORT_FORMAT.to_owned(),
            exported_at,
            keys: self.keys.clone(),
        });
        if let Some(a) = &self.anchor {
            push(&ExportLine::Anchor(a.clone()));
        }
        let mut cps = self.checkpoints.iter().peekable();
        for r in &self.records {
            push(&ExportLine::Record(r.clone()));
            while let Some(c) = cps.next_if(|c| c.seq <= r.seq) {
                push(&ExportLine::Checkpoint(c.clone()));
            }
        }
        for c in cps {
            push(&ExportLine::Checkpoint(c.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key() -> (SigningKey, PublicKeyInfo) {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let pk = sk.verifying_key().to_bytes();
        let info = PublicKeyInfo {
            key_id: key_id(&pk),
            public_key: hex::encode(pk),
        };
        (sk, info)
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let detail = serde_json::json!({"n": seq, "b": [1, {"z": 1, "a": 2}]});
                let canon = canonical_json(&detail);
                let actor = format!("user{seq}");
                let h = record_hash(&RecordFields {
                    seq,
                    time: 1_700_000_000_000 + seq as i64,
                    kind: "test.event",
                    actor: Some(&actor),
                    connection: None,
                    session: Some("s1"),
                    detail_canonical: &canon,
                    prev_hash: &prev,
                });
                let r = AuditRecord {
                    seq,
                    time: 1_700_000_000_000 + seq as i64,
                    kind: "test.event".into(),
                    actor: Some(actor),
                    connection: None,
                    session: Some("s1".into()),
                    detail,
                    prev_hash: hex::encode(prev),
                    hash: hex::encode(h),
                };
                prev = h;
                r
            })
            .collect()
    }

    fn checkpoint(sk: &SigningKey, kid: &str, number: u64, r: &AuditRecord) -> Checkpoint {
        let hash = parse_hash(&r.hash).unwrap();
        let sig = sk.sign(&checkpoint_message(number, r.seq, &hash, 5, kid));
        Checkpoint {
            number,
            seq: r.seq,
            hash: r.hash.clone(),
            time: 5,
            key_id: kid.to_owned(),
            signature: hex::encode(sig.to_bytes()),
        }
    }

    fn setup() -> (Vec<AuditRecord>, Vec<Checkpoint>, Vec<PublicKeyInfo>) {
        let (sk, info) = key();
        let records = chain(10);
        let cps = vec![
            checkpoint(&sk, &info.key_id, 1, &records[4]),
            checkpoint(&sk, &info.key_id, 2, &records[9]),
        ];
        (records, cps, vec![info])
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"d": [true, null], "c": "x\n"} }"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x\n","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (r, c, k) = setup();
        let v = verify(&r, &c, None, &k, None).unwrap();
        assert_eq!(v.records, 10);
        assert_eq!(v.last_checkpoint, Some((2, k[0].key_id.clone())));
        assert!(
            v.to_string()
                .starts_with("10 records intact, last checkpoint #2 signed by ")
        );
    }

    #[test]
    fn a_modified_field_is_named() {
        let (mut r, c, k) = setup();
        r[3].actor = Some("mallory".into());
        assert_eq!(
            verify(&r, &c, None, &k, None).unwrap_err(),
            VerifyError::Modified { seq: 4 }
        );
    }

    #[test]
    fn a_rewritten_record_with_a_fresh_hash_is_named() {
        let (mut r, c, k) = setup();
        r[3].kind = "other".into();
        r[3].hash = hex::encode(r[3].computed_hash().unwrap());
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Rewritten { seq: 4, .. }), "{e}");
    }

    #[test]
    fn a_deleted_record_is_named() {
        let (mut r, c, k) = setup();
        r.remove(6);
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert_eq!(e, VerifyError::Deleted { from: 7, to: 7 });
        assert!(e.to_string().starts_with("record #7 was deleted"), "{e}");
    }

    #[test]
    fn a_deleted_tail_is_caught_by_the_checkpoint() {
        let (mut r, c, k) = setup();
        r.truncate(8);
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert_eq!(e, VerifyError::Deleted { from: 9, to: 10 });
    }

    #[test]
    fn swapped_records_are_named_as_reordered() {
        // Swapped in place (seq values kept in position, as a database
        // ordered by seq shows them after the contents were exchanged).
        let (mut r, c, k) = setup();
        let (a, b) = (r[2].clone(), r[5].clone());
        r[2] = AuditRecord { seq: 3, ..b };
        r[5] = AuditRecord { seq: 6, ..a };
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Reordered { seq: 3, .. }), "{e}");
        // Swapped lines (an edited export).
        let (mut r, c, k) = setup();
        r.swap(2, 5);
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Reordered { .. }), "{e}");
        // Adjacent records.
        let (mut r, c, k) = setup();
        let (a, b) = (r[2].clone(), r[3].clone());
        r[2] = AuditRecord { seq: 3, ..b };
        r[3] = AuditRecord { seq: 4, ..a };
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Reordered { seq: 3, .. }), "{e}");
    }

    #[test]
    fn an_inserted_record_is_named() {
        // The forger renumbers what follows and chains the new record properly.
        let (r, c, k) = setup();
        let mut forged = r[3].clone();
        forged.seq = 5;
        forged.actor = Some("mallory".into());
        forged.prev_hash = r[3].hash.clone();
        forged.hash = hex::encode(forged.computed_hash().unwrap());
        let mut out: Vec<_> = r[..4].to_vec();
        out.push(forged);
        for x in &r[4..] {
            out.push(AuditRecord {
                seq: x.seq + 1,
                ..x.clone()
            });
        }
        let e = verify(&out, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Inserted { seq: 5, .. }), "{e}");
        // A duplicated line in an export.
        let (mut r, c, k) = setup();
        let dup = r[2].clone();
        r.insert(3, dup);
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(matches!(e, VerifyError::Inserted { seq: 3, .. }), "{e}");
    }

    #[test]
    fn checkpoints_need_a_trusted_valid_signature() {
        let (r, mut c, k) = setup();
        c[1].time += 1;
        let e = verify(&r, &c, None, &k, None).unwrap_err();
        assert!(
            matches!(e, VerifyError::Checkpoint { number: 2, .. }),
            "{e}"
        );
        let (r, c, k) = setup();
        let e = verify(&r, &c, None, &k, Some(&["0123456789abcdef".to_owned()])).unwrap_err();
        assert!(e.to_string().contains("not among the trusted keys"), "{e}");
    }

    #[test]
    fn a_pruned_log_verifies_from_its_anchor() {
        let (r, c, k) = setup();
        let anchor = c[0].clone();
        let rest = r[5..].to_vec();
        let v = verify(&rest, &c[1..], Some(&anchor), &k, None).unwrap();
        assert_eq!((v.records, v.anchor), (5, Some(1)));
        // Without the anchor the missing prefix shows.
        assert!(verify(&rest, &c[1..], None, &k, None).is_err());
    }

    #[test]
    fn exports_round_trip_and_edits_are_caught() {
        let (r, c, k) = setup();
        let export = Export {
            keys: k,
            anchor: None,
            records: r,
            checkpoints: c,
        };
        let text = export.to_jsonl(1);
        let parsed = Export::parse(&text).unwrap();
        assert_eq!(parsed, export);
        assert_eq!(parsed.verify(None).unwrap().records, 10);
        let edited = text.replacen("user4", "userX", 1);
        let e = Export::parse(&edited).unwrap().verify(None).unwrap_err();
        assert_eq!(e, VerifyError::Modified { seq: 4 });
        let e = Export::parse("{\"type\":\"record\"}").unwrap_err();
        assert!(matches!(e, VerifyError::Malformed { line: 1, .. }));
    }
}
