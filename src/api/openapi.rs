//! The OpenAPI 3 document of API v1 and the feeds, served at `/api/v1/openapi.json`. A unit test
//! holds it against the routing table: every path and method it names routes, and every route of
//! the index is in it.

use serde_json::{json, Value};

/// One operation: its summary, who may call it, and what it answers.
fn op(summary: &str, who: &str, answers: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    for (status, description) in answers {
        let body = if status.starts_with('2') {
            json!({ "description": description })
        } else {
            json!({
                "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            })
        };
        responses.insert((*status).to_owned(), body);
    }
    json!({ "summary": summary, "description": format!("Who: {who}."), "responses": responses })
}

fn with_params(mut operation: Value, params: &[(&str, &str, &str)]) -> Value {
    let list: Vec<Value> = params
        .iter()
        .map(|(name, place, description)| {
            json!({
                "name": name,
                "in": place,
                "required": *place == "path",
                "description": description,
                "schema": { "type": "string" },
            })
        })
        .collect();
    operation["parameters"] = json!(list);
    operation
}

const HASH: (&str, &str, &str) = (
    "hash",
    "path",
    "40 hex (v1 or truncated v2) or 32 base32 info hash",
);
const NAME: (&str, &str, &str) = ("name", "path", "user name");
const READERS: &str = "anyone on an open tracker; users (API token) and operators on a private one";
const OPERATORS: &str = "operators (admin token, or a --local-admin caller)";
const UPLOADERS: &str =
    "operators; users with their API token when the tracker runs with --user-uploads";

/// The document, as JSON text.
pub fn document() -> String {
    let list_params = [
        (
            "q",
            "query",
            "words that must all appear in name, title, artist or tags (case-insensitive)",
        ),
        ("tag", "query", "only torrents with this tag"),
        (
            "category",
            "query",
            "only these categories (comma-separated)",
        ),
        (
            "sort",
            "query",
            "added (default), seeders, leechers, completed, size or name",
        ),
        (
            "order",
            "query",
            "asc or desc (default: desc, asc for name)",
        ),
        ("page", "query", "page number from 1"),
        (
            "per_page",
            "query",
            "results per page, 1 to 200 (default 50)",
        ),
    ];
    let user_ops = |summary: &str| {
        with_params(
            op(
                summary,
                OPERATORS,
                &[("200", "the user"), ("404", "no such user")],
            ),
            &[NAME],
        )
    };
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tinytracker API",
            "version": "1",
            "description": "The index of a tinytracker: stored .torrent files, downloads that carry the caller's passkey, users, feeds. Errors are JSON {\"error\": \"...\"} with the status given."
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "a user's API token (tt_...) or the admin token" }
            },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"] }
            }
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/api/v1/torrents": {
                "get": with_params(op("List and search the index", READERS, &[("200", "a page of torrents with total"), ("400", "a bad parameter"), ("401", "a private tracker without credentials")]), &list_params),
                "post": op("Upload a .torrent (application/x-bittorrent body, or multipart/form-data with the file in field \"torrent\" and optional title, artist, description, tags, category), or register a magnet link (application/json {\"magnet\": ...})", UPLOADERS, &[("201", "registered"), ("200", "stored for a torrent registered before"), ("400", "not a torrent, not private on a private tracker, or a bad field"), ("409", "registered already by someone else"), ("413", "larger than --max-upload-size"), ("415", "another content type")])
            },
            "/api/v1/torrents/{hash}": {
                "get": with_params(op("One torrent: metadata, files and live counts", READERS, &[("200", "the torrent"), ("404", "not registered")]), &[HASH]),
                "patch": with_params(op("Change title, artist, description, tags or category (JSON merge patch; null clears)", "operators; the uploader with --user-uploads", &[("200", "the torrent as it is now"), ("400", "a bad or unknown field, named"), ("403", "not yours"), ("404", "not registered")]), &[HASH]),
                "delete": with_params(op("Remove a torrent, its peers and its stored file", OPERATORS, &[("200", "removed"), ("404", "not registered")]), &[HASH])
            },
            "/api/v1/torrents/{hash}/download": {
                "get": with_params(op("The stored .torrent with the caller's announce URL (info dictionary untouched)", READERS, &[("200", "application/x-bittorrent"), ("404", "not registered or no stored file")]), &[HASH])
            },
            "/api/v1/torrents/{hash}/history": {
                "get": with_params(op("Peers over time: fine (15-minute points, 24 h: [unix, seeders, leechers]) and coarse (6-hour points, 24 days: [unix, max seeders, max leechers, completed])", READERS, &[("200", "the points, oldest first"), ("404", "not registered")]), &[HASH])
            },
            "/api/v1/history": { "get": op("The whole tracker's peers over time, as for one torrent", READERS, &[("200", "the points")]) },
            "/api/v1/events": { "get": op("Live events (text/event-stream): added, updated, removed, counts (at most one a torrent a second), totals, heartbeats; Last-Event-ID resumes. EventSource cannot send headers: a user may pass ?token=", READERS, &[("200", "the stream"), ("503", "--max-event-clients reached")]) },
            "/api/v1/stats": { "get": op("Tracker totals", READERS, &[("200", "torrents, peers, users")]) },
            "/api/v1/me": { "get": op("The caller: passkey, announce URL, totals", "users (API token)", &[("200", "the user"), ("401", "no API token")]) },
            "/api/v1/me/token": { "post": op("A new API token for the caller (the old one stops working)", "users (API token)", &[("200", "the user with api_token")]) },
            "/api/v1/me/passkey": { "post": op("A new passkey for the caller (the old one is refused from now on)", "users (API token)", &[("200", "the user with the new passkey")]) },
            "/api/v1/users": {
                "get": op("Every user with their totals", OPERATORS, &[("200", "users")]),
                "post": op("Create a user ({\"name\": ...}); answers with passkey and api_token", OPERATORS, &[("201", "the user"), ("400", "a bad name"), ("409", "the name is taken")])
            },
            "/api/v1/users/{name}": {
                "get": user_ops("One user"),
                "delete": user_ops("Remove a user (their passkey is refused from now on)")
            },
            "/api/v1/users/{name}/rotate": { "post": user_ops("A new passkey for the user") },
            "/api/v1/users/{name}/disable": { "post": user_ops("Disable the user (passkey and token refused)") },
            "/api/v1/users/{name}/enable": { "post": user_ops("Enable the user again") },
            "/api/v1/users/{name}/token": { "post": user_ops("A new API token for the user") },
            "/api/v1/users/{name}/role": { "post": user_ops("Set the user's role ({\"role\": \"member\" | \"uploader\" | \"moderator\" | \"admin\"})") },
            "/api/v1/openapi.json": { "get": op("This document", "anyone", &[("200", "OpenAPI 3")]) },
            "/api/v1/users/{name}/invite": { "post": user_ops("A one-time invite link for the user to choose a password (valid 7 days)") },
            "/api/v1/invites/{secret}": {
                "get": with_params(op("Whose invite this is, while it works", "anyone with the link", &[("200", "name and expiry"), ("404", "unknown, used or expired")]), &[("secret", "path", "the invite's secret")]),
                "post": with_params(op("Choose a password ({\"password\": 10 to 1024 characters}); signs in (Set-Cookie) and answers the CSRF token", "anyone with the link", &[("201", "signed in"), ("400", "a bad password"), ("404", "unknown, used or expired")]), &[("secret", "path", "the invite's secret")])
            },
            "/api/v1/session": {
                "get": op("The signed-in user and the session's CSRF token", "a signed-in browser", &[("200", "the user and csrf_token"), ("401", "not signed in")]),
                "post": op("Sign in ({\"name\", \"password\"}): an HttpOnly, SameSite=Strict session cookie; unsafe requests of the session send X-CSRF-Token", "anyone (failures limited per name and per address)", &[("200", "signed in"), ("401", "wrong name or password"), ("429", "too many failures")]),
                "delete": op("Sign out", "a signed-in browser (with X-CSRF-Token)", &[("200", "signed out")])
            },
            "/{passkey}/download/{hash}": {
                "get": with_params(op("The stored .torrent with this passkey's announce URL (no header needed)", "anyone with a valid passkey (on an open tracker anyone)", &[("200", "application/x-bittorrent"), ("403", "invalid or revoked passkey"), ("404", "not registered or no stored file")]), &[("passkey", "path", "the user's passkey"), HASH])
            },
            "/{passkey}/rss": {
                "get": with_params(op("RSS 2.0 feed of the newest torrents; enclosures are passkey download links", "anyone with a valid passkey", &[("200", "application/rss+xml"), ("403", "invalid or revoked passkey")]), &[("passkey", "path", "the user's passkey"), ("q", "query", "search words"), ("tag", "query", "a tag"), ("category", "query", "categories")])
            },
            "/api/torznab": {
                "get": with_params(op("Torznab: t=caps, or t=search|tvsearch|movie|music|book with q, cat, season, ep, limit, offset", "caps: anyone; searches: apikey = passkey or API token (on an open tracker anyone)", &[("200", "application/xml (caps, or an RSS feed with torznab:attr)"), ("400", "<error code=\"201|202\">"), ("401", "<error code=\"100\">")]), &[("t", "query", "function"), ("apikey", "query", "passkey or API token"), ("q", "query", "search words"), ("cat", "query", "Torznab category numbers")])
            }
        }
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::resolve;

    /// A path of the document with its `{…}` parameters filled in.
    fn filled(path: &str) -> String {
        path.replace("{hash}", &"ab".repeat(20))
            .replace("{name}", "alice")
            .replace("{passkey}", &"K".repeat(32))
            .replace("{secret}", &"S".repeat(32))
    }

    #[test]
    fn every_documented_operation_routes() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 20);
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                let method = method.to_ascii_uppercase();
                assert!(
                    resolve(&method, &filled(path)).is_ok(),
                    "{method} {path} is documented but does not route"
                );
            }
        }
    }

    #[test]
    fn every_api_route_is_documented() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        // Each /api path and method the router knows, by trying the methods on each shape.
        let shapes = [
            "/api/v1/torrents",
            "/api/v1/torrents/{hash}",
            "/api/v1/torrents/{hash}/download",
            "/api/v1/stats",
            "/api/v1/torrents/{hash}/history",
            "/api/v1/history",
            "/api/v1/events",
            "/api/v1/me",
            "/api/v1/me/token",
            "/api/v1/me/passkey",
            "/api/v1/users",
            "/api/v1/users/{name}",
            "/api/v1/users/{name}/rotate",
            "/api/v1/users/{name}/disable",
            "/api/v1/users/{name}/enable",
            "/api/v1/users/{name}/token",
            "/api/v1/users/{name}/role",
            "/api/v1/users/{name}/invite",
            "/api/v1/invites/{secret}",
            "/api/v1/session",
            "/api/v1/openapi.json",
            "/{passkey}/download/{hash}",
            "/{passkey}/rss",
            "/api/torznab",
        ];
        for shape in shapes {
            for method in ["GET", "POST", "PATCH", "DELETE", "PUT"] {
                if resolve(method, &filled(shape)).is_ok() {
                    let documented = paths
                        .get(shape)
                        .and_then(|ops| ops.get(method.to_ascii_lowercase()))
                        .is_some();
                    assert!(documented, "{method} {shape} routes but is not documented");
                }
            }
        }
    }
}
