//! Just-in-time access through the broker's API, end to end against the real
//! broker process and PostgreSQL: policy says `approval`, alice asks with a
//! reason, her own approval is refused, bob (sre) approves, the grant opens a
//! session that lasts until the grant ends, and a revoked grant opens nothing.

use hoop_e2e::*;
use serde_json::json;

#[test]
fn approval_flow_grants_once_refuses_self_approval_and_honours_revocation() {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, JIT_POLICY).unwrap();
    let broker = start_broker_with(
        &[db.connection("demo-pg", &["engineering"])],
        &format!("policy_file = {:?}\n", policy.to_string_lossy()),
    );
    let api = Api::new(&broker);
    let alice = dev_token(&broker, "alice", &["engineering"]);
    let bob = dev_token(&broker, "bob", &["sre"]);
    let eve = dev_token(&broker, "eve", &["engineering"]);

    // A session needs approval, and the answer says from whom.
    let (status, body) = api.call(
        "POST",
        "/v1/sessions",
        &alice,
        Some(json!({"connection": "demo-pg"})),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "approval_required");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("group sre"),
        "{body}"
    );

    // The rule wants a justification; a too-long grant is refused.
    let (status, body) = api.call(
        "POST",
        "/v1/requests",
        &alice,
        Some(json!({"connection": "demo-pg"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("justification_required"))
    );
    let (status, body) = api.call(
        "POST",
        "/v1/requests",
        &alice,
        Some(
            json!({"connection": "demo-pg", "reason": "INC-42 investigate", "duration_secs": 7200}),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1h"),
        "{body}"
    );

    let (status, req) = api.call(
        "POST",
        "/v1/requests",
        &alice,
        Some(json!({"connection": "demo-pg", "reason": "INC-42 investigate"})),
    );
    assert_eq!(status, 201, "{req}");
    assert_eq!(req["state"], "pending");
    assert_eq!(req["duration_secs"], 900);
    let id = req["id"].as_str().unwrap().to_owned();

    // It shows up for bob, not for alice or eve (not approvers).
    let (_, list) = api.call("GET", "/v1/approvals", &bob, None);
    assert_eq!(list["requests"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["requests"][0]["reason"], "INC-42 investigate");
    let (_, list) = api.call("GET", "/v1/approvals", &alice, None);
    assert_eq!(list["requests"].as_array().unwrap().len(), 0);

    // Self-approval and non-approvers are refused; nothing is granted.
    let (status, body) = api.call("POST", &format!("/v1/requests/{id}/approve"), &alice, None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("self_approval")),
        "{body}"
    );
    let (status, _) = api.call("POST", &format!("/v1/requests/{id}/approve"), &eve, None);
    assert_eq!(status, 403);
    let (status, _) = api.call(
        "POST",
        "/v1/sessions",
        &alice,
        Some(json!({"connection": "demo-pg", "request_id": id})),
    );
    assert_eq!(status, 403, "a pending request opens nothing");

    // bob approves: the grant opens a session lasting until the grant ends.
    let (status, approved) = api.call(
        "POST",
        &format!("/v1/requests/{id}/approve"),
        &bob,
        Some(json!({"comment": "ok for INC-42"})),
    );
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    let grant_end = approved["grant_ends_at"].as_u64().unwrap();
    let (status, session) = api.call(
        "POST",
        "/v1/sessions",
        &alice,
        Some(json!({"connection": "demo-pg", "request_id": id})),
    );
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["expires_at"].as_u64(), Some(grant_end));
    // Someone else's grant is not yours.
    let (status, _) = api.call(
        "POST",
        "/v1/sessions",
        &eve,
        Some(json!({"connection": "demo-pg", "request_id": id})),
    );
    assert_eq!(status, 404);
    // A decided request takes no more decisions.
    let (status, body) = api.call(
        "POST",
        &format!("/v1/requests/{id}/deny"),
        &bob,
        Some(json!({"comment": "x"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("request_closed")),
        "{body}"
    );

    // Revoked: the session's tunnel is refused, and no new session opens.
    let session_id = session["session_id"].as_str().unwrap();
    let (status, revoked) = api.call(
        "POST",
        &format!("/v1/requests/{id}/revoke"),
        &bob,
        Some(json!({"comment": "done"})),
    );
    assert_eq!(
        (status, revoked["state"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    let (status, body) = api.call(
        "POST",
        "/v1/sessions",
        &alice,
        Some(json!({"connection": "demo-pg", "request_id": id})),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    let (status, body) = api.rt.block_on(async {
        let r = api
            .http
            .get(format!("{}/v1/sessions/{session_id}/tunnel", api.url))
            .bearer_auth(&alice)
            .header("connection", "upgrade")
            .header("upgrade", "hoop-tunnel/1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("revoked"), "{body}");

    // Every step is in the audit trail.
    let conn = rusqlite::Connection::open(broker.data_dir.join("hoop.sqlite3")).unwrap();
    let kinds: Vec<String> = conn
        .prepare("SELECT kind FROM events WHERE kind LIKE 'request.%' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kinds,
        [
            "request.create",
            "request.approve.granted",
            "request.revoke"
        ],
        "{kinds:?}"
    );
}
