//! Inline masking through the whole path (hoopctl → TLS tunnel → broker →
//! PostgreSQL) with real clients: psql (simple protocol, `\copy`) and
//! tokio-postgres (extended protocol, binary results). The same rows read
//! straight from the server keep their real values; through the broker,
//! emails and card numbers arrive masked, in result sets, in free text and
//! in COPY output, and a million-row result streams without the broker's
//! memory growing with it.

use std::time::Duration;

use hoop_e2e::*;

/// The masking sets of these tests: the dev demo's (emails keep their
/// domain, cards their last 4 digits anywhere), plus a covered integer
/// column to show what binary-format results get.
const MASKING: &str = r#"
[[masking_sets]]
name = "pii"
[[masking_sets.rule]]
name = "emails"
columns = ["customers.email", "big.email"]
style = "keep-domain"
[[masking_sets.rule]]
name = "cards"
detect = ["card"]
style = "keep-last"
keep = 4

[[masking_sets]]
name = "orders-private"
[[masking_sets.rule]]
name = "who-ordered"
columns = ["public.orders.customer_id"]
style = "full"
"#;

/// A demo database, a broker whose `demo-pg` masks with `pii` and
/// `orders-private`, and alice logged in.
fn masked_demo() -> (DemoDb, BrokerProcess, User, tempfile::TempDir) {
    let (db, broker, dir) = start_demo_broker("masking = [\"pii\", \"orders-private\"]", MASKING);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    (db, broker, alice, dir)
}

/// Rows of `sql` run straight at the server as the superuser.
fn direct(db: &DemoDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.rt.block_on(async {
        let mut c = hoop_broker::proxy::postgres::connect(&db.pg.superuser("demo"))
            .await
            .unwrap();
        let rows = c.simple_query(sql).await.unwrap();
        c.close().await;
        rows
    })
}

fn psql(user: &User, sql: &str) -> Run {
    user.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-tA",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ])
}

