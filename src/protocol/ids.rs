//! The two 20-byte identifiers of BitTorrent: `InfoHash` and `PeerId`.
//! Inside the tracker they are raw bytes; hex (and the peer id's escaped text form) appear only at the edges.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be 20 bytes, got {0}")]
    Length(usize),
    #[error("must be 40 hexadecimal characters")]
    Hex,
    #[error("must be 32 base32 characters")]
    Base32,
    #[error("bad escape in peer id text")]
    Escape,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }
            /// Lowercase hex, 40 characters.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                parse_hex(text).map(Self)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = IdError;
            fn try_from(bytes: &[u8]) -> Result<Self, IdError> {
                <[u8; 20]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| IdError::Length(bytes.len()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

id_type!(
    /// SHA-1 of a torrent's `info` dictionary (BEP 3). Displays as lowercase hex.
    InfoHash
);
id_type!(
    /// A client's self-chosen 20-byte id. Displays in its escaped text form (see [`PeerId::to_text`]).
    PeerId
);

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for InfoHash {
    type Err = IdError;
    /// Exactly 40 hex characters, either case.
    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::from_hex(text)
    }
}

impl InfoHash {
    /// The 32-character base32 form used by magnet links (RFC 4648 alphabet, either case).
    pub fn from_base32(text: &str) -> Result<Self, IdError> {
        if text.len() != 32 {
            return Err(IdError::Base32);
        }
        let mut out = [0u8; 20];
        let (mut buffer, mut bits, mut at) = (0u64, 0u32, 0usize);
        for c in text.bytes() {
            let value = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(IdError::Base32),
            };
            buffer = (buffer << 5) | u64::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out[at] = (buffer >> bits) as u8;
                at += 1;
            }
        }
        Ok(Self(out))
    }
}

impl PeerId {
    /// Readable, lossless text: printable ASCII except `%` as itself, every other byte `%XX`.
    /// `-qB5030-h*YWj1hK4p9Q` stays as it is; binary ids stay unambiguous.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Inverse of [`PeerId::to_text`].
    pub fn from_text(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(20);
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let pair = bytes.get(i + 1..i + 3).ok_or(IdError::Escape)?;
                out.push(hex_pair(pair[0], pair[1]).ok_or(IdError::Escape)?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Self::try_from(out.as_slice())
    }
}

/// [`PeerId::to_text`].
impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = &self.0[..];
        while !rest.is_empty() {
            let plain = rest
                .iter()
                .position(|&b| !(0x20..0x7f).contains(&b) || b == b'%')
                .unwrap_or(rest.len());
            // Printable ASCII is UTF-8 as it is.
            f.write_str(std::str::from_utf8(&rest[..plain]).map_err(|_| fmt::Error)?)?;
            if let Some(&b) = rest.get(plain) {
                const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
                let escaped = [
                    b'%',
                    DIGITS[usize::from(b >> 4)],
                    DIGITS[usize::from(b & 15)],
                ];
                f.write_str(std::str::from_utf8(&escaped).map_err(|_| fmt::Error)?)?;
                rest = &rest[plain + 1..];
            } else {
                rest = &[];
            }
        }
        Ok(())
    }
}

/// Lowercase hex of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn parse_hex(text: &str) -> Result<[u8; 20], IdError> {
    from_hex(text).ok_or(IdError::Hex)
}

/// `N` bytes from exactly `2 × N` hex digits, either case (a 20-byte id, a 32-byte SHA-256).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = hex_pair(pair[0], pair[1])?;
    }
    Some(out)
}

/// The byte two hex digits spell, either case.
pub fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(digit(high)? << 4 | digit(low)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 20] {
        let mut raw = [0u8; 20];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0x25);
        }
        raw
    }

    #[test]
    fn info_hash_hex_round_trips_in_either_case() {
        let hash = InfoHash(sample());
        let text = hash.to_string();
        assert_eq!(text.len(), 40);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<InfoHash>(), Ok(hash));
        assert_eq!(text.to_uppercase().parse::<InfoHash>(), Ok(hash));
    }

    #[test]
    fn info_hash_rejects_wrong_hex() {
        assert_eq!("abc".parse::<InfoHash>(), Err(IdError::Hex));
        assert_eq!("g".repeat(40).parse::<InfoHash>(), Err(IdError::Hex));
        assert_eq!("é".repeat(20).parse::<InfoHash>(), Err(IdError::Hex));
    }

    #[test]
    fn info_hash_from_bytes_checks_length() {
        assert_eq!(InfoHash::try_from(&[1u8; 19][..]), Err(IdError::Length(19)));
        assert_eq!(InfoHash::try_from(&[1u8; 20][..]), Ok(InfoHash([1; 20])));
    }

    #[test]
    fn base32_decodes_a_magnet_hash() {
        // "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT" is base32 of bytes 0x00..=0x13.
        let expected: Vec<u8> = (0u8..20).collect();
        let hash = InfoHash::from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT").unwrap();
        assert_eq!(&hash.0[..], &expected[..]);
        let lower = InfoHash::from_base32("aaaqeayeaudaocajbifqydiob4ibceqt").unwrap();
        assert_eq!(lower, hash);
        assert_eq!(InfoHash::from_base32("AAAA"), Err(IdError::Base32));
        assert_eq!(InfoHash::from_base32(&"1".repeat(32)), Err(IdError::Base32));
    }

    #[test]
    fn peer_id_text_is_readable_and_lossless() {
        let plain = PeerId(*b"-qB5030-h*YWj1hK4p9Q");
        assert_eq!(plain.to_text(), "-qB5030-h*YWj1hK4p9Q");
        let mut raw = *b"-XX0001-............";
        raw[8..].copy_from_slice(&[0xff, 0, 0x80, 0x25, 0x41, 0xc3, 0xa9, 1, 2, 3, 0x7e, 0x7f]);
        let binary = PeerId(raw);
        let text = binary.to_text();
        assert_eq!(text, "-XX0001-%FF%00%80%25A%C3%A9%01%02%03~%7F");
        assert_eq!(PeerId::from_text(&text), Ok(binary));
        assert_eq!(PeerId::from_text("%4"), Err(IdError::Escape));
        assert_eq!(PeerId::from_text("short"), Err(IdError::Length(5)));
    }
}
