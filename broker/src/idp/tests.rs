//! Device flow, tokens and key handling, over real HTTP on 127.0.0.1.

use std::os::unix::fs::PermissionsExt as _;

use reqwest::StatusCode as Status;

use super::*;
use crate::auth::{AuthError, TokenVerifier, VerifierSettings};

const CLIENT: &str = "hoopctl";
const AUDIENCE: &str = "hoop-broker";

struct TestIdp {
    idp: Arc<DevIdp>,
    issuer: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

fn builtin_config() -> BuiltinIdpConfig {
    toml::from_str(
        r#"users = [{ name = "alice", groups = ["engineering", "<b>oncall</b>"] },
                    { name = "bob" }]"#,
    )
    .unwrap()
}

impl TestIdp {
    async fn start() -> TestIdp {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    /// Serves a provider for `dir` under `/idp`, as the broker mounts it.
    async fn start_in(dir: tempfile::TempDir) -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/idp", listener.local_addr().unwrap());
        let idp = Arc::new(
            DevIdp::new(
                dir.path(),
                &builtin_config(),
                issuer.clone(),
                AUDIENCE.into(),
                CLIENT.into(),
            )
            .unwrap(),
        );
        idp.set_poll_interval(Duration::ZERO);
        let app = Router::new().nest("/idp", idp.clone().router());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIdp {
            idp,
            issuer,
            http: reqwest::Client::new(),
            dir,
            _server: server,
        }
    }

    fn verifier(&self, audience: &str) -> TokenVerifier {
        TokenVerifier::new(
            VerifierSettings {
                issuer: self.issuer.clone(),
                audience: audience.into(),
                username_claim: "preferred_username".into(),
                groups_claim: "groups".into(),
                refetch_interval: crate::auth::DEFAULT_REFETCH_INTERVAL,
            },
            reqwest::Client::new(),
        )
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.issuer))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, path: &str, form: &[(&str, &str)]) -> (Status, Value) {
        let resp = self.post(path, form).await;
        let status = resp.status();
        if path == "/token" {
            assert_eq!(resp.headers()["cache-control"], "no-store");
        }
        (status, resp.json().await.unwrap())
    }

    /// Starts a login; returns the device authorization response.
    async fn device_code(&self) -> Value {
        let (status, body) = self
            .post_json(
                "/device/code",
                &[
                    ("client_id", CLIENT),
                    ("scope", "openid profile offline_access"),
                ],
            )
            .await;
        assert_eq!(status, Status::OK, "{body}");
        body
    }

    async fn poll(&self, device: &Value) -> (Status, Value) {
        self.post_json(
            "/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device["device_code"].as_str().unwrap()),
                ("client_id", CLIENT),
            ],
        )
        .await
    }

    /// Submits the verification form; returns status and page text.
    async fn decide(&self, fields: &[(&str, &str)]) -> (Status, String) {
        let resp = self.post("/device", fields).await;
        (resp.status(), resp.text().await.unwrap())
    }

    /// A whole login as `user`; returns the token response.
    async fn login(&self, user: &str) -> Value {
        let device = self.device_code().await;
        let code = device["user_code"].as_str().unwrap();
        let (status, _) = self
            .decide(&[("user_code", code), ("username", user)])
            .await;
        assert_eq!(status, Status::OK);
        let (status, tokens) = self.poll(&device).await;
        assert_eq!(status, Status::OK, "{tokens}");
        tokens
    }

    async fn refresh(&self, refresh_token: &str) -> (Status, Value) {
        self.post_json(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", CLIENT),
            ],
        )
        .await
    }
}

