//! Who may use which connection: the active policy, and decisions.
//!
//! The policy document format, its validation and the decision function live
//! in [`hoop_shared::policy`] (hoopctl validates and diffs with the same code).
//! This module keeps the *active* policy: the newest version in the store,
//! seeded at first start from `policy_file` or, without one, from each
//! connection's `allow_groups`/`allow_users` (one `allow` rule per
//! connection, written out as a real document so `hoopctl policy get` shows
//! it). Decisions are made here for the API, the tunnel and the proxies, so
//! they all agree.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use hoop_shared::policy::{Decision, KnownNames, Policy, PolicyDocument, Subject};

use crate::auth::Identity;
use crate::config::Config;
use crate::store::Store;

/// The policy in force.
#[derive(Debug, Clone)]
pub struct ActivePolicy {
    /// Store version.
    pub version: u64,
    /// The document text.
    pub text: String,
    /// The validated policy.
    pub policy: Policy,
    /// Who applied it.
    pub applied_by: String,
    /// When, Unix seconds.
    pub applied_at: u64,
}

/// Holds the active policy; readers get a snapshot, `apply` swaps it.
#[derive(Debug)]
pub struct PolicyHolder {
    current: RwLock<Arc<ActivePolicy>>,
}

impl PolicyHolder {
    /// Holds `active`.
    pub fn new(active: ActivePolicy) -> Self {
        PolicyHolder {
            current: RwLock::new(Arc::new(active)),
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<ActivePolicy> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `active` the policy in force.
    pub fn replace(&self, active: ActivePolicy) {
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(active),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(active),
        }
    }

    /// The decision for `who` on `connection`, now.
    pub fn decide(&self, who: &Identity, connection: &str) -> Decision {
        self.current()
            .policy
            .evaluate(&subject(who), connection, jiff::Timestamp::now())
    }
}

/// The policy's view of an identity.
pub fn subject(who: &Identity) -> Subject {
    Subject {
        user: who.user.clone(),
        groups: who.groups.clone(),
        workload: who.kind == hoop_shared::api::IdentityKind::Workload,
    }
}

/// Names a policy may refer to, from the broker config.
pub fn known_names(config: &Config) -> KnownNames {
    let mut known = KnownNames {
        connections: config
            .connections
            .iter()
            .map(|c| c.get_ref().name.clone())
            .collect(),
        ..KnownNames::default()
    };
    if let Some(builtin) = &config.identity.builtin {
        for u in &builtin.users {
            known.groups.extend(u.get_ref().groups.iter().cloned());
        }
    }
    for w in &config.identity.workload {
        for r in &w.get_ref().rules {
            known.services.insert(r.get_ref().service.clone());
            known.groups.extend(r.get_ref().groups.iter().cloned());
        }
    }
    known.guardrails.insert("no-destructive".to_owned());
    for c in &config.connections {
        known
            .guardrails
            .extend(c.get_ref().guardrails.iter().cloned());
    }
    known
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| toml::Value::String(i.clone()).to_string())
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// A policy document equivalent to the connections' `allow_groups` and
/// `allow_users`.
pub fn synthesize(config: &Config) -> String {
    let mut groups = BTreeSet::new();
    for c in &config.connections {
        groups.extend(c.get_ref().allow_groups.iter().cloned());
    }
    let groups: Vec<String> = groups.into_iter().collect();
    let mut text = format!(
        "# Generated from the connections' allow_groups/allow_users at first start.\n\
         # Change it with `hoopctl policy apply -f FILE` (see docs/policy.md).\n\
         groups = {}\nadmins = []\n",
        toml_list(&groups)
    );
    for c in &config.connections {
        let c = c.get_ref();
        if c.allow_groups.is_empty() && c.allow_users.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "\n[[rules]]\nname = {}\nconnections = {}\n",
            toml::Value::String(format!("{}-allow", c.name)),
            toml_list(std::slice::from_ref(&c.name)),
        ));
        if !c.allow_groups.is_empty() {
            text.push_str(&format!("groups = {}\n", toml_list(&c.allow_groups)));
        }
        if !c.allow_users.is_empty() {
            text.push_str(&format!("users = {}\n", toml_list(&c.allow_users)));
        }
        text.push_str("access = \"allow\"\n");
        if !c.guardrails.is_empty() {
            text.push_str(&format!("guardrails = {}\n", toml_list(&c.guardrails)));
        }
    }
    text
}

