//! The operator's endpoints: `/stats`, `/add_torrent_info`, `/save_state`, the users and
//! torrents API. Plain values in, JSON values out; who may call them is `access.rs`.

use serde_json::{json, Map, Value};

use crate::api::app::App;
use crate::api::AddTorrentInfoReply;
use crate::error::ApiError;
use crate::protocol::ids::InfoHash;
use crate::protocol::legacy;
use crate::protocol::ScrapeCounts;
use crate::store::info::{truncated, InfoUpdate, TorrentInfo};
use crate::store::swarm::Swarm;
use crate::store::torrent_files::TorrentFiles;
use crate::store::users::{Role, User, UserError, Users};

/// Largest request body accepted, on any endpoint.
pub const BODY_LIMIT: usize = 64 * 1024;

/// `GET /stats`: the original's shape, keyed by 40-hex info hash, plus `completed`.
pub fn stats(swarm: &Swarm, now_unix: u64) -> Value {
    let mut out = Map::new();
    for t in swarm.stats(now_unix) {
        let mut entry = json!({
            "name": t.info.name,
            "size": t.info.size,
            "creation_date": t.info.creation_date,
            "stats": {
                "complete": t.complete,
                "incomplete": t.incomplete,
                "downloaded": big_number(t.downloaded),
                "uploaded": big_number(t.uploaded),
                "peers": t.complete + t.incomplete,
                "completed": t.completed,
            },
        });
        // A v2 or hybrid torrent: its SHA-256 hash too (announces under either reach it).
        if t.info.v2.is_some() {
            entry["v2_info_hash"] = v2_hex(&t.info);
        }
        out.insert(t.info_hash.to_hex(), entry);
    }
    Value::Object(out)
}

/// `GET /scrape?format=json`: the original's JSON scrape for people and scripts, keyed by 40-hex hash.
pub fn scrape_json(found: Vec<(InfoHash, TorrentInfo, ScrapeCounts)>) -> Value {
    let files: Map<String, Value> = found
        .into_iter()
        .map(|(hash, info, counts)| {
            let entry = json!({
                "complete": counts.complete,
                "incomplete": counts.incomplete,
                "downloaded": counts.downloaded,
                "name": info.name,
            });
            (hash.to_hex(), entry)
        })
        .collect();
    json!({ "files": files })
}

/// A byte sum as a JSON number: exact up to u64, approximate beyond.
fn big_number(n: u128) -> Value {
    u64::try_from(n).map_or_else(|_| json!(n as f64), |n| json!(n))
}

/// `POST /add_torrent_info`: registers the torrent if unknown, updates its metadata if known.
pub fn add_torrent_info(swarm: &Swarm, body: &[u8], now_unix: u64) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    // BEP 52: a v2 or hybrid torrent also has a SHA-256 info hash (64 hex); a pure v2 torrent
    // has only that, and is tracked under its first 20 bytes, which is what v2 clients announce.
    let v2 = match fields.get("v2_info_hash") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(parse_v2(text)?),
        Some(_) => return Err(ApiError::BadRequest("v2_info_hash must be a string".into())),
    };
    let info_hash = match (fields.get("info_hash"), &v2) {
        (None | Some(Value::Null), Some(v2)) => truncated(v2),
        (None | Some(Value::Null), None) => {
            return Err(ApiError::BadRequest("missing info_hash".into()))
        }
        (Some(Value::String(text)), _) => match resolve_info_hash(swarm, text)? {
            Resolved::One(hash) => hash,
            Resolved::Several(candidates) => {
                let update = info_update(&fields, v2)?;
                let hexes: Vec<String> = candidates.iter().map(InfoHash::to_hex).collect();
                swarm.register_pending(candidates, update, now_unix);
                // 200, so the legacy client (which checks for it) reports success, as it is: the
                // torrent is served from its first announce on.
                return Ok(json!({
                    "message": "Torrent info added; its info_hash is ambiguous, so it is registered \
                                under the first of these that a client announces",
                    "ambiguous": true,
                    "candidates": hexes,
                    "created": true,
                }));
            }
        },
        (Some(_), _) => return Err(ApiError::BadRequest("info_hash must be a string".into())),
    };
    let update = info_update(&fields, v2)?;
    let created = swarm.register(info_hash, update, now_unix);
    let reply = AddTorrentInfoReply {
        message: "Torrent info added successfully".into(),
        info_hash: info_hash.to_hex(),
        created,
    };
    Ok(json!(reply))
}

