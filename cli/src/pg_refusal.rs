//! Tells a local Postgres client, in Postgres terms, why its connection cannot be tunnelled.
//!
//! When hoopctl cannot open a tunnel for a local connection (login expired,
//! session ended, broker unreachable), closing the socket would leave psql
//! saying only "server closed the connection unexpectedly". Instead hoopctl
//! plays the server for the first exchange: it answers `N` to SSLRequest and
//! GSSENCRequest (the local leg is plain TCP on loopback), reads the
//! StartupMessage, sends an `ErrorResponse` with severity FATAL and hoopctl's
//! message, and closes. psql then prints `FATAL:  <the reason>`.
//!
//! Input comes from an arbitrary local program, so decoding uses pgwire's
//! length-checked codec and never panics, and the whole exchange has a timeout.

use std::time::Duration;

use bytes::BytesMut;
use pgwire::error::ErrorInfo;
use pgwire::messages::response::ErrorResponse;
use pgwire::messages::{
    DecodeContext, Message as _, PgWireFrontendMessage, ProtocolVersion, SslNegotiationMetaMessage,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// How long the local client gets to send its startup packet.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLSTATE `28000` invalid_authorization_specification: log in again.
pub const SQLSTATE_AUTH: &str = "28000";
/// SQLSTATE `08001` sqlclient_unable_to_establish_sqlconnection: broker unreachable.
pub const SQLSTATE_UNREACHABLE: &str = "08001";
/// SQLSTATE `08004` sqlserver_rejected_establishment_of_sqlconnection: refused.
pub const SQLSTATE_REJECTED: &str = "08004";

/// Why the refusal itself could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum RefusalError {
    /// The socket failed.
    #[error("local connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The client did not speak the Postgres startup protocol.
    #[error("local client did not send a Postgres startup message: {0}")]
    Protocol(String),
    /// The client was too slow.
    #[error("local client sent no startup message within {}s", REFUSAL_TIMEOUT.as_secs())]
    Timeout,
}

/// Answers the client's startup with `FATAL <sqlstate> message` (and `HINT`), then shuts the stream.
///
/// Returns `Ok` also when the client goes away before its startup message
/// or sends a CancelRequest (nothing to tell it then).
pub async fn refuse<S>(
    stream: &mut S,
    sqlstate: &str,
    message: &str,
    hint: Option<&str>,
) -> Result<(), RefusalError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(
        REFUSAL_TIMEOUT,
        refuse_untimed(stream, sqlstate, message, hint),
    )
    .await
    .map_err(|_| RefusalError::Timeout)?
}

