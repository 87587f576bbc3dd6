//! `.torrent` files (BEP 3, BEP 52) and magnet links: the info hashes and the metadata the tracker
//! records. Pure: bytes in, values out. The v1 hash is the SHA-1 of the `info` dictionary's own bytes.

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::protocol::bencode::{self, DecodeError, Value};
use crate::protocol::ids::{hex, InfoHash};

/// What a torrent file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of the info dictionary; `None` for a pure v2 torrent.
    pub v1: Option<InfoHash>,
    /// SHA-256 of the info dictionary, for torrents with `meta version` 2 (BEP 52).
    pub v2: Option<[u8; 32]>,
    pub name: String,
    /// Total bytes of the files, padding files (BEP 47) left out.
    pub size: u64,
    pub piece_length: u64,
    pub file_count: usize,
    /// The files (padding files left out), each with its path under the torrent's name.
    pub files: Vec<File>,
    pub private: bool,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Unix seconds, as the file gives it.
    pub creation_date: Option<i64>,
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The path inside the torrent, parts joined with `/` (invalid UTF-8 replaced).
    pub path: String,
    pub length: u64,
}

impl Metainfo {
    pub fn v2_hex(&self) -> Option<String> {
        self.v2.as_ref().map(|h| hex(h))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error("not bencoded: {0}")]
    Bencode(#[from] DecodeError),
    #[error("not a torrent: the top level is not a dictionary")]
    NotADictionary,
    #[error("not a torrent: no info dictionary")]
    NoInfo,
    #[error("not a torrent: info has neither pieces (v1) nor meta version 2 (v2)")]
    NoPieces,
    #[error("bad torrent: {0}")]
    Field(&'static str),
}

/// Parses a `.torrent` file's bytes.
/// Bytes after the top-level dictionary (a trailing newline, say) are ignored, as libtorrent does.
pub fn parse(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    let (top, _end) = bencode::decode_prefix(bytes)?;
    if top.as_dict().is_none() {
        return Err(MetainfoError::NotADictionary);
    }
    let info = top.get("info").ok_or(MetainfoError::NoInfo)?;
    if info.as_dict().is_none() {
        return Err(MetainfoError::Field("info is not a dictionary"));
    }
    let is_v1 = info.get("pieces").is_some();
    let is_v2 = info.get("meta version").and_then(Value::as_int) == Some(2);
    if !is_v1 && !is_v2 {
        return Err(MetainfoError::NoPieces);
    }
    let files = if is_v1 {
        v1_files(info)?
    } else {
        v2_files(info)?
    };
    let size = files
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.length));
    let piece_length = info
        .get("piece length")
        .and_then(Value::as_int)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or(MetainfoError::Field(
            "piece length is missing or not a positive integer",
        ))?;
    Ok(Metainfo {
        v1: is_v1.then(|| InfoHash(Sha1::digest(info.raw).into())),
        v2: is_v2.then(|| Sha256::digest(info.raw).into()),
        name: text(info, "name").unwrap_or_default(),
        size,
        piece_length,
        file_count: files.len(),
        files,
        private: info.get("private").and_then(Value::as_int) == Some(1),
        comment: text(&top, "comment"),
        created_by: text(&top, "created by"),
        creation_date: top.get("creation date").and_then(Value::as_int),
    })
}

/// A text field, preferring its `.utf-8` twin; invalid UTF-8 is replaced, never refused.
fn text(dict: &Value, key: &str) -> Option<String> {
    let utf8 = dict.get(&format!("{key}.utf-8")).and_then(Value::as_bytes);
    let plain = dict.get(key).and_then(Value::as_bytes);
    utf8.and_then(|b| std::str::from_utf8(b).ok().map(str::to_owned))
        .or_else(|| plain.map(|b| String::from_utf8_lossy(b).into_owned()))
}

fn length(value: &Value) -> Result<u64, MetainfoError> {
    value
        .get("length")
        .and_then(Value::as_int)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(MetainfoError::Field("a file length is missing or negative"))
}

/// The files of a v1 info dictionary: single-file `length` (the file is the name) or multi-file
/// `files`, padding files (BEP 47) left out.
fn v1_files(info: &Value) -> Result<Vec<File>, MetainfoError> {
    if info.get("length").is_some() {
        return Ok(vec![File {
            path: text(info, "name").unwrap_or_default(),
            length: length(info)?,
        }]);
    }
    let files = info
        .get("files")
        .and_then(Value::as_list)
        .ok_or(MetainfoError::Field("info has neither length nor files"))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let is_padding = file
            .get("attr")
            .and_then(Value::as_bytes)
            .is_some_and(|attr| attr.contains(&b'p'));
        if is_padding {
            continue;
        }
        let length = length(file)?;
        let parts = file
            .get("path.utf-8")
            .or_else(|| file.get("path"))
            .and_then(Value::as_list)
            .unwrap_or_default();
        let path: Vec<String> = parts
            .iter()
            .filter_map(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        out.push(File {
            path: path.join("/"),
            length,
        });
    }
    Ok(out)
}

