//! Store tests on both backends: every behaviour is one async body run by
//! a `sqlite_*` and a `postgres_*` test (a throwaway PostgreSQL server
//! each). Beyond single-store behaviour: two stores on one database (two
//! brokers) racing approvals grant once, migrations run once however many
//! stores open at once, an old schema upgrades in place, and a PostgreSQL
//! store carries on after its connections are killed.

use std::time::{Duration, Instant};

use hoop_shared::Secret;
use hoop_shared::api::RequestState as Shown;

use super::*;
use crate::dev::postgres::ThrowawayPostgres;

/// Where a test's stores live; [`Backing::open`] opens one more store on it
/// (as another broker, or the same one restarted, would).
enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres {
        pg: ThrowawayPostgres,
        /// Without the password.
        url: String,
        password: Secret,
    },
}

impl Backing {
    fn sqlite() -> Backing {
        Backing::Sqlite(tempfile::tempdir().unwrap())
    }

    async fn postgres() -> Backing {
        let pg = ThrowawayPostgres::start().await.unwrap();
        let password = Secret::generate(24);
        pg.create_app_database("hoop", &password, "hoop")
            .await
            .unwrap();
        let url = format!("postgres://hoop@{}:{}/hoop", pg.host(), pg.port());
        Backing::Postgres { pg, url, password }
    }

    async fn open(&self) -> Store {
        match self {
            Backing::Sqlite(dir) => Store::open(&StoreConfig::default(), dir.path())
                .await
                .unwrap(),
            Backing::Postgres { url, password, .. } => {
                Store::connect_postgres(url, Some(password.clone()))
                    .await
                    .unwrap()
            }
        }
    }

    /// A plain client on the store's database (the app role).
    async fn pg_client(&self) -> tokio_postgres::Client {
        let Backing::Postgres { url, password, .. } = self else {
            panic!("not a PostgreSQL backing");
        };
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.password(password.expose());
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// The schema versions recorded, one entry per applied migration.
    async fn schema_versions(&self) -> Vec<i64> {
        match self {
            Backing::Sqlite(dir) => {
                let c = rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE)).unwrap();
                let v: i64 = c
                    .pragma_query_value(None, "user_version", |r| r.get(0))
                    .unwrap();
                (1..=v).collect()
            }
            Backing::Postgres { .. } => self
                .pg_client()
                .await
                .query("SELECT version FROM store_schema ORDER BY version", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| i64::from(r.get::<_, i32>(0)))
                .collect(),
        }
    }
}

/// Two `#[tokio::test]`s for one body: on SQLite and on PostgreSQL. The
/// body takes a fresh `Store`, or (`backing:`) the [`Backing`] to open
/// stores on.
macro_rules! on_both {
    (store: $body:ident => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let b = Backing::sqlite();
            $body(b.open().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let b = Backing::postgres().await;
            $body(b.open().await).await;
        }
    };
    (backing: $body:ident => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $body(&Backing::sqlite()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $body(&Backing::postgres().await).await;
        }
    };
}

fn request(id: &str, needed: u32) -> RequestRow {
    RequestRow {
        id: id.into(),
        subject: "dev:alice".into(),
        user_name: "alice".into(),
        connection: "pg".into(),
        reason: Some("INC-42".into()),
        duration_secs: 60,
        rule: "r".into(),
        approvals_needed: needed,
        approvers_json: "{}".into(),
        state: RequestState::Pending,
        created_at: 100,
        expires_at: 200,
        decided_at: None,
        grant_ends_at: None,
        approvals: Vec::new(),
        kind: RequestKind::Access,
        statement: None,
        fingerprint: None,
        session_id: None,
        consumed_at: None,
    }
}

fn review(id: &str) -> RequestRow {
    RequestRow {
        kind: RequestKind::Statement,
        statement: Some("DELETE FROM orders WHERE id = 1".into()),
        fingerprint: Some("fp1".into()),
        session_id: Some("s1".into()),
        ..request(id, 1)
    }
}

fn row(id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        subject: "dev:alice".into(),
        user_name: "alice".into(),
        connection: "demo-pg".into(),
        reason: Some("debugging".into()),
        secret_sha256: "00".repeat(32),
        created_at: 10,
        expires_at: 20,
        closed_at: None,
        request_id: None,
    }
}

