//! Announces and scrapes for every transport (HTTP, UDP): the passkey rules and the one swarm
//! call, so each transport only reads its requests and writes its answers.

use std::borrow::Cow;

use crate::api::app::App;
use crate::error::ProtocolError;
use crate::protocol::{self, AnnounceRequest, AnnounceResponse, Family};
use crate::store::users::UserId;

/// The user a request's passkey (from the path, else `?passkey=`) belongs to; 0 when there is none
/// and none is required.
pub fn passkey_user(
    app: &App,
    from_path: Option<&str>,
    query: &str,
    now: u64,
) -> Result<UserId, ProtocolError> {
    let from_query = protocol::query_value(query, "passkey");
    // Borrowed, not copied: this runs for every announce.
    let passkey = match (from_path, &from_query) {
        (Some(key), _) => Some(Cow::Borrowed(key)),
        (None, Some(key)) => Some(String::from_utf8_lossy(key)),
        (None, None) => None,
    };
    match passkey {
        Some(key) if app.config.require_passkey => app.users.resolve(Some(&key), now),
        // Passkeys are optional: a valid one still gets its user credited, anything else
        // (a reverse-proxy path prefix, say) is ignored as the open tracker always did.
        Some(key) => Ok(app.users.resolve(Some(&key), now).unwrap_or(0)),
        None if app.config.require_passkey => Err(ProtocolError::InvalidPasskey),
        None => Ok(0),
    }
}

/// Announces `req` for `user` (from [`passkey_user`]) into `answer` and credits the user: one swarm
/// call.
pub fn announce(
    app: &App,
    user: UserId,
    req: &AnnounceRequest,
    now: u64,
    family: Family,
    answer: &mut AnnounceResponse,
) -> Result<(), ProtocolError> {
    let credit = app.swarm.announce_into(req, user, now, family, answer)?;
    app.users.credit(credit);
    Ok(())
}
