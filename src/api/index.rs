//! The index's handlers: stored `.torrent` files in (upload) and out (downloads that carry the
//! caller's announce URL). Who may call them is decided before (`dispatch.rs`, `access.rs`).

use log::{error, warn};
use serde_json::{json, Map, Value};

use crate::api::access::Who;
use crate::api::admin::AnnounceBase;
use crate::api::app::App;
use crate::api::catalog::{self, summary_json, Found};
use crate::api::metadata;
use crate::error::ApiError;
use crate::protocol::ids::InfoHash;
use crate::protocol::torrent_file::{self, Personal};
use crate::protocol::{metainfo, multipart};
use crate::store::info::{truncated, InfoUpdate};
use crate::store::users::Role;

/// The media type of a `.torrent` file.
pub const TORRENT_TYPE: &str = "application/x-bittorrent";

/// Where a caller's links lead: the tracker's base URL and, for a user, their passkey.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub base: &'a AnnounceBase,
    pub passkey: Option<&'a str>,
}

impl Links<'_> {
    /// The announce URL to put in files and magnet links.
    pub fn announce(&self) -> String {
        match self.passkey {
            Some(key) => format!("{}/{key}/announce", self.base.url),
            None => format!("{}/announce", self.base.url),
        }
    }

    /// The link that downloads a stored file: the passkey link (no header needed) for a user,
    /// the API path for others.
    pub fn download(&self, hash: &InfoHash) -> String {
        match self.passkey {
            Some(key) => format!("{}/{key}/download/{}", self.base.url, hash.to_hex()),
            None => format!(
                "{}/api/v1/torrents/{}/download",
                self.base.url,
                hash.to_hex()
            ),
        }
    }

    /// The torrent's page in the API.
    pub fn page(&self, hash: &InfoHash) -> String {
        format!("{}/api/v1/torrents/{}", self.base.url, hash.to_hex())
    }

    /// The torrent's magnet link, with its v1 hash (unless it is pure v2), its v2 hash, and the
    /// caller's announce URL.
    pub fn magnet(&self, found: &Found) -> String {
        let Found { hash, info, .. } = found;
        let pure_v2 = info.v2.as_ref().is_some_and(|v2| truncated(v2) == *hash);
        metainfo::magnet_link(
            (!pure_v2).then_some(hash),
            info.v2.as_ref(),
            info.display_title(),
            info.size,
            &self.announce(),
        )
    }
}

/// The uploader a caller is recorded as: a user's name, or nobody for an operator.
fn uploader(who: &Who) -> Option<String> {
    match who {
        Who::User(user) => Some(user.name.clone()),
        _ => None,
    }
}

/// `POST /api/v1/torrents`: a `.torrent` file as the body (`application/x-bittorrent`), an HTML
/// form's file field `torrent` (`multipart/form-data`, with optional metadata fields), or a magnet
/// link (`application/json`: `{"magnet": …}` and optional metadata). A file is stored as it is
/// and registered under its v1 hash (a pure v2 torrent under its truncated v2 hash). Returns 201
/// for a new torrent, 200 for one that was registered already.
pub fn upload(
    app: &App,
    who: &Who,
    content_type: Option<&str>,
    body: &[u8],
    now_unix: u64,
) -> Result<(u16, Value), ApiError> {
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some(TORRENT_TYPE) => store_file(app, who, body, InfoUpdate::default(), now_unix),
        Some("multipart/form-data") => {
            let (file, update) = read_form(content_type.unwrap_or_default(), body)?;
            store_file(app, who, file, update, now_unix)
        }
        Some("application/json") => register_magnet(app, who, body, now_unix),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send the .torrent file as the body with Content-Type: {TORRENT_TYPE}, as a form \
             (multipart/form-data) with the file in the field \"torrent\", or a magnet link as \
             JSON: {{\"magnet\": \"magnet:?xt=urn:btih:...\"}}"
        ))),
    }
}

