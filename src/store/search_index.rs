//! A shard's registered torrents laid out for searching: every torrent's search text
//! ([`crate::store::info::TorrentInfo::search_text`]) one after another in one string, and a row a
//! torrent with what listings sort by. A search scans the one string with a SIMD substring finder
//! instead of visiting each torrent; a listing reads the rows, which sit together in memory.
//! Rebuilt when the shard's metadata changed since (registrations and edits are rare next to
//! searches).

use crate::protocol::ids::InfoHash;

/// One torrent of the index.
#[derive(Debug, Clone)]
pub struct Row {
    pub hash: InfoHash,
    /// [`crate::store::info::TorrentInfo::added_unix`].
    pub added: u64,
    pub size: u64,
    start: u32,
    end: u32,
}

#[derive(Debug, Default)]
pub struct SearchIndex {
    text: String,
    rows: Vec<Row>,
}

impl SearchIndex {
    /// An index of `torrents`: (hash, added, size, search text).
    pub fn build<'a>(torrents: impl Iterator<Item = (InfoHash, u64, u64, &'a str)>) -> SearchIndex {
        let mut index = SearchIndex::default();
        for (hash, added, size, text) in torrents {
            let start = index.text.len() as u32;
            index.text.push_str(text);
            index.rows.push(Row {
                hash,
                added,
                size,
                start,
                end: index.text.len() as u32,
            });
        }
        index
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// All the search texts, one after another.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The search text of a row.
    pub fn text_of(&self, row: &Row) -> &str {
        &self.text[row.start as usize..row.end as usize]
    }

    /// The row whose text holds byte `offset` of [`SearchIndex::text`].
    pub fn row_at(&self, offset: usize) -> usize {
        self.rows
            .partition_point(|r| r.end as usize <= offset)
            .min(self.rows.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_find_their_rows() {
        let texts = ["\na\n", "\nbb\n", "\nccc\n"];
        let index = SearchIndex::build(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| (InfoHash([i as u8; 20]), i as u64, 0, *t)),
        );
        assert_eq!(index.text(), "\na\n\nbb\n\nccc\n");
        let at = index.text().find("bb").unwrap();
        assert_eq!(index.row_at(at), 1);
        assert_eq!(index.text_of(&index.rows()[2]), "\nccc\n");
        assert_eq!(index.row_at(0), 0);
        assert_eq!(index.row_at(index.text().len() - 1), 2);
    }
}
