//! The client → broker startup: SSL/GSS negotiation (declined), CancelRequest
//! or StartupMessage (decoded with pgwire's codec), protocol downgrade, checks
//! on the requested database and replication, the startup-parameter
//! allow-list, and the one-time secret check.

use bytes::BytesMut;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::{
    Authentication, NegotiateProtocolVersion, PasswordMessageFamily, Startup,
};
use pgwire::messages::{DecodeContext, Message as _, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

use hoop_shared::Secret;

use super::error::PgProxyError;
use super::wire::StartupPacket;
use super::wire::framing::{FrameError, MAX_STARTUP_LEN, read_startup_packet, read_tagged};
use super::wire::frontend::PROTOCOL_3_0;
use super::{ClientSession, Upstream};

/// Startup parameters passed on to the upstream (compared case-insensitively,
/// as PostgreSQL does for setting names). Everything else is dropped: `user`
/// and `database` come from the connection's configuration, and settings such
/// as `options` (arbitrary `-c name=value`), `replication` or `role` could
/// change who the session acts as.
pub const FORWARDED_STARTUP_PARAMETERS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
];

/// How a client stream opened.
pub(crate) enum Opening {
    /// A cancel request for a broker-issued (pid, key).
    Cancel { pid: i32, key: i32 },
    /// A session start; the parameters to forward upstream.
    Session {
        forwarded: Vec<(String, String)>,
        client_user: Option<String>,
    },
    /// The client left before saying anything useful (e.g. psql closing to
    /// prompt for a password).
    Gone,
}

fn client_frame_err(e: FrameError) -> PgProxyError {
    match e {
        FrameError::Io(e) => PgProxyError::ClientIo(e),
        FrameError::Truncated => {
            PgProxyError::ClientProtocol("the startup packet was cut short".to_owned())
        }
        FrameError::BadLength(n) => {
            PgProxyError::ClientProtocol(format!("invalid startup packet length {n}"))
        }
    }
}

/// Reads the client's opening: declines SSL/GSS, returns a cancel request, or
/// checks a StartupMessage and returns what to forward.
pub(crate) async fn read_opening<S>(
    client: &mut S,
    buf: &mut BytesMut,
    upstream: &Upstream,
) -> Result<Opening, PgProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A client may try SSL, then GSS, before its startup; more is not a client.
    for _ in 0..3 {
        let Some(mut packet) = read_startup_packet(client, buf)
            .await
            .map_err(client_frame_err)?
        else {
            return Ok(Opening::Gone);
        };
        let decoded = StartupPacket::decode(&packet)
            .map_err(|e| PgProxyError::ClientProtocol(e.to_string()))?;
        match decoded {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                // The local leg is loopback and the hop to the broker is TLS
                // already: no encryption on top.
                client
                    .write_all(b"N")
                    .await
                    .map_err(PgProxyError::ClientIo)?;
            }
            StartupPacket::Cancel { .. } => {
                let mut ctx = DecodeContext::default();
                ctx.protocol_version = ProtocolVersion::PROTOCOL3_0;
                let request = CancelRequest::decode(&mut packet, &ctx)
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        PgProxyError::ClientProtocol("malformed cancel request".to_owned())
                    })?;
                // Broker keys are 4 bytes; a longer key cannot be ours.
                return Ok(match request.secret_key.as_i32() {
                    Some(key) => Opening::Cancel {
                        pid: request.pid,
                        key,
                    },
                    None => Opening::Gone,
                });
            }
            StartupPacket::Startup { major, minor, .. } => {
                return check_startup(client, packet, (major, minor), upstream).await;
            }
        }
    }
    Err(PgProxyError::ClientProtocol(
        "too many encryption requests before the startup message".to_owned(),
    ))
}

