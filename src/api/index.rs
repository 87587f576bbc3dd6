//! The index's handlers: stored `.torrent` files in (upload) and out (downloads that carry the
//! caller's announce URL). Who may call them is decided before (`dispatch.rs`, `access.rs`).

use log::{error, warn};
use serde_json::{json, Value};

use crate::api::admin::AnnounceBase;
use crate::api::app::App;
use crate::error::ApiError;
use crate::protocol::ids::InfoHash;
use crate::protocol::metainfo;
use crate::protocol::torrent_file::{self, Personal};
use crate::store::info::{truncated, InfoUpdate};

/// The media type of a `.torrent` file.
pub const TORRENT_TYPE: &str = "application/x-bittorrent";

/// `POST /api/v1/torrents` with a `.torrent` file as the body: stores the file as it is and
/// registers the torrent (under its v1 hash, or a pure v2 torrent under its truncated v2 hash).
/// Returns 201 for a new torrent, 200 for one that was registered already.
pub fn upload(
    app: &App,
    content_type: Option<&str>,
    body: &[u8],
    now_unix: u64,
) -> Result<(u16, Value), ApiError> {
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if media.as_deref() != Some(TORRENT_TYPE) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the .torrent file as the body with Content-Type: {TORRENT_TYPE}"
        )));
    }
    let meta = metainfo::parse(body)
        .map_err(|e| ApiError::BadRequest(format!("not a .torrent file: {e}")))?;
    if app.config.require_passkey && !meta.private {
        return Err(ApiError::BadRequest(
            "this torrent is not private (its info dictionary has no private flag): on a private \
             tracker its peers would leak through DHT and peer exchange. Make it again with the \
             private flag set (mktorrent -p, or \"private torrent\" in your client) and upload that"
                .into(),
        ));
    }
    let Some(hash) = meta.v1.or_else(|| meta.v2.as_ref().map(truncated)) else {
        return Err(ApiError::BadRequest("the torrent has no info hash".into()));
    };
    app.files.put(&hash, body).map_err(|e| {
        error!("cannot store the .torrent of {hash}: {e}");
        ApiError::Internal(format!("cannot store the file: {e}"))
    })?;
    let created = app.swarm.register(
        hash,
        InfoUpdate {
            name: Some(meta.name.clone()),
            size: Some(meta.size),
            piece_length: Some(meta.piece_length),
            creation_date: Some(meta.creation_date.unwrap_or(now_unix as i64)),
            comment: meta.comment.clone(),
            created_by: meta.created_by.clone(),
            v2: meta.v2,
            stored: Some(true),
        },
        now_unix,
    );
    let answer = json!({
        "message": if created { "Torrent uploaded" } else { "Torrent file stored; it was registered already" },
        "info_hash": hash.to_hex(),
        "v2_info_hash": meta.v2_hex(),
        "name": meta.name,
        "size": meta.size,
        "files": meta.file_count,
        "private": meta.private,
        "created": created,
    });
    Ok((if created { 201 } else { 200 }, answer))
}

/// A served `.torrent`: its bytes and the file name to offer.
pub struct Download {
    pub bytes: Vec<u8>,
    pub file_name: String,
}

/// The stored file of the torrent `text` names (40 hex or 32 base32, either hash of a hybrid),
/// with `announce_url` as its only tracker and the release's metadata beside `info`.
pub fn download(
    app: &App,
    text: &str,
    announce_url: &str,
    base: &AnnounceBase,
) -> Result<Download, ApiError> {
    let hash = InfoHash::from_hex(text)
        .or_else(|_| InfoHash::from_base32(text))
        .map_err(|_| {
            ApiError::BadRequest(format!("{text:?} is not a 40-hex or 32-base32 info hash"))
        })?;
    let not_found = || ApiError::NotFound(format!("no torrent {hash}"));
    let (hash, info, registered) = app.swarm.info(&hash).ok_or_else(not_found)?;
    if !registered {
        return Err(not_found());
    }
    if !info.stored {
        return Err(ApiError::NotFound(format!(
            "torrent {hash} has no stored .torrent file (it was registered by its hash alone)"
        )));
    }
    let stored = app.files.get(&hash).map_err(|e| {
        error!("the stored .torrent of {hash} cannot be read: {e}");
        ApiError::NotFound(format!(
            "the stored .torrent file of {hash} is missing on the tracker; ask its operator"
        ))
    })?;
    let page = format!("{}/api/v1/torrents/{}", base.url, hash.to_hex());
    let bytes = torrent_file::personalize(
        &stored,
        &Personal {
            announce: announce_url,
            comment: Some(&page),
            created_by: Some(concat!("tinytracker ", env!("CARGO_PKG_VERSION"))),
            publisher_url: Some(&base.url),
            ..Personal::default()
        },
    )
    .map_err(|e| {
        warn!("the stored .torrent of {hash} is corrupt: {e}");
        ApiError::Internal(format!(
            "the stored .torrent file of {hash} is corrupt: {e}"
        ))
    })?;
    let name = if info.name.is_empty() {
        hash.to_hex()
    } else {
        info.name
    };
    Ok(Download {
        bytes,
        file_name: format!("{name}.torrent"),
    })
}
