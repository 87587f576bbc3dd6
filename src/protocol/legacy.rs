//! The legacy Python tracker's textual forms of 20-byte ids (info hashes, peer ids): producing them
//! (`werkzeug_key`, `custom_urlencode`) and converting them back to raw bytes (`*_candidates`).
//! Pure functions, no I/O. See `legacy-tracker.md` §7 for the two forms and why decoding can be ambiguous.

const ID_LEN: usize = 20;

/// W-form: what the Python original used as state-file keys (Werkzeug's url_quote error handler).
pub fn werkzeug_key(raw: &[u8]) -> String {
    let mut key = String::with_capacity(raw.len() * 3);
    for chunk in raw.utf8_chunks() {
        key.push_str(chunk.valid());
        for &byte in chunk.invalid() {
            push_escape(&mut key, byte);
        }
    }
    key
}

/// C-form: what the legacy add_torrent_info.py client sends (0x20..=0x7E raw, everything else %XX uppercase).
pub fn custom_urlencode(raw: &[u8]) -> String {
    let mut text = String::with_capacity(raw.len() * 3);
    for &byte in raw {
        if is_printable(byte) {
            text.push(char::from(byte));
        } else {
            push_escape(&mut text, byte);
        }
    }
    text
}

/// Every 20-byte value whose W-form is exactly `key` (the candidate search of §7.1 with the round-trip check).
/// Empty = not a 20-byte id; more than one = ambiguous. Sorted ascending, no duplicates.
pub fn werkzeug_candidates(key: &str) -> Vec<[u8; 20]> {
    // Only bytes >= 0x80 can be invalid UTF-8, so only they are ever escaped; any character can be literal.
    search(key, |byte| byte >= 0x80, |_| true, werkzeug_key)
}

/// Every 20-byte value whose C-form is exactly `s` (§7.2: escape = '%' then [01][0-9A-F] | 7F | [89A-F][0-9A-F], uppercase;
/// literal = one char 0x20..=0x7E; round-trip check with custom_urlencode). Sorted ascending, no duplicates.
pub fn cform_candidates(s: &str) -> Vec<[u8; 20]> {
    search(
        s,
        |byte| !is_printable(byte),
        |c| (' '..='~').contains(&c),
        custom_urlencode,
    )
}

fn is_printable(byte: u8) -> bool {
    (0x20..=0x7E).contains(&byte)
}

fn push_escape(text: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    text.push('%');
    text.push(char::from(HEX[usize::from(byte >> 4)]));
    text.push(char::from(HEX[usize::from(byte & 0x0F)]));
}

/// One way to read the text at a position: the bytes it stands for and where the next reading starts.
struct Reading {
    bytes: Vec<u8>,
    next: usize,
}

fn search(
    text: &str,
    escapable: fn(u8) -> bool,
    literal_ok: fn(char) -> bool,
    encode: fn(&[u8]) -> String,
) -> Vec<[u8; ID_LEN]> {
    // An escape turns 3 text bytes into 1 byte and a literal keeps its UTF-8 bytes,
    // so 20 bytes can only come from 20..=60 bytes of text.
    if !(ID_LEN..=3 * ID_LEN).contains(&text.len()) {
        return Vec::new();
    }
    let readings: Vec<Vec<Reading>> = (0..text.len())
        .map(|pos| readings_at(text, pos, escapable, literal_ok))
        .collect();
    // The memo: `fits[pos][need]` says the text from `pos` on can be read as exactly `need` bytes.
    // The walk only enters states that fit, so every branch it takes ends in a 20-byte value.
    let mut fits = vec![[false; ID_LEN + 1]; text.len() + 1];
    fits[text.len()][0] = true;
    for pos in (0..text.len()).rev() {
        for need in 0..=ID_LEN {
            fits[pos][need] = readings[pos]
                .iter()
                .any(|r| r.bytes.len() <= need && fits[r.next][need - r.bytes.len()]);
        }
    }
    let (mut bytes, mut found) = (Vec::with_capacity(ID_LEN), Vec::new());
    walk(&readings, &fits, 0, &mut bytes, &mut found);
    // The round-trip check: a reading only counts if encoding it gives back the exact text.
    found.retain(|candidate| encode(candidate) == text);
    found.sort_unstable();
    found.dedup();
    found
}

