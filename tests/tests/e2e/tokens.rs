//! Bearer tokens against the real broker: bad tokens of every kind, workload identity, key rotation, a provider that is down.
//!
//! Each test starts `hoop-broker serve` and real token issuers over HTTP on
//! 127.0.0.1, calls `GET /v1/me` with `Authorization: Bearer`, and reads the
//! broker's audit trail straight from its SQLite file.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hoop_e2e::issuer::{RsaKey, TestIssuer, now, start_broker_with_identity};
use hoop_e2e::*;
use serde_json::{Value, json};

/// `GET /v1/me` with a bearer token.
fn whoami(api: &Api, token: &str) -> (u16, Value) {
    api.call("GET", "/v1/me", token, None)
}

const WORKLOAD_AUD: &str = "hoop";
const MAIN_SUB: &str = "repo:acme/api:ref:refs/heads/main";

/// `[identity]` settings and one trusted workload issuer with two rules.
fn workload_toml(issuer: &TestIssuer) -> String {
    format!(
        r#"
[identity]
key_refetch_interval = "1s"

[[identity.workload]]
name = "github"
issuer = "{url}"
audience = "{WORKLOAD_AUD}"

[[identity.workload.rules]]
service = "api-deploy"
groups = ["ci", "deployers"]
claims = {{ sub = "{MAIN_SUB}", repository_owner = "acme" }}

[[identity.workload.rules]]
service = "acme-ci"
groups = ["ci"]
claims = {{ sub = "repo:acme/*", repository_owner = "acme" }}
"#,
        url = issuer.url()
    )
}

fn workload_claims(issuer: &TestIssuer, sub: &str, owner: &str) -> Value {
    let mut c = issuer.claims(WORKLOAD_AUD, sub);
    c["repository_owner"] = json!(owner);
    c["repository"] = json!("acme/api");
    c
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn part(token: &str, i: usize) -> String {
    token.split('.').nth(i).unwrap().to_owned()
}

fn decode_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part(token, i)).unwrap()).unwrap()
}

/// One bad token and what the broker must say about it.
struct Case {
    name: &'static str,
    token: String,
    class: &'static str,
    /// Words the message must contain.
    words: &'static str,
    /// The `iss` the audit event must record as claimed, if any.
    claimed_iss: Option<String>,
}

