//! The acceptance corpus: statements `no-destructive` must block and
//! statements it must let through untouched, plus rule semantics.

use std::sync::Arc;

use super::*;

/// Statements `no-destructive` must refuse: case and whitespace games,
/// comments everywhere, quoting, dollar quoting, multi-statement strings,
/// data-modifying CTEs, EXPLAIN ANALYZE, PREPARE, functions, COPY PROGRAM,
/// DO, privilege changes, encoding tricks and text the parser rejects.
pub const MUST_BLOCK: &[&str] = &[
    "DROP TABLE orders",
    "drop table orders",
    "DrOp TaBlE orders",
    "   DROP\n\tTABLE\n  orders  ",
    "/* c */ DROP TABLE orders",
    "DROP /* c */ TABLE orders",
    "DROP TABLE /* c */ orders",
    "DROP TABLE orders /* c */",
    "-- leading comment\nDROP TABLE orders",
    "DROP -- inner comment\nTABLE orders",
    "DROP TABLE orders -- trailing comment",
    "/* nested /* comment */ still comment */ DROP TABLE orders",
    "/**/DROP/**/TABLE/**/orders",
    ";;; DROP TABLE orders ;;;",
    "DROP TABLE \"orders\"",
    "DROP TABLE public.\"orders\"",
    "DROP TABLE \"public\".\"orders\"",
    "DROP TABLE U&\"\\006Frders\"",
    "DROP TABLE IF EXISTS orders CASCADE",
    "DROP TABLE orders, customers",
    "DROP SCHEMA public CASCADE",
    "DROP DATABASE demo",
    "DROP INDEX orders_pkey",
    "DROP VIEW order_totals",
    "DROP MATERIALIZED VIEW order_totals",
    "DROP FUNCTION f()",
    "DROP SEQUENCE orders_id_seq",
    "DROP EXTENSION pgcrypto",
    "DROP TRIGGER t ON orders",
    "DROP ROLE app",
    "DROP OWNED BY app",
    "TRUNCATE orders",
    "truncate table orders restart identity cascade",
    "TRUNCATE ONLY \"orders\"",
    "DELETE FROM orders",
    "delete from orders;",
    "DELETE FROM public.orders",
    "DELETE FROM \"orders\"",
    "DELETE FROM ONLY orders",
    "DELETE FROM orders WHERE true",
    "DELETE FROM orders WHERE 1 = 1",
    "DELETE FROM orders AS o RETURNING *",
    "DELETE FROM orders USING customers",
    "UPDATE orders SET total = 0",
    "update orders set total = 0 where 1=1",
    "UPDATE orders SET total = 0 RETURNING id",
    "UPDATE ONLY orders SET total = total + 1 WHERE true",
    "UPDATE orders SET total = 0 FROM customers",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d",
    "WITH u AS (UPDATE orders SET total = 0 RETURNING 1) SELECT * FROM u",
    "WITH x AS (SELECT 1), d AS (DELETE FROM orders) SELECT * FROM x",
    "WITH d AS MATERIALIZED (DELETE FROM orders RETURNING id) SELECT id FROM d",
    "WITH a AS (WITH b AS (DELETE FROM orders RETURNING id) SELECT * FROM b) SELECT * FROM a",
    "INSERT INTO customers_archive WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d",
    "EXPLAIN ANALYZE DELETE FROM orders",
    "explain analyse delete from orders",
    "EXPLAIN (ANALYZE) DELETE FROM orders",
    "EXPLAIN (ANALYZE true, BUFFERS) UPDATE orders SET total = 0",
    "EXPLAIN ANALYZE WITH d AS (DELETE FROM orders RETURNING 1) SELECT * FROM d",
    "PREPARE p AS DELETE FROM orders",
    "PREPARE p(int) AS UPDATE orders SET total = $1",
    "PREPARE p AS WITH d AS (DELETE FROM orders) SELECT 1",
    "PREPARE p AS SELECT pg_terminate_backend($1)",
    "SELECT pg_terminate_backend(123)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "select PG_TERMINATE_BACKEND(1)",
    "SELECT pg_catalog.pg_terminate_backend(1)",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('x')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_export(123, '/tmp/x')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT dblink_exec('host=x', 'drop table orders')",
    "SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)",
    "SELECT set_config('search_path', 'evil', false)",
    "SELECT 1 WHERE pg_terminate_backend(1)",
    "SELECT id FROM orders ORDER BY pg_terminate_backend(id)",
    "SELECT (SELECT pg_read_file('x'))",
    "SELECT CASE WHEN true THEN pg_reload_conf() END",
    "SELECT query_to_xml('delete from orders returning 1', true, true, '')",
    "VALUES (pg_read_file('x'))",
    "SELECT * FROM orders, LATERAL pg_read_file('x') AS f",
    "DELETE FROM orders WHERE id IN (SELECT pg_terminate_backend(1)::int)",
    "CALL p(pg_read_file('x'))",
    "COPY orders TO PROGRAM 'cat > /tmp/x'",
    "COPY orders FROM PROGRAM 'curl evil'",
    "copy (select 1) to program 'rm -rf /'",
    "COPY orders TO '/tmp/orders.csv'",
    "COPY orders FROM '/etc/passwd'",
    "DO $$ BEGIN DELETE FROM orders; END $$",
    "DO $body$ BEGIN EXECUTE 'DROP TABLE orders'; END $body$ LANGUAGE plpgsql",
    "do 'begin null; end'",
    "ALTER TABLE orders DROP COLUMN total",
    "ALTER TABLE orders DROP CONSTRAINT orders_pkey",
    "alter table orders alter column total drop not null",
    "ALTER TABLE orders ADD COLUMN x int, DROP COLUMN total",
    "GRANT ALL ON orders TO PUBLIC",
    "REVOKE SELECT ON orders FROM app",
    "GRANT pg_read_server_files TO app",
    "ALTER ROLE app SUPERUSER",
    "CREATE ROLE evil SUPERUSER LOGIN",
    "ALTER SYSTEM SET fsync = off",
    "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC",
    "LOAD 'evil'",
    "SELECT 1; DROP TABLE orders",
    "SELECT 1; SELECT 2; TRUNCATE orders",
    "BEGIN; DELETE FROM orders; COMMIT",
    "SELECT $$ harmless ; $$; DROP TABLE orders",
    "SELECT $a$ it's $a$; DROP TABLE orders",
    "SELECT 'a;b'; DROP TABLE orders; -- trailing",
    // Harmless with standard_conforming_strings on, a DROP with it off.
    "SELECT 'a\\''; DROP TABLE orders; --'",
    "CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers",
    "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM orders; END",
    "MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE",
    "SET client_encoding = 'SJIS'",
    "SET NAMES 'BIG5'",
    "SELECT set_config('client_encoding', 'GBK', false)",
    // set_config with a setting name the guard cannot pin to a safe literal.
    "SELECT set_config(name, 'evil', false) FROM pg_settings WHERE name = 'search_path'",
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'restrict%'",
    "SELECT set_config(name, 'x', false) FROM pg_settings",
    "SELECT set_config(name, 'x', false) FROM pg_settings \
     WHERE name = 'restrict_nonsystem_relation_kind' OR true",
    "SELECT set_config(name, current_setting('x'), false) FROM pg_settings \
     WHERE name = 'restrict_nonsystem_relation_kind'",
    "SELECT set_config(name, 'v', false), set_config('search_path', 'evil', false) \
     FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    "SELECT set_config(name, 'v', false) FROM pg_settings, orders \
     WHERE name = 'restrict_nonsystem_relation_kind'",
    "WITH d AS (DELETE FROM orders RETURNING 1) SELECT set_config(name, 'v', false) \
     FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    "SELECT set_config(lower(name), 'v', false) FROM pg_settings \
     WHERE name = 'restrict_nonsystem_relation_kind'",
    // Text the parser rejects is refused (on_unparsable = block).
    "DROPP TABLE orders",
    "DROP\u{a0}TABLE orders",
    "SELECT 1 FROM",
    "SELECT 'unterminated",
];

