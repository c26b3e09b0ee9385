//! The broker → database leg: TCP connect with a timeout, StartupMessage with
//! the stored user and database, authentication (SCRAM-SHA-256, MD5,
//! cleartext) with the stored credential, then everything up to the first
//! ReadyForQuery. Also a minimal client ([`UpstreamConn`]) for the broker's own
//! queries (dev schema loading, readiness checks, tests).
//!
//! TLS comes first when the connection's mode asks for it: an SSLRequest, the
//! server's one-byte answer, then a rustls handshake on the same socket,
//! following libpq's `sslmode` semantics. `prefer` and `require` encrypt
//! without checking the certificate chain (the handshake signature is still
//! checked); `verify-full` checks the chain against the configured CA (or the
//! public web roots) and the host name. Exactly one byte is read before the
//! handshake, so bytes a server or an attacker sends ahead of TLS cannot be
//! mistaken for protected data.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::Message as _;
use pgwire::messages::startup::Startup;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::config::UpstreamTls;

use super::Upstream;
use super::error::PgProxyError;
use super::wire::framing::{
    FrameError, MAX_HANDSHAKE_LEN, MAX_MESSAGE_LEN, TaggedFrame, read_tagged,
};
use super::wire::{Authentication, DataRow, ErrorFields, ServerMessage};

/// How long the TCP connect to the database may take.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for the whole upstream login (connect + auth + first ReadyForQuery).
pub const UPSTREAM_LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The socket to the database: plain TCP or TLS over it.
pub(crate) type UpstreamStream = Either<TcpStream, TlsStream<TcpStream>>;
/// Read half of an [`UpstreamStream`].
pub(crate) type UpstreamRead = Either<OwnedReadHalf, tokio::io::ReadHalf<TlsStream<TcpStream>>>;
/// Write half of an [`UpstreamStream`].
pub(crate) type UpstreamWrite = Either<OwnedWriteHalf, tokio::io::WriteHalf<TlsStream<TcpStream>>>;

/// Splits the socket for the relay's two directions. Plain TCP splits without
/// a lock; TLS needs tokio's split, since both directions share the session.
pub(crate) fn split(stream: UpstreamStream) -> (UpstreamRead, UpstreamWrite) {
    match stream {
        Either::Left(tcp) => {
            let (r, w) = tcp.into_split();
            (Either::Left(r), Either::Left(w))
        }
        Either::Right(tls) => {
            let (r, w) = tokio::io::split(tls);
            (Either::Right(r), Either::Right(w))
        }
    }
}

/// TLS settings of one connection's upstream leg, resolved at startup.
#[derive(Clone)]
pub struct TlsSettings {
    mode: UpstreamTls,
    client: Option<Arc<rustls::ClientConfig>>,
}

impl Default for TlsSettings {
    /// Plain TCP (what the broker's own throwaway servers use).
    fn default() -> Self {
        TlsSettings {
            mode: UpstreamTls::Disable,
            client: None,
        }
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .finish()
    }
}

impl TlsSettings {
    /// Builds the settings for `mode`; `ca_file` (PEM) replaces the public web
    /// roots for `verify-full`. Errors name the file, never key material.
    pub fn new(mode: UpstreamTls, ca_file: Option<&Path>) -> Result<TlsSettings, String> {
        crate::tls::install_crypto_provider();
        let client = match mode {
            UpstreamTls::Disable => None,
            UpstreamTls::Prefer | UpstreamTls::Require => {
                let provider = rustls::crypto::ring::default_provider();
                let cfg = rustls::ClientConfig::builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth();
                Some(Arc::new(cfg))
            }
            UpstreamTls::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match ca_file {
                    Some(path) => {
                        let certs: Vec<CertificateDer<'static>> =
                            CertificateDer::pem_file_iter(path)
                                .and_then(|it| it.collect::<Result<_, _>>())
                                .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
                        let (added, _) = roots.add_parsable_certificates(certs);
                        if added == 0 {
                            return Err(format!(
                                "tls_ca_file {}: no usable CA certificate",
                                path.display()
                            ));
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                Some(Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                ))
            }
        };
        Ok(TlsSettings { mode, client })
    }

    /// The mode.
    pub fn mode(&self) -> UpstreamTls {
        self.mode
    }

    /// The rustls client settings (`None` for plain TCP), for other
    /// PostgreSQL clients of the broker (`crate::store::pg_conn`).
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.client.clone()
    }
}

