//! Which handler a request goes to: the path and method decide, nothing else. Pure (no sockets),
//! so the whole table is tested without a socket. Unknown paths are 404, wrong methods 405.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/announce`, `/` or `/<passkey>/announce`.
    Announce {
        passkey: Option<String>,
    },
    /// `/scrape` or `/<passkey>/scrape`.
    Scrape {
        passkey: Option<String>,
    },
    Stats,
    Metrics,
    SaveState,
    Shutdown,
    ListUsers,
    CreateUser,
    DeleteUser(String),
    RotateUser(String),
    DisableUser(String),
    EnableUser(String),
    ListTorrents,
    /// `POST /torrents`, and `POST /add_torrent_info` (the Python tracker's path) for its client.
    RegisterTorrent,
    RemoveTorrent(String),
    /// `POST /api/v1/torrents`: a `.torrent` file to store and register.
    UploadTorrent,
    /// `GET /<passkey>/download/<hash>`, or `GET /api/v1/torrents/<hash>/download` (no passkey).
    Download {
        hash: String,
        passkey: Option<String>,
    },
    /// `GET /api/v1/torrents`: the index, searched, filtered, sorted and paged.
    Catalog,
    /// `GET /api/v1/torrents/<hash>`: one torrent's metadata, files and live counts.
    ShowTorrent(String),
    /// `PATCH /api/v1/torrents/<hash>`: a JSON merge of its editable metadata.
    EditTorrent(String),
    /// `GET /api/v1/stats`: the tracker's totals.
    Totals,
    /// `GET /api/v1/users/<name>`.
    ShowUser(String),
    /// `POST /api/v1/users/<name>/token`: a new API token for the user.
    UserToken(String),
    /// `POST /api/v1/users/<name>/role` with `{"role": …}`.
    SetRole(String),
    /// `POST /api/v1/users/<name>/invite`: a one-time link to choose a password.
    InviteUser(String),
    /// `GET /api/v1/invites/<secret>`: whose invite it is.
    ShowInvite(String),
    /// `POST /api/v1/invites/<secret>` with `{"password": …}`.
    AcceptInvite(String),
    /// `POST /api/v1/session` with `{"name": …, "password": …}`: signs in.
    SignIn,
    /// `GET /api/v1/session`: the signed-in user and the CSRF token.
    ShowSession,
    /// `DELETE /api/v1/session`: signs out.
    SignOut,
    /// `GET /api/v1/me`: the caller (a user with an API token).
    Me,
    /// `POST /api/v1/me/token`: the caller's new API token.
    MyToken,
    /// `POST /api/v1/me/passkey`: the caller's new passkey.
    MyPasskey,
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `GET /<passkey>/rss`: the user's RSS feed.
    Rss {
        passkey: String,
    },
    /// `GET /api/torznab` (and `/api/torznab/api`, where Prowlarr and Jackett look).
    Torznab,
    /// `GET /api/v1/events`: live events (Server-Sent Events).
    Events,
    /// `GET /web/<rest>`: the web page and its two assets.
    Web(String),
    /// `GET /api/v1/torrents/<hash>/history`: its peers over time.
    TorrentHistory(String),
    /// `GET /api/v1/history`: the tracker's peers over time.
    History,
}

/// Who a route is for; `dispatch` finds out who the caller is and holds the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: the route checks a passkey or API key itself, or has nothing to protect.
    Nobody,
    /// Operators: the admin token, or a `--local-admin` caller (`access::check`).
    Admin,
    /// The index's readers: anyone on an open tracker; users and operators on a private one.
    Reader,
    /// Operators, users with the `uploader` role or above, and every user when `--user-uploads`
    /// is on.
    Uploader,
    /// Operators and users with the `moderator` role or above.
    Moderator,
    /// A user, by their API token.
    Member,
}

