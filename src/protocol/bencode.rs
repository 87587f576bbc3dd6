//! Bencoding (BEP 3): a writer for the tracker's answers and a decoder that keeps each value's
//! exact bytes, so an info hash is computed over the file's own `info` dictionary. Pure.

/// A minimal bencode writer; callers write dictionary keys in sorted order.
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn with_capacity(bytes: usize) -> Writer {
        Writer(Vec::with_capacity(bytes))
    }
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.0.extend_from_slice(value.len().to_string().as_bytes());
        self.0.push(b':');
        self.0.extend_from_slice(value);
        self
    }
    pub fn int(&mut self, value: impl Into<i128>) -> &mut Self {
        self.0.push(b'i');
        self.0
            .extend_from_slice(value.into().to_string().as_bytes());
        self.0.push(b'e');
        self
    }
    /// A structural token: `d`, `l` or `e`.
    pub fn raw(&mut self, token: &[u8]) -> &mut Self {
        self.0.extend_from_slice(token);
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// A decoded value and the exact input bytes it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    pub raw: &'a [u8],
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Entries in file order; keys need not be sorted (real files are not always canonical).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The first entry `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match &self.kind {
            Kind::Dict(entries) => entries
                .iter()
                .find(|(k, _)| *k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match &self.kind {
            Kind::Dict(entries) => Some(entries),
            _ => None,
        }
    }
}

/// Where and why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: &'static str,
}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let (value, end) = decode_prefix(input)?;
    if end != input.len() {
        return Err(DecodeError {
            offset: end,
            what: "trailing data after the end",
        });
    }
    Ok(value)
}

/// Decodes one value at the start of the input; also returns where it ends.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    let mut decoder = Decoder { input, at: 0 };
    let value = decoder.value(0)?;
    Ok((value, decoder.at))
}

struct Decoder<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.at,
            what,
        }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.at)
            .copied()
            .ok_or_else(|| self.error("unexpected end of data"))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let start = self.at;
        let kind = match self.peek()? {
            b'i' => {
                self.at += 1;
                Kind::Int(self.integer(b'e')?)
            }
            b'0'..=b'9' => Kind::Bytes(self.string()?),
            b'l' => {
                self.at += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.at += 1;
                Kind::List(items)
            }
            b'd' => {
                self.at += 1;
                let mut entries = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(self.error("dictionary key is not a byte string"));
                    }
                    let key = self.string()?;
                    entries.push((key, self.value(depth + 1)?));
                }
                self.at += 1;
                Kind::Dict(entries)
            }
            _ => return Err(self.error("not a bencoded value")),
        };
        Ok(Value {
            raw: &self.input[start..self.at],
            kind,
        })
    }

    /// Digits up to `end` (consumed): an optional `-`, within i64. Leading zeros, which BEP 3
    /// forbids, are read anyway, as libtorrent does: files in the wild have them.
    fn integer(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.at;
        let rest = &self.input[start..];
        let len = rest.iter().position(|&b| b == end).ok_or(DecodeError {
            offset: self.input.len(),
            what: "unexpected end of data",
        })?;
        let text = &rest[..len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.error("malformed integer"));
        }
        let value = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.error("integer out of range"))?;
        self.at += len + 1;
        Ok(value)
    }

    fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        let length_at = self.at;
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError {
            offset: length_at,
            what: "negative length",
        })?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(DecodeError {
                offset: length_at,
                what: "byte string runs past the end of data",
            })?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_exact_bytes() {
        let input = b"d4:infod1:zi1e1:ai2ee3:numi-7ee";
        let value = decode(input).unwrap();
        let info = value.get("info").unwrap();
        assert_eq!(
            info.raw, b"d1:zi1e1:ai2ee",
            "unsorted keys stay as they were"
        );
        assert_eq!(info.get("a").and_then(Value::as_int), Some(2));
        assert_eq!(value.get("num").and_then(Value::as_int), Some(-7));
    }

    #[test]
    fn lists_and_strings_decode() {
        let value = decode(b"l0:3:abci0ee").unwrap();
        let items = value.as_list().unwrap();
        assert_eq!(items[0].as_bytes(), Some(&b""[..]));
        assert_eq!(items[1].as_bytes(), Some(&b"abc"[..]));
        assert_eq!(items[2].as_int(), Some(0));
    }

    #[test]
    fn errors_say_what_and_where() {
        for (input, offset, what) in [
            (&b""[..], 0, "unexpected end of data"),
            (b"d4:info", 7, "unexpected end of data"),
            (b"d4:infoi1e", 10, "unexpected end of data"),
            (b"5:abc", 0, "byte string runs past the end of data"),
            (b"i-e", 1, "malformed integer"),
            (b"i--1e", 1, "malformed integer"),
            (b"i1x2e", 1, "malformed integer"),
            (b"i99999999999999999999e", 1, "integer out of range"),
            (b"di1ei2ee", 1, "dictionary key is not a byte string"),
            (b"x", 0, "not a bencoded value"),
            (b"i1ei2e", 3, "trailing data after the end"),
        ] {
            assert_eq!(
                decode(input),
                Err(DecodeError { offset, what }),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn leading_zeros_are_read_as_real_files_have_them() {
        assert_eq!(decode(b"i007e").unwrap().as_int(), Some(7));
        assert_eq!(decode(b"03:abc").unwrap().as_bytes(), Some(&b"abc"[..]));
    }

    #[test]
    fn a_prefix_decodes_and_says_where_it_ends() {
        let (value, end) = decode_prefix(b"i5e\n").unwrap();
        assert_eq!((value.as_int(), end), (Some(5), 3));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "l".repeat(100_000), "e".repeat(100_000));
        assert_eq!(
            decode(deep.as_bytes()).unwrap_err().what,
            "nesting too deep"
        );
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate_or_panic() {
        assert!(decode(b"99999999999999999999:x").is_err());
        assert!(decode(b"18446744073709551615:x").is_err());
    }

    #[test]
    fn writer_output_decodes_back() {
        let mut w = Writer::with_capacity(32);
        w.raw(b"d")
            .bytes(b"a")
            .int(-5)
            .bytes(b"b")
            .raw(b"l")
            .bytes(b"xy")
            .raw(b"ee");
        let bytes = w.finish();
        let value = decode(&bytes).unwrap();
        assert_eq!(value.get("a").and_then(Value::as_int), Some(-5));
        assert_eq!(
            value.get("b").and_then(Value::as_list).map(<[_]>::len),
            Some(1)
        );
    }
}