/// What a keep-last-4 mask makes of a card number.
fn keep_last4(card: &str) -> String {
    let digits = card.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    card.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                seen += 1;
                if seen + 4 <= digits { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn psql_sees_masked_emails_and_cards_while_the_server_holds_the_real_ones() {
    let (db, _broker, alice, _dir) = masked_demo();
    let real = direct(&db, "select email, card_number from customers order by id");
    assert_eq!(real.len(), 20);
    assert!(real[0][0].as_deref().unwrap().starts_with("ada.example@"));

    let r = psql(
        &alice,
        "select email, card_number from customers order by id",
    );
    r.assert_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{r:#?}");
    for (line, row) in lines.iter().zip(&real) {
        let (email, card) = line.split_once('|').unwrap();
        assert_eq!(email, "****@example.com");
        assert_eq!(card, keep_last4(row[1].as_deref().unwrap()), "{line}");
        assert!(!r.stdout.contains(row[1].as_deref().unwrap()));
    }

    // An alias does not hide the source column; `select *` is masked too.
    let r = psql(
        &alice,
        "select email as contact from customers where id = 1",
    );
    assert_eq!(r.stdout.trim(), "****@example.com", "{r:#?}");
    let r = psql(&alice, "select * from customers where id = 1");
    assert!(
        r.stdout.contains("|****@example.com|************1111|"),
        "{r:#?}"
    );

    // A card number inside free text, in a table no rule names.
    let r = psql(
        &alice,
        "create table notes (id int, body text); \
         insert into notes values (1, 'card 4111 1111 1111 1111 declined, call back'); \
         select body from notes",
    );
    r.assert_ok();
    assert_eq!(
        r.stdout.lines().last(),
        Some("card **** **** **** 1111 declined, call back"),
        "{r:#?}"
    );
    assert_eq!(
        direct(&db, "select body from notes")[0][0].as_deref(),
        Some("card 4111 1111 1111 1111 declined, call back")
    );
    // A covered integer column, in text format, is masked as text.
    let r = psql(
        &alice,
        "select id, customer_id from orders order by id limit 1",
    );
    assert_eq!(r.stdout.trim(), "1|****", "{r:#?}");
}

#[test]
fn tokio_postgres_extended_protocol_results_are_masked() {
    let (db, _broker, alice, _dir) = masked_demo();
    let tunnel = open_tunnel(&alice, "demo-pg");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&tunnel.conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        // Prepared (Describe statement) + binary results.
        let rows = client
            .query(
                "select id, email, card_number from customers where id <= $1 order by id",
                &[&3i64],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        for row in &rows {
            let email: String = row.get(1);
            let card: String = row.get(2);
            assert_eq!(email, "****@example.com");
            assert!(card.starts_with("***") && card.len() >= 13, "{card}");
        }
        assert_eq!(rows[0].get::<_, String>(2), "************1111");
        let id: i64 = rows[0].get(0);
        assert_eq!(id, 1, "uncovered binary columns pass untouched");

        // Binary behaviour (docs/masking.md): a covered non-text column in
        // binary format arrives as NULL; so does a binary integer holding a
        // card number.
        let row = client
            .query_one(
                "select customer_id, 4111111111111111::int8 as n, 42::int8 as answer \
                 from orders order by id limit 1",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Option<i64>>(0), None);
        assert_eq!(row.get::<_, Option<i64>>(1), None);
        assert_eq!(row.get::<_, i64>(2), 42);

        // The simple protocol through the same client: text, masked as text.
        let msgs = client
            .simple_query("select email, customer_id::text from customers join orders on orders.customer_id = customers.id limit 1")
            .await
            .unwrap();
        let tokio_postgres::SimpleQueryMessage::Row(r) = &msgs[1] else {
            panic!("a row first: {msgs:?}")
        };
        assert_eq!(r.get(0), Some("****@example.com"));
        // An expression has no source column: only detectors apply to it.
        assert!(r.get(1).is_some_and(|v| v.parse::<i64>().is_ok()));

        // A pipelined batch of prepared statements keeps each its own map.
        let s1 = client.prepare("select email from customers where id = 1").await.unwrap();
        let s2 = client.prepare("select full_name from customers where id = 1").await.unwrap();
        let (a, b) = tokio::join!(client.query_one(&s1, &[]), client.query_one(&s2, &[]));
        assert_eq!(a.unwrap().get::<_, String>(0), "****@example.com");
        assert_eq!(b.unwrap().get::<_, String>(0), "Ada Example");
    });
    // Direct, the same rows are real.
    let real = direct(
        &db,
        "select email, card_number, customer_id::text from customers, orders where customers.id = 1 limit 1",
    );
    assert_eq!(real[0][0].as_deref(), Some("ada.example@example.com"));
    assert_eq!(real[0][1].as_deref(), Some("4111111111111111"));
}

#[test]
fn copy_to_stdout_is_masked_and_binary_copy_is_refused() {
    let (_db, _broker, alice, _dir) = masked_demo();
    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "\\copy (select id, email, card_number from customers order by id) to stdout csv header",
    ]);
    r.assert_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "id,email,card_number", "{r:#?}");
    assert_eq!(
        lines[1], "1,\"****@example.com\",\"************1111\"",
        "{r:#?}"
    );
    assert_eq!(lines.len(), 21);
    assert!(!r.stdout.contains("ada.example@"), "{r:#?}");

    let r = psql(&alice, "copy customers (id, email) to stdout");
    r.assert_ok();
    assert_eq!(
        r.stdout.lines().next(),
        Some("1\t****@example.com"),
        "{r:#?}"
    );

    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-c",
        "copy customers to stdout (format binary)",
        "-c",
        "select 'still-alive'",
    ]);
    assert!(
        r.stderr.contains("binary COPY output cannot be masked"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("still-alive"), "{r:#?}");
}