/// Statements `no-destructive` must let through.
pub const MUST_PASS: &[&str] = &[
    // pg_dump and pg_restore pin the search path to nothing.
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SELECT set_config('search_path', 'pg_catalog', false)",
    // pg_dump 15+ restricts relation kinds by a name it reads from pg_settings.
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
     WHERE name = 'restrict_nonsystem_relation_kind'",
    "select pg_catalog.set_config(name, '', true) from pg_catalog.pg_settings \
     where name = 'restrict_nonsystem_relation_kind'",
    "",
    ";",
    "SELECT 1",
    "select * from orders",
    "SELECT id, total FROM orders WHERE id = 1",
    "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id",
    "WITH t AS (SELECT * FROM orders) SELECT count(*) FROM t",
    "SELECT customer_id, count(*) FROM orders GROUP BY customer_id HAVING count(*) > 1",
    "SELECT 'DROP TABLE orders'",
    "SELECT $$DROP TABLE orders$$",
    "SELECT $tag$ DELETE FROM orders $tag$",
    "-- DROP TABLE orders\nSELECT 1",
    "/* DROP TABLE orders */ SELECT 1",
    "SELECT \"drop\" FROM (SELECT 1 AS \"drop\") t",
    "SELECT 'it''s'",
    "SELECT E'a\\\\b'",
    "SELECT 1; SELECT 2",
    "INSERT INTO orders (customer_id, total) VALUES (1, 10)",
    "INSERT INTO orders SELECT * FROM orders WHERE false",
    "INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 1) ON CONFLICT DO NOTHING",
    "UPDATE orders SET total = 0 WHERE id = 1",
    "update orders set total = total * 2 where customer_id in (select id from customers where email like '%x')",
    "DELETE FROM orders WHERE id = 1",
    "DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE total < 0)",
    "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d",
    "DELETE FROM orders WHERE CURRENT OF c",
    "COPY orders TO STDOUT",
    "COPY orders TO STDOUT WITH (FORMAT csv, HEADER)",
    "COPY (SELECT * FROM orders) TO STDOUT",
    "COPY orders FROM STDIN",
    "EXPLAIN SELECT * FROM orders",
    "EXPLAIN DELETE FROM orders",
    "EXPLAIN (ANALYZE false) DELETE FROM orders",
    "EXPLAIN ANALYZE SELECT * FROM orders",
    "SET search_path = public",
    "SET statement_timeout = '5s'",
    "SET client_encoding = 'UTF8'",
    "SET NAMES 'LATIN1'",
    "RESET ALL",
    "DISCARD ALL",
    "SHOW server_version",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SAVEPOINT s1",
    "CREATE TEMP TABLE scratch (id int)",
    "CREATE TABLE new_table (id int primary key)",
    "CREATE INDEX ON orders (customer_id)",
    "ALTER TABLE orders ADD COLUMN note text",
    "PREPARE q(int) AS SELECT * FROM orders WHERE id = $1",
    "EXECUTE q(1)",
    "DEALLOCATE q",
    "SELECT now(), current_user, version()",
    "SELECT lower(email) FROM customers",
    "SELECT pg_sleep(0)",
    "SELECT current_setting('search_path')",
    "LISTEN ch",
    "NOTIFY ch, 'x'",
    "VACUUM orders",
    "ANALYZE orders",
    "SELECT * FROM orders FOR UPDATE",
    "LOCK TABLE orders IN SHARE MODE",
    "DECLARE c CURSOR FOR SELECT * FROM orders",
    "FETCH 10 FROM c",
    "CALL refresh_totals(1)",
    "SELECT id FROM orders WHERE id = $1",
];

