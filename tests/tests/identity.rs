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

    // Signed by the right key, but expired an hour ago.
    let expired = sign_token(
        &dev_claims(&broker, "alice", &["engineering"], -3600),
        &broker.idp_key_pem(),
        &kid,
        &alg,
    );
    let r = user
        .hoopctl()
        .args(["connections"])
        .env("HOOP_TOKEN", &expired)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("hoopctl login"), "{err}");

    // Valid claims, same kid, but signed by another key.
    let other = rcgen::KeyPair::generate_for(match alg.as_str() {
        "EdDSA" => &rcgen::PKCS_ED25519,
        "ES256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        _ => &rcgen::PKCS_RSA_SHA256,
    });
    if let Ok(other) = other {
        let forged = sign_token(
            &dev_claims(&broker, "alice", &["engineering"], 3600),
            other.serialize_pem().as_bytes(),
            &kid,
            &alg,
        );
        let r = user
            .hoopctl()
            .args(["connections"])
            .env("HOOP_TOKEN", &forged)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success());
        assert!(err.contains("not valid"), "{err}");
        assert!(err.contains("hoopctl login"), "{err}");
    }

    // A well-formed token from the right key works (the control case).
    let good = sign_token(
        &dev_claims(&broker, "alice", &["engineering"], 3600),
        &broker.idp_key_pem(),
        &kid,
        &alg,
    );
    let r = user
        .hoopctl()
        .args(["whoami"])
        .env("HOOP_TOKEN", &good)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    // Garbage is refused as invalid, and the broker survives it.
    let r = user
        .hoopctl()
        .args(["connections"])
        .env("HOOP_TOKEN", "garbage.token.here")
        .output()
        .unwrap();
    assert!(!r.status.success());
    let r = user
        .hoopctl()
        .args(["whoami"])
        .env("HOOP_TOKEN", &good)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "broker still serves after garbage: {r:?}"
    );
}

#[test]
fn unreachable_broker_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
