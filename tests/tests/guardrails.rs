//! Guardrails through the whole path (hoopctl → TLS tunnel → broker →
//! PostgreSQL) with real psql and pgbench: destructive statements are refused
//! with an error naming the rule, the tables are intact afterwards, harmless
//! statements pass untouched, and the session stays usable after a refusal.

use std::path::Path;

use hoop_e2e::*;

/// Rows of `sql` run as the superuser, straight at the server.
fn observe(db: &DemoDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.rt.block_on(async {
        let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser("demo"))
            .await
            .unwrap();
        let rows = c.simple_query(sql).await.unwrap();
        c.close().await;
        rows
    })
}

/// What must not change: tables, columns, constraints, row counts, grants.
fn fingerprint(db: &DemoDb) -> Vec<Vec<Option<String>>> {
    observe(
        db,
        "select (select count(*) from customers), (select count(*) from orders), \
                (select string_agg(table_name || '.' || column_name, ',' order by table_name, \
                 ordinal_position) from information_schema.columns where table_schema = 'public'), \
                (select string_agg(conname, ',' order by conname) from pg_constraint \
                 where connamespace = 'public'::regnamespace), \
                (select string_agg(email || card_number, ',' order by id) from customers), \
                (select coalesce(string_agg(grantee, ','), '') from \
                 information_schema.role_table_grants where grantee = 'PUBLIC')",
    )
}

/// Statements psql sends one by one; each must be refused.
const BLOCKED: &[&str] = &[
    "DROP TABLE orders;",
    "drop   table /* hidden */ \"orders\";",
    "DROP SCHEMA public CASCADE;",
    "TRUNCATE customers CASCADE;",
    "DELETE FROM orders;",
    "delete from public.orders where 1 = 1;",
    "UPDATE customers SET email = 'x' || id;",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d;",
    "WITH u AS (UPDATE customers SET card_number = '0' RETURNING 1) SELECT count(*) FROM u;",
    "EXPLAIN ANALYZE DELETE FROM orders;",
    "PREPARE wipe AS DELETE FROM orders;",
    "ALTER TABLE customers DROP COLUMN card_number;",
    "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;",
    "COPY orders TO PROGRAM 'cat > /dev/null';",
    "DO $$ BEGIN DELETE FROM orders; END $$;",
    "DO $body$ BEGIN EXECUTE 'DROP TABLE orders'; END $body$;",
    "SELECT pg_terminate_backend(pg_backend_pid());",
    "GRANT ALL ON orders TO PUBLIC;",
    "MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE;",
    "SELECT 'a\\''; DROP TABLE orders; --';",
];

/// Statements that must pass, with a line of output each proves it ran.
const PASSED: &[(&str, &str)] = &[
    ("SELECT count(*) > 0 AS has_orders FROM orders;", "t"),
    ("CREATE TEMP TABLE scratch (id int);", ""),
    ("INSERT INTO scratch VALUES (1), (2);", ""),
    ("UPDATE scratch SET id = 3 WHERE id = 1;", ""),
    ("DELETE FROM scratch WHERE id = 2;", ""),
    (
        "SELECT 'scratch-' || string_agg(id::text, ',') FROM scratch;",
        "scratch-3",
    ),
    (
        "WITH d AS (DELETE FROM scratch WHERE id = 3 RETURNING id) SELECT 'cte-' || count(*) FROM d;",
        "cte-1",
    ),
    ("COPY (SELECT 'copied') TO STDOUT;", "copied"),
    ("SET statement_timeout = '17s';", ""),
    ("SHOW statement_timeout;", "17s"),
    (
        "SELECT 'dollar-' || $$DROP TABLE orders$$;",
        "dollar-DROP TABLE orders",
    ),
    ("UPDATE orders SET status = status WHERE id = -1;", ""),
];

fn psql(user: &User, args: &[&str]) -> Run {
    let mut all = vec!["connect", "demo-pg", "--", "psql", "-X", "-tA"];
    all.extend_from_slice(args);
    user.run(&all)
}

