//! Tells a local Postgres client, in Postgres terms, why its connection cannot be tunnelled.
//!
//! When hoopctl cannot open a tunnel for a local connection (login expired,
//! session ended, broker unreachable), closing the socket would leave psql
//! saying only "server closed the connection unexpectedly". hoopctl has
//! played the server for the startup already ([`crate::local_gate`]), so it
//! sends an `ErrorResponse` with severity FATAL and its message, and closes.
//! psql then prints `FATAL:  <the reason>`.

use pgwire::error::ErrorInfo;
use pgwire::messages::response::ErrorResponse;

/// SQLSTATE `28000` invalid_authorization_specification: log in again.
pub const SQLSTATE_AUTH: &str = "28000";
/// SQLSTATE `08001` sqlclient_unable_to_establish_sqlconnection: broker unreachable.
pub const SQLSTATE_UNREACHABLE: &str = "08001";
/// SQLSTATE `08004` sqlserver_rejected_establishment_of_sqlconnection: refused.
pub const SQLSTATE_REJECTED: &str = "08004";

/// A `FATAL` ErrorResponse with `sqlstate`, `message` and an optional hint.
pub fn fatal(sqlstate: &str, message: &str, hint: Option<&str>) -> ErrorResponse {
    let mut info = ErrorInfo::new("FATAL".into(), sqlstate.into(), message.into());
    info.hint = hint.map(str::to_owned);
    ErrorResponse::from(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use pgwire::messages::{DecodeContext, Message as _, ProtocolVersion};

    #[test]
    fn fatal_carries_severity_code_message_and_hint() {
        let mut out = BytesMut::new();
        fatal(SQLSTATE_AUTH, "login expired", Some("run `hoopctl login`"))
            .encode(&mut out)
            .unwrap();
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        let resp = ErrorResponse::decode(&mut out, &ctx).unwrap().unwrap();
        let field = |c: u8| {
            resp.fields
                .iter()
                .find(|(k, _)| *k == c)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field(b'S'), Some("FATAL"));
        assert_eq!(field(b'C'), Some(SQLSTATE_AUTH));
        assert_eq!(field(b'M'), Some("login expired"));
        assert_eq!(field(b'H'), Some("run `hoopctl login`"));
    }
}
