//! RSS and Torznab against the real binary, read with an XML parser (quick-xml) and, for RSS,
//! with feedparser, the library RSS readers are built on.

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use crate::common::*;
use crate::e2e::{python_stdout, require_python, script};

/// One XML element: its name, attributes and text, in document order.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every element of `xml` (which must be well-formed), texts unescaped.
fn elements(xml: &[u8]) -> Vec<Element> {
    let mut reader = Reader::from_reader(xml);
    let mut out: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).unwrap_or_else(|e| {
            panic!(
                "not well-formed XML ({e}): {}",
                String::from_utf8_lossy(xml)
            )
        });
        let opens = matches!(event, Event::Start(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            AsRef::<str>::as_ref(&a.key).to_owned(),
                            a.normalized_value(XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                out.push(Element {
                    name: AsRef::<str>::as_ref(&e.name()).to_owned(),
                    attrs,
                    text: String::new(),
                });
                if opens {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&at) = open.last() {
                    out[at]
                        .text
                        .push_str(&t.xml_content(XmlVersion::Explicit1_0));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(&at) = open.last() {
                    let name = AsRef::<str>::as_ref(&r).to_owned();
                    let text = match name.as_str() {
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "amp" => "&".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        other => panic!("unknown entity {other}"),
                    };
                    out[at].text.push_str(&text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

fn named<'a>(all: &'a [Element], name: &str) -> Vec<&'a Element> {
    all.iter().filter(|e| e.name == name).collect()
}

/// An item's Torznab attribute.
fn torznab_attr(all: &[Element], item_title: &str, attr: &str) -> Option<String> {
    let start = all
        .iter()
        .position(|e| e.name == "title" && e.text == item_title)?;
    all[start..]
        .iter()
        .take_while(|e| e.name != "item")
        .find(|e| e.name == "torznab:attr" && e.attr("name") == Some(attr))
        .and_then(|e| e.attr("value").map(str::to_owned))
}

const HOSTILE: &str = "evil\u{7}<img src=x onerror=alert(1)>.bin";

/// A private tracker with alice, and three uploaded torrents: one with a hostile name.
fn tracker_with_torrents() -> (Tracker, String, String) {
    let tracker = Tracker::start(&["--private"]);
    let alice = tracker.post_json("/users", r#"{"name": "alice"}"#).json();
    let passkey = alice["passkey"].as_str().unwrap().to_owned();
    let token = alice["api_token"].as_str().unwrap().to_owned();
    for (name, metadata) in [
        (HOSTILE, r#"{"tags": ["odd"]}"#),
        (
            "Show.S01E02.mkv",
            r#"{"category": "tv", "title": "Show S01E02"}"#,
        ),
        (
            "Film.2024.mkv",
            r#"{"category": "movies", "title": "Film", "tags": ["odd"]}"#,
        ),
    ] {
        let file = make_torrent(name, 2000, true);
        let reply = tracker.request(
            "POST",
            "/api/v1/torrents",
            &[("Content-Type", "application/x-bittorrent")],
            &file,
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        let hash = reply.json()["info_hash"].as_str().unwrap().to_owned();
        let edited = tracker.request(
            "PATCH",
            &format!("/api/v1/torrents/{hash}"),
            &[("Content-Type", "application/json")],
            metadata.as_bytes(),
        );
        assert_eq!(edited.status, 200, "{}", edited.text());
    }
    (tracker, passkey, token)
}

#[test]
fn the_rss_feed_lists_torrents_with_passkey_enclosures_that_download() {
    let (tracker, passkey, _) = tracker_with_torrents();
    let reply = tracker.get(&format!("/{passkey}/rss"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("application/rss+xml"));
    let all = elements(&reply.body);
    let items = named(&all, "item");
    assert_eq!(items.len(), 3);
    let titles: Vec<&str> = named(&all, "title")
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    // The control character cannot be in XML: it is replaced; the markup is text.
    assert!(
        titles.contains(&"evil\u{FFFD}<img src=x onerror=alert(1)>.bin"),
        "{titles:?}"
    );
    assert!(!reply.text().contains("<img"), "markup is escaped");
    let enclosures = named(&all, "enclosure");
    assert_eq!(enclosures.len(), 3);
    for enclosure in &enclosures {
        assert_eq!(enclosure.attr("type"), Some("application/x-bittorrent"));
        let url = enclosure.attr("url").unwrap();
        assert!(url.contains(&format!("/{passkey}/download/")), "{url}");
        let path = url.split_once(&tracker.addr.to_string()).unwrap().1;
        let file = tracker.get(path);
        assert_eq!(file.status, 200, "{url}");
        let value: Bencode = serde_bencode::from_bytes(&file.body).unwrap();
        assert!(String::from_utf8_lossy(bytes(field(&value, "announce"))).contains(&passkey));
    }
    for date in named(&all, "pubDate") {
        assert!(
            httpdate::parse_http_date(&date.text).is_ok(),
            "{}",
            date.text
        );
    }

    let filtered = elements(&tracker.get(&format!("/{passkey}/rss?q=show")).body);
    assert_eq!(named(&filtered, "item").len(), 1);
    let tagged = elements(&tracker.get(&format!("/{passkey}/rss?tag=odd")).body);
    assert_eq!(named(&tagged, "item").len(), 2);
    let refused = tracker.get(&format!("/{}/rss", "Z".repeat(32)));
    assert_eq!(refused.status, 403);
}

#[test]
fn feedparser_reads_the_feed_as_an_rss_reader_would() {
    require_python(
        "python3",
        "feedparser",
        "run bash tools/test.sh, which puts it in target/test-venv",
    );
    let (tracker, passkey, _) = tracker_with_torrents();
    let feed = tracker.get(&format!("/{passkey}/rss"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    std::fs::write(&path, &feed.body).unwrap();
    let script = script("read_feed.py");
    let out = python_stdout(
        "python3",
        &[script.to_str().unwrap(), path.to_str().unwrap()],
    );
    let read: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(read["bozo"], false, "{read}");
    let entries = read["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{read}");
    for entry in entries {
        let enclosure = entry["enclosures"][0].as_str().unwrap();
        assert!(enclosure.contains(&passkey), "{entry}");
        assert!(entry["published"].is_string(), "{entry}");
    }
    assert!(entries
        .iter()
        .any(|e| e["title"] == "evil\u{FFFD}<img src=x onerror=alert(1)>.bin"));
}

#[test]
fn torznab_answers_caps_and_searches_as_prowlarr_asks() {
    let (tracker, passkey, token) = tracker_with_torrents();
    let caps = tracker.get("/api/torznab/api?t=caps");
    assert_eq!(caps.status, 200, "{}", caps.text());
    let all = elements(&caps.body);
    assert_eq!(all[0].name, "caps");
    assert!(named(&all, "tv-search")[0]
        .attr("supportedParams")
        .unwrap()
        .contains("season"));
    let ids: Vec<&str> = named(&all, "category")
        .iter()
        .filter_map(|c| c.attr("id"))
        .collect();
    assert!(ids.contains(&"2000") && ids.contains(&"5000"), "{ids:?}");

    for key in [&passkey, &token] {
        let reply = tracker.get(&format!("/api/torznab?t=search&q=film&apikey={key}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let all = elements(&reply.body);
        assert_eq!(named(&all, "item").len(), 1);
        let attr = |name| torznab_attr(&all, "Film", name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(attr("seeders"), "0");
        assert_eq!(attr("peers"), "0");
        assert_eq!(attr("downloadvolumefactor"), "1");
        assert_eq!(attr("category"), "2000");
        assert_eq!(attr("infohash").len(), 40);
        assert!(attr("size").parse::<u64>().unwrap() > 0);
        let link = &named(&all, "link")
            .iter()
            .find(|l| l.text.contains("/download/"))
            .unwrap()
            .text;
        assert!(link.contains(&passkey), "{link}");
    }
    // Sonarr's episode search, and category numbers.
    let episode = elements(
        &tracker
            .get(&format!(
                "/api/torznab?t=tvsearch&q=show&season=1&ep=2&apikey={passkey}"
            ))
            .body,
    );
    assert_eq!(named(&episode, "item").len(), 1);
    let wrong_episode = elements(
        &tracker
            .get(&format!(
                "/api/torznab?t=tvsearch&q=show&season=1&ep=3&apikey={passkey}"
            ))
            .body,
    );
    assert_eq!(named(&wrong_episode, "item").len(), 0);
    let movies = elements(
        &tracker
            .get(&format!("/api/torznab?t=search&cat=2000&apikey={passkey}"))
            .body,
    );
    assert_eq!(named(&movies, "item").len(), 1);
    let everything = elements(
        &tracker
            .get(&format!("/api/torznab?t=search&apikey={passkey}"))
            .body,
    );
    assert_eq!(named(&everything, "item").len(), 3);

    // Errors in Torznab's own form.
    for (query, status, code) in [
        (format!("t=search&apikey={}", "Q".repeat(32)), 401, "100"),
        ("t=search".to_owned(), 401, "100"),
        (format!("t=bogus&apikey={passkey}"), 400, "202"),
        (format!("t=search&limit=0&apikey={passkey}"), 400, "201"),
    ] {
        let reply = tracker.get(&format!("/api/torznab?{query}"));
        assert_eq!(reply.status, status, "{query}: {}", reply.text());
        let all = elements(&reply.body);
        assert_eq!(all[0].name, "error", "{query}");
        assert_eq!(all[0].attr("code"), Some(code), "{query}");
    }
}