#[test]
fn bad_tokens_of_every_kind_are_refused_with_their_class_and_audited() {
    let gh = TestIssuer::start();
    let stranger = TestIssuer::start();
    let broker = start_broker_with(&[], &workload_toml(&gh));
    let api = Api::new(&broker);
    let (dev_kid, dev_alg) = broker.jwks_key();
    let dev_key = broker.idp_key_pem();
    let dev_iss = format!("{}/idp", broker.url);

    // The control: a good workload token is accepted.
    let good = gh.sign(&workload_claims(&gh, MAIN_SUB, "acme"));
    let (status, body) = whoami(&api, &good);
    assert_eq!(status, 200, "{body}");

    let n = now();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = workload_claims(&gh, MAIN_SUB, "acme");
        edit(&mut c);
        gh.sign(&c)
    };
    let header_b64 = part(&good, 0);
    let payload_b64 = part(&good, 1);
    let sig_b64 = part(&good, 2);
    let gh_iss = Some(gh.url().to_owned());

    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(gh.key().kid);
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs_header,
        &workload_claims(&gh, MAIN_SUB, "acme"),
        &jsonwebtoken::EncodingKey::from_secret(&gh.key().public_pem),
    )
    .unwrap();
    let mut tampered_payload = decode_part(&good, 1);
    tampered_payload["repository_owner"] = json!("evil");
    tampered_payload["sub"] = json!("repo:evil/api:ref:refs/heads/main");
    let mut tampered_header = decode_part(&good, 0);
    tampered_header["typ"] = json!("at+jwt");
    let other_key = RsaKey::generate();
    let dev_claims_for = |iss: &str, aud: &str| {
        json!({"iss": iss, "aud": aud, "sub": "dev:alice", "preferred_username": "alice",
               "groups": ["engineering"], "iat": n, "nbf": n, "exp": n + 600})
    };

    let cases = vec![
        Case {
            name: "expired",
            token: with(&|c| {
                c["exp"] = json!(n - 3600);
                c["iat"] = json!(n - 7200);
                c["nbf"] = json!(n - 7200);
            }),
            class: "expired",
            words: "has expired",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "not yet valid",
            token: with(&|c| c["nbf"] = json!(n + 3600)),
            class: "not_yet_valid",
            words: "not yet valid",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "issued in the future",
            token: with(&|c| c["iat"] = json!(n + 3600)),
            class: "issued_in_future",
            words: "issued in the future",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "wrong issuer (right key, iss not exactly the trusted URL)",
            token: with(&|c| c["iss"] = json!(format!("{}/", gh.url()))),
            class: "wrong_issuer",
            words: "wrong issuer",
            claimed_iss: Some(format!("{}/", gh.url())),
        },
        Case {
            name: "wrong audience",
            token: with(&|c| c["aud"] = json!("some-other-app")),
            class: "wrong_audience",
            words: "wrong audience",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "alg none",
            token: format!("{}.{payload_b64}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
            class: "unsupported_algorithm",
            words: "unsupported algorithm",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "HS256 signed with the RSA public key",
            token: hs256_with_public_key,
            class: "unsupported_algorithm",
            words: "unsupported algorithm",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "unknown kid",
            token: other_key.sign(&workload_claims(&gh, MAIN_SUB, "acme")),
            class: "unknown_key",
            words: "unknown signing key",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "another key claiming the trusted kid",
            token: {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                h.kid = Some(gh.key().kid);
                other_key.sign_with(&h, &workload_claims(&gh, MAIN_SUB, "acme"))
            },
            class: "bad_signature",
            words: "bad signature",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "tampered payload",
            token: format!(
                "{header_b64}.{}.{sig_b64}",
                b64(tampered_payload.to_string().as_bytes())
            ),
            class: "bad_signature",
            words: "bad signature",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "tampered header",
            token: format!(
                "{}.{payload_b64}.{sig_b64}",
                b64(tampered_header.to_string().as_bytes())
            ),
            class: "bad_signature",
            words: "bad signature",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "signature cut short",
            // Cut at a multiple of 4 characters, so it still decodes as base64.
            token: format!(
                "{header_b64}.{payload_b64}.{}",
                &sig_b64[..sig_b64.len() / 4 * 4 - 4]
            ),
            class: "bad_signature",
            words: "bad signature",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "truncated (no signature part)",
            token: format!("{header_b64}.{payload_b64}"),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "extra segments",
            token: format!("{good}.{sig_b64}"),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "non-JSON claims",
            token: format!("{header_b64}.{}.{sig_b64}", b64(b"this is not json")),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "claims that are JSON but not an object",
            token: format!("{header_b64}.{}.{sig_b64}", b64(b"[1,2,3]")),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "non-base64 claims",
            token: format!("{header_b64}.%%%not-base64%%%.{sig_b64}"),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "not a JWT at all",
            token: "garbage".into(),
            class: "malformed",
            words: "malformed token",
            claimed_iss: None,
        },
        Case {
            name: "oversized",
            token: format!(
                "{header_b64}.{}.{sig_b64}",
                b64(json!({"iss": gh.url(), "pad": "x".repeat(20_000)})
                    .to_string()
                    .as_bytes())
            ),
            class: "too_large",
            words: "token too large",
            claimed_iss: None,
        },
        Case {
            name: "token from an untrusted workload issuer",
            token: stranger.sign(&workload_claims(&stranger, MAIN_SUB, "acme")),
            class: "untrusted_issuer",
            words: "untrusted issuer",
            claimed_iss: Some(stranger.url().to_owned()),
        },
        Case {
            name: "workload token whose claims match no rule",
            token: gh.sign(&workload_claims(
                &gh,
                "repo:evil/api:ref:refs/heads/main",
                "evil",
            )),
            class: "no_matching_rule",
            words: "no matching rule",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "missing sub",
            token: with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            class: "missing_claim",
            words: "missing claim (sub)",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "missing exp",
            token: with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            class: "missing_claim",
            words: "missing claim (exp)",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "missing iss",
            token: with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
            class: "missing_claim",
            words: "missing claim (iss)",
            claimed_iss: None,
        },
        Case {
            name: "person token (dev IdP) presented with the workload audience",
            token: sign_token(
                &dev_claims_for(&dev_iss, WORKLOAD_AUD),
                &dev_key,
                &dev_kid,
                &dev_alg,
            ),
            class: "wrong_audience",
            words: "wrong audience",
            claimed_iss: Some(dev_iss.clone()),
        },
        Case {
            name: "person IdP's key signing a token that claims the workload issuer",
            token: sign_token(
                &dev_claims_for(gh.url(), WORKLOAD_AUD),
                &dev_key,
                &dev_kid,
                &dev_alg,
            ),
            class: "unknown_key",
            words: "unknown signing key",
            claimed_iss: gh_iss.clone(),
        },
        Case {
            name: "workload key signing a token that claims the person issuer",
            token: gh.sign(&dev_claims_for(&dev_iss, "hoopctl")),
            class: "unknown_key",
            words: "unknown signing key",
            claimed_iss: Some(dev_iss.clone()),
        },
        Case {
            name: "expired person token",
            token: sign_token(
                &dev_claims(&broker, "alice", &["engineering"], -3600),
                &dev_key,
                &dev_kid,
                &dev_alg,
            ),
            class: "expired",
            words: "has expired",
            claimed_iss: Some(dev_iss.clone()),
        },
    ];
    assert!(cases.len() >= 20);

    let before = broker.refusals_after(0).last().map_or(0, |r| r.id);
    let mut last = before;
    for case in &cases {
        let (status, body) = whoami(&api, &case.token);
        assert_eq!(
            status, 401,
            "{}: accepted or wrong status: {body}",
            case.name
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.words),
            "{}: message {message:?} should name {:?}",
            case.name,
            case.words
        );
        let code = body["error"]["code"].as_str().unwrap();
        let expected_code = if case.class == "expired" {
            "token_expired"
        } else {
            "invalid_token"
        };
        assert_eq!(code, expected_code, "{}", case.name);
        // People are told to log in; a CI job whose token matches no rule is
        // told what its operator must add (it cannot log in).
        let hint = body["error"]["hint"].as_str().unwrap_or_default();
        let expected_hint = if case.class == "no_matching_rule" {
            "[[identity.workload.rules]]"
        } else {
            "hoopctl login"
        };
        assert!(hint.contains(expected_hint), "{}: {body}", case.name);

        // Exactly one audit event, with the class, the claims, where from.
        let events = broker.refusals_after(last);
        assert_eq!(events.len(), 1, "{}: {events:?}", case.name);
        let ev = &events[0];
        last = ev.id;
        let d = &ev.detail;
        assert_eq!(d["class"], case.class, "{}: {}", case.name, ev.raw);
        assert_eq!(d["method"], "GET", "{}", case.name);
        assert_eq!(d["path"], "/v1/me", "{}", case.name);
        assert!(d["ip"].is_string(), "{}: {}", case.name, ev.raw);
        assert_eq!(d["message"], message, "{}", case.name);
        assert_eq!(
            d["iss"].as_str(),
            case.claimed_iss.as_deref(),
            "{}: {}",
            case.name,
            ev.raw
        );
        // Never the token: not whole, not its signature.
        let sig = case.token.rsplit('.').next().unwrap_or_default();
        assert!(
            !ev.raw.contains(&case.token),
            "{}: token in audit",
            case.name
        );
        assert!(
            sig.len() < 16 || !ev.raw.contains(sig),
            "{}: signature in audit",
            case.name
        );
        assert!(
            sig.len() < 16 || !message.contains(sig),
            "{}: signature in message",
            case.name
        );
    }

    // The refused-claims details: sub is recorded (not secret), and the
    // no-match message names the issuer and the sub.
    let all = broker.refusals_after(before);
    let no_rule = all
        .iter()
        .find(|e| e.detail["class"] == "no_matching_rule")
        .unwrap();
    assert_eq!(no_rule.detail["sub"], "repo:evil/api:ref:refs/heads/main");
    let msg = no_rule.detail["message"].as_str().unwrap();
    assert!(
        msg.contains("github") && msg.contains("repo:evil/api"),
        "{msg}"
    );

    // No bearer token at all, or an empty one: refused and audited as well.
    for header in [None, Some("Bearer "), Some("Basic YTpi")] {
        let (status, body) = api.request("GET", "/v1/me", header, None);
        assert_eq!(status, 401, "{header:?}: {body}");
        assert_eq!(body["error"]["code"], "missing_token", "{header:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("missing token")
        );
        let events = broker.refusals_after(last);
        assert_eq!(events.len(), 1, "{header:?}");
        assert_eq!(events[0].detail["class"], "missing_token");
        last = events[0].id;
    }

    // The untrusted issuer was never contacted; the good one still works.
    assert_eq!(stranger.discovery_hits() + stranger.jwks_hits(), 0);
    let (status, body) = whoami(&api, &good);
    assert_eq!(status, 200, "{body}");

    // Nothing of any token reached the broker's log either.
    let log = broker.log();
    for case in &cases {
        let sig = case.token.rsplit('.').next().unwrap_or_default();
        assert!(
            sig.len() < 16 || !log.contains(sig),
            "{}: signature in log",
            case.name
        );
    }
}

