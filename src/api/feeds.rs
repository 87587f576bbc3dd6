//! Feeds for the tools people already run: RSS 2.0 per user (`/<passkey>/rss`, whose enclosures
//! RSS downloaders fetch) and Torznab (`/api/torznab`, the indexer API of Prowlarr, Jackett,
//! Sonarr and Radarr). Both are the index's listing ([`catalog`]) written as XML by `quick-xml`,
//! which escapes every text and attribute; characters XML cannot carry at all are replaced.

use std::io;
use std::time::{Duration, UNIX_EPOCH};

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::api::admin::AnnounceBase;
use crate::api::app::App;
use crate::api::catalog::{self, Found, Query, Sort};
use crate::api::index::{Links, TORRENT_TYPE};
use crate::api::reply::Reply;
use crate::error::ApiError;
use crate::protocol;
use crate::store::info::CATEGORIES;
use crate::store::users::User;

pub const RSS_TYPE: &str = "application/rss+xml; charset=utf-8";
pub const XML_TYPE: &str = "application/xml; charset=utf-8";
const TORZNAB_NS: &str = "http://torznab.com/schemas/2015/feed";

/// `GET /<passkey>/rss?q=&tag=&category=`: the newest torrents (or those matching), each with its
/// passkey download link as the enclosure.
pub fn rss(app: &App, passkey: &str, query: &str, base: &AnnounceBase, now: u64) -> Reply {
    let user = match app.users.resolve(Some(passkey), now) {
        Ok(id) => app.users.get(id),
        Err(e) if app.config.require_passkey => {
            return Reply::error(ApiError::Forbidden(format!(
                "{e}: this feed needs your passkey"
            )))
        }
        // An open tracker: the plain links.
        Err(_) => None,
    };
    let mut wanted = match Query::parse(query) {
        Ok(q) => q,
        Err(e) => return Reply::error(e),
    };
    wanted.sort = Sort::Added;
    wanted.descending = true;
    let links = Links {
        base,
        passkey: user.as_ref().map(|u| u.passkey.as_str()),
    };
    let page = catalog::search(&app.swarm, &wanted);
    let title = match &user {
        Some(user) => format!("tinytracker: new torrents for {}", user.name),
        None => "tinytracker: new torrents".to_owned(),
    };
    let self_url = format!("{}/{}/rss", base.url, links.passkey.unwrap_or("-"));
    match write_feed(&title, &base.url, &self_url, &page.torrents, &links, false) {
        Ok(body) => Reply::typed(200, RSS_TYPE, body),
        Err(e) => Reply::error(ApiError::Internal(format!("writing the feed failed: {e}"))),
    }
}

/// A Torznab error: its code and description, as Torznab clients read them.
fn torznab_error(status: u16, code: u16, description: &str) -> Reply {
    let mut writer = Writer::new(Vec::new());
    let written = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| {
            writer
                .create_element("error")
                .with_attribute(("code", code.to_string().as_str()))
                .with_attribute(("description", xml_safe(description).as_str()))
                .write_empty()
                .map(|_| ())
        });
    match written {
        Ok(()) => Reply::typed(status, XML_TYPE, writer.into_inner()),
        Err(e) => Reply::error(ApiError::Internal(e.to_string())),
    }
}

