//! hoopctl's side of `ssh` connections.
//!
//! Per session, hoopctl makes a one-time Ed25519 key pair. Its public half
//! goes to the broker in every tunnel hello (the broker's SSH server accepts
//! that key and no other), its private half goes to a private temporary
//! directory (mode 0700, removed when hoopctl exits) next to a known_hosts
//! file pinning the broker's own SSH host key (from the session answer) for
//! `[127.0.0.1]:PORT`. The user's `ssh`, `scp` or `sftp` then runs with
//! options that use exactly those files and nothing from `~/.ssh`:
//!
//! ```text
//! ssh -p PORT -i KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=KNOWN_HOSTS
//!     -o StrictHostKeyChecking=yes ... USER@127.0.0.1 [COMMAND...]
//! ```
//!
//! For `scp` and `sftp` the user writes `@` where the host goes
//! (`scp file @:/tmp/`, `scp @:/etc/hostname .`, `sftp @`); hoopctl replaces
//! it with `USER@127.0.0.1`. Other programs run unchanged with
//! `HOOP_SSH_PORT`, `HOOP_SSH_USER`, `HOOP_SSH_KEY` and
//! `HOOP_SSH_KNOWN_HOSTS` in their environment.
//!
//! `hoopctl exec NAME -- COMMAND` needs no `ssh` binary: [`run_remote`]
//! speaks SSH itself (russh) over one tunnel, with the key in memory only.

use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hoop_shared::api::OpenSessionResponse;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use tokio::io::AsyncWriteExt as _;

use crate::auth::{Credentials, now_unix};
use crate::render::describe_time;
use crate::tunnel::{self, TunnelTarget};

/// Exit status for a usage error (e.g. `scp` without the `@` placeholder).
pub const EXIT_USAGE: u8 = 2;

/// Exit status when the remote side closed without an exit status (as ssh).
pub const EXIT_NO_STATUS: u8 = 255;

/// The one-time key pair of a session.
pub struct OneTimeKey {
    key: PrivateKey,
    /// `ssh-ed25519 AAAA... hoopctl-one-time`.
    pub public_line: String,
}

impl std::fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeKey")
            .field("public_line", &self.public_line)
            .finish_non_exhaustive()
    }
}

impl OneTimeKey {
    /// A fresh key pair.
    pub fn generate() -> anyhow::Result<OneTimeKey> {
        let mut key = PrivateKey::from(Ed25519Keypair::from_seed(
            &hoop_shared::tunnel::one_time_key_seed(),
        ));
        key.set_comment("hoopctl-one-time");
        let public_line = key
            .public_key()
            .to_openssh()
            .context("cannot encode the one-time key")?;
        Ok(OneTimeKey { key, public_line })
    }
}

/// The private directory with the key and known_hosts files; removed on drop.
#[derive(Debug)]
pub struct KeyFiles {
    dir: PathBuf,
    /// The private key (OpenSSH format, mode 0600).
    pub key_file: PathBuf,
    /// known_hosts pinning the broker for `[127.0.0.1]:PORT`.
    pub known_hosts: PathBuf,
}

impl KeyFiles {
    /// Writes `key` and a known_hosts entry for `local` holding
    /// `broker_host_key` into a new private directory.
    pub fn write(
        key: &OneTimeKey,
        local: SocketAddr,
        broker_host_key: &str,
    ) -> anyhow::Result<KeyFiles> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let seed = hoop_shared::tunnel::one_time_key_seed();
        let name: String = seed.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("hoopctl-ssh-{name}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let files = KeyFiles {
            key_file: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
            dir,
        };
        let pem = key
            .key
            .to_openssh(LineEnding::LF)
            .context("cannot encode the one-time key")?;
        let write = |path: &Path, bytes: &[u8]| -> anyhow::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(bytes)?;
            Ok(())
        };
        write(&files.key_file, pem.as_bytes())?;
        let host_key = broker_host_key.trim();
        write(
            &files.known_hosts,
            format!("[{}]:{} {host_key}\n", local.ip(), local.port()).as_bytes(),
        )?;
        Ok(files)
    }
}

