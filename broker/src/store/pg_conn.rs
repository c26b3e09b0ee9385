//! Connections to the broker's own PostgreSQL (the shared store and the
//! audit log), from a `postgres://` URL, with TLS as the URL asks.
//!
//! The URL takes libpq's `sslmode` (`disable`, `prefer` — the default, as in
//! libpq —, `require`, `verify-full`) and `sslrootcert` (a PEM file of the
//! CA to trust for `verify-full`; without it, the public web roots).
//! tokio-postgres itself knows only disable/prefer/require, so those two
//! parameters are taken out of the URL here and TLS is set up with the same
//! rustls settings as the upstream leg of the Postgres proxy
//! ([`TlsSettings`]); `tokio-postgres-rustls` joins them. `verify-ca` is
//! refused: it checks the chain but not the host name, use `verify-full`.
//!
//! The password never sits in the URL in a config file: it comes by
//! reference (`password_env` / `password_file`) and is set here.

use std::path::PathBuf;
use std::time::Duration;

use hoop_shared::Secret;
use tokio_postgres::config::SslMode;

use crate::config::UpstreamTls;
use crate::proxy::postgres::TlsSettings;

/// How long connecting (TCP, TLS and login) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PgUrlError {
    /// Not a URL tokio-postgres understands.
    #[error("not a valid postgres:// URL: {0}")]
    Invalid(String),
    /// An `sslmode` this broker does not offer.
    #[error("sslmode={0} is not supported: use disable, prefer, require or verify-full")]
    SslMode(String),
    /// The CA file could not be used.
    #[error("{0}")]
    Tls(String),
}

/// Why connecting failed (never with the password in it).
#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    /// The server refused or the network failed.
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Nothing within [`CONNECT_TIMEOUT`].
    #[error("connecting timed out after {}s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
}

/// A parsed database URL with its TLS settings; connect as often as needed.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    mode: UpstreamTls,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("sslmode", &self.mode)
            .finish()
    }
}

impl PgTarget {
    /// Parses `url`; `password`, when given, replaces any in the URL.
    pub fn parse(url: &str, password: Option<&Secret>) -> Result<PgTarget, PgUrlError> {
        let (rest, sslmode, rootcert) = split_tls_params(url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| PgUrlError::Invalid(e.to_string()))?;
        if let Some(p) = password {
            config.password(p.expose());
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let mode = match sslmode.as_deref() {
            None | Some("prefer") => UpstreamTls::Prefer,
            Some("disable") => UpstreamTls::Disable,
            Some("require") => UpstreamTls::Require,
            Some("verify-full") => UpstreamTls::VerifyFull,
            Some(other) => return Err(PgUrlError::SslMode(other.to_owned())),
        };
        config.ssl_mode(match mode {
            UpstreamTls::Disable => SslMode::Disable,
            UpstreamTls::Prefer => SslMode::Prefer,
            UpstreamTls::Require | UpstreamTls::VerifyFull => SslMode::Require,
        });
        let settings = TlsSettings::new(mode, rootcert.as_deref()).map_err(PgUrlError::Tls)?;
        let tls = settings
            .client_config()
            .map(|c| tokio_postgres_rustls::MakeRustlsConnect::new((*c).clone()));
        Ok(PgTarget { config, tls, mode })
    }

    /// Names the broker's connections in `pg_stat_activity`.
    pub fn with_application_name(mut self, name: &str) -> PgTarget {
        self.config.application_name(name);
        self
    }

    /// The TLS mode in force.
    pub fn mode(&self) -> UpstreamTls {
        self.mode
    }

    /// Connects and spawns the connection's task on `tasks` (it logs, as
    /// `what`, how the connection ended when it ends with an error).
    pub async fn connect(
        &self,
        what: &'static str,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Result<tokio_postgres::Client, PgConnectError> {
        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    let (client, conn) = self.config.connect(tls.clone()).await?;
                    tasks.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::warn!("{what} database connection ended: {e}");
                        }
                    });
                    Ok::<_, PgConnectError>(client)
                }
                None => {
                    let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                    tasks.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::warn!("{what} database connection ended: {e}");
                        }
                    });
                    Ok(client)
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| PgConnectError::Timeout)?
    }
}

