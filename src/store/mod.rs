//! The store: torrents, peers and users in memory, and the state file. Below it only `protocol`.

pub mod export;
pub mod history;
pub mod info;
pub mod peers;
pub mod redis;
pub mod search_index;
pub mod state;
pub mod swarm;
pub mod torrent_files;
pub mod users;
