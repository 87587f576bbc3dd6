//! The web page: three files embedded in the binary (`web/index.html`, `app.js`, `style.css`),
//! served under `/web/` with headers that keep it to itself. Every path under `/web/` that is not
//! an asset is the page itself, which renders from API v1 by the path (`app.js`).

use crate::api::reply::Reply;

const INDEX: &[u8] = include_bytes!("../../web/index.html");
const APP: &[u8] = include_bytes!("../../web/app.js");
const STYLE: &[u8] = include_bytes!("../../web/style.css");

/// No script but its own file, nothing from elsewhere, never in a frame, no passkey in a
/// `Referer`.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What `/web/<rest>` serves.
pub fn page(rest: &str) -> Reply {
    let (content_type, body, cache) = match rest {
        "app.js" => ("text/javascript; charset=utf-8", APP, "no-cache"),
        "style.css" => ("text/css; charset=utf-8", STYLE, "no-cache"),
        _ => ("text/html; charset=utf-8", INDEX, "no-store"),
    };
    let mut reply = Reply::typed(200, content_type, body.to_vec());
    reply.headers.extend(headers());
    reply.headers.push(("Cache-Control", cache.to_owned()));
    reply
}

/// The headers every page answer carries.
pub fn headers() -> [(&'static str, String); 3] {
    [
        ("Content-Security-Policy", POLICY.to_owned()),
        ("Referrer-Policy", "same-origin".to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
    ]
}

/// A browser opening `/` is sent to the page (303 to `/web/`).
pub fn to_the_page() -> Reply {
    let mut reply = Reply::typed(303, "text/plain; charset=utf-8", b"See /web/\n".to_vec());
    reply.headers.push(("Location", "/web/".to_owned()));
    reply
}

/// Whether a request for `/` is a browser's (it asks for HTML and is no announce).
pub fn is_browser(accept: Option<&str>, query: &str) -> bool {
    accept.is_some_and(|a| a.contains("text/html")) && !query.contains("info_hash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_are_embedded_and_everything_else_is_the_page() {
        assert!(page("app.js").content_type.starts_with("text/javascript"));
        assert!(page("style.css").content_type.starts_with("text/css"));
        let shell = page("torrent");
        assert_eq!(shell.body, INDEX);
        assert!(shell
            .headers
            .iter()
            .any(|(n, v)| *n == "Content-Security-Policy" && v.contains("frame-ancestors 'none'")));
        assert!(is_browser(Some("text/html,application/xhtml+xml"), ""));
        assert!(!is_browser(Some("text/html"), "info_hash=%00"));
        assert!(!is_browser(None, ""));
    }

    #[test]
    fn the_script_never_writes_html() {
        let script = std::str::from_utf8(APP).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!script.contains(sink), "app.js uses {sink}");
        }
    }
}