#[test]
fn destructive_statements_are_refused_through_psql_and_the_tables_stay_intact() {
    let (db, broker, alice, _dir) = logged_in_with("alice", "guardrails = [\"no-destructive\"]");
    let before = fingerprint(&db);

    // One psql session: each refused statement is followed by a marker
    // query, which must still run (the session stays usable).
    let mut script = String::from("\\set ON_ERROR_STOP 0\n");
    for (i, sql) in BLOCKED.iter().enumerate() {
        script.push_str(&format!("{sql}\nSELECT 'alive-{i}';\n"));
    }
    script.push_str("EXECUTE wipe;\n");
    for (sql, _) in PASSED {
        script.push_str(sql);
        script.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("script.sql");
    std::fs::write(&file, &script).unwrap();
    let r = psql(&alice, &["-f", &file.to_string_lossy()]);

    let refusals = r
        .stderr
        .lines()
        .filter(|l| l.contains("hoop: blocked by guardrail \"no-destructive\" rule"))
        .count();
    assert_eq!(refusals, BLOCKED.len(), "{r:#?}");
    for (i, sql) in BLOCKED.iter().enumerate() {
        assert!(
            r.stdout.lines().any(|l| l == format!("alive-{i}")),
            "the session died after {sql:?}: {r:#?}"
        );
    }
    assert!(
        r.stderr
            .contains("rule \"drop\": DROP TABLE is not allowed on connection \"demo-pg\""),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("prepared statement \"wipe\" does not exist"),
        "{r:#?}"
    );
    for (sql, out) in PASSED {
        if !out.is_empty() {
            assert!(
                r.stdout.lines().any(|l| l == *out),
                "{sql} did not run: {r:#?}"
            );
        }
    }
    let passed_errors: Vec<_> = r
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR") && !l.contains("hoop: blocked") && !l.contains("wipe"))
        .collect();
    assert!(passed_errors.is_empty(), "{passed_errors:#?}\n{r:#?}");

    // One message with several statements is refused as a whole.
    let r = psql(&alice, &["-c", "SELECT 'first-ran'; DROP TABLE customers"]);
    assert!(!r.status.success());
    assert!(!r.stdout.contains("first-ran"), "{r:#?}");
    assert!(r.stderr.contains("rule \"drop\""), "{r:#?}");
    let r = psql(&alice, &["-c", "BEGIN; DELETE FROM orders; COMMIT"]);
    assert!(r.stderr.contains("delete-without-where"), "{r:#?}");

    assert_eq!(
        fingerprint(&db),
        before,
        "a refused statement changed the database"
    );
    assert!(broker.log().contains("guardrail refused a statement"));
}

/// Runs one pgbench transaction of `sql` in `mode` through the tunnel.
fn pgbench(user: &User, dir: &Path, mode: &str, sql: &str) -> Run {
    let pgbench = hoop_broker::dev::postgres::find_pg_binary("pgbench").expect("pgbench");
    let file = dir.join(format!("{mode}.sql"));
    std::fs::write(&file, format!("{sql}\n")).unwrap();
    user.run(&[
        "connect",
        "demo-pg",
        "--",
        &pgbench.to_string_lossy(),
        "-n",
        "-M",
        mode,
        "-t",
        "1",
        "-f",
        &file.to_string_lossy(),
    ])
}

#[test]
fn the_extended_protocol_is_judged_at_parse() {
    let (db, _broker, alice, _dir) = logged_in_with("alice", "guardrails = [\"no-destructive\"]");
    let before = fingerprint(&db);
    let tmp = tempfile::tempdir().unwrap();
    for mode in ["extended", "prepared"] {
        for sql in [
            "DELETE FROM orders",
            "UPDATE customers SET email = 'x' || id",
            "WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d",
            "SELECT pg_terminate_backend(pg_backend_pid())",
            "TRUNCATE orders CASCADE",
            "DELETE FROM orders WHERE true",
        ] {
            let r = pgbench(&alice, tmp.path(), mode, sql);
            assert!(!r.status.success(), "{mode} {sql}: {r:#?}");
            assert!(
                r.all()
                    .contains("hoop: blocked by guardrail \"no-destructive\""),
                "{mode} {sql}: {r:#?}"
            );
        }
        let r = pgbench(
            &alice,
            tmp.path(),
            mode,
            "UPDATE orders SET status = status WHERE id = :client_id",
        );
        r.assert_ok();
        assert!(
            r.stdout
                .contains("number of transactions actually processed: 1/1"),
            "{r:#?}"
        );
    }
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn an_unknown_guardrail_set_stops_the_broker_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[tls]\nself_signed = true\n\
             [identity.builtin]\nusers = [{{ name = \"alice\" }}]\n\
             [[connections]]\nname = \"demo-pg\"\ntype = \"postgres\"\nhost = \"127.0.0.1\"\n\
             database = \"demo\"\nuser = \"app\"\npassword_env = \"X\"\n\
             allow_users = [\"alice\"]\nguardrails = [\"no-destructiv\"]\n",
            dir.path().join("data").to_string_lossy()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin("hoop-broker"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown guardrail set \"no-destructiv\"")
            && stderr.contains("no-destructive")
            && stderr.contains("broker.toml:"),
        "{stderr}"
    );
}
