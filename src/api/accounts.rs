//! Accounts for people in a browser: one-time invites, passwords (Argon2id, `argon2` crate),
//! sign-in with failures limited per name and per address, and sessions in an `HttpOnly;
//! SameSite=Strict` cookie whose unsafe requests also carry a CSRF token (synchronizer: the token
//! the session was given, sent back in `X-CSRF-Token`).

use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde_json::{json, Value};

use crate::api::admin::{user_json, AnnounceBase};
use crate::api::app::App;
use crate::api::reply::Reply;
use crate::error::ApiError;
use crate::store::users::{User, INVITE_SECS, SESSION_SECS};

/// The session cookie's name.
pub const COOKIE: &str = "tt_session";
/// Shortest and longest password.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=1024;

/// The Argon2id hash (PHC string) of a password.
fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::Internal(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash to check unknown names against, so they take as long as known ones.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("not anybody's password").unwrap_or_default())
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest(format!("{name}: missing (a string)")))
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))
}

/// `POST /api/v1/users/NAME/invite`: a one-time link for NAME to choose a password.
pub fn invite(app: &App, name: &str, base: &AnnounceBase, now: u64) -> Result<Value, ApiError> {
    let expires = now + INVITE_SECS;
    let (user, secret) = app
        .users
        .invite(name, expires)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok(json!({
        "name": user.name,
        "invite_url": format!("{}/web/invite/{secret}", base.url),
        "expires": expires,
    }))
}

fn unusable_invite() -> ApiError {
    ApiError::NotFound("this invite link is unknown, used or expired: ask for a new one".into())
}

/// `GET /api/v1/invites/SECRET`: whose invite it is, while it works.
pub fn show_invite(app: &App, secret: &str, now: u64) -> Result<Value, ApiError> {
    let (user, expires) = app.users.invited(secret, now).ok_or_else(unusable_invite)?;
    Ok(json!({ "name": user.name, "expires": expires }))
}

/// `POST /api/v1/invites/SECRET` with `{"password": …}`: sets the password, uses up the invite
/// and signs the user in.
pub fn accept_invite(app: &App, secret: &str, body: &[u8], now: u64, tls: bool) -> Reply {
    let accepted = json_body(body).and_then(|body| {
        let password = field(&body, "password")?;
        let chars = password.chars().count();
        if !PASSWORD_CHARS.contains(&chars) {
            return Err(ApiError::BadRequest(format!(
                "password: {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            )));
        }
        app.users.invited(secret, now).ok_or_else(unusable_invite)?;
        let hash = hash_password(password)?;
        app.users
            .accept_invite(secret, hash, now)
            .ok_or_else(unusable_invite)
    });
    match accepted {
        Ok(user) => signed_in(app, &user, now, 201, tls),
        Err(e) => Reply::error(e),
    }
}

/// `POST /api/v1/session` with `{"name": …, "password": …}`.
pub fn sign_in(app: &App, body: &[u8], address: IpAddr, now: u64, tls: bool) -> Reply {
    let result = json_body(body).and_then(|body| {
        let name = field(&body, "name")?.to_owned();
        let password = field(&body, "password")?.to_owned();
        if let Err(secs) = app.sign_in_limits.check(&name, address, now) {
            return Err(ApiError::TooManyRequests(format!(
                "too many failed sign-ins; try again in {} minutes",
                secs.div_ceil(60)
            )));
        }
        let user = app.users.find(&name).filter(|u| !u.disabled);
        let stored = user.as_ref().and_then(|u| u.password.as_deref());
        let right = verify_password(&password, stored.unwrap_or_else(|| decoy()));
        match user {
            Some(user) if right && stored.is_some() => {
                app.sign_in_limits.succeeded(&name);
                Ok(user)
            }
            _ => {
                app.sign_in_limits.failed(&name, address, now);
                Err(ApiError::Unauthorized("wrong name or password".into()))
            }
        }
    });
    match result {
        Ok(user) => signed_in(app, &user, now, 200, tls),
        Err(e) => Reply::error(e),
    }
}

/// A new session for `user`: its cookie and its CSRF token.
fn signed_in(app: &App, user: &User, now: u64, status: u16, tls: bool) -> Reply {
    let (id, csrf) = app.users.open_session(user.id, now + SESSION_SECS);
    let mut reply = Reply::json(
        status,
        &json!({ "name": user.name, "role": user.role.name(), "csrf_token": csrf }),
    );
    reply
        .headers
        .push(("Set-Cookie", cookie(app, &id, SESSION_SECS, tls)));
    reply
}

/// The session cookie: `HttpOnly; SameSite=Strict; Path=/`, and `Secure` when the tracker is
/// reached over HTTPS (this request came over TLS, or `--public-url` is https).
fn cookie(app: &App, value: &str, max_age: u64, tls: bool) -> String {
    let secure = tls
        || app
            .config
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `GET /api/v1/session`: the signed-in user and the session's CSRF token.
pub fn session_info(user: &User, csrf: &str, base: &AnnounceBase) -> Value {
    let mut value = user_json(user, &base.url);
    value["csrf_token"] = json!(csrf);
    value
}

/// `DELETE /api/v1/session`: signs out; the cookie is cleared.
pub fn sign_out(app: &App, session: Option<&str>, tls: bool) -> Reply {
    if let Some(id) = session {
        app.users.close_session(id);
    }
    let mut reply = Reply::json(200, &json!({ "message": "Signed out" }));
    reply.headers.push(("Set-Cookie", cookie(app, "", 0, tls)));
    reply
}

/// The session id in a request's `Cookie` header.
pub fn session_cookie(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            session_cookie(Some("a=1; tt_session=abc; b=2")),
            Some("abc")
        );
        assert_eq!(session_cookie(Some("tt_session=")), None);
        assert_eq!(session_cookie(None), None);
    }
}
