//! Who may use which connection.
//!
//! For now a connection lists the groups (`allow_groups`) and users
//! (`allow_users`) who may use it; anything else is denied. Every decision
//! comes with the reason, which the API passes on and the audit trail keeps.
//! The full policy language (approvals, time windows, guardrails) replaces the
//! body of [`evaluate`] without changing its callers.

use crate::auth::Identity;
use crate::config::ConnectionConfig;

/// The answer to "may this identity use this connection?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, and why.
    Allow(String),
    /// Denied, and why.
    Deny(String),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Evaluates access of `who` to `conn`.
pub fn evaluate(who: &Identity, conn: &ConnectionConfig) -> Decision {
    if conn.allow_users.iter().any(|u| u == &who.user) {
        return Decision::Allow(format!("user {} is in allow_users", who.user));
    }
    if let Some(g) = who.groups.iter().find(|g| conn.allow_groups.contains(g)) {
        return Decision::Allow(format!("member of group {g}"));
    }
    Decision::Deny(format!(
        "{} is not allowed to use {}: it is open to {}",
        who.user,
        conn.name,
        describe_audience(conn)
    ))
}

fn describe_audience(conn: &ConnectionConfig) -> String {
    let mut parts = Vec::new();
    if !conn.allow_groups.is_empty() {
        parts.push(format!("groups {}", conn.allow_groups.join(", ")));
    }
    if !conn.allow_users.is_empty() {
        parts.push(format!("users {}", conn.allow_users.join(", ")));
    }
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionType;

    fn conn() -> ConnectionConfig {
        ConnectionConfig {
            name: "pg".into(),
            kind: ConnectionType::Postgres,
            host: "h".into(),
            port: None,
            database: "d".into(),
            user: "u".into(),
            password_env: Some("X".into()),
            password_file: None,
            allow_groups: vec!["engineering".into()],
            allow_users: vec!["carol".into()],
            description: None,
            tls: Default::default(),
            tls_ca_file: None,
            guardrails: Vec::new(),
            on_unparsable: Default::default(),
        }
    }

    fn who(user: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: user.into(),
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            issuer: "i".into(),
            expires_at: 0,
            kind: hoop_shared::api::IdentityKind::Person,
            matched_rule: None,
        }
    }

    #[test]
    fn groups_and_users_allow_everyone_else_is_denied_with_reason() {
        assert!(evaluate(&who("alice", &["engineering"]), &conn()).is_allowed());
        assert!(evaluate(&who("carol", &[]), &conn()).is_allowed());
        let Decision::Deny(why) = evaluate(&who("bob", &["sre"]), &conn()) else {
            panic!("bob must be denied");
        };
        assert!(why.contains("groups engineering"), "{why}");
    }
}