/// The file of a form's `torrent` field and the metadata of its other fields.
fn read_form<'a>(content_type: &str, body: &'a [u8]) -> Result<(&'a [u8], InfoUpdate), ApiError> {
    let boundary = multipart::boundary(content_type)
        .ok_or_else(|| ApiError::BadRequest("multipart/form-data without a boundary".into()))?;
    let parts = multipart::parse(body, &boundary)
        .map_err(|e| ApiError::BadRequest(format!("the form cannot be read: {e}")))?;
    let file = parts.iter().find(|p| p.name == "torrent").ok_or_else(|| {
        ApiError::BadRequest("the form has no field \"torrent\" with the .torrent file".into())
    })?;
    let mut fields = Map::new();
    for part in &parts {
        if metadata::EDITABLE.contains(&part.name.as_str()) {
            let text = std::str::from_utf8(part.body)
                .map_err(|_| ApiError::BadRequest(format!("{}: not UTF-8 text", part.name)))?;
            // An empty form field is a field left alone.
            if !text.trim().is_empty() {
                fields.insert(part.name.clone(), Value::String(text.to_owned()));
            }
        }
    }
    Ok((file.body, metadata::editable(&fields)?))
}

fn store_file(
    app: &App,
    who: &Who,
    body: &[u8],
    release: InfoUpdate,
    now_unix: u64,
) -> Result<(u16, Value), ApiError> {
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
    if let Some((_, info, true)) = app.swarm.info(&hash) {
        // A user may add the file of their own registration, not take over someone else's.
        if let Who::User(user) = who {
            if info.uploader != user.name && user.role < Role::Moderator {
                return Err(ApiError::Conflict(format!(
                    "torrent {hash} is on the tracker already"
                )));
            }
        }
    }
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
            uploader: uploader(who),
            ..release
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

/// `{"magnet": "magnet:?xt=urn:btih:…", …metadata}`: registers the torrent by its hash alone (no
/// file to serve; clients fetch the metadata from peers).
fn register_magnet(
    app: &App,
    who: &Who,
    body: &[u8],
    now_unix: u64,
) -> Result<(u16, Value), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    let link = match fields.remove("magnet") {
        Some(Value::String(link)) => link,
        Some(_) => return Err(ApiError::BadRequest("magnet: must be a string".into())),
        None => return Err(ApiError::BadRequest("magnet: missing".into())),
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !metadata::EDITABLE.contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "{}: unknown field; send magnet and any of {}",
            crate::api::access::short(unknown),
            metadata::EDITABLE.join(", ")
        )));
    }
    let release = metadata::editable(&fields)?;
    let magnet =
        metainfo::parse_magnet(&link).map_err(|e| ApiError::BadRequest(format!("magnet: {e}")))?;
    let hash = magnet.info_hash;
    if app
        .swarm
        .info(&hash)
        .is_some_and(|(_, _, registered)| registered)
    {
        return Err(ApiError::Conflict(format!(
            "torrent {hash} is on the tracker already"
        )));
    }
    let name = magnet.name.unwrap_or_default();
    let created = app.swarm.register(
        hash,
        InfoUpdate {
            name: Some(name.clone()),
            creation_date: Some(now_unix as i64),
            uploader: uploader(who),
            ..release
        },
        now_unix,
    );
    Ok((
        201,
        json!({
            "message": "Torrent registered from its magnet link",
            "info_hash": hash.to_hex(),
            "name": name,
            "created": created,
        }),
    ))
}

/// A torrent as the API lists it: [`summary_json`] and the caller's links.
pub fn torrent_json(found: &Found, links: &Links) -> Value {
    let mut value = summary_json(found);
    value["download_url"] = json!(found.info.stored.then(|| links.download(&found.hash)));
    value["magnet"] = json!(links.magnet(found));
    value["url"] = json!(links.page(&found.hash));
    value
}

/// `GET /api/v1/torrents`: a page of the index.
pub fn catalog(app: &App, query: &str, links: &Links) -> Result<Value, ApiError> {
    let query = catalog::Query::parse(query)?;
    let page = catalog::search(&app.swarm, &query);
    let torrents: Vec<Value> = page
        .torrents
        .iter()
        .map(|f| torrent_json(f, links))
        .collect();
    Ok(json!({
        "total": page.total,
        "page": query.page,
        "per_page": query.per_page,
        "torrents": torrents,
    }))
}

/// The registered torrent `text` names (40 hex or 32 base32, either hash of a hybrid).
fn find(app: &App, text: &str) -> Result<Found, ApiError> {
    let hash = parse_hash(text)?;
    let (hash, info, counts) = app
        .swarm
        .entry(&hash)
        .ok_or_else(|| ApiError::NotFound(format!("no torrent {hash}")))?;
    Ok(Found { hash, info, counts })
}

fn parse_hash(text: &str) -> Result<InfoHash, ApiError> {
    InfoHash::from_hex(text)
        .or_else(|_| InfoHash::from_base32(text))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{:?} is not a 40-hex or 32-base32 info hash",
                crate::api::access::short(text)
            ))
        })
}

