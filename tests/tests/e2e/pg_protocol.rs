//! Protocol features real applications use, through the whole path
//! (client → hoopctl → TLS tunnel → broker → PostgreSQL): LISTEN/NOTIFY
//! across sessions, NoticeResponses, large values both ways, and pipelined
//! extended-protocol batches.

use std::time::Duration;

use hoop_e2e::*;

/// psql listens through the tunnel; another session (straight at the server)
/// notifies; psql prints the notification with its payload.
#[test]
fn listen_notify_reaches_a_psql_session_through_the_tunnel() {
    let (db, _broker, alice) = logged_in("alice");
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("listen.sql");
    // `\!` runs the notifier as a separate client between two statements;
    // psql reports notifications after each statement.
    let notifier = format!(
        "PGPASSWORD={} psql -X -q -h {} -p {} -U app -d demo -c \"NOTIFY jobs, 'from-outside'\"",
        db.password.expose(),
        db.pg.host(),
        db.pg.port()
    );
    std::fs::write(
        &script,
        format!("LISTEN jobs;\n\\! {notifier}\nSELECT 'after';\nNOTIFY jobs, 'to-myself';\n"),
    )
    .unwrap();
    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-f",
        &script.to_string_lossy(),
    ]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("Asynchronous notification \"jobs\" with payload \"from-outside\" received"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("Asynchronous notification \"jobs\" with payload \"to-myself\" received"),
        "{r:#?}"
    );
}

/// Server notices (RAISE NOTICE, "does not exist, skipping") reach psql.
#[test]
fn notices_reach_the_client() {
    let (_db, _broker, alice) = logged_in("alice");
    let r = alice.run(&[
        "connect",
        "demo-pg",
        "--",
        "psql",
        "-X",
        "-c",
        "DO $$ BEGIN RAISE NOTICE 'hello from plpgsql %', 42; END $$",
        "-c",
        "DROP TABLE IF EXISTS no_such_table_here",
    ]);
    r.assert_ok();
    assert!(
        r.stderr.contains("NOTICE:  hello from plpgsql 42"),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("table \"no_such_table_here\" does not exist, skipping"),
        "{r:#?}"
    );
}

/// A 20 MB parameter goes up and a 40 MB value comes back in one DataRow;
/// a pipelined batch of 200 extended-protocol queries answers in order; the
/// values arrive intact (checked by digest on the server and here).
#[test]
fn large_values_and_pipelined_batches_pass_intact() {
    let (_db, _broker, alice) = logged_in("alice");
    let tunnel = open_tunnel(&alice, "demo-pg");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&tunnel.conninfo(), tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres through the tunnel");
        let conn = tokio::spawn(conn);

        let big: String = (0..20 * 1024 * 1024)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        // Up: the server's digest of what it received matches ours.
        let row = client
            .query_one(
                "select length($1::text), encode(sha256(convert_to($1::text, 'UTF8')), 'hex')",
                &[&big],
            )
            .await
            .unwrap();
        let len: i32 = row.get(0);
        let digest: String = row.get(1);
        assert_eq!(len as usize, big.len());
        assert_eq!(
            digest,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big))
        );
        // Down: a 40 MB value in one DataRow.
        let row = client
            .query_one("select repeat($1::text, 2)", &[&big])
            .await
            .unwrap();
        let back: String = row.get(0);
        assert_eq!(back.len(), 2 * big.len());
        assert!(back.starts_with(&big) && back.ends_with(&big));

        // Pipelining: the 200 tasks all send before the first answer is read.
        let client = std::sync::Arc::new(client);
        let stmt = client.prepare("select $1::int * 2").await.unwrap();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200i32 {
            let (client, stmt) = (client.clone(), stmt.clone());
            set.spawn(async move {
                let row = client.query_one(&stmt, &[&i]).await.unwrap();
                (i, row.get::<_, i32>(0))
            });
        }
        let answers = tokio::time::timeout(Duration::from_secs(60), set.join_all())
            .await
            .expect("the pipelined batch answered");
        assert_eq!(answers.len(), 200);
        for (i, doubled) in answers {
            assert_eq!(doubled, i * 2);
        }
        drop(client);
        let _ = conn.await;
    });
}