impl Drop for KeyFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the user's ssh-family program needs to reach the tunnel.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Local port.
    pub port: u16,
    /// Login name shown to the broker (the connection's user).
    pub user: String,
    /// Private key file.
    pub key_file: PathBuf,
    /// known_hosts file.
    pub known_hosts: PathBuf,
}

impl Setup {
    fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// Options every ssh-family program gets: this key only, this host key
    /// only, no agent, no passwords, no shared control socket.
    fn options(&self) -> Vec<OsString> {
        let quote = |p: &Path| format!("\"{}\"", p.display());
        let mut out: Vec<OsString> = vec!["-i".into(), self.key_file.clone().into_os_string()];
        for o in [
            "IdentitiesOnly=yes".to_owned(),
            "IdentityAgent=none".to_owned(),
            format!("UserKnownHostsFile={}", quote(&self.known_hosts)),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            "UpdateHostKeys=no".to_owned(),
            "CheckHostIP=no".to_owned(),
            "PreferredAuthentications=publickey".to_owned(),
            "PasswordAuthentication=no".to_owned(),
            "KbdInteractiveAuthentication=no".to_owned(),
            "ControlMaster=no".to_owned(),
            "ControlPath=none".to_owned(),
            "ForwardAgent=no".to_owned(),
        ] {
            out.push("-o".into());
            out.push(o.into());
        }
        out
    }
}

/// ssh options that take an argument (`ssh -p 22`, `-L spec`...).
const SSH_OPTS_WITH_ARG: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// Splits ssh's own arguments into (options, rest): rest starts at the
/// destination (or the `@` placeholder) or the remote command.
fn split_ssh_options(args: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let s = arg.to_string_lossy();
        if s == "--" {
            i += 1;
            break;
        }
        if !s.starts_with('-') || s == "-" {
            break;
        }
        // `-tt`, `-vL8080:x:80`, `-p 22`: the first letter taking an argument
        // takes the rest of this word, or the next word.
        let letters: Vec<char> = s.chars().skip(1).collect();
        let takes = letters
            .iter()
            .position(|c| SSH_OPTS_WITH_ARG.contains(*c))
            .is_some_and(|pos| pos + 1 == letters.len());
        i += if takes { 2 } else { 1 };
    }
    let cut = i.min(args.len());
    let (opts, rest) = args.split_at(cut);
    (opts.to_vec(), rest.to_vec())
}

/// Replaces the `@` host placeholder (`@` alone, or `@:PATH`) in `arg`.
fn placeholder(arg: &OsStr, dest: &str) -> Option<OsString> {
    let s = arg.to_str()?;
    if s == "@" {
        Some(dest.into())
    } else {
        s.strip_prefix("@:")
            .map(|path| format!("{dest}:{path}").into())
    }
}

/// The arguments for `program` (ssh, scp, sftp), or `None` for a program
/// hoopctl does not know (it runs unchanged, with `HOOP_SSH_*` set).
pub fn build_args(
    program: &OsStr,
    rest: &[OsString],
    setup: &Setup,
) -> Result<Option<Vec<OsString>>, String> {
    let base = Path::new(program)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    let dest = setup.destination();
    let port = setup.port.to_string();
    let mut out = Vec::new();
    match base {
        "ssh" => {
            let (opts, mut command) = split_ssh_options(rest);
            out.extend(["-p".into(), port.into()]);
            out.extend(setup.options());
            out.extend(opts);
            // `hoopctl connect NAME -- ssh @ uptime` and `-- ssh uptime` both work.
            if command.first().is_some_and(|a| a.to_str() == Some("@")) {
                command.remove(0);
            }
            out.push(dest.into());
            out.extend(command);
        }
        "scp" | "sftp" => {
            out.extend(["-P".into(), port.into()]);
            out.extend(setup.options());
            let mut replaced = false;
            for a in rest {
                match placeholder(a, &dest) {
                    Some(r) => {
                        replaced = true;
                        out.push(r);
                    }
                    None => out.push(a.clone()),
                }
            }
            if !replaced {
                if base == "sftp" {
                    out.push(dest.into());
                } else {
                    return Err(format!(
                        "scp needs the host placeholder `@:` for the server's side, e.g. \
                         `hoopctl connect NAME -- scp FILE @:/tmp/` or `-- scp @:/etc/hostname .` \
                         (hoopctl replaces `@` with {dest})"
                    ));
                }
            }
        }
        _ => return Ok(None),
    }
    Ok(Some(out))
}