impl Route {
    /// Who may call it (`/stats` and `/metrics` also depend on flags: `dispatch` decides those).
    pub fn need(&self) -> Need {
        match self {
            Route::Announce { .. }
            | Route::Scrape { .. }
            | Route::Stats
            | Route::Download {
                passkey: Some(_), ..
            }
            | Route::OpenApi
            | Route::Rss { .. }
            | Route::Torznab
            | Route::ShowInvite(_)
            | Route::AcceptInvite(_)
            | Route::SignIn
            | Route::Web(_) => Need::Nobody,
            Route::Download { passkey: None, .. }
            | Route::Catalog
            | Route::ShowTorrent(_)
            | Route::Totals
            | Route::Events
            | Route::TorrentHistory(_)
            | Route::History => Need::Reader,
            Route::UploadTorrent | Route::EditTorrent(_) => Need::Uploader,
            Route::RemoveTorrent(_) | Route::DisableUser(_) | Route::EnableUser(_) => {
                Need::Moderator
            }
            Route::Me | Route::MyToken | Route::MyPasskey | Route::ShowSession | Route::SignOut => {
                Need::Member
            }
            _ => Need::Admin,
        }
    }

    /// Routes for operators (and for users with a role that allows them): decided by
    /// `access::check` (the admin token, or a `--local-admin` caller with an allowed Host, and
    /// never a request from another site's page).
    pub fn is_admin(&self) -> bool {
        matches!(self.need(), Need::Admin | Need::Moderator)
    }

    /// Routes whose request has a JSON body.
    pub fn takes_body(&self) -> bool {
        matches!(
            self,
            Route::CreateUser
                | Route::RegisterTorrent
                | Route::EditTorrent(_)
                | Route::SetRole(_)
                | Route::AcceptInvite(_)
                | Route::SignIn
        )
    }
}

