//! `hoopctl mcp` end to end: a real MCP client (the `mcp` package from PyPI,
//! `mcp_client.py`) drives the real `hoopctl mcp` over stdio, which reaches
//! the demo PostgreSQL only through the real broker. An agent lists its
//! tools and connections, describes `customers`, reads it masked (checked
//! against the clear values read straight from the database), is refused a
//! `DROP TABLE` with the rule named, gets a review id for a `DELETE` on
//! `orders` that runs once after bob approves it, and asks for just-in-time
//! access that bob grants. The audit log names alice, the agent label and the
//! MCP client; neither the database password nor alice's tokens ever cross
//! the stdio stream. Raw JSON-RPC lines check that a malformed message, an
//! unknown tool, an oversized message and oversized arguments get protocol
//! errors while the server keeps serving.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hoop_e2e::*;
use serde_json::{Value, json};

/// The MCP client script (Python, `mcp` from PyPI).
const CLIENT: &str = include_str!("mcp_client.py");

/// alice (engineering) acts; bob (sre) approves; carol (auditors) reads the log.
const IDENTITY: &str = "[identity.builtin]\npoll_interval = \"1s\"\nusers = [\n  \
     { name = \"alice\", groups = [\"engineering\"] },\n  \
     { name = \"bob\", groups = [\"sre\"] },\n  \
     { name = \"carol\", groups = [\"auditors\"] },\n]\n";

/// The demo's masking (emails keep their domain, cards their last 4) and a
/// review rule holding writes to `orders` for `sre`.
const SETS: &str = r#"
[[masking_sets]]
name = "pii"
[[masking_sets.rule]]
name = "emails"
columns = ["customers.email"]
style = "keep-domain"
[[masking_sets.rule]]
name = "cards"
detect = ["card"]
style = "keep-last"
keep = 4

[[guardrail_sets]]
name = "orders-review"
[[guardrail_sets.rule]]
name = "orders-writes"
kinds = ["delete", "update"]
relations = ["orders"]
action = "review"
approvers = { groups = ["sre"] }
"#;

struct Setup {
    db: DemoDb,
    broker: BrokerProcess,
    alice: User,
    bob: User,
    _dir: tempfile::TempDir,
}

/// A demo database and a broker whose `demo-pg` masks with `pii` and has the
/// `no-destructive` and `orders-review` guardrails; `extra` is more TOML
/// (a policy file). alice and bob logged in.
fn setup(extra: &str) -> Setup {
    let db = DemoDb::start();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("demo-pg.password");
    std::fs::write(&password_file, db.password.expose()).unwrap();
    let q = |s: &str| format!("{s:?}");
    let config = format!(
        "connections = [{{ name = \"demo-pg\", type = \"postgres\", host = {}, port = {}, \
         database = \"demo\", user = \"app\", password_file = {}, allow_groups = [\"engineering\"], \
         description = \"demo shop\", masking = [\"pii\"], \
         guardrails = [\"no-destructive\", \"orders-review\"] }}]\n{extra}\n{SETS}",
        q(db.pg.host()),
        db.pg.port(),
        q(&password_file.to_string_lossy()),
    );
    let broker = start_broker_config(&[], &config, IDENTITY);
    let alice = User::new("alice", &broker);
    alice.login().assert_ok();
    let bob = User::new("bob", &broker);
    bob.login().assert_ok();
    Setup {
        db,
        broker,
        alice,
        bob,
        _dir: dir,
    }
}

