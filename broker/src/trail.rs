//! The audit trail of actions: each [`Event`] (a login, a request decided,
//! a tunnel opened, a policy applied) goes to the hash-chained audit log and
//! to the store's `events` table. Domain layer: used by the API, the proxies
//! and the background tasks alike.

use crate::audit::AuditLog;
use crate::store::{Event, Store};

/// Where events go; cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    log: AuditLog,
    store: Store,
}

impl AuditTrail {
    /// Events go to `log` and to `store`'s events table.
    pub fn new(log: AuditLog, store: Store) -> AuditTrail {
        AuditTrail { log, store }
    }

    /// Appends an audit event to the hash-chained log (committed when this
    /// returns) and to the store's `events` table. A failure is logged
    /// loudly; the action it describes has already been decided.
    pub async fn record(&self, event: Event) {
        let kind = event.kind.clone();
        if let Err(e) = self.log.append(audit_record(&event)).await {
            tracing::error!(%kind, "could not write the audit record: {e}");
        }
        if let Err(e) = self.store.append_event(event).await {
            tracing::error!(%kind, "could not write audit event: {e}");
        }
    }
}

/// An event as an audit record: a detail that is a JSON object stays one;
/// other text becomes `{"message": text}`.
fn audit_record(e: &Event) -> crate::audit::NewRecord {
    let now = crate::audit::now_ms();
    let detail = match serde_json::from_str::<serde_json::Value>(&e.detail) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ if e.detail.is_empty() => serde_json::json!({}),
        _ => serde_json::json!({ "message": e.detail }),
    };
    crate::audit::NewRecord {
        // Millisecond precision when the event is from this second.
        time: if now / 1000 == i64::try_from(e.at).unwrap_or(0) {
            now
        } else {
            i64::try_from(e.at).unwrap_or(0).saturating_mul(1000)
        },
        kind: e.kind.clone(),
        actor: e.user_name.clone(),
        connection: e.connection.clone(),
        session: e.session_id.clone(),
        detail,
    }
}