/// The metadata fields of an `/add_torrent_info` body.
fn info_update(fields: &Map<String, Value>, v2: Option<[u8; 32]>) -> Result<InfoUpdate, ApiError> {
    Ok(InfoUpdate {
        name: text_field(fields, "name")?,
        size: count_field(fields, "size")?,
        piece_length: count_field(fields, "piece_length")?,
        creation_date: match fields.get("creation_date") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                ApiError::BadRequest("creation_date must be an integer (Unix seconds)".into())
            })?),
        },
        comment: text_field(fields, "comment")?,
        created_by: text_field(fields, "created_by")?,
        v2,
        ..crate::api::metadata::editable(fields)?
    })
}

/// A SHA-256 info hash: 64 hex characters.
fn parse_v2(text: &str) -> Result<[u8; 32], ApiError> {
    crate::protocol::ids::from_hex(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "v2_info_hash must be 64 hex characters, got {:?}",
            crate::api::access::short(text)
        ))
    })
}

fn v2_hex(info: &TorrentInfo) -> Value {
    info.v2
        .map_or(Value::Null, |v2| json!(crate::protocol::ids::hex(&v2)))
}

/// 40 hex characters, 32 base32 characters (magnet links), or the legacy client's escaped form.
/// The escaped form can be ambiguous; a candidate the tracker already knows settles it.
enum Resolved {
    One(InfoHash),
    /// The legacy escaped form with several readings, none of them a torrent the tracker knows.
    Several(Vec<InfoHash>),
}

fn resolve_info_hash(swarm: &Swarm, text: &str) -> Result<Resolved, ApiError> {
    if let Ok(hash) = InfoHash::from_hex(text) {
        return Ok(Resolved::One(hash));
    }
    if let Ok(hash) = InfoHash::from_base32(text) {
        return Ok(Resolved::One(hash));
    }
    let candidates: Vec<InfoHash> = legacy::cform_candidates(text)
        .into_iter()
        .map(InfoHash)
        .collect();
    let known: Vec<InfoHash> = candidates
        .iter()
        .copied()
        .filter(|h| swarm.contains(h))
        .collect();
    match (candidates.as_slice(), known.as_slice()) {
        ([], _) => Err(ApiError::BadRequest(
            "invalid info_hash: expected 40 hex characters, 32 base32 characters, \
             or the escaped form of 20 bytes"
                .into(),
        )),
        (_, [one]) | ([one], []) => Ok(Resolved::One(*one)),
        (several, _) => Ok(Resolved::Several(several.to_vec())),
    }
}

fn text_field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
    }
}

fn count_field(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a non-negative integer"))),
    }
}

/// Where clients reach the tracker, for the announce URLs handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceBase {
    /// Without a trailing slash.
    pub url: String,
    /// Taken from the request because `--public-url` is unset: the answer says so.
    pub guessed: bool,
}

impl AnnounceBase {
    const WARNING: &'static str = "--public-url is unset: announce_url is built from the address \
        this request was sent to; start the tracker with --public-url to hand out the right one";

    /// Adds the warning to an answer when the URL was guessed.
    fn annotate(&self, mut value: Value) -> Value {
        if self.guessed {
            value["warning"] = json!(Self::WARNING);
        }
        value
    }
}

/// A user as the API shows them; `announce_base` is where clients reach the tracker.
pub fn user_json(user: &User, announce_base: &str) -> Value {
    json!({
        "name": user.name,
        "passkey": user.passkey.as_str(),
        "announce_url": format!("{announce_base}/{}/announce", user.passkey),
        "created": user.created_unix,
        "last_seen": user.last_seen_unix,
        "uploaded": user.uploaded,
        "downloaded": user.downloaded,
        "completed": user.completed,
        "disabled": user.disabled,
        "has_api_token": user.token_hash.is_some(),
        "role": user.role.name(),
    })
}

fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::NotFound(_) => ApiError::NotFound(e.to_string()),
        UserError::Taken(_) => ApiError::Conflict(e.to_string()),
        UserError::BadName(_) => ApiError::BadRequest(e.to_string()),
    }
}