/// `prefer`/`require`: encryption without authentication of the server, as
/// libpq does for those modes. The handshake signature is still verified, so
/// the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Negotiates TLS on a fresh socket as the connection's mode says.
async fn negotiate_tls(
    mut tcp: TcpStream,
    upstream: &Upstream,
) -> Result<UpstreamStream, PgProxyError> {
    let fail = |reason: String| PgProxyError::UpstreamTls {
        connection: upstream.connection.clone(),
        reason,
    };
    let Some(client) = upstream.tls.client.clone() else {
        return Ok(Either::Left(tcp));
    };
    let mut ssl_request = BytesMut::with_capacity(8);
    frontend::ssl_request(&mut ssl_request);
    tcp.write_all(&ssl_request)
        .await
        .map_err(PgProxyError::UpstreamIo)?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .await
        .map_err(PgProxyError::UpstreamIo)?;
    match answer {
        [b'S'] => {
            let name = ServerName::try_from(upstream.host.clone()).map_err(|_| {
                fail(format!(
                    "{:?} is not a valid TLS server name",
                    upstream.host
                ))
            })?;
            let tls = TlsConnector::from(client)
                .connect(name, tcp)
                .await
                .map_err(|e| fail(describe_tls_error(&e)))?;
            Ok(Either::Right(tls))
        }
        [b'N'] if upstream.tls.mode == UpstreamTls::Prefer => Ok(Either::Left(tcp)),
        [b'N'] => Err(fail(format!(
            "the database does not accept TLS, and the connection requires it (tls = \"{}\")",
            match upstream.tls.mode {
                UpstreamTls::VerifyFull => "verify-full",
                _ => "require",
            }
        ))),
        [other] => Err(PgProxyError::UpstreamProtocol(format!(
            "unexpected answer {:?} to the TLS request",
            char::from(other).escape_default().to_string()
        ))),
    }
}

/// The TLS failure in words (rustls errors arrive wrapped in io::Error).
fn describe_tls_error(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => {
            format!("the database's certificate is not trusted: {why:?}")
        }
        Some(other) => format!("handshake failed: {other}"),
        None => format!("handshake failed: {e}"),
    }
}

/// A logged-in upstream connection, ready for its first query.
pub(crate) struct LoggedIn {
    pub stream: UpstreamStream,
    /// Bytes the server sent after its ReadyForQuery (normally none).
    pub leftover: BytesMut,
    /// ParameterStatus and NoticeResponse frames to pass on to the client, on the wire.
    pub status_frames: BytesMut,
    /// ParameterStatus values, for the broker's own client.
    pub parameters: Vec<(String, String)>,
    /// The server's own BackendKeyData, for cancel requests (None if it sent none).
    pub backend_key: Option<(i32, i32)>,
    /// The ReadyForQuery frame, on the wire.
    pub ready: BytesMut,
}

fn upstream_frame_err(e: FrameError) -> PgProxyError {
    match e {
        FrameError::Io(e) => PgProxyError::UpstreamIo(e),
        other => PgProxyError::UpstreamProtocol(other.to_string()),
    }
}

/// Replaces any occurrence of the upstream password in server-provided text.
/// Servers do not echo passwords, but this text reaches clients and logs.
pub(crate) fn scrub(text: &str, upstream: &Upstream) -> String {
    let pw = upstream.password.expose();
    if pw.len() >= 3 && text.contains(pw) {
        text.replace(pw, "***")
    } else {
        text.to_owned()
    }
}

/// The error for an ErrorResponse received during login.
fn login_error(body: &[u8], upstream: &Upstream) -> PgProxyError {
    let (code, message) = ErrorFields::decode(body).code_and_message();
    let message = scrub(&message, upstream);
    let connection = upstream.connection.clone();
    if code.starts_with("28") {
        PgProxyError::UpstreamAuth {
            connection,
            code,
            message,
        }
    } else {
        PgProxyError::UpstreamRefused {
            connection,
            code,
            message,
        }
    }
}

