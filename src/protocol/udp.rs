//! BEP 15, the UDP tracker protocol: requests read from a datagram, answers written into a
//! reused buffer, and stateless connection ids. BEP 41's URL data (the announce URL's path, which
//! carries the passkey) is read from the options after an announce. Pure: no sockets, no clock;
//! nothing here allocates once the answer buffer has grown.

use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::protocol::ids::{InfoHash, PeerId};
use crate::protocol::{AnnouncePeer, Event};

/// The magic constant a connect request starts with.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const CONNECT: u32 = 0;
pub const ANNOUNCE: u32 = 1;
pub const SCRAPE: u32 = 2;
pub const ERROR: u32 = 3;
/// BEP 15: "up to about 74 torrents can be scraped at once" (a scrape answer in one packet).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// How long a connection id is accepted after it was issued, in seconds (BEP 15: "two minutes").
pub const CONNECTION_ID_SECS: u32 = 120;
/// The most BEP 41 URL data kept (longer is cut here: a passkey path is some 40 bytes).
pub const MAX_URL_DATA: usize = 512;
/// Fixed part of an announce request.
const ANNOUNCE_LEN: usize = 98;

/// A request as it came in. (An announce is large for its URL data, and is kept on the stack:
/// no allocation per packet.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Request<'a> {
    Connect {
        transaction: u32,
    },
    Announce(Announce),
    Scrape {
        connection: u64,
        transaction: u32,
        /// The info hashes, 20 bytes each, at most [`MAX_SCRAPE_HASHES`].
        hashes: &'a [u8],
    },
}

/// An announce request (BEP 15) with its URL data (BEP 41).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub connection: u64,
    pub transaction: u32,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// `None`: -1, the tracker's default.
    pub numwant: Option<u32>,
    pub port: u16,
    pub url_data: UrlData,
}

/// BEP 41 URL data: the path and query of the announce URL, the options concatenated.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlData {
    bytes: [u8; MAX_URL_DATA],
    len: usize,
}

impl Default for UrlData {
    fn default() -> Self {
        UrlData {
            bytes: [0; MAX_URL_DATA],
            len: 0,
        }
    }
}

impl std::fmt::Debug for UrlData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl UrlData {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, data: &[u8]) {
        let take = data.len().min(MAX_URL_DATA - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&data[..take]);
        self.len += take;
    }

    /// The path's passkey (`/<passkey>/announce`) and the query (for `?passkey=`), as the HTTP
    /// routes read them. Not UTF-8, or no URL data: no passkey and an empty query.
    pub fn passkey_and_query(&self) -> (Option<&str>, &str) {
        let Ok(text) = std::str::from_utf8(self.as_bytes()) else {
            return (None, "");
        };
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        let mut segments = path.trim_start_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some(key), Some("announce"), None) if !key.is_empty() => (Some(key), query),
            _ => (None, query),
        }
    }
}

/// Why a datagram could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than any request (16 bytes): dropped unanswered.
    TooShort,
    /// A connect request without the protocol's magic number: dropped.
    NotBep15,
    UnknownAction(u32),
    /// An announce shorter than 98 bytes.
    ShortAnnounce,
    /// A scrape with no hash, a partial one, or more than [`MAX_SCRAPE_HASHES`].
    BadScrape,
}

/// A datagram that is no request, with what could be read of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad {
    pub connection: u64,
    pub transaction: u32,
    pub why: Malformed,
}