/// Picks the route for `method` (as sent, e.g. "GET") and `path` (without the query).
/// HEAD is accepted wherever GET is; the caller answers it without side effects.
pub fn resolve(method: &str, path: &str) -> Result<Route, ApiError> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (allow, route): (&'static str, Option<Route>) = match segments.as_slice() {
        [""] | ["announce"] => ("GET, HEAD", get(method, Route::Announce { passkey: None })),
        ["web", rest @ ..] => ("GET, HEAD", get(method, Route::Web(rest.join("/")))),
        ["scrape"] => ("GET, HEAD", get(method, Route::Scrape { passkey: None })),
        [passkey, "announce"] => (
            "GET, HEAD",
            get(
                method,
                Route::Announce {
                    passkey: Some((*passkey).to_owned()),
                },
            ),
        ),
        [passkey, "scrape"] => (
            "GET, HEAD",
            get(
                method,
                Route::Scrape {
                    passkey: Some((*passkey).to_owned()),
                },
            ),
        ),
        ["stats"] => ("GET, HEAD", get(method, Route::Stats)),
        ["metrics"] => ("GET, HEAD", get(method, Route::Metrics)),
        ["add_torrent_info"] => ("POST", (method == "POST").then_some(Route::RegisterTorrent)),
        ["shutdown"] => ("POST", (method == "POST").then_some(Route::Shutdown)),
        ["save_state"] => (
            "GET, HEAD, POST",
            matches!(method, "GET" | "POST").then_some(Route::SaveState),
        ),
        ["users"] | ["api", "v1", "users"] => (
            "GET, HEAD, POST",
            match method {
                "GET" => Some(Route::ListUsers),
                "POST" => Some(Route::CreateUser),
                _ => None,
            },
        ),
        ["users", name] => (
            "DELETE",
            (method == "DELETE").then(|| Route::DeleteUser((*name).to_owned())),
        ),
        ["api", "v1", "users", name] => (
            "GET, HEAD, DELETE",
            match method {
                "GET" => Some(Route::ShowUser((*name).to_owned())),
                "DELETE" => Some(Route::DeleteUser((*name).to_owned())),
                _ => None,
            },
        ),
        ["users", name, action @ ("rotate" | "disable" | "enable")]
        | ["api", "v1", "users", name, action @ ("rotate" | "disable" | "enable" | "token" | "role" | "invite")] =>
        {
            let name = (*name).to_owned();
            let route = match *action {
                "rotate" => Route::RotateUser(name),
                "disable" => Route::DisableUser(name),
                "token" => Route::UserToken(name),
                "role" => Route::SetRole(name),
                "invite" => Route::InviteUser(name),
                _ => Route::EnableUser(name),
            };
            ("POST", (method == "POST").then_some(route))
        }
        ["api", "v1", "me"] => ("GET, HEAD", get(method, Route::Me)),
        ["api", "v1", "session"] => (
            "GET, HEAD, POST, DELETE",
            match method {
                "GET" => Some(Route::ShowSession),
                "POST" => Some(Route::SignIn),
                "DELETE" => Some(Route::SignOut),
                _ => None,
            },
        ),
        ["api", "v1", "invites", secret] => {
            let secret = (*secret).to_owned();
            (
                "GET, HEAD, POST",
                match method {
                    "GET" => Some(Route::ShowInvite(secret)),
                    "POST" => Some(Route::AcceptInvite(secret)),
                    _ => None,
                },
            )
        }
        ["api", "v1", "me", "token"] => ("POST", (method == "POST").then_some(Route::MyToken)),
        ["api", "v1", "me", "passkey"] => ("POST", (method == "POST").then_some(Route::MyPasskey)),
        ["api", "v1", "stats"] => ("GET, HEAD", get(method, Route::Totals)),
        ["api", "v1", "events"] => ("GET, HEAD", get(method, Route::Events)),
        ["api", "v1", "history"] => ("GET, HEAD", get(method, Route::History)),
        ["api", "v1", "torrents", hash, "history"] => (
            "GET, HEAD",
            get(method, Route::TorrentHistory((*hash).to_owned())),
        ),
        ["api", "v1", "openapi.json"] => ("GET, HEAD", get(method, Route::OpenApi)),
        ["api", "torznab"] | ["api", "torznab", "api"] => {
            ("GET, HEAD", get(method, Route::Torznab))
        }
        [passkey, "rss"] => (
            "GET, HEAD",
            get(
                method,
                Route::Rss {
                    passkey: (*passkey).to_owned(),
                },
            ),
        ),
        ["torrents"] => (
            "GET, HEAD, POST",
            match method {
                "GET" => Some(Route::ListTorrents),
                "POST" => Some(Route::RegisterTorrent),
                _ => None,
            },
        ),
        ["api", "v1", "torrents"] => (
            "GET, HEAD, POST",
            match method {
                "GET" => Some(Route::Catalog),
                "POST" => Some(Route::UploadTorrent),
                _ => None,
            },
        ),
        ["api", "v1", "torrents", hash] => {
            let hash = (*hash).to_owned();
            (
                "GET, HEAD, PATCH, DELETE",
                match method {
                    "GET" => Some(Route::ShowTorrent(hash)),
                    "PATCH" => Some(Route::EditTorrent(hash)),
                    "DELETE" => Some(Route::RemoveTorrent(hash)),
                    _ => None,
                },
            )
        }
        ["api", "v1", "torrents", hash, "download"] => (
            "GET, HEAD",
            get(
                method,
                Route::Download {
                    hash: (*hash).to_owned(),
                    passkey: None,
                },
            ),
        ),
        [passkey, "download", hash] => (
            "GET, HEAD",
            get(
                method,
                Route::Download {
                    hash: (*hash).to_owned(),
                    passkey: Some((*passkey).to_owned()),
                },
            ),
        ),
        ["torrents", hash] => (
            "DELETE",
            (method == "DELETE").then(|| Route::RemoveTorrent((*hash).to_owned())),
        ),
        _ => {
            let shown = crate::api::access::short(&path.escape_default().to_string());
            return Err(ApiError::NotFound(format!("not found: {shown}")));
        }
    };
    route.ok_or_else(|| ApiError::MethodNotAllowed {
        method: method.to_owned(),
        allow,
    })
}

