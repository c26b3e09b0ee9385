//! Login and token handling against the real broker and its built-in provider.

use hoop_e2e::*;

fn broker_with_demo() -> (DemoDb, BrokerProcess) {
    let db = DemoDb::start();
    let broker = start_broker(&[db.connection("demo-pg", &["engineering", "sre"])]);
    (db, broker)
}

#[test]
fn login_then_whoami_and_connections() {
    let (_db, broker) = broker_with_demo();
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let who = alice.run(&["whoami"]);
    who.assert_ok();
    assert!(
        who.stdout.contains("alice") && who.stdout.contains("engineering"),
        "{who:#?}"
    );
    let list = alice.run(&["connections", "-o", "json"]);
    list.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("demo-pg") && text.contains("postgres"),
        "{text}"
    );
}

#[test]
fn without_a_login_hoopctl_says_to_log_in() {
    let (_db, broker) = broker_with_demo();
    let carol = User::new("alice", &broker);
    carol.configure();
    let r = carol.run(&["connections"]);
    assert_ne!(r.code(), 0);
    assert!(r.stderr.contains("hoopctl login"), "{r:#?}");
}

#[test]
fn expired_and_foreign_tokens_are_refused_with_advice() {
    let (_db, broker) = broker_with_demo();
    let (kid, alg) = broker.jwks_key();
    let user = User::new("alice", &broker);
    user.configure();
    let sign = |key_pem: &[u8], exp_offset: i64| {
        sign_token(
            &dev_claims(&broker, "alice", &["engineering"], exp_offset),
            key_pem,
            &kid,
            &alg,
        )
    };
    let with_token = |token: &str, cmd: &str| {
        let out = user
            .hoopctl()
            .arg(cmd)
            .env("HOOP_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Signed by the right key, but expired an hour ago.
    let (ok, err) = with_token(&sign(&broker.idp_key_pem(), -3600), "connections");
    assert!(!ok);
    assert!(
        err.contains("expired") && err.contains("hoopctl login"),
        "{err}"
    );

    // Valid claims and the provider's kid, but signed by another key.
    let other = rcgen::KeyPair::generate_for(match alg.as_str() {
        "EdDSA" => &rcgen::PKCS_ED25519,
        "ES256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        other => panic!("the dev provider signs with {other}; extend this test"),
    })
    .unwrap();
    let (ok, err) = with_token(&sign(other.serialize_pem().as_bytes(), 3600), "connections");
    assert!(!ok);
    assert!(
        err.contains("not valid") && err.contains("hoopctl login"),
        "{err}"
    );

    // The control case: a well-formed token from the right key works.
    let good = sign(&broker.idp_key_pem(), 3600);
    let (ok, err) = with_token(&good, "whoami");
    assert!(ok, "{err}");

    // Garbage is refused as invalid, and the broker keeps serving.
    let (ok, err) = with_token("garbage.token.here", "connections");
    assert!(!ok && err.contains("hoopctl login"), "{err}");
    let (ok, err) = with_token(&good, "whoami");
    assert!(ok, "broker still serves after garbage: {err}");
}

#[test]
fn unreachable_broker_is_named_in_the_error() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let r = std::process::Command::new(bin("hoopctl"))
        .args(["connections"])
        .env("HOOP_CONFIG_DIR", dir.path())
        .env("HOOP_BROKER", format!("https://127.0.0.1:{port}"))
        .env("HOOP_TOKEN", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
