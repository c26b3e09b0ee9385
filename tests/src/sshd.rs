//! A real OpenSSH `sshd` on 127.0.0.1 for the SSH tests: its own temp dir
//! (config, host key, a test user key in `authorized_keys`), logging to a
//! file, on a port the OS picked.
//!
//! Port choice: the OS picks a free port (bind port 0, read it, release it)
//! and sshd is started with `-o ListenAddress=127.0.0.1:PORT`. Another
//! process could take the port in between, so a start whose log says the
//! bind failed is retried with a fresh port; readiness is sshd's own
//! "Server listening on" line, not a sleep.
//!
//! The tests run as root (sshd needs root to switch users anyway), so the
//! account logged in to is `root`, with `PermitRootLogin prohibit-password`
//! (keys only). `/run/sshd` (the privilege-separation directory) is created.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where Debian's openssh-server puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The host key's public line (`ssh-ed25519 AAAA...`), what the broker pins.
    pub host_key_line: String,
    /// The test user's private key file (what the broker holds).
    pub user_key_file: PathBuf,
    /// The account the key logs in to.
    pub user: String,
    /// Everything sshd logged.
    pub log_file: PathBuf,
    dir: tempfile::TempDir,
}

/// Runs ssh-keygen to make an unencrypted ed25519 key at `path`.
pub fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hoop-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen failed");
}

/// The `SHA256:...` fingerprint of a public key file, as ssh-keygen prints it.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .expect("ssh-keygen runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

impl Sshd {
    /// Starts sshd (up to 5 tries for a free port).
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (.ci/run does)"
        );
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("ssh_host_ed25519_key");
        keygen(&host_key);
        let user_key_file = dir.path().join("user_key");
        keygen(&user_key_file);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(user_key_file.with_extension("pub"), &authorized).unwrap();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "HostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n\
                 AcceptEnv LANG HOOP_TEST_*\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
                host_key.display(),
                authorized.display()
            ),
        )
        .unwrap();
        let host_key_line = std::fs::read_to_string(host_key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned();
        let log_file = dir.path().join("sshd.log");
        for _ in 0..5 {
            let port = crate::closed_port();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .arg("-o")
                .arg(format!("ListenAddress=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sshd starts");
            if wait_listening(&mut child, &log_file) {
                return Sshd {
                    child,
                    port,
                    host_key_line,
                    user_key_file,
                    user: "root".into(),
                    log_file,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start:\n{}",
            std::fs::read_to_string(&log_file).unwrap_or_default()
        );
    }

    /// The temp dir holding sshd's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// The inline TOML of an `ssh` connection to this sshd for
    /// [`crate::start_broker_with`]: `connections = [{ ... }]`, open to
    /// `engineering`, with `extra` fields appended.
    pub fn connection_toml(&self, name: &str, extra: &str) -> String {
        let q = |s: &str| format!("{s:?}");
        format!(
            "connections = [{{ name = {}, type = \"ssh\", host = \"127.0.0.1\", port = {}, \
             user = {}, host_key = {}, private_key_file = {}, allow_groups = [\"engineering\"]{}{extra} }}]",
            q(name),
            self.port,
            q(&self.user),
            q(&self.host_key_line),
            q(&self.user_key_file.to_string_lossy()),
            if extra.is_empty() { "" } else { ", " },
        )
    }
}

/// Copies sshd's stderr to `log_file`; true once it listens, false when it
/// exits or fails to bind first (or 30 s pass).
fn wait_listening(child: &mut Child, log_file: &Path) -> bool {
    use std::io::Write as _;
    let stderr = child.stderr.take().unwrap();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) if line.contains("Server listening on") => return true,
            Ok(line) if line.contains("Bind to port") || line.contains("Cannot bind") => {
                return false;
            }
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if child.try_wait().ok().flatten().is_some() {
                    return false;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hoopctl connect ssh-prod -- ssh -tt` as `user` under `script` (a
/// real pty), types `input`, and waits up to 60 s: (exit status, everything
/// the terminal showed).
pub fn pty_shell(user: &crate::User, input: &[u8]) -> (std::process::ExitStatus, String) {
    use std::io::{Read as _, Write as _};
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "{} connect ssh-prod -- ssh -tt",
            crate::bin("hoopctl").display()
        ))
        .arg("/dev/null")
        .env("HOOP_CONFIG_DIR", &user.config_dir)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("HOOP_TOKEN")
        .env_remove("HOOP_BROKER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    let status = crate::wait_deadline(&mut child, Duration::from_secs(60));
    drop(stdin);
    (status, reader.join().unwrap())
}