/// The `HOOP_SSH_*` variables every child gets.
fn child_env(setup: &Setup) -> Vec<(&'static str, OsString)> {
    vec![
        ("HOOP_SSH_PORT", setup.port.to_string().into()),
        ("HOOP_SSH_USER", setup.user.clone().into()),
        ("HOOP_SSH_KEY", setup.key_file.clone().into_os_string()),
        (
            "HOOP_SSH_KNOWN_HOSTS",
            setup.known_hosts.clone().into_os_string(),
        ),
    ]
}

fn broker_host_key(session: &OpenSessionResponse) -> anyhow::Result<&str> {
    session
        .ssh_host_key
        .as_deref()
        .context("the broker did not send its SSH host key with the session; upgrade the broker")
}

/// `hoopctl connect NAME [-- ssh|scp|sftp ...]` for an ssh connection.
pub async fn serve_session(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    port: u16,
    max_connections: usize,
    command: &[OsString],
) -> anyhow::Result<u8> {
    let host_key = broker_host_key(session)?;
    let key = OneTimeKey::generate()?;
    let listener = tunnel::bind_local(port).with_context(|| {
        format!("cannot listen on 127.0.0.1:{port}; choose another --port (0 picks a free one)")
    })?;
    let local = listener.local_addr()?;
    let files = KeyFiles::write(&key, local, host_key)?;
    let setup = Setup {
        port: local.port(),
        user: session.client_user.clone(),
        key_file: files.key_file.clone(),
        known_hosts: files.known_hosts.clone(),
    };
    let target = Arc::new(TunnelTarget {
        credentials: Arc::clone(creds),
        session_id: session.session_id.clone(),
        connection: session.connection.name.clone(),
        kind: session.connection.kind,
        ssh_public_key: Some(key.public_line.clone()),
    });
    let server = tunnel::serve(
        listener,
        target,
        tunnel::LocalGate::new(max_connections, None),
    );
    let code = match command.split_first() {
        Some((program, rest)) => {
            let args = match build_args(program, rest, &setup) {
                Ok(args) => args,
                Err(usage) => {
                    eprintln!("error: {usage}");
                    return Ok(EXIT_USAGE);
                }
            };
            let mut cmd = tokio::process::Command::new(program);
            match args {
                Some(args) => cmd.args(args),
                None => cmd.args(rest),
            };
            cmd.envs(child_env(&setup));
            crate::child::run_command(program, cmd, server).await?
        }
        None => {
            let mut out = std::io::stdout();
            out.write_all(instructions(session, local, &setup, now_unix()).as_bytes())?;
            out.flush()?;
            crate::child::wait_for_shutdown(server).await?;
            eprintln!("Closing the tunnel.");
            0
        }
    };
    drop(files);
    Ok(code)
}