/// `GET /api/torznab?t=caps|search|tvsearch|movie|music|book&q=…&cat=…&apikey=…`.
pub fn torznab(app: &App, query: &str, base: &AnnounceBase, now: u64) -> Reply {
    let param = |name: &str| {
        protocol::query_value(query, name).map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    let function = param("t").unwrap_or_default();
    if function == "caps" {
        return match caps() {
            Ok(body) => Reply::typed(200, XML_TYPE, body),
            Err(e) => Reply::error(ApiError::Internal(e.to_string())),
        };
    }
    if !matches!(
        function.as_str(),
        "search" | "tvsearch" | "movie" | "music" | "book"
    ) {
        return torznab_error(
            400,
            202,
            "no such function: t is one of caps, search, tvsearch, movie, music, book",
        );
    }
    // The API key: the user's passkey or API token.
    let user: Option<User> = match param("apikey").filter(|k| !k.is_empty()) {
        Some(key) => match app.users.by_token(&key).or_else(|| {
            let id = app.users.resolve(Some(&key), now).ok()?;
            app.users.get(id)
        }) {
            Some(user) => Some(user),
            None => {
                return torznab_error(
                    401,
                    100,
                    "incorrect user credentials: apikey is your passkey or API token",
                )
            }
        },
        None if app.config.require_passkey => {
            return torznab_error(401, 100, "missing apikey: your passkey or API token")
        }
        None => None,
    };
    let mut words = param("q").unwrap_or_default();
    // Sonarr asks for an episode as season and ep: releases name them S01E02.
    if function == "tvsearch" {
        let number = |name| param(name).and_then(|v| v.trim().parse::<u32>().ok());
        match (number("season"), number("ep")) {
            (Some(s), Some(e)) => words.push_str(&format!(" s{s:02}e{e:02}")),
            (Some(s), None) => words.push_str(&format!(" s{s:02}")),
            _ => {}
        }
    }
    let mut own = format!("q={}", form_encode(&words));
    for name in ["limit", "offset"] {
        if let Some(value) = param(name) {
            own.push_str(&format!("&{name}={}", form_encode(&value)));
        }
    }
    let mut wanted = match Query::parse(&own) {
        Ok(parsed) => parsed,
        Err(e) => return torznab_error(400, 201, &e.to_string()),
    };
    wanted.categories = categories(param("cat").as_deref(), &function);
    let page = catalog::search(&app.swarm, &wanted);
    let links = Links {
        base,
        passkey: user.as_ref().map(|u| u.passkey.as_str()),
    };
    let self_url = format!("{}/api/torznab", base.url);
    match write_feed(
        "tinytracker",
        &base.url,
        &self_url,
        &page.torrents,
        &links,
        true,
    ) {
        Ok(body) => Reply::typed(200, RSS_TYPE, body),
        Err(e) => Reply::error(ApiError::Internal(format!("writing the feed failed: {e}"))),
    }
}

/// The category names that Torznab category numbers (`cat=2000,5030`) stand for: a number
/// matches the category of its thousand. Without `cat`, the search function's own category.
fn categories(cat: Option<&str>, function: &str) -> Vec<String> {
    let numbers: Vec<u32> = cat
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let numbers = if numbers.is_empty() {
        match function {
            "tvsearch" => vec![5000],
            "movie" => vec![2000],
            "music" => vec![3000],
            "book" => vec![7000],
            _ => return Vec::new(),
        }
    } else {
        numbers
    };
    let mut names: Vec<String> = Vec::new();
    for (name, code) in CATEGORIES {
        if numbers.iter().any(|n| n / 1000 == code / 1000) {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        // Numbers that name none of the categories: nothing matches.
        names.push("\u{0}none".to_owned());
    }
    names
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The Torznab category number of a torrent.
fn category_code(category: &str) -> u32 {
    CATEGORIES
        .iter()
        .find(|(name, _)| *name == category)
        .map_or(8000, |(_, code)| *code)
}

/// The Torznab capabilities document.
fn caps() -> io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer.create_element("caps").write_inner_content(|w| {
        w.create_element("server")
            .with_attribute(("version", env!("CARGO_PKG_VERSION")))
            .with_attribute(("title", "tinytracker"))
            .write_empty()?;
        w.create_element("limits")
            .with_attribute(("default", catalog::PER_PAGE.to_string().as_str()))
            .with_attribute(("max", catalog::MAX_PER_PAGE.to_string().as_str()))
            .write_empty()?;
        w.create_element("searching").write_inner_content(|w| {
            for (element, params) in [
                ("search", "q"),
                ("tv-search", "q,season,ep"),
                ("movie-search", "q"),
                ("music-search", "q"),
                ("book-search", "q"),
            ] {
                w.create_element(element)
                    .with_attribute(("available", "yes"))
                    .with_attribute(("supportedParams", params))
                    .write_empty()?;
            }
            Ok(())
        })?;
        w.create_element("categories").write_inner_content(|w| {
            for (name, code) in CATEGORIES {
                if name == "other" {
                    continue;
                }
                let title = match name {
                    "tv" => "TV".to_owned(),
                    "software" => "PC".to_owned(),
                    "games" => "Console".to_owned(),
                    "data" => "Other".to_owned(),
                    other => format!("{}{}", other[..1].to_uppercase(), &other[1..]),
                };
                w.create_element("category")
                    .with_attribute(("id", code.to_string().as_str()))
                    .with_attribute(("name", title.as_str()))
                    .write_empty()?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(writer.into_inner())
}

/// An RSS 2.0 document of `torrents`; with `torznab`, each item also carries the Torznab
/// attributes (size, seeders, peers, infohash, volume factors).
fn write_feed(
    title: &str,
    site: &str,
    self_url: &str,
    torrents: &[Found],
    links: &Links,
    torznab: bool,
) -> io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut rss = writer
        .create_element("rss")
        .with_attribute(("version", "2.0"))
        .with_attribute(("xmlns:atom", "http://www.w3.org/2005/Atom"));
    if torznab {
        rss = rss.with_attribute(("xmlns:torznab", TORZNAB_NS));
    }
    rss.write_inner_content(|w| {
        w.create_element("channel").write_inner_content(|w| {
            w.create_element("atom:link")
                .with_attribute(("href", xml_safe(self_url).as_str()))
                .with_attribute(("rel", "self"))
                .with_attribute(("type", "application/rss+xml"))
                .write_empty()?;
            text(w, "title", title)?;
            text(w, "link", site)?;
            text(w, "description", "Torrents on this tracker")?;
            for found in torrents {
                item(w, found, links, torznab)?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(writer.into_inner())
}

fn item(w: &mut Writer<Vec<u8>>, found: &Found, links: &Links, torznab: bool) -> io::Result<()> {
    let Found { hash, info, counts } = found;
    let magnet = links.magnet(found);
    let download = info.stored.then(|| links.download(hash));
    let published = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(info.added_unix()));
    let mut summary = Vec::new();
    if !info.artist.is_empty() {
        summary.push(info.artist.clone());
    }
    summary.push(format!("{} bytes", info.size));
    if !info.tags.is_empty() {
        summary.push(info.tags.join(", "));
    }
    w.create_element("item").write_inner_content(|w| {
        text(w, "title", info.display_title())?;
        w.create_element("guid")
            .with_attribute(("isPermaLink", "false"))
            .write_text_content(BytesText::new(&hash.to_hex()))?;
        text(w, "link", download.as_deref().unwrap_or(&magnet))?;
        text(w, "comments", &links.page(hash))?;
        text(w, "pubDate", &published)?;
        text(w, "description", &summary.join(" · "))?;
        if torznab {
            text(w, "size", &info.size.to_string())?;
            text(w, "category", &category_code(&info.category).to_string())?;
        } else {
            for tag in &info.tags {
                text(w, "category", tag)?;
            }
        }
        if let Some(url) = &download {
            w.create_element("enclosure")
                .with_attribute(("url", xml_safe(url).as_str()))
                .with_attribute(("length", info.size.to_string().as_str()))
                .with_attribute(("type", TORRENT_TYPE))
                .write_empty()?;
        }
        if torznab {
            let attrs = [
                ("category", category_code(&info.category).to_string()),
                ("size", info.size.to_string()),
                ("seeders", counts.complete.to_string()),
                ("peers", (counts.complete + counts.incomplete).to_string()),
                ("leechers", counts.incomplete.to_string()),
                ("grabs", counts.downloaded.to_string()),
                ("infohash", hash.to_hex()),
                ("magneturl", magnet.clone()),
                ("downloadvolumefactor", "1".into()),
                ("uploadvolumefactor", "1".into()),
            ];
            for (name, value) in attrs {
                w.create_element("torznab:attr")
                    .with_attribute(("name", name))
                    .with_attribute(("value", xml_safe(&value).as_str()))
                    .write_empty()?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// `<name>text</name>`, the text escaped and made XML-safe.
fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(&xml_safe(value)))?;
    Ok(())
}

/// `text` with the characters XML 1.0 cannot carry (most control characters) replaced by U+FFFD:
/// a torrent's name is whatever its maker put in it.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torznab_numbers_map_to_categories() {
        assert_eq!(categories(Some("5030,2000"), "search"), ["movies", "tv"]);
        assert_eq!(categories(None, "tvsearch"), ["tv"]);
        assert!(categories(None, "search").is_empty());
        assert_eq!(categories(Some("9999"), "search"), ["\u{0}none"]);
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(xml_safe("a\u{1}b\tc"), "a\u{FFFD}b\tc");
        let caps = String::from_utf8(caps().unwrap()).unwrap();
        assert!(caps.contains("<tv-search available=\"yes\" supportedParams=\"q,season,ep\"/>"));
    }
}