/// `POST /users` with `{"name": …}`: a new user with a fresh passkey.
pub fn create_user(
    users: &Users,
    body: &[u8],
    announce_base: &AnnounceBase,
    now_unix: u64,
) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let name = match value.get("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(ApiError::BadRequest("name must be a string".into())),
        None => return Err(ApiError::BadRequest("missing name".into())),
    };
    users.create(name, now_unix).map_err(user_error)?;
    // Every user gets an API token at once; it is shown only in this answer.
    let (user, token) = users.issue_token(name).map_err(user_error)?;
    let mut answer = user_json(&user, &announce_base.url);
    answer["api_token"] = json!(token);
    Ok(announce_base.annotate(answer))
}

/// `POST /api/v1/users/NAME/role` with `{"role": "member" | "uploader" | "moderator" | "admin"}`.
pub fn set_role(
    users: &Users,
    name: &str,
    body: &[u8],
    announce_base: &AnnounceBase,
) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let names = || {
        Role::ALL
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let role = match value.get("role") {
        Some(Value::String(text)) => Role::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "role: {:?} is not a role; one of {}",
                crate::api::access::short(text),
                names()
            ))
        })?,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "role: missing; one of {}",
                names()
            )))
        }
    };
    let user = users.set_role(name, role).map_err(user_error)?;
    Ok(announce_base.annotate(user_json(&user, &announce_base.url)))
}

/// `GET /api/v1/users/NAME`.
pub fn show_user(
    users: &Users,
    name: &str,
    announce_base: &AnnounceBase,
) -> Result<Value, ApiError> {
    let user = users
        .find(name)
        .ok_or_else(|| user_error(UserError::NotFound(name.to_owned())))?;
    Ok(announce_base.annotate(user_json(&user, &announce_base.url)))
}

/// `POST /api/v1/users/NAME/token` and `POST /api/v1/me/token`: a new API token (shown only in
/// this answer); the old one stops working.
pub fn issue_token(
    users: &Users,
    name: &str,
    announce_base: &AnnounceBase,
) -> Result<Value, ApiError> {
    let (user, token) = users.issue_token(name).map_err(user_error)?;
    let mut answer = user_json(&user, &announce_base.url);
    answer["api_token"] = json!(token);
    Ok(announce_base.annotate(answer))
}

/// `GET /users`: every user with their totals, by name.
pub fn list_users(users: &Users, announce_base: &AnnounceBase) -> Value {
    let list: Vec<Value> = users
        .list()
        .iter()
        .map(|u| user_json(u, &announce_base.url))
        .collect();
    announce_base.annotate(json!({ "users": list }))
}

/// `POST /users/NAME/rotate`.
pub fn rotate_user(
    users: &Users,
    name: &str,
    announce_base: &AnnounceBase,
) -> Result<Value, ApiError> {
    users
        .rotate(name)
        .map(|u| announce_base.annotate(user_json(&u, &announce_base.url)))
        .map_err(user_error)
}

/// `POST /users/NAME/disable` and `/enable`.
pub fn set_user_disabled(
    users: &Users,
    name: &str,
    disabled: bool,
    announce_base: &AnnounceBase,
) -> Result<Value, ApiError> {
    users
        .set_disabled(name, disabled)
        .map(|u| announce_base.annotate(user_json(&u, &announce_base.url)))
        .map_err(user_error)
}

/// `DELETE /users/NAME`.
pub fn delete_user(users: &Users, name: &str) -> Result<Value, ApiError> {
    let user = users.delete(name).map_err(user_error)?;
    Ok(json!({ "message": "User removed", "name": user.name }))
}

/// `GET /torrents`: every torrent with its counts and whether it was registered.
pub fn list_torrents(swarm: &Swarm, now_unix: u64) -> Value {
    let list: Vec<Value> = swarm
        .stats(now_unix)
        .into_iter()
        .map(|t| {
            json!({
                "info_hash": t.info_hash.to_hex(),
                "v2_info_hash": v2_hex(&t.info),
                "name": t.info.name,
                "size": t.info.size,
                "registered": t.registered,
                "complete": t.complete,
                "incomplete": t.incomplete,
                "completed": t.completed,
            })
        })
        .collect();
    json!({ "torrents": list })
}

