//! Who may use which connection: the active policy, and decisions.
//!
//! The policy document format, its validation and the decision function live
//! in [`hoop_shared::policy`] (hoopctl validates and diffs with the same code).
//! This module keeps the *active* policy: the newest version in the store,
//! seeded at first start from `policy_file` (one file, or a directory of
//! `*.toml` files) or, without one, from each connection's
//! `allow_groups`/`allow_users` (one `allow` rule per connection, written
//! out as a real document so `hoopctl policy get` shows it). Decisions are
//! made here for the API, the tunnel and the proxies, so they all agree.
//!
//! A policy version is one store row whatever its shape: a one-file document
//! is stored as its text, exactly as before directories existed; a directory
//! as JSON, `{"hoop_policy_files":1,"files":[{"name":..,"text":..},..]}`
//! (see [`encode`]). No TOML document starts with `{`, so the two cannot be
//! confused, and both round-trip to what was applied, byte for byte.

// Documents and requests come from anyone who can reach the API.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use hoop_shared::policy::{
    Decision, KnownNames, Policy, PolicyDocument, PolicyFile, PolicySource, Subject,
};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::config::Config;
use crate::store::{PolicyVersion, Store};

/// The policy in force.
#[derive(Debug, Clone)]
pub struct ActivePolicy {
    /// Store version.
    pub version: u64,
    /// The document as applied.
    pub source: PolicySource,
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

    /// Makes `active` the policy in force unless a version at least as new
    /// already is; true when it was installed. With several brokers on one
    /// store, the API handler that applied version N and the sync task that
    /// read N+1 from another broker may install in either order: the
    /// newer one must win.
    pub fn install_newer(&self, active: ActivePolicy) -> bool {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if active.version <= guard.version {
            return false;
        }
        *guard = Arc::new(active);
        true
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
    known.guardrails.extend(
        config
            .guardrail_sets
            .iter()
            .map(|s| s.get_ref().name.clone()),
    );
    known
        .masking
        .extend(config.masking_sets.iter().map(|m| m.get_ref().name.clone()));
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

/// The stored form of a policy kept as several files.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFiles {
    /// Marks (and versions) this representation.
    hoop_policy_files: u32,
    /// The files, in name order.
    files: Vec<PolicyFile>,
}

/// The store's text for `source` (see the module docs).
pub fn encode(source: &PolicySource) -> String {
    match source {
        PolicySource::Single(text) => text.clone(),
        PolicySource::Files(files) => {
            let files: Vec<serde_json::Value> = files
                .iter()
                .map(|f| serde_json::json!({ "name": f.name, "text": f.text }))
                .collect();
            serde_json::json!({ "hoop_policy_files": 1, "files": files }).to_string()
        }
    }
}

/// The document behind a store text written by [`encode`].
pub fn decode(stored: &str) -> PolicySource {
    if stored.starts_with('{')
        && let Ok(s) = serde_json::from_str::<StoredFiles>(stored)
        && s.hoop_policy_files == 1
    {
        return PolicySource::Files(s.files);
    }
    PolicySource::Single(stored.to_owned())
}

/// Reads `policy_file`: one TOML file, or a directory whose `*.toml` files
/// (sorted by name) make up the document.
pub fn read_policy_file(path: &std::path::Path) -> anyhow::Result<PolicySource> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("policy_file {}", path.display()))?;
    if meta.is_dir() {
        hoop_shared::policy::read_dir(path).context("policy_file")
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("policy_file {}", path.display()))?;
        Ok(PolicySource::Single(text))
    }
}

/// The active policy a stored version describes, validated against this
/// broker's names: at startup, and when another broker sharing the store
/// applied a newer version ([`crate::cluster`]).
pub fn from_stored(
    stored: &PolicyVersion,
    known: &KnownNames,
) -> Result<ActivePolicy, hoop_shared::policy::PolicyErrors> {
    let label = format!("stored policy version {}", stored.version);
    let source = decode(&stored.text);
    let policy = source.parse(Some(&label), known)?;
    Ok(ActivePolicy {
        version: stored.version,
        source,
        policy,
        applied_by: stored.applied_by.clone(),
        applied_at: stored.applied_at,
    })
}