async fn check_startup<S>(
    client: &mut S,
    mut packet: BytesMut,
    (major, minor): (i32, i32),
    upstream: &Upstream,
) -> Result<Opening, PgProxyError>
where
    S: AsyncWrite + Unpin,
{
    let mut ctx = DecodeContext::default();
    ctx.awaiting_frontend_ssl = false;
    let startup = match Startup::decode(&mut packet, &ctx) {
        Ok(Some(startup)) if major == 3 => startup,
        _ => {
            return Err(PgProxyError::Refused {
                code: "0A000".to_owned(),
                message: format!(
                    "hoop: unsupported frontend protocol {major}.{minor}: the broker supports protocol 3.0"
                ),
            });
        }
    };

    // Protocol extensions (`_pq_.*`) are not forwarded, so none is supported.
    let unsupported: Vec<String> = startup
        .parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .cloned()
        .collect();
    if minor > 0 || !unsupported.is_empty() {
        // A 3.2 client (PostgreSQL 18 libpq) continues at 3.0 after this.
        let mut out = BytesMut::new();
        NegotiateProtocolVersion::new(PROTOCOL_3_0, unsupported)
            .encode(&mut out)
            .map_err(|e| PgProxyError::ClientProtocol(e.to_string()))?;
        client
            .write_all(&out)
            .await
            .map_err(PgProxyError::ClientIo)?;
    }

    if let Some(replication) = startup.parameters.get("replication")
        && !matches!(
            replication.to_ascii_lowercase().as_str(),
            "false" | "off" | "no" | "0"
        )
    {
        return Err(PgProxyError::Refused {
            code: "42501".to_owned(),
            message: "hoop: replication connections are not allowed through hoop".to_owned(),
        });
    }

    if let Some(database) = startup.parameters.get("database")
        && !database.is_empty()
        && *database != upstream.database
    {
        return Err(PgProxyError::Refused {
            code: "3D000".to_owned(),
            message: format!(
                "hoop: connection \"{}\" allows only database \"{}\", not \"{}\"",
                upstream.connection, upstream.database, database
            ),
        });
    }

    let mut forwarded = Vec::new();
    let mut dropped = Vec::new();
    for (name, value) in &startup.parameters {
        if FORWARDED_STARTUP_PARAMETERS
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
        {
            forwarded.push((name.clone(), value.clone()));
        } else if !matches!(name.as_str(), "user" | "database") {
            dropped.push(name.as_str());
        }
    }
    if !dropped.is_empty() {
        tracing::debug!(?dropped, "startup parameters not forwarded");
    }
    Ok(Opening::Session {
        forwarded,
        client_user: startup.parameters.get("user").cloned(),
    })
}

/// Asks for a cleartext password and checks it against the session's
/// one-time secret. `Ok(false)` when the client left instead of answering
/// (psql does that to prompt for a password, then reconnects).
pub(crate) async fn authenticate_client<S>(
    client: &mut S,
    buf: &mut BytesMut,
    session: &ClientSession,
    connection: &str,
) -> Result<bool, PgProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    Authentication::CleartextPassword
        .encode(&mut out)
        .map_err(|e| PgProxyError::ClientProtocol(e.to_string()))?;
    client
        .write_all(&out)
        .await
        .map_err(PgProxyError::ClientIo)?;

    let frame = match read_tagged(client, buf, MAX_STARTUP_LEN).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Ok(false),
        Err(FrameError::Io(e)) => return Err(PgProxyError::ClientIo(e)),
        Err(e) => return Err(PgProxyError::ClientProtocol(e.to_string())),
    };
    if frame.tag != b'p' {
        return Err(PgProxyError::ClientProtocol(format!(
            "expected a password message, got message type '{}'",
            char::from(frame.tag).escape_default()
        )));
    }
    let presented = PasswordMessageFamily::Raw(frame.body)
        .into_password()
        .map(|p| Secret::new(p.password))
        .map_err(|e| PgProxyError::ClientProtocol(e.to_string()))?;
    if secret_matches(&presented, &session.tunnel_secret_sha256) {
        Ok(true)
    } else {
        Err(PgProxyError::ClientAuth {
            connection: connection.to_owned(),
        })
    }
}

/// Constant-time check of the presented secret against the stored digest.
fn secret_matches(presented: &Secret, expected_sha256_hex: &str) -> bool {
    presented.matches_sha256_hex(expected_sha256_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_check_compares_digests() {
        let secret = Secret::new("one-time");
        let digest = secret.sha256_hex();
        assert!(secret_matches(&Secret::new("one-time"), &digest));
        assert!(!secret_matches(&Secret::new("one-timf"), &digest));
        assert!(!secret_matches(&Secret::new(""), &digest));
        assert!(!secret_matches(&secret, "not hex"));
        assert!(!secret_matches(&secret, "abcd"));
    }
}
