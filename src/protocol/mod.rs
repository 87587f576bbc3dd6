//! The BitTorrent side of HTTP: announce/scrape query parsing and bencoded answers.
//! Pure: no sockets, no clock, no locks. Ids are percent-decoded straight to bytes, never through `String`.

pub mod bencode;
pub mod http;
pub mod ids;
pub mod legacy;
pub mod metainfo;
pub mod multipart;
pub mod torrent_file;
pub mod udp;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use crate::error::ProtocolError;
use crate::protocol::bencode::Writer;
use crate::protocol::ids::{hex_pair, InfoHash, PeerId};

/// How many `info_hash` values one scrape may ask for.
pub const MAX_SCRAPE_HASHES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Started,
    Stopped,
    Completed,
    Paused,
    /// A regular announce: no event, an empty one, or one we do not know.
    Periodic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The peer's address as the tracker saw it, with the port it announced.
    pub addr: SocketAddr,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// How many peers the client asked for; `None` means the tracker's default.
    pub numwant: Option<u64>,
    pub style: PeerStyle,
}

/// How the peer list is written in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStyle {
    /// BEP 23/7: `peers` as 6-byte and `peers6` as 18-byte entries.
    Compact,
    /// BEP 3 dictionaries, with or without `peer id`.
    Dicts { with_peer_id: bool },
}

/// Which peers an answer can carry: HTTP's carry both families (`peers`, `peers6`), a UDP
/// answer only its socket's (BEP 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    pub fn holds(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncePeer {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    pub complete: u32,
    pub incomplete: u32,
    /// Completions (`event=completed`) seen for this torrent.
    pub downloaded: u64,
    pub interval_secs: u32,
    pub min_interval_secs: u32,
    pub peers: Vec<AnnouncePeer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeCounts {
    pub complete: u32,
    pub incomplete: u32,
    pub downloaded: u64,
}

/// Percent-decodes one query component to raw bytes: `%xx` in either case, `+` as space,
/// a malformed `%` kept as it is.
pub fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let Some(byte) = raw.get(i + 1..i + 3).and_then(|p| hex_pair(p[0], p[1])) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// The decoded `(key, value)` pairs of a query string, in order. Only `&` separates pairs.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            (percent_decode(key), percent_decode(value))
        })
}

/// The first value of `key` in a query, decoded; `None` when absent.
pub fn query_value<'q>(query: &'q str, key: &str) -> Option<Cow<'q, [u8]>> {
    query_pairs(query)
        .find(|(k, _)| k.as_ref() == key.as_bytes())
        .map(|(_, v)| v)
}

/// Parses an announce query. `ip` is the peer's address as the server determined it.
pub fn parse_announce(query: &str, ip: IpAddr) -> Result<AnnounceRequest, ProtocolError> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut uploaded = None;
    let mut downloaded = None;
    let mut left = None;
    let mut event = None;
    let mut numwant = None;
    let mut compact = None;
    let mut no_peer_id = None;
    for (key, value) in query_pairs(query) {
        let slot = match key.as_ref() {
            b"info_hash" => &mut info_hash,
            b"peer_id" => &mut peer_id,
            b"port" => &mut port,
            b"uploaded" => &mut uploaded,
            b"downloaded" => &mut downloaded,
            b"left" => &mut left,
            b"event" => &mut event,
            b"numwant" => &mut numwant,
            b"compact" => &mut compact,
            b"no_peer_id" => &mut no_peer_id,
            _ => continue,
        };
        // The first occurrence of a repeated key wins.
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    let info_hash = InfoHash(required_id("info_hash", info_hash)?);
    let peer_id = PeerId(required_id("peer_id", peer_id)?);
    let port = match port.filter(|v| !v.is_empty()) {
        None => return Err(ProtocolError::MissingParam("port")),
        Some(v) => match parse_u64(&v) {
            Some(p @ 1..=65535) => p as u16,
            _ => return Err(ProtocolError::InvalidPort),
        },
    };
    let number = |name: &'static str, value: Option<Cow<[u8]>>| match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => parse_u64(&v)
            .map(Some)
            .ok_or(ProtocolError::InvalidNumber(name)),
    };
    let style = if compact.as_deref() == Some(b"0") {
        PeerStyle::Dicts {
            with_peer_id: no_peer_id.as_deref() != Some(b"1"),
        }
    } else {
        PeerStyle::Compact
    };
    Ok(AnnounceRequest {
        info_hash,
        peer_id,
        addr: SocketAddr::new(ip, port),
        uploaded: number("uploaded", uploaded)?.unwrap_or(0),
        downloaded: number("downloaded", downloaded)?.unwrap_or(0),
        left: number("left", left)?.unwrap_or(0),
        event: parse_event(event.as_deref().unwrap_or(b"")),
        // An unreadable numwant is not worth refusing the announce over: use the default.
        numwant: number("numwant", numwant).ok().flatten(),
        style,
    })
}