#[test]
fn a_workload_token_matching_a_rule_is_the_rules_service() {
    let gh = TestIssuer::start();
    let broker = start_broker_with(&[], &workload_toml(&gh));
    let api = Api::new(&broker);

    let (status, me) = whoami(&api, &gh.sign(&workload_claims(&gh, MAIN_SUB, "acme")));
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "api-deploy");
    assert_eq!(me["groups"], json!(["ci", "deployers"]));
    assert_eq!(me["kind"], "workload");
    assert_eq!(me["matched_rule"], "github: api-deploy");
    assert_eq!(me["subject"], MAIN_SUB);
    assert_eq!(me["issuer"], gh.url());

    // Another branch of the same org falls through to the glob rule.
    let dev_branch = "repo:acme/api:ref:refs/heads/feature-x";
    let (status, me) = whoami(&api, &gh.sign(&workload_claims(&gh, dev_branch, "acme")));
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "acme-ci");
    assert_eq!(me["matched_rule"], "github: acme-ci");

    // People keep logging in through the built-in provider beside it.
    let (kid, alg) = broker.jwks_key();
    let person = sign_token(
        &dev_claims(&broker, "alice", &["engineering"], 600),
        &broker.idp_key_pem(),
        &kid,
        &alg,
    );
    let (status, me) = whoami(&api, &person);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "alice");
    assert_eq!(me["kind"], "person");
    assert!(me.get("matched_rule").is_none(), "{me}");
}