async fn policy_versions_apply_only_on_top_of_the_expected_one(store: Store) {
    assert_eq!(store.active_policy().await.unwrap(), None);
    let v1 = store
        .apply_policy(None, "a".into(), "bootstrap".into(), 1)
        .await
        .unwrap();
    assert_eq!(v1, Some(1));
    // A writer that read version 0 (none) loses against the one that applied first.
    assert_eq!(
        store
            .apply_policy(None, "b".into(), "x".into(), 2)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .apply_policy(Some(1), "c".into(), "carol".into(), 3)
            .await
            .unwrap(),
        Some(2)
    );
    let active = store.active_policy().await.unwrap().unwrap();
    assert_eq!(
        (
            active.version,
            active.text.as_str(),
            active.applied_by.as_str()
        ),
        (2, "c", "carol")
    );
}
on_both!(store: policy_versions_apply_only_on_top_of_the_expected_one =>
    sqlite_policy_versions_apply_only_on_top_of_the_expected_one,
    postgres_policy_versions_apply_only_on_top_of_the_expected_one);

/// Many appliers that all read version 1 at once: exactly one lands.
async fn racing_policy_applies_land_once(b: &Backing) {
    let (x, y) = (b.open().await, b.open().await);
    x.apply_policy(None, "v1".into(), "bootstrap".into(), 1)
        .await
        .unwrap()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, store) in [x.clone(), y.clone()].into_iter().enumerate() {
        for t in 0..4 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .apply_policy(Some(1), format!("{n}.{t}"), "admin".into(), 2)
                    .await
                    .unwrap()
            });
        }
    }
    let applied: Vec<u64> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(applied, [2], "one apply on top of version 1");
    assert_eq!(y.active_policy().await.unwrap().unwrap().version, 2);
}
on_both!(backing: racing_policy_applies_land_once =>
    sqlite_racing_policy_applies_land_once, postgres_racing_policy_applies_land_once);

async fn an_approved_review_runs_once_and_only_within_its_window(store: Store) {
    store.insert_request(review("v1")).await.unwrap();
    // Pending: nothing to use yet, but it is found as the one to wait for.
    assert!(
        store
            .consume_review("dev:alice", "pg", "fp1", 110)
            .await
            .unwrap()
            .is_none()
    );
    let waiting = store.pending_review("dev:alice", "pg", "fp1", 110).await;
    assert_eq!(waiting.unwrap().unwrap().id, "v1");
    store
        .decide("v1", "bob", Decision::Approve, None, 120)
        .await
        .unwrap()
        .unwrap(); // the run window ends at 180
    // Another statement, another user, another connection: not covered.
    for (subject, conn, fp) in [
        ("dev:alice", "pg", "fp2"),
        ("dev:mallory", "pg", "fp1"),
        ("dev:alice", "other", "fp1"),
    ] {
        assert!(
            store
                .consume_review(subject, conn, fp, 130)
                .await
                .unwrap()
                .is_none()
        );
    }
    let used = store
        .consume_review("dev:alice", "pg", "fp1", 130)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((used.id.as_str(), used.consumed_at), ("v1", Some(130)));
    assert!(
        store
            .consume_review("dev:alice", "pg", "fp1", 131)
            .await
            .unwrap()
            .is_none(),
        "a second run needs a new review"
    );
    // An approval whose window has passed is not used.
    store.insert_request(review("v2")).await.unwrap();
    store
        .decide("v2", "bob", Decision::Approve, None, 140)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .consume_review("dev:alice", "pg", "fp1", 200)
            .await
            .unwrap()
            .is_none()
    );
}
on_both!(store: an_approved_review_runs_once_and_only_within_its_window =>
    sqlite_an_approved_review_runs_once_and_only_within_its_window,
    postgres_an_approved_review_runs_once_and_only_within_its_window);