/// Connects and logs in, under [`UPSTREAM_LOGIN_TIMEOUT`]. `params` are extra
/// startup parameters (already filtered by the caller).
pub(crate) async fn login(
    upstream: &Upstream,
    params: &[(String, String)],
) -> Result<LoggedIn, PgProxyError> {
    match tokio::time::timeout(UPSTREAM_LOGIN_TIMEOUT, login_inner(upstream, params)).await {
        Ok(result) => result,
        Err(_) => Err(PgProxyError::UpstreamTimeout {
            connection: upstream.connection.clone(),
            after: UPSTREAM_LOGIN_TIMEOUT,
        }),
    }
}

/// Opens a TCP connection to the upstream with [`UPSTREAM_CONNECT_TIMEOUT`].
pub(crate) async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, String> {
    match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => {
            // Small request/response messages: never wait for Nagle.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "connection timed out".to_owned(),
            _ => e.to_string(),
        }),
        Err(_) => Err(format!(
            "no answer within {}s",
            UPSTREAM_CONNECT_TIMEOUT.as_secs()
        )),
    }
}

async fn login_inner(
    upstream: &Upstream,
    params: &[(String, String)],
) -> Result<LoggedIn, PgProxyError> {
    let tcp = tcp_connect(&upstream.host, upstream.port)
        .await
        .map_err(|reason| PgProxyError::UpstreamConnect {
            connection: upstream.connection.clone(),
            addr: format!("{}:{}", upstream.host, upstream.port),
            reason,
        })?;
    let mut stream = negotiate_tls(tcp, upstream).await?;

    // Protocol 3.0: the broker rewrites BackendKeyData as 4-byte keys, and 3.0
    // is what every server since 7.4 speaks.
    let mut startup = Startup::new();
    startup
        .parameters
        .insert("user".to_owned(), upstream.user.clone());
    startup
        .parameters
        .insert("database".to_owned(), upstream.database.clone());
    for (k, v) in params {
        startup.parameters.insert(k.clone(), v.clone());
    }
    let mut out = BytesMut::new();
    startup
        .encode(&mut out)
        .map_err(|e| PgProxyError::Refused {
            code: "54000".to_owned(),
            message: format!("hoop: the startup parameters are too large ({e})"),
        })?;
    stream
        .write_all(&out)
        .await
        .map_err(PgProxyError::UpstreamIo)?;

    let mut buf = BytesMut::with_capacity(8 * 1024);
    authenticate(&mut stream, &mut buf, upstream).await?;

    let mut status_frames = BytesMut::new();
    let mut parameters = Vec::new();
    let mut backend_key = None;
    loop {
        let frame = next_frame(&mut stream, &mut buf).await?;
        match ServerMessage::decode(frame.tag, &frame.body) {
            ServerMessage::ParameterStatus { name, value } => {
                parameters.push((
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                ));
                status_frames.extend_from_slice(&frame.to_wire());
            }
            // A malformed ParameterStatus reaches the client as it came (as
            // it always did); the broker does not keep it.
            ServerMessage::Malformed { tag: b'S', .. } | ServerMessage::NoticeResponse(_) => {
                status_frames.extend_from_slice(&frame.to_wire())
            }
            ServerMessage::BackendKeyData { pid, key } => backend_key = Some((pid, key)),
            ServerMessage::Malformed { tag: b'K', .. } => backend_key = None,
            ServerMessage::ReadyForQuery { .. } | ServerMessage::Malformed { tag: b'Z', .. } => {
                return Ok(LoggedIn {
                    stream,
                    leftover: buf,
                    status_frames,
                    parameters,
                    backend_key,
                    ready: frame.to_wire(),
                });
            }
            ServerMessage::ErrorResponse(_) => return Err(login_error(&frame.body, upstream)),
            _ => {
                return Err(PgProxyError::UpstreamProtocol(format!(
                    "unexpected message '{}' after authentication",
                    char::from(frame.tag).escape_default()
                )));
            }
        }
    }
}

async fn next_frame(
    stream: &mut UpstreamStream,
    buf: &mut BytesMut,
) -> Result<TaggedFrame, PgProxyError> {
    match read_tagged(stream, buf, MAX_HANDSHAKE_LEN).await {
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => Err(PgProxyError::UpstreamProtocol(
            "the server closed the connection during login".to_owned(),
        )),
        Err(e) => Err(upstream_frame_err(e)),
    }
}

