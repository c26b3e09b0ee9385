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

/// The keys whose checkpoint signatures are accepted: those of `keys`
/// whose id matches their public key, restricted to `trusted` when given.
fn verifying_keys(
    keys: &[PublicKeyInfo],
    trusted: Option<&[String]>,
) -> HashMap<String, VerifyingKey> {
    let mut verifying = HashMap::new();
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
            verifying.insert(k.key_id.clone(), vk);
        }
    }
    verifying
}

/// Checks `c`'s signature with one of `verifying`; returns the hash it signs.
fn check_signature(
    verifying: &HashMap<String, VerifyingKey>,
    c: &Checkpoint,
) -> Result<[u8; 32], VerifyError> {
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
    let verifying = verifying_keys(keys, trusted);
    let check_signature = |c: &Checkpoint| check_signature(&verifying, c);

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

/// Records (hash by seq) a [`StreamVerifier`] keeps to match checkpoints
/// and to name what an edit did; older ones are forgotten.
pub const STREAM_WINDOW: usize = 1024;

/// Checkpoints at most waiting for the record they cover (in an export
/// they follow it, so normally none wait).
const STREAM_MAX_WAITING: usize = 1024;

/// The first record that does not chain, kept while the rest of the export
/// streams by, because what it means (deleted, reordered, inserted) depends
/// on records that come after it.
#[derive(Debug)]
enum Suspect {
    /// Records `expected..seq` are missing where `seq` came.
    Gap {
        seq: u64,
        expected: u64,
        /// `expected` shows up later: moved, not deleted.
        expected_later: bool,
        /// The smallest missing seq that shows up later.
        first_later: Option<u64>,
    },
    /// Record `seq` does not chain to the one before it.
    Chain {
        seq: u64,
        prev_hash: String,
        self_consistent: bool,
        /// The seq of the last record whose hash is `prev_hash`.
        points_at: Option<u64>,
    },
    /// Decided on the spot.
    Decided(VerifyError),
}

impl Suspect {
    /// What a later record tells about it.
    fn see(&mut self, r: &AuditRecord) {
        match self {
            Suspect::Gap {
                seq,
                expected,
                expected_later,
                first_later,
            } => {
                if r.seq == *expected {
                    *expected_later = true;
                }
                if (*expected..*seq).contains(&r.seq) {
                    *first_later = Some(first_later.map_or(r.seq, |f| f.min(r.seq)));
                }
            }
            Suspect::Chain {
                prev_hash,
                points_at,
                ..
            } => {
                if r.hash == *prev_hash {
                    *points_at = Some(r.seq);
                }
            }
            Suspect::Decided(_) => {}
        }
    }

    /// The error, as [`verify`] names it with the whole log at hand.
    fn error(self) -> VerifyError {
        match self {
            Suspect::Gap {
                seq,
                expected,
                expected_later,
                first_later,
            } => {
                if expected_later {
                    VerifyError::Reordered {
                        seq,
                        why: format!("it comes where record #{expected} belongs"),
                    }
                } else {
                    VerifyError::Deleted {
                        from: expected,
                        to: first_later.map_or(seq - 1, |f| f - 1),
                    }
                }
            }
            Suspect::Chain {
                seq,
                self_consistent,
                points_at,
                ..
            } => {
                let prev_seq = seq.saturating_sub(1);
                match points_at {
                    Some(q) if q > prev_seq => VerifyError::Reordered {
                        seq,
                        why: format!("it was written after record #{q} but sits before it"),
                    },
                    Some(q) if q < prev_seq => VerifyError::Inserted {
                        seq: q + 1,
                        why: format!(
                            "record #{seq} (as stored) chains to record #{q}, so what sits between them was not written by the broker"
                        ),
                    },
                    _ if self_consistent && prev_seq > 0 => VerifyError::Rewritten {
                        seq: prev_seq,
                        why: format!("record #{seq} no longer chains to it"),
                    },
                    _ => VerifyError::Modified { seq },
                }
            }
            Suspect::Decided(e) => e,
        }
    }
}

/// Verifies an export line by line in memory that does not grow with the
/// log: the same checks and the same verdicts as [`Export::parse`] followed
/// by [`Export::verify`], for an export in the order [`Export::to_jsonl`]
/// (and the broker) write it. It keeps the chain's tip, the last
/// [`STREAM_WINDOW`] records' hashes, and, after the first record that does
/// not chain, what the records after it say about it.
///
/// Two limits of the window, both only on hand-edited exports: a checkpoint
/// placed more than [`STREAM_WINDOW`] records after the record it covers is
/// reported as out of place, and a record that chains to one more than
/// [`STREAM_WINDOW`] records before it is named modified rather than
/// inserted-after.
#[derive(Debug)]
pub struct StreamVerifier {
    trusted: Option<Vec<String>>,
    verifying: HashMap<String, VerifyingKey>,
    /// Lines seen (1-based number of the last one).
    line: usize,
    header: bool,
    anchor: Option<(u64, String)>,
    /// An anchor that does not verify: nothing after it counts.
    anchor_error: Option<VerifyError>,
    expected_seq: u64,
    prev: [u8; 32],
    records: u64,
    range: Option<(u64, u64)>,
    /// The last records' (seq, hash), consecutive seqs.
    recent: std::collections::VecDeque<(u64, String)>,
    /// The first record that did not verify.
    suspect: Option<Suspect>,
    /// Checkpoints seen.
    checkpoints: usize,
    next_number: Option<u64>,
    last_checkpoint: Option<(u64, String)>,
    /// Checkpoints whose record has not come yet: (index, number, seq, hash).
    waiting: Vec<(usize, u64, u64, [u8; 32])>,
    /// The first checkpoint (by index) that does not verify.
    checkpoint_error: Option<(usize, VerifyError)>,
}

impl StreamVerifier {
    /// A verifier accepting checkpoint signatures by the header's keys,
    /// restricted to the key ids in `trusted` when given.
    pub fn new(trusted: Option<&[String]>) -> StreamVerifier {
        StreamVerifier {
            trusted: trusted.map(<[String]>::to_vec),
            verifying: HashMap::new(),
            line: 0,
            header: false,
            anchor: None,
            anchor_error: None,
            expected_seq: 1,
            prev: GENESIS_HASH,
            records: 0,
            range: None,
            recent: std::collections::VecDeque::with_capacity(STREAM_WINDOW),
            suspect: None,
            checkpoints: 0,
            next_number: None,
            last_checkpoint: None,
            waiting: Vec::new(),
            checkpoint_error: None,
        }
    }

    /// Takes the next line of the export (without its newline). An error
    /// here is a line that cannot be read ([`VerifyError::Malformed`]):
    /// stop there. Every other verdict waits for [`StreamVerifier::finish`].
    pub fn line(&mut self, text: &str) -> Result<(), VerifyError> {
        if text.trim().is_empty() {
            self.line += 1;
            return Ok(());
        }
        let parsed: ExportLine =
            serde_json::from_str(text).map_err(|e| VerifyError::Malformed {
                line: self.line + 1,
                why: e.to_string(),
            })?;
        self.push(parsed)
    }

    /// Takes the next line of the export, already parsed (as
    /// [`StreamVerifier::line`] does).
    pub fn push(&mut self, parsed: ExportLine) -> Result<(), VerifyError> {
        self.line += 1;
        let n = self.line;
        match parsed {
            ExportLine::Header { format, keys, .. } => {
                if self.header {
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
                self.header = true;
                self.verifying = verifying_keys(&keys, self.trusted.as_deref());
            }
            _ if !self.header => {
                return Err(VerifyError::Malformed {
                    line: n,
                    why: format!("the first line must be the {EXPORT_FORMAT} header"),
                });
            }
            ExportLine::Anchor(a) => {
                if self.anchor.is_some() || self.anchor_error.is_some() || self.records > 0 {
                    return Err(VerifyError::Malformed {
                        line: n,
                        why: "the anchor must come once, before the records".into(),
                    });
                }
                self.anchor_line(&a);
            }
            ExportLine::Record(r) => self.record(&r),
            ExportLine::Checkpoint(c) => self.checkpoint(&c),
        }
        Ok(())
    }

    fn anchor_line(&mut self, a: &Checkpoint) {
        match check_signature(&self.verifying, a) {
            Ok(hash) => {
                self.expected_seq = a.seq + 1;
                self.prev = hash;
                self.next_number = Some(a.number + 1);
                self.anchor = Some((a.number, a.key_id.clone()));
            }
            Err(e) => self.anchor_error = Some(e),
        }
    }

    fn record(&mut self, r: &AuditRecord) {
        self.records += 1;
        self.range = Some(self.range.map_or((r.seq, r.seq), |(a, _)| (a, r.seq)));
        if self.anchor_error.is_some() {
            return;
        }
        if let Some(s) = &mut self.suspect {
            s.see(r);
            return;
        }
        let expected = self.expected_seq;
        if r.seq > expected {
            self.suspect = Some(Suspect::Gap {
                seq: r.seq,
                expected,
                expected_later: false,
                first_later: None,
            });
            return;
        }
        if r.seq < expected {
            self.suspect = Some(Suspect::Decided(VerifyError::Inserted {
                seq: r.seq,
                why: format!(
                    "a second record #{} appears after record #{}",
                    r.seq,
                    expected - 1
                ),
            }));
            return;
        }
        let computed = r.computed_hash();
        let self_consistent = computed.is_some_and(|h| hex::encode(h) == r.hash);
        let chains = r.prev_hash == hex::encode(self.prev);
        match (self_consistent, chains) {
            (true, true) => {}
            (false, true) => {
                self.suspect = Some(Suspect::Decided(VerifyError::Modified { seq: r.seq }));
                return;
            }
            (_, false) => {
                // The last record so far whose hash it names: this one, or
                // one in the window (the newest first).
                let points_at = if r.hash == r.prev_hash {
                    Some(r.seq)
                } else {
                    self.recent
                        .iter()
                        .rev()
                        .find(|(_, h)| *h == r.prev_hash)
                        .map(|(s, _)| *s)
                };
                self.suspect = Some(Suspect::Chain {
                    seq: r.seq,
                    prev_hash: r.prev_hash.clone(),
                    self_consistent,
                    points_at,
                });
                return;
            }
        }
        self.prev = computed.unwrap_or(self.prev);
        self.expected_seq = r.seq + 1;
        if self.recent.len() == STREAM_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back((r.seq, r.hash.clone()));
        // Checkpoints that came before this record.
        let mut i = 0;
        while let Some(w) = self.waiting.get(i).copied() {
            if w.2 == r.seq {
                self.waiting.swap_remove(i);
                self.match_record(w.0, w.1, r.seq, &w.3);
            } else {
                i += 1;
            }
        }
    }

    /// Compares a checkpoint's hash with that of the record it covers.
    fn match_record(&mut self, index: usize, number: u64, seq: u64, hash: &[u8; 32]) {
        let Some(stored) = self.recent_hash(seq) else {
            return;
        };
        if stored != hex::encode(hash) {
            self.checkpoint_failed(
                index,
                VerifyError::Rewritten {
                    seq,
                    why: format!(
                        "signed checkpoint #{number} recorded a different hash for it (the record or one before it was rewritten)"
                    ),
                },
            );
        }
    }

    fn recent_hash(&self, seq: u64) -> Option<String> {
        let first = self.recent.front()?.0;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.recent.get(i).map(|(_, h)| h.clone())
    }

    fn checkpoint_failed(&mut self, index: usize, e: VerifyError) {
        if self
            .checkpoint_error
            .as_ref()
            .is_none_or(|(i, _)| index < *i)
        {
            self.checkpoint_error = Some((index, e));
        }
    }

    fn checkpoint(&mut self, c: &Checkpoint) {
        let index = self.checkpoints;
        self.checkpoints += 1;
        // After an error in the records (or the anchor) no checkpoint is
        // looked at, and after one in the checkpoints no later one counts.
        if self.anchor_error.is_some() || self.suspect.is_some() || self.checkpoint_error.is_some()
        {
            return;
        }
        let hash = match check_signature(&self.verifying, c) {
            Ok(h) => h,
            Err(e) => return self.checkpoint_failed(index, e),
        };
        if let Some(n) = self.next_number
            && c.number != n
        {
            return self.checkpoint_failed(
                index,
                VerifyError::Checkpoint {
                    number: n,
                    why: if c.number > n {
                        "it was deleted (the numbering skips it)".to_owned()
                    } else {
                        format!("checkpoint #{} appears twice or out of order", c.number)
                    },
                },
            );
        }
        self.next_number = Some(c.number + 1);
        self.last_checkpoint = Some((c.number, c.key_id.clone()));
        let last_seq = self.expected_seq - 1;
        if c.seq > last_seq {
            // Its record may still come.
            if self.waiting.len() < STREAM_MAX_WAITING {
                self.waiting.push((index, c.number, c.seq, hash));
            } else {
                self.checkpoint_failed(
                    index,
                    VerifyError::Checkpoint {
                        number: c.number,
                        why: "it comes too far before the record it covers".into(),
                    },
                );
            }
            return;
        }
        let first_seq = self.range.map_or(u64::MAX, |(a, _)| a);
        if c.seq < first_seq {
            // Covers a pruned record (or the anchor itself): nothing to match.
            return;
        }
        if self.recent_hash(c.seq).is_none() {
            return self.checkpoint_failed(
                index,
                VerifyError::Checkpoint {
                    number: c.number,
                    why: format!(
                        "it comes more than {STREAM_WINDOW} records after record #{} that it covers",
                        c.seq
                    ),
                },
            );
        }
        self.match_record(index, c.number, c.seq, &hash);
    }

    /// The verdict, once every line was given.
    pub fn finish(mut self) -> Result<Verified, VerifyError> {
        if !self.header {
            return Err(VerifyError::Malformed {
                line: 1,
                why: "empty export (no header)".into(),
            });
        }
        if let Some(e) = self.anchor_error {
            return Err(e);
        }
        if let Some(s) = self.suspect {
            return Err(s.error());
        }
        let last_seq = self.expected_seq - 1;
        for (index, _, seq, _) in std::mem::take(&mut self.waiting) {
            self.checkpoint_failed(
                index,
                VerifyError::Deleted {
                    from: last_seq + 1,
                    to: seq,
                },
            );
        }
        if let Some((_, e)) = self.checkpoint_error {
            return Err(e);
        }
        let last_checkpoint = self.last_checkpoint.or(self.anchor.clone());
        Ok(Verified {
            records: self.records,
            range: self.range,
            last_checkpoint,
            anchor: self.anchor.map(|(n, _)| n),
        })
    }
}

/// Verifies the export `reader` yields, line by line ([`StreamVerifier`]):
/// memory stays bounded however long the log. The outer error is a failure
/// to read; a line longer than `max_line` bytes is malformed.
pub fn verify_reader<R: std::io::BufRead>(
    mut reader: R,
    trusted: Option<&[String]>,
    max_line: usize,
) -> std::io::Result<Result<Verified, VerifyError>> {
    let mut v = StreamVerifier::new(trusted);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::BufRead::read_until(
            &mut std::io::Read::take(&mut reader, max_line as u64 + 1),
            b'\n',
            &mut buf,
        )?;
        if n == 0 {
            return Ok(v.finish());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > max_line {
            return Ok(Err(VerifyError::Malformed {
                line: v.line + 1,
                why: format!("longer than {max_line} bytes"),
            }));
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(_) => {
                return Ok(Err(VerifyError::Malformed {
                    line: v.line + 1,
                    why: "not UTF-8".into(),
                }));
            }
        };
        if let Err(e) = v.line(text.strip_suffix('\r').unwrap_or(text)) {
            return Ok(Err(e));
        }
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

    /// The stream verifier's verdict on `records`, `checkpoints` and
    /// `anchor` written as an export.
    fn streamed(
        records: &[AuditRecord],
        checkpoints: &[Checkpoint],
        anchor: Option<&Checkpoint>,
        keys: &[PublicKeyInfo],
        trusted: Option<&[String]>,
    ) -> Result<Verified, VerifyError> {
        let text = Export {
            keys: keys.to_vec(),
            anchor: anchor.cloned(),
            records: records.to_vec(),
            checkpoints: checkpoints.to_vec(),
        }
        .to_jsonl(1);
        verify_reader(text.as_bytes(), trusted, 1 << 20).unwrap()
    }

    #[test]
    fn the_stream_verifier_names_every_edit_as_the_whole_log_verifier_does() {
        let (sk, info) = key();
        /// A name, records, checkpoints, anchor.
        type Case = (
            &'static str,
            Vec<AuditRecord>,
            Vec<Checkpoint>,
            Option<Checkpoint>,
        );
        let mut cases: Vec<Case> = Vec::new();
        let (r, c, _) = setup();
        cases.push(("untouched", r.clone(), c.clone(), None));
        let mut m = r.clone();
        m[3].actor = Some("mallory".into());
        cases.push(("modified", m, c.clone(), None));
        let mut m = r.clone();
        m[3].actor = Some("mallory".into());
        m[3].hash = hex::encode(m[3].computed_hash().unwrap());
        cases.push(("rewritten", m, c.clone(), None));
        let mut m = r.clone();
        m.remove(6);
        cases.push(("deleted", m, c.clone(), None));
        let mut m = r.clone();
        m.drain(3..6);
        cases.push(("deleted three", m, c.clone(), None));
        cases.push(("deleted tail", r[..8].to_vec(), c.clone(), None));
        let (a, b) = (r[2].clone(), r[5].clone());
        let mut m = r.clone();
        m[2] = AuditRecord { seq: 3, ..b };
        m[5] = AuditRecord { seq: 6, ..a };
        cases.push(("swapped in place", m, c.clone(), None));
        let mut m = r.clone();
        m.swap(2, 5);
        cases.push(("swapped lines", m, c.clone(), None));
        let (a, b) = (r[2].clone(), r[3].clone());
        let mut m = r.clone();
        m[2] = AuditRecord { seq: 3, ..b };
        m[3] = AuditRecord { seq: 4, ..a };
        cases.push(("adjacent swap", m, c.clone(), None));
        let mut forged = r[3].clone();
        forged.seq = 5;
        forged.actor = Some("mallory".into());
        forged.prev_hash = r[3].hash.clone();
        forged.hash = hex::encode(forged.computed_hash().unwrap());
        let mut m: Vec<_> = r[..4].to_vec();
        m.push(forged);
        m.extend(r[4..].iter().map(|x| AuditRecord {
            seq: x.seq + 1,
            ..x.clone()
        }));
        cases.push(("inserted", m, c.clone(), None));
        let mut m = r.clone();
        m.insert(3, r[2].clone());
        cases.push(("duplicated", m, c.clone(), None));
        let mut bad = c.clone();
        bad[1].time += 1;
        cases.push(("bad signature", r.clone(), bad, None));
        let mut bad = c.clone();
        bad.remove(0);
        cases.push(("checkpoint deleted", r.clone(), bad, None));
        let extra = checkpoint(&sk, &info.key_id, 3, &r[9]);
        let mut late = r.clone();
        late[7].hash = "00".repeat(32);
        cases.push((
            "checkpoint over a rewritten record",
            late,
            vec![c[0].clone(), c[1].clone(), extra],
            None,
        ));
        cases.push((
            "pruned",
            r[5..].to_vec(),
            c[1..].to_vec(),
            Some(c[0].clone()),
        ));
        cases.push(("pruned, no anchor", r[5..].to_vec(), c[1..].to_vec(), None));
        cases.push((
            "everything pruned",
            Vec::new(),
            c[1..].to_vec(),
            Some(c[0].clone()),
        ));
        let mut a = c[0].clone();
        a.time += 1;
        cases.push(("bad anchor", r[5..].to_vec(), c[1..].to_vec(), Some(a)));
        cases.push(("empty", Vec::new(), Vec::new(), None));
        let keys = vec![info];
        for (name, records, checkpoints, anchor) in &cases {
            for trusted in [None, Some(&["0123456789abcdef".to_owned()][..])] {
                assert_eq!(
                    streamed(records, checkpoints, anchor.as_ref(), &keys, trusted),
                    verify(records, checkpoints, anchor.as_ref(), &keys, trusted),
                    "{name}"
                );
            }
        }
        // Malformed lines are named as the parser names them.
        for text in ["{\"type\":\"record\"}", "", "not json"] {
            assert_eq!(
                verify_reader(text.as_bytes(), None, 1 << 20)
                    .unwrap()
                    .map(|v| v.records),
                Export::parse(text)
                    .and_then(|e| e.verify(None))
                    .map(|v| v.records),
                "{text:?}"
            );
        }
        let long = format!("{}\n", "x".repeat(100));
        assert!(matches!(
            verify_reader(long.as_bytes(), None, 10).unwrap(),
            Err(VerifyError::Malformed { line: 1, .. })
        ));
    }

    /// An export of `n` chained records, made as it is read.
    struct Generated {
        n: u64,
        seq: u64,
        prev: [u8; 32],
        line: Vec<u8>,
        at: usize,
        padding: String,
    }

    impl std::io::Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.line.len() {
                self.at = 0;
                self.line.clear();
                if self.seq == 0 {
                    let header = ExportLine::Header {
                        format: EXPORT_FORMAT.into(),
                        exported_at: 0,
                        keys: vec![key().1],
                    };
                    serde_json::to_writer(&mut self.line, &header).unwrap();
                } else if self.seq <= self.n {
                    let detail = serde_json::json!({"sql": self.padding, "i": self.seq});
                    let canon = canonical_json(&detail);
                    let hash = record_hash(&RecordFields {
                        seq: self.seq,
                        time: 1,
                        kind: "k",
                        actor: None,
                        connection: None,
                        session: None,
                        detail_canonical: &canon,
                        prev_hash: &self.prev,
                    });
                    let r = AuditRecord {
                        seq: self.seq,
                        time: 1,
                        kind: "k".into(),
                        actor: None,
                        connection: None,
                        session: None,
                        detail,
                        prev_hash: hex::encode(self.prev),
                        hash: hex::encode(hash),
                    };
                    self.prev = hash;
                    serde_json::to_writer(&mut self.line, &ExportLine::Record(r)).unwrap();
                } else {
                    return Ok(0);
                }
                self.line.push(b'\n');
                self.seq += 1;
            }
            let n = buf.len().min(self.line.len() - self.at);
            buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// This process's resident memory (`VmRSS`) or its peak (`VmHWM`),
    /// bytes (Linux).
    fn resident(which: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(which))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    #[test]
    fn verifying_a_stream_holds_no_more_for_a_longer_log() {
        let generated = |n| Generated {
            n,
            seq: 0,
            prev: GENESIS_HASH,
            line: Vec::new(),
            at: 0,
            padding: "x".repeat(1024),
        };
        // 60k records, about 65 MiB of export, never all in memory: the
        // peak of the whole process stays within 16 MiB of where it was
        // (nextest runs each test in a process of its own).
        let before = resident("VmRSS:");
        let v = verify_reader(std::io::BufReader::new(generated(60_000)), None, 1 << 20)
            .unwrap()
            .unwrap();
        let grown = resident("VmHWM:").saturating_sub(before);
        assert_eq!(v.records, 60_000);
        assert!(grown < 16 << 20, "grew by {} MiB", grown >> 20);
    }
}