impl Malformed {
    /// The text of the error packet sent back.
    pub fn message(self) -> &'static str {
        match self {
            Malformed::TooShort => "packet too short",
            Malformed::NotBep15 => "not a BEP 15 connect request",
            Malformed::UnknownAction(_) => "unknown action",
            Malformed::ShortAnnounce => "announce packet too short",
            Malformed::BadScrape => "scrape asks for 1 to 74 info hashes of 20 bytes",
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn id_at(b: &[u8], at: usize) -> [u8; 20] {
    b[at..at + 20].try_into().expect("20 bytes")
}

/// Reads one request datagram.
pub fn parse(packet: &[u8]) -> Result<Request<'_>, Bad> {
    if packet.len() < 16 {
        return Err(Bad {
            connection: 0,
            transaction: 0,
            why: Malformed::TooShort,
        });
    }
    let connection = u64_at(packet, 0);
    let action = u32_at(packet, 8);
    let transaction = u32_at(packet, 12);
    let bad = |why| Bad {
        connection,
        transaction,
        why,
    };
    match action {
        CONNECT if connection == PROTOCOL_ID => Ok(Request::Connect { transaction }),
        CONNECT => Err(bad(Malformed::NotBep15)),
        ANNOUNCE => {
            if packet.len() < ANNOUNCE_LEN {
                return Err(bad(Malformed::ShortAnnounce));
            }
            let event = match u32_at(packet, 80) {
                1 => Event::Completed,
                2 => Event::Started,
                3 => Event::Stopped,
                _ => Event::Periodic,
            };
            // 84: the IP address (0: the sender's; any other is ignored, as spoofing is easy),
            // 88: the key.
            let numwant = match u32_at(packet, 92) as i32 {
                n if n < 0 => None,
                n => Some(n as u32),
            };
            let mut url_data = UrlData::default();
            read_options(&packet[ANNOUNCE_LEN..], &mut url_data);
            Ok(Request::Announce(Announce {
                connection,
                transaction,
                info_hash: InfoHash(id_at(packet, 16)),
                peer_id: PeerId(id_at(packet, 36)),
                downloaded: u64_at(packet, 56),
                left: u64_at(packet, 64),
                uploaded: u64_at(packet, 72),
                event,
                numwant,
                port: u16_at(packet, 96),
                url_data,
            }))
        }
        SCRAPE => {
            let hashes = &packet[16..];
            if hashes.is_empty()
                || !hashes.len().is_multiple_of(20)
                || hashes.len() / 20 > MAX_SCRAPE_HASHES
            {
                return Err(bad(Malformed::BadScrape));
            }
            Ok(Request::Scrape {
                connection,
                transaction,
                hashes,
            })
        }
        other => Err(bad(Malformed::UnknownAction(other))),
    }
}

/// BEP 41 options: 0 ends them, 1 is padding, 2 is a piece of URL data (length, bytes). A
/// truncated option ends the reading; what was read so far counts.
fn read_options(mut options: &[u8], url_data: &mut UrlData) {
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            0 => return,
            1 => options = rest,
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    return;
                };
                let Some(data) = rest.get(..len as usize) else {
                    return;
                };
                if kind == 2 {
                    url_data.push(data);
                }
                options = &rest[len as usize..];
            }
        }
    }
}

/// The answer to a connect request.
pub fn write_connect(out: &mut Vec<u8>, transaction: u32, connection: u64) {
    out.clear();
    out.extend_from_slice(&CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&connection.to_be_bytes());
}

/// What an announce answer says besides the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceCounts {
    pub interval_secs: u32,
    pub leechers: u32,
    pub seeders: u32,
}

/// The answer to an announce: 6-byte peers to a client on IPv4, 18-byte ones on IPv6 (BEP 15);
/// peers of the other family are left out.
pub fn write_announce(
    out: &mut Vec<u8>,
    transaction: u32,
    counts: AnnounceCounts,
    peers: &[AnnouncePeer],
    ipv6: bool,
) {
    out.clear();
    out.extend_from_slice(&ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&counts.interval_secs.to_be_bytes());
    out.extend_from_slice(&counts.leechers.to_be_bytes());
    out.extend_from_slice(&counts.seeders.to_be_bytes());
    for peer in peers {
        match (peer.addr, ipv6) {
            (SocketAddr::V4(a), false) => out.extend_from_slice(&a.ip().octets()),
            (SocketAddr::V6(a), true) => out.extend_from_slice(&a.ip().octets()),
            _ => continue,
        }
        out.extend_from_slice(&peer.addr.port().to_be_bytes());
    }
}