/// Eight runs (on two stores, as two brokers) race for one approval; then
/// for two approvals of the same statement: each approval is used once.
async fn runs_racing_for_approvals_use_each_once(b: &Backing) {
    let (x, y) = (b.open().await, b.open().await);
    let race = |n: usize| {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = if i % 2 == 0 { x.clone() } else { y.clone() };
            tasks.spawn(async move {
                store
                    .consume_review("dev:alice", "pg", "fp1", 130 + n as u64)
                    .await
                    .unwrap()
                    .map(|r| r.id)
            });
        }
        tasks
    };
    x.insert_request(review("v")).await.unwrap();
    x.decide("v", "bob", Decision::Approve, None, 120)
        .await
        .unwrap()
        .unwrap();
    let used: Vec<String> = race(0).join_all().await.into_iter().flatten().collect();
    assert_eq!(used, ["v"]);

    for id in ["w1", "w2"] {
        y.insert_request(review(id)).await.unwrap();
        y.decide(id, "bob", Decision::Approve, None, 121)
            .await
            .unwrap()
            .unwrap();
    }
    let mut used: Vec<String> = race(1).join_all().await.into_iter().flatten().collect();
    used.sort();
    assert_eq!(used, ["w1", "w2"]);
}
on_both!(backing: runs_racing_for_approvals_use_each_once =>
    sqlite_runs_racing_for_approvals_use_each_once,
    postgres_runs_racing_for_approvals_use_each_once);

async fn n_of_m_approvals_grant_once_and_closed_requests_refuse_decisions(store: Store) {
    store.insert_request(request("r1", 2)).await.unwrap();
    let r = store
        .decide("r1", "bob", Decision::Approve, None, 110)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.state.as_str(), r.grant_ends_at), ("pending", None));
    assert_eq!(
        store
            .decide("r1", "bob", Decision::Approve, None, 111)
            .await
            .unwrap(),
        Err(DecideError::AlreadyDecided)
    );
    let r = store
        .decide("r1", "dave", Decision::Approve, Some("ok".into()), 120)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.state.as_str(), r.grant_ends_at), ("approved", Some(180)));
    assert_eq!(
        r.approvals,
        [
            ("bob".into(), Decision::Approve, None, 110),
            ("dave".into(), Decision::Approve, Some("ok".into()), 120)
        ]
    );
    assert_eq!(
        store
            .decide("r1", "erin", Decision::Approve, None, 121)
            .await
            .unwrap(),
        Err(DecideError::Closed(Shown::Approved))
    );
    // Past the deadline nobody can decide.
    store.insert_request(request("r2", 1)).await.unwrap();
    assert_eq!(
        store
            .decide("r2", "bob", Decision::Approve, None, 200)
            .await
            .unwrap(),
        Err(DecideError::Closed(Shown::Expired))
    );
    // Cancel only while pending; revoke only once approved.
    let r = store
        .transition("r2", RequestState::Pending, RequestState::Cancelled, 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.state, RequestState::Cancelled);
    assert_eq!(
        store
            .transition("r2", RequestState::Approved, RequestState::Revoked, 151)
            .await
            .unwrap(),
        Err(DecideError::Closed(Shown::Cancelled))
    );
    assert_eq!(
        store
            .transition("r1", RequestState::Approved, RequestState::Revoked, 151)
            .await
            .unwrap()
            .unwrap()
            .state,
        RequestState::Revoked
    );
    assert_eq!(
        store
            .decide("nope", "bob", Decision::Approve, None, 1)
            .await
            .unwrap(),
        Err(DecideError::Unknown)
    );
    assert_eq!(
        store
            .transition("nope", RequestState::Pending, RequestState::Cancelled, 1)
            .await
            .unwrap(),
        Err(DecideError::Unknown)
    );
    // A denial closes the request at once.
    store.insert_request(request("r3", 2)).await.unwrap();
    let r = store
        .decide("r3", "bob", Decision::Deny, None, 130)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.state.as_str(), r.decided_at), ("denied", Some(130)));
}
on_both!(store: n_of_m_approvals_grant_once_and_closed_requests_refuse_decisions =>
    sqlite_n_of_m_approvals_grant_once_and_closed_requests_refuse_decisions,
    postgres_n_of_m_approvals_grant_once_and_closed_requests_refuse_decisions);

async fn concurrent_approvers_never_double_grant(store: Store) {
    store.insert_request(request("r", 1)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for approver in ["a", "b", "c", "d", "e", "f"] {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .decide("r", approver, Decision::Approve, None, 150)
                .await
                .unwrap()
        });
    }
    let mut granted = 0;
    for row in tasks.join_all().await.into_iter().flatten() {
        assert_eq!(row.state, RequestState::Approved);
        granted += 1;
    }
    assert_eq!(
        granted, 1,
        "exactly one approval turns the request into a grant"
    );
    let r = store.request("r").await.unwrap().unwrap();
    assert_eq!(r.approvals.len(), 1);
}
on_both!(store: concurrent_approvers_never_double_grant =>
    sqlite_concurrent_approvers_never_double_grant,
    postgres_concurrent_approvers_never_double_grant);