/// Loads the policy in force at startup (see the module docs).
pub async fn load_active(config: &Config, store: &Store) -> anyhow::Result<ActivePolicy> {
    let known = known_names(config);
    let from_file = match &config.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("policy_file {}", path.display()))?;
            let label = path.display().to_string();
            let policy = PolicyDocument::parse(&label, &text, &known)
                .map_err(|e| anyhow::anyhow!("policy_file is not valid:\n{e}"))?;
            Some((text, policy))
        }
        None => None,
    };
    let stored = store.active_policy().await?;
    if let Some(v) = &stored {
        let label = format!("stored policy version {}", v.version);
        match PolicyDocument::parse(&label, &v.text, &known) {
            Ok(policy) => {
                if let Some((text, _)) = &from_file
                    && text != &v.text
                {
                    tracing::warn!(
                        version = v.version,
                        applied_by = %v.applied_by,
                        "policy_file differs from the active policy; the active one stays in force \
                         (apply the file with `hoopctl policy apply -f`)"
                    );
                }
                return Ok(ActivePolicy {
                    version: v.version,
                    text: v.text.clone(),
                    policy,
                    applied_by: v.applied_by.clone(),
                    applied_at: v.applied_at,
                });
            }
            Err(e) if from_file.is_none() => {
                anyhow::bail!(
                    "the active policy (version {}) no longer fits this config:\n{e}\n\
                     Set policy_file to a corrected policy; it replaces the stored one at start.",
                    v.version
                );
            }
            Err(e) => {
                tracing::warn!(
                    "the active policy (version {}) no longer fits this config; replacing it \
                     with policy_file:\n{e}",
                    v.version
                );
            }
        }
    }
    let (text, policy, by) = match from_file {
        Some((text, policy)) => (text, policy, "policy_file"),
        None => {
            let text = synthesize(config);
            let policy = PolicyDocument::parse("generated policy", &text, &known)
                .map_err(|e| anyhow::anyhow!("generated policy is not valid (a bug):\n{e}"))?;
            (text, policy, "bootstrap")
        }
    };
    let at = crate::app::now_unix();
    let version = store
        .apply_policy(stored.map(|v| v.version), text.clone(), by.to_owned(), at)
        .await?
        .context("another broker changed the policy during startup; start again")?;
    Ok(ActivePolicy {
        version,
        text,
        policy,
        applied_by: by.to_owned(),
        applied_at: at,
    })
}

/// A unified diff between two policy texts (empty when equal).
pub fn diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::policy::Outcome;

    const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "/tmp/x"
[tls]
self_signed = true
[identity.builtin]
users = [{ name = "alice", groups = ["engineering"] }, { name = "bob", groups = ["sre"] }]
[[connections]]
name = "pg"
type = "postgres"
host = "127.0.0.1"
database = "d"
user = "u"
password_env = "X"
allow_groups = ["engineering"]
allow_users = ["carol"]
"#;

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

    #[tokio::test]
    async fn bootstrap_turns_allow_lists_into_a_stored_policy_document() {
        let config = Config::parse(std::path::Path::new("b.toml"), CONFIG).unwrap();
        let store = Store::in_memory().unwrap();
        let active = load_active(&config, &store).await.unwrap();
        assert_eq!(
            (active.version, active.applied_by.as_str()),
            (1, "bootstrap")
        );
        assert!(
            active.text.contains("name = \"pg-allow\""),
            "{}",
            active.text
        );
        let holder = PolicyHolder::new(active);
        let d = holder.decide(&who("alice", &["engineering"]), "pg");
        assert!(matches!(d.outcome, Outcome::Allow { .. }), "{d:?}");
        assert_eq!(d.rule.as_deref(), Some("pg-allow"));
        assert!(matches!(
            holder.decide(&who("carol", &[]), "pg").outcome,
            Outcome::Allow { .. }
        ));
        let d = holder.decide(&who("bob", &["sre"]), "pg");
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.explanation.contains("default deny"), "{}", d.explanation);
        // A restart keeps the stored version instead of generating another.
        assert_eq!(load_active(&config, &store).await.unwrap().version, 1);
    }

    #[test]
    fn diff_is_unified_and_empty_when_equal() {
        assert_eq!(diff("a\n", "a\n", "x", "y"), "");
        let d = diff("a\nb\n", "a\nc\n", "active", "new");
        assert!(d.contains("--- active") && d.contains("+++ new"), "{d}");
        assert!(d.contains("-b\n") && d.contains("+c\n"), "{d}");
    }
}
