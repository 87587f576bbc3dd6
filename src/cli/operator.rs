//! `tinytracker user …` and `tinytracker torrent …`: operator commands that call a running
//! tracker's admin API and print a readable table, or the JSON with `--json`.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::admin_client::AdminClient;
use crate::cli::{ClientArgs, Command, StateAction, TorrentAction, UserAction};

/// Runs one operator command; exit 0 on success, 1 when the tracker refused or could not be reached.
pub fn run(command: Command) -> ExitCode {
    let (client_args, outcome) = match command {
        Command::State { action } => return state(action),
        Command::User { action, client } => {
            let outcome = user(&connect(&client), action, client.json);
            (client, outcome)
        }
        Command::Torrent { action, client } => {
            let outcome = torrent(&connect(&client), action, client.json);
            (client, outcome)
        }
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tinytracker: {message} (tracker {})", client_args.tracker);
            ExitCode::FAILURE
        }
    }
}

/// `tinytracker state …`: reads the state file itself.
fn state(action: StateAction) -> ExitCode {
    let outcome = match action {
        StateAction::Export {
            store: Some(url),
            out,
            ..
        } => export_store(&url, &out),
        StateAction::Export {
            out, state_file, ..
        } => export_legacy(&state_file, &out),
        StateAction::Import {
            store,
            replace,
            state_file,
        } => import_store(&store, replace, &state_file),
    };
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tinytracker: {message}");
            ExitCode::FAILURE
        }
    }
}

use crate::api::app::unix_now as now_unix;
use crate::api::shared::Shared;

