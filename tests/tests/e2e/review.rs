//! Query review end to end (hoopctl → TLS tunnel → broker → PostgreSQL, real
//! psql and `hoopctl exec`): a `DELETE` on `orders` that a `review` rule
//! matches is held (the row stays), the requester cannot approve it, another
//! user (bob, in `sre`) approves it with `hoopctl approve`, and then exactly
//! that statement runs once; running it again, or any other statement, needs
//! a new review. `hoopctl exec --wait` waits for the decision and runs it.

use std::io::BufRead as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_e2e::*;

/// The review set of the tests: writes to `orders` wait for `sre`.
const REVIEW_SET: &str = "guardrail_sets = [{ name = \"orders-review\", rule = [{ \
     name = \"orders-writes\", kinds = [\"delete\", \"update\"], relations = [\"orders\"], \
     action = \"review\", approvers = { groups = [\"sre\"] } }] }]";

/// A demo database, a broker whose `demo-pg` has `no-destructive` and the
/// review set, alice logged in, and bob (sre) logged in. The returned dir
/// holds the password file and must outlive the broker.
fn setup() -> (DemoDb, BrokerProcess, User, User, tempfile::TempDir) {
    let (db, broker, dir) = start_demo_broker(
        "guardrails = [\"no-destructive\", \"orders-review\"]",
        REVIEW_SET,
    );
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();
    (db, broker, alice, bob, dir)
}

/// A single value of `sql` run as the superuser, straight at the server.
fn value(db: &DemoDb, sql: &str) -> Option<String> {
    db.rt.block_on(async {
        let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser("demo"))
            .await
            .unwrap();
        let rows = c.simple_query(sql).await.unwrap();
        c.close().await;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten()
    })
}

fn order_exists(db: &DemoDb, id: u32) -> bool {
    value(db, &format!("select count(*) from orders where id = {id}")).as_deref() == Some("1")
}

fn psql(user: &User, sql: &str) -> Run {
    user.run(&["connect", "demo-pg", "--", "psql", "-X", "-c", sql])
}

/// The review request id in an error (`... review request ID (...)`).
fn review_id(text: &str) -> String {
    let at = text
        .find("review request ")
        .unwrap_or_else(|| panic!("no review request in {text}"));
    text[at + "review request ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect()
}

#[test]
fn a_held_delete_runs_once_after_another_user_approves_it() {
    let (db, broker, alice, bob, _dir) = setup();
    const SQL: &str = "DELETE FROM orders WHERE id = 1";
    assert!(order_exists(&db, 1));

    // Held: not forwarded; the error names the request and how to follow it.
    let r = psql(&alice, SQL);
    assert!(!r.status.success(), "{r:#?}");
    assert!(
        r.stderr.contains(
            "hoop: DELETE on connection \"demo-pg\" is held for review by guardrail \
             \"orders-review\" rule \"orders-writes\": review request"
        ),
        "{r:#?}"
    );
    assert!(r.stderr.contains("hoopctl requests show"), "{r:#?}");
    let id = review_id(&r.stderr);
    assert_eq!(id.len(), 36, "{id}");
    assert!(order_exists(&db, 1), "a held statement ran");

    // Running it again while it waits names the same request.
    let r = psql(&alice, "delete from orders where id = 1 -- again");
    assert!(
        r.stderr.contains(&id) && r.stderr.contains("still pending"),
        "{r:#?}"
    );

    // The requester cannot approve their own review.
    let r = alice.run(&["approve", &id]);
    assert!(!r.status.success(), "{r:#?}");
    assert!(r.stderr.contains("cannot approve their own"), "{r:#?}");

    // The approver sees it with its SQL.
    let r = bob.run(&["approve", "list"]);
    r.assert_ok();
    assert!(r.stdout.contains(&id), "{r:#?}");
    assert!(
        r.stdout.contains("SQL: DELETE FROM orders WHERE id = 1"),
        "{r:#?}"
    );
    let r = bob.run(&["requests", "show", &id]);
    r.assert_ok();
    assert!(r.stdout.contains("statement review"), "{r:#?}");

    let r = bob.run(&["approve", &id]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("alice may run this statement once on demo-pg"),
        "{r:#?}"
    );

    // Another statement is not covered by the approval.
    let r = psql(&alice, "DELETE FROM orders WHERE id = 2");
    assert!(r.stderr.contains("held for review"), "{r:#?}");
    assert_ne!(review_id(&r.stderr), id);
    assert!(order_exists(&db, 2));

    // The approved statement runs, once (whitespace and case do not matter).
    let r = psql(&alice, "delete   from ORDERS where id = 1");
    r.assert_ok();
    assert!(r.stdout.contains("DELETE 1"), "{r:#?}");
    assert!(!order_exists(&db, 1), "the approved statement did not run");

    // A second run needs a new review.
    let r = psql(&alice, SQL);
    assert!(r.stderr.contains("held for review"), "{r:#?}");
    let second = review_id(&r.stderr);
    assert_ne!(second, id, "{r:#?}");
    let r = alice.run(&["requests", "show", &id]);
    r.assert_ok();
    assert!(r.stdout.contains("Ran"), "{r:#?}");

    let log = broker.log();
    assert!(log.contains("statement held for review"), "{log}");
    assert!(log.contains("approved statement runs"), "{log}");
}

#[test]
fn exec_waits_for_the_review_and_then_runs_the_statement() {
    let (db, _broker, alice, bob, _dir) = setup();
    const SQL: &str = "UPDATE orders SET status = 'reviewed' WHERE id = 3";

    // Without --wait: exit 3 with the review id on stdout, nothing ran.
    let r = alice.run(&["exec", "demo-pg", "-c", SQL]);
    assert_eq!(r.code(), 3, "{r:#?}");
    let id = r.stdout.trim().to_owned();
    assert_eq!(id.len(), 36, "{r:#?}");
    assert!(r.stderr.contains("held for review"), "{r:#?}");
    assert_ne!(
        value(&db, "select status from orders where id = 3").as_deref(),
        Some("reviewed")
    );

    // With --wait: waits (the same pending review), bob approves, it runs.
    let mut child = alice
        .hoopctl()
        .args(["exec", "demo-pg", "--wait", "2m", "-c", SQL])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("exec never said it waits: {seen:#?}"));
        let waiting = line.contains("Waiting for approval of request");
        seen.push(line);
        if waiting {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(&id)),
        "exec should follow the pending review {id}: {seen:#?}"
    );
    bob.run(&["approve", &id]).assert_ok();
    let status = wait_deadline(&mut child, Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "{out}\n{seen:#?}\n{rest:#?}");
    assert!(out.contains("(1 row affected)"), "{out}");
    assert_eq!(
        value(&db, "select status from orders where id = 3").as_deref(),
        Some("reviewed")
    );

    // The approval is spent: the same statement is held again.
    let r = alice.run(&["exec", "demo-pg", "-c", SQL]);
    assert_eq!(r.code(), 3, "{r:#?}");
    assert_ne!(r.stdout.trim(), id);
}
