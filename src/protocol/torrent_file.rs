//! A stored `.torrent` as it is handed to one user: the top-level `announce` and `announce-list`
//! replaced by that user's announce URL, the release's metadata added beside `info` (never in it),
//! and the `info` dictionary copied byte for byte, so the served file has the registered info hash.
//! Pure: bytes in, bytes out.

use crate::protocol::bencode::{self, Kind, Writer};
use crate::protocol::metainfo::MetainfoError;

/// What a served file carries besides the stored one's `info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Personal<'a> {
    /// The user's announce URL (with their passkey), or the plain one in open mode.
    pub announce: &'a str,
    /// `comment`: the torrent's page.
    pub comment: Option<&'a str>,
    /// `created by`.
    pub created_by: Option<&'a str>,
    /// `publisher-url`: the tracker's own page.
    pub publisher_url: Option<&'a str>,
    /// `x-tinytracker`: the release's title, artist and tags.
    pub title: Option<&'a str>,
    pub artist: Option<&'a str>,
    pub tags: &'a [String],
}

/// The keys a served file gets from [`Personal`]; the stored file's own values of these go.
const REPLACED: [&[u8]; 6] = [
    b"announce",
    b"announce-list",
    b"comment",
    b"created by",
    b"publisher-url",
    b"x-tinytracker",
];

/// The file `stored` as handed out with `personal`. Every other top-level entry (`info`,
/// `creation date`, `url-list`, `piece layers`, …) is copied as its exact bytes; keys come out
/// sorted as raw bytes (BEP 3). Fails only if `stored` is no torrent file.
pub fn personalize(stored: &[u8], personal: &Personal) -> Result<Vec<u8>, MetainfoError> {
    let (top, _) = bencode::decode_prefix(stored)?;
    let Kind::Dict(entries) = &top.kind else {
        return Err(MetainfoError::NotADictionary);
    };
    if top.get("info").and_then(|i| i.as_dict()).is_none() {
        return Err(MetainfoError::NoInfo);
    }
    // (key, its encoded value), kept from the file or made here.
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(entries.len() + 6);
    for (key, value) in entries {
        let seen = out.iter().any(|(k, _)| k == key);
        if !REPLACED.contains(key) && !seen {
            out.push((key, value.raw.to_vec()));
        }
    }
    let text = |value: &str| {
        let mut w = Writer::with_capacity(value.len() + 8);
        w.bytes(value.as_bytes());
        w.finish()
    };
    out.push((b"announce", text(personal.announce)));
    let mut list = Writer::with_capacity(personal.announce.len() + 16);
    list.raw(b"ll")
        .bytes(personal.announce.as_bytes())
        .raw(b"ee");
    out.push((b"announce-list", list.finish()));
    for (key, value) in [
        (&b"comment"[..], personal.comment),
        (b"created by", personal.created_by),
        (b"publisher-url", personal.publisher_url),
    ] {
        if let Some(value) = value {
            out.push((key, text(value)));
        }
    }
    if let Some(release) = release_dictionary(personal) {
        out.push((b"x-tinytracker", release));
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = Writer::with_capacity(stored.len() + 512);
    w.raw(b"d");
    for (key, value) in &out {
        w.bytes(key).raw(value);
    }
    w.raw(b"e");
    Ok(w.finish())
}

/// `x-tinytracker`: `{artist, tags, title}`, or nothing when all are empty.
fn release_dictionary(personal: &Personal) -> Option<Vec<u8>> {
    if personal.title.is_none() && personal.artist.is_none() && personal.tags.is_empty() {
        return None;
    }
    let mut w = Writer::with_capacity(128);
    w.raw(b"d");
    if let Some(artist) = personal.artist {
        w.bytes(b"artist").bytes(artist.as_bytes());
    }
    if !personal.tags.is_empty() {
        w.bytes(b"tags").raw(b"l");
        for tag in personal.tags {
            w.bytes(tag.as_bytes());
        }
        w.raw(b"e");
    }
    if let Some(title) = personal.title {
        w.bytes(b"title").bytes(title.as_bytes());
    }
    w.raw(b"e");
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::metainfo;

    /// The stored file's info dictionary: a name that is not UTF-8.
    const INFO: &[u8] = b"d6:lengthi5e4:name3:a\xffb12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAA7:privatei1ee";

    /// A file with its own announce, comment and an extra top-level key.
    fn stored() -> Vec<u8> {
        let mut out =
            b"d8:announce14:http://old/ann7:comment3:old13:creation datei1700000000e4:info"
                .to_vec();
        out.extend_from_slice(INFO);
        out.extend_from_slice(b"8:url-listl14:http://mirror/ee");
        out
    }

    #[test]
    fn the_info_dictionary_and_other_keys_are_kept_byte_for_byte() {
        let before = metainfo::parse(&stored()).unwrap();
        let tags = vec!["lab".to_owned(), "データ".to_owned()];
        let served = personalize(
            &stored(),
            &Personal {
                announce: "http://t.example/pk/announce",
                comment: Some("http://t.example/web/torrents/ab"),
                created_by: Some("tinytracker"),
                publisher_url: Some("http://t.example/"),
                title: Some("<img src=x onerror=alert(1)>"),
                artist: None,
                tags: &tags,
            },
        )
        .unwrap();
        let after = metainfo::parse(&served).unwrap();
        assert_eq!(after.v1, before.v1, "the info hash is unchanged");
        let value: serde_bencode::value::Value = serde_bencode::from_bytes(&served).unwrap();
        let serde_bencode::value::Value::Dict(top) = value else {
            panic!("not a dict");
        };
        let text = |k: &str| match &top[k.as_bytes()] {
            serde_bencode::value::Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(text("announce"), "http://t.example/pk/announce");
        assert_eq!(text("comment"), "http://t.example/web/torrents/ab");
        assert!(top.contains_key(&b"url-list"[..]));
        assert!(top.contains_key(&b"creation date"[..]));
        // Keys sorted as raw bytes: serde_bencode writes them sorted, so a round trip is equal.
        assert_eq!(
            serde_bencode::to_bytes(&serde_bencode::value::Value::Dict(top.clone())).unwrap(),
            served
        );
        let serde_bencode::value::Value::Dict(release) = &top[&b"x-tinytracker"[..]] else {
            panic!("x-tinytracker is not a dict");
        };
        assert_eq!(
            release[&b"title"[..]],
            serde_bencode::value::Value::Bytes(b"<img src=x onerror=alert(1)>".to_vec())
        );
        // The info bytes themselves, not only their hash.
        let info = [&b"4:info"[..], INFO].concat();
        assert!(served.windows(info.len()).any(|w| w == info));
    }

    #[test]
    fn open_mode_gets_the_plain_announce_url_and_nothing_else() {
        let served = personalize(
            &stored(),
            &Personal {
                announce: "http://t.example/announce",
                ..Personal::default()
            },
        )
        .unwrap();
        let text = String::from_utf8_lossy(&served);
        assert!(text.starts_with("d8:announce25:http://t.example/announce13:announce-listll25:http://t.example/announceee13:creation date"), "{text}");
        assert!(!text.contains("old") && !text.contains("x-tinytracker"));
    }

    #[test]
    fn what_is_not_a_torrent_is_refused() {
        let none = Personal::default();
        assert!(personalize(b"i5e", &none).is_err());
        assert!(personalize(b"d8:announce1:xe", &none).is_err());
        assert!(personalize(b"d4:infoi5ee", &none).is_err());
        assert!(personalize(b"d4:info", &none).is_err());
    }
}
