//! JSON payloads of the admin API, shared by the server and `add-torrent-info` (one definition).

pub mod access;
pub mod accounts;
pub mod admin;
pub mod app;
pub mod bittorrent;
pub mod catalog;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod feeds;
pub mod index;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod openapi;
pub mod reply;
pub mod routes;
pub mod shared;
pub mod web;

use serde::{Deserialize, Serialize};

use crate::store::info::InfoUpdate;

/// `POST /add_torrent_info` body: the Python tracker's fields. The server accepts `info_hash` as
/// 40 hex, 32 base32 or the legacy escaped form (`add-torrent-info` sends 40 hex); empty for a pure
/// v2 torrent, which is tracked under its `v2_info_hash`. A field left out keeps the tracker's
/// current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTorrentInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub info_hash: String,
    #[serde(flatten)]
    pub info: InfoUpdate,
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

/// Any refusal answered in JSON (an [`crate::error::ApiError`]): `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}