/// Rows of `sql` read straight from the database as the app role (no broker).
fn direct(db: &DemoDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.rt.block_on(async {
        let (client, conn) = tokio_postgres::Config::new()
            .host(db.pg.host())
            .port(db.pg.port())
            .user("app")
            .password(db.password.expose())
            .dbname("demo")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = task.await;
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// One run of the MCP client: what it reported, and the bytes that crossed
/// stdio in both directions.
struct McpRun {
    report: Value,
    wire: Vec<u8>,
    stderr: String,
}

impl McpRun {
    fn step(&self, i: usize) -> &Value {
        &self.report["steps"][i]
    }

    /// A tool result's text, and whether it is a tool error.
    fn text(&self, i: usize) -> (String, bool) {
        let step = self.step(i);
        let text = step["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("step {i} has no text: {step}\n{}", self.stderr))
            .to_owned();
        (text, step["isError"] == json!(true))
    }

    /// A successful tool result's JSON document.
    fn doc(&self, i: usize) -> Value {
        let (text, error) = self.text(i);
        assert!(!error, "step {i} failed: {text}\n{}", self.stderr);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("step {i}: {e}: {text}"))
    }
}

/// Runs `plan` through the Python MCP client against `user`'s `hoopctl mcp`.
fn mcp(user: &User, agent: &str, plan: Value) -> McpRun {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mcp_client.py");
    std::fs::write(&script, CLIENT).unwrap();
    let (wire_in, wire_out, err) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    // The user's environment (config dir, no stray tokens), running python.
    let hoopctl = user.hoopctl();
    let mut python = Command::new("python3");
    for (k, v) in hoopctl.get_envs() {
        match v {
            Some(v) => python.env(k, v),
            None => python.env_remove(k),
        };
    }
    let mut child = python
        .arg(&script)
        .env("HOOPCTL", bin("hoopctl"))
        .env("MCP_AGENT", agent)
        .env("MCP_IN", &wire_in)
        .env("MCP_OUT", &wire_out)
        .env("MCP_ERR", &err)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = format!(
        "{}\n--- hoopctl mcp stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert!(
        out.status.success(),
        "the MCP client failed (is `mcp` installed? `pip install mcp`):\n{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut wire = std::fs::read(&wire_in).unwrap();
    wire.extend(std::fs::read(&wire_out).unwrap());
    McpRun {
        report,
        wire,
        stderr,
    }
}

fn call(name: &str, args: Value) -> Value {
    json!({"op": "call", "name": name, "args": args})
}

fn query(sql: &str) -> Value {
    call("query", json!({"connection": "demo-pg", "sql": sql}))
}

/// Every token value in `user`'s token store (the file fallback), long
/// enough to be a secret.
fn stored_tokens(user: &User) -> Vec<String> {
    let file = user.config_dir.join("tokens.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut found = Vec::new();
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() >= 20 => found.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
            Value::Object(o) => o.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    walk(&doc, &mut found);
    found
}

fn assert_no_credentials(s: &Setup, wire: &[u8]) {
    assert!(
        !contains_bytes(wire, s.db.password.expose().as_bytes()),
        "the database password crossed the MCP stream"
    );
    let tokens = stored_tokens(&s.alice);
    assert!(!tokens.is_empty(), "alice's login stored no tokens");
    for t in tokens {
        assert!(
            !contains_bytes(wire, t.as_bytes()),
            "one of alice's tokens crossed the MCP stream"
        );
    }
}

#[test]
fn an_agent_reads_masked_data_is_refused_and_reviewed_and_is_named_in_the_audit_log() {
    let s = setup("");
    let run = mcp(
        &s.alice,
        "billing-bot",
        json!([
            {"op": "list_tools"},
            call("list_connections", json!({})),
            call("describe", json!({"connection": "demo-pg", "table": "customers"})),
            query("select id, email, card_number from customers order by id"),
            query("DROP TABLE orders"),
            query("delete from orders where id = 1"),
            call("query", json!({"connection": "demo-pg", "sql": "select id from orders", "max_rows": 1})),
        ]),
    );

    // initialize: the server says who it is and how to use it.
    assert_eq!(
        run.report["initialize"]["serverInfo"]["name"], "hoopctl",
        "{}",
        run.report
    );
    assert!(
        run.report["initialize"]["instructions"]
            .as_str()
            .unwrap()
            .contains("list_connections")
    );

    // tools/list: the four tools, each described, each with an object schema.
    let tools = run.step(0)["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["describe", "list_connections", "query", "request_access"]
    );
    for t in tools {
        assert!(t["description"].as_str().unwrap().len() > 40, "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    let query_tool = tools.iter().find(|t| t["name"] == "query").unwrap();
    let required = query_tool["inputSchema"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("sql")) && required.contains(&json!("connection")));
    let request_tool = tools
        .iter()
        .find(|t| t["name"] == "request_access")
        .unwrap();
    assert!(
        request_tool["inputSchema"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("reason")),
        "a justification is required: {request_tool}"
    );

    // list_connections: what alice may use.
    let list = run.doc(1);
    assert_eq!(list["connections"][0]["name"], "demo-pg", "{list}");
    assert_eq!(list["connections"][0]["type"], "postgres");
    assert_eq!(list["connections"][0]["description"], "demo shop");

    // describe: the customers table and its columns with types.
    let described = run.doc(2);
    let table = &described["tables"][0];
    assert_eq!(table["name"], "customers", "{described}");
    let email = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "email")
        .unwrap_or_else(|| panic!("no email column: {described}"));
    assert!(email["type"].as_str().unwrap().contains("char") || email["type"] == "text");

    // query: masked values only, compared with the clear ones.
    let clear = direct(
        &s.db,
        "select id, email, card_number from customers order by id",
    );
    let result = run.doc(3);
    assert_eq!(result["status"], "ok");
    let rows = result["results"][0]["rows"].as_array().unwrap();
    assert_eq!(
        result["results"][0]["columns"],
        json!(["id", "email", "card_number"])
    );
    assert_eq!(rows.len(), clear.len(), "{result}");
    for (row, clear) in rows.iter().zip(&clear) {
        let (id, email, card) = (
            row[0].as_str().unwrap(),
            row[1].as_str().unwrap(),
            row[2].as_str().unwrap(),
        );
        let clear_email = clear[1].as_deref().unwrap();
        let clear_card = clear[2].as_deref().unwrap();
        assert_eq!(Some(id), clear[0].as_deref());
        assert_ne!(email, clear_email, "an email arrived in clear");
        let domain = clear_email.split('@').nth(1).unwrap();
        assert!(email.ends_with(&format!("@{domain}")), "{email}");
        assert_ne!(card, clear_card, "a card number arrived in clear");
        assert_eq!(
            card.chars().rev().take(4).collect::<String>(),
            clear_card.chars().rev().take(4).collect::<String>()
        );
        assert!(
            !contains_bytes(&run.wire, clear_email.as_bytes())
                && !contains_bytes(&run.wire, clear_card.as_bytes()),
            "a clear value crossed the MCP stream"
        );
    }

    // A destructive statement: a tool error naming the rule; the table stays.
    let (text, error) = run.text(4);
    assert!(error, "{text}");
    assert!(
        text.contains(r#"guardrail "no-destructive" rule "drop""#),
        "{text}"
    );
    assert!(direct(&s.db, "select to_regclass('orders')")[0][0].is_some());

    // A reviewed statement: held, with its review id and what to do.
    let held = run.doc(5);
    assert_eq!(held["status"], "held_for_review", "{held}");
    let review_id = held["review_id"].as_str().unwrap().to_owned();
    assert!(
        held["instructions"]
            .as_str()
            .unwrap()
            .contains(&format!("hoopctl approve {review_id}")),
        "{held}"
    );
    let order_1 = "select count(*) from orders where id = 1";
    assert_eq!(direct(&s.db, order_1)[0][0].as_deref(), Some("1"));

    // The row budget: one row, the full count, and a note saying so.
    let truncated = run.doc(6);
    let set = &truncated["results"][0];
    assert_eq!(set["rows"].as_array().unwrap().len(), 1, "{truncated}");
    assert!(set["truncated"] == json!(true) && set["row_count"].as_u64().unwrap() > 1);
    assert!(truncated["note"].as_str().unwrap().contains("Truncated"));

    // bob approves; the same statement then runs once, and a second run is held again.
    bob_approves(&s, &review_id);
    let again = mcp(
        &s.alice,
        "billing-bot",
        json!([
            query("delete from orders where id = 1"),
            query("delete from orders where id = 1"),
        ]),
    );
    let ran = again.doc(0);
    assert_eq!(ran["status"], "ok", "{ran}");
    assert_eq!(ran["results"][0]["row_count"], 1);
    assert_eq!(direct(&s.db, order_1)[0][0].as_deref(), Some("0"));
    assert_eq!(again.doc(1)["status"], "held_for_review");

    // The audit log: each session names alice, the agent and the MCP client.
    let carol = User::new("carol", &s.broker);
    carol.login().assert_ok();
    let r = carol.run(&["audit", "list", "--kind", "session.open", "-o", "json"]);
    r.assert_ok();
    let audit: Value = serde_json::from_str(&r.stdout).unwrap();
    let opened = audit["records"].as_array().unwrap();
    // describe and 4 queries, then 2 queries: one session per call that ran SQL.
    assert_eq!(opened.len(), 7, "{}", r.stdout);
    for rec in opened {
        assert_eq!(rec["actor"], "alice", "{rec}");
        assert!(
            rec.to_string()
                .contains("agent: billing-bot (client e2e-agent-host 7.1.2)"),
            "{rec}"
        );
    }

    // No credential ever crossed the stdio stream.
    assert_no_credentials(&s, &run.wire);
    assert_no_credentials(&s, &again.wire);
}

fn bob_approves(s: &Setup, id: &str) {
    let r = s.bob.run(&["approve", id]);
    r.assert_ok();
}

#[test]
fn an_agent_asks_for_access_and_uses_the_grant_a_human_gave() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, JIT_POLICY).unwrap();
    let s = setup(&format!("policy_file = {:?}", policy.to_string_lossy()));
    let first = mcp(
        &s.alice,
        "jit-bot",
        json!([
            query("select count(*) from customers"),
            call(
                "request_access",
                json!({"connection": "demo-pg", "reason": "ticket 42: count customers", "duration_minutes": 15})
            ),
        ]),
    );
    let (text, error) = first.text(0);
    assert!(error && text.contains("request_access"), "{text}");
    let asked = first.doc(1);
    assert_eq!(asked["state"], "pending", "{asked}");
    let id = asked["request_id"].as_str().unwrap().to_owned();
    assert!(asked["instructions"].as_str().unwrap().contains(&id));

    bob_approves(&s, &id);
    let second = mcp(
        &s.alice,
        "jit-bot",
        json!([call(
            "query",
            json!({
                "connection": "demo-pg",
                "sql": "select count(*) from customers",
                "request_id": id,
            })
        )]),
    );
    let counted = second.doc(0);
    let clear = direct(&s.db, "select count(*) from customers");
    assert_eq!(
        counted["results"][0]["rows"][0][0].as_str(),
        clear[0][0].as_deref(),
        "{counted}"
    );
    assert_no_credentials(&s, &first.wire);
    assert_no_credentials(&s, &second.wire);
}

/// A raw JSON-RPC peer on `hoopctl mcp`'s stdio: one line per message.
struct RawPeer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl RawPeer {
    fn start(user: &User) -> RawPeer {
        let mut child = user
            .hoopctl()
            .args(["mcp", "--agent", "raw"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::sync_channel(64);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        RawPeer {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message.
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("no message from hoopctl mcp");
        serde_json::from_str(&line).unwrap()
    }

    /// The next message with this id (other messages are skipped).
    fn answer(&self, id: u64) -> Value {
        loop {
            let msg = self.next();
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn malformed_messages_unknown_tools_and_oversized_arguments_get_protocol_errors() {
    let s = setup("");
    let mut peer = RawPeer::start(&s.alice);
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-peer", "version": "0.1"}}})
        .to_string(),
    );
    let init = peer.answer(1);
    assert_eq!(init["result"]["serverInfo"]["name"], "hoopctl", "{init}");
    peer.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    // Not JSON at all (a parse error without an id), then
    // JSON that is not JSON-RPC.
    peer.send("{this is not json");
    let malformed = peer.next();
    assert_eq!(malformed["error"]["code"], -32700, "{malformed}");
    assert_eq!(malformed["id"], Value::Null, "{malformed}");
    peer.send(r#"{"jsonrpc":"2.0","id":2,"method":42}"#);
    // An unknown tool.
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "drop_everything", "arguments": {}}})
        .to_string(),
    );
    let unknown = peer.answer(3);
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{unknown}"
    );
    // Oversized arguments: a 100 KiB statement.
    let big = format!("select '{}'", "x".repeat(100 * 1024));
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "query", "arguments": {"connection": "demo-pg", "sql": big}}})
        .to_string(),
    );
    let oversized = peer.answer(4);
    assert_eq!(oversized["error"]["code"], -32602, "{oversized}");
    // An oversized message: 5 MiB on one line.
    peer.send(&format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":40,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
        "y".repeat(5 << 20)
    ));
    let huge = peer.next();
    assert_eq!(huge["error"]["code"], -32600, "{huge}");
    assert!(
        huge["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    // Arguments of the wrong shape: the SDK answers with a tool error saying why.
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "query", "arguments": {"connection": 7}}})
        .to_string(),
    );
    let wrong = peer.answer(5);
    assert_eq!(wrong["result"]["isError"], true, "{wrong}");
    assert!(
        wrong["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("expected a string"),
        "{wrong}"
    );

    // And it still serves.
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
            "params": {"name": "query", "arguments": {"connection": "demo-pg", "sql": "select 41 + 1"}}})
        .to_string(),
    );
    let served = peer.answer(6);
    let text = served["result"]["content"][0]["text"].as_str().unwrap();
    let doc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["results"][0]["rows"][0][0], "42", "{served}");
}
