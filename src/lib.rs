//! tinytracker: a small private BitTorrent tracker (BEP 3, 7, 23, 48) that keeps its whole state
//! in one JSON file. The `tinytracker` binary serves HTTP; `add-torrent-info` registers torrents.

pub mod access;
pub mod admin;
pub mod admin_client;
pub mod api;
pub mod app;
pub mod bencode;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod export;
pub mod http;
pub mod ids;
pub mod legacy;
pub mod metainfo;
pub mod metrics;
pub mod operator;
pub mod peers;
pub mod protocol;
pub mod register;
pub mod routes;
pub mod server;
pub mod state;
pub mod swarm;
pub mod users;