/// Runs the authentication exchange until AuthenticationOk.
async fn authenticate(
    stream: &mut UpstreamStream,
    buf: &mut BytesMut,
    upstream: &Upstream,
) -> Result<(), PgProxyError> {
    let password = upstream.password.expose().as_bytes();
    let mut scram: Option<ScramSha256> = None;
    let unsupported = |method: &str| PgProxyError::UpstreamAuthMethod {
        connection: upstream.connection.clone(),
        method: method.to_owned(),
    };
    let bad = |what: &str| PgProxyError::UpstreamProtocol(what.to_owned());
    loop {
        let frame = next_frame(stream, buf).await?;
        let mut out = BytesMut::new();
        match ServerMessage::decode(frame.tag, &frame.body) {
            ServerMessage::Malformed { tag: b'R', error } => {
                return Err(bad(&format!("invalid authentication request: {error}")));
            }
            ServerMessage::Authentication(auth) => {
                match auth {
                    Authentication::Ok => return Ok(()),
                    Authentication::CleartextPassword => {
                        frontend::password_message(password, &mut out)
                            .map_err(|_| bad("cannot encode the password message"))?
                    }
                    Authentication::Md5Password { salt } => {
                        let hashed = md5_hash(upstream.user.as_bytes(), password, salt);
                        frontend::password_message(hashed.as_bytes(), &mut out)
                            .map_err(|_| bad("cannot encode the password message"))?;
                    }
                    Authentication::Sasl { .. } => {
                        let mechanisms: Vec<String> = auth
                            .sasl_mechanisms()
                            .into_iter()
                            .map(|m| String::from_utf8_lossy(m).into_owned())
                            .collect();
                        if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(unsupported(&format!("SASL ({})", mechanisms.join(", "))));
                        }
                        // Plain TCP to the server: no channel binding to offer.
                        let s = ScramSha256::new(password, ChannelBinding::unsupported());
                        frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                            .map_err(|_| bad("cannot encode the SASL response"))?;
                        scram = Some(s);
                    }
                    Authentication::SaslContinue(data) => {
                        let s = scram
                            .as_mut()
                            .ok_or_else(|| bad("SASL continue before SASL start"))?;
                        s.update(data)
                            .map_err(|e| bad(&format!("invalid SCRAM server message ({e})")))?;
                        frontend::sasl_response(s.message(), &mut out)
                            .map_err(|_| bad("cannot encode the SASL response"))?;
                    }
                    Authentication::SaslFinal(data) => {
                        let mut s = scram
                            .take()
                            .ok_or_else(|| bad("SASL final before SASL start"))?;
                        // Verifies the server's signature: a server that does
                        // not know the verifier cannot complete the exchange.
                        s.finish(data).map_err(|e| {
                            bad(&format!("the server's SCRAM proof did not verify ({e})"))
                        })?;
                        continue;
                    }
                    Authentication::Other(2) => return Err(unsupported("Kerberos V5")),
                    Authentication::Other(6) => return Err(unsupported("SCM credential")),
                    Authentication::Other(7 | 8) => return Err(unsupported("GSSAPI")),
                    Authentication::Other(9) => return Err(unsupported("SSPI")),
                    Authentication::Other(other) => {
                        return Err(unsupported(&format!("unknown method {other}")));
                    }
                }
            }
            ServerMessage::ErrorResponse(_) => return Err(login_error(&frame.body, upstream)),
            // Notices and protocol negotiation (we asked for 3.0, which every
            // server speaks) need no answer.
            ServerMessage::NoticeResponse(_) | ServerMessage::Other(b'v') => continue,
            _ => {
                return Err(PgProxyError::UpstreamProtocol(format!(
                    "unexpected message '{}' during authentication",
                    char::from(frame.tag).escape_default()
                )));
            }
        }
        stream
            .write_all(&out)
            .await
            .map_err(PgProxyError::UpstreamIo)?;
    }
}

/// A minimal upstream client for the broker's own use (the dev database,
/// the masking catalog): simple queries with text results, and Describe.
pub struct UpstreamConn {
    stream: UpstreamStream,
    buf: BytesMut,
    parameters: Vec<(String, String)>,
    backend_key: Option<(i32, i32)>,
}

/// Connects and logs in to `upstream` as its stored user (deadline
/// [`UPSTREAM_LOGIN_TIMEOUT`]).
pub async fn connect(upstream: &Upstream) -> Result<UpstreamConn, PgProxyError> {
    connect_as(upstream, "hoop-broker").await
}

