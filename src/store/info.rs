//! What the tracker knows about a torrent besides its swarm: one record ([`TorrentInfo`]) and
//! one change to it ([`InfoUpdate`]). The record is the state file's `info` object as it is; the
//! change is the body of `POST /add_torrent_info` and a pending registration's saved fields.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::protocol::ids::{self, InfoHash};

/// A torrent's metadata. In the state file it is the `info` object; loading is lenient, because
/// the Python original stored whatever JSON types `/add_torrent_info` was given: a value of the
/// wrong type becomes the field's empty value, and fields it does not know (the original's copy
/// of the key, `info_hash`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TorrentInfo {
    #[serde(default, deserialize_with = "lenient_text")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient_count")]
    pub size: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    pub piece_length: u64,
    /// Unix seconds: the torrent's own creation date, or when the tracker first saw it.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub creation_date: i64,
    #[serde(default, deserialize_with = "lenient_text")]
    pub comment: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub created_by: String,
    /// The BEP 52 SHA-256 info hash of a v2 or hybrid torrent. Clients announce it truncated to
    /// 20 bytes; that hash reaches this torrent too (for a pure v2 torrent it is the torrent's own).
    #[serde(
        default,
        rename = "v2_info_hash",
        skip_serializing_if = "Option::is_none",
        with = "v2_hex"
    )]
    pub v2: Option<[u8; 32]>,
    /// Its `.torrent` file is kept in the stored-files directory ([`crate::store::torrent_files`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
    /// The release as people name it (the index's editable metadata; `name` is the torrent's own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Artist, author or creator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artist: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Lowercase, each at most once, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// One of [`CATEGORIES`], or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
    /// The name of the user who uploaded it; empty when an operator registered it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uploader: String,
    /// Unix seconds: when it was registered (0: before the tracker kept this).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The categories a torrent may be filed under, with the Torznab category each maps to.
pub const CATEGORIES: [(&str, u32); 8] = [
    ("movies", 2000),
    ("music", 3000),
    ("software", 4000),
    ("tv", 5000),
    ("books", 7000),
    ("games", 1000),
    ("data", 8000),
    ("other", 8000),
];

/// A change to a [`TorrentInfo`]: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece_length: Option<u64>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// 64 hex in JSON. Without a v1 `info_hash` (a pure v2 torrent) the torrent is tracked under
    /// its first 20 bytes.
    #[serde(
        default,
        rename = "v2_info_hash",
        skip_serializing_if = "Option::is_none",
        with = "v2_hex"
    )]
    pub v2: Option<[u8; 32]>,
    /// Set when the `.torrent` file is stored (an upload), or cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<bool>,
    /// The editable metadata: `Some("")` (or an empty list) clears a field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploader: Option<String>,
}

impl TorrentInfo {
    /// Applies `update`: each field it has replaces this one's.
    pub fn apply(&mut self, update: InfoUpdate) {
        let InfoUpdate {
            name,
            size,
            piece_length,
            creation_date,
            comment,
            created_by,
            v2,
            stored,
            title,
            artist,
            description,
            tags,
            category,
            uploader,
        } = update;
        fn set<T>(field: &mut T, new: Option<T>) {
            if let Some(new) = new {
                *field = new;
            }
        }
        set(&mut self.name, name);
        set(&mut self.size, size);
        set(&mut self.piece_length, piece_length);
        set(&mut self.creation_date, creation_date);
        set(&mut self.comment, comment);
        set(&mut self.created_by, created_by);
        self.v2 = v2.or(self.v2);
        set(&mut self.stored, stored);
        set(&mut self.title, title);
        set(&mut self.artist, artist);
        set(&mut self.description, description);
        set(&mut self.tags, tags);
        set(&mut self.category, category);
        set(&mut self.uploader, uploader);
    }

    /// When it was added to the index: its registration, or for torrents registered before that
    /// was kept, its creation date.
    pub fn added_unix(&self) -> u64 {
        if self.added > 0 {
            self.added
        } else {
            self.creation_date.max(0) as u64
        }
    }

    /// The title, or the torrent's own name when it has none.
    pub fn display_title(&self) -> &str {
        if self.title.is_empty() {
            &self.name
        } else {
            &self.title
        }
    }