/// Loads the policy in force at startup (see the module docs).
pub async fn load_active(config: &Config, store: &Store) -> anyhow::Result<ActivePolicy> {
    let known = known_names(config);
    let from_file = match &config.policy_file {
        Some(path) => {
            let source = read_policy_file(path)?;
            let label = path.display().to_string();
            let policy = source
                .parse(Some(&label), &known)
                .map_err(|e| anyhow::anyhow!("policy_file is not valid:\n{e}"))?;
            Some((source, policy))
        }
        None => None,
    };
    let stored = store.active_policy().await?;
    if let Some(v) = &stored {
        match from_stored(v, &known) {
            Ok(active) => {
                if let Some((file, _)) = &from_file
                    && encode(file) != v.text
                {
                    tracing::warn!(
                        version = v.version,
                        applied_by = %v.applied_by,
                        "policy_file differs from the active policy; the active one stays in force \
                         (apply the file with `hoopctl policy apply -f`)"
                    );
                }
                return Ok(active);
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
    let (source, policy, by) = match from_file {
        Some((source, policy)) => (source, policy, "policy_file"),
        None => {
            let text = synthesize(config);
            let policy = PolicyDocument::parse("generated policy", &text, &known)
                .map_err(|e| anyhow::anyhow!("generated policy is not valid (a bug):\n{e}"))?;
            (PolicySource::Single(text), policy, "bootstrap")
        }
    };
    let at = crate::app::now_unix();
    let version = store
        .apply_policy(
            stored.map(|v| v.version),
            encode(&source),
            by.to_owned(),
            at,
        )
        .await?
        .context("another broker changed the policy during startup; start again")?;
    Ok(ActivePolicy {
        version,
        source,
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

/// What applying `new` over `old` (store version `old_version`) changes, as
/// a unified diff; empty when nothing does. Two one-file documents diff as
/// they always did (`--- active (version N)` / `+++ NEW_LABEL`). Otherwise
/// the diff goes file by file in name order (a one-file document counts as
/// one file named `policy.toml`), each changed file under its own
/// `--- NAME (version N)` / `+++ NAME` headers, and a file present on one
/// side only diffed against `/dev/null`.
pub fn diff_sources(
    old: &PolicySource,
    old_version: u64,
    new: &PolicySource,
    new_label: &str,
) -> String {
    if let (PolicySource::Single(a), PolicySource::Single(b)) = (old, new) {
        return diff(a, b, &format!("active (version {old_version})"), new_label);
    }
    let old_files: std::collections::BTreeMap<&str, &str> = old.named_files().into_iter().collect();
    let new_files: std::collections::BTreeMap<&str, &str> = new.named_files().into_iter().collect();
    let names: BTreeSet<&str> = old_files.keys().chain(new_files.keys()).copied().collect();
    let mut out = String::new();
    for name in names {
        let (a, b) = (old_files.get(name), new_files.get(name));
        if a == b {
            continue;
        }
        let old_label = match a {
            Some(_) => format!("{name} (version {old_version})"),
            None => "/dev/null".to_owned(),
        };
        let new_label = match b {
            Some(_) => name.to_owned(),
            None => "/dev/null".to_owned(),
        };
        let text = diff(
            a.copied().unwrap_or_default(),
            b.copied().unwrap_or_default(),
            &old_label,
            &new_label,
        );
        if text.is_empty() {
            // An empty file appeared or went: no lines, but a change.
            out.push_str(&format!("--- {old_label}\n+++ {new_label}\n"));
        } else {
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
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
        let PolicySource::Single(text) = &active.source else {
            panic!("{:?}", active.source)
        };
        assert!(text.contains("name = \"pg-allow\""), "{text}");
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

    fn two_files(team: &str) -> PolicySource {
        PolicySource::files(vec![
            PolicyFile {
                name: "10-base.toml".into(),
                text: "groups = [\"engineering\", \"sre\"]\nadmins = [\"sre\"]\n".into(),
            },
            PolicyFile {
                name: "20-team.toml".into(),
                text: team.into(),
            },
        ])
        .unwrap()
    }

    const TEAM: &str = "[[rules]]\nname = \"eng\"\nconnections = [\"pg\"]\n\
                        groups = [\"engineering\"]\naccess = \"allow\"\n";

    #[test]
    fn stored_text_round_trips_and_single_files_stay_as_they_were() {
        let single = PolicySource::Single("groups = []\n".into());
        assert_eq!(encode(&single), "groups = []\n");
        assert_eq!(decode(&encode(&single)), single);
        let files = two_files(TEAM);
        let stored = encode(&files);
        assert!(
            stored.starts_with('{') && stored.contains("\"hoop_policy_files\":1"),
            "{stored}"
        );
        assert_eq!(decode(&stored), files);
        // A stored text written before directories existed reads as one file.
        assert_eq!(
            decode("# old\ngroups = []\n"),
            PolicySource::Single("# old\ngroups = []\n".into())
        );
    }

    #[test]
    fn diffs_go_file_by_file() {
        let old = two_files(TEAM);
        assert_eq!(diff_sources(&old, 3, &old, "policy.d"), "");
        let new = two_files(&TEAM.replace("\"allow\"", "\"deny\""));
        let d = diff_sources(&old, 3, &new, "policy.d");
        assert!(
            d.starts_with("--- 20-team.toml (version 3)\n+++ 20-team.toml\n"),
            "{d}"
        );
        assert!(
            d.contains("-access = \"allow\"\n+access = \"deny\"\n"),
            "{d}"
        );
        assert!(
            !d.contains("10-base.toml"),
            "unchanged files are left out: {d}"
        );
        // From one file to a directory: the old file goes, the new ones come.
        let single = PolicySource::Single("groups = []\n".into());
        let d = diff_sources(&single, 1, &old, "policy.d");
        assert!(
            d.contains("--- /dev/null\n+++ 10-base.toml\n")
                && d.contains("--- /dev/null\n+++ 20-team.toml\n")
                && d.contains("--- policy.toml (version 1)\n+++ /dev/null\n"),
            "{d}"
        );
        // One file to one file: as it always was.
        let d = diff_sources(
            &single,
            1,
            &PolicySource::Single("groups = [\"x\"]\n".into()),
            "p.toml",
        );
        assert!(d.starts_with("--- active (version 1)\n+++ p.toml\n"), "{d}");
    }

    #[tokio::test]
    async fn a_policy_directory_seeds_the_store_as_one_version() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("policy.d");
        std::fs::create_dir(&dir).unwrap();
        let with_dir = |dir: &std::path::Path| {
            Config::parse(
                std::path::Path::new("b.toml"),
                &CONFIG.replace(
                    "data_dir = \"/tmp/x\"\n",
                    &format!(
                        "data_dir = \"/tmp/x\"\npolicy_file = {:?}\n",
                        dir.display().to_string()
                    ),
                ),
            )
            .unwrap()
        };
        let store = Store::in_memory().unwrap();
        let e = format!(
            "{:#}",
            load_active(&with_dir(&dir), &store).await.unwrap_err()
        );
        assert!(e.contains("holds no *.toml files"), "{e}");

        for f in two_files(TEAM).named_files() {
            std::fs::write(dir.join(f.0), f.1).unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "not policy").unwrap();
        let active = load_active(&with_dir(&dir), &store).await.unwrap();
        assert_eq!(
            (active.version, active.source.clone()),
            (1, two_files(TEAM))
        );
        let d = PolicyHolder::new(active).decide(&who("alice", &["engineering"]), "pg");
        assert_eq!(d.rule.as_deref(), Some("eng"));
        // One store row, read back as the same files after a restart.
        let stored = store.active_policy().await.unwrap().unwrap();
        assert_eq!(decode(&stored.text), two_files(TEAM));
        let again = load_active(&with_dir(&dir), &store).await.unwrap();
        assert_eq!((again.version, again.source), (1, two_files(TEAM)));

        // An invalid directory names the file and position.
        std::fs::write(dir.join("30-dup.toml"), TEAM).unwrap();
        let fresh = Store::in_memory().unwrap();
        let e = format!(
            "{:#}",
            load_active(&with_dir(&dir), &fresh).await.unwrap_err()
        );
        assert!(
            e.contains("30-dup.toml:2:8: rule \"eng\" is defined twice: first at")
                && e.contains("20-team.toml:2:8"),
            "{e}"
        );
    }
}
