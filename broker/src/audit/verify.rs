//! Verifies the stored log with the shared verifier (the same code
//! `hoopctl audit verify` runs on an export).

use hoop_shared::audit::{Verified, VerifyError};

use super::{AuditError, AuditLog};

impl AuditLog {
    /// Exports the stored log and verifies it. The outer error is a failure
    /// to read the log; the inner one names the first tampered record.
    pub async fn verify(&self) -> Result<Result<Verified, VerifyError>, AuditError> {
        let export = self.export().await?;
        Ok(export.verify(None))
    }
}