/// `DELETE /torrents/HASH` (40 hex or 32 base32): the torrent and its peers go.
pub fn remove_torrent(swarm: &Swarm, files: &TorrentFiles, text: &str) -> Result<Value, ApiError> {
    let hash = InfoHash::from_hex(text)
        .or_else(|_| InfoHash::from_base32(text))
        .map_err(|_| {
            ApiError::BadRequest(format!("{text:?} is not a 40-hex or 32-base32 info hash"))
        })?;
    let (hash, peers) = swarm
        .unregister(&hash)
        .ok_or_else(|| ApiError::NotFound(format!("no torrent {hash}")))?;
    // The index no longer names it; a file that cannot be removed is only a leftover.
    if let Err(e) = files.remove(&hash) {
        log::warn!("torrent {hash} was removed, but not its stored .torrent file: {e}");
    }
    Ok(json!({ "message": "Torrent removed", "info_hash": hash.to_hex(), "peers": peers }))
}

/// `GET|POST /save_state`.
pub fn save_state(app: &App) -> Result<Value, ApiError> {
    if let Some(shared) = &app.shared {
        return Ok(json!({
            "message": format!(
                "Tracker state is kept in the shared store ({}); every change is written as it is made",
                shared.store.shown()
            ),
        }));
    }
    let report = app.save().map_err(ApiError::Internal)?;
    Ok(json!({
        "message": "Tracker state saved",
        "torrents": report.torrents,
        "peers": report.peers,
        "bytes": report.bytes,
        "millis": report.millis as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::swarm::SwarmConfig;

    const NOW: u64 = 1_700_000_000;

    fn swarm() -> Swarm {
        Swarm::new(SwarmConfig::default())
    }

    fn post(swarm: &Swarm, body: &str) -> Result<Value, ApiError> {
        add_torrent_info(swarm, body.as_bytes(), NOW)
    }

    #[test]
    fn hex_and_base32_hashes_register() {
        let s = swarm();
        let hex = "ab".repeat(20);
        let first = post(
            &s,
            &format!(r#"{{"info_hash": "{hex}", "name": "a", "size": 5}}"#),
        )
        .unwrap();
        assert_eq!(first["created"], true);
        assert_eq!(first["info_hash"], hex);
        let again = post(&s, &format!(r#"{{"info_hash": "{}"}}"#, hex.to_uppercase())).unwrap();
        assert_eq!(again["created"], false);
        let b32 = post(&s, r#"{"info_hash": "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT"}"#).unwrap();
        assert_eq!(b32["info_hash"], "000102030405060708090a0b0c0d0e0f10111213");
    }

    #[test]
    fn legacy_escaped_hash_registers_its_exact_bytes() {
        let s = swarm();
        let raw = [
            0xe3, 0x4b, 0x5b, 0x89, 0x7b, 0xca, 0x1a, 0xc4, 0x6c, 0xa7, 0x99, 0x2c, 0x35, 0x8a,
            0xc8, 0x7f, 0x1e, 0x0e, 0xad, 0xdb,
        ];
        let body = json!({"info_hash": legacy::custom_urlencode(&raw), "name": "x"}).to_string();
        let answer = post(&s, &body).unwrap();
        assert_eq!(
            answer["info_hash"],
            "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb"
        );
    }

    #[test]
    fn an_ambiguous_escaped_hash_is_settled_by_the_known_torrent() {
        let s = swarm();
        // "%8A%8B" + 16 × "A" has two 20-byte readings (reference §7.1); C-form reads it the same way.
        let mut known = [b'A'; 20];
        known[..4].copy_from_slice(&[0x25, 0x38, 0x41, 0x8b]);
        let text = legacy::custom_urlencode(&known);
        assert!(
            legacy::cform_candidates(&text).len() > 1,
            "{text} should be ambiguous"
        );
        let pending = post(&s, &json!({ "info_hash": text }).to_string()).unwrap();
        assert_eq!(pending["ambiguous"], true, "{pending}");
        assert_eq!(
            pending["candidates"].as_array().unwrap().len(),
            legacy::cform_candidates(&text).len()
        );
        assert_eq!(s.pending().len(), 1);
        assert_eq!(
            s.totals(),
            (0, 0),
            "no candidate is a torrent before it is announced"
        );
        s.register(InfoHash(known), InfoUpdate::default(), NOW);
        let answer = post(&s, &json!({ "info_hash": text, "name": "n" }).to_string()).unwrap();
        assert_eq!(answer["info_hash"], InfoHash(known).to_hex());
        assert_eq!(answer["created"], false);
    }

    #[test]
    fn bad_bodies_are_400_and_change_nothing() {
        let s = swarm();
        let hex = "cd".repeat(20);
        for (body, expect) in [
            ("not json", "not valid JSON"),
            ("null", "JSON object"),
            ("[]", "JSON object"),
            ("{}", "missing info_hash"),
            (r#"{"info_hash": 5}"#, "info_hash must be a string"),
            (r#"{"info_hash": "abc"}"#, "invalid info_hash"),
            (
                &format!(r#"{{"info_hash": "{hex}", "name": 42}}"#),
                "name must be a string",
            ),
            (
                &format!(r#"{{"info_hash": "{hex}", "size": -1}}"#),
                "size must be a non-negative integer",
            ),
            (
                &format!(r#"{{"info_hash": "{hex}", "size": 1.5}}"#),
                "size must be",
            ),
            (
                &format!(r#"{{"info_hash": "{hex}", "creation_date": "x"}}"#),
                "creation_date",
            ),
        ] {
            let err = post(&s, body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(err.to_string().contains(expect), "{body}: {err}");
        }
        assert_eq!(s.totals(), (0, 0));
    }

    #[test]
    fn users_are_created_listed_rotated_and_removed() {
        let users = Users::default();
        let base = &AnnounceBase {
            url: "https://t.example.org".into(),
            guessed: false,
        };
        let alice = create_user(&users, br#"{"name": "alice"}"#, base, NOW).unwrap();
        let key = alice["passkey"].as_str().unwrap().to_owned();
        assert_eq!(
            alice["announce_url"],
            format!("https://t.example.org/{key}/announce")
        );
        assert!(alice.get("warning").is_none());
        let guessed = AnnounceBase {
            guessed: true,
            ..base.clone()
        };
        let bob = create_user(&users, br#"{"name": "bob"}"#, &guessed, NOW).unwrap();
        assert!(bob["warning"].as_str().unwrap().contains("--public-url"));
        assert!(list_users(&users, &guessed)["warning"].is_string());
        delete_user(&users, "bob").unwrap();
        let taken = create_user(&users, br#"{"name": "alice"}"#, base, NOW).unwrap_err();
        assert_eq!(taken.status(), 409);
        assert_eq!(
            create_user(&users, br#"{"name": 1}"#, base, NOW)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            create_user(&users, b"{}", base, NOW).unwrap_err().status(),
            400
        );
        let rotated = rotate_user(&users, "alice", base).unwrap();
        assert_ne!(rotated["passkey"], key.as_str());
        assert_eq!(
            set_user_disabled(&users, "alice", true, base).unwrap()["disabled"],
            true
        );
        assert_eq!(list_users(&users, base)["users"][0]["name"], "alice");
        assert_eq!(delete_user(&users, "alice").unwrap()["name"], "alice");
        assert_eq!(delete_user(&users, "alice").unwrap_err().status(), 404);
        assert_eq!(
            rotate_user(&users, "nobody", base).unwrap_err().status(),
            404
        );
    }

    #[test]
    fn torrents_are_listed_and_removed() {
        let s = swarm();
        let hex = "02".repeat(20);
        post(&s, &format!(r#"{{"info_hash": "{hex}", "name": "n"}}"#)).unwrap();
        let list = list_torrents(&s, NOW);
        assert_eq!(list["torrents"][0]["info_hash"], hex);
        assert_eq!(list["torrents"][0]["registered"], true);
        let dir = tempfile::tempdir().unwrap();
        let files = TorrentFiles::beside(&dir.path().join("state.json"));
        let hash = InfoHash::from_hex(&hex).unwrap();
        files.put(&hash, b"stored").unwrap();
        assert_eq!(remove_torrent(&s, &files, &hex).unwrap()["peers"], 0);
        assert!(files.list().unwrap().is_empty(), "its stored file goes too");
        assert_eq!(remove_torrent(&s, &files, &hex).unwrap_err().status(), 404);
        assert_eq!(remove_torrent(&s, &files, "zz").unwrap_err().status(), 400);
        assert_eq!(s.totals(), (0, 0));
    }

    #[test]
    fn stats_has_the_original_shape_plus_completed() {
        let s = swarm();
        let hex = "01".repeat(20);
        post(
            &s,
            &format!(r#"{{"info_hash": "{hex}", "name": "n", "size": 3, "creation_date": 7}}"#),
        )
        .unwrap();
        let stats = stats(&s, NOW);
        assert_eq!(
            stats[&hex],
            json!({"name": "n", "size": 3, "creation_date": 7, "stats": {
                "complete": 0, "incomplete": 0, "downloaded": 0, "uploaded": 0, "peers": 0, "completed": 0}})
        );
    }
}
