//! A PostgreSQL built from the machine's own server binaries, for
//! `hoop-broker dev` and the end-to-end tests: initdb with SCRAM
//! authentication and a random superuser password, start it on 127.0.0.1
//! with an OS-chosen port, and wait until a real login works.
//!
//! Two lifetimes:
//!
//! - [`ThrowawayPostgres::start`] (tests): in a temp dir, removed on stop or drop.
//! - [`ThrowawayPostgres::start_kept`] (`hoop-broker dev`): in a dir kept
//!   across runs (the superuser password beside the cluster, mode 0600), so a
//!   restart finds the same demo database. The server dies with the broker,
//!   even on `kill -9`: it is started through `hoop-broker pg-child`
//!   ([`exec_child`]), which sets the Linux parent-death signal (SIGINT, a
//!   fast shutdown) and then execs the server, so the postmaster itself holds
//!   it. A server the last run left anyway (a crash between fork and the
//!   `prctl`, or a non-Linux kernel) is found through the cluster's
//!   `postmaster.pid` at the next start and stopped before the new one starts.
//!
//! PostgreSQL refuses to run as root; when the broker runs as root the
//! binaries run as the `postgres` system user (`Command::uid`/`gid`, no unsafe
//! code) and the server's dir is handed to that user.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hoop_shared::Secret;

use crate::proxy::postgres::{PgProxyError, TlsSettings, Upstream, connect};

/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";

/// Connection name used in the [`Upstream`]s this server hands out.
pub const CONNECTION_NAME: &str = "throwaway";

/// How long the server may take to accept a real login after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts at starting on a fresh port when the chosen one got taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

/// Why the throwaway server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DevPgError {
    /// No PostgreSQL server binaries on this machine.
    #[error(
        "PostgreSQL server binaries not found ({0}); install the PostgreSQL server package (e.g. `apt-get install postgresql`)"
    )]
    NotInstalled(String),
    /// Running as root without a user to run the server as.
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as (PostgreSQL refuses to run as root)"
    )]
    NoPostgresUser,
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// initdb failed.
    #[error("initdb failed ({status}):\n{output}")]
    Initdb {
        /// Exit status.
        status: String,
        /// Its output.
        output: String,
    },
    /// The server exited while starting.
    #[error("PostgreSQL exited while starting ({status})\n--- server log (tail) ---\n{log_tail}")]
    Exited {
        /// Exit status.
        status: String,
        /// The end of the server log.
        log_tail: String,
    },
    /// The server did not accept a login in time.
    #[error(
        "PostgreSQL did not accept a login within {after:?} (last error: {last_error})\n--- server log (tail) ---\n{log_tail}"
    )]
    NotReady {
        /// The deadline.
        after: Duration,
        /// The last login error.
        last_error: String,
        /// The end of the server log.
        log_tail: String,
    },
    /// A statement failed.
    #[error("{0}")]
    Sql(#[from] PgProxyError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevPgError {
    let what = what.into();
    move |source| DevPgError::Io { what, source }
}

/// Where the server binaries are.
#[derive(Debug, Clone)]
struct PgBins {
    initdb: PathBuf,
    postgres: PathBuf,
}

/// Finds `name` on PATH, then in `/usr/lib/postgresql/<version>/bin` (highest
/// version first). Public so tests can find `pgbench` the same way.
pub fn find_pg_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    });
    on_path.or_else(|| {
        versioned_bin_dirs()
            .into_iter()
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `/usr/lib/postgresql/*/bin`, highest version first.
fn versioned_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

impl PgBins {
    fn find() -> Result<PgBins, DevPgError> {
        let initdb = find_pg_binary("initdb").ok_or_else(|| {
            DevPgError::NotInstalled("no initdb on PATH or in /usr/lib/postgresql/*/bin".to_owned())
        })?;
        // The server must be the same version as initdb: prefer the one beside it.
        let beside = fs::canonicalize(&initdb)
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("postgres")))
            .filter(|p| is_executable(p));
        let postgres = beside
            .or_else(|| find_pg_binary("postgres"))
            .ok_or_else(|| DevPgError::NotInstalled("no postgres binary".to_owned()))?;
        Ok(PgBins { initdb, postgres })
    }
}

/// The account the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, DevPgError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        _ => Err(DevPgError::NoPostgresUser),
    }
}

fn hand_over(path: &Path, run_as: Option<RunAs>) -> Result<(), DevPgError> {
    if let Some(account) = run_as {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
            .map_err(io(format!("cannot chown {}", path.display())))?;
    }
    Ok(())
}