/// The answer to a scrape: seeders, completed, leechers for each hash, in the order asked.
pub fn write_scrape(
    out: &mut Vec<u8>,
    transaction: u32,
    counts: impl Iterator<Item = (u32, u32, u32)>,
) {
    out.clear();
    out.extend_from_slice(&SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    for (seeders, completed, leechers) in counts {
        out.extend_from_slice(&seeders.to_be_bytes());
        out.extend_from_slice(&completed.to_be_bytes());
        out.extend_from_slice(&leechers.to_be_bytes());
    }
}

/// An error packet. Its message is cut to keep the packet within `max_len` bytes (the size of
/// the request, for a sender not yet connected: no answer is larger than what asked for it).
pub fn write_error(out: &mut Vec<u8>, transaction: u32, message: &str, max_len: usize) {
    out.clear();
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    let mut room = max_len.saturating_sub(8).min(message.len());
    while !message.is_char_boundary(room) {
        room -= 1;
    }
    out.extend_from_slice(&message.as_bytes()[..room]);
}

/// Stateless connection ids: the time of issue (seconds, 32 bits) and a SipHash-2-4 of it and
/// the client's IP address under a key drawn at start. Nothing is stored per connect, so a flood
/// of spoofed connects costs no memory; an id is good for [`CONNECTION_ID_SECS`] from the same
/// address, and forging one takes guessing a 32-bit MAC.
#[derive(Clone)]
pub struct ConnectionIds {
    key: (u64, u64),
}

impl ConnectionIds {
    pub fn new(key: (u64, u64)) -> ConnectionIds {
        ConnectionIds { key }
    }

    fn mac(&self, ip: IpAddr, issued: u32) -> u32 {
        let mut hasher = SipHasher24::new_with_keys(self.key.0, self.key.1);
        match ip.to_canonical() {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        hasher.write_u32(issued);
        hasher.finish() as u32
    }

    /// A connection id for `ip` at `now_secs` (Unix time).
    pub fn issue(&self, ip: IpAddr, now_secs: u64) -> u64 {
        let issued = now_secs as u32;
        (u64::from(issued) << 32) | u64::from(self.mac(ip, issued))
    }

    /// Whether `id` was issued to `ip` within the last [`CONNECTION_ID_SECS`] (as of `now_secs`).
    pub fn valid(&self, id: u64, ip: IpAddr, now_secs: u64) -> bool {
        let issued = (id >> 32) as u32;
        let age = (now_secs as u32).wrapping_sub(issued);
        age <= CONNECTION_ID_SECS && self.mac(ip, issued) == id as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce_packet(connection: u64, options: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&connection.to_be_bytes());
        p.extend_from_slice(&ANNOUNCE.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[0xaa; 20]);
        p.extend_from_slice(&[0xbb; 20]);
        p.extend_from_slice(&5u64.to_be_bytes()); // downloaded
        p.extend_from_slice(&6u64.to_be_bytes()); // left
        p.extend_from_slice(&7u64.to_be_bytes()); // uploaded
        p.extend_from_slice(&2u32.to_be_bytes()); // started
        p.extend_from_slice(&[0; 4]); // ip
        p.extend_from_slice(&[1; 4]); // key
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p.extend_from_slice(&6881u16.to_be_bytes());
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn a_connect_is_read_only_with_the_magic_number() {
        let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&0x1234u32.to_be_bytes());
        assert_eq!(
            parse(&p),
            Ok(Request::Connect {
                transaction: 0x1234
            })
        );
        p[0] = 1;
        assert_eq!(parse(&p).unwrap_err().why, Malformed::NotBep15);
        assert_eq!(parse(&p[..15]).unwrap_err().why, Malformed::TooShort);
    }

    #[test]
    fn an_announce_is_read_field_by_field_with_its_url_data() {
        let options = [
            2, 5, b'/', b'k', b'e', b'y', b'/', 1, 2, 8, b'a', b'n', b'n', b'o', b'u', b'n', b'c',
            b'e', 0, 2,
        ];
        let Ok(Request::Announce(a)) = parse(&announce_packet(99, &options)) else {
            panic!("not an announce");
        };
        assert_eq!(a.connection, 99);
        assert_eq!(a.transaction, 7);
        assert_eq!(a.info_hash, InfoHash([0xaa; 20]));
        assert_eq!(a.peer_id, PeerId([0xbb; 20]));
        assert_eq!((a.downloaded, a.left, a.uploaded), (5, 6, 7));
        assert_eq!(a.event, Event::Started);
        assert_eq!(a.numwant, None);
        assert_eq!(a.port, 6881);
        assert_eq!(a.url_data.as_bytes(), b"/key/announce");
        assert_eq!(a.url_data.passkey_and_query(), (Some("key"), ""));
        let short = announce_packet(99, &[]);
        assert_eq!(
            parse(&short[..97]).unwrap_err().why,
            Malformed::ShortAnnounce
        );
    }

    #[test]
    fn url_data_gives_the_passkey_as_the_http_routes_do() {
        let mut data = UrlData::default();
        data.push(b"/announce?passkey=abc&x=1");
        assert_eq!(data.passkey_and_query(), (None, "passkey=abc&x=1"));
        let mut data = UrlData::default();
        data.push(b"/a/b/announce");
        assert_eq!(data.passkey_and_query(), (None, ""));
        let mut data = UrlData::default();
        data.push(&[0xff, b'/', b'a']);
        assert_eq!(data.passkey_and_query(), (None, ""));
        // Options cut short keep what came before; longer data is cut at MAX_URL_DATA.
        let mut data = UrlData::default();
        read_options(&[2, 3, b'/', b'a', b'b', 2, 200, b'c'], &mut data);
        assert_eq!(data.as_bytes(), b"/ab");
        let mut data = UrlData::default();
        let mut long = Vec::new();
        for _ in 0..4 {
            long.extend_from_slice(&[2, 255]);
            long.extend_from_slice(&[b'x'; 255]);
        }
        read_options(&long, &mut data);
        assert_eq!(data.as_bytes().len(), MAX_URL_DATA);
    }

    #[test]
    fn scrapes_hold_whole_hashes_up_to_the_limit() {
        let head = |n: usize| {
            let mut p = 5u64.to_be_bytes().to_vec();
            p.extend_from_slice(&SCRAPE.to_be_bytes());
            p.extend_from_slice(&1u32.to_be_bytes());
            p.extend(std::iter::repeat_n(3u8, n));
            p
        };
        assert!(
            matches!(parse(&head(40)), Ok(Request::Scrape { hashes, .. }) if hashes.len() == 40)
        );
        for n in [0, 21, 20 * (MAX_SCRAPE_HASHES + 1)] {
            assert_eq!(
                parse(&head(n)).unwrap_err().why,
                Malformed::BadScrape,
                "{n}"
            );
        }
        let mut unknown = head(0);
        unknown[11] = 9;
        assert_eq!(
            parse(&unknown).unwrap_err().why,
            Malformed::UnknownAction(9)
        );
    }

    #[test]
    fn answers_are_written_as_bep_15_lays_them_out() {
        let mut out = Vec::new();
        write_connect(&mut out, 3, 0x0102030405060708);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]);
        let peers = [
            AnnouncePeer {
                peer_id: PeerId([0; 20]),
                addr: "1.2.3.4:5".parse().unwrap(),
            },
            AnnouncePeer {
                peer_id: PeerId([0; 20]),
                addr: "[::1]:6".parse().unwrap(),
            },
        ];
        let counts = AnnounceCounts {
            interval_secs: 1800,
            leechers: 1,
            seeders: 2,
        };
        write_announce(&mut out, 9, counts, &peers, false);
        assert_eq!(out.len(), 20 + 6);
        assert_eq!(&out[20..], [1, 2, 3, 4, 0, 5]);
        write_announce(&mut out, 9, counts, &peers, true);
        assert_eq!(out.len(), 20 + 18);
        assert_eq!(&out[36..], [0, 6]);
        write_scrape(&mut out, 4, [(1, 2, 3)].into_iter());
        assert_eq!(
            out,
            [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        write_error(&mut out, 4, "connection id expired", 16);
        assert_eq!(out, b"\0\0\0\x03\0\0\0\x04connecti");
        write_error(&mut out, 4, "é", 9);
        assert_eq!(out.len(), 8, "never half a character");
    }

    #[test]
    fn connection_ids_hold_for_two_minutes_from_the_same_address() {
        let ids = ConnectionIds::new((1, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let id = ids.issue(a, 1_000_000);
        assert!(ids.valid(id, a, 1_000_000));
        assert!(ids.valid(id, a, 1_000_000 + 120));
        assert!(!ids.valid(id, a, 1_000_000 + 121), "expired");
        assert!(!ids.valid(id, a, 1_000_000 - 1), "from the future");
        assert!(!ids.valid(id, b, 1_000_000), "another address");
        assert!(!ids.valid(id ^ 1, a, 1_000_000), "altered");
        assert!(ids.valid(id, "::ffff:10.0.0.1".parse().unwrap(), 1_000_000));
        assert!(
            !ConnectionIds::new((1, 3)).valid(id, a, 1_000_000),
            "another key"
        );
    }
}
