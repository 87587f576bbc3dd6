//! Error enums, one per audience: BitTorrent clients get a bencoded `failure reason`,
//! everyone else (admin callers, and routing's 404 and 405) a JSON body with a status code. Startup errors are `anyhow` in `main`.

/// Why an announce or scrape was refused. Sent as HTTP 200 with `failure reason` (BEP 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("missing {0}")]
    MissingParam(&'static str),
    #[error("{param} must be 20 bytes, got {len}")]
    BadLength { param: &'static str, len: usize },
    #[error("{0} is not a valid number")]
    InvalidNumber(&'static str),
    #[error("port must be between 1 and 65535")]
    InvalidPort,
    #[error("too many info_hash values (at most {max})")]
    TooManyInfoHashes { max: usize },
    #[error("unregistered torrent")]
    UnregisteredTorrent,
    #[error("tracker is full: it holds its limit of {max} torrents")]
    TooManyTorrents { max: usize },
    #[error("too many peers from your address in this torrent (at most {max})")]
    TooManyPeersFromAddress { max: usize },
    #[error("invalid passkey")]
    InvalidPasskey,
    #[error("passkey revoked")]
    PasskeyRevoked,
    /// The shared store did not answer; the client retries at its next interval.
    #[error("tracker storage is unavailable, try again shortly")]
    StoreUnavailable,
}

/// Why a request answered in JSON was refused: by routing (404, 405, whatever the path), by the
/// access rules or by an admin handler. Sent as `{"error": ...}` with [`ApiError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// No credentials, or ones that do not work (sent with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("method {method} not allowed; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MisdirectedRequest(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Internal(String),
    /// The service cannot answer now (a store that is gone, too many event subscribers).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::BodyTooLarge { .. } => 413,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::MisdirectedRequest(_) => 421,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }
}
