//! Several brokers on one store: what each broker learns from the others.
//!
//! Everything a request needs twice lives in the store, so a request made
//! through broker A can be approved through B and used on A (docs/deploy.md).
//! Two things do not: the tunnels a broker carries (cancellation tokens in
//! [`Grants`]) and the policy it enforces ([`PolicyHolder`], kept in memory
//! so a decision never waits on the store). This task closes both gaps by
//! polling the store every `[cluster] poll_interval` (default 1s):
//!
//! - **Revocations.** Grants revoked at or after the previous poll (minus
//!   [`REVOCATION_OVERLAP`]) end their local tunnels, which tell the client
//!   why (FATAL "revoked"). `revoked_at` is whole seconds from the revoking
//!   broker's clock, so each window reaches back into the previous one: a
//!   revocation stamped in the last second before a poll is not missed, and
//!   clocks (NTP) may disagree by up to the overlap. [`Grants::revoke`] is idempotent, so seeing one twice is
//!   harmless; a tunnel opened after a revocation never starts (the tunnel
//!   reads the grant from the store).
//! - **Policy.** When the store holds a newer version than the one in force,
//!   it is parsed against this broker's names and installed, and the audit
//!   log says `policy.reload`. A version this broker's config cannot accept
//!   (a connection it lacks) keeps the old policy in force, logs an error and
//!   audits `policy.reload_failed`, once per version.
//!
//! A store error never stops the task: it is logged and the next tick tries
//! again from the same point (the revocation window only advances after a
//! successful read). The tick is [`ClusterSync::tick`], a plain function of
//! the store, the holder and the grants, so tests drive it without timers.

use std::sync::Arc;
use std::time::Duration;

use hoop_shared::policy::KnownNames;
use tokio_util::sync::CancellationToken;

use crate::app::{AppState, Grants, now_unix};
use crate::policy::PolicyHolder;
use crate::store::{Event, Store, StoreError};

/// Default `[cluster] poll_interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How far (seconds) each revocation query reaches back before the
/// previous one started: `revoked_at` is whole seconds, and brokers' clocks
/// differ a little.
pub const REVOCATION_OVERLAP: u64 = 1;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Grants revoked in the window (their local tunnels, if any, ended).
    pub revoked: Vec<String>,
    /// Audit events to write (`policy.reload`, `policy.reload_failed`).
    pub events: Vec<Event>,
}

/// One broker's view of the shared store between ticks.
#[derive(Debug)]
pub struct ClusterSync {
    known: KnownNames,
    /// Lower bound (Unix seconds) of the next revocation query.
    since: u64,
    /// A stored version this broker could not accept: not retried.
    refused: Option<u64>,
}

impl ClusterSync {
    /// A sync started at `now` (Unix seconds); `known` are the names this
    /// broker's config defines (for validating stored policies).
    pub fn new(known: KnownNames, now: u64) -> ClusterSync {
        ClusterSync {
            known,
            since: now.saturating_sub(REVOCATION_OVERLAP),
            refused: None,
        }
    }

    /// Reads revocations and the active policy version from `store`, ends
    /// the tunnels of revoked grants and installs a newer policy; `now` is
    /// the time this tick started. On an error, what was done stays done and
    /// the next tick reads the same revocation window again.
    pub async fn tick(
        &mut self,
        store: &Store,
        policy: &PolicyHolder,
        grants: &Grants,
        now: u64,
    ) -> Result<Tick, StoreError> {
        let mut tick = Tick::default();
        let revoked = store.revoked_since(self.since).await?;
        for id in &revoked {
            grants.revoke(id);
        }
        tick.revoked = revoked;
        self.since = now.saturating_sub(REVOCATION_OVERLAP);

        let Some(stored) = store.active_policy().await? else {
            return Ok(tick);
        };
        let current = policy.current().version;
        if stored.version <= current || self.refused == Some(stored.version) {
            return Ok(tick);
        }
        match crate::policy::from_stored(&stored, &self.known) {
            Ok(active) => {
                if policy.install_newer(active) {
                    tracing::info!(
                        version = stored.version,
                        previous = current,
                        applied_by = %stored.applied_by,
                        "policy applied through another broker is now in force here"
                    );
                    tick.events.push(event(
                        "policy.reload",
                        serde_json::json!({
                            "version": stored.version,
                            "previous": current,
                            "applied_by": stored.applied_by,
                        }),
                    ));
                }
            }
            Err(e) => {
                tracing::error!(
                    version = stored.version,
                    in_force = current,
                    "policy version {} (applied by {} through another broker) does not fit \
                     this broker's config; version {current} stays in force here:\n{e}",
                    stored.version,
                    stored.applied_by,
                );
                self.refused = Some(stored.version);
                tick.events.push(event(
                    "policy.reload_failed",
                    serde_json::json!({
                        "version": stored.version,
                        "in_force": current,
                        "errors": e.0,
                    }),
                ));
            }
        }
        Ok(tick)
    }
}

