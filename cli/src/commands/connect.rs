//! `hoopctl connect NAME [-- CMD ARGS...]`: open a session, listen on
//! 127.0.0.1, tunnel local clients, run CMD (or wait for Ctrl-C), close the session.
//!
//! Getting the session may take a justification or an approval first; that
//! conversation (prompt, access request, waiting, Ctrl-C) is in `access.rs`.
//!
//! Signals while CMD runs: the terminal delivers Ctrl-C (SIGINT) to the whole
//! foreground process group, so CMD gets it directly; hoopctl catches SIGINT
//! and ignores it (psql uses it to cancel a query, and the tunnel must outlive
//! that). SIGTERM and SIGHUP sent to hoopctl are passed on to CMD, and hoopctl
//! then waits for CMD to exit as usual (`child.rs`, shared with `hoopctl
//! connect` on ssh connections in `ssh.rs`).

use std::ffi::OsString;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hoop_shared::api::{ConnectionKind, OpenSessionResponse};

use super::{Context, describe_time};
use crate::access::{self, Access, AccessOptions, Wait};
use crate::auth::{Credentials, now_unix};
use crate::cli::ConnectArgs;
use crate::tunnel::{self, TunnelTarget};

/// How long closing the session at exit may take before hoopctl gives up
/// (the broker ends it anyway when its grant expires).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the session (asking for a justification or an approval when the
/// policy wants one) and runs until CMD exits or Ctrl-C.
pub async fn run(ctx: &Context, args: &ConnectArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let opts = AccessOptions {
        reason: args.reason.clone(),
        duration: args.duration,
        request: args.request.clone(),
        wait: if args.no_wait {
            Wait::No
        } else {
            Wait::Forever
        },
        prompt: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        spinner: std::io::stderr().is_terminal(),
    };
    let session = match access::open(&creds, &args.name, &opts).await? {
        Access::Session(session) => session,
        Access::Pending(view) => {
            access::report_pending(&view, &format!("hoopctl connect {}", args.name))?;
            return Ok(access::EXIT_APPROVAL_PENDING);
        }
        Access::Interrupted => return Ok(access::EXIT_INTERRUPTED),
    };
    let result = serve_session(
        &creds,
        &session,
        args.port,
        args.max_local_connections,
        &args.command,
    )
    .await;
    close_session(&creds, &session.session_id).await;
    result
}

/// What each tunnel of `session` needs.
pub fn tunnel_target(creds: &Arc<Credentials>, session: &OpenSessionResponse) -> Arc<TunnelTarget> {
    Arc::new(TunnelTarget {
        credentials: Arc::clone(creds),
        session_id: session.session_id.clone(),
        connection: session.connection.name.clone(),
        kind: session.connection.kind,
        ssh_public_key: None,
    })
}

/// Listens on 127.0.0.1:`port` and tunnels local clients (at most
/// `max_connections` at once) until `command` exits (its exit code is
/// returned) or, without a command, until Ctrl-C.
/// Shared with `hoopctl exec NAME -- CMD`.
pub async fn serve_session(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    port: u16,
    max_connections: usize,
    command: &[OsString],
) -> anyhow::Result<u8> {
    if session.connection.kind == ConnectionKind::Ssh {
        return crate::ssh::serve_session(creds, session, port, max_connections, command).await;
    }
    let listener = tunnel::bind_local(port).with_context(|| {
        format!("cannot listen on 127.0.0.1:{port}; choose another --port (0 picks a free one)")
    })?;
    let local = listener.local_addr()?;
    let gate = tunnel::LocalGate::new(max_connections, Some(session.tunnel_secret.clone()));
    let server = tunnel::serve(listener, tunnel_target(creds, session), gate);

    match command.split_first() {
        Some((program, rest)) => run_child(session, local, program, rest, server).await,
        None => {
            print_instructions(session, local)?;
            crate::child::wait_for_shutdown(server).await?;
            eprintln!("Closing the tunnel.");
            Ok(0)
        }
    }
}

/// The environment a Postgres client needs to use the tunnel.
pub fn postgres_env(
    session: &OpenSessionResponse,
    local: SocketAddr,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("PGHOST", local.ip().to_string()),
        ("PGPORT", local.port().to_string()),
        ("PGUSER", session.client_user.clone()),
        ("PGPASSWORD", session.tunnel_secret.expose().to_owned()),
        // The loopback leg is plain TCP; the broker leg is TLS.
        ("PGSSLMODE", "disable".to_owned()),
        ("PGGSSENCMODE", "disable".to_owned()),
    ];
    if let Some(db) = &session.connection.database {
        env.push(("PGDATABASE", db.clone()));
    }
    env
}

/// Variables that would send a libpq client somewhere other than the tunnel.
const PG_ENV_REMOVED: &[&str] = &["PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE"];

