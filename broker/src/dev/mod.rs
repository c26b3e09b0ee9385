//! `hoop-broker dev`: everything for a local try-out in one command.
//!
//! It starts a demo PostgreSQL from the machine's own binaries
//! ([`postgres`]) with a random password for its `app` role and a small demo
//! schema, kept across restarts on the same data dir (in `DATA_DIR/postgres`,
//! or, when running as root, in a dir of the `postgres` user under the
//! system temp dir, since that user cannot enter the 0700 data dir) and
//! stopped with the broker, even on `kill -9`; or it uses `--postgres-url`.
//! It writes a complete broker config to
//! `DATA_DIR/broker.toml` (self-signed TLS, the built-in identity provider
//! with `alice` in `engineering` and `bob` in `sre`, and the connection
//! `demo-pg` whose password is referenced by file, mode 0600); starts the
//! broker from that config exactly as `serve` would; and points hoopctl at it
//! by writing the broker URL and CA into hoopctl's config dir (only when they
//! changed: the development CA is kept in the data dir, so a restart leaves
//! hoopctl's files and open tunnels as they were). Ctrl-C or SIGTERM stops
//! the broker and the demo server.

pub mod postgres;

use std::path::PathBuf;

use anyhow::Context as _;
use hoop_shared::Secret;
use hoop_shared::client_config::{self, ClientConfig};
use tokio_util::sync::CancellationToken;

use crate::app::Broker;
use crate::config::Config;

/// The policy `hoop-broker dev` starts with (written to `DATA_DIR/policy.toml`).
pub const DEV_POLICY: &str = r#"# The development policy (docs/policy.md). carol may change it:
#   hoopctl policy get > policy.toml; edit; hoopctl policy apply -f policy.toml
groups = ["engineering", "sre", "admins"]
admins = ["admins"]

[[rules]]
name = "demo-open"
connections = ["demo-pg"]
groups = ["engineering", "sre"]
access = "allow"

[[rules]]
name = "demo-jit"
connections = ["demo-pg-jit"]
groups = ["engineering"]
access = "approval"
justification = true
approvers = { groups = ["sre"] }
approvals = 1
default_duration = "15m"
max_duration = "1h"
"#;

/// The masking set of the demo connections (docs/masking.md): customer
/// emails keep their domain, card numbers keep their last 4 digits wherever
/// they appear (found by a Luhn-checked detector, not by column).
pub const DEV_MASKING: &str = r#"[[masking_sets]]
name = "pii"
description = "Customer emails keep their domain; card numbers keep their last 4 digits, wherever they appear"

[[masking_sets.rule]]
name = "emails"
columns = ["customers.email"]
style = "keep-domain"

[[masking_sets.rule]]
name = "cards"
detect = ["card"]
style = "keep-last"
keep = 4
"#;

/// The review set of `demo-pg` (docs/guardrails.md): a `DELETE` or
/// `UPDATE` of `orders` (with a `WHERE`; without one `no-destructive`
/// blocks it) is held until someone in `sre` approves it, then runs once.
pub const DEV_REVIEW: &str = r#"
[[guardrail_sets]]
name = "orders-review"
description = "Changes to orders need a second pair of eyes"

[[guardrail_sets.rule]]
name = "orders-writes"
kinds = ["delete", "update"]
relations = ["orders"]
action = "review"
approvers = { groups = ["sre"] }
"#;

/// Default listen address of `hoop-broker dev`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Options of `hoop-broker dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Address to listen on.
    pub listen: String,
    /// Data dir (default: `<data dir>/hoop-broker/dev`).
    pub data_dir: Option<PathBuf>,
    /// An existing PostgreSQL to use instead of a throwaway one.
    pub postgres_url: Option<String>,
}

struct Target {
    host: String,
    port: u16,
    database: String,
    user: String,
    password: Secret,
    label: String,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_local_dir()
        .map(|d| d.join("hoop-broker").join("dev"))
        .context("cannot find a data directory; pass --data-dir")
}

