//! `add-torrent-info`: registers .torrent files, whole directories of them and magnet links with a
//! tinytracker. Per input: parse, compute the info hash, POST with retries, print one line; then a
//! summary. Exit 0 when every input succeeded, 1 when any failed, 2 for usage errors.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use tinytracker::api::AddTorrentInfo;
use tinytracker::cli::register::{collect_inputs, Input, Registrar};
use tinytracker::protocol::ids::InfoHash;
use tinytracker::protocol::metainfo::{self, Metainfo};
use tinytracker::store::info::InfoUpdate;

#[derive(Debug, Parser)]
#[command(
    name = "add-torrent-info",
    version,
    about = "Register .torrent files, directories of them and magnet links with a tinytracker"
)]
struct Cli {
    /// .torrent files, directories (searched recursively for *.torrent), magnet links,
    /// or - to read them from stdin, one per line.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,

    /// The tracker's base URL.
    #[arg(
        long,
        value_name = "URL",
        env = "TINYTRACKER_URL",
        default_value = "http://localhost:6969",
        value_parser = tinytracker::cli::admin_client::parse_tracker_url
    )]
    tracker: String,

    /// Admin token, needed when the tracker is not on this machine.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TINYTRACKER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// Retries after a connection error, a timeout or a 5xx (a 4xx is never retried).
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,

    /// Seconds before the first retry; each further retry waits twice as long.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    retry_delay: f64,

    /// Seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,

    /// Send the .torrent files themselves (POST /api/v1/torrents): the tracker stores each file
    /// as it is and serves it to its users with their passkey in it. Magnet links are registered
    /// by their hash as without it. The token may be the admin token or, on a tracker that runs
    /// with --user-uploads, a user's API token.
    #[arg(long)]
    upload: bool,

    /// Parse and print what would be sent, without contacting the tracker.
    #[arg(long)]
    dry_run: bool,

    /// Print one JSON object per input (path, info_hash, v2_hash, name, size, files, private, outcome, error).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    New,
    Updated,
    DryRun,
    Skipped,
    Failed,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Updated => "updated",
            Outcome::DryRun => "dry-run",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// What happened to one input.
struct Report {
    path: String,
    meta: Option<Metainfo>,
    info_hash: Option<InfoHash>,
    outcome: Outcome,
    /// Why it failed or was skipped, or for a dry run what would be sent.
    detail: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let registrar = match registrar(&cli) {
        Ok(registrar) => registrar,
        Err(message) => {
            eprintln!("add-torrent-info: {message}");
            return ExitCode::from(2);
        }
    };
    let inputs = collect_inputs(&cli.inputs, &mut std::io::stdin().lock());
    let bar =
        (std::io::stderr().is_terminal() && inputs.len() >= 20).then(|| progress_bar(inputs.len()));
    let say = |line: &str, to_stderr: bool| {
        let print = || {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        match &bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    };

    let mut first_path_of: HashMap<InfoHash, String> = HashMap::new();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for input in inputs {
        let report = process(&cli, &registrar, input, &mut first_path_of, &say);
        *counts.entry(report.outcome.word()).or_default() += 1;
        if cli.json {
            say(&report_json(&report), false);
        } else {
            let (line, to_stderr) = report_line(&report);
            say(&line, to_stderr);
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let count = |outcome: Outcome| counts.get(outcome.word()).copied().unwrap_or(0);
    // With --json, stdout carries only the JSON lines.
    say(&summary(&count, cli.dry_run), cli.json);
    if count(Outcome::Failed) > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The client the flags describe; `Err` is a usage error (`--tracker` is checked by clap).
fn registrar(cli: &Cli) -> Result<Registrar, String> {
    let seconds = |flag: &str, value: f64| {
        if (0.0..1e9).contains(&value) {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(format!("--{flag} must be a number of seconds, got {value}"))
        }
    };
    Ok(Registrar::new(
        &cli.tracker,
        cli.token.clone(),
        seconds("timeout", cli.timeout)?,
        cli.retries,
        seconds("retry-delay", cli.retry_delay)?,
    ))
}

fn progress_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}") {
        bar.set_style(style);
    }
    bar
}

/// The last line: `N registered (N new), N failed, N skipped[, N not sent (dry run)]`.
fn summary(count: &dyn Fn(Outcome) -> usize, dry_run: bool) -> String {
    let new = count(Outcome::New);
    let mut summary = format!(
        "{} registered ({new} new), {} failed, {} skipped",
        new + count(Outcome::Updated),
        count(Outcome::Failed),
        count(Outcome::Skipped)
    );
    if dry_run {
        summary.push_str(&format!(", {} not sent (dry run)", count(Outcome::DryRun)));
    }
    summary
}

fn process(
    cli: &Cli,
    registrar: &Registrar,
    input: Input,
    first_path_of: &mut HashMap<InfoHash, String>,
    say: &dyn Fn(&str, bool),
) -> Report {
    let (path, prepared) = match input {
        Input::Unusable { what, why } => (what, Err(why)),
        Input::Magnet(link) => {
            let prepared = metainfo::parse_magnet(&link)
                .map(|m| {
                    let payload = AddTorrentInfo {
                        info_hash: m.info_hash.to_hex(),
                        info: InfoUpdate {
                            name: m.name,
                            ..InfoUpdate::default()
                        },
                    };
                    (Some(m.info_hash), None, payload, None)
                })
                .map_err(|e| e.to_string());
            (link, prepared)
        }
        Input::File(path) => {
            let shown = path.display().to_string();
            (shown, prepare_file(&path))
        }
    };
    let mut report = Report {
        path,
        meta: None,
        info_hash: None,
        outcome: Outcome::Failed,
        detail: String::new(),
    };
    let (info_hash, meta, payload, file) = match prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            report.detail = why;
            return report;
        }
    };
    report.meta = meta;
    let Some(info_hash) = info_hash else {
        report.detail = "no info hash to register".into();
        return report;
    };
    report.info_hash = Some(info_hash);
    if let Some(first) = first_path_of.get(&info_hash) {
        report.outcome = Outcome::Skipped;
        report.detail = format!("same torrent as {first}");
        return report;
    }
    first_path_of.insert(info_hash, report.path.clone());
    // With --upload, a file is sent as it is; a magnet link has no file to send.
    let file = file.filter(|_| cli.upload);
    if cli.dry_run {
        report.outcome = Outcome::DryRun;
        report.detail = match &file {
            Some(bytes) => format!(
                "{} the file ({} bytes)",
                registrar.upload_url(),
                bytes.len()
            ),
            None => format!(
                "{} {}",
                registrar.url(),
                serde_json::to_string(&payload).unwrap_or_default()
            ),
        };
        return report;
    }
    let attempts = registrar.retries + 1;
    let mut on_retry = |attempt: u32, why: &str, wait: Duration| {
        say(
            &format!(
                "retrying {} in {:.1} s (attempt {attempt} of {attempts} failed: {why})",
                report.path,
                wait.as_secs_f64()
            ),
            true,
        );
    };
    let sent = match &file {
        Some(bytes) => registrar.upload(bytes, &mut on_retry),
        None => registrar.register(&payload, &mut on_retry),
    };
    match sent {
        Ok(reply) => {
            report.outcome = if reply.created {
                Outcome::New
            } else {
                Outcome::Updated
            }
        }
        Err(e) => report.detail = e.to_string(),
    }
    report
}

