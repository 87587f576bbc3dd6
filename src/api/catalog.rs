//! The index's listing: `GET /api/v1/torrents`, and the feeds built on it (RSS, Torznab). A query
//! (words, tag, category, sort, page) is read from the URL, matched against every registered
//! torrent's folded search text in one walk of the swarm, and the page is kept in a bounded heap
//! as the walk goes: O(torrents × log(page end)).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use memchr::memmem;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::protocol::ids::{self, InfoHash};
use crate::protocol::ScrapeCounts;
use crate::store::info::{category_line, fold, sort_name, tag_line, TorrentInfo, CATEGORIES};
use crate::store::search_index::{Row as IndexRow, SearchIndex};
use crate::store::swarm::Swarm;

/// Results a page holds unless the query says; and at most.
pub const PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Added,
    Seeders,
    Leechers,
    Completed,
    Size,
    Name,
}

/// What a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Folded words ([`fold`]), all of which must appear in name, title, artist or tags.
    pub words: Vec<String>,
    pub tag: Option<String>,
    /// Any of these categories (none: all).
    pub categories: Vec<String>,
    pub sort: Sort,
    pub descending: bool,
    /// From 1.
    pub page: usize,
    pub per_page: usize,
    /// Results to skip, when given as such (Torznab's `offset`) rather than as a page.
    pub offset: Option<usize>,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            words: Vec::new(),
            tag: None,
            categories: Vec::new(),
            sort: Sort::Added,
            descending: true,
            page: 1,
            per_page: PER_PAGE,
            offset: None,
        }
    }
}

impl Query {
    /// Reads `q`, `tag`, `category`, `sort`, `order`, `page` and `per_page` from a URL query
    /// (form-encoded: `+` is a space). Other parameters are left to the caller.
    pub fn parse(query: &str) -> Result<Query, ApiError> {
        let mut out = Query::default();
        let mut order = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "q" => out.words = words(&value),
                "tag" if !value.trim().is_empty() => out.tag = Some(lower(value.trim())),
                "category" => {
                    for category in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        let category = lower(category);
                        if !CATEGORIES.iter().any(|(name, _)| *name == category) {
                            return Err(ApiError::BadRequest(format!(
                                "category: {:?} is not a category",
                                crate::api::access::short(&category)
                            )));
                        }
                        out.categories.push(category);
                    }
                }
                "sort" => {
                    out.sort = match value.as_ref() {
                        "added" => Sort::Added,
                        "seeders" => Sort::Seeders,
                        "leechers" => Sort::Leechers,
                        "completed" => Sort::Completed,
                        "size" => Sort::Size,
                        "name" => Sort::Name,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                        "sort: {:?} is not one of added, seeders, leechers, completed, size, name",
                        crate::api::access::short(other)
                    )))
                        }
                    }
                }
                "order" => {
                    order = Some(match value.as_ref() {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(ApiError::BadRequest("order: asc or desc".into())),
                    })
                }
                "page" => out.page = number(&value, "page", 1, 1 << 30)?,
                "offset" => out.offset = Some(number(&value, "offset", 0, 1 << 30)?),
                "per_page" | "limit" => out.per_page = number(&value, "per_page", 1, MAX_PER_PAGE)?,
                _ => {}
            }
        }
        // Names read A to Z unless asked; numbers (and dates) biggest first.
        out.descending = order.unwrap_or(out.sort != Sort::Name);
        Ok(out)
    }

    fn offset(&self) -> usize {
        self.offset
            .unwrap_or_else(|| (self.page - 1).saturating_mul(self.per_page))
    }
}

fn lower(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// The folded words of a search ([`fold`]: `ÉTÉ` finds `été` and `ete`).
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().take(16).map(fold).collect()
}

fn number(text: &str, name: &str, min: usize, max: usize) -> Result<usize, ApiError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("{name}: a whole number from {min} to {max}")))
}

/// One torrent of a result page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub hash: InfoHash,
    pub info: TorrentInfo,
    pub counts: ScrapeCounts,
}

/// A page of results and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub total: usize,
    pub torrents: Vec<Found>,
}

/// A torrent kept for the page while the walk goes on: its sort key and hash.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    number: u64,
    name: Option<Box<str>>,
    hash: InfoHash,
}

/// Orders rows as the page lists them ("less" comes first): by key, ascending or descending,
/// then by hash, so equal keys have one fixed order and pages neither repeat nor skip a torrent.
fn listed_before(
    descending: bool,
    a: (u64, Option<&str>, &InfoHash),
    b: (u64, Option<&str>, &InfoHash),
) -> Ordering {
    let by_key = a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1));
    let by_key = if descending { by_key.reverse() } else { by_key };
    by_key.then_with(|| a.2.cmp(b.2))
}

