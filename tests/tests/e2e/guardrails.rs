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
    // Case, whitespace, comments in every position, quoting.
    "DrOp TaBlE orders;",
    "  DROP\tTABLE    orders  ;",
    "/* c */ DROP TABLE orders;",
    "DROP /* c */ TABLE orders;",
    "DROP TABLE /* c */ orders;",
    "DROP TABLE orders /* c */;",
    "/* nested /* comment */ still comment */ DROP TABLE orders;",
    "/**/DROP/**/TABLE/**/orders;",
    "DROP TABLE public.\"orders\";",
    "DROP TABLE \"public\".\"orders\";",
    "DROP TABLE U&\"\\006Frders\";",
    "DROP TABLE IF EXISTS orders CASCADE;",
    "DROP TABLE orders, customers;",
    // Other objects.
    "DROP INDEX orders_pkey;",
    "DROP VIEW IF EXISTS v;",
    "DROP FUNCTION IF EXISTS f();",
    "DROP SEQUENCE orders_id_seq;",
    "DROP EXTENSION IF EXISTS pgcrypto;",
    "DROP ROLE app;",
    "DROP OWNED BY app;",
    "DROP DATABASE demo;",
    "TRUNCATE orders;",
    "truncate table orders restart identity cascade;",
    "TRUNCATE ONLY \"orders\";",
    // DELETE / UPDATE of every row, also wrapped.
    "DELETE FROM \"orders\";",
    "DELETE FROM ONLY orders;",
    "DELETE FROM orders WHERE true;",
    "DELETE FROM orders AS o RETURNING *;",
    "DELETE FROM orders USING customers;",
    "UPDATE orders SET amount = 0;",
    "update orders set amount = 0 where 1=1;",
    "UPDATE orders SET amount = 0 RETURNING id;",
    "WITH x AS (SELECT 1) DELETE FROM orders;",
    "WITH RECURSIVE r AS (SELECT 1) UPDATE orders SET status = 'x';",
    "EXPLAIN (ANALYZE) DELETE FROM orders;",
    "EXPLAIN (ANALYZE true, BUFFERS) UPDATE orders SET amount = 0;",
    "EXPLAIN ANALYZE WITH d AS (DELETE FROM orders RETURNING 1) SELECT * FROM d;",
    "PREPARE p2 AS UPDATE orders SET amount = 0;",
    "PREPARE p3(int) AS DELETE FROM orders WHERE $1 = $1;",
    "CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers;",
    // Functions, wherever they are called.
    "SELECT pg_read_file('/etc/passwd');",
    "SELECT pg_catalog.pg_read_file('/etc/passwd');",
    "SELECT PG_READ_FILE('/etc/passwd');",
    "SELECT \"pg_read_file\"('/etc/passwd');",
    "SELECT * FROM pg_ls_dir('.');",
    "SELECT lo_import('/etc/passwd');",
    "SELECT lo_export(1, '/tmp/x');",
    "SELECT dblink_exec('host=x', 'DROP TABLE orders');",
    "SELECT set_config('search_path', 'evil', false);",
    "SELECT pg_reload_conf();",
    "SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, true, '');",
    "SELECT pg_cancel_backend(pg_backend_pid());",
    "VALUES (pg_terminate_backend(1));",
    "SELECT 1 WHERE pg_terminate_backend(1);",
    "SELECT 1 ORDER BY pg_terminate_backend(1);",
    "SELECT * FROM (SELECT 1) s, LATERAL (SELECT pg_terminate_backend(1)) t;",
    "INSERT INTO orders SELECT * FROM orders WHERE pg_read_file('/etc/passwd') IS NULL;",
    // Server files and programs.
    "COPY orders FROM PROGRAM 'id';",
    "COPY (SELECT 1) TO PROGRAM 'id';",
    "COPY orders TO '/tmp/orders.csv';",
    "COPY orders FROM '/etc/passwd';",
    "LOAD 'plpgsql';",
    // Code the guardrails cannot see into.
    "DO LANGUAGE plpgsql $$ BEGIN NULL; END $$;",
    "do $x$ begin perform 1; end $x$;",
    // Privileges and structure.
    "GRANT SELECT ON customers TO PUBLIC;",
    "REVOKE ALL ON orders FROM app;",
    "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC;",
    "CREATE ROLE intruder LOGIN;",
    "ALTER ROLE app SUPERUSER;",
    "ALTER SYSTEM SET work_mem = '1GB';",
    "ALTER TABLE orders DROP COLUMN IF EXISTS status;",
    "ALTER TABLE customers ALTER COLUMN email DROP NOT NULL;",
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
    (
        "SELECT 'pass-13' FROM orders o JOIN customers c ON c.id = o.customer_id LIMIT 1;",
        "pass-13",
    ),
    (
        "WITH t AS (SELECT * FROM orders) SELECT 'pass-14' FROM t LIMIT 1;",
        "pass-14",
    ),
    (
        "SELECT 'pass-15' FROM orders GROUP BY customer_id HAVING count(*) > 0 LIMIT 1;",
        "pass-15",
    ),
    ("SELECT 'DROP TABLE orders' AS p16;", "DROP TABLE orders"),
    ("-- DROP TABLE orders\nSELECT 'pass-17';", "pass-17"),
    ("/* DROP TABLE orders */ SELECT 'pass-18';", "pass-18"),
    ("SELECT 'it''s pass-19';", "it's pass-19"),
    ("SELECT $tag$pass-20$tag$;", "pass-20"),
    (
        "SELECT \"drop\" FROM (SELECT 'pass-21' AS \"drop\") t;",
        "pass-21",
    ),
    (
        "INSERT INTO scratch VALUES (22) RETURNING 'pass-' || id;",
        "pass-22",
    ),
    (
        "UPDATE scratch SET id = 23 WHERE id = 22 RETURNING 'pass-' || id;",
        "pass-23",
    ),
    (
        "DELETE FROM scratch WHERE id = 23 RETURNING 'pass-24';",
        "pass-24",
    ),
    ("EXPLAIN SELECT * FROM orders;", ""),
    ("EXPLAIN DELETE FROM orders;", ""),
    ("EXPLAIN (ANALYZE false) DELETE FROM orders;", ""),
    ("EXPLAIN ANALYZE SELECT 1;", ""),
    ("SET search_path = public;", ""),
    ("RESET statement_timeout;", ""),
    ("SHOW search_path;", "public"),
    ("BEGIN;", ""),
    ("SAVEPOINT s1;", ""),
    ("SELECT 'pass-34';", "pass-34"),
    ("ROLLBACK TO SAVEPOINT s1;", ""),
    ("LOCK TABLE orders IN ACCESS SHARE MODE;", ""),
    ("DECLARE c CURSOR FOR SELECT 'pass-37';", ""),
    ("FETCH 1 FROM c;", "pass-37"),
    ("CLOSE c;", ""),
    ("COMMIT;", ""),
    ("CREATE TEMP TABLE scratch2 AS SELECT 1 AS x;", ""),
    ("CREATE INDEX ON scratch (id);", ""),
    ("ALTER TABLE scratch ADD COLUMN note text;", ""),
    ("PREPARE q(int) AS SELECT 'pass-' || $1;", ""),
    ("EXECUTE q(45);", "pass-45"),
    ("DEALLOCATE q;", ""),
    ("SELECT lower('PASS-47');", "pass-47"),
    ("SELECT 'pass-48' FROM pg_sleep(0);", "pass-48"),
    (
        "SELECT 'pass-49' FROM orders LIMIT 1 FOR UPDATE;",
        "pass-49",
    ),
    ("LISTEN pass_channel;", ""),
    ("NOTIFY pass_channel, 'x';", ""),
    ("VACUUM scratch;", ""),
    ("ANALYZE scratch;", ""),
    ("SELECT 'pass-54' UNION ALL SELECT 'x' LIMIT 1;", "pass-54"),
    (
        "INSERT INTO orders (customer_id, amount, status) \
         SELECT customer_id, amount, status FROM orders WHERE false;",
        "",
    ),
    (
        "SELECT 'pass-56' FROM (VALUES (1)) v(x) WHERE x = 1;",
        "pass-56",
    ),
    (
        "SELECT 'pass-57' FROM customers WHERE email LIKE '%@example.com' LIMIT 1;",
        "pass-57",
    ),
    // pg_dump's session setup (set last: it narrows what the session may use).
    (
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "",
    ),
    (
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
         WHERE name = 'restrict_nonsystem_relation_kind';",
        "",
    ),
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