/// What `connect` without a command prints for an ssh connection.
pub fn instructions(
    session: &OpenSessionResponse,
    local: SocketAddr,
    setup: &Setup,
    now: u64,
) -> String {
    use std::fmt::Write as _;
    let name = &session.connection.name;
    let key = setup.key_file.display();
    let known = setup.known_hosts.display();
    let mut s = String::new();
    let _ = writeln!(s, "Listening on {local}");
    let _ = writeln!(
        s,
        "Session {} on {name} (ssh), ends {}.",
        session.session_id,
        describe_time(session.expires_at, now)
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Connect with:");
    let _ = writeln!(
        s,
        "  ssh -p {} -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} \
         -o StrictHostKeyChecking=yes {}@127.0.0.1",
        setup.port, setup.user
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Or put this in ~/.ssh/config (valid while this tunnel runs):"
    );
    let _ = writeln!(s, "  Host {name}.hoop");
    let _ = writeln!(s, "    HostName 127.0.0.1");
    let _ = writeln!(s, "    Port {}", setup.port);
    let _ = writeln!(s, "    User {}", setup.user);
    let _ = writeln!(s, "    IdentityFile {key}");
    let _ = writeln!(s, "    IdentitiesOnly yes");
    let _ = writeln!(s, "    UserKnownHostsFile {known}");
    let _ = writeln!(s, "    StrictHostKeyChecking yes");
    let _ = writeln!(
        s,
        "and use `ssh {name}.hoop`, `scp FILE {name}.hoop:/tmp/`, `sftp {name}.hoop`."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "The key is a one-time key for this session: it works only through this tunnel and is \
         deleted when hoopctl exits."
    );
    let _ = writeln!(s, "Press Ctrl-C to close the tunnel.");
    s
}

/// The russh client handler for [`run_remote`]: the broker's host key must
/// be the one the session answer named.
struct PinnedBroker {
    expected: PublicKey,
}

impl client::Handler for PinnedBroker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.expected.key_data()
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

/// `hoopctl exec NAME -- COMMAND` on an ssh connection: runs COMMAND on the
/// target (words joined with spaces, as ssh does), streams its output,
/// feeds it stdin when stdin is not a terminal, and returns its exit status.
pub async fn run_remote(
    creds: &Arc<Credentials>,
    session: &OpenSessionResponse,
    command: &[OsString],
) -> anyhow::Result<u8> {
    let line = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if line.trim().is_empty() {
        eprintln!(
            "error: exec on an ssh connection needs a command: `hoopctl exec {} -- 'COMMAND'`",
            session.connection.name
        );
        return Ok(EXIT_USAGE);
    }
    let expected = PublicKey::from_openssh(broker_host_key(session)?.trim())
        .context("the broker's SSH host key is malformed")?;
    let key = OneTimeKey::generate()?;
    let target = TunnelTarget {
        credentials: Arc::clone(creds),
        session_id: session.session_id.clone(),
        connection: session.connection.name.clone(),
        kind: session.connection.kind,
        ssh_public_key: Some(key.public_line.clone()),
    };
    let stream = tunnel::open(&target, None)
        .await
        .with_context(|| format!("cannot open a tunnel to {}", session.connection.name))?;
    let config = Arc::new(client::Config::default());
    let mut ssh = client::connect_stream(config, stream, PinnedBroker { expected })
        .await
        .context("SSH with the broker failed (is its host key the one it announced?)")?;
    let auth = ssh
        .authenticate_publickey(
            session.client_user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key.key), None),
        )
        .await
        .context("SSH login to the broker failed")?;
    anyhow::ensure!(
        auth.success(),
        "the broker refused the session's one-time key"
    );
    let channel = ssh
        .channel_open_session()
        .await
        .context("the broker refused a session channel")?;
    channel.exec(true, line.into_bytes()).await?;
    let (mut reader, writer) = channel.split();
    // stdin (a file or pipe in CI) goes to the command; a terminal is not read.
    let stdin_task = if std::io::stdin().is_terminal() {
        writer.eof().await?;
        None
    } else {
        Some(tokio::spawn(async move {
            let mut w = writer.make_writer();
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut w).await;
            let _ = writer.eof().await;
        }))
    };
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut code = None;
    while let Some(msg) = reader.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                stdout.write_all(&data).await?;
                stdout.flush().await?;
            }
            ChannelMsg::ExtendedData { data, .. } => {
                stderr.write_all(&data).await?;
                stderr.flush().await?;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                code = Some(u8::try_from(exit_status & 0xff).unwrap_or(1));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                eprintln!("hoopctl: the remote command was killed by signal {signal_name:?}");
                code = code.or(Some(EXIT_NO_STATUS));
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    let _ = ssh
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(code.unwrap_or(EXIT_NO_STATUS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            port: 40022,
            user: "deploy".into(),
            key_file: "/tmp/k/id_ed25519".into(),
            known_hosts: "/tmp/k/known_hosts".into(),
        }
    }

    fn args(program: &str, rest: &[&str]) -> Result<Option<Vec<String>>, String> {
        let rest: Vec<OsString> = rest.iter().map(OsString::from).collect();
        build_args(OsStr::new(program), &rest, &setup()).map(|o| {
            o.map(|v| {
                v.into_iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect()
            })
        })
    }

    #[test]
    fn ssh_gets_the_tunnel_options_first_then_the_users_then_the_command() {
        let a = args("ssh", &["-t", "-L", "8080:db:5432", "echo hello; exit 7"])
            .unwrap()
            .unwrap();
        assert_eq!(a[..2], ["-p", "40022"]);
        let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
        assert!(a.contains(&"UserKnownHostsFile=\"/tmp/k/known_hosts\"".to_owned()));
        assert!(a.contains(&"StrictHostKeyChecking=yes".to_owned()));
        assert!(a.contains(&"IdentitiesOnly=yes".to_owned()));
        assert!(pos("-L") < pos("deploy@127.0.0.1"));
        assert_eq!(a.last().unwrap(), "echo hello; exit 7");
        assert_eq!(pos("deploy@127.0.0.1") + 1, pos("echo hello; exit 7"));
        // A lone `@` is the destination; `-p` given by the user comes after ours (ours win).
        let a = args("/usr/bin/ssh", &["-p", "1", "@", "uptime"])
            .unwrap()
            .unwrap();
        assert_eq!(a.iter().filter(|x| *x == "deploy@127.0.0.1").count(), 1);
        assert_eq!(a.last().unwrap(), "uptime");
        assert!(pos("-i") < a.len());
    }

    #[test]
    fn scp_and_sftp_use_the_at_placeholder() {
        let a = args("scp", &["-q", "file.txt", "@:/tmp/"])
            .unwrap()
            .unwrap();
        assert_eq!(a[..2], ["-P", "40022"]);
        assert_eq!(a.last().unwrap(), "deploy@127.0.0.1:/tmp/");
        let err = args("scp", &["a", "b"]).unwrap_err();
        assert!(err.contains("@:"), "{err}");
        let a = args("sftp", &["-b", "batch"]).unwrap().unwrap();
        assert_eq!(a.last().unwrap(), "deploy@127.0.0.1");
        let a = args("sftp", &["@:/var/log"]).unwrap().unwrap();
        assert_eq!(a.last().unwrap(), "deploy@127.0.0.1:/var/log");
        assert_eq!(args("rsync", &["x"]).unwrap(), None);
    }

    #[test]
    fn ssh_option_words_are_told_from_the_command() {
        let v = |xs: &[&str]| xs.iter().map(OsString::from).collect::<Vec<_>>();
        let (o, r) = split_ssh_options(&v(&["-vp", "22", "-tt", "-oFoo=bar", "ls", "-l"]));
        assert_eq!(o, v(&["-vp", "22", "-tt", "-oFoo=bar"]));
        assert_eq!(r, v(&["ls", "-l"]));
        let (o, r) = split_ssh_options(&v(&["--", "-x"]));
        assert_eq!(o, v(&["--"]));
        assert_eq!(r, v(&["-x"]));
    }

    #[test]
    fn key_files_are_private_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt as _;
        let key = OneTimeKey::generate().unwrap();
        assert!(key.public_line.starts_with("ssh-ed25519 "));
        let files = KeyFiles::write(
            &key,
            "127.0.0.1:4022".parse().unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        )
        .unwrap();
        let mode = std::fs::metadata(&files.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        let kh = std::fs::read_to_string(&files.known_hosts).unwrap();
        assert!(kh.starts_with("[127.0.0.1]:4022 ssh-ed25519 "), "{kh}");
        let dir = files.key_file.parent().unwrap().to_owned();
        drop(files);
        assert!(!dir.exists());
    }
}