/// [`connect`], showing `application_name` in the server's activity view.
pub async fn connect_as(
    upstream: &Upstream,
    application_name: &str,
) -> Result<UpstreamConn, PgProxyError> {
    let params = [("application_name".to_owned(), application_name.to_owned())];
    let logged_in = login(upstream, &params).await?;
    Ok(UpstreamConn {
        stream: logged_in.stream,
        buf: logged_in.leftover,
        parameters: logged_in.parameters,
        backend_key: logged_in.backend_key,
    })
}

fn encode_error(e: std::io::Error) -> PgProxyError {
    PgProxyError::Refused {
        code: "54000".to_owned(),
        message: format!("cannot encode the query ({e})"),
    }
}

impl UpstreamConn {
    /// Runs `sql` (one or more statements) with the simple query protocol and
    /// returns the rows of all result sets as text. An error carries the
    /// server's SQLSTATE and message ([`PgProxyError::Server`]).
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, PgProxyError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(encode_error)?;
        let mut rows = Vec::new();
        self.exchange(&out, |tag, body| {
            if tag == b'D' {
                rows.push(data_row_text(body).ok_or_else(|| {
                    PgProxyError::UpstreamProtocol("malformed DataRow".to_owned())
                })?);
            }
            Ok(())
        })
        .await?;
        Ok(rows)
    }

    /// The RowDescription body `sql` would produce (`None`: it returns no
    /// rows), from Parse + Describe of the unnamed statement; nothing runs.
    pub async fn describe(&mut self, sql: &str) -> Result<Option<Vec<u8>>, PgProxyError> {
        let mut out = BytesMut::new();
        frontend::parse("", sql, std::iter::empty(), &mut out).map_err(encode_error)?;
        frontend::describe(b'S', "", &mut out).map_err(encode_error)?;
        frontend::sync(&mut out);
        let mut description = None;
        self.exchange(&out, |tag, body| {
            if tag == b'T' {
                description = Some(body.to_vec());
            }
            Ok(())
        })
        .await?;
        Ok(description)
    }

    /// Sends `out` and reads the answers up to ReadyForQuery, showing each
    /// message to `on`; the first server error is the result.
    async fn exchange(
        &mut self,
        out: &[u8],
        mut on: impl FnMut(u8, &[u8]) -> Result<(), PgProxyError>,
    ) -> Result<(), PgProxyError> {
        self.stream
            .write_all(out)
            .await
            .map_err(PgProxyError::UpstreamIo)?;
        let mut error = None;
        loop {
            let frame = match read_tagged(&mut self.stream, &mut self.buf, MAX_MESSAGE_LEN).await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return Err(error.unwrap_or_else(|| {
                        PgProxyError::UpstreamProtocol(
                            "the server closed the connection".to_owned(),
                        )
                    }));
                }
                Err(e) => return Err(upstream_frame_err(e)),
            };
            match frame.tag {
                b'E' => {
                    let (code, message) = ErrorFields::decode(&frame.body).code_and_message();
                    error.get_or_insert(PgProxyError::Server { code, message });
                }
                b'G' => {
                    // COPY FROM STDIN is not something this client does.
                    let mut out = BytesMut::new();
                    let _ = frontend::copy_fail("COPY FROM STDIN is not supported here", &mut out);
                    self.stream
                        .write_all(&out)
                        .await
                        .map_err(PgProxyError::UpstreamIo)?;
                }
                b'Z' => return error.map_or(Ok(()), Err),
                // Everything else (rows, descriptions, notices, COPY OUT
                // data, ParameterStatus, notifications) is for `on`.
                tag => on(tag, &frame.body)?,
            }
        }
    }

    /// A ParameterStatus value the server reported at login (e.g. `server_version`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The server process id of this connection.
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_key.map(|(pid, _)| pid)
    }

    /// Ends the session politely (Terminate, then close).
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.stream.write_all(&out).await;
        let _ = self.stream.shutdown().await;
    }
}