fn error_code(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn full_device_flow_issues_tokens_the_broker_accepts() {
    let t = TestIdp::start().await;
    let device = t.device_code().await;
    let user_code = device["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(user_code.as_bytes()[4], b'-');
    assert!(device["device_code"].as_str().unwrap().len() >= 43);
    assert_eq!(device["verification_uri"], format!("{}/device", t.issuer));
    assert_eq!(
        device["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", t.issuer)
    );
    assert_eq!(device["expires_in"], 600);
    assert_eq!(device["interval"], 0);

    let (status, body) = t.poll(&device).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "authorization_pending")
    );

    // The verification page, as the user opens it from the complete URI.
    let page = t
        .http
        .get(device["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), Status::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{user_code}\"")), "{html}");
    assert!(html.contains("alice") && html.contains("bob"));
    assert!(
        html.contains("engineering, &lt;b&gt;oncall&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b>oncall"));

    // Typed in lower case without the dash, approved as alice.
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, html) = t
        .decide(&[("user_code", &typed), ("username", "alice")])
        .await;
    assert_eq!(status, Status::OK);
    assert!(html.contains("Signed in as alice"), "{html}");

    let (status, tokens) = t.poll(&device).await;
    assert_eq!(status, Status::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 8 * 3600);
    assert_eq!(tokens["scope"], "openid profile offline_access");
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);

    // The broker validates the access token exactly as an external one.
    let access = tokens["access_token"].as_str().unwrap();
    let id = t.verifier(AUDIENCE).verify(access).await.unwrap();
    assert_eq!(id.user, "alice");
    assert_eq!(id.subject, "dev:alice");
    assert_eq!(id.groups, ["engineering", "<b>oncall</b>"]);
    assert_eq!(id.issuer, t.issuer);
    // The ID token is for the client, not the broker.
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        t.verifier(CLIENT).verify(id_token).await.unwrap().user,
        "alice"
    );
    assert!(matches!(
        t.verifier(AUDIENCE).verify(id_token).await,
        Err(AuthError::Invalid(_))
    ));

    // A device code yields tokens once.
    let (status, body) = t.poll(&device).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn polling_faster_than_the_interval_is_told_to_slow_down() {
    let t = TestIdp::start().await;
    t.idp.set_poll_interval(Duration::from_secs(2));
    let device = t.device_code().await;
    assert_eq!(device["interval"], 2);
    let (_, body) = t.poll(&device).await;
    assert_eq!(error_code(&body), "authorization_pending");
    let (status, body) = t.poll(&device).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "slow_down")
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("7 s"),
        "the interval grows by 5 s: {body}"
    );
    let (_, body) = t.poll(&device).await;
    assert_eq!(error_code(&body), "slow_down");
}

#[tokio::test]
async fn a_denied_login_is_reported_and_cannot_be_approved_later() {
    let t = TestIdp::start().await;
    let device = t.device_code().await;
    let code = device["user_code"].as_str().unwrap();
    let (status, html) = t.decide(&[("user_code", code), ("action", "deny")]).await;
    assert_eq!(status, Status::OK);
    assert!(html.contains("denied"), "{html}");
    let (status, body) = t.poll(&device).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "access_denied")
    );
    let (status, html) = t
        .decide(&[
            ("user_code", code),
            ("username", "alice"),
            ("action", "approve"),
        ])
        .await;
    assert_eq!(status, Status::BAD_REQUEST);
    assert!(html.contains("already been used"), "{html}");
    let (_, body) = t.poll(&device).await;
    assert_eq!(error_code(&body), "access_denied");
}

#[tokio::test]
async fn expired_device_codes_are_refused() {
    let t = TestIdp::start().await;
    let device = t.device_code().await;
    let code = device["user_code"].as_str().unwrap();
    t.idp
        .advance_clock(DEVICE_CODE_TTL + Duration::from_secs(1));
    let (status, body) = t.poll(&device).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "expired_token")
    );
    let (status, html) = t
        .decide(&[("user_code", code), ("username", "alice")])
        .await;
    assert_eq!(status, Status::BAD_REQUEST);
    assert!(html.contains("expired"), "{html}");
    // Long after, the code is forgotten altogether.
    t.idp.advance_clock(EXPIRED_GRACE);
    let (_, body) = t.poll(&device).await;
    assert_eq!(error_code(&body), "invalid_grant");
}