/// Two stores on one database (two brokers), six approvers on each, all
/// at once: a 1-approval request is granted exactly once, and a
/// 3-approval one takes exactly three approvals, one of which grants it.
async fn two_stores_racing_decide_grant_exactly_once(b: &Backing) {
    let (x, y) = (b.open().await, b.open().await);
    x.insert_request(request("one", 1)).await.unwrap();
    y.insert_request(request("three", 3)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, store) in [x.clone(), y.clone()].into_iter().enumerate() {
        for t in 0..6 {
            let store = store.clone();
            tasks.spawn(async move {
                let approver = format!("approver-{n}-{t}");
                let one = store
                    .decide("one", &approver, Decision::Approve, None, 150)
                    .await
                    .unwrap();
                let three = store
                    .decide("three", &approver, Decision::Approve, None, 150)
                    .await
                    .unwrap();
                (one, three)
            });
        }
    }
    let results = tasks.join_all().await;
    let states = |pick: fn(&(Decided, Decided)) -> &Decided| {
        let mut recorded = 0;
        let mut granted = 0;
        for r in &results {
            match pick(r) {
                Ok(row) => {
                    recorded += 1;
                    granted += usize::from(row.state == RequestState::Approved);
                }
                Err(e) => assert_eq!(e, &DecideError::Closed(Shown::Approved)),
            }
        }
        (recorded, granted)
    };
    assert_eq!(states(|r| &r.0), (1, 1), "one approval, one grant");
    assert_eq!(states(|r| &r.1), (3, 1), "three approvals, one grant");
    for (id, approvals) in [("one", 1), ("three", 3)] {
        let r = y.request(id).await.unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.approvals.len()),
            ("approved", approvals)
        );
        assert_eq!(r.grant_ends_at, Some(210));
    }
}
on_both!(backing: two_stores_racing_decide_grant_exactly_once =>
    sqlite_two_stores_racing_decide_grant_exactly_once,
    postgres_two_stores_racing_decide_grant_exactly_once);

async fn each_expiry_is_claimed_once_and_only_while_undecided(store: Store) {
    store.insert_request(request("late", 1)).await.unwrap(); // expires at 200
    store.insert_request(request("decided", 1)).await.unwrap();
    store
        .decide("decided", "bob", Decision::Approve, None, 150)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .claim_expired_requests(199, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_expired_requests(200, 10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["late"]);
    assert!(
        store
            .claim_expired_requests(300, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
on_both!(store: each_expiry_is_claimed_once_and_only_while_undecided =>
    sqlite_each_expiry_is_claimed_once_and_only_while_undecided,
    postgres_each_expiry_is_claimed_once_and_only_while_undecided);

/// Twenty expired requests, claimed in small batches by eight claimers on
/// two stores at once: each is handed out exactly once.
async fn racing_claimers_hand_each_expiry_out_once(b: &Backing) {
    let (x, y) = (b.open().await, b.open().await);
    for i in 0..20 {
        x.insert_request(request(&format!("r{i:02}"), 1))
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { x.clone() } else { y.clone() };
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_expired_requests(300, 3).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|r| r.id));
            }
        });
    }
    let mut all: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
    all.sort();
    let want: Vec<String> = (0..20).map(|i| format!("r{i:02}")).collect();
    assert_eq!(all, want);
}
on_both!(backing: racing_claimers_hand_each_expiry_out_once =>
    sqlite_racing_claimers_hand_each_expiry_out_once,
    postgres_racing_claimers_hand_each_expiry_out_once);

async fn requests_list_by_owner_and_pending_newest_first(store: Store) {
    for (id, subject, at) in [
        ("a", "dev:alice", 100),
        ("b", "dev:bob", 110),
        ("c", "dev:alice", 120),
    ] {
        let mut r = request(id, 1);
        r.subject = subject.into();
        r.created_at = at;
        store.insert_request(r).await.unwrap();
    }
    store
        .decide("c", "carol", Decision::Approve, None, 150)
        .await
        .unwrap()
        .unwrap();
    let ids = |v: Vec<RequestRow>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.requests_of("dev:alice", 10).await.unwrap()),
        ["c", "a"]
    );
    assert_eq!(ids(store.requests_of("dev:alice", 1).await.unwrap()), ["c"]);
    assert_eq!(ids(store.pending_requests(10).await.unwrap()), ["b", "a"]);
    let c = store.request("c").await.unwrap().unwrap();
    assert_eq!(
        c.approvals,
        [("carol".into(), Decision::Approve, None, 150)]
    );
    assert_eq!(store.request("nope").await.unwrap(), None);
}
on_both!(store: requests_list_by_owner_and_pending_newest_first =>
    sqlite_requests_list_by_owner_and_pending_newest_first,
    postgres_requests_list_by_owner_and_pending_newest_first);

