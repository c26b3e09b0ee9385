//! `hoopctl login` against a broker whose identity provider is a separate,
//! independent process: broker A trusts `[identity] issuer = "<B>/idp"`,
//! where B is a second `hoop-broker serve` used only for its built-in OIDC
//! provider. hoopctl knows only A's URL; it runs the device flow at B (from
//! A's `/v1/auth/config`), A validates B's tokens through B's discovery and
//! JWKS, and `logout` revokes the refresh token at B.

use hoop_e2e::*;

/// B, an independent identity provider (a broker used only for its built-in
/// provider), and the `[identity]` section of a broker A that trusts it,
/// with B's CA as `[identity] ca_file` when `with_ca_file`.
fn independent_idp(with_ca_file: bool) -> (BrokerProcess, String) {
    let idp = start_broker(&[]);
    let ca_line = if with_ca_file {
        format!("ca_file = {:?}\n", idp.ca_file.to_string_lossy())
    } else {
        String::new()
    };
    let identity = format!(
        "[identity]\nissuer = {:?}\nclient_id = \"hoopctl\"\n{ca_line}",
        format!("{}/idp", idp.url),
    );
    (idp, identity)
}

/// Concatenated PEM files, written to `dir/name`.
fn bundle(dir: &std::path::Path, name: &str, files: &[&std::path::Path]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut pem = Vec::new();
    for f in files {
        pem.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(&path, pem).unwrap();
    path
}

#[test]
fn login_through_an_independent_idp_then_whoami_then_logout_revokes() {
    // B: the independent identity provider (its broker part is unused).
    // A: a broker that trusts B's provider and has no provider of its own.
    let (idp, identity) = independent_idp(true);
    let broker = start_broker_config(&[], "", &identity);
    assert_ne!(broker.url, idp.url);

    // hoopctl reaches A and B over TLS with different private CAs: one bundle.
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle(tmp.path(), "cas.pem", &[&broker.ca_file, &idp.ca_file]);

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

/// A provider behind a private CA: the broker's `[identity] ca_file` is all
/// the setup there is. The broker advertises that CA with its login settings,
/// so hoopctl needs only the broker's own CA (no bundle) to log in, refresh
/// and revoke at the provider.
#[test]
fn login_trusts_the_provider_ca_the_broker_advertises() {
    let (idp, identity) = independent_idp(true);
    let broker = start_broker_config(&[], "", &identity);
    let alice = User::new("alice", &broker);
    let mut login = alice.hoopctl();
    login.env("HOOP_TOKEN_STORE", "file").args([
        "login",
        "--broker",
        &broker.url,
        "--ca-file",
        broker.ca_file.to_str().unwrap(),
        "--no-browser",
    ]);
    let r = drive_login(login, &idp.url, &idp.ca_file, "alice");
    r.assert_ok();
    assert!(
        r.stdout
            .contains(&format!("Logged in to {} as alice", broker.url)),
        "{r:#?}"
    );
    let out = alice
        .hoopctl()
        .env("HOOP_TOKEN_STORE", "file")
        .arg("logout")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "Revoked the refresh token at {}/idp/revoke",
            idp.url
        )),
        "{out:#?}"
    );
}

/// A broker that trusts its provider through the system trust store
/// (`SSL_CERT_FILE`) advertises no CA. hoopctl then refuses the provider's
/// certificate with the fix in the message, and logs in with
/// `--idp-ca-file`, or with the CA in its own system trust store.
#[test]
fn an_untrusted_provider_certificate_names_the_fix_and_each_fix_works() {
    let (idp, identity) = independent_idp(false);
    let broker = start_broker_config_env(
        &[],
        "",
        &identity,
        &[("SSL_CERT_FILE", idp.ca_file.as_path())],
    );
    let alice = User::new("alice", &broker);
    let login_args = |extra: &[&str]| {
        let mut c = alice.hoopctl();
        c.env("HOOP_TOKEN_STORE", "file")
            .env_remove("SSL_CERT_FILE")
            .args(["login", "--broker", &broker.url, "--no-browser"])
            .args(extra);
        c
    };

    let out = login_args(&["--ca-file", broker.ca_file.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:#?}");
    assert!(
        err.contains(&format!(
            "the identity provider's TLS certificate at {}/idp",
            idp.url
        )) && err.contains("is not trusted")
            && err.contains("--idp-ca-file"),
        "{err}"
    );

    // Fix 1: --idp-ca-file.
    let r = drive_login(
        login_args(&[
            "--ca-file",
            broker.ca_file.to_str().unwrap(),
            "--idp-ca-file",
            idp.ca_file.to_str().unwrap(),
        ]),
        &idp.url,
        &idp.ca_file,
        "alice",
    );
    r.assert_ok();

    // Fix 2: both CAs in hoopctl's system trust store, no flags at all.
    let tmp = tempfile::tempdir().unwrap();
    let system = bundle(tmp.path(), "system.pem", &[&broker.ca_file, &idp.ca_file]);
    let mut login = login_args(&[]);
    login
        .env("SSL_CERT_FILE", &system)
        .env_remove("HOOP_CA_FILE");
    let r = drive_login(login, &idp.url, &idp.ca_file, "alice");
    r.assert_ok();
    assert!(
        r.stdout
            .contains(&format!("Logged in to {} as alice", broker.url)),
        "{r:#?}"
    );
}