/// The pid of the `hoop-broker` serving `broker` (found by its config path).
fn broker_pid(broker: &BrokerProcess) -> u32 {
    let config = broker.data_dir.parent().unwrap().join("broker.toml");
    let config = config.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("hoop-broker") && cmdline.contains(&config) {
            return pid;
        }
    }
    panic!("no hoop-broker process for {config}");
}

/// VmHWM (peak resident set) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_million_masked_rows_stream_with_bounded_broker_memory() {
    let (db, broker, alice, _dir) = masked_demo();
    // ~100 bytes a row, ~100 MB in all.
    direct(
        &db,
        "create table big as select g as id, md5(g::text) || '@example.com' as email, \
         repeat('x', 50) as pad from generate_series(1, 1000000) g; \
         alter table big owner to app",
    );
    let pid = broker_pid(&broker);
    // Warm up (catalog connection, TLS, first session), then measure.
    psql(&alice, "select email from big limit 1").assert_ok();
    let before = peak_rss_kib(pid);
    let started = std::time::Instant::now();
    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "sh",
        "-c",
        "psql -X -tA -c 'select id, email, pad from big' | \
         awk -F'|' '$2 != \"****@example.com\" {bad++} END {print NR, bad+0}'",
    ]);
    r.assert_ok();
    assert_eq!(
        r.stdout.trim(),
        "1000000 0",
        "every row arrived, masked: {r:#?}"
    );
    let after = peak_rss_kib(pid);
    eprintln!(
        "1M masked rows in {:?}; broker VmHWM {before} KiB -> {after} KiB",
        started.elapsed()
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "the broker's peak memory grew by {} KiB for a ~100 MB result",
        after - before
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn hoop_broker_dev_masks_demo_customers_out_of_the_box() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("hoop");
    let log = tmp.path().join("dev.log");
    let mut dev = Command::new(bin("hoop-broker"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("HOOP_CONFIG_DIR", &config_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = wait_for_line(&mut dev, &log, "hoop-broker listening on ").unwrap_or_else(|| {
        panic!(
            "dev did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Press Ctrl-C")
    {
        assert!(std::time::Instant::now() < deadline, "no summary from dev");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _cluster = KeptCluster::from_log(&log, tmp.path());
    let hoopctl = |args: &[&str]| {
        let mut c = Command::new(bin("hoopctl"));
        c.args(args)
            .env("HOOP_CONFIG_DIR", &config_dir)
            .env_remove("HOOP_BROKER")
            .env_remove("HOOP_TOKEN")
            .stdin(Stdio::null());
        c
    };
    let ca_file = hoop_shared::client_config::ClientConfig::load(&config_dir)
        .unwrap()
        .ca_file
        .unwrap();
    drive_login(hoopctl(&["login", "--no-browser"]), &url, &ca_file, "alice").assert_ok();
    let out = hoopctl(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-tA",
        "-c",
        "select * from customers order by id limit 1",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("1|Ada Example|****@example.com|************1111|"),
        "{stdout}"
    );
    assert!(terminate(&mut dev).success());
}

#[test]
fn a_policy_rule_adds_its_masking_sets_to_the_sessions_it_lets_in() {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "groups = [\"engineering\"]\nadmins = []\n\n[[rules]]\nname = \"masked-for-engineering\"\n\
         connections = [\"demo-pg\"]\ngroups = [\"engineering\"]\naccess = \"allow\"\n\
         masking = [\"pii\"]\n",
    )
    .unwrap();
    // The connection itself names no masking set.
    let broker = start_broker_with(
        &[db.connection("demo-pg", &["engineering"])],
        &format!("policy_file = {:?}\n{MASKING}", policy.to_string_lossy()),
    );
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let r = psql(&alice, "select email from customers order by id limit 1");
    assert_eq!(r.stdout.trim(), "****@example.com", "{r:#?}");
}
