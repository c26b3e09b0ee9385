//! `hoopctl login` against a broker whose identity provider is a separate,
//! independent process: broker A trusts `[identity] issuer = "<B>/idp"`,
//! where B is a second `hoop-broker serve` used only for its built-in OIDC
//! provider. hoopctl knows only A's URL; it runs the device flow at B (from
//! A's `/v1/auth/config`), A validates B's tokens through B's discovery and
//! JWKS, and `logout` revokes the refresh token at B.

use hoop_e2e::*;

#[test]
fn login_through_an_independent_idp_then_whoami_then_logout_revokes() {
    // B: the independent identity provider (its broker part is unused).
    let idp = start_broker(&[]);
    // A: a broker that trusts B's provider and has no provider of its own.
    let identity = format!(
        "[identity]\nissuer = {:?}\nclient_id = \"hoopctl\"\nca_file = {:?}\n",
        format!("{}/idp", idp.url),
        idp.ca_file.to_string_lossy(),
    );
    let broker = start_broker_config(&[], "", &identity);
    assert_ne!(broker.url, idp.url);

    // hoopctl reaches A and B over TLS with different private CAs: one bundle.
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("cas.pem");
    let mut pem = std::fs::read(&broker.ca_file).unwrap();
    pem.extend(std::fs::read(&idp.ca_file).unwrap());
    std::fs::write(&bundle, pem).unwrap();

    let alice = User::new("alice", &broker);
    let mut login = alice.hoopctl();
    login.env("HOOP_TOKEN_STORE", "file").args([
        "login",
        "--broker",
        &broker.url,
        "--ca-file",
        bundle.to_str().unwrap(),
        "--no-browser",
    ]);
    // The code is approved at B, the provider, not at A.
    let r = drive_login(login, &idp.url, &idp.ca_file, "alice");
    r.assert_ok();
    assert!(
        r.stderr.contains(&format!("{}/idp/device", idp.url)),
        "verification URL is B's: {r:#?}"
    );
    assert!(
        r.stdout
            .contains(&format!("Logged in to {} as alice", broker.url)),
        "{r:#?}"
    );

    let file_store = || {
        let mut c = alice.hoopctl();
        c.env("HOOP_TOKEN_STORE", "file");
        c
    };
    let out = file_store().args(["whoami", "-v"]).output().unwrap();
    let who = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:#?}");
    assert!(who.contains("user:     alice"), "{who}");
    assert!(who.contains("engineering"), "{who}");
    assert!(who.contains("kind:     person"), "{who}");
    assert!(who.contains(&format!("issuer:   {}/idp", idp.url)), "{who}");

    // Logout revokes the refresh token at B, then leaves no token file.
    let tokens_file = alice.config_dir.join("tokens.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
    let refresh_token = stored["refresh_token"].as_str().unwrap().to_owned();
    let out = file_store().arg("logout").output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:#?}");
    assert!(
        said.contains(&format!(
            "Revoked the refresh token at {}/idp/revoke",
            idp.url
        )),
        "{said}"
    );
    assert!(
        !tokens_file.exists(),
        "logout left {}",
        tokens_file.display()
    );
    assert!(
        files_under(&alice.config_dir)
            .iter()
            .all(|(_, bytes)| !contains_bytes(bytes, refresh_token.as_bytes())),
        "the refresh token is still on disk"
    );

    // The revoked refresh token is dead at the provider itself.
    let ca = ::reqwest::Certificate::from_pem(&std::fs::read(&idp.ca_file).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        ::reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap()
            .post(format!("{}/idp/token", idp.url))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", "hoopctl"),
            ])
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 400, "revoked refresh token still works");

    let out = file_store().arg("whoami").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hoopctl login"));
}