/// `GET /api/v1/torrents/{hash}`: one torrent with its description and files.
pub fn show(app: &App, text: &str, links: &Links) -> Result<Value, ApiError> {
    let found = find(app, text)?;
    let mut value = torrent_json(&found, links);
    value["description"] = json!(found.info.description);
    value["piece_length"] = json!(found.info.piece_length);
    value["comment"] = json!(found.info.comment);
    value["created_by"] = json!(found.info.created_by);
    value["creation_date"] = json!(found.info.creation_date);
    if found.info.stored {
        match app
            .files
            .get(&found.hash)
            .map(|bytes| metainfo::parse(&bytes))
        {
            Ok(Ok(meta)) => {
                let files: Vec<Value> = meta
                    .files
                    .iter()
                    .map(|f| json!({ "path": f.path, "size": f.length }))
                    .collect();
                value["files"] = json!(files);
                value["private"] = json!(meta.private);
            }
            Ok(Err(e)) => {
                warn!("the stored .torrent of {} is corrupt: {e}", found.hash);
                value["files_error"] = json!(format!("the stored .torrent file is corrupt: {e}"));
            }
            Err(e) => {
                warn!("the stored .torrent of {} cannot be read: {e}", found.hash);
                value["files_error"] = json!("the stored .torrent file is missing on the tracker");
            }
        }
    }
    Ok(value)
}

/// `PATCH /api/v1/torrents/{hash}`: a JSON merge of the editable metadata. Operators edit any
/// torrent, users (with `--user-uploads`) their own uploads.
pub fn edit(
    app: &App,
    who: &Who,
    text: &str,
    body: &[u8],
    links: &Links,
) -> Result<Value, ApiError> {
    let update = metadata::patch(body)?;
    let found = find(app, text)?;
    if let Who::User(user) = who {
        if found.info.uploader != user.name && user.role < Role::Moderator {
            return Err(ApiError::Forbidden(
                "you may edit only the torrents you uploaded (moderators edit any)".into(),
            ));
        }
    }
    let (hash, info) = app
        .swarm
        .update(&found.hash, update)
        .ok_or_else(|| ApiError::NotFound(format!("no torrent {}", found.hash)))?;
    Ok(torrent_json(
        &Found {
            hash,
            info,
            counts: found.counts,
        },
        links,
    ))
}

/// `GET /api/v1/torrents/{hash}/history`: peers over time, for a plot.
pub fn history(app: &App, text: &str) -> Result<Value, ApiError> {
    let hash = parse_hash(text)?;
    let (hash, mut history) = app
        .swarm
        .history(&hash)
        .ok_or_else(|| ApiError::NotFound(format!("no torrent {hash}")))?;
    history["info_hash"] = json!(hash.to_hex());
    Ok(history)
}

/// `GET /api/v1/stats`: the tracker's totals.
pub fn totals(app: &App) -> Value {
    let (torrents, seeders, leechers) = app.counts();
    let registered = app
        .swarm
        .select(|_, info, _, counts| Some((info.stored, counts.downloaded)));
    json!({
        "torrents": torrents,
        "registered": registered.len(),
        "stored": registered.iter().filter(|(stored, _)| *stored).count(),
        "completed": registered.iter().map(|(_, done)| done).sum::<u64>(),
        "seeders": seeders,
        "leechers": leechers,
        "peers": seeders + leechers,
        "users": app.users.len(),
    })
}

/// A served `.torrent`: its bytes and the file name to offer.
pub struct Download {
    pub bytes: Vec<u8>,
    pub file_name: String,
}

/// The stored file of the torrent `text` names (40 hex or 32 base32, either hash of a hybrid),
/// with the caller's announce URL as its only tracker and the release's metadata beside `info`.
pub fn download(app: &App, text: &str, links: &Links) -> Result<Download, ApiError> {
    let Found { hash, info, .. } = find(app, text)?;
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
    let page = links.page(&hash);
    let announce = links.announce();
    let bytes = torrent_file::personalize(
        &stored,
        &Personal {
            announce: &announce,
            comment: Some(&page),
            created_by: Some(concat!("tinytracker ", env!("CARGO_PKG_VERSION"))),
            publisher_url: Some(&links.base.url),
            title: Some(info.display_title()).filter(|t| !t.is_empty()),
            artist: Some(info.artist.as_str()).filter(|a| !a.is_empty()),
            tags: &info.tags,
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