/// Text values of a DataRow body; `None` when the body is malformed.
fn data_row_text(body: &[u8]) -> Option<Vec<Option<String>>> {
    let row = DataRow::decode(body).ok()?;
    row.values()
        .map(|v| {
            v.ok()
                .map(|v| v.value.map(|b| String::from_utf8_lossy(b).into_owned()))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tls_tests {
    //! The upstream TLS modes against a real PostgreSQL with `ssl = on`.

    use super::*;
    use crate::dev::postgres::ThrowawayPostgres;
    use hoop_shared::Secret;

    /// A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key).
    pub(crate) fn server_cert() -> (String, String, Secret) {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        (
            ca_cert.pem(),
            leaf_cert.pem(),
            Secret::new(leaf_key.serialize_pem()),
        )
    }

    fn with_tls(pg: &ThrowawayPostgres, tls: TlsSettings) -> Upstream {
        let mut u = pg.superuser("postgres");
        u.connection = "tls-pg".into();
        u.tls = tls;
        u
    }

    async fn encrypted(u: &Upstream) -> Result<String, PgProxyError> {
        let mut c = connect(u).await?;
        let rows = c
            .simple_query("select ssl::text from pg_stat_ssl where pid = pg_backend_pid()")
            .await?;
        c.close().await;
        Ok(rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default())
    }

    #[tokio::test]
    async fn verify_full_with_the_right_ca_encrypts_and_another_ca_is_refused() {
        let (ca, cert, key) = server_cert();
        let pg = ThrowawayPostgres::start_with_tls(&cert, &key)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        let tls = TlsSettings::new(UpstreamTls::VerifyFull, Some(&ca_file)).unwrap();
        assert_eq!(encrypted(&with_tls(&pg, tls)).await.unwrap(), "true");

        let (other_ca, _, _) = server_cert();
        let other = dir.path().join("other.pem");
        std::fs::write(&other, &other_ca).unwrap();
        let tls = TlsSettings::new(UpstreamTls::VerifyFull, Some(&other)).unwrap();
        let err = encrypted(&with_tls(&pg, tls)).await.unwrap_err();
        assert!(matches!(&err, PgProxyError::UpstreamTls { .. }), "{err:?}");
        let (code, message, _) = err.client_fatal().unwrap();
        assert_eq!(code, "08001");
        assert!(message.contains("certificate is not trusted"), "{message}");
        assert!(message.contains("tls-pg"), "{message}");

        // Without a CA file, the public web roots do not vouch for a private CA.
        let tls = TlsSettings::new(UpstreamTls::VerifyFull, None).unwrap();
        assert!(encrypted(&with_tls(&pg, tls)).await.is_err());
        pg.stop().await.unwrap();
    }

    #[tokio::test]
    async fn require_and_prefer_encrypt_when_the_server_offers_tls() {
        let (_ca, cert, key) = server_cert();
        let pg = ThrowawayPostgres::start_with_tls(&cert, &key)
            .await
            .unwrap();
        for mode in [UpstreamTls::Require, UpstreamTls::Prefer] {
            let tls = TlsSettings::new(mode, None).unwrap();
            assert_eq!(
                encrypted(&with_tls(&pg, tls)).await.unwrap(),
                "true",
                "{mode:?}"
            );
        }
        let plain = TlsSettings::new(UpstreamTls::Disable, None).unwrap();
        assert_eq!(encrypted(&with_tls(&pg, plain)).await.unwrap(), "false");
        pg.stop().await.unwrap();
    }

    #[tokio::test]
    async fn require_against_a_server_without_tls_is_refused_and_prefer_falls_back() {
        let pg = ThrowawayPostgres::start().await.unwrap();
        let tls = TlsSettings::new(UpstreamTls::Require, None).unwrap();
        let err = encrypted(&with_tls(&pg, tls)).await.unwrap_err();
        let (_, message, hint) = err.client_fatal().unwrap();
        assert!(message.contains("does not accept TLS"), "{message}");
        assert!(hint.unwrap_or_default().contains("tls"));
        let tls = TlsSettings::new(UpstreamTls::Prefer, None).unwrap();
        assert_eq!(encrypted(&with_tls(&pg, tls)).await.unwrap(), "false");
        pg.stop().await.unwrap();
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let err = TlsSettings::new(
            UpstreamTls::VerifyFull,
            Some(Path::new("/nonexistent/ca.pem")),
        )
        .unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = TlsSettings::new(UpstreamTls::VerifyFull, Some(&empty)).unwrap_err();
        assert!(err.contains("no usable CA"), "{err}");
    }
}