/// Where the demo cluster of `data_dir` lives: `DATA_DIR/postgres`; as
/// root, `$TMPDIR/hoop-dev-pg-<hash of the data dir>` (owned by the
/// `postgres` user, who cannot enter the root-owned 0700 data dir).
fn demo_cluster_dir(data_dir: &std::path::Path) -> PathBuf {
    use sha2::Digest as _;
    if !nix::unistd::geteuid().is_root() {
        return data_dir.join("postgres");
    }
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("hoop-dev-pg-{tag}"))
}

fn parse_postgres_url(raw: &str) -> anyhow::Result<Target> {
    let url = url::Url::parse(raw).map_err(|e| {
        anyhow::anyhow!(
            "--postgres-url: not a URL ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DB"
        )
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        anyhow::bail!("--postgres-url: expected a postgres:// URL");
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let user = decode(url.username());
    if user.is_empty() {
        anyhow::bail!(
            "--postgres-url: the URL must name a user (postgres://USER:PASSWORD@HOST/DB)"
        );
    }
    let password = url.password().map(decode).unwrap_or_default();
    if password.is_empty() {
        anyhow::bail!("--postgres-url: the URL must carry the user's password");
    }
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    let database = url.path().trim_start_matches('/').to_owned();
    let database = if database.is_empty() {
        "postgres".to_owned()
    } else {
        database
    };
    Ok(Target {
        label: format!("PostgreSQL at {host}:{port} (from --postgres-url)"),
        host,
        port,
        database,
        user,
        password: Secret::new(password),
    })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Runs the development broker until `shutdown` is cancelled.
pub async fn run(opts: DevOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let data_dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    crate::fsperm::secure_data_dir(&data_dir)
        .with_context(|| format!("data dir {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;

    let (throwaway, target) = match &opts.postgres_url {
        Some(url) => (None, parse_postgres_url(url)?),
        None => {
            println!("Starting the demo PostgreSQL for demo-pg ...");
            let cluster = demo_cluster_dir(&data_dir);
            // Through `hoop-broker pg-child`: the server dies with us.
            let launcher = std::env::current_exe().ok();
            let pg = postgres::ThrowawayPostgres::start_kept(&cluster, launcher.as_deref())
                .await
                .context("starting the demo PostgreSQL (or pass --postgres-url)")?;
            // The same password as last time, if there was a last time.
            let password = match std::fs::read_to_string(data_dir.join("demo-pg.password")) {
                Ok(p) if !p.trim().is_empty() => Secret::new(p.trim().to_owned()),
                _ => Secret::generate(24),
            };
            let app = pg
                .create_app_database("app", &password, "demo")
                .await
                .context("creating the demo database")?;
            postgres::load_demo_schema(&app)
                .await
                .context("loading the demo schema")?;
            let target = Target {
                label: format!(
                    "PostgreSQL on {}:{}, kept in {}",
                    pg.host(),
                    pg.port(),
                    cluster.display()
                ),
                host: pg.host().to_owned(),
                port: pg.port(),
                database: "demo".into(),
                user: "app".into(),
                password,
            };
            (Some(pg), target)
        }
    };

    // The password is referenced by file, as any production config would.
    client_config::write_private_file(
        &data_dir,
        "demo-pg.password",
        target.password.expose().as_bytes(),
    )?;
    // The demo policy: demo-pg is open to engineering and sre; demo-pg-jit
    // (the same database) needs a justification and one approval from sre;
    // carol (admins) may change the policy.
    client_config::write_private_file(&data_dir, "policy.toml", DEV_POLICY.as_bytes())?;
    let config_path = data_dir.join("broker.toml");
    let config_text = format!(
        "# Written by `hoop-broker dev`; `hoop-broker serve --config {path}` runs the same broker.\n\
         listen = {listen}\n\
         data_dir = {data}\n\
         policy_file = {policy}\n\n\
         [tls]\nself_signed = true\n\n\
         [identity]\nclient_id = \"hoopctl\"\n\n\
         [identity.builtin]\n\
         users = [\n  {{ name = \"alice\", groups = [\"engineering\"] }},\n  {{ name = \"bob\", groups = [\"sre\"] }},\n  {{ name = \"carol\", groups = [\"admins\"] }},\n]\n\n\
         [[connections]]\n\
         name = \"demo-pg\"\ntype = \"postgres\"\n\
         host = {host}\nport = {port}\ndatabase = {db}\nuser = {user}\n\
         password_file = {pwfile}\n\
         allow_groups = [\"engineering\", \"sre\"]\n\
         guardrails = [\"no-destructive\", \"orders-review\"]\n\
         masking = [\"pii\"]\n\
         description = \"Demo PostgreSQL started by hoop-broker dev\"\n\n\
         [[connections]]\n\
         name = \"demo-pg-jit\"\ntype = \"postgres\"\n\
         host = {host}\nport = {port}\ndatabase = {db}\nuser = {user}\n\
         password_file = {pwfile}\n\
         guardrails = [\"no-destructive\"]\n\
         masking = [\"pii\"]\n\
         description = \"The demo database, with just-in-time access: a reason and one approval from sre\"\n\n\
         {masking_sets}{review_sets}",
        path = config_path.display(),
        listen = toml_str(&opts.listen),
        data = toml_str(&data_dir.to_string_lossy()),
        policy = toml_str(&data_dir.join("policy.toml").to_string_lossy()),
        host = toml_str(&target.host),
        port = target.port,
        db = toml_str(&target.database),
        user = toml_str(&target.user),
        pwfile = toml_str(&data_dir.join("demo-pg.password").to_string_lossy()),
        masking_sets = DEV_MASKING,
        review_sets = DEV_REVIEW,
    );
    client_config::write_private_file(&data_dir, "broker.toml", config_text.as_bytes())?;
    let config = Config::parse(&config_path, &config_text)?;

    let broker = Broker::bind(config).await?;
    let url = broker.public_url.clone();

    // Point hoopctl at this broker (files rewritten only when they change).
    let client_dir = client_config::config_dir()?;
    let loaded = ClientConfig::load(&client_dir).unwrap_or_default();
    let mut client = loaded.clone();
    let previous = client.broker_url.clone().filter(|p| p != &url);
    if let Some(ca) = &broker.ca_pem {
        let ca_path = client_dir.join("dev-broker-ca.pem");
        if std::fs::read(&ca_path).ok().as_deref() != Some(ca.as_bytes()) {
            client_config::write_private_file(&client_dir, "dev-broker-ca.pem", ca.as_bytes())?;
        }
        client.ca_file = Some(ca_path);
    }
    client.broker_url = Some(url.clone());
    if client != loaded {
        client.save(&client_dir)?;
    }

    println!("hoop-broker listening on {url}");
    println!();
    println!("  demo-pg     {}", target.label);
    println!(
        "  demo-pg-jit the same database, with just-in-time access (reason + 1 approval from sre)"
    );
    println!("  dev users   alice (engineering), bob (sre), carol (admins: may change the policy)");
    println!(
        "  masking     customers.email keeps its domain, card numbers their last 4 digits \
         (hoopctl connect demo-pg -- psql -c 'select * from customers')"
    );
    println!("  data dir    {}", data_dir.display());
    println!(
        "  hoopctl     configured in {}{}",
        client_dir.join(client_config::CONFIG_FILE).display(),
        previous.map_or(String::new(), |p| format!(" (was {p})"))
    );
    println!();
    println!("Next, in another terminal:");
    println!("  hoopctl login");
    println!("  hoopctl connect demo-pg -- psql");
    println!();
    println!("Press Ctrl-C to stop.");

    broker.run(shutdown).await;
    if let Some(pg) = throwaway {
        pg.stop().await.context("stopping the demo PostgreSQL")?;
    }
    println!("hoop-broker dev stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url_keeps_the_password_out_of_messages() {
        let t = parse_postgres_url("postgres://app:p%40ss@db:6543/shop").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.database.as_str()),
            ("db", 6543, "shop")
        );
        assert_eq!(t.password.expose(), "p@ss");
        assert!(!t.label.contains("p@ss") && !t.label.contains("p%40ss"));
        let err = parse_postgres_url("postgres://app@db/shop")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("password"), "{err}");
        let err = parse_postgres_url("mysql://a:b@c/d")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("postgres://"), "{err}");
    }
}
