//! `pg_dump` through `hoopctl connect` on a connection with the
//! `no-destructive` guardrails: the dump runs (its session setup, including
//! pg_dump 15's `set_config(name, ...) FROM pg_settings WHERE name =
//! 'restrict_nonsystem_relation_kind'`, is not refused), and `pg_restore`
//! of it into a scratch database the test creates straight on the server
//! gives back the same tables and rows.

use hoop_e2e::*;

/// What the round trip must keep: row counts and the customers' data.
const CONTENT: &str = "select (select count(*) from customers)::text || '/' || \
     (select count(*) from orders)::text || '/' || \
     (select string_agg(email || card_number, ',' order by id) from customers) || '/' || \
     (select sum(amount)::text from orders)";

/// The single value of `sql` in `database`, as the superuser.
fn value(db: &DemoDb, database: &str, sql: &str) -> String {
    db.rt.block_on(async {
        let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser(database))
            .await
            .unwrap();
        let rows = c.simple_query(sql).await.unwrap();
        c.close().await;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten()
            .unwrap_or_default()
    })
}

#[test]
fn pg_dump_through_a_guarded_connection_restores_to_the_same_data() {
    let (db, broker, alice, _dir) = logged_in_with("alice", "guardrails = [\"no-destructive\"]");
    let pg_dump = hoop_broker::dev::postgres::find_pg_binary("pg_dump").expect("pg_dump");
    let pg_restore = hoop_broker::dev::postgres::find_pg_binary("pg_restore").expect("pg_restore");
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("demo.dump");

    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        &pg_dump.to_string_lossy(),
        "-Fc",
        "-f",
        &dump.to_string_lossy(),
    ]);
    r.assert_ok();
    assert!(
        !broker.log().contains("guardrail refused a statement"),
        "pg_dump's statements were refused:\n{}",
        broker.log()
    );
    // The statement that used to be refused went through (queries are logged at debug).
    assert!(
        broker.log().contains("restrict_nonsystem_relation_kind"),
        "pg_dump did not pin restrict_nonsystem_relation_kind through the broker"
    );
    assert!(std::fs::metadata(&dump).unwrap().len() > 1000);

    // The scratch database is made straight on the server, not through hoop.
    value(&db, "postgres", "CREATE DATABASE scratch OWNER app");
    let su = db.pg.superuser("scratch");
    let out = std::process::Command::new(pg_restore)
        .args(["--exit-on-error", "-d", "scratch", "-h", &su.host, "-p"])
        .arg(su.port.to_string())
        .args(["-U", &su.user])
        .arg(&dump)
        .env("PGPASSWORD", su.password.expose())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = value(&db, "demo", CONTENT);
    assert!(original.starts_with("20/50/"), "{original}");
    assert_eq!(value(&db, "scratch", CONTENT), original);
}