/// Reads and parses a .torrent file into (v1 hash if any, metadata, what to register, the file).
#[allow(clippy::type_complexity)]
fn prepare_file(
    path: &Path,
) -> Result<
    (
        Option<InfoHash>,
        Option<Metainfo>,
        AddTorrentInfo,
        Option<Vec<u8>>,
    ),
    String,
> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = metainfo::parse(&bytes).map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // A pure v2 torrent (BEP 52) is tracked under its SHA-256 hash truncated to 20 bytes, which
    // is what v2 clients announce; a hybrid under its v1 hash, with the v2 hash reaching it too.
    let tracked = meta
        .v1
        .or_else(|| meta.v2.as_ref().map(tinytracker::store::info::truncated));
    let payload = AddTorrentInfo {
        info_hash: tracked.map(|h| h.to_hex()).unwrap_or_default(),
        info: InfoUpdate {
            name: Some(meta.name.clone()),
            size: Some(meta.size),
            piece_length: Some(meta.piece_length),
            // Absent in the file: left out, so what the tracker already has stays.
            comment: meta.comment.clone(),
            created_by: meta.created_by.clone(),
            // The file's own date; like the Python client, "now" only when the file has none.
            creation_date: Some(meta.creation_date.unwrap_or(now)),
            v2: meta.v2,
            ..InfoUpdate::default()
        },
    };
    Ok((tracked, Some(meta), payload, Some(bytes)))
}

fn report_line(report: &Report) -> (String, bool) {
    let hash = report.info_hash.map(|h| h.to_hex()).unwrap_or_default();
    match report.outcome {
        Outcome::New | Outcome::Updated => (
            format!("{:<8} {hash}  {}", report.outcome.word(), report.path),
            false,
        ),
        Outcome::DryRun => (
            format!("would POST {}  ({})", report.detail, report.path),
            false,
        ),
        Outcome::Skipped => (
            format!("skipped  {}: {}", report.path, report.detail),
            false,
        ),
        Outcome::Failed => (format!("FAILED   {}: {}", report.path, report.detail), true),
    }
}

fn report_json(report: &Report) -> String {
    let meta = report.meta.as_ref();
    json!({
        "path": report.path,
        "info_hash": report.info_hash.map(|h| h.to_hex()),
        "v2_hash": meta.and_then(Metainfo::v2_hex),
        "name": meta.map(|m| m.name.clone()),
        "size": meta.map(|m| m.size),
        "files": meta.map(|m| m.file_count),
        "private": meta.map(|m| m.private),
        "outcome": report.outcome.word(),
        "error": matches!(report.outcome, Outcome::Failed | Outcome::Skipped).then_some(&report.detail),
    })
    .to_string()
}
