//! One integration-test binary: every module drives the real `tinytracker` binary over HTTP.

mod common;

mod admin;
mod announce;
mod e2e;
mod persistence;
mod scrape;