fn no_destructive() -> Guardrails {
    let reg = Registry::builtin();
    let sets = reg.resolve(&[NO_DESTRUCTIVE.to_owned()]).unwrap();
    Guardrails::new("demo-pg", &sets, UnparsableAction::Block)
}

#[test]
fn corpus_blocked_under_no_destructive() {
    let g = no_destructive();
    assert!(MUST_BLOCK.len() >= 80, "{} statements", MUST_BLOCK.len());
    let mut wrong = Vec::new();
    let mut unparsable = 0;
    for sql in MUST_BLOCK {
        match g.judge_uncached(sql) {
            Decision::Deny(d) if d.action == Action::Block => {
                println!("{:<22} {sql:?}", d.rule);
                unparsable += usize::from(d.rule == "unparsable");
            }
            other => wrong.push(format!("{sql:?} → {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "not blocked:\n{}", wrong.join("\n"));
    // Only the four deliberately broken texts are refused for not parsing:
    // everything else is refused because it was understood.
    assert_eq!(unparsable, 4);
}

#[test]
fn corpus_passes_under_no_destructive() {
    let g = no_destructive();
    assert!(MUST_PASS.len() >= 40, "{} statements", MUST_PASS.len());
    let wrong: Vec<_> = MUST_PASS
        .iter()
        .filter_map(|sql| match g.judge_uncached(sql) {
            Decision::Allow => None,
            other => Some(format!("{sql:?} → {other:?}")),
        })
        .collect();
    assert!(wrong.is_empty(), "blocked:\n{}", wrong.join("\n"));
}

fn denial(g: &Guardrails, sql: &str) -> Denial {
    match g.judge_uncached(sql) {
        Decision::Deny(d) => d,
        Decision::Allow => panic!("{sql} was allowed"),
    }
}

#[test]
fn messages_name_set_rule_and_statement_kind() {
    let g = no_destructive();
    let d = denial(&g, "drop table orders");
    assert_eq!(
        d.message,
        "hoop: blocked by guardrail \"no-destructive\" rule \"drop\": DROP TABLE is not allowed \
         on connection \"demo-pg\""
    );
    assert_eq!(d.sqlstate, "42501");
    let d = denial(&g, "select 1; with d as (delete from orders) select 1");
    assert_eq!(d.rule, "delete-without-where");
    assert!(d.message.contains("DELETE without WHERE"), "{}", d.message);
    let d = denial(&g, "select pg_catalog.pg_read_file('x')");
    assert_eq!(d.rule, "dangerous-functions");
    assert!(
        d.message.contains("call to pg_catalog.pg_read_file()"),
        "{}",
        d.message
    );
    let d = denial(&g, "selec 1");
    assert_eq!((d.rule.as_str(), d.sqlstate), ("unparsable", "42601"));
    assert!(d.message.contains("syntax error"), "{}", d.message);
    let d = denial(&g, "COPY orders TO PROGRAM 'x'");
    assert!(d.message.contains("COPY ... TO PROGRAM"), "{}", d.message);
}

fn custom(sets: &[&str], toml_sets: &[&str]) -> Guardrails {
    let mut reg = Registry::builtin();
    for t in toml_sets {
        reg.add(RuleSet::from_toml(t).unwrap()).unwrap();
    }
    let names: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
    Guardrails::new(
        "demo-pg",
        &reg.resolve(&names).unwrap(),
        UnparsableAction::Block,
    )
}

const ORDERS_REVIEW: &str = r#"
name = "orders-review"
[[rule]]
name = "orders-writes"
kinds = ["delete", "update"]
relations = ["public.orders"]
action = "review"
"#;

const ALLOW_DO: &str = r#"
name = "allow-do"
[[rule]]
name = "do-ok"
kinds = ["do"]
action = "allow"
"#;

#[test]
fn review_rules_match_target_relations() {
    let g = custom(&["no-destructive", "orders-review"], &[ORDERS_REVIEW]);
    let d = denial(&g, "DELETE FROM orders WHERE id = 1");
    assert_eq!(d.action, Action::Review);
    assert_eq!(
        d.message,
        "hoop: DELETE on connection \"demo-pg\" is held for review by guardrail \
         \"orders-review\" rule \"orders-writes\""
    );
    // Also inside a CTE, and qualified.
    assert_eq!(
        denial(
            &g,
            "with x as (update public.orders set total = 1 where id = 2 returning 1) select 1"
        )
        .action,
        Action::Review
    );
    // Block beats review.
    assert_eq!(denial(&g, "DELETE FROM orders").action, Action::Block);
    // Other tables and other kinds are untouched.
    for sql in [
        "DELETE FROM customers WHERE id = 1",
        "DELETE FROM audit.orders WHERE id = 1",
        "SELECT * FROM orders",
        "DELETE FROM customers WHERE id IN (SELECT customer_id FROM orders)",
    ] {
        assert_eq!(*g.judge(sql), Decision::Allow, "{sql}");
    }
}

#[test]
fn sets_compose_in_order_and_allow_only_allows_what_it_names() {
    let g = custom(&["allow-do", "no-destructive"], &[ALLOW_DO]);
    assert_eq!(
        g.judge_uncached("DO $$ BEGIN NULL; END $$"),
        Decision::Allow
    );
    assert!(matches!(
        g.judge_uncached("DROP TABLE orders"),
        Decision::Deny(_)
    ));

    let allow_select = r#"
name = "reads"
[[rule]]
name = "selects"
kinds = ["select"]
action = "allow"
[[rule]]
name = "everything-else"
action = "block"
"#;
    let g = custom(&["reads"], &[allow_select]);
    assert_eq!(g.judge_uncached("SELECT * FROM orders"), Decision::Allow);
    let d = denial(&g, "WITH d AS (DELETE FROM orders WHERE id = 1) SELECT 1");
    assert_eq!(d.rule, "everything-else");
    assert!(matches!(g.judge_uncached("SET x = 1"), Decision::Deny(_)));
}

#[test]
fn unparsable_follows_the_connection_setting() {
    let reg = Registry::builtin();
    let sets = reg.resolve(&[NO_DESTRUCTIVE.to_owned()]).unwrap();
    let allow = Guardrails::new("demo-pg", &sets, UnparsableAction::Allow);
    assert_eq!(allow.judge_uncached("selec 1"), Decision::Allow);
    // Parsed statements are still judged.
    assert!(matches!(
        allow.judge_uncached("DROP TABLE x"),
        Decision::Deny(_)
    ));
}

#[test]
fn classifier_sees_targets_functions_and_nesting() {
    let st =
        classify("WITH d AS (DELETE FROM s.t) SELECT pg_catalog.lower('x') FROM \"Foo\"").unwrap();
    let st = &st[0];
    assert_eq!(st.ops[0].kinds, vec![Kind::Select]);
    let del = st
        .ops
        .iter()
        .find(|o| o.kinds.contains(&Kind::Delete))
        .unwrap();
    assert!(del.kinds.contains(&Kind::DeleteWithoutWhere));
    assert_eq!(del.targets[0].to_string(), "s.t");
    assert_eq!(st.functions[0].to_string(), "pg_catalog.lower");
    assert!(st.relations.iter().any(|r| r.name == "Foo"));

    let st = classify("DROP TABLE a.b, c").unwrap();
    let targets: Vec<String> = st[0].ops[0].targets.iter().map(|r| r.to_string()).collect();
    assert_eq!(targets, ["a.b", "c"]);

    // Plain EXPLAIN does not run what it explains.
    let st = classify("EXPLAIN DELETE FROM t").unwrap();
    assert_eq!(st[0].ops.len(), 1);
    assert_eq!(classify("select 1; select 2; select 3").unwrap().len(), 3);
}

#[test]
fn repeated_statements_hit_the_cache() {
    let g = no_destructive();
    let a = g.judge("SELECT * FROM orders WHERE id = 7");
    let b = g.judge("SELECT * FROM orders WHERE id = 7");
    assert!(Arc::ptr_eq(&a, &b));
}

/// Prints what parse + classify + judge cost per statement, cold and cached
/// (`cargo test -p hoop-broker --release guard::tests::cost -- --nocapture`).
#[test]
fn cost_per_statement() {
    let g = no_destructive();
    let samples = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
        "UPDATE pgbench_accounts SET abalance = abalance + -4233 WHERE aid = 61227;",
        "SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.total > 100 ORDER BY o.total DESC LIMIT 20",
    ];
    let rounds = if cfg!(debug_assertions) { 50 } else { 2000 };
    for sql in samples {
        let start = std::time::Instant::now();
        for i in 0..rounds {
            // A different text every time: no cache can help.
            let text = format!("{sql} -- {i}");
            std::hint::black_box(g.judge_uncached(&text));
        }
        let cold = start.elapsed() / rounds;
        // The parser alone (libpg_query + protobuf decode), for comparison.
        let start = std::time::Instant::now();
        for i in 0..rounds {
            let text = format!("{sql} -- {i}");
            std::hint::black_box(pg_query::parse(&text, 0).is_ok());
        }
        let parse_only = start.elapsed() / rounds;
        g.judge(sql);
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(g.judge(sql));
        }
        let cached = start.elapsed() / rounds;
        println!(
            "guardrail cost: cold {cold:?} (parser alone {parse_only:?}), cached {cached:?}: {sql}"
        );
        assert!(cached < cold);
    }
}

#[test]
fn sessions_are_judged_by_the_connection_sets_then_the_granting_rules() {
    let mut reg = Registry::builtin();
    reg.add(RuleSet::from_toml(ORDERS_REVIEW).unwrap()).unwrap();
    let book = GuardBook::from_parts(
        reg,
        [
            (
                "demo-pg".to_owned(),
                vec!["no-destructive".to_owned()],
                UnparsableAction::Block,
            ),
            ("open".to_owned(), Vec::new(), UnparsableAction::Block),
        ],
    );
    // No sets anywhere: no guardrails at all.
    assert!(book.for_session("open", &[]).unwrap().is_none());
    // The connection's own.
    let own = book.for_session("demo-pg", &[]).unwrap().unwrap();
    assert_eq!(own.set_names(), ["no-destructive"]);
    assert_eq!(
        *own.judge("DELETE FROM orders WHERE id = 1"),
        Decision::Allow
    );
    // Plus the granting rule's, each once, the connection's first.
    let policy = vec!["orders-review".to_owned(), "no-destructive".to_owned()];
    let both = book.for_session("demo-pg", &policy).unwrap().unwrap();
    assert_eq!(both.set_names(), ["no-destructive", "orders-review"]);
    assert_eq!(
        denial(&both, "DELETE FROM orders WHERE id = 1").action,
        Action::Review
    );
    assert_eq!(denial(&both, "DELETE FROM orders").action, Action::Block);
    // A policy set alone guards a connection that has none.
    let only = book.for_session("open", &policy).unwrap().unwrap();
    assert_eq!(only.set_names(), ["orders-review", "no-destructive"]);
    // Compiled once per distinct list: the same Arc (and cache) again.
    assert!(Arc::ptr_eq(
        &both,
        &book.for_session("demo-pg", &policy).unwrap().unwrap()
    ));
    // An unknown set refuses the session (the caller's job), never runs unguarded.
    assert!(book.for_session("demo-pg", &["nope".to_owned()]).is_err());
}

/// The verdict cache keys statements with top-level numbers replaced
/// (`cache::cache_key`): over the whole corpus, a statement and its key get
/// the same decision, so sharing an entry can never change a verdict.
#[test]
fn cache_keys_are_judged_like_the_statements_they_stand_for() {
    let g = no_destructive();
    let mut replaced = 0;
    for sql in MUST_BLOCK.iter().chain(MUST_PASS) {
        let key = super::cache::cache_key(sql);
        if key != *sql {
            replaced += 1;
        }
        assert_eq!(
            format!("{:?}", g.judge_uncached(sql)),
            format!("{:?}", g.judge_uncached(&key)),
            "{sql:?} vs its key {key:?}"
        );
    }
    assert!(
        replaced >= 10,
        "the corpus exercises the replacement ({replaced})"
    );
}