async fn sessions_survive_reopen_and_close_once(b: &Backing) {
    let store = b.open().await;
    store.insert_session(row("s1")).await.unwrap();
    assert!(
        store.insert_session(row("s1")).await.is_err(),
        "ids are unique"
    );
    drop(store);
    let store = b.open().await;
    assert_eq!(store.session("s1").await.unwrap(), Some(row("s1")));
    assert!(store.close_session("s1", 15).await.unwrap());
    assert!(!store.close_session("s1", 16).await.unwrap());
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().closed_at,
        Some(15)
    );
    assert_eq!(store.session("nope").await.unwrap(), None);
}
on_both!(backing: sessions_survive_reopen_and_close_once =>
    sqlite_sessions_survive_reopen_and_close_once,
    postgres_sessions_survive_reopen_and_close_once);

async fn sessions_list_newest_first_and_filter(store: Store) {
    for (id, user, conn, at) in [
        ("a", "alice", "pg", 10),
        ("b", "bob", "pg", 20),
        ("c", "alice", "ssh", 30),
    ] {
        let mut s = row(id);
        s.user_name = user.into();
        s.subject = format!("dev:{user}");
        s.connection = conn.into();
        s.created_at = at;
        store.insert_session(s).await.unwrap();
    }
    let ids = |v: Vec<SessionRow>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = SessionFilter {
        limit: 10,
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(all.clone()).await.unwrap()),
        ["c", "b", "a"]
    );
    let of = |f: SessionFilter| store.list_sessions(f);
    assert_eq!(
        ids(of(SessionFilter {
            user_name: Some("alice".into()),
            ..all.clone()
        })
        .await
        .unwrap()),
        ["c", "a"]
    );
    assert_eq!(
        ids(of(SessionFilter {
            subject: Some("dev:bob".into()),
            ..all.clone()
        })
        .await
        .unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(of(SessionFilter {
            connection: Some("pg".into()),
            since: Some(15),
            ..all.clone()
        })
        .await
        .unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(of(SessionFilter { limit: 1, ..all }).await.unwrap()),
        ["c"]
    );
}
on_both!(store: sessions_list_newest_first_and_filter =>
    sqlite_sessions_list_newest_first_and_filter,
    postgres_sessions_list_newest_first_and_filter);

async fn recordings_are_stored_per_session_and_replaced_by_name(store: Store) {
    store
        .put_recording("s1", "index.json", b"{}".to_vec(), 1)
        .await
        .unwrap();
    store
        .put_recording("s1", "0.cast", b"v1".to_vec(), 1)
        .await
        .unwrap();
    store
        .put_recording("s1", "0.cast", b"v2".to_vec(), 2)
        .await
        .unwrap();
    store
        .put_recording("s2", "0.cast", b"other".to_vec(), 2)
        .await
        .unwrap();
    // Bodies are bytes, not text.
    let binary: Vec<u8> = (0..=255).collect();
    store
        .put_recording("s2", "1.bin", binary.clone(), 3)
        .await
        .unwrap();
    assert_eq!(
        store.recording("s1", "0.cast").await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(store.recording("s2", "1.bin").await.unwrap(), Some(binary));
    assert_eq!(store.recording("s1", "1.cast").await.unwrap(), None);
    assert_eq!(
        store.recording_names("s1").await.unwrap(),
        ["0.cast", "index.json"]
    );
    assert!(store.recording_names("nope").await.unwrap().is_empty());
}
on_both!(store: recordings_are_stored_per_session_and_replaced_by_name =>
    sqlite_recordings_are_stored_per_session_and_replaced_by_name,
    postgres_recordings_are_stored_per_session_and_replaced_by_name);

async fn retention_prunes_recordings_written_before_the_cutoff(store: Store) {
    for (session, name, at) in [
        ("old", "0.cast", 10),
        ("old", "index.json", 20),
        ("new", "0.cast", 30),
    ] {
        store
            .put_recording(session, name, b"x".to_vec(), at)
            .await
            .unwrap();
    }
    assert_eq!(store.prune_recordings(20).await.unwrap(), 1);
    assert_eq!(store.recording_names("old").await.unwrap(), ["index.json"]);
    assert_eq!(store.prune_recordings(31).await.unwrap(), 2);
    assert!(store.recording_names("new").await.unwrap().is_empty());
    assert_eq!(store.prune_recordings(31).await.unwrap(), 0);
}
on_both!(store: retention_prunes_recordings_written_before_the_cutoff =>
    sqlite_retention_prunes_recordings_written_before_the_cutoff,
    postgres_retention_prunes_recordings_written_before_the_cutoff);

async fn revocations_are_listed_from_a_time_on(store: Store) {
    for id in ["r1", "r2", "r3"] {
        store.insert_request(request(id, 1)).await.unwrap();
        store
            .decide(id, "bob", Decision::Approve, None, 110)
            .await
            .unwrap()
            .unwrap();
    }
    store
        .transition("r2", RequestState::Approved, RequestState::Revoked, 120)
        .await
        .unwrap()
        .unwrap();
    store
        .transition("r1", RequestState::Approved, RequestState::Revoked, 130)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.revoked_since(0).await.unwrap(), ["r2", "r1"]);
    assert_eq!(store.revoked_since(121).await.unwrap(), ["r1"]);
    assert!(store.revoked_since(131).await.unwrap().is_empty());
}
on_both!(store: revocations_are_listed_from_a_time_on =>
    sqlite_revocations_are_listed_from_a_time_on,
    postgres_revocations_are_listed_from_a_time_on);

async fn events_append_in_order(store: Store) {
    for kind in ["a", "b", "c"] {
        store
            .append_event(Event {
                at: 1,
                kind: kind.into(),
                user_name: Some("alice".into()),
                connection: None,
                session_id: None,
                detail: String::new(),
            })
            .await
            .unwrap();
    }
    let events = store.recent_events(2).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["b", "c"]);
    assert_eq!(events.first().unwrap().user_name.as_deref(), Some("alice"));
}
on_both!(store: events_append_in_order =>
    sqlite_events_append_in_order, postgres_events_append_in_order);