fn event(kind: &str, detail: serde_json::Value) -> Event {
    Event {
        at: now_unix(),
        kind: kind.to_owned(),
        user_name: None,
        connection: None,
        session_id: None,
        detail: detail.to_string(),
    }
}

/// Runs the sync every `interval` until `shutdown` is cancelled (spawned by
/// [`crate::app::Broker::run`]).
pub async fn run(state: Arc<AppState>, interval: Duration, shutdown: CancellationToken) {
    let sync = ClusterSync::new(crate::policy::known_names(&state.config), now_unix());
    let auditor = state.clone();
    drive(
        sync,
        &state.store,
        &state.policy,
        &state.grants,
        interval,
        shutdown,
        |e| {
            let auditor = auditor.clone();
            async move { auditor.audit(e).await }
        },
    )
    .await;
}

/// The loop of [`run`], with the audit sink given (tests collect events).
async fn drive<F, Fut>(
    mut sync: ClusterSync,
    store: &Store,
    policy: &PolicyHolder,
    grants: &Grants,
    interval: Duration,
    shutdown: CancellationToken,
    audit: F,
) where
    F: Fn(Event) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    // After a slow store, one tick, not a burst of them.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A store that hangs must not pile up ticks: each gets a deadline.
    let limit = interval.max(Duration::from_secs(5));
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let work = sync.tick(store, policy, grants, now_unix());
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(limit, work) => r,
        };
        match outcome {
            Ok(Ok(tick)) => {
                if failing {
                    tracing::info!("cluster sync reads the store again");
                    failing = false;
                }
                if !tick.revoked.is_empty() {
                    tracing::debug!(grants = ?tick.revoked, "revocations seen in the store");
                }
                for e in tick.events {
                    audit(e).await;
                }
            }
            // Logged once per outage, not once a tick.
            Ok(Err(e)) if !failing => {
                tracing::warn!("cluster sync cannot read the store (retrying): {e}");
                failing = true;
            }
            Err(_) if !failing => {
                tracing::warn!(
                    "cluster sync: the store did not answer within {limit:?} (retrying)"
                );
                failing = true;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RequestKind, RequestRow, RequestState};

    const V1: &str = "groups = [\"eng\", \"ops\"]\nadmins = [\"ops\"]\n\n\
        [[rules]]\nname = \"eng\"\nconnections = [\"pg\"]\ngroups = [\"eng\"]\naccess = \"allow\"\n";

    fn known() -> KnownNames {
        let mut k = KnownNames::default();
        k.connections.insert("pg".to_owned());
        k
    }

    /// Two handles on one SQLite file: two brokers sharing a store.
    struct Two {
        _dir: tempfile::TempDir,
        a: Store,
        b: Store,
    }

    async fn two() -> Two {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_sqlite(&dir.path().join("hoop.sqlite3")).unwrap();
        let b = Store::open_sqlite(&dir.path().join("hoop.sqlite3")).unwrap();
        a.apply_policy(None, V1.to_owned(), "bootstrap".into(), 100)
            .await
            .unwrap()
            .unwrap();
        Two { _dir: dir, a, b }
    }

    async fn holder(store: &Store) -> PolicyHolder {
        let v = store.active_policy().await.unwrap().unwrap();
        PolicyHolder::new(crate::policy::from_stored(&v, &known()).unwrap())
    }

    fn request(id: &str) -> RequestRow {
        RequestRow {
            id: id.to_owned(),
            subject: "dev:alice".into(),
            user_name: "alice".into(),
            connection: "pg".into(),
            reason: Some("INC-1".into()),
            duration_secs: 900,
            rule: "eng".into(),
            approvals_needed: 1,
            approvers_json: "{}".into(),
            state: RequestState::Approved,
            created_at: 100,
            expires_at: 4000,
            decided_at: Some(100),
            grant_ends_at: Some(5000),
            approvals: Vec::new(),
            kind: RequestKind::Access,
            statement: None,
            fingerprint: None,
            session_id: None,
            consumed_at: None,
        }
    }

    #[tokio::test]
    async fn a_grant_revoked_through_another_broker_ends_tunnels_here() {
        let t = two().await;
        let (policy, grants) = (holder(&t.a).await, Grants::default());
        let mut sync = ClusterSync::new(known(), 1000);
        t.b.insert_request(request("r1")).await.unwrap();
        t.b.insert_request(request("r2")).await.unwrap();
        // Broker A carries tunnels under both grants.
        let (tunnel1, tunnel2) = (grants.token("r1"), grants.token("r2"));

        let tick = sync.tick(&t.a, &policy, &grants, 1001).await.unwrap();
        assert_eq!(tick, Tick::default(), "nothing revoked yet");
        assert!(!tunnel1.is_cancelled());

        // Broker B revokes r1 (its own clock says 1001).
        t.b.transition("r1", RequestState::Approved, RequestState::Revoked, 1001)
            .await
            .unwrap()
            .unwrap();
        let tick = sync.tick(&t.a, &policy, &grants, 1002).await.unwrap();
        assert_eq!(tick.revoked, ["r1"]);
        assert!(tunnel1.is_cancelled(), "the tunnel under r1 ended on A");
        assert!(!tunnel2.is_cancelled(), "r2 still runs");

        // The overlap sees r1 again next tick: harmless (idempotent).
        let tick = sync.tick(&t.a, &policy, &grants, 1003).await.unwrap();
        assert_eq!(tick.revoked, ["r1"]);
        // A revocation stamped a second behind A's clock (B's clock is
        // slightly late) is still seen.
        t.b.transition("r2", RequestState::Approved, RequestState::Revoked, 1002)
            .await
            .unwrap()
            .unwrap();
        let tick = sync.tick(&t.a, &policy, &grants, 1004).await.unwrap();
        assert_eq!(tick.revoked, ["r2"]);
        assert!(tunnel2.is_cancelled());
        // Old revocations drop out of the window.
        let tick = sync.tick(&t.a, &policy, &grants, 1010).await.unwrap();
        assert!(tick.revoked.is_empty(), "{tick:?}");
    }

    #[tokio::test]
    async fn a_policy_applied_through_another_broker_is_installed_and_audited() {
        let t = two().await;
        let (policy, grants) = (holder(&t.a).await, Grants::default());
        let mut sync = ClusterSync::new(known(), 1000);
        let alice = crate::auth::Identity {
            subject: "dev:alice".into(),
            user: "alice".into(),
            groups: vec!["eng".into()],
            issuer: "i".into(),
            expires_at: 0,
            kind: hoop_shared::api::IdentityKind::Person,
            matched_rule: None,
        };
        let allowed = |p: &PolicyHolder| {
            matches!(
                p.decide(&alice, "pg").outcome,
                hoop_shared::policy::Outcome::Allow { .. }
            )
        };
        assert!(allowed(&policy));

        // Broker B applies version 2: eng is no longer allowed.
        let v2 = V1.replace("access = \"allow\"", "access = \"deny\"");
        t.b.apply_policy(Some(1), v2.clone(), "carol".into(), 1001)
            .await
            .unwrap()
            .unwrap();
        let tick = sync.tick(&t.a, &policy, &grants, 1001).await.unwrap();
        assert_eq!(policy.current().version, 2);
        assert_eq!(policy.current().applied_by, "carol");
        assert!(!allowed(&policy), "A enforces B's apply");
        let [e] = tick.events.as_slice() else {
            panic!("one event: {tick:?}")
        };
        assert_eq!(e.kind, "policy.reload");
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(detail["version"], 2);
        assert_eq!(detail["previous"], 1);
        assert_eq!(detail["applied_by"], "carol");

        // Nothing new: nothing installed, nothing audited.
        let tick = sync.tick(&t.a, &policy, &grants, 1002).await.unwrap();
        assert!(tick.events.is_empty(), "{tick:?}");

        // A stale install (the API handler racing the sync) cannot roll back.
        let v1 = crate::policy::from_stored(
            &crate::store::PolicyVersion {
                version: 1,
                text: V1.to_owned(),
                applied_by: "bootstrap".into(),
                applied_at: 100,
            },
            &known(),
        )
        .unwrap();
        assert!(!policy.install_newer(v1));
        assert_eq!(policy.current().version, 2);
    }

    #[tokio::test]
    async fn a_policy_this_broker_cannot_accept_keeps_the_old_one_and_says_so_once() {
        let t = two().await;
        let (policy, grants) = (holder(&t.a).await, Grants::default());
        let mut sync = ClusterSync::new(known(), 1000);
        // B knows a connection A does not (configs drifted apart).
        let v2 = V1.replace("[\"pg\"]", "[\"pg\", \"only-on-b\"]");
        t.b.apply_policy(Some(1), v2, "carol".into(), 1001)
            .await
            .unwrap()
            .unwrap();
        let tick = sync.tick(&t.a, &policy, &grants, 1001).await.unwrap();
        assert_eq!(policy.current().version, 1, "the old policy stays");
        let [e] = tick.events.as_slice() else {
            panic!("one event: {tick:?}")
        };
        assert_eq!(e.kind, "policy.reload_failed");
        assert!(e.detail.contains("only-on-b"), "{}", e.detail);
        let tick = sync.tick(&t.a, &policy, &grants, 1002).await.unwrap();
        assert!(tick.events.is_empty(), "reported once: {tick:?}");

        // A fixed version 3 is installed.
        t.b.apply_policy(
            Some(2),
            V1.replace("ops\"]\n", "ops\"]\n\n"),
            "carol".into(),
            1003,
        )
        .await
        .unwrap()
        .unwrap();
        let tick = sync.tick(&t.a, &policy, &grants, 1003).await.unwrap();
        assert_eq!(policy.current().version, 3);
        assert_eq!(tick.events.len(), 1);
    }

    #[tokio::test]
    async fn a_store_error_is_retried_from_the_same_window() {
        let t = two().await;
        let (policy, grants) = (holder(&t.a).await, Grants::default());
        let mut sync = ClusterSync::new(known(), 1000);
        t.b.insert_request(request("r1")).await.unwrap();
        let tunnel = grants.token("r1");
        t.b.transition("r1", RequestState::Approved, RequestState::Revoked, 1001)
            .await
            .unwrap()
            .unwrap();
        // A store that fails: a handle on a file whose table is gone.
        let dir = tempfile::tempdir().unwrap();
        let broken = Store::open_sqlite(&dir.path().join("hoop.sqlite3")).unwrap();
        {
            let c = rusqlite::Connection::open(dir.path().join("hoop.sqlite3")).unwrap();
            c.execute_batch("DROP TABLE approvals; DROP TABLE access_requests;")
                .unwrap();
        }
        assert!(sync.tick(&broken, &policy, &grants, 1050).await.is_err());
        // Much later, the real store answers: the window did not move.
        let tick = sync.tick(&t.a, &policy, &grants, 1100).await.unwrap();
        assert_eq!(tick.revoked, ["r1"]);
        assert!(tunnel.is_cancelled());
    }

    #[tokio::test]
    async fn the_loop_acts_on_its_own_ticks_and_stops_on_shutdown() {
        let t = two().await;
        let (policy, grants) = (holder(&t.a).await, Grants::default());
        t.b.insert_request(request("r1")).await.unwrap();
        let tunnel = grants.token("r1");
        let stop = CancellationToken::new();
        let (tx, mut audited) = tokio::sync::mpsc::unbounded_channel();
        let driver = drive(
            ClusterSync::new(known(), now_unix()),
            &t.a,
            &policy,
            &grants,
            Duration::from_millis(20),
            stop.clone(),
            |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            },
        );
        let through_b = async {
            t.b.transition(
                "r1",
                RequestState::Approved,
                RequestState::Revoked,
                now_unix(),
            )
            .await
            .unwrap()
            .unwrap();
            tunnel.cancelled().await;
            t.b.apply_policy(Some(1), format!("{V1}\n"), "carol".into(), now_unix())
                .await
                .unwrap()
                .unwrap();
            let e = audited.recv().await.unwrap();
            assert_eq!(e.kind, "policy.reload");
            assert_eq!(policy.current().version, 2);
            stop.cancel();
        };
        // Both finish: the revocation and the policy arrive by themselves,
        // and the loop returns once shutdown is cancelled.
        tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(driver, through_b)
        })
        .await
        .unwrap();
    }

    #[test]
    fn the_poll_interval_is_configured_within_bounds() {
        let config = |cluster: &str| {
            crate::config::Config::parse(
                std::path::Path::new("b.toml"),
                &format!(
                    "listen = \"127.0.0.1:0\"\ndata_dir = \"/tmp/x\"\n{cluster}\n[tls]\n\
                     self_signed = true\n[identity.builtin]\nusers = []\n"
                ),
            )
        };
        assert_eq!(config("").unwrap().cluster.poll_interval, None);
        let c = config("[cluster]\npoll_interval = \"250ms\"").unwrap();
        assert_eq!(c.cluster.poll_interval, Some(Duration::from_millis(250)));
        for bad in ["10ms", "5m"] {
            let e = config(&format!("[cluster]\npoll_interval = {bad:?}")).unwrap_err();
            assert!(e.0.contains("between 100ms and 60s"), "{e}");
        }
        let e = config("[cluster]\npoll = \"1s\"").unwrap_err();
        assert!(e.0.contains("unknown field"), "{e}");
    }
}
