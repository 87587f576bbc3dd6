//! HTTP/1.1 on the wire: taking one request out of a connection's input and writing a response.
//! Pure: bytes in, values and bytes out. `httparse` reads the request head.

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// The request headers the tracker reads; others are parsed and dropped.
const KEPT_HEADERS: [&str; 14] = [
    "Host",
    "X-Forwarded-For",
    "Authorization",
    "Accept",
    "Connection",
    "Content-Length",
    "Transfer-Encoding",
    "Expect",
    "Origin",
    "Sec-Fetch-Site",
    "Content-Type",
    "Last-Event-ID",
    "Cookie",
    "X-CSRF-Token",
];

/// One request, owned, as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query exactly as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection stays open after the answer (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    pub http10: bool,
}

impl Request {
    /// The last value of a header, any case of its name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed. `send_continue`: the head is in and the client waits for `100 Continue`.
    /// `needed`: once the head is in, the bytes the whole request takes (head and body).
    Incomplete {
        send_continue: bool,
        needed: Option<usize>,
    },
    /// A whole request, and how many input bytes it took.
    Complete(Request, usize),
    /// Not a request this server will read: answer with this status and message, then close.
    Error(u16, String),
}

/// Reads one request from the start of `input`; bodies longer than `max_body` are refused.
pub fn parse(input: &[u8], max_body: usize) -> Parse {
    parse_with(input, |_| max_body)
}

/// [`parse`] with a body limit that depends on the request: `max_body` is given the head (method,
/// target, headers) once it is in, so a route and its caller can be allowed more.
pub fn parse_with(input: &[u8], max_body: impl FnOnce(&Request) -> usize) -> Parse {
    let (mut request, head_len) = match read_head(input) {
        Ok(head) => head,
        Err(not_yet_or_refused) => return not_yet_or_refused,
    };
    let body_len = match framing(&mut request, max_body) {
        Ok(len) => len,
        Err(refused) => return refused,
    };
    if input.len() < head_len + body_len {
        let expects = request
            .header("Expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        return Parse::Incomplete {
            send_continue: expects && input.len() == head_len,
            needed: Some(head_len + body_len),
        };
    }
    request.body = input[head_len..head_len + body_len].to_vec();
    Parse::Complete(request, head_len + body_len)
}

/// The request line and the headers kept (bodiless), and how many bytes of `input` they took.
fn read_head(input: &[u8]) -> Result<(Request, usize), Parse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Complete(_)) => {
            return Err(Parse::Error(
                431,
                format!("request head over {MAX_HEAD_BYTES} bytes"),
            ))
        }
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD_BYTES => {
            return Err(Parse::Error(
                431,
                format!("request head over {MAX_HEAD_BYTES} bytes"),
            ))
        }
        Ok(httparse::Status::Partial) => {
            return Err(Parse::Incomplete {
                send_continue: false,
                needed: None,
            })
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Parse::Error(
                431,
                format!("more than {MAX_HEADERS} headers"),
            ))
        }
        Err(e) => return Err(Parse::Error(400, format!("malformed request: {e}"))),
    };
    // Only the headers something here reads are kept: fewer allocations per request.
    let headers = request
        .headers
        .iter()
        .filter(|h| KEPT_HEADERS.iter().any(|k| h.name.eq_ignore_ascii_case(k)))
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let http10 = request.version == Some(0);
    let head = Request {
        method: request.method.unwrap_or("").to_owned(),
        target: request.path.unwrap_or("").to_owned(),
        headers,
        body: Vec::new(),
        keep_alive: !http10,
        http10,
    };
    Ok((head, head_len))
}

/// The body's length, and whether the connection stays open after the answer (set on `request`).
fn framing(
    request: &mut Request,
    max_body: impl FnOnce(&Request) -> usize,
) -> Result<usize, Parse> {
    if request.header("Transfer-Encoding").is_some() {
        return Err(Parse::Error(
            411,
            "send the body with Content-Length, not Transfer-Encoding".into(),
        ));
    }
    let body_len = match content_length(&request.headers) {
        Ok(None) => 0,
        Ok(Some(len)) => {
            let max_body = max_body(request);
            if len > max_body {
                return Err(Parse::Error(
                    413,
                    format!("request body is larger than {max_body} bytes"),
                ));
            }
            len
        }
        Err(message) => return Err(Parse::Error(400, message.into())),
    };
    let connection = request
        .header("Connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    request.keep_alive = if request.http10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    Ok(body_len)
}

/// The body length a request declares. RFC 9112 §6.3: a message with several `Content-Length`
/// fields, or one that is not plain digits (`+5`, `5, 5`), has no trustworthy framing; behind a
/// proxy that reads it differently the rest of the body would become a smuggled request.
fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, &'static str> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.trim());
    let Some(text) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Content-Length header");
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("malformed Content-Length");
    }
    // Digits only, so the one failure left is a number too large for memory anyway.
    text.parse::<usize>()
        .map(Some)
        .map_err(|_| "malformed Content-Length")
}

