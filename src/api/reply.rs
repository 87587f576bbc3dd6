//! What a handler decided, before the server writes it to the connection: status, type, body
//! and the few headers an answer may carry. Plain values; `protocol::http` writes them.

use serde_json::{json, Value};

use crate::api::events;
use crate::api::metrics::Outcome;
use crate::error::{ApiError, ProtocolError};
use crate::protocol;
use crate::protocol::http;

/// What a handler decided, before it is written to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
    /// A download's file name (sent as `Content-Disposition: attachment`).
    pub file_name: Option<String>,
    /// Further headers (CORS, `WWW-Authenticate`, caching).
    pub headers: Vec<(&'static str, String)>,
    /// Start a live-event stream on the connection (the body is its first frame). The
    /// subscriber's place is taken already.
    pub stream: Option<events::Stream>,
    /// Start the graceful shutdown once this reply is on its way.
    pub then_shut_down: bool,
    /// Why a BitTorrent client was refused (the body is then its bencoded `failure reason`).
    pub refused: Option<String>,
}

impl Reply {
    /// A 200 with a `text/plain` body: a bencoded answer, or the `/metrics` text.
    pub fn plain(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body,
            allow: None,
            file_name: None,
            headers: Vec::new(),
            stream: None,
            then_shut_down: false,
            refused: None,
        }
    }

    /// A BitTorrent client's refusal: HTTP 200 (BEP 3) with a bencoded `failure reason`.
    pub fn failure(e: &ProtocolError) -> Reply {
        Reply {
            refused: Some(e.to_string()),
            ..Reply::plain(protocol::encode_failure(e))
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Reply::typed(status, "application/json", body)
    }

    pub fn error(e: ApiError) -> Reply {
        let mut reply = Reply::json(e.status(), &json!({ "error": e.to_string() }));
        match e {
            ApiError::MethodNotAllowed { allow, .. } => reply.allow = Some(allow),
            ApiError::Unauthorized(_) => reply
                .headers
                .push(("WWW-Authenticate", "Bearer realm=\"tinytracker\"".into())),
            _ => {}
        }
        reply
    }

    /// A reply of `content_type` with `body`.
    pub fn typed(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            ..Reply::plain(body)
        }
    }

    /// How `/metrics` counts this reply.
    pub fn outcome(&self) -> Outcome {
        match self.status {
            500.. => Outcome::Error,
            400.. => Outcome::Refused,
            _ if self.refused.is_some() => Outcome::Refused,
            _ => Outcome::Ok,
        }
    }

    pub fn as_response(&self) -> http::Response<'_> {
        http::Response {
            status: self.status,
            content_type: self.content_type,
            allow: self.allow,
            file_name: self.file_name.as_deref(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}