fn get(method: &str, route: Route) -> Option<Route> {
    (method == "GET").then_some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Route {
        resolve(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn status(method: &str, path: &str) -> u16 {
        resolve(method, path).map_or_else(|e| e.status(), |_| 200)
    }

    #[test]
    fn the_original_endpoints_route_as_before() {
        assert_eq!(ok("GET", "/"), Route::Announce { passkey: None });
        assert_eq!(ok("GET", "/announce"), Route::Announce { passkey: None });
        assert_eq!(ok("HEAD", "/announce"), Route::Announce { passkey: None });
        assert_eq!(ok("GET", "/scrape"), Route::Scrape { passkey: None });
        assert_eq!(ok("GET", "/stats"), Route::Stats);
        assert_eq!(ok("GET", "/metrics"), Route::Metrics);
        assert!(ok("GET", "/metrics").is_admin(), "unless --public-metrics");
        assert_eq!(ok("POST", "/add_torrent_info"), Route::RegisterTorrent);
        assert_eq!(ok("POST", "/api/v1/torrents"), Route::UploadTorrent);
        assert_eq!(
            ok("GET", "/pk/download/ab"),
            Route::Download {
                hash: "ab".into(),
                passkey: Some("pk".into())
            }
        );
        assert_eq!(
            ok("HEAD", "/api/v1/torrents/ab/download"),
            Route::Download {
                hash: "ab".into(),
                passkey: None
            }
        );
        assert_eq!(ok("GET", "/save_state"), Route::SaveState);
        assert_eq!(ok("POST", "/save_state"), Route::SaveState);
        assert_eq!(ok("POST", "/shutdown"), Route::Shutdown);
    }

    #[test]
    fn passkeys_sit_before_announce_and_scrape() {
        let key = "a".repeat(32);
        assert_eq!(
            ok("GET", &format!("/{key}/announce")),
            Route::Announce {
                passkey: Some(key.clone())
            }
        );
        assert_eq!(
            ok("GET", &format!("/{key}/scrape")),
            Route::Scrape { passkey: Some(key) }
        );
        // Anything there is handed on as a passkey, to be refused as one.
        assert_eq!(
            ok("GET", "/../announce"),
            Route::Announce {
                passkey: Some("..".into())
            }
        );
        assert_eq!(status("GET", "/a/b/announce"), 404);
    }

    #[test]
    fn the_admin_api_routes_by_method() {
        assert_eq!(ok("GET", "/users"), Route::ListUsers);
        assert_eq!(ok("POST", "/users"), Route::CreateUser);
        assert_eq!(
            ok("DELETE", "/users/alice"),
            Route::DeleteUser("alice".into())
        );
        assert_eq!(
            ok("POST", "/users/alice/rotate"),
            Route::RotateUser("alice".into())
        );
        assert_eq!(
            ok("POST", "/users/alice/disable"),
            Route::DisableUser("alice".into())
        );
        assert_eq!(
            ok("POST", "/users/alice/enable"),
            Route::EnableUser("alice".into())
        );
        assert_eq!(ok("GET", "/torrents"), Route::ListTorrents);
        assert_eq!(ok("POST", "/torrents"), Route::RegisterTorrent);
        assert_eq!(
            ok("DELETE", "/torrents/ab"),
            Route::RemoveTorrent("ab".into())
        );
        assert!(ok("GET", "/users").is_admin() && !ok("GET", "/stats").is_admin());
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        assert_eq!(status("GET", "/nope"), 404);
        let long = format!("/{}", "x".repeat(16_000));
        let echoed = resolve("GET", &long).unwrap_err().to_string();
        assert!(echoed.len() < 100, "{} bytes echoed", echoed.len());
        assert_eq!(status("GET", "/announce/"), 404);
        assert_eq!(status("GET", "/users/alice/promote"), 404);
        match resolve("POST", "/announce") {
            Err(ApiError::MethodNotAllowed { allow, .. }) => assert_eq!(allow, "GET, HEAD"),
            other => panic!("{other:?}"),
        }
        assert_eq!(status("GET", "/users/alice"), 405);
        assert_eq!(status("PUT", "/users"), 405);
        assert_eq!(status("GET", "/shutdown"), 405);
    }
}
