//! `multipart/form-data` bodies (RFC 7578), as an HTML form with a file input sends them. Pure:
//! the body and its Content-Type in, the parts out, each borrowing from the body.

/// One part of a form: its field name, the file name if it is a file, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub file_name: Option<String>,
    pub body: &'a [u8],
}

/// The boundary of a `multipart/form-data` Content-Type, or `None` for any other type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| (1..=70).contains(&b.len()))
    })
}

/// The parts of `body`, or why it is not a well-formed form.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = find(body, delimiter, 0).ok_or("the body has no part boundary")?;
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at = skip_line_end(body, at).ok_or("a boundary line is malformed")?;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a part has no end of headers")?;
        let head = std::str::from_utf8(&body[at..head_end])
            .map_err(|_| "a part's headers are not UTF-8")?;
        let start = head_end + 4;
        let mut next_delimiter = b"\r\n".to_vec();
        next_delimiter.extend_from_slice(delimiter);
        let end = find(body, &next_delimiter, start).ok_or("a part has no closing boundary")?;
        let (name, file_name) = disposition(head)?;
        parts.push(Part {
            name,
            file_name,
            body: &body[start..end],
        });
        at = end + 2;
        if parts.len() > 64 {
            return Err("more than 64 parts".into());
        }
    }
}

/// The field name and file name from a part's `Content-Disposition: form-data; name=…`.
fn disposition(head: &str) -> Result<(String, Option<String>), String> {
    let line = head
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        })
        .ok_or("a part has no Content-Disposition")?;
    let mut name = None;
    let mut file_name = None;
    for param in line.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            _ => {}
        }
    }
    Ok((name.ok_or("a part has no field name")?, file_name))
}

fn skip_line_end(body: &[u8], at: usize) -> Option<usize> {
    // Transport padding (spaces, tabs) may follow a boundary before its line end.
    let mut at = at;
    while matches!(body.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    body[at..].starts_with(b"\r\n").then_some(at + 2)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nLive \xc3\xa9t\xc3\xa9\r\n--XyZ\r\nContent-Disposition: form-data; name=\"torrent\"; filename=\"a.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\nd4:infod\r\n--e\r\n--XyZ--\r\n";

    #[test]
    fn a_browser_form_is_read_part_by_part() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        assert_eq!(boundary("application/x-bittorrent"), None);
        let parts = parse(FORM, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "title");
        assert_eq!(parts[0].body, "Live été".as_bytes());
        assert_eq!(parts[1].file_name.as_deref(), Some("a.torrent"));
        // A line break and dashes inside a file are its bytes, not a boundary.
        assert_eq!(parts[1].body, b"d4:infod\r\n--e");
    }

    #[test]
    fn broken_forms_are_errors_not_panics() {
        assert!(parse(b"", "XyZ").is_err());
        assert!(parse(b"--XyZ", "XyZ").is_err());
        assert!(parse(b"--XyZ\r\n\r\n\r\nbody", "XyZ").is_err());
        assert!(parse(
            b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
            "XyZ"
        )
        .is_err());
        for cut in 0..FORM.len() - 4 {
            let _ = parse(&FORM[..cut], "XyZ");
        }
    }
}
