//! tinytracker: a small private BitTorrent tracker (BEP 3, 7, 23, 48) that keeps its whole state
//! in one JSON file. The `tinytracker` binary serves HTTP, HTTPS and UDP (BEP 15); `add-torrent-info`
//! registers torrents.
//!
//! # Where things are
//!
//! The folders are layers; each uses only the ones below it (`net` → `api` → `store` →
//! `protocol`), and `cli` drives the others from the command line.
//!
//! - [`protocol`]: pure wire and file formats, no I/O: announce and scrape parsing and answers,
//!   bencode, typed 20-byte ids, `.torrent` metainfo and the served file ([`protocol::torrent_file`]),
//!   the Python original's text forms of hashes, HTTP/1.1 request reading and response writing,
//!   `multipart/form-data`, and BEP 15 datagrams with stateless connection ids ([`protocol::udp`]).
//! - [`store`]: the state in memory and on disk: the sharded swarm and its peer sets, a torrent's
//!   metadata ([`store::info`]: one record, one change), each shard's search index, peers over time
//!   ([`store::history`]), users with passkeys and API tokens, the stored `.torrent` files, the state
//!   file (one set of serde types read and write it: load, streamed atomic save, lock) and the export
//!   back to the original.
//! - [`api`]: from a request to an answer: routing, who may call what ([`api::access`]), the admin
//!   handlers, the index ([`api::index`] for uploads, downloads and torrents, [`api::catalog`] for
//!   listings and searches, [`api::metadata`] for edits, [`api::feeds`] for RSS and Torznab,
//!   [`api::events`] for live events, [`api::openapi`]), metrics, and [`api::app::App`], the shared
//!   application.
//! - [`net`]: the per-worker `mio` event loops that read requests, write answers and feed the
//!   live-event streams, over plain TCP or TLS ([`net::tls`]), and the UDP socket threads
//!   ([`net::udp`]). Both transports answer through [`api::bittorrent`].
//! - [`cli`]: command-line flags, the operator commands, the admin client and the inputs of
//!   `add-torrent-info`.
//!   The checked configuration is [`api::config::Config`]; [`cli::settings`] builds it from flags.
//! - [`error`]: errors by audience (BitTorrent clients, admin callers), used by all.

pub mod api;
pub mod cli;
pub mod error;
pub mod net;
pub mod protocol;
pub mod store;

// The paths the tests, tools and fuzz targets use.
pub use api::{access, admin, app, config, dispatch, metrics, routes};
pub use cli::{admin_client, operator, register};
pub use net::server;
pub use protocol::{bencode, http, ids, legacy, metainfo, multipart};
pub use store::{export, info, peers, state, swarm, users};
