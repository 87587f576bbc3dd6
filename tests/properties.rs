//! Every parser survives any input: property tests over the query parser, bencode and .torrent
//! parsing, the HTTP request reader, the legacy key decoders, the state file loader and the admin
//! JSON bodies. Each property is "returns (Ok or a clear Err), never panics", plus round trips.

use std::net::IpAddr;

use proptest::prelude::*;

use tinytracker::ids::{InfoHash, PeerId};
use tinytracker::protocol::torrent_file;
use tinytracker::swarm::{Swarm, SwarmConfig};
use tinytracker::users::Users;
use tinytracker::{admin, bencode, http, legacy, metainfo, multipart, protocol, state};

fn swarm() -> Swarm {
    Swarm::new(SwarmConfig::default())
}

/// Query-like text: mostly the characters queries are made of, with escapes and odd bytes.
fn query_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("info_hash=".to_owned()),
            Just("peer_id=".to_owned()),
            Just("port=".to_owned()),
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just("%".to_owned()),
            Just("+".to_owned()),
            "%[0-9a-fA-F]{2}",
            "[0-9]{1,25}",
            "[a-z_]{1,8}",
            any::<char>().prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn announce_and_scrape_queries_never_panic(query in query_text()) {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        if let Ok(req) = protocol::parse_announce(&query, ip) {
            prop_assert_eq!(req.addr.ip(), ip);
            prop_assert!(req.addr.port() > 0);
        }
        if let Ok(hashes) = protocol::parse_scrape(&query) {
            prop_assert!(!hashes.is_empty() && hashes.len() <= protocol::MAX_SCRAPE_HASHES);
        }
    }

    #[test]
    fn any_20_bytes_survive_percent_encoding(raw in prop::array::uniform20(any::<u8>()), peer in prop::array::uniform20(any::<u8>())) {
        let escape = |b: &[u8]| b.iter().map(|x| format!("%{x:02X}")).collect::<String>();
        let query = format!("info_hash={}&peer_id={}&port=1", escape(&raw), escape(&peer));
        let req = protocol::parse_announce(&query, "::1".parse().unwrap()).unwrap();
        prop_assert_eq!(req.info_hash, InfoHash(raw));
        prop_assert_eq!(req.peer_id, PeerId(peer));
    }

    #[test]
    fn bencode_and_torrent_parsing_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        match bencode::decode(&bytes) {
            Ok(value) => prop_assert_eq!(value.raw, &bytes[..]),
            Err(e) => prop_assert!(e.offset <= bytes.len(), "{e} past the end of {} bytes", bytes.len()),
        }
        if let Err(e) = metainfo::parse(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn bencode_shaped_input_never_panics(parts in prop::collection::vec(prop_oneof![
        Just(b"d".to_vec()), Just(b"l".to_vec()), Just(b"e".to_vec()), Just(b"i".to_vec()),
        Just(b"4:info".to_vec()), Just(b"6:pieces".to_vec()), Just(b"12:meta version".to_vec()),
        "[0-9]{1,3}:".prop_map(String::into_bytes), "-?[0-9]{1,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ], 0..40)) {
        let bytes = parts.concat();
        if let Ok(value) = bencode::decode(&bytes) {
            prop_assert_eq!(value.raw, &bytes[..], "a whole-input value spans the input");
        }
        // A torrent parsed from this input has its hash over exactly its info dictionary's bytes.
        if let Ok(meta) = metainfo::parse(&bytes) {
            prop_assert!(meta.v1.is_some() || meta.v2.is_some());
        }
    }

    #[test]
    fn a_served_torrent_keeps_its_info_hash(
        name in prop::collection::vec(any::<u8>(), 1..24),
        length in 1u64..1 << 40,
        top in prop::collection::vec(("[a-z -]{1,12}", prop::collection::vec(any::<u8>(), 0..16)), 0..6),
        announce in "[ -~]{0,80}",
        title in proptest::option::of(".{0,40}"),
    ) {
        // A torrent with random top-level keys, in any order, some of them the ones a download replaces.
        let mut info = b"d6:lengthi".to_vec();
        info.extend_from_slice(format!("{length}e4:name{}:", name.len()).as_bytes());
        info.extend_from_slice(&name);
        info.extend_from_slice(b"12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe");
        let mut file = b"d".to_vec();
        for (key, value) in &top {
            file.extend_from_slice(format!("{}:{key}{}:", key.len(), value.len()).as_bytes());
            file.extend_from_slice(value);
        }
        file.extend_from_slice(b"4:info");
        file.extend_from_slice(&info);
        file.push(b'e');
        let Ok(stored) = metainfo::parse(&file) else {
            // Only a repeated key ahead of `info` can make this no torrent.
            return Ok(());
        };
        let served = torrent_file::personalize(&file, &torrent_file::Personal {
            announce: &announce,
            title: title.as_deref(),
            ..torrent_file::Personal::default()
        }).expect("a torrent can always be served");
        let again = metainfo::parse(&served).expect("a served file is a torrent");
        prop_assert_eq!(again.v1, stored.v1);
        prop_assert!(served.windows(info.len()).any(|w| w == &info[..]));
    }

    #[test]
    fn forms_round_trip_and_any_body_is_read_without_panic(
        fields in prop::collection::vec(("[a-z]{1,8}", prop::collection::vec(any::<u8>(), 0..80)), 1..6),
        noise in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let boundary = "b0undary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in &fields {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        // Values that happen to contain the delimiter cannot round-trip; browsers pick a boundary
        // that no value contains.
        let delimiter = format!("\r\n--{boundary}");
        if !fields.iter().any(|(_, v)| v.windows(delimiter.len()).any(|w| w == delimiter.as_bytes())) {
            let parts = multipart::parse(&body, boundary).expect("a well-formed form");
            prop_assert_eq!(parts.len(), fields.len());
            for (part, (name, value)) in parts.iter().zip(&fields) {
                prop_assert_eq!(&part.name, name);
                prop_assert_eq!(part.body, &value[..]);
            }
        }
        let _ = multipart::parse(&noise, boundary);
    }

    #[test]
    fn http_requests_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        match http::parse(&bytes, 1024) {
            http::Parse::Complete(_, used) => prop_assert!(used <= bytes.len()),
            http::Parse::Incomplete { .. } | http::Parse::Error(..) => {}
        }
    }

    #[test]
    fn http_shaped_requests_never_panic(
        method in "[A-Z]{1,7}", target in "[ -~]{0,80}", headers in prop::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,40}"), 0..10), body in "[ -~]{0,40}"
    ) {
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        raw.push_str(&body);
        match http::parse(raw.as_bytes(), 1024) {
            http::Parse::Complete(request, used) => {
                prop_assert!(used <= raw.len());
                prop_assert_eq!(request.method, method);
            }
            http::Parse::Error(status, message) => {
                prop_assert!((400..500).contains(&status), "{status}");
                prop_assert!(!message.is_empty());
            }
            http::Parse::Incomplete { .. } => {}
        }
    }

    #[test]
    fn legacy_decoders_never_panic_and_round_trip(text in "[ -~\u{80}-\u{10FFFF}%]{0,70}", raw in prop::array::uniform20(any::<u8>())) {
        for candidate in legacy::werkzeug_candidates(&text) {
            prop_assert_eq!(legacy::werkzeug_key(&candidate), text.clone());
        }
        for candidate in legacy::cform_candidates(&text) {
            prop_assert_eq!(legacy::custom_urlencode(&candidate), text.clone());
        }
        prop_assert!(legacy::werkzeug_candidates(&legacy::werkzeug_key(&raw)).contains(&raw));
        prop_assert!(legacy::cform_candidates(&legacy::custom_urlencode(&raw)).contains(&raw));
    }

    #[test]
    fn valid_then_mutated_state_files_load_or_are_refused_clearly(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        // A real state file (the example, which a test keeps valid), then a few bytes changed,
        // inserted or removed: most stay near-valid, so the loader itself is reached.
        let mut bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tracker_state.json.example")).unwrap();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tracker_state.json");
        std::fs::write(&path, &bytes).unwrap();
        match state::load(&path) {
            Ok(Some(loaded)) => {
                let peers: usize = loaded.torrents.iter().map(|t| t.peers.len()).sum();
                prop_assert_eq!(peers, loaded.peers, "the peer count is what was loaded");
            }
            Ok(None) => prop_assert!(false, "the file exists"),
            Err(e) => {
                // Every refusal names the file, so the operator knows what to fix.
                let message = e.to_string();
                prop_assert!(message.contains("tracker_state.json"), "{message}");
            }
        }
    }

    #[test]
    fn state_shaped_files_never_panic_the_loader(
        version in prop::option::of(0u32..5), key in "[ -~\u{80}-\u{FFFF}]{0,45}",
        peer_id in "[ -~\u{80}-\u{FFFF}]{0,30}", ip in "[0-9a-f.:]{0,20}", port in any::<i64>(), left in any::<f64>(), last_seen in any::<f64>()
    ) {
        let mut file = serde_json::json!({"torrents": {key.clone(): {"info": {"name": key}, "peers_info": [{
            "peer_id": peer_id, "ip": ip, "port": port, "last_seen": if last_seen.is_finite() { last_seen } else { 0.0 },
            "uploaded": 1, "downloaded": 2, "left": if left.is_finite() { left } else { 0.0 }, "is_seeder": false}]}}});
        if let Some(v) = version {
            file["version"] = v.into();
        }
        if let Ok(parsed) = serde_json::from_value::<state::StateFile>(file) {
            match state::from_file(parsed) {
                Ok(loaded) => prop_assert!(
                    loaded.torrents.len() == 1 || (loaded.torrents.is_empty() && !loaded.skipped.is_empty()),
                    "the one torrent is loaded or named as skipped"),
                Err(why) => prop_assert!(!why.is_empty()),
            }
        }
    }

    #[test]
    fn admin_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), text in "[ -~]{0,120}") {
        let swarm = swarm();
        let users = Users::default();
        for body in [bytes.as_slice(), text.as_bytes()] {
            let _ = admin::add_torrent_info(&swarm, body, 1_700_000_000);
            let base = admin::AnnounceBase { url: "http://t".into(), guessed: false };
            let _ = admin::create_user(&users, body, &base, 1_700_000_000);
        }
    }

    #[test]
    fn admin_json_bodies_of_any_shape_never_panic(value in any::<Option<i64>>(), name in "[ -~]{0,50}", hash in "[ -~]{0,60}") {
        let swarm = swarm();
        let body = serde_json::json!({"info_hash": hash, "name": name, "size": value, "piece_length": value, "creation_date": value});
        if let Ok(answer) = admin::add_torrent_info(&swarm, body.to_string().as_bytes(), 1_700_000_000) {
            prop_assert_eq!(answer["info_hash"].as_str().unwrap().len(), 40);
        }
    }
}
