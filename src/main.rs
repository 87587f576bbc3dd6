//! The `tinytracker` server: parse flags, start logging, load the state file, serve until
//! Ctrl+C, SIGTERM or `/shutdown`, then save.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use log::{error, info, warn};
use simplelog::{
    ColorChoice, CombinedLogger, ConfigBuilder, SharedLogger, TermLogger, TerminalMode, WriteLogger,
};

use tinytracker::api::app::App;
use tinytracker::api::shared::Shared;
use tinytracker::cli::operator;
use tinytracker::cli::Cli;
use tinytracker::config::Config;
use tinytracker::net::{server, tls, udp};
use tinytracker::store::state;
use tinytracker::store::swarm::Swarm;
use tinytracker::store::users::Users;

/// How long shutdown waits for workers to finish their requests before saving regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the HTTPS certificate files are looked at for a renewal.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(command) = cli.command {
        return operator::run(command);
    }
    let config = match tinytracker::cli::settings::config(cli.serve) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tinytracker: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&config) {
        eprintln!("tinytracker: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(config) {
        Ok(code) => code,
        Err(e) => {
            // The logger writes to stderr (and the log file), so this is printed once.
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut config: Config) -> anyhow::Result<ExitCode> {
    let swarm = Swarm::new(config.swarm.clone());
    let users = Users::default();
    // A shared store is made to be used by several instances: no state file, no lock on one.
    let (_lock, loaded_legacy, shared) = match &config.store {
        Some(url) => (None, false, Some(connect_store(url, &swarm, &users)?)),
        None => {
            let lock = claim_state_file(&mut config)?;
            let legacy = load_state(&config, &swarm, &users)?;
            (Some(lock), legacy, None)
        }
    };

    let workers = config.workers;
    let mut listeners = Vec::new();
    for addr in &config.binds {
        listeners.push(server::bind(*addr, workers)?);
    }
    let certificates = match &config.tls {
        Some((cert, key)) => Some(tls::Certificates::load(cert, key)?),
        None => None,
    };
    if let Some(certificates) = &certificates {
        let settings = certificates.server_config()?;
        for addr in &config.tls_binds {
            listeners.push(server::bind(*addr, workers)?.with_tls(Arc::clone(&settings)));
        }
    }
    let mut udp_listeners = Vec::new();
    for addr in &config.udp_binds {
        udp_listeners.push(udp::bind(*addr, workers)?);
    }
    raise_open_files_limit(config.max_connections);
    let limits = server::Limits {
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
    };
    let loaded_file = config.state_file.exists();
    let app = Arc::new(App::new(config, swarm, users, loaded_legacy, shared));
    // The file holds what was just loaded (a Python tracker's file is rewritten in this layout on
    // the first timed save); with no file, an empty state needs no file yet.
    if !loaded_legacy || !loaded_file {
        app.mark_saved();
    }
    // The first peers-over-time point is the state as loaded; the stored files are checked
    // against it. Both before `listening on`, so what they log comes first.
    app.sample_history();
    app.check_stored_files();
    let mut stdout = std::io::stdout().lock();
    for listener in &listeners {
        let scheme = if listener.is_tls() { "https://" } else { "" };
        writeln!(stdout, "listening on {scheme}{}", listener.addr)?;
        info!("listening on {scheme}{}", listener.addr);
    }
    for listener in &udp_listeners {
        writeln!(stdout, "listening on udp://{}", listener.addr)?;
        info!("listening on udp://{}", listener.addr);
    }
    stdout.flush()?;
    drop(stdout);

    let handler_app = Arc::clone(&app);
    ctrlc::set_handler(move || {
        if handler_app.is_shutting_down() {
            eprintln!("tinytracker: second interrupt, exiting without saving");
            std::process::exit(130);
        }
        info!("interrupted; saving and shutting down (interrupt again to exit at once)");
        handler_app.request_shutdown();
    })
    .context("installing the Ctrl+C/SIGTERM handler")?;

    let server = server::start(&app, listeners, workers, limits)?;
    let udp_threads = udp::start(&app, udp_listeners)?;
    let reload = match certificates {
        Some(certificates) => {
            let app = Arc::clone(&app);
            let thread = std::thread::Builder::new()
                .name("certificates".into())
                .spawn(move || reload_certificates(&app, &certificates))
                .context("starting the certificate thread")?;
            Some(thread)
        }
        None => None,
    };
    let maintenance_app = Arc::clone(&app);
    let maintenance = std::thread::Builder::new()
        .name("maintenance".into())
        .spawn(move || maintenance_app.run_maintenance())
        .context("starting the maintenance thread")?;
    let subscriber = match app.shared {
        Some(_) => {
            let app = Arc::clone(&app);
            let thread = std::thread::Builder::new()
                .name("subscriber".into())
                .spawn(move || app.run_subscriber())
                .context("starting the shared store's subscriber thread")?;
            Some(thread)
        }
        None => None,
    };
    let events_app = Arc::clone(&app);
    let events = std::thread::Builder::new()
        .name("events".into())
        .spawn(move || events_app.run_events())
        .context("starting the events thread")?;

    app.wait_for_shutdown(None);
    info!("shutting down");
    server.wake();
    // Requests in progress get a grace period; a client slower than that does not keep the save from happening.
    if !server.join(SHUTDOWN_GRACE) {
        warn!(
            "requests still in progress after {} s; saving anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    if let Some(thread) = reload {
        let _ = thread.join();
    }
    for thread in udp_threads {
        let _ = thread.join();
    }
    let _ = maintenance.join();
    let _ = events.join();
    if let Some(thread) = subscriber {
        let _ = thread.join();
    }
    match app.save() {
        Ok(_) => {
            info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            error!("final save failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads the HTTPS certificate again whenever its files change (certbot and other ACME clients
/// replace them on renewal), until shutdown. A new pair that cannot be used is reported and the one
/// in use keeps serving.
fn reload_certificates(app: &App, certificates: &tls::Certificates) {
    while !app.wait_for_shutdown(Some(CERTIFICATE_CHECK)) {
        match certificates.reload_if_changed() {
            None => {}
            Some(Ok(())) => info!("TLS certificate reloaded"),
            Some(Err(e)) => error!("TLS certificate not reloaded, the previous one stays: {e:#}"),
        }
    }
}

/// Makes the process the one owner of its state file: follows a symlink to the real file (saves
/// replace that file, not the link), takes the lock (held until exit) and removes temp files an
/// interrupted save left.
fn claim_state_file(config: &mut Config) -> anyhow::Result<state::Lock> {
    let given = config.state_file.clone();
    let real = state::resolve(&given).with_context(|| format!("state file {}", given.display()))?;
    if real != given {
        info!(
            "state file {} is a link to {}; saving there",
            given.display(),
            real.display()
        );
        config.state_file = real;
    }
    let lock = state::lock(&config.state_file).map_err(anyhow::Error::msg)?;
    match state::remove_stale_temps(&config.state_file) {
        Ok(removed) => {
            for (path, bytes) in removed {
                info!(
                    "removed {} ({bytes} bytes) left by a save that was interrupted",
                    path.display()
                );
            }
        }
        Err(e) => warn!("looking for temp files of interrupted saves failed: {e}"),
    }
    Ok(lock)
}

/// Connects to the shared store and loads this instance's copy of users and the index from it.
fn connect_store(url: &str, swarm: &Swarm, users: &Users) -> anyhow::Result<Shared> {
    let started = Instant::now();
    let shared = Shared::connect(url).map_err(anyhow::Error::msg)?;
    let now = tinytracker::api::app::unix_now();
    let (torrents, user_count) = shared
        .load_all(swarm, users, now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, seeders, leechers) = shared.store.totals().map_err(|e| anyhow::anyhow!("{e}"))?;
    info!(
        "using the shared store at {}: {torrents} registered torrents, {} live peers, {user_count} users ({} ms)",
        shared.store.shown(),
        seeders + leechers,
        started.elapsed().as_millis()
    );
    Ok(shared)
}

/// Loads the state file into `swarm`. Returns whether it was the Python original's format.
fn load_state(config: &Config, swarm: &Swarm, users: &Users) -> anyhow::Result<bool> {
    let started = Instant::now();
    let path = &config.state_file;
    let Some(loaded) = state::load(path)
        .map_err(|e| anyhow::anyhow!("{e}; refusing to start so the file is not overwritten"))?
    else {
        info!("no state file at {}; starting empty", path.display());
        return Ok(false);
    };
    for why in &loaded.skipped {
        warn!("state file {}: skipped {why}", path.display());
    }
    for what in &loaded.warnings {
        warn!("state file {}: {what}", path.display());
    }
    let now = tinytracker::api::app::unix_now();
    let torrents = loaded.torrents.len();
    let user_count = loaded.users.len();
    users.restore(loaded.users, loaded.revoked);
    users.restore_access(loaded.access);
    for pending in loaded.pending {
        swarm.register_pending(pending.candidates, pending.update, pending.since_unix);
    }
    if let Some(history) = loaded.history {
        swarm.restore_totals_history(history);
    }
    for torrent in loaded.torrents {
        swarm.restore(torrent, now);
    }
    let (_, live_peers) = swarm.totals();
    info!(
        "loaded {torrents} torrents, {live_peers} live peers ({} in the file), {user_count} users from {}{} in {} ms",
        loaded.peers,
        path.display(),
        if loaded.legacy {
            " (Python tracker format)"
        } else {
            ""
        },
        started.elapsed().as_millis()
    );
    Ok(loaded.legacy)
}

/// Lets the process hold as many sockets as --max-connections asks (the soft limit is often 1024).
fn raise_open_files_limit(max_connections: usize) {
    let wanted = max_connections as libc::rlim_t + 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= wanted {
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 || raised.rlim_cur < wanted {
            warn!(
                "open files are limited to {}: fewer than --max-connections {max_connections} clients can connect",
                raised.rlim_cur
            );
        }
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let log_config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        // The event loop's and the HTTP client's own lines would drown ours at trace level.
        .add_filter_ignore_str("mio")
        .add_filter_ignore_str("ureq")
        .add_filter_ignore_str("rustls")
        .build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![TermLogger::new(
        config.log_level,
        log_config.clone(),
        TerminalMode::Stderr,
        if std::io::stderr().is_terminal() {
            ColorChoice::Auto
        } else {
            ColorChoice::Never
        },
    )];
    if let Some(path) = &config.log_file {
        use std::os::unix::fs::OpenOptionsExt;
        // Logs name clients and users: the owner's only when created (an existing file keeps its mode).
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening log file {}", path.display()))?;
        loggers.push(WriteLogger::new(config.log_level, log_config, file));
    }
    CombinedLogger::init(loggers).context("starting the logger")
}