/// The files of a v2 `file tree`: nested dictionaries whose leaves sit under the key "".
fn v2_files(info: &Value) -> Result<Vec<File>, MetainfoError> {
    fn walk(
        node: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<File>,
    ) -> Result<(), MetainfoError> {
        let entries = node
            .as_dict()
            .ok_or(MetainfoError::Field("file tree entry is not a dictionary"))?;
        for (name, child) in entries {
            if name.is_empty() {
                out.push(File {
                    path: path.join("/"),
                    length: length(child)?,
                });
            } else if path.len() < 256 {
                path.push(String::from_utf8_lossy(name).into_owned());
                walk(child, path, out)?;
                path.pop();
            }
        }
        Ok(())
    }
    let tree = info
        .get("file tree")
        .ok_or(MetainfoError::Field("v2 info has no file tree"))?;
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// What a magnet link names: its v1 info hash and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link")]
    NotMagnet,
    #[error(
        "magnet link has no urn:btih (v1) hash; a v2-only magnet (urn:btmh) cannot be registered"
    )]
    NoBtih,
    #[error("magnet link's btih is neither 40 hex nor 32 base32 characters")]
    BadHash,
}

/// `magnet:?xt=urn:btih:<hex or base32>&dn=<name>`, read with the `url` crate: the query is
/// form-encoded, so `%XX` and `+` (a space, as libtorrent reads it) are decoded. The first
/// `urn:btih:` and the first `dn` count.
pub fn parse_magnet(link: &str) -> Result<Magnet, MagnetError> {
    let url = url::Url::parse(link).map_err(|_| MagnetError::NotMagnet)?;
    if url.scheme() != "magnet" {
        return Err(MagnetError::NotMagnet);
    }
    let mut hash = None;
    let mut name = None;
    for (key, value) in url.query_pairs() {
        match &*key {
            "xt" => {
                if let Some(btih) = value.strip_prefix("urn:btih:") {
                    let parsed = InfoHash::from_hex(btih)
                        .or_else(|_| InfoHash::from_base32(btih))
                        .map_err(|_| MagnetError::BadHash)?;
                    hash.get_or_insert(parsed);
                }
            }
            "dn" if name.is_none() => name = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(Magnet {
        info_hash: hash.ok_or(MagnetError::NoBtih)?,
        name,
    })
}

/// A magnet link (BEP 9, and BEP 52's `urn:btmh:` for a v2 hash): `xt` for each hash, `dn` the
/// name, `xl` the size and `tr` the announce URL. The hashes are hex (nothing to escape); the rest
/// is form-encoded by the `url` crate, as [`parse_magnet`] reads it.
pub fn magnet_link(
    v1: Option<&InfoHash>,
    v2: Option<&[u8; 32]>,
    name: &str,
    size: u64,
    announce: &str,
) -> String {
    let mut hashes = Vec::new();
    if let Some(v1) = v1 {
        hashes.push(format!("xt=urn:btih:{}", v1.to_hex()));
    }
    if let Some(v2) = v2 {
        // Multihash: 0x12 is SHA-256, 0x20 its 32 bytes.
        hashes.push(format!("xt=urn:btmh:1220{}", hex(v2)));
    }
    let link = format!("magnet:?{}", hashes.join("&"));
    // The serializer puts `&` between what is there after "magnet:?" and each pair it adds.
    let mut rest = url::form_urlencoded::Serializer::for_suffix(link, "magnet:?".len());
    if !name.is_empty() {
        rest.append_pair("dn", name);
    }
    rest.append_pair("xl", &size.to_string());
    rest.append_pair("tr", announce);
    rest.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::bencode::Writer;

    fn single_file_info(extra: &[(&str, &str)]) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        w.raw(b"d")
            .bytes(b"length")
            .int(12345)
            .bytes(b"name")
            .bytes(b"a.bin");
        w.bytes(b"piece length")
            .int(16384)
            .bytes(b"pieces")
            .bytes(&[7u8; 20]);
        for (k, v) in extra {
            w.bytes(k.as_bytes()).bytes(v.as_bytes());
        }
        w.raw(b"e");
        w.finish()
    }

    fn torrent(info: &[u8], top: &[(&str, &str)]) -> Vec<u8> {
        let mut out = b"d".to_vec();
        for (k, v) in top {
            out.extend_from_slice(format!("{}:{}{}:{}", k.len(), k, v.len(), v).as_bytes());
        }
        out.extend_from_slice(b"4:info");
        out.extend_from_slice(info);
        out.push(b'e');
        out
    }

    #[test]
    fn single_file_torrent_hashes_its_info_bytes() {
        let info = single_file_info(&[]);
        let meta = parse(&torrent(&info, &[("comment", "hi"), ("created by", "me")])).unwrap();
        assert_eq!(meta.v1, Some(InfoHash(Sha1::digest(&info).into())));
        assert_eq!(meta.v2, None);
        assert_eq!(
            (
                meta.name.as_str(),
                meta.size,
                meta.piece_length,
                meta.file_count
            ),
            ("a.bin", 12345, 16384, 1)
        );
        assert_eq!(
            (meta.comment.as_deref(), meta.created_by.as_deref()),
            (Some("hi"), Some("me"))
        );
        assert_eq!(meta.creation_date, None);
    }

    #[test]
    fn an_extra_info_key_changes_the_hash_as_in_the_file() {
        let plain = parse(&torrent(&single_file_info(&[]), &[])).unwrap();
        let sourced = parse(&torrent(&single_file_info(&[("source", "LAB")]), &[])).unwrap();
        assert_ne!(plain.v1, sourced.v1);
    }

    #[test]
    fn name_utf8_wins_and_bad_utf8_is_replaced() {
        let meta = parse(&torrent(&single_file_info(&[("name.utf-8", "Ünï")]), &[])).unwrap();
        assert_eq!(meta.name, "Ünï");
        let mut info = single_file_info(&[]);
        let at = info.windows(5).position(|w| w == b"a.bin").unwrap();
        info[at] = 0xff;
        assert_eq!(parse(&torrent(&info, &[])).unwrap().name, "\u{fffd}.bin");
    }

    #[test]
    fn multi_file_size_skips_padding() {
        let info = b"d5:filesld6:lengthi10e4:pathl1:aeed4:attr1:p6:lengthi6e4:pathl4:.padeed6:lengthi5e4:pathl1:beee4:name1:d12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let meta = parse(&torrent(info, &[])).unwrap();
        assert_eq!((meta.size, meta.file_count), (15, 2));
    }

    #[test]
    fn pure_v2_has_only_a_sha256() {
        let info = b"d9:file treed1:ad0:d6:lengthi7e11:pieces root32:................................eee12:meta versioni2e4:name1:a12:piece lengthi16384ee";
        let meta = parse(&torrent(info, &[])).unwrap();
        assert_eq!(meta.v1, None);
        assert_eq!(meta.v2, Some(Sha256::digest(info).into()));
        assert_eq!((meta.size, meta.file_count), (7, 1));
    }

    #[test]
    fn trailing_bytes_after_the_file_are_ignored() {
        let mut file = torrent(&single_file_info(&[]), &[]);
        let plain = parse(&file).unwrap();
        file.extend_from_slice(b"\r\n");
        assert_eq!(parse(&file).unwrap(), plain);
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        assert!(matches!(
            parse(b"d4:info"),
            Err(MetainfoError::Bencode(DecodeError { offset: 7, .. }))
        ));
        assert_eq!(parse(b"le"), Err(MetainfoError::NotADictionary));
        assert_eq!(parse(b"de"), Err(MetainfoError::NoInfo));
        assert_eq!(parse(b"d4:infod4:name1:aee"), Err(MetainfoError::NoPieces));
        let no_piece_length = b"d4:infod6:lengthi1e6:pieces0:ee";
        assert!(matches!(
            parse(no_piece_length),
            Err(MetainfoError::Field(_))
        ));
    }

    #[test]
    fn magnets_give_hash_and_name() {
        let hex = "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb";
        let magnet =
            parse_magnet(&format!("magnet:?xt=urn:btih:{hex}&dn=Lab+data%20set&tr=x")).unwrap();
        assert_eq!(magnet.info_hash.to_hex(), hex);
        assert_eq!(magnet.name.as_deref(), Some("Lab data set"));
        let b32 = parse_magnet("magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT").unwrap();
        assert_eq!(
            b32.info_hash.to_hex(),
            "000102030405060708090a0b0c0d0e0f10111213"
        );
        assert_eq!(
            parse_magnet("magnet:?xt=urn:btmh:1220abcd"),
            Err(MagnetError::NoBtih)
        );
        assert_eq!(
            parse_magnet("magnet:?xt=urn:btih:xyz"),
            Err(MagnetError::BadHash)
        );
        assert_eq!(parse_magnet("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(parse_magnet("no scheme"), Err(MagnetError::NotMagnet));
        let utf8 = parse_magnet(&format!(
            "magnet:?dn=%E3%83%87%E3%83%BC%E3%82%BF&dn=second&xt=urn:btih:{hex}"
        ))
        .unwrap();
        assert_eq!(utf8.name.as_deref(), Some("データ"), "the first dn counts");
    }

    #[test]
    fn a_magnet_link_reads_back() {
        let v1 = InfoHash([0xab; 20]);
        let link = magnet_link(
            Some(&v1),
            Some(&[0xcd; 32]),
            "a b&c=d データ",
            42,
            "http://t.example/pk/announce?x=1",
        );
        assert!(
            link.starts_with(&format!(
                "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&dn=a+b%26c%3Dd+",
                "ab".repeat(20),
                "cd".repeat(32)
            )),
            "{link}"
        );
        let back = parse_magnet(&link).unwrap();
        assert_eq!(back.info_hash, v1);
        assert_eq!(back.name.as_deref(), Some("a b&c=d データ"));
        let url = url::Url::parse(&link).unwrap();
        let tr = url.query_pairs().find(|(k, _)| k == "tr").unwrap().1;
        assert_eq!(tr, "http://t.example/pk/announce?x=1");
    }
}
