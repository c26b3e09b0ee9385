//! The states and kinds the store keeps as text, typed: each enum is stored
//! (and serialized) as the same lower-case word the broker always wrote, so
//! existing databases and API answers are unchanged; reading a word the
//! enum does not know is an error, not a guess.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored word that names no variant of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}")]
pub struct UnknownWord {
    /// Which enum was asked for.
    pub what: &'static str,
    /// The text found.
    pub found: String,
}

/// Declares a text-backed enum: `as_str`, `Display`, `FromStr`, serde, and
/// the SQLite/PostgreSQL conversions, all from one list of words.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The word stored and shown for it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $( $word => Ok($name::$variant), )+
                    _ => Err(UnknownWord {
                        what: $what,
                        found: s.to_owned(),
                    }),
                }
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }

        impl tokio_postgres::types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &tokio_postgres::types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
            {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::ToSql>::accepts(ty)
            }

            tokio_postgres::types::to_sql_checked!();
        }

        impl<'a> tokio_postgres::types::FromSql<'a> for $name {
            fn from_sql(
                ty: &tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(<&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?.parse()?)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::FromSql>::accepts(ty)
            }
        }
    };
}

text_enum! {
    /// Where a stored access request or statement review stands
    /// (`access_requests.state`). Expiry is not stored: a pending request
    /// past its deadline, or a grant past its end, reads as expired (see
    /// [`hoop_shared::api::RequestState`], the state a reader sees).
    RequestState("request state") {
        /// Waiting for approvals.
        Pending = "pending",
        /// Approved: a grant (or a review's one run) until `grant_ends_at`.
        Approved = "approved",
        /// Denied by an approver.
        Denied = "denied",
        /// Withdrawn by the requester.
        Cancelled = "cancelled",
        /// The grant was ended by an approver or admin.
        Revoked = "revoked",
    }
}

impl From<RequestState> for hoop_shared::api::RequestState {
    fn from(s: RequestState) -> Self {
        use hoop_shared::api::RequestState as Shown;
        match s {
            RequestState::Pending => Shown::Pending,
            RequestState::Approved => Shown::Approved,
            RequestState::Denied => Shown::Denied,
            RequestState::Cancelled => Shown::Cancelled,
            RequestState::Revoked => Shown::Revoked,
        }
    }
}

text_enum! {
    /// What a row of `access_requests` is (`access_requests.kind`).
    RequestKind("request kind") {
        /// A grant of access to a connection for a while.
        Access = "access",
        /// A statement review: one run of one statement a guardrail held.
        Statement = "statement",
    }
}

impl From<RequestKind> for hoop_shared::api::RequestKind {
    fn from(k: RequestKind) -> Self {
        match k {
            RequestKind::Access => hoop_shared::api::RequestKind::Access,
            RequestKind::Statement => hoop_shared::api::RequestKind::Statement,
        }
    }
}

text_enum! {
    /// One approver's decision on a request or review (`approvals.decision`).
    Decision("decision") {
        /// Counts towards the approvals needed.
        Approve = "approve",
        /// Denies the request at once.
        Deny = "deny",
    }
}

text_enum! {
    /// Where a session stands. Not stored: it follows from `closed_at` and
    /// `expires_at` ([`super::SessionRow::state`]).
    SessionState("session state") {
        /// Open: tunnels may still be made under it.
        Open = "open",
        /// Closed by its owner or the broker.
        Closed = "closed",
        /// Past its end (its grant's or its own).
        Expired = "expired",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_variant_and_serializes_the_same() {
        for s in [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Denied,
            RequestState::Cancelled,
            RequestState::Revoked,
        ] {
            assert_eq!(s.as_str().parse::<RequestState>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(
                hoop_shared::api::RequestState::from(s).to_string(),
                s.as_str()
            );
        }
        for k in [RequestKind::Access, RequestKind::Statement] {
            assert_eq!(k.as_str().parse::<RequestKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for d in [Decision::Approve, Decision::Deny] {
            assert_eq!(d.as_str().parse::<Decision>(), Ok(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        for s in [
            SessionState::Open,
            SessionState::Closed,
            SessionState::Expired,
        ] {
            assert_eq!(s.as_str().parse::<SessionState>(), Ok(s));
        }
        assert_eq!(
            "expired".parse::<RequestState>(),
            Err(UnknownWord {
                what: "request state",
                found: "expired".into()
            })
        );
    }
}