/// The torrents a scrape asks about, each once, in the order given.
pub fn parse_scrape(query: &str) -> Result<Vec<InfoHash>, ProtocolError> {
    let mut info_hashes = Vec::new();
    for (key, value) in query_pairs(query) {
        if key.as_ref() != b"info_hash" {
            continue;
        }
        if info_hashes.len() == MAX_SCRAPE_HASHES {
            return Err(ProtocolError::TooManyInfoHashes {
                max: MAX_SCRAPE_HASHES,
            });
        }
        let hash = InfoHash::try_from(value.as_ref()).map_err(|_| ProtocolError::BadLength {
            param: "info_hash",
            len: value.len(),
        })?;
        if !info_hashes.contains(&hash) {
            info_hashes.push(hash);
        }
    }
    if info_hashes.is_empty() {
        return Err(ProtocolError::MissingParam("info_hash"));
    }
    Ok(info_hashes)
}

fn required_id(name: &'static str, value: Option<Cow<[u8]>>) -> Result<[u8; 20], ProtocolError> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or(ProtocolError::MissingParam(name))?;
    <[u8; 20]>::try_from(value.as_ref()).map_err(|_| ProtocolError::BadLength {
        param: name,
        len: value.len(),
    })
}

/// Plain ASCII decimal digits only: no sign, no spaces, no `_`; `None` when it does not fit a u64.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn parse_event(value: &[u8]) -> Event {
    match value {
        b"started" => Event::Started,
        b"stopped" => Event::Stopped,
        b"completed" => Event::Completed,
        b"paused" => Event::Paused,
        _ => Event::Periodic,
    }
}

/// The announce answer, keys in raw-byte order as BEP 3 requires.
pub fn encode_announce(resp: &AnnounceResponse, style: PeerStyle) -> Vec<u8> {
    let mut out = Writer::with_capacity(96 + resp.peers.len() * 8);
    out.raw(b"d")
        .bytes(b"complete")
        .int(resp.complete)
        .bytes(b"downloaded")
        .int(resp.downloaded)
        .bytes(b"incomplete")
        .int(resp.incomplete)
        .bytes(b"interval")
        .int(resp.interval_secs)
        .bytes(b"min interval")
        .int(resp.min_interval_secs);
    match style {
        PeerStyle::Compact => {
            let mut v4 = Vec::with_capacity(resp.peers.len() * 6);
            let mut v6 = Vec::new();
            for peer in &resp.peers {
                match peer.addr {
                    SocketAddr::V4(a) => {
                        v4.extend_from_slice(&a.ip().octets());
                        v4.extend_from_slice(&a.port().to_be_bytes());
                    }
                    SocketAddr::V6(a) => {
                        v6.extend_from_slice(&a.ip().octets());
                        v6.extend_from_slice(&a.port().to_be_bytes());
                    }
                }
            }
            out.bytes(b"peers").bytes(&v4);
            if !v6.is_empty() {
                out.bytes(b"peers6").bytes(&v6);
            }
        }
        PeerStyle::Dicts { with_peer_id } => {
            out.bytes(b"peers").raw(b"l");
            for peer in &resp.peers {
                out.raw(b"d")
                    .bytes(b"ip")
                    .bytes(peer.addr.ip().to_string().as_bytes());
                if with_peer_id {
                    out.bytes(b"peer id").bytes(peer.peer_id.as_bytes());
                }
                out.bytes(b"port").int(peer.addr.port()).raw(b"e");
            }
            out.raw(b"e");
        }
    }
    out.raw(b"e");
    out.finish()
}

/// BEP 48 scrape answer: `files` keyed by the raw 20-byte hash, in byte order.
pub fn encode_scrape(files: &[(InfoHash, ScrapeCounts)]) -> Vec<u8> {
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_by_key(|(hash, _)| *hash);
    let mut out = Writer::with_capacity(16 + files.len() * 80);
    out.raw(b"d").bytes(b"files").raw(b"d");
    for (hash, counts) in sorted {
        out.bytes(hash.as_bytes())
            .raw(b"d")
            .bytes(b"complete")
            .int(counts.complete)
            .bytes(b"downloaded")
            .int(counts.downloaded)
            .bytes(b"incomplete")
            .int(counts.incomplete)
            .raw(b"e");
    }
    out.raw(b"ee");
    out.finish()
}

