//! Verifies the stored log with the shared verifier (the same code
//! `hoopctl audit verify` runs on an export), chunk by chunk as the export
//! streams: memory does not grow with the log.

use hoop_shared::audit::{StreamVerifier, Verified, VerifyError};

use super::{AuditError, AuditLog};

impl AuditLog {
    /// Streams the stored log through the verifier. The outer error is a
    /// failure to read the log; the inner one names the first tampered
    /// record.
    pub async fn verify(&self) -> Result<Result<Verified, VerifyError>, AuditError> {
        let mut chunks = self.export_stream();
        let mut verifier = StreamVerifier::new(None);
        while let Some(chunk) = chunks.recv().await {
            for line in chunk? {
                if let Err(e) = verifier.push(line) {
                    return Ok(Err(e));
                }
            }
        }
        Ok(verifier.finish())
    }
}