/// Every way to read the text from `pos` to its end that completes `bytes` to exactly 20 bytes.
fn walk(
    readings: &[Vec<Reading>],
    fits: &[[bool; ID_LEN + 1]],
    pos: usize,
    bytes: &mut Vec<u8>,
    found: &mut Vec<[u8; ID_LEN]>,
) {
    if pos == readings.len() {
        if let Ok(id) = <[u8; ID_LEN]>::try_from(bytes.as_slice()) {
            found.push(id);
        }
        return;
    }
    let need = ID_LEN.saturating_sub(bytes.len());
    for reading in &readings[pos] {
        let len = reading.bytes.len();
        if len <= need && fits[reading.next][need - len] {
            bytes.extend_from_slice(&reading.bytes);
            walk(readings, fits, reading.next, bytes, found);
            bytes.truncate(bytes.len() - len);
        }
    }
}

/// The ways to read the text at byte offset `pos`: an escape, a literal character, both, or neither.
fn readings_at(
    text: &str,
    pos: usize,
    escapable: fn(u8) -> bool,
    literal_ok: fn(char) -> bool,
) -> Vec<Reading> {
    let mut readings = Vec::new();
    let Some(rest) = text.get(pos..) else {
        return readings; // inside a multi-byte character
    };
    if let Some(byte) = escaped_byte(rest).filter(|&byte| escapable(byte)) {
        readings.push(Reading {
            bytes: vec![byte],
            next: pos + 3,
        });
    }
    if let Some(c) = rest.chars().next().filter(|&c| literal_ok(c)) {
        let bytes = c.to_string().into_bytes();
        readings.push(Reading {
            next: pos + bytes.len(),
            bytes,
        });
    }
    readings
}

/// The byte spelled by a leading `%XX` with uppercase hex digits (both legacy encoders write uppercase).
fn escaped_byte(rest: &str) -> Option<u8> {
    match rest.as_bytes() {
        [b'%', high, low, ..] => Some((upper_hex(*high)? << 4) | upper_hex(*low)?),
        _ => None,
    }
}