/// A command for a server binary: runs as `run_as`, in `cwd` (the server user
/// may not be able to read our working directory), with the PG* variables
/// that would redirect it removed.
fn pg_command(program: &Path, cwd: &Path, run_as: Option<RunAs>) -> std::process::Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir(cwd).env("LC_ALL", "C").stdin(Stdio::null());
    for var in [
        "PGDATA",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGOPTIONS",
        "PGSERVICE",
    ] {
        cmd.env_remove(var);
    }
    if let Some(account) = run_as {
        cmd.uid(account.uid).gid(account.gid);
    }
    cmd
}

/// Writes a file readable only by its owner (PostgreSQL refuses a key file
/// others can read).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DevPgError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    f.write_all(bytes)
        .map_err(io(format!("cannot write {}", path.display())))
}

/// Where a server's files live.
enum Root {
    /// Removed with the server.
    Temp(tempfile::TempDir),
    /// Kept across runs.
    Kept(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temp(t) => t.path(),
            Root::Kept(p) => p,
        }
    }
}

/// A running PostgreSQL. Stopped (and, unless kept, removed) by
/// [`stop`](Self::stop), or on drop.
pub struct ThrowawayPostgres {
    dir: Option<Root>,
    child: Option<Child>,
    port: u16,
    host: String,
    password: Secret,
}