fn import_store(url: &str, replace: bool, state_file: &std::path::Path) -> Result<String, String> {
    let started = std::time::Instant::now();
    let loaded = crate::store::state::load(state_file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no state file at {}", state_file.display()))?;
    let shared = Shared::connect(url)?;
    let store = &shared.store;
    if !store.is_empty().map_err(|e| e.to_string())? {
        if !replace {
            return Err(format!(
                "{} already holds a tracker's state; nothing imported (--replace deletes it first)",
                store.shown()
            ));
        }
        store.clear().map_err(|e| e.to_string())?;
    }
    let files = crate::store::torrent_files::TorrentFiles::beside(state_file);
    let moved = shared.import(loaded, &files, now_unix()).map_err(|e| {
        format!("{e}; the store may hold part of the import: run it again with --replace")
    })?;
    Ok(format!(
        "imported {} torrents, {} peers, {} users and {} stored .torrent files from {} into {} in {} ms",
        moved.torrents,
        moved.peers,
        moved.users,
        moved.files,
        state_file.display(),
        store.shown(),
        started.elapsed().as_millis()
    ))
}

fn export_store(url: &str, out: &std::path::Path) -> Result<String, String> {
    let started = std::time::Instant::now();
    if out.exists() {
        return Err(format!(
            "{} exists; nothing written (an existing file is not overwritten)",
            out.display()
        ));
    }
    let shared = Shared::connect(url)?;
    let moved = shared.export(out, now_unix())?;
    Ok(format!(
        "exported {} torrents, {} peers, {} users and {} stored .torrent files from {} to {} in {} ms",
        moved.torrents,
        moved.peers,
        moved.users,
        moved.files,
        shared.store.shown(),
        out.display(),
        started.elapsed().as_millis()
    ))
}

fn export_legacy(state_file: &std::path::Path, out: &std::path::Path) -> Result<String, String> {
    use std::io::Write;
    let loaded = crate::store::state::load(state_file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no state file at {}", state_file.display()))?;
    let peers: usize = loaded.torrents.iter().map(|t| t.peers.len()).sum();
    let text =
        crate::store::export::to_python_json(&crate::store::export::export(&loaded.torrents));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| {
            format!(
                "cannot create {}: {e} (an existing file is not overwritten)",
                out.display()
            )
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {} failed: {e}", out.display()))?;
    Ok(format!(
        "wrote {} torrents and {peers} peers to {} in the Python tracker's format \
         (users, passkeys and completion counts are not part of it)",
        loaded.torrents.len(),
        out.display()
    ))
}

fn connect(args: &ClientArgs) -> AdminClient {
    AdminClient::new(&args.tracker, args.token.clone(), Duration::from_secs(30))
}

const NO_BODY: Option<&Value> = None;

/// One admin API call; the error as the message to print.
fn call(
    client: &AdminClient,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    client.call(method, path, body).map_err(|e| e.to_string())
}

/// The items of a JSON list field, or none.
fn items<'a>(answer: &'a Value, field: &str) -> &'a [Value] {
    answer[field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn user(client: &AdminClient, action: UserAction, as_json: bool) -> Result<String, String> {
    let call = |method: &str, path: String, body: Option<&Value>| call(client, method, &path, body);
    let answer = match &action {
        UserAction::Add { name } => {
            let mut user = call("POST", "/users".into(), Some(&json!({ "name": name })))?;
            let invite = call(
                "POST",
                format!("/api/v1/users/{}/invite", path_segment(name)),
                NO_BODY,
            )?;
            user["invite_url"] = invite["invite_url"].clone();
            user
        }
        UserAction::Invite { name } => call(
            "POST",
            format!("/api/v1/users/{}/invite", path_segment(name)),
            NO_BODY,
        )?,
        UserAction::List => call("GET", "/users".into(), NO_BODY)?,
        UserAction::Rotate { name } => call(
            "POST",
            format!("/users/{}/rotate", path_segment(name)),
            NO_BODY,
        )?,
        UserAction::Disable { name } => call(
            "POST",
            format!("/users/{}/disable", path_segment(name)),
            NO_BODY,
        )?,
        UserAction::Enable { name } => call(
            "POST",
            format!("/users/{}/enable", path_segment(name)),
            NO_BODY,
        )?,
        UserAction::Remove { name } => {
            call("DELETE", format!("/users/{}", path_segment(name)), NO_BODY)?
        }
        UserAction::Role { name, role } => call(
            "POST",
            format!("/api/v1/users/{}/role", path_segment(name)),
            Some(&json!({ "role": role })),
        )?,
    };
    if as_json {
        return Ok(answer.to_string());
    }
    Ok(match action {
        UserAction::Add { .. } | UserAction::Rotate { .. } => user_card(&answer),
        UserAction::List => users_table(&answer),
        UserAction::Disable { name } => format!("user {name} disabled: its passkey is refused"),
        UserAction::Enable { name } => format!("user {name} enabled"),
        UserAction::Remove { name } => format!("user {name} removed"),
        UserAction::Role { name, .. } => format!("user {name} is now {}", text(&answer["role"])),
        UserAction::Invite { name } => format!(
            "invite    {}  (for {name}, valid 7 days, once)",
            text(&answer["invite_url"])
        ),
    })
}

fn torrent(client: &AdminClient, action: TorrentAction, as_json: bool) -> Result<String, String> {
    let call = |method: &str, path: String, body: Option<&Value>| call(client, method, &path, body);
    let answer = match &action {
        TorrentAction::List => call("GET", "/torrents".into(), NO_BODY)?,
        TorrentAction::Add { info_hash, name } => {
            let mut body = json!({ "info_hash": info_hash });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            call("POST", "/torrents".into(), Some(&body))?
        }
        TorrentAction::Remove { info_hash } => call(
            "DELETE",
            format!("/torrents/{}", path_segment(info_hash)),
            NO_BODY,
        )?,
    };
    if as_json {
        return Ok(answer.to_string());
    }
    Ok(match action {
        TorrentAction::List => torrents_table(&answer),
        TorrentAction::Add { .. } => {
            let verb = if answer["created"] == true {
                "registered"
            } else {
                "updated"
            };
            format!("{verb} {}", text(&answer["info_hash"]))
        }
        TorrentAction::Remove { .. } => format!(
            "removed {} and its {} peers",
            text(&answer["info_hash"]),
            answer["peers"]
        ),
    })
}

/// Names and hashes go into the path as they are; anything else is escaped.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn user_card(user: &Value) -> String {
    let url = text(&user["announce_url"]);
    let mut card = format!(
        "user      {}\npasskey   {}\nannounce  {url}",
        text(&user["name"]),
        text(&user["passkey"]),
    );
    if let Some(token) = user["api_token"].as_str() {
        card.push_str(&format!("\napi token {token}  (shown only now)"));
    }
    if let Some(invite) = user["invite_url"].as_str() {
        card.push_str(&format!(
            "\ninvite    {invite}  (to choose a password: valid 7 days, once)"
        ));
    }
    if url.contains("://localhost") || url.contains("://127.") || url.contains("://[::1]") {
        card.push_str("\nnote      start the tracker with --public-url so this URL names an address clients reach");
    }
    card
}

fn users_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer, "users")
        .iter()
        .map(|u| {
            vec![
                text(&u["name"]),
                bytes(&u["uploaded"]),
                bytes(&u["downloaded"]),
                text(&u["completed"]),
                u["last_seen"].as_u64().map_or("never".into(), utc),
                text(&u["role"]),
                if u["disabled"] == true {
                    "disabled"
                } else {
                    "active"
                }
                .into(),
                text(&u["passkey"]),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "UPLOADED",
            "DOWNLOADED",
            "COMPLETED",
            "LAST SEEN (UTC)",
            "ROLE",
            "STATUS",
            "PASSKEY",
        ],
        &rows,
    )
}

fn torrents_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer, "torrents")
        .iter()
        .map(|t| {
            vec![
                text(&t["info_hash"]),
                text(&t["name"]),
                bytes(&t["size"]),
                text(&t["complete"]),
                text(&t["incomplete"]),
                text(&t["completed"]),
                if t["registered"] == true { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(
        &[
            "INFO HASH",
            "NAME",
            "SIZE",
            "SEEDERS",
            "LEECHERS",
            "COMPLETED",
            "REGISTERED",
        ],
        &rows,
    )
}

/// Left-aligned columns separated by two spaces, measured in terminal columns (a CJK character
/// takes two, a combining mark none), so wide names line up.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.width())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A byte count the way people read it: 1.5 GiB.
fn bytes(value: &Value) -> String {
    let Some(n) = value.as_u64() else {
        return text(value);
    };
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in UTC (days-to-civil from Howard Hinnant's algorithms).
fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let (hour, minute) = ((unix % 86_400) / 3600, (unix % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(&json!(512)), "512 B");
        assert_eq!(bytes(&json!(1536)), "1.5 KiB");
        assert_eq!(bytes(&json!(4_771_074_618u64)), "4.4 GiB");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["alice".to_owned(), "1".to_owned()],
            vec!["b".to_owned(), "22".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "N"], &rows),
            "NAME   N\nalice  1\nb      22"
        );
        let wide = vec![
            vec!["数据集".to_owned(), "1".to_owned()],
            vec!["ab".to_owned(), "2".to_owned()],
        ];
        // 数据集 is six columns wide on a terminal.
        assert_eq!(
            table(&["NAME", "N"], &wide),
            "NAME    N\n数据集  1\nab      2"
        );
    }

    #[test]
    fn odd_names_are_escaped_in_paths() {
        assert_eq!(path_segment("alice.b-c_d"), "alice.b-c_d");
        assert_eq!(path_segment("../x y"), "..%2Fx%20y");
    }
}