/// Two stores opening a fresh database at once, then a third later: the
/// migrations ran once (one version entry each), and both first stores
/// work on the same data.
async fn migrations_run_once_however_many_open(b: &Backing) {
    let (x, y) = tokio::join!(b.open(), b.open());
    let known = i64::try_from(sqlite::MIGRATIONS.len()).unwrap();
    assert_eq!(b.schema_versions().await, (1..=known).collect::<Vec<_>>());
    x.apply_policy(None, "a".into(), "bootstrap".into(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(y.active_policy().await.unwrap().unwrap().text, "a");
    drop((x, y));
    let again = b.open().await;
    assert_eq!(again.active_policy().await.unwrap().unwrap().version, 1);
    assert_eq!(b.schema_versions().await, (1..=known).collect::<Vec<_>>());
}
on_both!(backing: migrations_run_once_however_many_open =>
    sqlite_migrations_run_once_however_many_open,
    postgres_migrations_run_once_however_many_open);

#[test]
fn both_backends_know_the_same_schema_versions() {
    assert_eq!(sqlite::MIGRATIONS.len(), postgres::MIGRATIONS.len());
}

/// A store as schema version 2 left it, holding one request from before
/// expiry notices and statement reviews existed.
const OLD_REQUEST: &str = "INSERT INTO access_requests (id, subject, user_name, connection,
    reason, duration_secs, rule, approvals_needed, approvers_json, state, created_at,
    expires_at) VALUES ('old', 's', 'u', 'pg', NULL, 60, 'r', 1, '{}', 'pending', 1, 2)";

async fn an_old_store_upgrades_and_keeps_its_requests_as_access_requests(store: Store) {
    let old = store.request("old").await.unwrap().unwrap();
    assert_eq!(old.kind, RequestKind::Access);
    assert_eq!(old.statement, None);
    // Already expired at upgrade: counts as announced (migration 3).
    assert!(
        store
            .claim_expired_requests(10, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_old_store_upgrades_and_keeps_its_requests_as_access_requests() {
    let b = Backing::sqlite();
    let Backing::Sqlite(dir) = &b else {
        unreachable!()
    };
    {
        let mut c = rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE)).unwrap();
        let tx = c.transaction().unwrap();
        for sql in sqlite::MIGRATIONS.iter().take(2) {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 2i64).unwrap();
        tx.execute(OLD_REQUEST, []).unwrap();
        tx.commit().unwrap();
    }
    an_old_store_upgrades_and_keeps_its_requests_as_access_requests(b.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_old_store_upgrades_and_keeps_its_requests_as_access_requests() {
    let b = Backing::postgres().await;
    {
        let mut c = b.pg_client().await;
        let tx = c.transaction().await.unwrap();
        tx.batch_execute("CREATE TABLE store_schema (version INTEGER NOT NULL)")
            .await
            .unwrap();
        for (i, sql) in postgres::MIGRATIONS.iter().take(2).enumerate() {
            tx.batch_execute(sql).await.unwrap();
            let v = i32::try_from(i + 1).unwrap();
            tx.execute("INSERT INTO store_schema (version) VALUES ($1)", &[&v])
                .await
                .unwrap();
        }
        tx.batch_execute(OLD_REQUEST).await.unwrap();
        tx.commit().await.unwrap();
    }
    an_old_store_upgrades_and_keeps_its_requests_as_access_requests(b.open().await).await;
    assert_eq!(b.schema_versions().await, [1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_newer_than_the_broker_is_refused_on_both() {
    let b = Backing::sqlite();
    let Backing::Sqlite(dir) = &b else {
        unreachable!()
    };
    drop(b.open().await);
    let c = rusqlite::Connection::open(dir.path().join(sqlite::DB_FILE)).unwrap();
    c.pragma_update(None, "user_version", 99i64).unwrap();
    let err = Store::open(&StoreConfig::default(), dir.path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );

    let b = Backing::postgres().await;
    drop(b.open().await);
    b.pg_client()
        .await
        .execute("INSERT INTO store_schema (version) VALUES (99)", &[])
        .await
        .unwrap();
    let Backing::Postgres { url, password, .. } = &b else {
        unreachable!()
    };
    let err = Store::connect_postgres(url, Some(password.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade the broker"));
}

/// Kills every connection of the store's pool (as a failover or a DBA
/// would); with `wait`, returns once the server has really ended them,
/// else at once (the store's next call may meet a dying connection).
async fn kill_store_connections(admin: &tokio_postgres::Client, wait: bool) {
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'hoop-broker store'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .filter(|r| r.get::<_, bool>(0))
        .count();
    assert!(killed >= 1, "the store had a connection to kill");
    if !wait {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                  WHERE application_name = 'hoop-broker store'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "backends still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A broker configured with `[store] url` + `password_file` carries on
/// when the database ends its connections: the very next call, read or
/// write, succeeds on a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_carries_on_after_its_connections_are_killed() {
    let b = Backing::postgres().await;
    let Backing::Postgres { url, password, pg } = &b else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("store-password");
    std::fs::write(&password_file, format!("{}\n", password.expose())).unwrap();
    let config: StoreConfig = toml::from_str(&format!(
        "url = \"{url}\"\npassword_file = \"{}\"",
        password_file.display()
    ))
    .unwrap();
    assert!(!format!("{config:?}").contains(password.expose()));
    let store = Store::open(&config, dir.path()).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    assert!(
        !dir.path().join(sqlite::DB_FILE).exists(),
        "no SQLite file when the store is PostgreSQL"
    );
    let admin = b.pg_client().await;

    store.insert_session(row("s1")).await.unwrap();
    kill_store_connections(&admin, true).await;
    assert_eq!(store.session("s1").await.unwrap(), Some(row("s1")));

    kill_store_connections(&admin, true).await;
    store.insert_session(row("s2")).await.unwrap();
    store.insert_request(request("r", 1)).await.unwrap();

    kill_store_connections(&admin, true).await;
    let granted = store
        .decide("r", "bob", Decision::Approve, None, 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(granted.state, RequestState::Approved);
    assert_eq!(
        store
            .list_sessions(SessionFilter {
                limit: 10,
                ..SessionFilter::default()
            })
            .await
            .unwrap()
            .len(),
        2,
        "nothing was lost or stored twice"
    );

    // Killed and called at once, before the pool can have noticed: the
    // call meets the dying connection and runs again on a fresh one.
    for i in 0..5 {
        kill_store_connections(&admin, false).await;
        store.insert_session(row(&format!("t{i}"))).await.unwrap();
        kill_store_connections(&admin, false).await;
        assert!(store.session(&format!("t{i}")).await.unwrap().is_some());
    }
    assert!(pg.pid().is_some());
}

/// A wrong password is reported as the server's refusal, and the password
/// itself appears nowhere in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_wrong_password_without_showing_it() {
    let b = Backing::postgres().await;
    let Backing::Postgres { url, .. } = &b else {
        unreachable!()
    };
    let wrong = Secret::new("not-the-password-xyzzy");
    let err = Store::connect_postgres(url, Some(wrong))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("28P01") || err.contains("password"), "{err}");
    assert!(!err.contains("xyzzy"), "{err}");
}

/// With `[store] url` on PostgreSQL and no `[audit] store`, the audit log
/// goes to the same database with the same credential: one place to back
/// up, and several brokers share one chain without more configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_takes_the_audit_log_along() {
    let b = Backing::postgres().await;
    let Backing::Postgres { url, password, .. } = &b else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("store-password");
    std::fs::write(&password_file, password.expose()).unwrap();
    let store: StoreConfig = toml::from_str(&format!(
        "url = \"{url}\"\npassword_file = \"{}\"",
        password_file.display()
    ))
    .unwrap();
    let log =
        crate::audit::AuditLog::open(&crate::config::AuditConfig::default(), &store, dir.path())
            .await
            .unwrap();
    log.append(crate::audit::NewRecord::now("test.event"))
        .await
        .unwrap();
    log.close().await;
    let records: i64 = b
        .pg_client()
        .await
        .query_one("SELECT COUNT(*) FROM audit_records", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(records, 1);
    assert!(!dir.path().join(sqlite::DB_FILE).exists());
}

/// A TCP relay to the database whose open connections can be made
/// silently dead: after [`Relay::cut`], a relayed connection looks alive to
/// the client until it sends something, and then closes without an answer
/// (as a connection through a failed-over load balancer or NAT does). New
/// connections are relayed normally.
struct Relay {
    port: u16,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    _tasks: tokio::task::JoinSet<()>,
}

impl Relay {
    async fn start(to: u16) -> Relay {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        let current = generation.clone();
        tasks.spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let mut server = tokio::net::TcpStream::connect(("127.0.0.1", to))
                    .await
                    .unwrap();
                let (mine, current) = (current.load(Ordering::SeqCst), current.clone());
                relays.spawn(async move {
                    let (mut a, mut b) = ([0u8; 8192], [0u8; 8192]);
                    loop {
                        tokio::select! {
                            n = client.read(&mut a) => {
                                let n = n.unwrap_or(0);
                                if n == 0 || current.load(Ordering::SeqCst) != mine {
                                    return; // cut: close both without answering
                                }
                                if server.write_all(&a[..n]).await.is_err() { return; }
                            }
                            n = server.read(&mut b) => {
                                let n = n.unwrap_or(0);
                                if n == 0 || client.write_all(&b[..n]).await.is_err() { return; }
                            }
                        }
                    }
                });
            }
        });
        Relay {
            port,
            generation,
            _tasks: tasks,
        }
    }

    fn cut(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A pooled connection that died without the client noticing: the call
/// that meets it (a read, a write, a decision) runs once more on a fresh
/// connection and succeeds, and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silently_dead_connection_is_retried_on_a_fresh_one() {
    let b = Backing::postgres().await;
    let Backing::Postgres { pg, password, .. } = &b else {
        unreachable!()
    };
    let relay = Relay::start(pg.port()).await;
    let url = format!(
        "postgres://hoop@127.0.0.1:{}/hoop?sslmode=disable",
        relay.port
    );
    let store = Store::connect_postgres(&url, Some(password.clone()))
        .await
        .unwrap();
    store.insert_session(row("s1")).await.unwrap();

    relay.cut();
    assert_eq!(store.session("s1").await.unwrap(), Some(row("s1")));
    relay.cut();
    store.insert_session(row("s2")).await.unwrap();
    store.insert_request(request("r", 1)).await.unwrap();
    relay.cut();
    let granted = store
        .decide("r", "bob", Decision::Approve, None, 150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(granted.approvals.len(), 1);
    let all = SessionFilter {
        limit: 10,
        ..SessionFilter::default()
    };
    assert_eq!(store.list_sessions(all).await.unwrap().len(), 2);
}