#[test]
fn corpus_sizes_meet_the_acceptance() {
    // Each statement below is checked end to end by the tests of this file.
    assert!(
        BLOCKED.len() >= 80,
        "{} must-block statements",
        BLOCKED.len()
    );
    assert!(PASSED.len() >= 40, "{} must-pass statements", PASSED.len());
}

/// The blocked corpus again through tokio-postgres and the extended protocol
/// (each statement a `Parse`), whole multi-statement strings through the
/// simple protocol, and the plain reads of the passing corpus through the
/// extended protocol: refusals name the rule, reads return their rows, and
/// the database is unchanged.
#[test]
fn the_corpus_holds_through_the_extended_protocol_too() {
    let (db, _broker, alice, _dir) = logged_in_with("alice", "guardrails = [\"no-destructive\"]");
    let before = fingerprint(&db);
    let tunnel = open_tunnel(&alice, "demo-pg");
    db.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&tunnel.conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for sql in BLOCKED {
            let err = client.prepare(sql).await.expect_err(sql);
            let message = err.as_db_error().map(|e| e.message()).unwrap_or_default();
            assert!(
                message.contains("hoop: blocked by guardrail \"no-destructive\""),
                "{sql}: {err}"
            );
            // The session goes on after each refusal.
            let row = client.query_one("SELECT 'alive'", &[]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), "alive");
        }
        for sql in [
            "SELECT 1; DROP TABLE orders",
            "DELETE FROM orders; SELECT 1",
            "SELECT 'x'; UPDATE customers SET email = 'x'; SELECT 'y'",
            "BEGIN; TRUNCATE orders; COMMIT",
        ] {
            let err = client.simple_query(sql).await.expect_err(sql);
            let message = err.as_db_error().map(|e| e.message()).unwrap_or_default();
            assert!(
                message.contains("hoop: blocked by guardrail"),
                "{sql}: {err}"
            );
        }
        let mut reads = 0;
        for (sql, out) in PASSED {
            let plain_read = (sql.starts_with("SELECT") || sql.starts_with("WITH"))
                && !out.is_empty()
                && !sql.contains("scratch")
                && !sql.contains("set_config");
            if !plain_read {
                continue;
            }
            let row = client
                .query_one(*sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let got = row
                .try_get::<_, String>(0)
                .or_else(|_| {
                    row.try_get::<_, bool>(0)
                        .map(|b| if b { "t" } else { "f" }.to_owned())
                })
                .unwrap();
            assert_eq!(got, *out, "{sql}");
            reads += 1;
        }
        assert!(reads >= 15, "{reads}");
    });
    drop(tunnel);
    assert_eq!(
        fingerprint(&db),
        before,
        "a refused statement changed the database"
    );
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

#[test]
fn a_policy_rule_adds_its_guardrails_to_the_sessions_it_grants() {
    // The connection itself names no guardrails; the policy rule does.
    let policy_dir = tempfile::tempdir().unwrap();
    let policy_file = policy_dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        "groups = [\"engineering\"]\n\n[[rules]]\nname = \"eng\"\nconnections = [\"demo-pg\"]\n\
         groups = [\"engineering\"]\naccess = \"allow\"\nguardrails = [\"no-destructive\"]\n",
    )
    .unwrap();
    let (db, broker, _dir) = start_demo_broker(
        "",
        &format!("policy_file = {:?}", policy_file.to_string_lossy()),
    );
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let before = fingerprint(&db);
    let r = psql(&alice, &["-c", "DROP TABLE orders"]);
    assert!(!r.status.success(), "{r:#?}");
    assert!(
        r.stderr
            .contains("hoop: blocked by guardrail \"no-destructive\" rule \"drop\""),
        "{r:#?}"
    );
    psql(&alice, &["-c", "SELECT 'still-here' FROM orders LIMIT 1"]).assert_ok();
    assert_eq!(fingerprint(&db), before);
}
