//! One integration-test binary: every module drives the real `tinytracker` binary over HTTP.

mod common;

mod accounts;
mod add_torrent_info;
mod admin;
mod announce;
mod api;
mod bounds;
mod browser;
mod e2e;
mod events;
mod export;
mod feeds;
mod hostile;
mod https;
mod index;
mod persistence;
mod private;
mod readme;
mod scrape;
mod shared_store;
mod single_owner;
mod udp;
mod web;