fn upper_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const H1: &str = "00254180ffc3a92538417f0e2b20263de282ac99";
    const H1_KEY: &str = "\u{0}%A%80%FF\u{e9}%8A\u{7f}\u{e}+ &=\u{20ac}%99";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(hex: &str) -> Vec<u8> {
        let digit = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("test hex");
        (0..hex.len()).step_by(2).map(digit).collect()
    }

    fn hexes(candidates: &[[u8; 20]]) -> Vec<String> {
        candidates.iter().map(|c| hex(c)).collect()
    }

    /// Xorshift values, half of the bytes drawn from a few that make UTF-8 sequences, `%` and hex digits.
    fn random_ids(count: usize) -> Vec<[u8; 20]> {
        const TRICKY: &[u8] = b"\x25\x38\x41\x46\x30\xc3\xa9\xe2\x82\xac\xf0\x9f\x7f\x00\x80\xff";
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let mut id = [0u8; 20];
                for byte in &mut id {
                    let r = next();
                    *byte = match r & 1 {
                        0 => TRICKY[(r >> 8) as usize % TRICKY.len()],
                        _ => (r >> 24) as u8,
                    };
                }
                id
            })
            .collect()
    }

    #[test]
    fn werkzeug_candidates_of_a_key_include_the_id_it_came_from() {
        for id in random_ids(500) {
            assert!(
                werkzeug_candidates(&werkzeug_key(&id)).contains(&id),
                "{}",
                hex(&id)
            );
        }
    }

    #[test]
    fn cform_candidates_of_a_cform_include_the_id_it_came_from() {
        for id in random_ids(500) {
            assert!(
                cform_candidates(&custom_urlencode(&id)).contains(&id),
                "{}",
                hex(&id)
            );
        }
    }

    #[test]
    fn reference_h1_has_the_key_shown_in_the_state_file() {
        assert_eq!(werkzeug_key(&unhex(H1)), H1_KEY);
    }

    #[test]
    fn reference_binary_peer_id_p2_has_the_text_shown_in_the_state_file() {
        let p2 = format!("{}ff00802541c3a90102037e7f", hex(b"-XX0001-"));
        let text = "-XX0001-%FF\u{0}%80%A\u{e9}\u{1}\u{2}\u{3}~\u{7f}";
        assert_eq!(werkzeug_key(&unhex(&p2)), text);
        assert_eq!(hexes(&werkzeug_candidates(text)), [p2]);
    }

    #[test]
    fn ambiguous_key_from_fixture_has_four_candidates() {
        let expected = [
            "002541253830ffc3a98a7f0e2b20263de282ac99",
            "00254180254646c3a98a7f0e2b20263de282ac99",
            H1, // the hash really announced
            "00254180ffc3a98a7f0e2b20263de282ac253939",
        ];
        assert_eq!(hexes(&werkzeug_candidates(H1_KEY)), expected);
    }

    #[test]
    fn unambiguous_fixture_keys_decode_to_the_listed_hash() {
        let rows = [
            (
                "%E3K[%89{%CA\u{1a}%C4l%A7%99,5%8A%C8\u{7f}\u{1e}\u{e}%AD%DB",
                "e34b5b897bca1ac46ca7992c358ac87f1e0eaddb",
            ),
            (
                "AAAAAAAAAAAAAAAAAAAA",
                "4141414141414141414141414141414141414141",
            ),
            (
                "%D6>%A5!\u{13}%B7,_%C95,%C3\u{13}\u{6e4}%80%B6%BA(%A1",
                "d63ea52113b72c5fc9352cc313dba480b6ba28a1",
            ),
            (
                "[%C8~%DA\u{53b}%99#{B\u{7}\u{3}E%E07%96suXE",
                "5bc87edad4bb99237b42070345e0379673755845",
            ),
            (
                "%83%AD\u{4}M%A4\n0\u{11}p%%A8%8Bo%B8J\u{780}%A9%97%BD",
                "83ad044da40a30117025a88b6fb84ade80a997bd",
            ),
            (
                "%D7NaI%AF%94{%9E\u{f}\u{12f}X%C8\u{0}\u{74d}4%D5n'",
                "d74e6149af947b9e0fc4af58c800dd8d34d56e27",
            ),
        ];
        for (key, expected) in rows {
            assert_eq!(hexes(&werkzeug_candidates(key)), [expected], "{key:?}");
        }
    }

    #[test]
    fn invalid_fixture_keys_have_no_candidates() {
        let twenty_one_bytes = format!("{H1_KEY}\u{1}");
        let keys = [
            "abc",
            "a b+c",
            "%ZZ%4",
            "raw\u{c3}\u{a9}utf8",
            "raw\u{ff}byte",
            &twenty_one_bytes,
        ];
        for key in keys {
            assert_eq!(werkzeug_candidates(key), Vec::<[u8; 20]>::new(), "{key:?}");
        }
    }

    #[test]
    fn literal_percent_before_high_hex_pair_makes_a_key_ambiguous() {
        let key = "%8A%8BAAAAAAAAAAAAAAAA";
        let literal_first = format!("2538418b{}", "41".repeat(16)); // `%8A` then the invalid byte 8B
        let escape_first = format!("8a253842{}", "41".repeat(16)); // the invalid byte 8A then `%8B`
        assert_eq!(werkzeug_key(&unhex(&literal_first)), key);
        assert_eq!(werkzeug_key(&unhex(&escape_first)), key);
        assert_eq!(
            hexes(&werkzeug_candidates(key)),
            [literal_first, escape_first]
        );
    }

    #[test]
    fn cform_of_an_all_printable_hash_is_the_hash_itself() {
        let id = *b"abcdefghij%8A+ &=~0!";
        assert_eq!(custom_urlencode(&id), "abcdefghij%8A+ &=~0!");
        assert!(cform_candidates("abcdefghij%8A+ &=~0!").contains(&id));
        assert_eq!(
            hexes(&cform_candidates("0123456789abcdefghij")),
            [hex(b"0123456789abcdefghij")]
        );
    }

    #[test]
    fn cform_escape_of_a_printable_byte_or_in_lowercase_is_read_literally() {
        let text = "%41%8aAAAAAAAAAAAAAA";
        assert_eq!(hexes(&cform_candidates(text)), [hex(text.as_bytes())]);
        assert_eq!(custom_urlencode(&[0x00, 0x1f, 0x7f, 0x80]), "%00%1F%7F%80");
    }

    #[test]
    fn twelve_escapes_in_a_row_give_the_worst_case_of_495_candidates() {
        // 8 read as escapes and 4 as literal `%8A` make 20 bytes: C(12, 4) = 495 readings, all valid.
        // No text of 20..=60 bytes has more: with s escapes, e of them taken, len = 20 + 2e and s <= len / 3.
        let text = "%8A".repeat(12);
        assert_eq!(werkzeug_candidates(&text).len(), 495);
        assert_eq!(cform_candidates(&text).len(), 495);
    }

    #[test]
    fn adversarial_long_inputs_return_quickly_and_empty() {
        let started = Instant::now();
        let inputs = [
            "%8A".repeat(34_000),
            "\u{e9}\u{20ac}\u{1f600}".repeat(10_000),
            "\u{0}\u{1}\u{7f}%".repeat(25_000),
            "A".repeat(100_000),
        ];
        for text in &inputs {
            assert!(werkzeug_candidates(text).is_empty());
            assert!(cform_candidates(text).is_empty());
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