/// What goes back: status, type, optional `Allow`, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub allow: Option<&'a str>,
    /// A download's file name: `Content-Disposition: attachment` with it.
    pub file_name: Option<&'a str>,
    /// Further headers, written as given (names and values the server chose, never a client's).
    pub headers: &'a [(&'static str, String)],
    pub body: &'a [u8],
}

/// Appends the response to `out`; `keep_alive` false adds `Connection: close`. Every answer
/// carries `X-Content-Type-Options: nosniff`, so no browser reads a JSON or bencoded body as a page.
pub fn write_response(out: &mut Vec<u8>, response: &Response, keep_alive: bool, http10: bool) {
    use std::io::Write;
    if response.status == 204 {
        // No body, so neither a length nor a type (RFC 9110 §8.6).
        let _ = write!(
            out,
            "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\n"
        );
    } else {
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        );
    }
    if let Some(allow) = response.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if let Some(name) = response.file_name {
        let _ = write!(
            out,
            "Content-Disposition: {}\r\n",
            content_disposition(name)
        );
    }
    for (name, value) in response.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.body);
}

/// The head of an answer whose body is a stream that lasts as long as the connection
/// (Server-Sent Events): no `Content-Length`, so the body ends when the connection does.
pub fn write_stream_head(
    out: &mut Vec<u8>,
    content_type: &str,
    headers: &[(&'static str, String)],
) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `attachment` with a file name any name can be given safely (RFC 6266): `filename` is an ASCII
/// stand-in (what is not a plain printable character becomes `_`), `filename*` the name itself,
/// UTF-8 and percent-encoded. No quote, backslash, control character or line break gets through.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_name_cannot_break_out_of_its_header() {
        assert_eq!(
            content_disposition("plain.torrent"),
            "attachment; filename=\"plain.torrent\"; filename*=UTF-8''plain.torrent"
        );
        let hostile = "a\"b\\c\r\nSet-Cookie: x=1; データ.torrent";
        let header = content_disposition(hostile);
        assert!(!header.contains(['\r', '\n']), "{header}");
        assert_eq!(header.matches('"').count(), 2, "{header}");
        assert!(header.starts_with("attachment; filename=\"a_b_c__Set-Cookie: x=1; ___.torrent\";"));
        let encoded = header.split("filename*=UTF-8''").nth(1).unwrap();
        let decoded = crate::protocol::percent_decode(encoded.as_bytes()).into_owned();
        assert_eq!(String::from_utf8(decoded).unwrap(), hostile);
    }

    fn complete(input: &[u8]) -> (Request, usize) {
        match parse(input, 64) {
            Parse::Complete(request, used) => (request, used),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_is_read_with_its_headers() {
        let input = b"GET /announce?info_hash=%00 HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nrest";
        let (request, used) = complete(input);
        assert_eq!(
            used,
            input.len() - 4,
            "pipelined bytes stay for the next request"
        );
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("GET", "/announce?info_hash=%00")
        );
        assert_eq!(request.header("x-forwarded-for"), Some("1.2.3.4"));
        assert!(request.keep_alive && !request.http10);
    }

    #[test]
    fn bodies_wait_for_content_length() {
        let head = b"POST /users HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            parse(head, 64),
            Parse::Incomplete {
                send_continue: false,
                needed: Some(head.len() + 5)
            }
        );
        let mut full = head.to_vec();
        full.extend_from_slice(b"{\"a\"}");
        assert_eq!(complete(&full).0.body, b"{\"a\"}");
        let expecting =
            b"POST /users HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(
            parse(expecting, 64),
            Parse::Incomplete {
                send_continue: true,
                needed: Some(expecting.len() + 5)
            }
        );
    }

    #[test]
    fn connection_rules_follow_the_version() {
        assert!(
            !complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn bad_input_gets_a_status_to_close_with() {
        let status = |input: &[u8]| match parse(input, 64) {
            Parse::Error(status, _) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 65\r\n\r\n"), 413);
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), 400);
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}"),
            400,
            "conflicting lengths"
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}"),
            400,
            "a repeated length, even an equal one"
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"),
            411
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(status(b"\x01\x02 nonsense\r\n\r\n"), 400);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(status(long.as_bytes()), 431);
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let mut out = Vec::new();
        let response = Response {
            file_name: None,
            status: 405,
            content_type: "application/json",
            allow: Some("GET"),
            headers: &[("Vary", "Origin".to_owned())],
            body: b"{}",
        };
        write_response(&mut out, &response, false, false);
        assert_eq!(
            out,
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Content-Type-Options: nosniff\r\nAllow: GET\r\nVary: Origin\r\nConnection: close\r\n\r\n{}"
        );
    }
}