/// A row in a heap whose top is the row listed last (the first to give way to a better one).
struct Ranked {
    row: Row,
    descending: bool,
}

impl Ranked {
    fn key(&self) -> (u64, Option<&str>, &InfoHash) {
        (self.row.number, self.row.name.as_deref(), &self.row.hash)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.row == other.row
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        listed_before(self.descending, self.key(), other.key())
    }
}

/// One part of the walk: the matches it counted and the best of them it kept.
struct Collector<'q> {
    query: &'q Query,
    /// Texts a match must contain: the words, and the tag's line.
    required: Vec<memmem::Finder<'static>>,
    /// Lines of which a match must contain one (the categories asked for), if any.
    any_of: Vec<memmem::Finder<'static>>,
    keep: usize,
    heap: BinaryHeap<Ranked>,
    total: usize,
}

impl<'q> Collector<'q> {
    fn new(query: &'q Query) -> Collector<'q> {
        let keep = query.offset().saturating_add(query.per_page);
        let owned = |text: &str| memmem::Finder::new(text.as_bytes()).into_owned();
        let mut required: Vec<_> = query.words.iter().map(|w| owned(w)).collect();
        if let Some(tag) = &query.tag {
            // The tag first: it is the most selective, and the scan uses the first.
            required.insert(0, owned(&tag_line(tag)));
        }
        Collector {
            query,
            required,
            any_of: query
                .categories
                .iter()
                .map(|c| owned(&category_line(c)))
                .collect(),
            keep,
            heap: BinaryHeap::with_capacity(keep.min(4096) + 1),
            total: 0,
        }
    }

    /// Every match among a shard's torrents. With something to look for, one SIMD scan of the
    /// shard's whole text finds the candidates; without, every row is one.
    fn collect(&mut self, index: &SearchIndex, counts: &dyn Fn(&InfoHash) -> ScrapeCounts) {
        let rows = index.rows();
        match self.required.first() {
            None => {
                for row in rows {
                    self.consider(index, row, counts);
                }
            }
            Some(first) => {
                let mut last = usize::MAX;
                let finder = first.clone();
                for at in finder.find_iter(index.text().as_bytes()) {
                    let n = index.row_at(at);
                    if n != last {
                        last = n;
                        self.consider(index, &rows[n], counts);
                    }
                }
            }
        }
    }

    fn consider(
        &mut self,
        index: &SearchIndex,
        row: &IndexRow,
        counts: &dyn Fn(&InfoHash) -> ScrapeCounts,
    ) {
        let text = index.text_of(row);
        let bytes = text.as_bytes();
        if !self.required.iter().all(|f| f.find(bytes).is_some())
            || !(self.any_of.is_empty() || self.any_of.iter().any(|f| f.find(bytes).is_some()))
        {
            return;
        }
        self.total += 1;
        if self.keep == 0 {
            return;
        }
        let (sort, descending) = (self.query.sort, self.query.descending);
        let number = match sort {
            Sort::Added => row.added,
            Sort::Size => row.size,
            Sort::Seeders => u64::from(counts(&row.hash).complete),
            Sort::Leechers => u64::from(counts(&row.hash).incomplete),
            Sort::Completed => counts(&row.hash).downloaded,
            Sort::Name => 0,
        };
        let name = (sort == Sort::Name).then(|| sort_name(text));
        if self.heap.len() == self.keep {
            let worst = self.heap.peek().map(Ranked::key);
            if worst
                .is_some_and(|w| listed_before(descending, (number, name, &row.hash), w).is_ge())
            {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Ranked {
            row: Row {
                number,
                name: name.map(Box::from),
                hash: row.hash,
            },
            descending,
        });
    }
}

/// The page of registered torrents `query` asks for. One walk of the shards' search indexes
/// ([`SearchIndex`]), split over the machine's cores (each takes every n-th shard): a SIMD scan of
/// each shard's text for the first thing asked for, and only the best `offset + per_page` matches
/// kept (a bounded heap), so page 1 costs no sort of every match.
pub fn search(swarm: &Swarm, query: &Query) -> Page {
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let collected: Vec<Collector> = std::thread::scope(|scope| {
        let walks: Vec<_> = (1..parts)
            .map(|part| {
                scope.spawn(move || {
                    let mut collector = Collector::new(query);
                    swarm.visit_index(part, parts, |index, counts| {
                        collector.collect(index, counts)
                    });
                    collector
                })
            })
            .collect();
        let mut mine = Collector::new(query);
        swarm.visit_index(0, parts, |index, counts| mine.collect(index, counts));
        let mut all = vec![mine];
        // A walk cannot panic short of a bug; its part is then missing, not the whole answer.
        all.extend(walks.into_iter().filter_map(|walk| walk.join().ok()));
        all
    });
    let total = collected.iter().map(|c| c.total).sum();
    let mut ranked: Vec<Ranked> = collected.into_iter().flat_map(|c| c.heap).collect();
    ranked.sort_unstable();
    let torrents = ranked
        .iter()
        .skip(query.offset())
        .take(query.per_page)
        .filter_map(|r| {
            let (hash, info, counts) = swarm.entry(&r.row.hash)?;
            Some(Found { hash, info, counts })
        })
        .collect();
    Page { total, torrents }
}

/// A torrent's metadata and live counts: the same for every caller (live events send this).
pub fn summary_json(found: &Found) -> Value {
    let Found { hash, info, counts } = found;
    json!({
        "info_hash": hash.to_hex(),
        "v2_info_hash": info.v2.as_ref().map(|v2| ids::hex(v2)),
        "name": info.name,
        "title": info.display_title(),
        "artist": info.artist,
        "tags": info.tags,
        "category": info.category,
        "size": info.size,
        "uploader": info.uploader,
        "added": info.added_unix(),
        "seeders": counts.complete,
        "leechers": counts.incomplete,
        "completed": counts.downloaded,
        "stored": info.stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::info::InfoUpdate;
    use crate::store::swarm::SwarmConfig;

    fn swarm_of(torrents: &[(&str, &[&str], u64)]) -> Swarm {
        let swarm = Swarm::new(SwarmConfig::DEFAULT);
        for (i, (title, tags, size)) in torrents.iter().enumerate() {
            let update = InfoUpdate {
                name: Some(format!("file{i}.bin")),
                title: Some((*title).into()),
                tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
                size: Some(*size),
                ..InfoUpdate::default()
            };
            swarm.register(InfoHash([i as u8 + 1; 20]), update, 1_000 + i as u64);
        }
        swarm
    }

    fn titles(page: &Page) -> Vec<&str> {
        page.torrents
            .iter()
            .map(|f| f.info.title.as_str())
            .collect()
    }

    #[test]
    fn words_tags_and_unicode_case() {
        let swarm = swarm_of(&[
            ("Été à Paris", &["jazz"], 1),
            ("ÉTÉ indien", &["rock"], 2),
            ("Winter", &["jazz"], 3),
        ]);
        let q = |text: &str| search(&swarm, &Query::parse(text).unwrap());
        assert_eq!(titles(&q("q=%C3%A9t%C3%A9")), ["ÉTÉ indien", "Été à Paris"]);
        assert_eq!(titles(&q("q=ETE&sort=name")), ["Été à Paris", "ÉTÉ indien"]);
        assert_eq!(titles(&q("q=%C3%A9t%C3%A9+paris")), ["Été à Paris"]);
        assert_eq!(
            titles(&q("tag=JAZZ&sort=size&order=asc")),
            ["Été à Paris", "Winter"]
        );
        assert_eq!(
            q("q=file2").total,
            1,
            "the torrent's own name is searched too"
        );
        assert_eq!(q("q=nothing").total, 0);
    }

    #[test]
    fn pages_cut_a_stable_order() {
        let many: Vec<(String, u64)> = (0..25).map(|i| (format!("t{i:02}"), i % 3)).collect();
        let spec: Vec<(&str, &[&str], u64)> = many
            .iter()
            .map(|(t, s)| (t.as_str(), &[][..], *s))
            .collect();
        let swarm = swarm_of(&spec);
        let mut seen = Vec::new();
        for page in 1..=3 {
            let page = search(
                &swarm,
                &Query::parse(&format!("sort=size&per_page=10&page={page}")).unwrap(),
            );
            assert_eq!(page.total, 25);
            seen.extend(titles(&page).into_iter().map(str::to_owned));
        }
        assert_eq!(seen.len(), 25);
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 25, "no torrent twice across pages");
        let by_name = search(&swarm, &Query::parse("sort=name&per_page=3").unwrap());
        assert_eq!(titles(&by_name), ["t00", "t01", "t02"]);
        let newest = search(&swarm, &Query::parse("per_page=1").unwrap());
        assert_eq!(titles(&newest), ["t24"]);
        let past = search(&swarm, &Query::parse("page=99").unwrap());
        assert!(past.torrents.is_empty() && past.total == 25);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, field) in [
            ("sort=popularity", "sort:"),
            ("order=up", "order:"),
            ("page=0", "page:"),
            ("per_page=1000", "per_page:"),
            ("category=warez", "category:"),
        ] {
            let e = Query::parse(query).unwrap_err().to_string();
            assert!(e.starts_with(field), "{query}: {e}");
        }
    }
}