#[tokio::test]
async fn the_verification_form_refuses_bad_input_with_a_clear_page() {
    let t = TestIdp::start().await;
    let device = t.device_code().await;
    let code = device["user_code"].as_str().unwrap();
    for (fields, expect) in [
        (
            vec![("user_code", "BCDF-GHJK"), ("username", "alice")],
            "Unknown or expired",
        ),
        (
            vec![("user_code", "nonsense"), ("username", "alice")],
            "not a valid code",
        ),
        (
            vec![("user_code", code), ("username", "mallory")],
            "listed users",
        ),
        (vec![("user_code", code)], "listed users"),
        (
            vec![("user_code", code), ("username", "alice"), ("action", "x")],
            "Unknown action",
        ),
    ] {
        let (status, html) = t.decide(&fields).await;
        assert_eq!(status, Status::BAD_REQUEST, "{fields:?}");
        assert!(html.contains(expect), "{fields:?}: {html}");
    }
    // Still pending after all that.
    let (_, body) = t.poll(&device).await;
    assert_eq!(error_code(&body), "authorization_pending");

    // Whatever is put in the query comes back escaped.
    let html = t
        .http
        .get(format!("{}/device?user_code=%3Cscript%3E", t.issuer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
}

#[tokio::test]
async fn only_the_configured_client_is_served() {
    let t = TestIdp::start().await;
    for form in [
        vec![("client_id", "someone-else")],
        vec![("scope", "openid")],
    ] {
        let (status, body) = t.post_json("/device/code", &form).await;
        assert_eq!(
            (status, error_code(&body)),
            (Status::UNAUTHORIZED, "invalid_client")
        );
    }
    // OAuth libraries often identify a public client with HTTP Basic.
    let resp = t
        .http
        .post(format!("{}/device/code", t.issuer))
        .basic_auth(CLIENT, Some(""))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), Status::OK);

    let device = t.device_code().await;
    let (status, body) = t
        .post_json(
            "/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device["device_code"].as_str().unwrap()),
                ("client_id", "someone-else"),
            ],
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::UNAUTHORIZED, "invalid_client")
    );
    let (status, body) = t.post_json("/token", &[("grant_type", "password")]).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "unsupported_grant_type")
    );
    let (_, body) = t
        .post_json(
            "/token",
            &[("grant_type", DEVICE_CODE_GRANT), ("client_id", CLIENT)],
        )
        .await;
    assert_eq!(error_code(&body), "invalid_request");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_chain() {
    let t = TestIdp::start().await;
    let tokens = t.login("bob").await;
    let first = tokens["refresh_token"].as_str().unwrap();

    let (status, renewed) = t.refresh(first).await;
    assert_eq!(status, Status::OK, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    let id = t
        .verifier(AUDIENCE)
        .verify(renewed["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(id.user, "bob");
    assert!(id.groups.is_empty());

    // The old token is spent; presenting it also revokes its successor.
    let (status, body) = t.refresh(first).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "invalid_grant")
    );
    let (_, body) = t.refresh(second).await;
    assert_eq!(error_code(&body), "invalid_grant");
    let (_, body) = t.refresh("made-up").await;
    assert_eq!(error_code(&body), "invalid_grant");
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let t = TestIdp::start().await;
    let doc: Value = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], t.issuer);
    assert_eq!(doc["token_endpoint"], format!("{}/token", t.issuer));
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{}/device/code", t.issuer)
    );
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!(DEVICE_CODE_GRANT)) && grants.contains(&json!("refresh_token")));
    let jwks: Value = t
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("EdDSA"))
    );
    assert!(
        key.get("d").is_none(),
        "the JWKS must not carry the private key"
    );

    let auth = t.idp.auth_config(vec!["openid".into()]);
    assert_eq!(auth.issuer, t.issuer);
    assert_eq!(
        auth.device_authorization_endpoint,
        doc["device_authorization_endpoint"]
    );
    assert_eq!(auth.token_endpoint, doc["token_endpoint"]);
    assert_eq!(auth.client_id, CLIENT);
    assert_eq!(doc["revocation_endpoint"], format!("{}/revoke", t.issuer));
    assert_eq!(
        auth.revocation_endpoint.as_deref(),
        doc["revocation_endpoint"].as_str()
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_whole_chain() {
    let t = TestIdp::start().await;
    let tokens = t.login("alice").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, renewed) = t.refresh(&first).await;
    let second = renewed["refresh_token"].as_str().unwrap().to_owned();
    // Another login of the same user is a separate grant.
    let other = t.login("alice").await;
    let other = other["refresh_token"].as_str().unwrap();

    // Revoking the spent ancestor revokes the live descendant too.
    let resp = t
        .post(
            "/revoke",
            &[
                ("token", &first),
                ("token_type_hint", "refresh_token"),
                ("client_id", CLIENT),
            ],
        )
        .await;
    assert_eq!(resp.status(), Status::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (_, body) = t.refresh(&second).await;
    assert_eq!(error_code(&body), "invalid_grant");
    let (status, _) = t.refresh(other).await;
    assert_eq!(status, Status::OK, "an unrelated grant survives");

    // RFC 7009 §2.2: unknown tokens and access tokens get 200 as well.
    for token in ["made-up", tokens["access_token"].as_str().unwrap()] {
        let resp = t
            .post("/revoke", &[("token", token), ("client_id", CLIENT)])
            .await;
        assert_eq!(resp.status(), Status::OK);
    }
    // A missing token or a foreign client is an error.
    let (status, body) = t.post_json("/revoke", &[("client_id", CLIENT)]).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "invalid_request")
    );
    let (status, body) = t
        .post_json("/revoke", &[("token", "x"), ("client_id", "someone-else")])
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::UNAUTHORIZED, "invalid_client")
    );
}