async fn refuse_untimed<S>(
    stream: &mut S,
    sqlstate: &str,
    message: &str,
    hint: Option<&str>,
) -> Result<(), RefusalError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(512);
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    loop {
        let decoded = PgWireFrontendMessage::decode(&mut buf, &ctx)
            .map_err(|e| RefusalError::Protocol(e.to_string()))?;
        match decoded {
            None => {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
            Some(PgWireFrontendMessage::SslNegotiation(
                SslNegotiationMetaMessage::PostgresSsl(_)
                | SslNegotiationMetaMessage::PostgresGss(_),
            )) => {
                // No TLS/GSS on the loopback leg; libpq then retries in plain text
                // (or gives up, as sslmode=require should).
                stream.write_all(b"N").await?;
                stream.flush().await?;
            }
            Some(PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::None)) => {
                ctx.awaiting_frontend_ssl = false;
            }
            Some(PgWireFrontendMessage::Startup(_)) => {
                let mut info = ErrorInfo::new("FATAL".into(), sqlstate.into(), message.into());
                info.hint = hint.map(str::to_owned);
                let response = ErrorResponse::from(info);
                let mut out = BytesMut::new();
                response
                    .encode(&mut out)
                    .map_err(|e| RefusalError::Protocol(e.to_string()))?;
                stream.write_all(&out).await?;
                stream.flush().await?;
                let _ = stream.shutdown().await;
                return Ok(());
            }
            Some(PgWireFrontendMessage::CancelRequest(_)) => return Ok(()),
            Some(_) => {
                return Err(RefusalError::Protocol(
                    "unexpected message before the startup message".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::messages::startup::{SslRequest, Startup};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads everything the "server" sent until it closes.
    async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
        let mut v = Vec::new();
        s.read_to_end(&mut v).await.unwrap();
        v
    }

    fn decode_error(bytes: &[u8]) -> ErrorResponse {
        let mut buf = BytesMut::from(bytes);
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        let resp = ErrorResponse::decode(&mut buf, &ctx).unwrap().unwrap();
        assert!(buf.is_empty(), "trailing bytes after the ErrorResponse");
        resp
    }

    fn field(resp: &ErrorResponse, code: u8) -> Option<&str> {
        resp.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    async fn refusing_server(
        message: &'static str,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            refuse(&mut s, SQLSTATE_AUTH, message, Some("run `hoopctl login`"))
                .await
                .unwrap();
        });
        (addr, task)
    }

    #[tokio::test]
    async fn libpq_style_ssl_then_startup_gets_n_then_fatal() {
        let (addr, task) = refusing_server("login expired").await;
        let mut client = TcpStream::connect(addr).await.unwrap();

        // What libpq sends with sslmode=prefer: SSLRequest, then (after 'N') the startup packet.
        let mut out = BytesMut::new();
        SslRequest::new().encode(&mut out).unwrap();
        client.write_all(&out).await.unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");

        let mut startup = Startup::new();
        startup.parameters.insert("user".into(), "alice".into());
        startup.parameters.insert("database".into(), "app".into());
        startup
            .parameters
            .insert("application_name".into(), "psql".into());
        let mut out = BytesMut::new();
        startup.encode(&mut out).unwrap();
        client.write_all(&out).await.unwrap();

        let resp = decode_error(&read_to_end(&mut client).await);
        assert_eq!(field(&resp, b'S'), Some("FATAL"));
        assert_eq!(field(&resp, b'C'), Some(SQLSTATE_AUTH));
        assert_eq!(field(&resp, b'M'), Some("login expired"));
        assert_eq!(field(&resp, b'H'), Some("run `hoopctl login`"));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn plain_startup_split_across_writes_is_answered() {
        let (addr, task) = refusing_server("session ended").await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut startup = Startup::new();
        startup.parameters.insert("user".into(), "bob".into());
        let mut out = BytesMut::new();
        startup.encode(&mut out).unwrap();
        let (a, b) = out.split_at(5);
        client.write_all(a).await.unwrap();
        client.flush().await.unwrap();
        tokio::task::yield_now().await;
        client.write_all(b).await.unwrap();
        let resp = decode_error(&read_to_end(&mut client).await);
        assert_eq!(field(&resp, b'M'), Some("session ended"));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn real_psql_shows_the_reason() {
        // psql is a test prerequisite (.ci/run installs it): fail, never skip.
        let psql = which("psql").expect("psql must be installed to run the tests");
        let (addr, task) =
            refusing_server("not logged in to https://b:1: run `hoopctl login`").await;
        let out = tokio::process::Command::new(psql)
            .args(["-X", "-w", "-c", "select 1"])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", addr.port().to_string())
            .env("PGUSER", "alice")
            .env("PGDATABASE", "app")
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .await
            .unwrap();
        task.await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("FATAL"), "{stderr}");
        assert!(stderr.contains("not logged in to https://b:1"), "{stderr}");
    }

    fn which(name: &str) -> Result<std::path::PathBuf, ()> {
        let path = std::env::var_os("PATH").ok_or(())?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or(())
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_not_a_panic() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        // A "startup" with protocol major 9 and a huge length.
        a.write_all(&[0xff, 0xff, 0xff, 0x7f, 0, 9, 0, 0, 1, 2, 3])
            .await
            .unwrap();
        let err = refuse(&mut b, SQLSTATE_AUTH, "m", None).await.unwrap_err();
        assert!(matches!(err, RefusalError::Protocol(_)), "{err}");
    }

    #[tokio::test]
    async fn client_that_leaves_early_is_fine() {
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        refuse(&mut b, SQLSTATE_AUTH, "m", None).await.unwrap();
    }
}
