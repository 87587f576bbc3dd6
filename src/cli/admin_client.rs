//! The client side of the admin API, shared by `add-torrent-info` and the `tinytracker user` /
//! `torrent` commands: one connection pool, JSON in and out. The only user of `ureq`.

use std::io;
use std::time::Duration;

use serde_json::Value;

use crate::api::ErrorReply;

/// Why a call did not get a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The tracker answered with this status and error text.
    #[error("tracker answered {status}: {message}")]
    Status { status: u16, message: String },
    /// No answer: connection refused, timeout, DNS.
    #[error("{0}")]
    Transport(String),
    #[error("bad tracker URL: {0}")]
    BadUrl(String),
    #[error("tracker answered {status} with an unexpected body: {message}")]
    BadBody { status: u16, message: String },
    #[error("{0}")]
    Other(String),
}

impl CallError {
    /// Worth trying again: no answer at all, or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

pub struct AdminClient {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// `--tracker`: an http(s) URL with a host (and maybe a path prefix), checked with `url` so a typo
/// is a usage error at once instead of a connection failure later. Returned without a trailing `/`.
pub fn parse_tracker_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("not a URL ({e}); give e.g. http://localhost:6969"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(
            "give an http:// or https:// URL with a host, e.g. http://localhost:6969".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("give the tracker's base URL, without a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl AdminClient {
    /// `base` is the tracker's URL (`http://host:port`), `timeout` bounds each call.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> AdminClient {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        AdminClient {
            agent: config.into(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `method` (`GET`, `POST`, `DELETE`) on `path` with an optional JSON body; the JSON answer.
    pub fn call<B: serde::Serialize>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Value, CallError> {
        let url = self.url(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            "POST" => {
                let mut request = self.agent.post(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                match body {
                    Some(body) => request.send_json(body),
                    None => request.send_empty(),
                }
            }
            _ => {
                let mut request = match method {
                    "DELETE" => self.agent.delete(&url),
                    _ => self.agent.get(&url),
                };
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
        };
        Self::answer(result)
    }

    /// POSTs `body` as it is, with `content_type` (a `.torrent` upload).
    pub fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, CallError> {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("Content-Type", content_type);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        Self::answer(request.send(body))
    }

    /// The JSON of a 2xx answer, or what went wrong.
    fn answer(
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, CallError> {
        let mut response = match result {
            Ok(response) => response,
            Err(ureq::Error::BadUri(uri)) => return Err(CallError::BadUrl(uri)),
            Err(
                e @ (ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound),
            ) => return Err(CallError::Transport(transport_message(&e))),
            // TLS, redirects, protocol errors: trying again would not help.
            Err(e) => return Err(CallError::Other(e.to_string())),
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(CallError::Status {
                status,
                message: error_text(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| CallError::BadBody {
            status,
            message: e.to_string(),
        })
    }
}

fn transport_message(error: &ureq::Error) -> String {
    match error {
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        other => other.to_string(),
    }
}

/// The `error` of a JSON error body, or the start of the body itself.
fn error_text(body: &str) -> String {
    serde_json::from_str::<ErrorReply>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| body.trim().chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_urls_are_checked_and_normalised() {
        assert_eq!(
            parse_tracker_url("http://localhost:6969/").unwrap(),
            "http://localhost:6969"
        );
        assert_eq!(
            parse_tracker_url("https://t.example.org/tracker/").unwrap(),
            "https://t.example.org/tracker"
        );
        for bad in [
            "localhost:6969",
            "ftp://t.example.org",
            "http://",
            "http://h/?x=1",
            "nonsense",
        ] {
            assert!(parse_tracker_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_text_prefers_the_json_error() {
        assert_eq!(
            error_text(r#"{"error":"missing info_hash"}"#),
            "missing info_hash"
        );
        assert_eq!(error_text("  plain  "), "plain");
    }

    #[test]
    fn only_silence_and_5xx_are_transient() {
        assert!(CallError::Transport("refused".into()).is_transient());
        assert!(CallError::Status {
            status: 503,
            message: String::new()
        }
        .is_transient());
        assert!(!CallError::Status {
            status: 403,
            message: String::new()
        }
        .is_transient());
        assert!(!CallError::BadUrl("x".into()).is_transient());
    }
}
