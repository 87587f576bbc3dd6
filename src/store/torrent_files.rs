//! Stored `.torrent` files: the bytes as uploaded, one file per torrent named by its 40-hex info
//! hash (never a name from the upload), in a directory beside the state file
//! (`tracker_state.json` → `tracker_state.torrents/`). The state file is the index: a torrent's
//! `info.stored` says it has a file here. Writes are atomic (temp file, fsync, rename, fsync).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::protocol::ids::InfoHash;
use crate::store::redis::{keys, RedisStore};

/// With a shared store the files are kept in Redis (`tt:file:<hex>`), so every instance serves
/// them; `dir` then only names where they would be.
#[derive(Clone)]
pub struct TorrentFiles {
    dir: PathBuf,
    shared: Option<Arc<RedisStore>>,
}

impl std::fmt::Debug for TorrentFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shared {
            Some(store) => write!(f, "TorrentFiles(in {})", store.shown()),
            None => write!(f, "TorrentFiles({})", self.dir.display()),
        }
    }
}

/// A shared store's fault as the I/O error callers of these already handle.
fn unavailable(e: crate::store::redis::Unavailable) -> io::Error {
    io::Error::other(e.to_string())
}

impl TorrentFiles {
    /// The directory for the state file at `state_path`: its name without `.json`, plus `.torrents`.
    pub fn beside(state_path: &Path) -> TorrentFiles {
        let name = state_path.file_name().map_or_else(
            || "tracker_state".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        TorrentFiles {
            dir: state_path.with_file_name(format!("{stem}.torrents")),
            shared: None,
        }
    }

    /// The files of a shared store.
    pub fn shared(store: Arc<RedisStore>) -> TorrentFiles {
        TorrentFiles {
            dir: PathBuf::from(format!("{}/tt:file:*", store.shown())),
            shared: Some(store),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, hash: &InfoHash) -> PathBuf {
        self.dir.join(format!("{}.torrent", hash.to_hex()))
    }

    /// Stores `bytes` as the file of `hash`, replacing one that is there. The directory is made
    /// (owner only) if it is missing.
    pub fn put(&self, hash: &InfoHash, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(store) = &self.shared {
            let hex = hash.to_hex();
            let mut con = store.connection().map_err(unavailable)?;
            return con
                .run(|c| {
                    redis::pipe()
                        .atomic()
                        .set(keys::file(&hex), bytes)
                        .sadd(keys::FILES, &hex)
                        .query::<()>(c)
                })
                .map_err(unavailable);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            hash.to_hex(),
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, self.path(hash))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        File::open(&self.dir)?.sync_all()
    }

    /// The stored file of `hash`.
    pub fn get(&self, hash: &InfoHash) -> io::Result<Vec<u8>> {
        if let Some(store) = &self.shared {
            let mut con = store.connection().map_err(unavailable)?;
            let found: Option<Vec<u8>> = con
                .run(|c| redis::cmd("GET").arg(keys::file(&hash.to_hex())).query(c))
                .map_err(unavailable)?;
            return found.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound));
        }
        fs::read(self.path(hash))
    }

    /// Removes the file of `hash`; `Ok(false)` when there was none.
    pub fn remove(&self, hash: &InfoHash) -> io::Result<bool> {
        if let Some(store) = &self.shared {
            let hex = hash.to_hex();
            let mut con = store.connection().map_err(unavailable)?;
            let (removed, _): (i64, i64) = con
                .run(|c| {
                    redis::pipe()
                        .atomic()
                        .del(keys::file(&hex))
                        .srem(keys::FILES, &hex)
                        .query(c)
                })
                .map_err(unavailable)?;
            return Ok(removed > 0);
        }
        match fs::remove_file(self.path(hash)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The hashes that have a file (names that are not `<40 hex>.torrent` are left alone).
    pub fn list(&self) -> io::Result<Vec<InfoHash>> {
        if let Some(store) = &self.shared {
            let mut con = store.connection().map_err(unavailable)?;
            let hexes: Vec<String> = con
                .run(|c| redis::cmd("SMEMBERS").arg(keys::FILES).query(c))
                .map_err(unavailable)?;
            let mut hashes: Vec<InfoHash> = hexes
                .iter()
                .filter_map(|h| InfoHash::from_hex(h).ok())
                .collect();
            hashes.sort();
            return Ok(hashes);
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut hashes = Vec::new();
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(hash) = name
                .strip_suffix(".torrent")
                .and_then(|hex| InfoHash::from_hex(hex).ok())
            {
                hashes.push(hash);
            }
        }
        hashes.sort();
        Ok(hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_kept_by_hash_beside_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = TorrentFiles::beside(&dir.path().join("tracker_state.json"));
        assert_eq!(files.dir(), dir.path().join("tracker_state.torrents"));
        assert_eq!(
            files.list().unwrap(),
            vec![],
            "no directory yet: nothing stored"
        );
        let (a, b) = (InfoHash([0xaa; 20]), InfoHash([0x0b; 20]));
        files.put(&a, b"d4:infod...").unwrap();
        files.put(&b, b"first").unwrap();
        files.put(&b, b"second").unwrap();
        assert_eq!(files.get(&b).unwrap(), b"second");
        fs::write(files.dir().join("notes.txt"), "not ours").unwrap();
        assert_eq!(files.list().unwrap(), vec![b, a]);
        assert!(files.remove(&a).unwrap());
        assert!(!files.remove(&a).unwrap());
        assert_eq!(files.get(&a).unwrap_err().kind(), io::ErrorKind::NotFound);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(files.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let leftovers: Vec<_> = fs::read_dir(files.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = TorrentFiles::beside(&dir.path().join("state.json"));
        let hash = InfoHash([1; 20]);
        files.put(&hash, b"kept").unwrap();
        // A non-empty directory where the file goes makes the rename fail.
        let target = files
            .dir()
            .join(format!("{}.torrent", InfoHash([2; 20]).to_hex()));
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), "x").unwrap();
        assert!(files.put(&InfoHash([2; 20]), b"new").is_err());
        assert_eq!(files.get(&hash).unwrap(), b"kept");
        assert_eq!(files.list().unwrap(), vec![hash]);
    }
}
