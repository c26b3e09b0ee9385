//! What can go wrong on either leg of a Postgres tunnel, which side it was,
//! and the protocol-native FATAL the client is told.

use std::time::Duration;

/// Which side of the proxy a failure came from (for logs and audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The user's client (psql, libpq, JDBC...) on the tunnel.
    Client,
    /// The real database server.
    Upstream,
    /// The broker itself.
    Internal,
}

/// Errors of the Postgres proxy. None of them ever carries the upstream
/// password or the one-time secret: they only hold names, SQLSTATEs, server
/// messages and I/O reasons.
#[derive(Debug, thiserror::Error)]
pub enum PgProxyError {
    /// The client's stream failed.
    #[error("client I/O error: {0}")]
    ClientIo(#[source] std::io::Error),
    /// The client broke the protocol (bad length, unexpected message, garbage).
    #[error("client protocol violation: {0}")]
    ClientProtocol(String),
    /// The client did not finish its startup in time.
    #[error("the client did not finish its startup within {0:?}")]
    ClientTimeout(Duration),
    /// The client did not present the session's one-time secret.
    #[error("the client did not present the session's one-time secret")]
    ClientAuth {
        /// Connection name (for the message to the client).
        connection: String,
    },
    /// The client asked for something this tunnel does not allow (another
    /// database, a replication connection, an unknown protocol version).
    #[error("refused the client's request: {message}")]
    Refused {
        /// SQLSTATE for the client.
        code: String,
        /// What the client is told.
        message: String,
    },
    /// The session had already ended, or ended during the relay.
    #[error("the session ended")]
    SessionExpired,
    /// The upstream server could not be reached.
    #[error("cannot reach upstream {connection} at {addr}: {reason}")]
    UpstreamConnect {
        /// Connection name.
        connection: String,
        /// host:port tried.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// TLS to the upstream could not be set up as the connection requires.
    #[error("TLS to upstream {connection} failed: {reason}")]
    UpstreamTls {
        /// Connection name.
        connection: String,
        /// Why, in words (no key material).
        reason: String,
    },
    /// The upstream did not finish the login in time.
    #[error("upstream {connection} did not finish the login within {after:?}")]
    UpstreamTimeout {
        /// Connection name.
        connection: String,
        /// The deadline.
        after: Duration,
    },
    /// The upstream rejected the broker's credential (SQLSTATE class 28).
    #[error("upstream {connection} rejected the stored credential ({code}: {message})")]
    UpstreamAuth {
        /// Connection name.
        connection: String,
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The upstream asked for an authentication method the broker cannot do.
    #[error("upstream {connection} asked for unsupported authentication method {method}")]
    UpstreamAuthMethod {
        /// Connection name.
        connection: String,
        /// The method, in words.
        method: String,
    },
    /// The upstream refused the login for another reason (missing database,
    /// too many connections, starting up...).
    #[error("upstream {connection} refused the login ({code}: {message})")]
    UpstreamRefused {
        /// Connection name.
        connection: String,
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The upstream broke the protocol.
    #[error("upstream protocol violation: {0}")]
    UpstreamProtocol(String),
    /// The upstream's stream failed.
    #[error("upstream I/O error: {0}")]
    UpstreamIo(#[source] std::io::Error),
    /// A query sent by the broker's own client ([`super::UpstreamConn`]) failed.
    #[error("database error {code}: {message}")]
    Server {
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
}

impl PgProxyError {
    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            PgProxyError::ClientIo(_)
            | PgProxyError::ClientProtocol(_)
            | PgProxyError::ClientTimeout(_)
            | PgProxyError::ClientAuth { .. }
            | PgProxyError::Refused { .. } => Side::Client,
            PgProxyError::SessionExpired => Side::Internal,
            PgProxyError::UpstreamConnect { .. }
            | PgProxyError::UpstreamTls { .. }
            | PgProxyError::UpstreamTimeout { .. }
            | PgProxyError::UpstreamAuth { .. }
            | PgProxyError::UpstreamAuthMethod { .. }
            | PgProxyError::UpstreamRefused { .. }
            | PgProxyError::UpstreamProtocol(_)
            | PgProxyError::UpstreamIo(_)
            | PgProxyError::Server { .. } => Side::Upstream,
        }
    }

    /// Whether trying again later could succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            PgProxyError::UpstreamConnect { .. }
            | PgProxyError::UpstreamTimeout { .. }
            | PgProxyError::UpstreamIo(_) => true,
            PgProxyError::UpstreamRefused { code, .. } => {
                // too_many_connections, cannot_connect_now (starting up / shutting down)
                code == "53300" || code == "57P03"
            }
            _ => false,
        }
    }

    /// The FATAL the client is sent for this failure during login, if any
    /// (SQLSTATE, message, hint). Server-provided text in these errors has
    /// already been scrubbed of the upstream password.
    pub(crate) fn client_fatal(&self) -> Option<(String, String, Option<String>)> {
        let (code, message, hint) = match self {
            // Nobody to tell.
            PgProxyError::ClientIo(_) => return None,
            PgProxyError::ClientAuth { connection } => (
                "28P01".to_owned(),
                "hoop: password authentication failed: this local port accepts only the one-time secret \
                 that hoopctl gave the command it started (PGPASSWORD)"
                    .to_owned(),
                Some(format!(
                    "Start your client through hoopctl, e.g. `hoopctl connect {connection} -- psql`, \
                     and do not override PGPASSWORD."
                )),
            ),
            PgProxyError::Refused { code, message } => (code.clone(), message.clone(), None),
            PgProxyError::ClientProtocol(what) => (
                "08P01".to_owned(),
                format!("hoop: invalid message from the client ({what}); closing the connection"),
                None,
            ),
            PgProxyError::ClientTimeout(after) => (
                "08P01".to_owned(),
                format!("hoop: the client did not finish its startup within {after:?}"),
                None,
            ),
            PgProxyError::SessionExpired => return None,
            PgProxyError::UpstreamConnect {
                connection, reason, ..
            } => (
                "08001".to_owned(),
                format!("hoop: cannot reach the database behind connection \"{connection}\" ({reason})"),
                Some("The database may be down or unreachable from the broker; try again later or ask an admin.".to_owned()),
            ),
            PgProxyError::UpstreamTls { connection, reason } => (
                "08001".to_owned(),
                format!("hoop: cannot set up TLS to the database behind connection \"{connection}\" ({reason})"),
                Some("An admin must check the connection's tls and tls_ca_file settings and the database's certificate.".to_owned()),
            ),
            PgProxyError::UpstreamTimeout { connection, after } => (
                "08001".to_owned(),
                format!(
                    "hoop: the database behind connection \"{connection}\" did not complete the login within {}s",
                    after.as_secs()
                ),
                Some("The database may be overloaded or unreachable; try again later or ask an admin.".to_owned()),
            ),
            PgProxyError::UpstreamAuth {
                connection,
                code,
                message,
            } => (
                code.clone(),
                format!(
                    "hoop: the database behind connection \"{connection}\" rejected the broker's stored credential ({message})"
                ),
                Some("An admin must check the credential configured for this connection in the broker.".to_owned()),
            ),
            PgProxyError::UpstreamAuthMethod { connection, method } => (
                "28000".to_owned(),
                format!(
                    "hoop: the database behind connection \"{connection}\" asked for {method} authentication, which the broker does not support"
                ),
                Some("An admin must allow scram-sha-256, md5 or password authentication for the broker's role.".to_owned()),
            ),
            PgProxyError::UpstreamRefused {
                connection,
                code,
                message,
            } => (
                code.clone(),
                format!("hoop: the database behind connection \"{connection}\" refused the login: {message}"),
                None,
            ),
            PgProxyError::UpstreamProtocol(what) => (
                "08006".to_owned(),
                format!("hoop: the database sent an invalid message during login ({what})"),
                None,
            ),
            PgProxyError::UpstreamIo(e) => (
                "08006".to_owned(),
                format!("hoop: lost the connection to the database during login ({e})"),
                None,
            ),
            PgProxyError::Server { code, message } => (code.clone(), message.clone(), None),
        };
        Some((code, message, hint))
    }
}