impl std::fmt::Debug for ThrowawayPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrowawayPostgres")
            .field("dir", &self.dir.as_ref().map(Root::path))
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ThrowawayPostgres {
    /// Creates, starts and waits for a fresh server (see the module docs).
    pub async fn start() -> Result<ThrowawayPostgres, DevPgError> {
        Self::start_inner(None).await
    }

    /// Like [`start`](Self::start), with TLS on (`ssl = on`) using this
    /// certificate chain and key (PEM). Clients may still connect without TLS.
    pub async fn start_with_tls(
        cert_pem: &str,
        key_pem: &Secret,
    ) -> Result<ThrowawayPostgres, DevPgError> {
        Self::start_inner(Some((cert_pem, key_pem))).await
    }

    /// A server whose cluster lives in `root` and is kept across runs: made
    /// on first use, reused (with its superuser password, kept in
    /// `root/superuser.password`) after. A server the last run left running
    /// there is stopped first. With `launcher` (the `hoop-broker` binary) the
    /// server is started through `launcher pg-child`, so it dies with this
    /// process (module docs); call this from a thread that lives as long as
    /// the process (the parent-death signal follows the spawning thread).
    pub async fn start_kept(
        root: &Path,
        launcher: Option<&Path>,
    ) -> Result<ThrowawayPostgres, DevPgError> {
        let bins = PgBins::find()?;
        let run_as = run_as()?;
        prepare_kept_root(root, run_as)?;
        let data = root.join("data");
        stop_leftover(&data).await;
        let sockets = root.join("sock");
        if !sockets.is_dir() {
            fs::create_dir(&sockets).map_err(io("cannot create the socket dir"))?;
        }
        hand_over(&sockets, run_as)?;
        let pw_path = root.join("superuser.password");
        let password = match fs::read_to_string(&pw_path) {
            Ok(p) if !p.trim().is_empty() && data.join("PG_VERSION").is_file() => {
                Secret::new(p.trim().to_owned())
            }
            _ => {
                // No usable cluster: make a new one (a half-made one goes).
                if data.exists() {
                    fs::remove_dir_all(&data).map_err(io(format!(
                        "cannot remove the incomplete cluster {}",
                        data.display()
                    )))?;
                }
                let _ = fs::remove_file(&pw_path);
                let password = Secret::generate(24);
                write_private(&pw_path, password.expose().as_bytes())?;
                initdb(&bins, root, &data, &password, run_as).await?;
                password
            }
        };
        Self::launch(
            bins,
            Root::Kept(root.to_owned()),
            password,
            Vec::new(),
            run_as,
            launcher,
        )
        .await
    }

    async fn start_inner(tls: Option<(&str, &Secret)>) -> Result<ThrowawayPostgres, DevPgError> {
        let bins = PgBins::find()?;
        let run_as = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("hoop-pg-")
            .tempdir()
            .map_err(io("cannot create a temp dir"))?;
        let root = dir.path().to_path_buf();
        hand_over(&root, run_as)?;
        let data = root.join("data");
        let sockets = root.join("sock");
        fs::create_dir(&sockets).map_err(io("cannot create the socket dir"))?;
        hand_over(&sockets, run_as)?;

        let password = Secret::generate(24);
        initdb(&bins, &root, &data, &password, run_as).await?;

        let mut tls_args: Vec<String> = Vec::new();
        if let Some((cert, key)) = tls {
            let cert_path = root.join("server.crt");
            let key_path = root.join("server.key");
            write_private(&cert_path, cert.as_bytes())?;
            write_private(&key_path, key.expose().as_bytes())?;
            hand_over(&cert_path, run_as)?;
            hand_over(&key_path, run_as)?;
            tls_args = vec![
                "-c".into(),
                "ssl=on".into(),
                "-c".into(),
                format!("ssl_cert_file={}", cert_path.display()),
                "-c".into(),
                format!("ssl_key_file={}", key_path.display()),
            ];
        }

        Self::launch(bins, Root::Temp(dir), password, tls_args, run_as, None).await
    }

    /// Starts the server on a free port (retrying when another process took
    /// it first) and waits for a real login.
    async fn launch(
        bins: PgBins,
        dir: Root,
        password: Secret,
        tls_args: Vec<String>,
        run_as: Option<RunAs>,
        launcher: Option<&Path>,
    ) -> Result<ThrowawayPostgres, DevPgError> {
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        let sockets = root.join("sock");
        let log_path = root.join("postgres.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(io("cannot open the server log"))?;
            let log_err = log.try_clone().map_err(io("cannot open the server log"))?;
            let mut cmd = match launcher {
                Some(exe) => {
                    let mut cmd = pg_command(exe, &root, run_as);
                    cmd.arg(PG_CHILD_COMMAND)
                        .arg("--parent")
                        .arg(std::process::id().to_string())
                        .arg("--")
                        .arg(&bins.postgres);
                    cmd
                }
                None => pg_command(&bins.postgres, &root, run_as),
            };
            let child = cmd
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .arg("-c")
                .arg("listen_addresses=127.0.0.1")
                .arg("-c")
                .arg(format!("unix_socket_directories={}", sockets.display()))
                // A throwaway server: durability buys nothing, speed does.
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
                .args(["-c", "shared_buffers=16MB", "-c", "logging_collector=off"])
                .args(&tls_args)
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(io(format!("cannot start {}", bins.postgres.display())))?;
            let mut server = ThrowawayPostgres {
                dir: None,
                child: Some(child),
                port,
                host: "127.0.0.1".to_owned(),
                password: password.clone(),
            };
            match server.wait_ready(&log_path).await {
                Ok(()) => {
                    server.dir = Some(dir);
                    tracing::info!(port, "PostgreSQL ready");
                    return Ok(server);
                }
                Err(e) => {
                    server.kill_now();
                    let port_taken = matches!(&e, DevPgError::Exited { log_tail, .. }
                        if log_tail.contains("could not bind") || log_tail.contains("could not create any TCP/IP sockets"));
                    if !port_taken {
                        return Err(e);
                    }
                    tracing::debug!(port, "port taken before the server bound it; retrying");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| DevPgError::NotReady {
            after: READY_TIMEOUT,
            last_error: "no attempt made".to_owned(),
            log_tail: String::new(),
        }))
    }

    /// Polls until a real SCRAM login and `select 1` work, the server exits,
    /// or the deadline passes.
    async fn wait_ready(&mut self, log_path: &Path) -> Result<(), DevPgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let probe = self.superuser(SUPERUSER);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().map_err(io("cannot check the server"))?
            {
                return Err(DevPgError::Exited {
                    status: status.to_string(),
                    log_tail: log_tail(log_path),
                });
            }
            let last_error = match connect(&probe).await {
                Ok(mut conn) => match conn.simple_query("select 1").await {
                    Ok(_) => {
                        conn.close().await;
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(DevPgError::NotReady {
                    after: READY_TIMEOUT,
                    last_error,
                    log_tail: log_tail(log_path),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The dir holding the data directory, socket dir and server log.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(Root::path)
    }

    /// The data directory (for tests that edit `pg_hba.conf`).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir().map(|d| d.join("data"))
    }

    /// The end of the server log (for error messages).
    pub fn log_tail(&self) -> String {
        self.dir()
            .map(|d| log_tail(&d.join("postgres.log")))
            .unwrap_or_default()
    }

    /// The superuser's login to `database`.
    pub fn superuser(&self, database: &str) -> Upstream {
        Upstream {
            connection: CONNECTION_NAME.to_owned(),
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            user: SUPERUSER.to_owned(),
            password: self.password.clone(),
            tls: TlsSettings::default(),
        }
    }

    /// Creates (or updates) login role `role` with `password`, stored as a
    /// SCRAM verifier computed here (the cleartext never reaches the server),
    /// and database `db` owned by it. Returns the login for that role and database.
    pub async fn create_app_database(
        &self,
        role: &str,
        password: &Secret,
        db: &str,
    ) -> Result<Upstream, DevPgError> {
        let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
        let mut conn = connect(&self.superuser(SUPERUSER)).await?;
        let role_exists = !conn
            .simple_query(&format!(
                "select 1 from pg_roles where rolname = {}",
                quote_literal(role)
            ))
            .await?
            .is_empty();
        let verb = if role_exists { "ALTER" } else { "CREATE" };
        conn.simple_query(&format!(
            "{verb} ROLE {} LOGIN PASSWORD {}",
            quote_ident(role),
            quote_literal(&verifier)
        ))
        .await?;
        let db_exists = !conn
            .simple_query(&format!(
                "select 1 from pg_database where datname = {}",
                quote_literal(db)
            ))
            .await?
            .is_empty();
        if !db_exists {
            conn.simple_query(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(db),
                quote_ident(role)
            ))
            .await?;
        }
        conn.close().await;
        Ok(Upstream {
            connection: CONNECTION_NAME.to_owned(),
            host: self.host.clone(),
            port: self.port,
            database: db.to_owned(),
            user: role.to_owned(),
            password: password.clone(),
            tls: TlsSettings::default(),
        })
    }

    /// Fast shutdown (SIGINT to the postmaster), SIGKILL if it outlives the
    /// deadline, then removes the temp dir.
    pub async fn stop(mut self) -> Result<(), DevPgError> {
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                if child
                    .try_wait()
                    .map_err(io("cannot wait for the server"))?
                    .is_some()
                {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!("PostgreSQL did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(Root::Temp(dir)) = self.dir.take() {
            dir.close().map_err(io("cannot remove the temp dir"))?;
        }
        Ok(())
    }

    /// Kills the server at once (used between failed start attempts).
    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayPostgres {
    /// Best effort, synchronous: fast shutdown, then kill; the temp dir goes with `TempDir`.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// The hidden `hoop-broker` subcommand that starts the server (see [`exec_child`]).
pub const PG_CHILD_COMMAND: &str = "pg-child";

/// `hoop-broker pg-child --parent PID -- PROGRAM ARGS...`: asks the kernel to
/// send SIGINT (PostgreSQL's fast shutdown) to this process when its parent
/// dies, checks the parent is still `parent` (it may have died before the
/// request), then execs PROGRAM, which keeps the request (it is not
/// set-user-ID). Returns only on failure.
pub fn exec_child(parent: u32, program: &std::ffi::OsStr, args: &[std::ffi::OsString]) -> String {
    use std::os::unix::process::CommandExt as _;
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT) {
        return format!("cannot set the parent-death signal: {e}");
    }
    if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(parent) {
        return "the broker that started this server is gone".to_owned();
    }
    let e = std::process::Command::new(program).args(args).exec();
    format!("cannot run {}: {e}", Path::new(program).display())
}

/// Creates the kept root (0700, handed to the server's account), or checks
/// an existing one is a real directory of that account that no one else can
/// enter (it may sit in a shared temp dir).
fn prepare_kept_root(root: &Path, run_as: Option<RunAs>) -> Result<(), DevPgError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    let unsafe_root = |why: String| DevPgError::Io {
        what: format!(
            "refusing to use {} for the demo PostgreSQL: {why}; remove it, or pass --data-dir",
            root.display()
        ),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    };
    match fs::symlink_metadata(root) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(unsafe_root("it is not a directory".into()));
            }
            let owner = run_as.map_or_else(|| nix::unistd::geteuid().as_raw(), |a| a.uid);
            if meta.uid() != owner {
                return Err(unsafe_root(format!(
                    "it belongs to uid {}, not {owner}",
                    meta.uid()
                )));
            }
            if meta.mode() & 0o077 != 0 {
                fs::set_permissions(root, fs::Permissions::from_mode(0o700))
                    .map_err(io(format!("cannot restrict {}", root.display())))?;
            }
        }
        Err(_) => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(io(format!("cannot create {}", root.display())))?;
            hand_over(root, run_as)?;
        }
    }
    Ok(())
}