async fn run_child(
    session: &OpenSessionResponse,
    local: SocketAddr,
    program: &OsString,
    rest: &[OsString],
    server: impl std::future::Future<Output = ()>,
) -> anyhow::Result<u8> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest);
    match session.connection.kind {
        ConnectionKind::Postgres => {
            for var in PG_ENV_REMOVED {
                cmd.env_remove(var);
            }
            cmd.envs(postgres_env(session, local));
        }
        ConnectionKind::Ssh => {}
    }
    crate::child::run_command(program, cmd, server).await
}

fn print_instructions(session: &OpenSessionResponse, local: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    out.write_all(instructions(session, local, now_unix()).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// What `connect` without a command prints: the address first (scripts read
/// `Listening on ADDR`), then ready-to-paste settings.
pub fn instructions(session: &OpenSessionResponse, local: SocketAddr, now: u64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "Listening on {local}");
    let _ = writeln!(
        s,
        "Session {} on {} ({}), ends {}.",
        session.session_id,
        session.connection.name,
        session.connection.kind,
        describe_time(session.expires_at, now)
    );
    match session.connection.kind {
        ConnectionKind::Postgres => {
            let env = postgres_env(session, local);
            let plain: Vec<String> = env
                .iter()
                .filter(|(k, _)| *k != "PGPASSWORD")
                .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                .collect();
            let _ = writeln!(s);
            let _ = writeln!(s, "Connect with:");
            let _ = writeln!(s, "  export {}", plain.join(" "));
            let _ = writeln!(
                s,
                "  export PGPASSWORD={}",
                shell_quote(session.tunnel_secret.expose())
            );
            let _ = writeln!(s, "  psql");
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "PGPASSWORD is a one-time secret for this session: it works only through this \
                 tunnel and dies with it."
            );
        }
        // Printed by `crate::ssh`, which knows the one-time key's files.
        ConnectionKind::Ssh => {}
    }
    let _ = writeln!(s, "Press Ctrl-C to close the tunnel.");
    s
}

/// Quotes a value for a POSIX shell when it needs it.
pub fn shell_quote(v: &str) -> String {
    let safe = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c));
    if safe {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

/// Closes the session, bounded by [`CLOSE_TIMEOUT`]; failure is a warning.
pub async fn close_session(creds: &Credentials, session_id: &str) {
    let api = creds.api();
    let close = async {
        let token = creds.access_token().await?;
        api.close_session(&token, session_id).await?;
        Ok::<_, anyhow::Error>(())
    };
    match tokio::time::timeout(CLOSE_TIMEOUT, close).await {
        Ok(Ok(())) => tracing::debug!("session closed"),
        Ok(Err(e)) => eprintln!("warning: could not close session {session_id}: {e:#}"),
        Err(_) => eprintln!(
            "warning: could not close session {session_id} within {}s; it ends when its grant expires",
            CLOSE_TIMEOUT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::Secret;
    use hoop_shared::api::ConnectionSummary;

    fn session(db: Option<&str>) -> OpenSessionResponse {
        OpenSessionResponse {
            session_id: "s1".into(),
            connection: ConnectionSummary {
                name: "pg-demo".into(),
                kind: ConnectionKind::Postgres,
                database: db.map(str::to_owned),
                description: None,
            },
            tunnel_secret: Secret::new("one-time"),
            client_user: "alice".into(),
            expires_at: 0,
            ssh_host_key: None,
        }
    }

    #[test]
    fn postgres_env_points_libpq_at_the_tunnel() {
        let env = postgres_env(&session(Some("app")), "127.0.0.1:5555".parse().unwrap());
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("127.0.0.1"));
        assert_eq!(get("PGPORT"), Some("5555"));
        assert_eq!(get("PGUSER"), Some("alice"));
        assert_eq!(get("PGPASSWORD"), Some("one-time"));
        assert_eq!(get("PGDATABASE"), Some("app"));
        assert_eq!(get("PGSSLMODE"), Some("disable"));
        let env = postgres_env(&session(None), "127.0.0.1:5555".parse().unwrap());
        assert!(!env.iter().any(|(k, _)| *k == "PGDATABASE"));
    }

    #[test]
    fn instructions_show_address_settings_and_secret_line() {
        let text = instructions(&session(Some("app")), "127.0.0.1:5555".parse().unwrap(), 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Listening on 127.0.0.1:5555");
        assert!(text.contains(
            "  export PGHOST=127.0.0.1 PGPORT=5555 PGUSER=alice PGSSLMODE=disable \
             PGGSSENCMODE=disable PGDATABASE=app\n"
        ));
        assert!(
            text.contains("  export PGPASSWORD=one-time\n  psql\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("=one-time").count(),
            1,
            "secret shown once: {text}"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("alice"), "alice");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