    /// What a search looks in, folded ([`fold`]), each line between line breaks: the title shown
    /// (first, so it is also the key names are sorted by: [`sort_name`]), the name, the artist,
    /// each tag after `#` ([`tag_line`]) and the category after `@` ([`category_line`]).
    pub fn search_text(&self) -> String {
        let mut text = String::with_capacity(
            self.name.len() + self.title.len() + self.artist.len() + 16 * self.tags.len() + 24,
        );
        text.push('\n');
        text.push_str(&fold(self.display_title()));
        text.push('\n');
        for part in [&self.name, &self.title, &self.artist] {
            if !part.is_empty() {
                text.push_str(&fold(part));
                text.push('\n');
            }
        }
        for tag in &self.tags {
            text.push_str(&tag_line(tag)[1..]);
        }
        if !self.category.is_empty() {
            text.push_str(&category_line(&self.category)[1..]);
        }
        text
    }
}

/// How a tag stands in a search text, line breaks around it: a search for it finds exactly it.
pub fn tag_line(tag: &str) -> String {
    format!("\n#{}\n", fold(tag))
}

/// How a category stands in a search text.
pub fn category_line(category: &str) -> String {
    format!("\n@{category}\n")
}

/// The folded title a search text starts with: what listings sort names by.
pub fn sort_name(search_text: &str) -> &str {
    search_text
        .strip_prefix('\n')
        .unwrap_or(search_text)
        .split('\n')
        .next()
        .unwrap_or_default()
}

impl TorrentInfo {}

/// Text as searches and name sorting compare it, the way a database's case- and accent-insensitive
/// collation does: lowercased (Unicode-aware) and without accents (canonical decomposition with
/// the combining marks left out), so `ÉTÉ`, `été` and `ete` are one word.
pub fn fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    if text.is_ascii() {
        // Nothing to decompose: the common case, without the per-character work.
        return text.to_ascii_lowercase();
    }
    use unicode_normalization::UnicodeNormalization;
    text.chars()
        .flat_map(char::to_lowercase)
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect()
}

/// The 20 bytes a v2 client announces for a SHA-256 info hash (BEP 52).
pub fn truncated(v2: &[u8; 32]) -> InfoHash {
    let mut raw = [0u8; 20];
    raw.copy_from_slice(&v2[..20]);
    InfoHash(raw)
}

/// A SHA-256 info hash as 64 hex characters in JSON.
mod v2_hex {
    use super::*;

    pub fn serialize<S: Serializer>(v2: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v2 {
            Some(v2) => s.serialize_str(&ids::hex(v2)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => ids::from_hex::<32>(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!("v2_info_hash {text:?} is not 64 hex characters"))
            }),
        }
    }
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
                .map_or(0, |f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_changes_only_the_fields_it_has() {
        let mut info = TorrentInfo {
            name: "old".into(),
            size: 5,
            comment: "kept".into(),
            v2: Some([7; 32]),
            ..TorrentInfo::default()
        };
        info.apply(InfoUpdate {
            name: Some("new".into()),
            size: Some(9),
            ..InfoUpdate::default()
        });
        assert_eq!(
            info,
            TorrentInfo {
                name: "new".into(),
                size: 9,
                comment: "kept".into(),
                v2: Some([7; 32]),
                ..TorrentInfo::default()
            }
        );
    }

    #[test]
    fn the_v2_hash_is_64_hex_both_ways() {
        let info = TorrentInfo {
            v2: Some([0xab; 32]),
            ..TorrentInfo::default()
        };
        let text = serde_json::to_string(&info).unwrap();
        assert!(text.contains(&format!("\"v2_info_hash\":\"{}\"", "ab".repeat(32))));
        assert_eq!(serde_json::from_str::<TorrentInfo>(&text).unwrap(), info);
        let bad = serde_json::from_str::<InfoUpdate>(r#"{"v2_info_hash": "abc"}"#).unwrap_err();
        assert!(bad.to_string().contains("not 64 hex"), "{bad}");
        assert!(!serde_json::to_string(&TorrentInfo::default())
            .unwrap()
            .contains("v2"));
    }
}