/// True while `pid` runs (a zombie, which only waits for its parent to
/// collect it, does not count).
fn is_running(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Stops the postmaster the last run left in `data` (found through its
/// `postmaster.pid`, and recognised by its working directory, which a
/// postmaster sets to its data directory), and waits for it to exit.
async fn stop_leftover(data: &Path) {
    let Ok(text) = fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return;
    };
    if pid <= 1 || !is_running(pid) {
        return;
    }
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
    if cwd.is_none() || cwd != fs::canonicalize(data).ok() {
        tracing::debug!(
            pid,
            "postmaster.pid names a process that is not this cluster's server"
        );
        return;
    }
    tracing::warn!(pid, data = %data.display(), "stopping the demo PostgreSQL the last run left running");
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGINT);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_running(pid) {
        if Instant::now() >= deadline {
            tracing::warn!(pid, "the old PostgreSQL did not stop in time; killing it");
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn initdb(
    bins: &PgBins,
    root: &Path,
    data: &Path,
    password: &Secret,
    run_as: Option<RunAs>,
) -> Result<(), DevPgError> {
    let pwfile = root.join("pwfile");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pwfile)
            .map_err(io("cannot write the password file"))?;
        f.write_all(password.expose().as_bytes())
            .map_err(io("cannot write the password file"))?;
    }
    hand_over(&pwfile, run_as)?;
    let mut cmd = pg_command(&bins.initdb, root, run_as);
    cmd.arg("-D")
        .arg(data)
        .arg("--auth=scram-sha-256")
        .arg(format!("--username={SUPERUSER}"))
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--encoding=UTF8", "--no-locale", "--no-sync"]);
    let output = tokio::process::Command::from(cmd).output().await;
    // The password file has served its purpose whatever happened.
    let removed = fs::remove_file(&pwfile);
    let output = output.map_err(io(format!("cannot run {}", bins.initdb.display())))?;
    removed.map_err(io("cannot remove the password file"))?;
    if !output.status.success() {
        return Err(DevPgError::Initdb {
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(())
}

/// A port the OS considers free right now (bound on 127.0.0.1:0, then released).
fn free_port() -> Result<u16, DevPgError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(io("cannot bind 127.0.0.1:0 to pick a port"))?;
    let port = listener
        .local_addr()
        .map_err(io("cannot read the picked port"))?
        .port();
    Ok(port)
}

/// The last 40 lines of the server log.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(40)..)
        .unwrap_or_default()
        .join("\n")
}

/// `"name"`, with embedded quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled (standard_conforming_strings is on).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The demo schema: 20 customers with obviously fake names, `@example.com`
/// emails, `555-01xx` phone numbers and well-known test card numbers (all
/// Luhn-valid), and 50 orders. Idempotent: tables are created if missing and
/// filled only when empty. Runs as `conn`'s role, in one transaction.
pub async fn load_demo_schema(conn: &Upstream) -> Result<(), DevPgError> {
    let mut c = connect(conn).await?;
    c.simple_query(DEMO_SCHEMA).await?;
    c.close().await;
    Ok(())
}

const DEMO_SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL UNIQUE,
    card_number text NOT NULL,
    phone       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    amount      numeric(10, 2) NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (full_name, email, card_number, phone, created_at)
SELECT v.full_name, v.email, v.card_number, v.phone,
       timestamptz '2024-01-01 09:00:00+00' + v.n * interval '3 days'
FROM (VALUES
    (1,  'Ada Example',       'ada.example@example.com',       '4111111111111111', '+1-555-0101'),
    (2,  'Bob Sample',        'bob.sample@example.com',        '5555555555554444', '+1-555-0102'),
    (3,  'Carol Placeholder', 'carol.placeholder@example.com', '378282246310005',  '+1-555-0103'),
    (4,  'Dan Testcase',      'dan.testcase@example.com',      '6011111111111117', '+1-555-0104'),
    (5,  'Eve Fixture',       'eve.fixture@example.com',       '4012888888881881', '+1-555-0105'),
    (6,  'Frank Mockwell',    'frank.mockwell@example.com',    '5105105105105100', '+1-555-0106'),
    (7,  'Grace Dummy',       'grace.dummy@example.com',       '371449635398431',  '+1-555-0107'),
    (8,  'Hank Demo',         'hank.demo@example.com',         '6011000990139424', '+1-555-0108'),
    (9,  'Ivy Stub',          'ivy.stub@example.com',          '3530111333300000', '+1-555-0109'),
    (10, 'Jack Fakename',     'jack.fakename@example.com',     '3566002020360505', '+1-555-0110'),
    (11, 'Kara Notreal',      'kara.notreal@example.com',      '30569309025904',   '+1-555-0111'),
    (12, 'Leo Sandbox',       'leo.sandbox@example.com',       '38520000023237',   '+1-555-0112'),
    (13, 'Mia Trial',         'mia.trial@example.com',         '4242424242424242', '+1-555-0113'),
    (14, 'Ned Specimen',      'ned.specimen@example.com',      '4000056655665556', '+1-555-0114'),
    (15, 'Olga Prototype',    'olga.prototype@example.com',    '5200828282828210', '+1-555-0115'),
    (16, 'Pat Pretend',       'pat.pretend@example.com',       '2223003122003222', '+1-555-0116'),
    (17, 'Quinn Exemplar',    'quinn.exemplar@example.com',    '6200000000000005', '+1-555-0117'),
    (18, 'Rita Imaginary',    'rita.imaginary@example.com',    '378734493671000',  '+1-555-0118'),
    (19, 'Sam Fictional',     'sam.fictional@example.com',     '4222222222222',    '+1-555-0119'),
    (20, 'Tina Madeup',       'tina.madeup@example.com',       '5425233430109903', '+1-555-0120')
) AS v (n, full_name, email, card_number, phone)
WHERE NOT EXISTS (SELECT 1 FROM customers)
ORDER BY v.n;
INSERT INTO orders (customer_id, amount, status, created_at)
SELECT c.id,
       ((g * 37) % 500) + 9.99,
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'refunded'])[1 + g % 5],
       timestamptz '2024-03-01 12:00:00+00' + g * interval '17 hours'