#[test]
fn rotated_issuer_keys_are_used_without_a_broker_restart() {
    let gh = TestIssuer::start();
    let broker = start_broker_with(&[], &workload_toml(&gh));
    let api = Api::new(&broker);
    let claims = || workload_claims(&gh, MAIN_SUB, "acme");

    let before = gh.sign(&claims());
    assert_eq!(whoami(&api, &before).0, 200);
    let old = gh.rotate();
    let after = gh.sign(&claims());
    assert_ne!(part(&before, 0), part(&after, 0), "the kid changed");

    // The new key is fetched on demand (rate-limited to once per second
    // here by key_refetch_interval), so it is accepted within moments.
    let (status, me) = poll_until(
        "the rotated key to be accepted",
        Duration::from_secs(15),
        || {
            let (status, me) = whoami(&api, &after);
            (status == 200).then_some((status, me))
        },
    );
    assert_eq!(status, 200);
    assert_eq!(me["user"], "api-deploy");

    // The withdrawn key no longer vouches for anything, old or new tokens.
    for token in [before, old.sign(&claims())] {
        let (status, body) = whoami(&api, &token);
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown signing key"),
            "{body}"
        );
    }
    // Still the same broker process.
    assert_eq!(whoami(&api, &after).0, 200);
}

#[test]
fn the_broker_starts_and_serves_while_the_identity_provider_is_down() {
    let idp = TestIssuer::start();
    idp.set_available(false);
    let broker = start_broker_with_identity(&format!(
        "[identity]\nissuer = \"{}\"\nclient_id = \"hoopctl\"\naudience = \"hoop-broker\"\n",
        idp.url()
    ));
    let api = Api::new(&broker);

    // Login metadata: 502 with a clear message while the provider is down...
    let (status, body) = api.request("GET", hoop_shared::api::AUTH_CONFIG_PATH, None, None);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "identity_provider_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(idp.url()) && message.contains("503"),
        "{message}"
    );
    // ...and tokens cannot be checked either (no keys yet): 502, audited.
    let token = idp.sign(&idp.claims("hoop-broker", "person-1"));
    let (status, body) = whoami(&api, &token);
    assert_eq!(status, 502, "{body}");
    let last = broker.refusals_after(0);
    assert_eq!(last.last().unwrap().detail["class"], "provider_unavailable");

    // Once it is up, both resolve without restarting the broker.
    idp.set_available(true);
    let config = poll_until("the login config", Duration::from_secs(15), || {
        let (status, body) = api.request("GET", hoop_shared::api::AUTH_CONFIG_PATH, None, None);
        (status == 200).then_some(body)
    });
    assert_eq!(config["issuer"], idp.url());
    assert_eq!(config["client_id"], "hoopctl");
    assert_eq!(
        config["device_authorization_endpoint"],
        format!("{}/device/code", idp.url())
    );
    assert_eq!(config["token_endpoint"], format!("{}/token", idp.url()));
    assert_eq!(
        config["revocation_endpoint"],
        format!("{}/revoke", idp.url())
    );
    let me = poll_until("the token to be accepted", Duration::from_secs(15), || {
        let (status, body) = whoami(&api, &token);
        (status == 200).then_some(body)
    });
    assert_eq!(me["subject"], "person-1");
    assert_eq!(me["kind"], "person");

    // Down again: cached keys and cached login metadata keep working.
    idp.set_available(false);
    assert_eq!(whoami(&api, &token).0, 200);
    assert_eq!(
        api.request("GET", hoop_shared::api::AUTH_CONFIG_PATH, None, None)
            .0,
        200
    );
}

#[test]
fn the_dev_provider_publishes_its_revocation_endpoint() {
    let broker = start_broker(&[]);
    let api = Api::new(&broker);
    let (status, config) = api.request("GET", hoop_shared::api::AUTH_CONFIG_PATH, None, None);
    assert_eq!(status, 200, "{config}");
    assert_eq!(
        config["revocation_endpoint"],
        format!("{}/idp/revoke", broker.url)
    );
    let (_, discovery) = api.request("GET", "/idp/.well-known/openid-configuration", None, None);
    assert_eq!(
        discovery["revocation_endpoint"],
        config["revocation_endpoint"]
    );
}
