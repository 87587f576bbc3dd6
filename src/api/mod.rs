//! JSON payloads of the admin API, shared by the server and `add-torrent-info` (one definition).

pub mod access;
pub mod admin;
pub mod app;
pub mod config;
pub mod dispatch;
pub mod metrics;
pub mod routes;

use serde::{Deserialize, Serialize};

/// `POST /add_torrent_info` body: the Python tracker's fields. The server accepts `info_hash` as
/// 40 hex, 32 base32 or the legacy escaped form (`add-torrent-info` sends 40 hex). A field left
/// out keeps the tracker's current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTorrentInfo {
    pub info_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<i64>,
    /// BEP 52 SHA-256 info hash (64 hex) of a v2 or hybrid torrent. Without `info_hash` (a pure
    /// v2 torrent) the torrent is tracked under its first 20 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2_info_hash: Option<String>,
}

/// `POST /add_torrent_info` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTorrentInfoReply {
    pub message: String,
    /// 40 hex.
    pub info_hash: String,
    /// True when the torrent was new to the tracker.
    pub created: bool,
}

/// Any admin error: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}
