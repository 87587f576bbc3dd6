//! Announces and scrapes for every transport (HTTP, UDP): the passkey rules and the one swarm
//! call, so each transport only reads its requests and writes its answers. With a shared store
//! the swarm call is one script call to Redis, which checks the passkey itself.

use std::borrow::Cow;

use log::warn;

use crate::api::app::App;
use crate::error::ProtocolError;
use crate::protocol::ids::InfoHash;
use crate::protocol::{self, AnnounceRequest, AnnounceResponse, Family, ScrapeCounts};
use crate::store::info::TorrentInfo;
use crate::store::redis::Unavailable;
use crate::store::users::{Passkey, UserId};

/// Who announces: a user of this process's store (0: nobody), or a passkey the shared store
/// checks as part of the announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller<'a> {
    Local(UserId),
    Shared(Option<Cow<'a, str>>),
}

/// The caller a request's passkey (from the path, else `?passkey=`) names; refused when there is
/// none and one is required.
pub fn passkey_user<'a>(
    app: &App,
    from_path: Option<&'a str>,
    query: &str,
    now: u64,
) -> Result<Caller<'a>, ProtocolError> {
    let from_query = protocol::query_value(query, "passkey");
    // Borrowed, not copied: this runs for every announce.
    let passkey = match (from_path, &from_query) {
        (Some(key), _) => Some(Cow::Borrowed(key)),
        (None, Some(key)) => Some(Cow::Owned(String::from_utf8_lossy(key).into_owned())),
        (None, None) => None,
    };
    if app.shared.is_some() {
        // Checked in the store; only its form here (a malformed one is never a user's).
        let passkey = passkey.filter(|key| Passkey::parse(key).is_some());
        if passkey.is_none() && app.config.require_passkey {
            return Err(ProtocolError::InvalidPasskey);
        }
        return Ok(Caller::Shared(passkey));
    }
    let user = match passkey {
        Some(key) if app.config.require_passkey => app.users.resolve(Some(&key), now)?,
        // Passkeys are optional: a valid one still gets its user credited, anything else
        // (a reverse-proxy path prefix, say) is ignored as the open tracker always did.
        Some(key) => app.users.resolve(Some(&key), now).unwrap_or(0),
        None if app.config.require_passkey => return Err(ProtocolError::InvalidPasskey),
        None => 0,
    };
    Ok(Caller::Local(user))
}

/// A shared store's fault, as clients and the log see it.
fn store_fault(e: Unavailable) -> ProtocolError {
    warn!("{e}");
    ProtocolError::StoreUnavailable
}

/// Announces `req` for `caller` (from [`passkey_user`]) into `answer` and credits the user: one
/// swarm call.
pub fn announce(
    app: &App,
    caller: &Caller,
    req: &AnnounceRequest,
    now: u64,
    family: Family,
    answer: &mut AnnounceResponse,
) -> Result<(), ProtocolError> {
    match (caller, &app.shared) {
        (Caller::Shared(passkey), Some(shared)) => {
            app.claim_pending(&req.info_hash).map_err(store_fault)?;
            let config = &app.config.swarm;
            let passkey = crate::store::redis::Passkey {
                required: app.config.require_passkey,
                given: passkey.as_deref(),
            };
            let call = |answer: &mut AnnounceResponse| {
                shared
                    .store
                    .announce(config, passkey, req, now, family, answer)
                    .map_err(store_fault)
            };
            match call(answer)? {
                Err(ProtocolError::UnregisteredTorrent)
                    if settled_elsewhere(app, &[req.info_hash])? =>
                {
                    call(answer)??
                }
                outcome => outcome?,
            }
            answer.interval_secs = app.swarm.jittered_interval();
            answer.min_interval_secs = config.min_interval_secs;
            Ok(())
        }
        (Caller::Local(user), _) => {
            let credit = app.swarm.announce_into(req, *user, now, family, answer)?;
            app.users.credit(credit);
            Ok(())
        }
        (Caller::Shared(_), None) => Err(ProtocolError::StoreUnavailable),
    }
}

/// An HTTP scrape: each hash served, keyed as asked, with its metadata and counts.
pub fn scrape(
    app: &App,
    caller: &Caller,
    hashes: &[InfoHash],
    now: u64,
) -> Result<Vec<(InfoHash, TorrentInfo, ScrapeCounts)>, ProtocolError> {
    let Some(shared) = &app.shared else {
        return app.swarm.scrape(hashes, now);
    };
    let found = shared_scrape(app, shared, caller, hashes)?;
    let out: Vec<_> = hashes
        .iter()
        .zip(found)
        .filter_map(|(asked, found)| {
            let (own, counts) = found?;
            let info = app
                .swarm
                .info(&own)
                .map(|(_, info, _)| info)
                .unwrap_or_default();
            Some((*asked, info, counts))
        })
        .collect();
    if out.is_empty() && app.config.swarm.registered_only {
        return Err(ProtocolError::UnregisteredTorrent);
    }
    Ok(out)
}

/// A UDP scrape: counts per hash in the order asked (zeros for one not served), into `out`.
pub fn scrape_counts(
    app: &App,
    caller: &Caller,
    hashes: impl Iterator<Item = InfoHash>,
    now: u64,
    out: &mut Vec<ScrapeCounts>,
) -> Result<(), ProtocolError> {
    let Some(shared) = &app.shared else {
        return app.swarm.scrape_counts(hashes, now, out);
    };
    let hashes: Vec<InfoHash> = hashes.collect();
    let found = shared_scrape(app, shared, caller, &hashes)?;
    out.clear();
    let served = found.iter().flatten().count();
    out.extend(
        found
            .into_iter()
            .map(|f| f.map(|(_, c)| c).unwrap_or_default()),
    );
    if served == 0 && app.config.swarm.registered_only {
        return Err(ProtocolError::UnregisteredTorrent);
    }
    Ok(())
}

fn shared_scrape(
    app: &App,
    shared: &crate::api::shared::Shared,
    caller: &Caller,
    hashes: &[InfoHash],
) -> Result<Vec<Option<(InfoHash, ScrapeCounts)>>, ProtocolError> {
    for hash in hashes {
        app.claim_pending(hash).map_err(store_fault)?;
    }
    let passkey = match caller {
        Caller::Shared(passkey) => passkey.as_deref(),
        Caller::Local(_) => None,
    };
    let call = || {
        shared
            .store
            .scrape(
                hashes,
                app.config.swarm.registered_only,
                crate::store::redis::Passkey {
                    required: app.config.require_passkey,
                    given: passkey,
                },
            )
            .map_err(store_fault)
    };
    let found = call()??;
    let refused = app.config.swarm.registered_only && found.iter().all(Option::is_none);
    if refused && settled_elsewhere(app, hashes)? {
        return call()?;
    }
    Ok(found)
}

/// After a refusal for an unregistered torrent on a shared store: whether a registration that
/// another instance left pending (it waits for the first announce or scrape of one of its
/// candidates) names one of `hashes`. The copy is brought up to date first, since announces do
/// not read the change log; a registration found is settled.
fn settled_elsewhere(app: &App, hashes: &[InfoHash]) -> Result<bool, ProtocolError> {
    app.sync(false).map_err(store_fault)?;
    let mut settled = false;
    for hash in hashes {
        if app.swarm.is_pending(hash) {
            app.claim_pending(hash).map_err(store_fault)?;
            settled = true;
        }
    }
    Ok(settled)
}