FROM generate_series(1, 50) AS g
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM customers) AS c
  ON c.rn = 1 + (g - 1) % 20
WHERE NOT EXISTS (SELECT 1 FROM orders)
ORDER BY g;
";

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_valid(number: &str) -> bool {
        let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 1 {
                    let d = d * 2;
                    if d > 9 { d - 9 } else { d }
                } else {
                    d
                }
            })
            .sum();
        digits.len() >= 12 && sum.is_multiple_of(10)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throwaway_server_loads_the_demo_schema_and_leaves_nothing_behind() {
        let pg = ThrowawayPostgres::start().await.unwrap();
        let password = Secret::generate(16);
        let app = pg
            .create_app_database("demo_app", &password, "demo")
            .await
            .unwrap();
        load_demo_schema(&app).await.unwrap();
        // Idempotent: a second load adds nothing.
        load_demo_schema(&app).await.unwrap();

        let mut c = connect(&app).await.unwrap();
        let rows = c
            .simple_query(
                "select current_user, (select count(*) from customers), (select count(*) from orders)",
            )
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Some("demo_app".to_owned()),
                Some("20".to_owned()),
                Some("50".to_owned())
            ]]
        );
        let cards = c
            .simple_query("select card_number from customers")
            .await
            .unwrap();
        assert_eq!(cards.len(), 20);
        for row in &cards {
            let card = row[0].as_deref().unwrap();
            assert!(luhn_valid(card), "{card} is not Luhn-valid");
        }
        let err = c.simple_query("select 1/0").await.unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
        c.close().await;

        // The role's password is stored as a SCRAM verifier, never in clear.
        let mut su = connect(&pg.superuser("postgres")).await.unwrap();
        let stored = su
            .simple_query("select rolpassword from pg_authid where rolname = 'demo_app'")
            .await
            .unwrap();
        let stored = stored[0][0].as_deref().unwrap();
        assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
        assert!(!stored.contains(password.expose()));
        su.close().await;

        let dir = pg.dir().unwrap().to_path_buf();
        let pid = pg.pid().unwrap();
        assert!(dir.join("data/PG_VERSION").exists());
        assert!(
            !dir.join("pwfile").exists(),
            "the password file must be deleted"
        );
        pg.stop().await.unwrap();
        assert!(!dir.exists(), "temp dir {} still exists", dir.display());
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None);
        assert!(alive.is_err(), "postmaster {pid} still running");
        // And nothing listens on its port any more.
        assert!(connect(&app).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_server_stops_it() {
        let pg = ThrowawayPostgres::start().await.unwrap();
        let dir = pg.dir().unwrap().to_path_buf();
        let pid = pg.pid().unwrap();
        drop(pg);
        assert!(!dir.exists());
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None);
        assert!(alive.is_err());
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