/// Why [`migrate`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database failed.
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The schema is newer than this broker knows: a newer broker migrated
    /// it, and this one must not write to it.
    #[error("schema version {found} in {table} is newer than this broker knows ({known})")]
    TooNew {
        /// The version table.
        table: &'static str,
        /// Version found.
        found: i64,
        /// Newest version this broker knows.
        known: usize,
    },
}

/// Applies the `migrations` not applied yet, in order, each in its own
/// transaction, recording version N (1-based) in `table`; under the session
/// advisory lock `lock`, so brokers starting together do not race.
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    lock: i64,
    table: &'static str,
    migrations: &[&str],
) -> Result<(), MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await?;
    let result = async {
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)"
            ))
            .await?;
        let version: i32 = client
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {table}"),
                &[],
            )
            .await?
            .try_get(0)?;
        let applied = usize::try_from(version).unwrap_or(0);
        if applied > migrations.len() {
            return Err(MigrateError::TooNew {
                table,
                found: i64::from(version),
                known: migrations.len(),
            });
        }
        for (i, sql) in migrations.iter().enumerate().skip(applied) {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.execute(&format!("INSERT INTO {table} (version) VALUES ($1)"), &[&v])
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await?;
    result
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (the rest goes to
/// tokio-postgres unchanged). Key=value strings (not URLs) pass through.
fn split_tls_params(url: &str) -> Result<(String, Option<String>, Option<PathBuf>), PgUrlError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok((url.to_owned(), None, None));
    }
    let mut parsed = url::Url::parse(url).map_err(|e| PgUrlError::Invalid(e.to_string()))?;
    let mut sslmode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => sslmode = Some(v.into_owned()),
            "sslrootcert" => rootcert = Some(PathBuf::from(v.as_ref())),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    if rootcert.is_some() && sslmode.as_deref() != Some("verify-full") {
        return Err(PgUrlError::Tls(
            "sslrootcert is only used with sslmode=verify-full".to_owned(),
        ));
    }
    Ok((parsed.to_string(), sslmode, rootcert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::postgres::ThrowawayPostgres;

    use crate::proxy::postgres::upstream::tls_tests::server_cert;

    async fn ssl_in_use(target: &PgTarget) -> Result<bool, PgConnectError> {
        let client = target
            .connect("test", &tokio_util::task::TaskTracker::new())
            .await?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    #[tokio::test]
    async fn verify_full_trusts_only_the_given_ca_and_disable_stays_plain() {
        let (ca, cert, key) = server_cert();
        let pg = ThrowawayPostgres::start_with_tls(&cert, &key)
            .await
            .unwrap();
        let password = Secret::generate(24);
        pg.create_app_database("keeper", &password, "store")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        let base = format!("postgres://keeper@{}:{}/store", pg.host(), pg.port());

        let url = format!(
            "{base}?sslmode=verify-full&sslrootcert={}&application_name=hoop",
            ca_file.display()
        );
        let target = PgTarget::parse(&url, Some(&password)).unwrap();
        assert!(ssl_in_use(&target).await.unwrap());
        // The password is never shown.
        assert!(!format!("{target:?}").contains(password.expose()));

        let (other_ca, _, _) = server_cert();
        let other = dir.path().join("other.pem");
        std::fs::write(&other, &other_ca).unwrap();
        let url = format!("{base}?sslmode=verify-full&sslrootcert={}", other.display());
        let target = PgTarget::parse(&url, Some(&password)).unwrap();
        let err = ssl_in_use(&target).await.unwrap_err().to_string();
        assert!(!err.contains(password.expose()), "{err}");

        for (query, tls) in [
            ("?sslmode=disable", false),
            ("?sslmode=require", true),
            ("", true),
        ] {
            let target = PgTarget::parse(&format!("{base}{query}"), Some(&password)).unwrap();
            assert_eq!(ssl_in_use(&target).await.unwrap(), tls, "{query}");
        }
        pg.stop().await.unwrap();
    }

    #[test]
    fn unsupported_modes_and_misplaced_ca_files_are_named() {
        let e = PgTarget::parse("postgres://u@h/d?sslmode=verify-ca", None).unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let e = PgTarget::parse("postgres://u@h/d?sslrootcert=/x.pem", None).unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let e = PgTarget::parse(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(PgTarget::parse("postgres://u@h:notaport/d", None).is_err());
    }
}