/// BEP 3 failure: `d14:failure reason<len>:<text>e`.
pub fn encode_failure(error: &ProtocolError) -> Vec<u8> {
    let mut out = Writer::with_capacity(64);
    out.raw(b"d")
        .bytes(b"failure reason")
        .bytes(error.to_string().as_bytes())
        .raw(b"e");
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const H1: [u8; 20] = [
        0x00, 0x25, 0x41, 0x80, 0xff, 0xc3, 0xa9, 0x25, 0x38, 0x41, 0x7f, 0x0e, 0x2b, 0x20, 0x26,
        0x3d, 0xe2, 0x82, 0xac, 0x99,
    ];

    fn escape_all(raw: &[u8]) -> String {
        raw.iter().map(|b| format!("%{b:02x}")).collect()
    }

    fn local() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))
    }

    fn announce_query(extra: &str) -> String {
        format!(
            "info_hash={}&peer_id=-TR3000-abcdefghijkl&port=6881{extra}",
            escape_all(&H1)
        )
    }

    #[test]
    fn binary_info_hash_decodes_from_any_escape_mix() {
        let lower = parse_announce(&announce_query(""), local()).unwrap();
        assert_eq!(lower.info_hash, InfoHash(H1));
        // Upper-case escapes, and unreserved bytes sent raw (0x41 'A', 0x38 '8').
        let mixed = "%00%25A%80%FF%C3%A9%258A%7F%0E%2B%20%26%3D%E2%82%AC%99";
        let query = format!("info_hash={mixed}&peer_id=-TR3000-abcdefghijkl&port=1");
        assert_eq!(
            parse_announce(&query, local()).unwrap().info_hash,
            InfoHash(H1)
        );
    }

    #[test]
    fn binary_peer_id_keeps_its_bytes() {
        let mut p2 = *b"-XX0001-............";
        p2[8..].copy_from_slice(&[0xff, 0, 0x80, 0x25, 0x41, 0xc3, 0xa9, 1, 2, 3, 0x7e, 0x7f]);
        let query = format!(
            "info_hash={}&peer_id={}&port=1",
            escape_all(&H1),
            escape_all(&p2)
        );
        assert_eq!(parse_announce(&query, local()).unwrap().peer_id, PeerId(p2));
    }

    #[test]
    fn announce_defaults_are_compact_and_zero() {
        let req = parse_announce(&announce_query(""), local()).unwrap();
        assert_eq!(req.addr, SocketAddr::new(local(), 6881));
        assert_eq!((req.uploaded, req.downloaded, req.left), (0, 0, 0));
        assert_eq!(req.event, Event::Periodic);
        assert_eq!(req.numwant, None);
        assert_eq!(req.style, PeerStyle::Compact);
    }

    #[test]
    fn announce_reads_counters_event_and_style() {
        let query = announce_query(
            "&uploaded=10&downloaded=20&left=18446744073709551615&event=completed&numwant=5&compact=0&no_peer_id=1",
        );
        let req = parse_announce(&query, local()).unwrap();
        assert_eq!((req.uploaded, req.downloaded, req.left), (10, 20, u64::MAX));
        assert_eq!(req.event, Event::Completed);
        assert_eq!(req.numwant, Some(5));
        assert_eq!(
            req.style,
            PeerStyle::Dicts {
                with_peer_id: false
            }
        );
    }

    #[test]
    fn unreadable_numwant_falls_back_to_the_default() {
        for bad in ["-1", "x", "1e3"] {
            let req = parse_announce(&announce_query(&format!("&numwant={bad}")), local()).unwrap();
            assert_eq!(req.numwant, None, "numwant={bad}");
        }
    }

    #[test]
    fn unknown_event_is_a_regular_announce() {
        for (value, event) in [
            ("started", Event::Started),
            ("stopped", Event::Stopped),
            ("paused", Event::Paused),
            ("", Event::Periodic),
            ("bogus", Event::Periodic),
        ] {
            let req = parse_announce(&announce_query(&format!("&event={value}")), local()).unwrap();
            assert_eq!(req.event, event, "event={value}");
        }
    }

    #[test]
    fn first_of_a_repeated_key_wins() {
        let req = parse_announce(&announce_query("&port=7000&left=5&left=0"), local()).unwrap();
        assert_eq!(req.addr.port(), 6881);
        assert_eq!(req.left, 5);
    }

    #[test]
    fn missing_or_empty_ids_are_failures() {
        let no_hash = "peer_id=-TR3000-abcdefghijkl&port=1";
        assert_eq!(
            parse_announce(no_hash, local()),
            Err(ProtocolError::MissingParam("info_hash"))
        );
        let empty_peer = format!("info_hash={}&peer_id=&port=1", escape_all(&H1));
        assert_eq!(
            parse_announce(&empty_peer, local()),
            Err(ProtocolError::MissingParam("peer_id"))
        );
    }

    #[test]
    fn ids_of_the_wrong_length_are_failures() {
        let query = "info_hash=abc&peer_id=-TR3000-abcdefghijkl&port=1";
        assert_eq!(
            parse_announce(query, local()),
            Err(ProtocolError::BadLength {
                param: "info_hash",
                len: 3
            })
        );
        let long = format!(
            "info_hash={}%01&peer_id=-TR3000-abcdefghijkl&port=1",
            escape_all(&H1)
        );
        assert_eq!(
            parse_announce(&long, local()),
            Err(ProtocolError::BadLength {
                param: "info_hash",
                len: 21
            })
        );
        // A malformed escape is kept literally, so it counts as 3 bytes here.
        let malformed = format!("info_hash={}&peer_id=%ZZ%4&port=1", escape_all(&H1));
        assert_eq!(
            parse_announce(&malformed, local()),
            Err(ProtocolError::BadLength {
                param: "peer_id",
                len: 5
            })
        );
    }

    #[test]
    fn plus_decodes_to_space() {
        assert_eq!(percent_decode(b"a+b%2Bc").as_ref(), b"a b+c");
        assert_eq!(percent_decode(b"100%").as_ref(), b"100%");
        assert_eq!(percent_decode(b"%zz%4").as_ref(), b"%zz%4");
    }

    #[test]
    fn port_must_be_in_range() {
        let base = format!("info_hash={}&peer_id=-TR3000-abcdefghijkl", escape_all(&H1));
        assert_eq!(
            parse_announce(&base, local()),
            Err(ProtocolError::MissingParam("port"))
        );
        for bad in [
            "0", "65536", "-1", "99999999", "1_000", " 80", "８０", "6881x",
        ] {
            let query = format!("{base}&port={bad}");
            assert_eq!(
                parse_announce(&query, local()),
                Err(ProtocolError::InvalidPort),
                "{bad}"
            );
        }
    }

    #[test]
    fn counters_reject_signs_overflow_and_python_quirks() {
        for bad in [
            "-3",
            "18446744073709551616",
            "1_000",
            " 1",
            "1e3",
            &"9".repeat(5000),
        ] {
            let query = announce_query(&format!("&left={bad}"));
            assert_eq!(
                parse_announce(&query, local()),
                Err(ProtocolError::InvalidNumber("left")),
                "{bad}"
            );
        }
    }

    #[test]
    fn scrape_collects_every_info_hash_once() {
        let other = [7u8; 20];
        let query = format!(
            "info_hash={}&info_hash={}&info_hash={}",
            escape_all(&H1),
            escape_all(&other),
            escape_all(&H1)
        );
        assert_eq!(
            parse_scrape(&query).unwrap(),
            vec![InfoHash(H1), InfoHash(other)]
        );
        let with_other_keys = format!("format=json&{query}&passkey=x");
        assert_eq!(parse_scrape(&with_other_keys).unwrap().len(), 2);
    }

    #[test]
    fn scrape_caps_the_number_of_hashes() {
        let many: Vec<String> = (0..=MAX_SCRAPE_HASHES)
            .map(|i| format!("info_hash={}", escape_all(&[i as u8; 20])))
            .collect();
        assert_eq!(
            parse_scrape(&many.join("&")),
            Err(ProtocolError::TooManyInfoHashes {
                max: MAX_SCRAPE_HASHES
            })
        );
        assert!(parse_scrape(&many[..MAX_SCRAPE_HASHES].join("&")).is_ok());
        assert_eq!(
            parse_scrape(""),
            Err(ProtocolError::MissingParam("info_hash"))
        );
    }

    fn response(peers: Vec<AnnouncePeer>) -> AnnounceResponse {
        AnnounceResponse {
            complete: 2,
            incomplete: 1,
            downloaded: 3,
            interval_secs: 1800,
            min_interval_secs: 900,
            peers,
        }
    }

    fn peer(addr: &str, id: u8) -> AnnouncePeer {
        AnnouncePeer {
            peer_id: PeerId([id; 20]),
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn compact_announce_is_byte_exact() {
        let resp = response(vec![peer("1.2.3.4:6881", 1), peer("[::1]:258", 2)]);
        let mut expected = b"d8:completei2e10:downloadedi3e10:incompletei1e8:intervali1800e12:min intervali900e5:peers6:\x01\x02\x03\x04\x1a\xe16:peers618:".to_vec();
        expected.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        expected.extend_from_slice(&[1, 2]);
        expected.push(b'e');
        assert_eq!(encode_announce(&resp, PeerStyle::Compact), expected);
    }

    #[test]
    fn compact_announce_always_has_peers() {
        let bytes = encode_announce(&response(vec![]), PeerStyle::Compact);
        assert!(bytes.ends_with(b"5:peers0:e"));
    }

    #[derive(serde::Serialize)]
    struct DictPeer {
        ip: String,
        #[serde(rename = "peer id", with = "serde_bytes")]
        peer_id: Vec<u8>,
        port: u16,
    }

    #[derive(serde::Serialize)]
    struct DictAnswer {
        complete: u32,
        downloaded: u64,
        incomplete: u32,
        interval: u32,
        #[serde(rename = "min interval")]
        min_interval: u32,
        peers: Vec<DictPeer>,
    }

    #[test]
    fn dict_announce_matches_serde_bencode() {
        let resp = response(vec![
            peer("1.2.3.4:6881", 0xff),
            peer("[2001:db8::1]:80", b'a'),
        ]);
        let expected = DictAnswer {
            complete: 2,
            downloaded: 3,
            incomplete: 1,
            interval: 1800,
            min_interval: 900,
            peers: resp
                .peers
                .iter()
                .map(|p| DictPeer {
                    ip: p.addr.ip().to_string(),
                    peer_id: p.peer_id.as_bytes().to_vec(),
                    port: p.addr.port(),
                })
                .collect(),
        };
        assert_eq!(
            encode_announce(&resp, PeerStyle::Dicts { with_peer_id: true }),
            serde_bencode::to_bytes(&expected).unwrap()
        );
        let without = encode_announce(
            &resp,
            PeerStyle::Dicts {
                with_peer_id: false,
            },
        );
        assert!(!without.windows(7).any(|w| w == b"peer id"));
    }

    #[derive(serde::Serialize)]
    struct Counts {
        complete: u32,
        downloaded: u64,
        incomplete: u32,
    }

    #[test]
    fn scrape_matches_serde_bencode_with_raw_sorted_keys() {
        let a = InfoHash([0xfe; 20]);
        let b = InfoHash(H1);
        let counts = |c: u32| ScrapeCounts {
            complete: c,
            incomplete: c + 1,
            downloaded: u64::from(c) * 10,
        };
        let mut files = BTreeMap::new();
        for (hash, c) in [(a, 1), (b, 2)] {
            let key = serde_bytes::ByteBuf::from(hash.as_bytes().to_vec());
            let ScrapeCounts {
                complete,
                incomplete,
                downloaded,
            } = counts(c);
            files.insert(
                key,
                Counts {
                    complete,
                    downloaded,
                    incomplete,
                },
            );
        }
        let mut expected = BTreeMap::new();
        expected.insert("files", files);
        assert_eq!(
            encode_scrape(&[(a, counts(1)), (b, counts(2))]),
            serde_bencode::to_bytes(&expected).unwrap()
        );
    }

    #[test]
    fn failure_reason_is_bencoded() {
        let bytes = encode_failure(&ProtocolError::MissingParam("port"));
        assert_eq!(bytes, b"d14:failure reason12:missing porte");
    }

    #[test]
    fn encoded_announce_parses_back() {
        let resp = response(vec![peer("9.8.7.6:1", 3)]);
        let bytes = encode_announce(&resp, PeerStyle::Dicts { with_peer_id: true });
        #[derive(serde::Deserialize)]
        struct Back {
            complete: u32,
            peers: Vec<BackPeer>,
        }
        #[derive(serde::Deserialize)]
        struct BackPeer {
            ip: String,
            port: u16,
        }
        let back: Back = serde_bencode::from_bytes(&bytes).unwrap();
        assert_eq!(back.complete, 2);
        assert_eq!(
            (back.peers[0].ip.as_str(), back.peers[0].port),
            ("9.8.7.6", 1)
        );
    }
}
