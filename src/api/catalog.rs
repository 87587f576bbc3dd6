//! The index's listing: `GET /api/v1/torrents`, and the feeds built on it (RSS, Torznab). A query
//! (words, tag, category, sort, page) is read from the URL, matched against every registered
//! torrent's lowercased search text in one walk of the swarm, and the page is cut out with a
//! partial sort: O(torrents), whatever the page.

use std::cmp::Ordering;

use crate::error::ApiError;
use crate::protocol::ids::InfoHash;
use crate::protocol::ScrapeCounts;
use crate::store::info::{fold, TorrentInfo, CATEGORIES};
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

    /// Whether a torrent with this metadata and search text is in the results.
    pub fn matches(&self, info: &TorrentInfo, search: &str) -> bool {
        self.words.iter().all(|w| search.contains(w.as_str()))
            && self.tag.as_ref().is_none_or(|tag| info.tags.contains(tag))
            && (self.categories.is_empty() || self.categories.contains(&info.category))
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

/// What a torrent is sorted by, taken in the walk; names only when sorting by name.
struct Row {
    hash: InfoHash,
    number: u64,
    name: Option<String>,
}

/// The page of registered torrents `query` asks for.
pub fn search(swarm: &Swarm, query: &Query) -> Page {
    let sort = query.sort;
    let mut rows = swarm.select(|hash, info, search, counts| {
        if !query.matches(info, search) {
            return None;
        }
        let number = match sort {
            Sort::Added => info.added_unix(),
            Sort::Seeders => u64::from(counts.complete),
            Sort::Leechers => u64::from(counts.incomplete),
            Sort::Completed => counts.downloaded,
            Sort::Size => info.size,
            Sort::Name => 0,
        };
        let name = (sort == Sort::Name).then(|| fold(info.display_title()));
        Some(Row {
            hash: *hash,
            number,
            name,
        })
    });
    let total = rows.len();
    let descending = query.descending;
    let order = |a: &Row, b: &Row| -> Ordering {
        let by_key = a.number.cmp(&b.number).then_with(|| a.name.cmp(&b.name));
        let by_key = if descending { by_key.reverse() } else { by_key };
        // Equal keys in one fixed order, so pages neither repeat nor skip a torrent.
        by_key.then_with(|| a.hash.cmp(&b.hash))
    };
    let offset = query.offset().min(total);
    let end = offset.saturating_add(query.per_page).min(total);
    if end < total {
        rows.select_nth_unstable_by(end, order);
        rows.truncate(end);
    }
    rows.sort_unstable_by(order);
    let torrents = rows[offset..]
        .iter()
        .filter_map(|row| {
            let (hash, info, counts) = swarm.entry(&row.hash)?;
            Some(Found { hash, info, counts })
        })
        .collect();
    Page { total, torrents }
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
