//! The way back to the Python tracker: the swarm's torrents in the original's state file layout
//! (`tinytracker state export --legacy`), written as its `json.dump` wrote it.

use crate::protocol::legacy::werkzeug_key;
use crate::store::swarm::TorrentSnapshot;

/// The way back: a state in the Python original's file layout, as its `load_state` reads it.
/// Keys and `info.info_hash` are the W-form of the hash, peer ids the W-form of their bytes, and
/// `stats` is filled in as it wrote it. Fields it does not know (completions, users, passkeys,
/// registration) are left out: its loader refuses unknown fields.
pub fn export(torrents: &[TorrentSnapshot]) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut out = Map::new();
    for t in torrents {
        let key = werkzeug_key(t.info_hash.as_bytes());
        let peers: Vec<Value> = t
            .peers
            .iter()
            .map(|p| {
                json!({
                    "peer_id": werkzeug_key(&p.peer_id.0),
                    "ip": p.addr.ip().to_string(),
                    "port": p.addr.port(),
                    "last_seen": p.last_seen_unix as f64,
                    "uploaded": p.uploaded,
                    "downloaded": p.downloaded,
                    "left": p.left,
                    "is_seeder": p.is_seeder(),
                })
            })
            .collect();
        let seeders = t.peers.iter().filter(|p| p.is_seeder()).count();
        // The original wrote {} for a torrent without a peer set.
        let stats = if peers.is_empty() {
            json!({})
        } else {
            json!({
                "complete": seeders,
                "incomplete": t.peers.len() - seeders,
                "downloaded": t.peers.iter().map(|p| u128::from(p.downloaded)).sum::<u128>() as f64,
                "uploaded": t.peers.iter().map(|p| u128::from(p.uploaded)).sum::<u128>() as f64,
                "peers": t.peers.len(),
            })
        };
        let entry = json!({
            "info": {
                "info_hash": key,
                "name": t.info.name,
                "size": t.info.size,
                "piece_length": t.info.piece_length,
                "creation_date": t.info.creation_date,
                "comment": t.info.comment,
                "created_by": t.info.created_by,
            },
            "peers_info": peers,
            "stats": stats,
        });
        out.insert(key, entry);
    }
    json!({ "torrents": out })
}

/// `json.dump(state, indent=2)` as the original wrote it: two-space indent, `ensure_ascii` (every
/// character outside space..`~` as `\uXXXX`, surrogate pairs beyond the BMP), no trailing newline.
/// Keys come sorted, where Python kept insertion order; JSON readers do not care.
pub fn to_python_json(value: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
    let mut out = String::with_capacity(pretty.len());
    for c in pretty.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::{InfoHash, PeerId};
    use crate::store::info::TorrentInfo;
    use crate::store::swarm::Peer;

    #[test]
    fn an_export_has_the_originals_keys_fields_and_escapes() {
        // H1 of the reference: its W-form key is "\u0000%A%80%FF\u00e9%8A\u007f\u000e+ &=\u20ac%99".
        let h1 = [
            0x00, 0x25, 0x41, 0x80, 0xff, 0xc3, 0xa9, 0x25, 0x38, 0x41, 0x7f, 0x0e, 0x2b, 0x20,
            0x26, 0x3d, 0xe2, 0x82, 0xac, 0x99,
        ];
        let mut peer = Peer::new(
            "10.0.0.1:6881".parse().unwrap(),
            PeerId(*b"-qB5030-h*YWj1hK4p9Q"),
            0,
            1_700_000_000,
        );
        peer.uploaded = 7;
        let t = TorrentSnapshot {
            info_hash: InfoHash(h1),
            info: TorrentInfo {
                name: "データ".into(),
                ..TorrentInfo::default()
            },
            registered: true,
            completions: 3,
            peers: vec![peer],
            history: None,
        };
        let value = export(&[t]);
        let key = werkzeug_key(&h1);
        assert_eq!(value["torrents"][&key]["info"]["info_hash"], key.as_str());
        assert_eq!(value["torrents"][&key]["stats"]["complete"], 1);
        let text = to_python_json(&value);
        assert!(text.is_ascii());
        assert!(
            text.contains(r#""\u0000%A%80%FF\u00e9%8A\u007f\u000e+ &=\u20ac%99""#),
            "{text}"
        );
        assert!(text.contains(r#""name": "\u30c7\u30fc\u30bf""#), "{text}");
        assert!(!text.ends_with('\n'));
        assert!(!text.contains("completions") && !text.contains("registered"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