#[tokio::test]
async fn the_signing_key_survives_restarts_and_is_private() {
    let t = TestIdp::start().await;
    let access = t.login("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = t.dir.path().join("idp").join(KEY_FILE);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let kid = t.idp.key.kid.clone();

    // A "restarted" broker: same data dir, new server (new port, so a new
    // issuer URL; the token is re-checked against the key, not the URL).
    let TestIdp { dir, _server, .. } = t;
    _server.abort();
    let again = TestIdp::start_in(dir).await;
    assert_eq!(again.idp.key.kid, kid);
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let jwks: Value = again
        .http
        .get(format!("{}/jwks", again.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(
        &serde_json::from_value(jwks["keys"][0].clone()).unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    jsonwebtoken::decode::<Value>(&access, &decoding, &validation).unwrap();

    // A key file others can read is refused with the fix in the message.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = DevIdp::new(
        again.dir.path(),
        &builtin_config(),
        again.issuer.clone(),
        AUDIENCE.into(),
        CLIENT.into(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    // So is a file that is not a key.
    std::fs::write(&path, "not a key").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = DevIdp::new(
        again.dir.path(),
        &builtin_config(),
        again.issuer.clone(),
        AUDIENCE.into(),
        CLIENT.into(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("delete the file"), "{err}");
}

#[tokio::test]
async fn tokens_signed_by_another_key_are_refused() {
    let t = TestIdp::start().await;
    let verifier = t.verifier(AUDIENCE);
    let genuine = t.login("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    verifier.verify(&genuine).await.unwrap();

    // Same claims, same kid, another Ed25519 key.
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&genuine)
        .unwrap()
        .claims;
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(t.idp.key.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(other.serialized_der()),
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(AuthError::Invalid(_))
    ));

    // A token from another development provider (another data dir) naming
    // our issuer: its kid is unknown here.
    let stranger = DevIdp::new(
        tempfile::tempdir().unwrap().path(),
        &builtin_config(),
        t.issuer.clone(),
        AUDIENCE.into(),
        CLIENT.into(),
    )
    .unwrap();
    let user = stranger.user("alice").unwrap().clone();
    let mut state = GrantState::default();
    let resp = stranger
        .issue(&mut state, &user, "openid", "chain".into(), None)
        .ok()
        .unwrap();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let tokens: Value = serde_json::from_slice(&body).unwrap();
    let result = verifier
        .verify(tokens["access_token"].as_str().unwrap())
        .await;
    assert!(matches!(result, Err(AuthError::Invalid(_))), "{result:?}");
}

#[test]
fn user_codes_are_unambiguous_and_typed_loosely() {
    for _ in 0..100 {
        let code = new_user_code();
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        assert!(!code.contains(['A', 'E', 'I', 'O', 'U', '0', '1', 'Y']));
    }
    assert_eq!(
        normalize_user_code(" bcdf-ghjk ").as_deref(),
        Some("BCDFGHJK")
    );
    assert_eq!(normalize_user_code("BCDF-GHJ"), None);
    assert_eq!(normalize_user_code("BCDF-GHJA"), None);
    assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
}

/// The `request` hidden field of an authorization page.
fn request_field(html: &str) -> String {
    let start = html.find("name=\"request\" value=\"").unwrap() + 22;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The query parameters of a redirect's `Location`.
fn location_params(resp: &reqwest::Response) -> (String, HashMap<String, String>) {
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let params = loc.query_pairs().into_owned().collect();
    let mut base = loc.clone();
    base.set_query(None);
    (base.to_string(), params)
}

#[tokio::test]
async fn authorization_code_flow_with_pkce_signs_in_the_chosen_user_once() {
    let t = TestIdp::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = t.issuer.trim_end_matches("/idp").to_owned();
    let redirect_uri = format!("{origin}/approvals/callback");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let authorize = |extra: &[(&str, &str)]| {
        let mut q: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", &redirect_uri),
            ("state", "s<1>"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "n-1"),
        ];
        for (k, v) in extra {
            q.retain(|(qk, _)| qk != k);
            if !v.is_empty() {
                q.push((k, v));
            }
        }
        http.get(format!("{}/authorize", t.issuer)).query(&q).send()
    };

    // Discovery announces the flow.
    let disc: Value = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        disc["authorization_endpoint"],
        format!("{}/authorize", t.issuer)
    );
    assert_eq!(disc["code_challenge_methods_supported"], json!(["S256"]));

    // Unknown clients and foreign redirect URIs get a page, never a redirect.
    for bad in [
        ("client_id", "other"),
        ("redirect_uri", "https://evil.example/cb"),
        ("redirect_uri", ""),
    ] {
        let resp = authorize(&[bad]).await.unwrap();
        assert_eq!(resp.status(), Status::BAD_REQUEST, "{bad:?}");
        assert!(resp.headers().get("location").is_none());
    }
    // Without PKCE (or with `plain`) the client is told, with its state.
    for bad in [("code_challenge", ""), ("code_challenge_method", "plain")] {
        let resp = authorize(&[bad]).await.unwrap();
        assert_eq!(resp.status(), Status::SEE_OTHER, "{bad:?}");
        let (base, p) = location_params(&resp);
        assert_eq!(base, redirect_uri);
        assert_eq!(p["error"], "invalid_request");
        assert_eq!(p["state"], "s<1>");
    }

    // The picker, then bob: back to the client with a code, state and iss.
    let page = authorize(&[]).await.unwrap();
    assert_eq!(page.status(), Status::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {origin}")),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"bob\""), "{html}");
    let request = request_field(&html);
    let form = [
        ("request", request.as_str()),
        ("username", "bob"),
        ("action", "approve"),
    ];
    let back = http
        .post(format!("{}/authorize", t.issuer))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), Status::SEE_OTHER);
    let (base, p) = location_params(&back);
    assert_eq!(base, redirect_uri);
    assert_eq!(p["state"], "s<1>");
    assert_eq!(p["iss"], t.issuer);
    let code = p["code"].clone();
    // The same page cannot be answered twice.
    let again = http
        .post(format!("{}/authorize", t.issuer))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), Status::BAD_REQUEST);

    let redeem = |code: String, verifier: &'static str, redirect: String| {
        let t = &t;
        async move {
            t.post_json(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("code_verifier", verifier),
                    ("redirect_uri", &redirect),
                    ("client_id", CLIENT),
                ],
            )
            .await
        }
    };
    // A wrong verifier burns the code.
    let (status, body) = redeem(
        code.clone(),
        "wrong-verifier-wrong-verifier-wrong-verifier-1",
        redirect_uri.clone(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "invalid_grant")
    );
    let (status, _) = redeem(code, verifier, redirect_uri.clone()).await;
    assert_eq!(status, Status::BAD_REQUEST, "a code is worth one attempt");

    // A fresh sign-in redeems with the right verifier, once.
    let html = authorize(&[]).await.unwrap().text().await.unwrap();
    let request = request_field(&html);
    let back = http
        .post(format!("{}/authorize", t.issuer))
        .form(&[("request", request.as_str()), ("username", "bob")])
        .send()
        .await
        .unwrap();
    let code = location_params(&back).1["code"].clone();
    let (status, tokens) = redeem(code.clone(), verifier, redirect_uri.clone()).await;
    assert_eq!(status, Status::OK, "{tokens}");
    let id = t
        .verifier(AUDIENCE)
        .verify(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(id.user, "bob");
    let claims = t
        .verifier(CLIENT)
        .verify_claims(tokens["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["nonce"], "n-1");
    let (status, body) = redeem(code, verifier, redirect_uri.clone()).await;
    assert_eq!(
        (status, error_code(&body)),
        (Status::BAD_REQUEST, "invalid_grant")
    );

    // Cancelling sends access_denied back.
    let html = authorize(&[]).await.unwrap().text().await.unwrap();
    let request = request_field(&html);
    let back = http
        .post(format!("{}/authorize", t.issuer))
        .form(&[("request", request.as_str()), ("action", "deny")])
        .send()
        .await
        .unwrap();
    let p = location_params(&back).1;
    assert_eq!(p["error"], "access_denied");
    assert!(!p.contains_key("code"));
}
