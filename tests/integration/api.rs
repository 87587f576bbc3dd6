//! REST API v1 against the real binary: listing, search, paging, one torrent, PATCH, DELETE,
//! magnet registration, form uploads, upload limits, users and their API tokens.

use crate::common::*;
use tinytracker::protocol::metainfo;

fn upload_as(tracker: &Tracker, token: Option<&str>, body: &[u8]) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-bittorrent")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    tracker.request("POST", "/api/v1/torrents", &headers, body)
}

fn patch(tracker: &Tracker, hash: &str, body: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    tracker.request(
        "PATCH",
        &format!("/api/v1/torrents/{hash}"),
        &headers,
        body.as_bytes(),
    )
}

fn get_as(tracker: &Tracker, target: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    tracker.request("GET", target, &[("Authorization", &auth)], b"")
}

fn hash_of(file: &[u8]) -> String {
    metainfo::parse(file).unwrap().v1.unwrap().to_hex()
}

fn titles(list: &serde_json::Value) -> Vec<String> {
    list["torrents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_index_is_listed_searched_sorted_and_paged_with_live_counts() {
    let tracker = Tracker::start(&[]);
    let files = [
        (
            "single-file.torrent",
            r#"{"title": "Été à Paris", "tags": ["Jazz", "live"], "category": "music", "artist": "Ensemble <b>Nuit</b>"}"#,
        ),
        (
            "multi-file.torrent",
            r#"{"title": "ÉTÉ indien", "tags": ["rock"], "category": "music"}"#,
        ),
        (
            "non-ascii-name.torrent",
            r#"{"title": "Winter", "tags": ["jazz"], "category": "movies"}"#,
        ),
    ];
    let mut hashes = Vec::new();
    for (name, metadata) in files {
        let file = fixture(name);
        assert_eq!(upload_as(&tracker, None, &file).status, 201);
        let hash = hash_of(&file);
        let edited = patch(&tracker, &hash, metadata, None);
        assert_eq!(edited.status, 200, "{}", edited.text());
        hashes.push(hash);
    }
    let list = |query: &str| {
        let reply = tracker.get(&format!("/api/v1/torrents?{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        reply.json()
    };
    let all = list("");
    assert_eq!(all["total"], 3);
    let added: Vec<u64> = all["torrents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["added"].as_u64().unwrap())
        .collect();
    assert!(
        added.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {added:?}"
    );
    let mut every = titles(&all);
    every.sort();
    assert_eq!(every, ["Winter", "ÉTÉ indien", "Été à Paris"]);
    // Case-insensitive beyond ASCII, all words must match, tags and artists count.
    assert_eq!(
        titles(&list("q=%C3%A9t%C3%A9&sort=name")),
        ["Été à Paris", "ÉTÉ indien"]
    );
    assert_eq!(
        titles(&list("q=ete&sort=name")),
        ["Été à Paris", "ÉTÉ indien"],
        "accents fold"
    );
    assert_eq!(titles(&list("q=%C3%89T%C3%89+paris")), ["Été à Paris"]);
    assert_eq!(titles(&list("q=nuit")), ["Été à Paris"]);
    assert_eq!(
        titles(&list("tag=JAZZ&sort=name")),
        ["Été à Paris", "Winter"]
    );
    assert_eq!(titles(&list("category=movies")), ["Winter"]);
    let by_size = list("sort=size&order=asc");
    let sizes: Vec<u64> = by_size["torrents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["size"].as_u64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    let first = list("sort=name&per_page=2&page=1");
    let second = list("sort=name&per_page=2&page=2");
    assert_eq!(first["total"], 3);
    assert_eq!(titles(&first).len() + titles(&second).len(), 3);
    assert!(!titles(&second).contains(&titles(&first)[0]));

    // A seeder announces: the counts in the list follow.
    let hash_bytes = tinytracker::ids::InfoHash::from_hex(&hashes[2]).unwrap();
    tracker.announce(&format!(
        "info_hash={}&peer_id={}&port=6881&left=0&compact=1",
        escape(hash_bytes.as_bytes()),
        escape(&id(1))
    ));
    let top = list("sort=seeders&per_page=1");
    assert_eq!(top["torrents"][0]["info_hash"], hashes[2].as_str());
    assert_eq!(top["torrents"][0]["seeders"], 1);

    // One torrent: files, description, magnet with the announce URL, its download link.
    let one = tracker
        .get(&format!("/api/v1/torrents/{}", hashes[1]))
        .json();
    assert!(one["files"].as_array().unwrap().len() > 1, "{one}");
    assert!(one["files"][0]["path"].is_string() && one["files"][0]["size"].is_u64());
    let magnet = one["magnet"].as_str().unwrap();
    assert!(
        magnet.starts_with(&format!("magnet:?xt=urn:btih:{}", hashes[1])),
        "{magnet}"
    );
    assert!(magnet.contains("&tr=http"), "{magnet}");
    let download = one["download_url"].as_str().unwrap();
    let path = download.split_once(&tracker.addr.to_string()).unwrap().1;
    assert_eq!(tracker.get(path).status, 200);
    let html = tracker
        .get(&format!("/api/v1/torrents/{}", hashes[0]))
        .json();
    assert_eq!(
        html["artist"], "Ensemble <b>Nuit</b>",
        "HTML is data, returned as sent"
    );

    let bad = tracker.get("/api/v1/torrents?sort=popularity");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().starts_with("sort:"));
    let unknown = tracker.get(&format!("/api/v1/torrents/{}", "00".repeat(20)));
    assert_eq!(unknown.status, 404);
}

#[test]
fn a_patch_checks_each_field_and_a_refused_one_changes_nothing() {
    let tracker = Tracker::start(&[]);
    let file = fixture("single-file.torrent");
    upload_as(&tracker, None, &file);
    let hash = hash_of(&file);
    assert_eq!(
        patch(&tracker, &hash, r#"{"title": "Kept", "tags": ["a"]}"#, None).status,
        200
    );
    for (body, field) in [
        (r#"{"title": "New", "name": "x"}"#, "name: unknown field"),
        (
            r#"{"title": "New", "tags": ["<img src=x onerror=alert(1)>"]}"#,
            "tags:",
        ),
        (r#"{"title": "New\u0007"}"#, "title: control characters"),
        (r#"{"title": "New", "category": "warez"}"#, "category:"),
        (r#"{"title": 7}"#, "title: must be a string"),
        ("not json", "body is not valid JSON"),
    ] {
        let reply = patch(&tracker, &hash, body, None);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with(field), "{body}: {error}");
    }
    let now = tracker.get(&format!("/api/v1/torrents/{hash}")).json();
    assert_eq!(now["title"], "Kept");
    assert_eq!(now["tags"], serde_json::json!(["a"]));
    // null clears; the title falls back to the torrent's own name.
    let cleared = patch(&tracker, &hash, r#"{"title": null, "tags": null}"#, None).json();
    assert_eq!(cleared["title"], now["name"]);
    assert_eq!(cleared["tags"], serde_json::json!([]));
    let missing = patch(&tracker, &"00".repeat(20), r#"{"title": "x"}"#, None);
    assert_eq!(missing.status, 404);

    // The served file carries the metadata outside info, and the same info hash.
    patch(
        &tracker,
        &hash,
        r#"{"title": "Served", "artist": "Me", "tags": ["t1"]}"#,
        None,
    );
    let served = tracker.get(&format!("/api/v1/torrents/{hash}/download"));
    let value: Bencode = serde_bencode::from_bytes(&served.body).unwrap();
    let extra = field(&value, "x-tinytracker");
    assert_eq!(bytes(field(extra, "title")), b"Served");
    assert_eq!(bytes(field(extra, "artist")), b"Me");
    assert_eq!(hash_of(&served.body), hash);

    // DELETE through the API: gone from the index and its file with it.
    let removed = tracker.request("DELETE", &format!("/api/v1/torrents/{hash}"), &[], b"");
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(tracker.get("/api/v1/torrents").json()["total"], 0);
    assert!(!tracker
        .dir
        .join(format!("tracker_state.torrents/{hash}.torrent"))
        .exists());
}

#[test]
fn forms_and_magnet_links_register_torrents() {
    let tracker = Tracker::start(&[]);
    let file = fixture("name-utf8.torrent");
    let (content_type, body) = form(
        &[
            ("title", "From a form"),
            ("tags", "one, Two"),
            ("category", "books"),
        ],
        &file,
    );
    let reply = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let hash = hash_of(&file);
    let shown = tracker.get(&format!("/api/v1/torrents/{hash}")).json();
    assert_eq!(shown["title"], "From a form");
    assert_eq!(shown["tags"], serde_json::json!(["one", "two"]));
    assert_eq!(shown["category"], "books");
    assert_eq!(shown["stored"], true);

    let (content_type, no_file) = form(&[("title", "x")], b"");
    let no_file = String::from_utf8(no_file)
        .unwrap()
        .replace("name=\"torrent\"", "name=\"other\"");
    let reply = tracker.request(
        "POST",
        "/api/v1/torrents",
        &[("Content-Type", &content_type)],
        no_file.as_bytes(),
    );
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("torrent"), "{}", reply.text());

    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=Magnet+%C3%A9t%C3%A9",
        "cd".repeat(20)
    );
    let reply = tracker.post_json(
        "/api/v1/torrents",
        &serde_json::json!({ "magnet": magnet, "tags": ["m"] }).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let shown = tracker
        .get(&format!("/api/v1/torrents/{}", "cd".repeat(20)))
        .json();
    assert_eq!(shown["name"], "Magnet été");
    assert_eq!(shown["stored"], false);
    assert!(shown["download_url"].is_null());
    let again = tracker.post_json(
        "/api/v1/torrents",
        &serde_json::json!({ "magnet": magnet }).to_string(),
    );
    assert_eq!(again.status, 409);
    for body in [
        r#"{"magnet": "http://x"}"#,
        r#"{"magnet": 5}"#,
        r#"{"link": "magnet:?"}"#,
    ] {
        let reply = tracker.post_json("/api/v1/torrents", body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
    }
    assert_eq!(tracker.get("/api/v1/torrents").json()["total"], 2);
}

/// Sends only a request head declaring a body of `length`, and reads the answer.
fn head_only(tracker: &Tracker, headers: &[(&str, &str)], length: usize) -> Reply {
    let mut request = format!(
        "POST /api/v1/torrents HTTP/1.1\r\nHost: {}\r\nContent-Length: {length}\r\n",
        tracker.addr
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    raw(tracker.addr, request.as_bytes())
}

#[test]
fn large_uploads_are_for_uploaders_and_stop_at_the_size_limit() {
    let tracker = Tracker::start(&[
        "--admin-token",
        "s3cret",
        "--local-admin",
        "10.255.255.0/24",
        "--max-upload-size",
        "300KiB",
    ]);
    let big = make_torrent("big.bin", 200 * 1024, false);
    assert!(big.len() > 64 * 1024);
    // A stranger's declared 200 KB is refused from the head alone.
    let stranger = head_only(
        &tracker,
        &[("Content-Type", "application/x-bittorrent")],
        big.len(),
    );
    assert_eq!(stranger.status, 413, "{}", stranger.text());
    let admin = [
        ("Content-Type", "application/x-bittorrent"),
        ("Authorization", "Bearer s3cret"),
    ];
    let reply = tracker.request("POST", "/api/v1/torrents", &admin, &big);
    assert_eq!(reply.status, 201, "{}", reply.text());
    // Over --max-upload-size, even for the operator.
    let too_big = make_torrent("bigger.bin", 400 * 1024, false);
    let refused = head_only(&tracker, &admin, too_big.len());
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(
        refused.text().contains(&(300 * 1024).to_string()),
        "{}",
        refused.text()
    );
    assert_eq!(
        get_as(&tracker, "/api/v1/torrents", "s3cret").json()["total"],
        1
    );
}

#[test]
fn users_read_upload_and_edit_their_own_with_api_tokens_on_a_private_tracker() {
    let tracker = Tracker::start(&["--private", "--user-uploads"]);
    let alice = tracker.post_json("/api/v1/users", r#"{"name": "alice"}"#);
    assert_eq!(alice.status, 201, "{}", alice.text());
    let alice = alice.json();
    let token = alice["api_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tt_"), "{token}");
    let passkey = alice["passkey"].as_str().unwrap().to_owned();
    let bob = tracker.post_json("/users", r#"{"name": "bob"}"#).json();
    let bob_token = bob["api_token"].as_str().unwrap().to_owned();

    // Nothing of the index without credentials.
    let anonymous = tracker.request(
        "GET",
        "/api/v1/torrents",
        &[("Host", "tracker.example")],
        b"",
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(anonymous
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Bearer"));

    let me = get_as(&tracker, "/api/v1/me", &token).json();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["passkey"], passkey.as_str());
    assert!(me["announce_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{passkey}/announce")));
    assert!(
        me.get("api_token").is_none(),
        "a token is shown only when issued"
    );

    let file = make_torrent("alices.bin", 4000, true);
    let hash = hash_of(&file);
    let reply = upload_as(&tracker, Some(&token), &file);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let shown = get_as(&tracker, &format!("/api/v1/torrents/{hash}"), &token).json();
    assert_eq!(shown["uploader"], "alice");
    assert!(shown["download_url"].as_str().unwrap().contains(&passkey));
    assert!(shown["magnet"].as_str().unwrap().contains(&passkey));

    // Bob may read it, not edit it; alice may.
    let refused = patch(
        &tracker,
        &hash,
        r#"{"title": "bob's now"}"#,
        Some(&bob_token),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(
        patch(&tracker, &hash, r#"{"title": "Mine"}"#, Some(&token)).status,
        200
    );
    let taken = upload_as(&tracker, Some(&bob_token), &file);
    assert_eq!(taken.status, 409, "{}", taken.text());

    // The API download with bob's token carries bob's passkey.
    let served = get_as(
        &tracker,
        &format!("/api/v1/torrents/{hash}/download"),
        &bob_token,
    );
    assert_eq!(served.status, 200);
    let bob_passkey = bob["passkey"].as_str().unwrap();
    let value: Bencode = serde_bencode::from_bytes(&served.body).unwrap();
    assert!(String::from_utf8_lossy(bytes(field(&value, "announce"))).contains(bob_passkey));

    // A user's token opens nothing of the operators'.
    let admin_only = get_as(&tracker, "/users", &token);
    assert_eq!(admin_only.status, 403, "{}", admin_only.text());
    let delete = tracker.request(
        "DELETE",
        &format!("/api/v1/torrents/{hash}"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(delete.status, 403);

    // A new token: the old one is refused with a clear error.
    let rotated = tracker.request(
        "POST",
        "/api/v1/me/token",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_token = rotated.json()["api_token"].as_str().unwrap().to_owned();
    let old = get_as(&tracker, "/api/v1/me", &token);
    assert_eq!(old.status, 401);
    assert!(old.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid API token"));
    assert_eq!(get_as(&tracker, "/api/v1/me", &new_token).status, 200);

    // A disabled user's token stops working; the operator's view of users shows it.
    tracker.post_json("/api/v1/users/alice/disable", "");
    assert_eq!(get_as(&tracker, "/api/v1/me", &new_token).status, 401);
    let listed = tracker.get("/api/v1/users/alice").json();
    assert_eq!(listed["disabled"], true);
    assert_eq!(listed["has_api_token"], true);

    // Tokens survive a restart (stored hashed, never in clear).
    let saved = tracker.get("/save_state");
    assert_eq!(saved.status, 200);
    let state = std::fs::read_to_string(tracker.state_path()).unwrap();
    assert!(!state.contains(&bob_token) && state.contains("api_token_sha256"));
}

#[test]
fn without_user_uploads_only_operators_upload_and_stats_count() {
    let tracker = Tracker::start(&["--private"]);
    let alice = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let token = alice["api_token"].as_str().unwrap();
    let file = make_torrent("x.bin", 400, true);
    let reply = upload_as(&tracker, Some(token), &file);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("--user-uploads"));
    assert_eq!(upload_as(&tracker, None, &file).status, 201);
    let stats = get_as(&tracker, "/api/v1/stats", token).json();
    assert_eq!(stats["registered"], 1);
    assert_eq!(stats["stored"], 1);
    assert_eq!(stats["users"], 1);
}

#[test]
fn the_openapi_document_is_served_and_names_the_index() {
    let tracker = Tracker::start(&["--private"]);
    let reply = tracker.get("/api/v1/openapi.json");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/torrents",
        "/api/v1/torrents/{hash}",
        "/{passkey}/rss",
        "/api/torznab",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc["paths"]["/api/v1/torrents/{hash}"]
        .get("patch")
        .is_some());
}

#[test]
fn peers_over_time_are_sampled_served_and_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &[]);
    let file = make_torrent("plotted.bin", 400, false);
    let hash = hash_of(&file);
    assert_eq!(upload_as(&tracker, None, &file).status, 201);
    let raw = tinytracker::ids::InfoHash::from_hex(&hash).unwrap();
    for (n, left) in [(1, 0), (2, 100), (3, 100)] {
        tracker.announce(&format!(
            "info_hash={}&peer_id={}&port={}&left={left}",
            escape(raw.as_bytes()),
            escape(&id(n)),
            7000 + n
        ));
    }
    let before = tracker
        .get(&format!("/api/v1/torrents/{hash}/history"))
        .json();
    assert_eq!(before["fine"]["step"], 900);
    assert_eq!(
        before["fine"]["points"].as_array().unwrap().len(),
        0,
        "no sample since the torrent came: {before}"
    );
    assert!(tracker.interrupt().success());

    // A start samples the state it loaded.
    let mut tracker = Tracker::start_in(dir.path(), &[]);
    let history = tracker
        .get(&format!("/api/v1/torrents/{hash}/history"))
        .json();
    let fine = history["fine"]["points"].as_array().unwrap();
    assert_eq!(fine.len(), 1, "{history}");
    assert_eq!(fine[0][1], 1, "seeders: {history}");
    assert_eq!(fine[0][2], 2, "leechers: {history}");
    let slot = fine[0][0].as_u64().unwrap();
    assert_eq!(slot % 900, 0);
    let coarse = history["coarse"]["points"].as_array().unwrap();
    assert_eq!(coarse[0][1], 1, "{history}");
    let totals = tracker.get("/api/v1/history").json();
    assert_eq!(totals["fine"]["points"][0][2], 2, "{totals}");
    assert!(tracker.interrupt().success());
    let state = std::fs::read_to_string(dir.path().join("tracker_state.json")).unwrap();
    assert!(state.contains("\"history\""), "saved in the state file");

    // Kept: the point is still there after another restart.
    let tracker = Tracker::start_in(dir.path(), &[]);
    let again = tracker
        .get(&format!("/api/v1/torrents/{hash}/history"))
        .json();
    assert_eq!(again["fine"]["points"][0], fine[0], "{again}");
    let none = tracker.get(&format!("/api/v1/torrents/{}/history", "00".repeat(20)));
    assert_eq!(none.status, 404);
}

/// A request with a user's API token.
fn as_user(tracker: &Tracker, method: &str, target: &str, token: &str, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    tracker.request(
        method,
        target,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn roles_open_what_they_name_and_the_api_enforces_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start_in(dir.path(), &["--private"]);
    let mut tokens = std::collections::HashMap::new();
    for name in ["mia", "uma", "mod", "ada"] {
        let user = tracker
            .post_json("/users", &format!(r#"{{"name": "{name}"}}"#))
            .json();
        assert_eq!(user["role"], "member");
        tokens.insert(name, user["api_token"].as_str().unwrap().to_owned());
    }
    for (name, role) in [("uma", "uploader"), ("mod", "moderator"), ("ada", "admin")] {
        let set = tracker.post_json(
            &format!("/api/v1/users/{name}/role"),
            &format!(r#"{{"role": "{role}"}}"#),
        );
        assert_eq!(set.status, 200, "{}", set.text());
        assert_eq!(set.json()["role"], role);
    }
    let bad = tracker.post_json("/api/v1/users/mia/role", r#"{"role": "king"}"#);
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains("member, uploader, moderator, admin"),
        "{}",
        bad.text()
    );

    // A member cannot upload (no --user-uploads); an uploader can.
    let file = make_torrent("uma.bin", 400, true);
    assert_eq!(upload_as(&tracker, Some(&tokens["mia"]), &file).status, 403);
    assert_eq!(upload_as(&tracker, Some(&tokens["uma"]), &file).status, 201);
    let hash = hash_of(&file);
    // A moderator edits and removes anyone's torrent and disables users; not more.
    let edited = patch(
        &tracker,
        &hash,
        r#"{"title": "moderated"}"#,
        Some(&tokens["mod"]),
    );
    assert_eq!(edited.status, 200, "{}", edited.text());
    let member_edit = patch(
        &tracker,
        &hash,
        r#"{"title": "mine"}"#,
        Some(&tokens["mia"]),
    );
    assert_eq!(member_edit.status, 403);
    let disabled = as_user(
        &tracker,
        "POST",
        "/api/v1/users/mia/disable",
        &tokens["mod"],
        "",
    );
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    let create = as_user(
        &tracker,
        "POST",
        "/api/v1/users",
        &tokens["mod"],
        r#"{"name": "x"}"#,
    );
    assert_eq!(create.status, 403, "{}", create.text());
    let promote = as_user(
        &tracker,
        "POST",
        "/api/v1/users/mod/role",
        &tokens["mod"],
        r#"{"role": "admin"}"#,
    );
    assert_eq!(
        promote.status, 403,
        "a moderator cannot make itself an admin"
    );
    let removed = as_user(
        &tracker,
        "DELETE",
        &format!("/api/v1/torrents/{hash}"),
        &tokens["mod"],
        "",
    );
    assert_eq!(removed.status, 200, "{}", removed.text());
    // An admin's token opens the operators' endpoints.
    let listed = as_user(&tracker, "GET", "/users", &tokens["ada"], "");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["users"].as_array().unwrap().len(), 4);
    // Roles are kept across a restart.
    assert!(tracker.interrupt().success());
    let tracker = Tracker::start_in(dir.path(), &["--private"]);
    assert_eq!(tracker.get("/api/v1/users/mod").json()["role"], "moderator");
}
