//! Users of a private tracker: names, passkeys and accounting totals, behind one short lock.
//! No I/O and no clock (`now` is a parameter). Peers refer to users by [`UserId`], files by name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::error::ProtocolError;

/// A user's number inside this process (never reused, never saved: files use names). 0 means "nobody".
pub type UserId = u32;

/// 32 ASCII letters and digits, from the OS random source.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Passkey([u8; 32]);

impl Passkey {
    pub fn generate() -> Passkey {
        let mut key = [0u8; 32];
        for (slot, c) in key
            .iter_mut()
            .zip(rand::rngs::OsRng.sample_iter(&Alphanumeric))
        {
            *slot = c;
        }
        Passkey(key)
    }

    /// Exactly 32 ASCII letters and digits.
    pub fn parse(text: &str) -> Option<Passkey> {
        let bytes = <[u8; 32]>::try_from(text.as_bytes()).ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(Passkey(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics ever get in (generate, parse).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Passkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Passkeys are secrets: debug output shows only their start.
impl fmt::Debug for Passkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passkey({}…)", &self.as_str()[..4])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub passkey: Passkey,
    pub created_unix: u64,
    pub last_seen_unix: Option<u64>,
    pub uploaded: u64,
    pub downloaded: u64,
    pub completed: u64,
    pub disabled: bool,
    /// SHA-256 of the user's API token (the token itself is shown once, when issued).
    pub token_hash: Option<[u8; 32]>,
    pub role: Role,
    /// The password's Argon2id hash (PHC string), once the user chose one through an invite.
    pub password: Option<String>,
}

/// A one-time invite: whose, and until when (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invite {
    pub user: UserId,
    pub expires_unix: u64,
}

/// A signed-in browser: whose, until when, and the token its unsafe requests must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: UserId,
    pub expires_unix: u64,
    pub csrf: String,
}

/// Invites and sessions as the state file keeps them: by the SHA-256 of their secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub invites: Vec<([u8; 32], String, u64)>,
    pub sessions: Vec<([u8; 32], String, u64, String)>,
}

/// A random secret of `n` ASCII letters and digits, from the OS random source.
pub fn secret(n: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// What a user may do besides reading and downloading, as private communities run it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, downloads; uploads when the tracker runs with `--user-uploads`.
    #[default]
    Member,
    /// Uploads, whatever `--user-uploads` says.
    Uploader,
    /// Edits or removes any torrent, disables and enables users.
    Moderator,
    /// Everything an operator does.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Member, Role::Uploader, Role::Moderator, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Uploader => "uploader",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text.trim())
    }
}

/// How long a session lasts, in seconds (14 days).
pub const SESSION_SECS: u64 = 14 * 24 * 60 * 60;
/// How long an invite link works, in seconds (7 days).
pub const INVITE_SECS: u64 = 7 * 24 * 60 * 60;

/// How every API token starts: it is never mistaken for a passkey or the admin token.
pub const TOKEN_PREFIX: &str = "tt_";

/// An API token: [`TOKEN_PREFIX`] and 40 ASCII letters and digits from the OS random source.
pub fn generate_token() -> String {
    let mut token = String::from(TOKEN_PREFIX);
    token.extend(
        rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from),
    );
    token
}

/// What is kept of a token: its SHA-256.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("no user named {0:?}")]
    NotFound(String),
    #[error("a user named {0:?} already exists")]
    Taken(String),
    #[error("user names are 1 to 64 letters, digits, '.', '_' or '-'; got {0:?}")]
    BadName(String),
}

/// What one announce adds to a user's totals.
/// A user's accounting, as kept apart from the rest of the user by a shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub uploaded: u64,
    pub downloaded: u64,
    pub completed: u64,
    pub last_seen_unix: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credit {
    pub user: UserId,
    pub uploaded: u64,
    pub downloaded: u64,
    pub completed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    last_id: UserId,
    by_id: BTreeMap<UserId, User>,
    by_name: HashMap<String, UserId>,
    by_passkey: HashMap<Passkey, UserId>,
    by_token: HashMap<[u8; 32], UserId>,
    /// By the SHA-256 of the invite's secret.
    invites: HashMap<[u8; 32], Invite>,
    /// By the SHA-256 of the session id.
    sessions: HashMap<[u8; 32], Session>,
    /// Passkeys that worked once (rotated away, or of deleted users), with whose they were.
    revoked: HashMap<Passkey, String>,
    /// Counts the times the users may have changed (so a save can tell nothing did).
    changes: u64,
}

#[derive(Debug, Default)]
pub struct Users {
    inner: Mutex<Inner>,
}

impl Users {
    /// For a change: the change count goes up.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.read();
        inner.changes += 1;
        inner
    }

    /// For reading only.
    fn read(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Grows whenever the users may have changed.
    pub fn changes(&self) -> u64 {
        self.read().changes
    }

    /// The user a passkey belongs to, noting that the user was seen now.
    pub fn resolve(&self, passkey: Option<&str>, now_unix: u64) -> Result<UserId, ProtocolError> {
        let key = passkey
            .and_then(Passkey::parse)
            .ok_or(ProtocolError::InvalidPasskey)?;
        let mut inner = self.lock();
        let Some(&id) = inner.by_passkey.get(&key) else {
            return Err(if inner.revoked.contains_key(&key) {
                ProtocolError::PasskeyRevoked
            } else {
                ProtocolError::InvalidPasskey
            });
        };
        let user = inner
            .by_id
            .get_mut(&id)
            .ok_or(ProtocolError::InvalidPasskey)?;
        if user.disabled {
            return Err(ProtocolError::PasskeyRevoked);
        }
        user.last_seen_unix = Some(now_unix);
        Ok(id)
    }

    /// Adds an announce's byte deltas and completion to its user (gone users are ignored).
    pub fn credit(&self, credit: Credit) {
        if credit.user == 0 {
            return;
        }
        if let Some(user) = self.lock().by_id.get_mut(&credit.user) {
            user.uploaded = user.uploaded.saturating_add(credit.uploaded);
            user.downloaded = user.downloaded.saturating_add(credit.downloaded);
            user.completed += u64::from(credit.completed);
        }
    }

    pub fn create(&self, name: &str, now_unix: u64) -> Result<User, UserError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(UserError::BadName(name.to_owned()));
        }
        let mut inner = self.lock();
        if inner.by_name.contains_key(name) {
            return Err(UserError::Taken(name.to_owned()));
        }
        let user = User {
            id: 0,
            name: name.to_owned(),
            passkey: Passkey::generate(),
            created_unix: now_unix,
            last_seen_unix: None,
            uploaded: 0,
            downloaded: 0,
            completed: 0,
            disabled: false,
            token_hash: None,
            role: Role::Member,
            password: None,
        };
        Ok(inner.insert(user))
    }

    /// A new one-time invite for `name`, valid until `expires_unix` (an older one stops
    /// working). Returns the user and the invite's secret, shown only now.
    pub fn invite(&self, name: &str, expires_unix: u64) -> Result<(User, String), UserError> {
        let secret = secret(32);
        let mut inner = self.lock();
        let id = inner.id(name)?;
        inner.invites.retain(|_, i| i.user != id);
        inner.invites.insert(
            token_hash(&secret),
            Invite {
                user: id,
                expires_unix,
            },
        );
        let user = inner
            .by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| UserError::NotFound(name.into()))?;
        Ok((user, secret))
    }

    /// The user an invite is for, while it is valid (unused, not expired, user enabled).
    pub fn invited(&self, secret: &str, now_unix: u64) -> Option<(User, u64)> {
        let inner = self.read();
        let invite = inner.invites.get(&token_hash(secret))?;
        if invite.expires_unix <= now_unix {
            return None;
        }
        let user = inner.by_id.get(&invite.user).filter(|u| !u.disabled)?;
        Some((user.clone(), invite.expires_unix))
    }

    /// Uses an invite: the user's password becomes `password_hash`, the invite is gone.
    pub fn accept_invite(
        &self,
        secret: &str,
        password_hash: String,
        now_unix: u64,
    ) -> Option<User> {
        let mut inner = self.lock();
        let key = token_hash(secret);
        let invite = *inner.invites.get(&key)?;
        inner.invites.remove(&key);
        if invite.expires_unix <= now_unix {
            return None;
        }
        let user = inner.by_id.get_mut(&invite.user).filter(|u| !u.disabled)?;
        user.password = Some(password_hash);
        Some(user.clone())
    }

    /// Opens a session for `user` until `expires_unix`: (session id, CSRF token), shown only now.
    pub fn open_session(&self, user: UserId, expires_unix: u64) -> (String, String) {
        let (id, csrf) = (secret(43), secret(32));
        let mut inner = self.lock();
        // Expired sessions go as new ones come.
        inner
            .sessions
            .retain(|_, s| s.expires_unix > expires_unix.saturating_sub(SESSION_SECS));
        inner.sessions.insert(
            token_hash(&id),
            Session {
                user,
                expires_unix,
                csrf: csrf.clone(),
            },
        );
        (id, csrf)
    }

    /// The user and CSRF token of a session, while it is valid (the user enabled).
    pub fn session(&self, id: &str, now_unix: u64) -> Option<(User, String)> {
        let inner = self.read();
        let session = inner.sessions.get(&token_hash(id))?;
        if session.expires_unix <= now_unix {
            return None;
        }
        let user = inner.by_id.get(&session.user).filter(|u| !u.disabled)?;
        Some((user.clone(), session.csrf.clone()))
    }

    /// Ends a session (signing out).
    pub fn close_session(&self, id: &str) -> bool {
        self.lock().sessions.remove(&token_hash(id)).is_some()
    }

    /// Invites and sessions, for the state file.
    pub fn access(&self) -> Access {
        let inner = self.read();
        let name = |id: &UserId| inner.by_id.get(id).map(|u| u.name.clone());
        let mut access = Access::default();
        for (key, invite) in &inner.invites {
            if let Some(name) = name(&invite.user) {
                access.invites.push((*key, name, invite.expires_unix));
            }
        }
        for (key, session) in &inner.sessions {
            if let Some(name) = name(&session.user) {
                access
                    .sessions
                    .push((*key, name, session.expires_unix, session.csrf.clone()));
            }
        }
        access.invites.sort();
        access.sessions.sort();
        access
    }

    /// Puts saved invites and sessions back (startup only, after [`Users::restore`]).
    pub fn restore_access(&self, access: Access) {
        let mut inner = self.lock();
        for (key, name, expires_unix) in access.invites {
            if let Ok(user) = inner.id(&name) {
                inner.invites.insert(key, Invite { user, expires_unix });
            }
        }
        for (key, name, expires_unix, csrf) in access.sessions {
            if let Ok(user) = inner.id(&name) {
                inner.sessions.insert(
                    key,
                    Session {
                        user,
                        expires_unix,
                        csrf,
                    },
                );
            }
        }
    }

    pub fn set_role(&self, name: &str, role: Role) -> Result<User, UserError> {
        let mut inner = self.lock();
        let user = inner.user_mut(name)?;
        user.role = role;
        Ok(user.clone())
    }

    /// A new API token for `name` (the old one stops working). Returns the token, shown only now.
    pub fn issue_token(&self, name: &str) -> Result<(User, String), UserError> {
        let token = generate_token();
        let hash = token_hash(&token);
        let mut inner = self.lock();
        let id = inner.id(name)?;
        let user = inner.user_mut(name)?;
        let old = user.token_hash.replace(hash);
        let user = user.clone();
        if let Some(old) = old {
            inner.by_token.remove(&old);
        }
        inner.by_token.insert(hash, id);
        Ok((user, token))
    }

    /// The user an API token belongs to (a disabled user's token is refused).
    pub fn by_token(&self, token: &str) -> Option<User> {
        let inner = self.read();
        let id = inner.by_token.get(&token_hash(token))?;
        inner.by_id.get(id).filter(|u| !u.disabled).cloned()
    }

    /// A user by number.
    pub fn get(&self, id: UserId) -> Option<User> {
        self.read().by_id.get(&id).cloned()
    }

    /// A user by name.
    pub fn find(&self, name: &str) -> Option<User> {
        let inner = self.read();
        inner.by_id.get(inner.by_name.get(name)?).cloned()
    }

    /// A new passkey for `name`; the old one is refused from now on.
    pub fn rotate(&self, name: &str) -> Result<User, UserError> {
        let mut inner = self.lock();
        let id = inner.id(name)?;
        let new_key = Passkey::generate();
        let user = inner.user_mut(name)?;
        let old_key = std::mem::replace(&mut user.passkey, new_key);
        let user = user.clone();
        inner.sessions.retain(|_, s| s.user != id);
        inner.by_passkey.remove(&old_key);
        inner.revoked.insert(old_key, name.to_owned());
        inner.by_passkey.insert(new_key, id);
        Ok(user)
    }

    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<User, UserError> {
        let mut inner = self.lock();
        let id = inner.id(name)?;
        if disabled {
            inner.sessions.retain(|_, s| s.user != id);
        }
        let user = inner.user_mut(name)?;
        user.disabled = disabled;
        Ok(user.clone())
    }

    /// Removes a user; their passkey is refused as revoked from now on.
    pub fn delete(&self, name: &str) -> Result<User, UserError> {
        let mut inner = self.lock();
        let id = inner.id(name)?;
        let user = inner
            .by_id
            .remove(&id)
            .ok_or_else(|| UserError::NotFound(name.into()))?;
        inner.by_name.remove(name);
        inner.by_passkey.remove(&user.passkey);
        inner.sessions.retain(|_, s| s.user != id);
        inner.invites.retain(|_, i| i.user != id);
        if let Some(hash) = &user.token_hash {
            inner.by_token.remove(hash);
        }
        inner.revoked.insert(user.passkey, user.name.clone());
        Ok(user)
    }

    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every user, sorted by name.
    pub fn list(&self) -> Vec<User> {
        let mut users: Vec<User> = self.read().by_id.values().cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// Everything worth saving: the users and the revoked passkeys.
    pub fn snapshot(&self) -> (Vec<User>, Vec<(Passkey, String)>) {
        let inner = self.read();
        let mut users: Vec<User> = inner.by_id.values().cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        let mut revoked: Vec<_> = inner.revoked.iter().map(|(k, n)| (*k, n.clone())).collect();
        revoked.sort();
        (users, revoked)
    }

    /// Puts loaded users in place (startup only), keeping their ids (peers refer to them).
    /// Puts `users`, `revoked` and `access` in place of everything held (a shared store's
    /// newer copy). Their ids are the ones given (peers held here refer to none of them).
    pub fn replace(&self, users: Vec<User>, revoked: Vec<(Passkey, String)>, access: Access) {
        {
            let mut inner = self.lock();
            let changes = inner.changes;
            *inner = Inner {
                changes,
                ..Inner::default()
            };
        }
        self.restore(users, revoked);
        self.restore_access(access);
    }

    /// Sets a user's accounting totals as a shared store keeps them.
    pub fn set_totals(&self, name: &str, totals: Totals) {
        let mut inner = self.lock();
        if let Ok(user) = inner.user_mut(name) {
            user.uploaded = totals.uploaded;
            user.downloaded = totals.downloaded;
            user.completed = totals.completed;
            user.last_seen_unix = totals.last_seen_unix.or(user.last_seen_unix);
        }
    }

    pub fn restore(&self, users: Vec<User>, revoked: Vec<(Passkey, String)>) {
        let mut inner = self.lock();
        inner.revoked.extend(revoked);
        for user in users {
            inner.last_id = inner.last_id.max(user.id);
            inner.by_name.insert(user.name.clone(), user.id);
            inner.by_passkey.insert(user.passkey, user.id);
            if let Some(hash) = user.token_hash {
                inner.by_token.insert(hash, user.id);
            }
            inner.revoked.remove(&user.passkey);
            inner.by_id.insert(user.id, user);
        }
    }
}

impl Inner {
    fn insert(&mut self, mut user: User) -> User {
        self.last_id += 1;
        user.id = self.last_id;
        self.by_name.insert(user.name.clone(), user.id);
        self.by_passkey.insert(user.passkey, user.id);
        self.revoked.remove(&user.passkey);
        self.by_id.insert(user.id, user.clone());
        user
    }

    fn id(&self, name: &str) -> Result<UserId, UserError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| UserError::NotFound(name.to_owned()))
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, UserError> {
        let id = self.id(name)?;
        self.by_id
            .get_mut(&id)
            .ok_or_else(|| UserError::NotFound(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn passkeys_are_32_alphanumerics_and_differ() {
        let a = Passkey::generate();
        let b = Passkey::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(Passkey::parse(a.as_str()), Some(a));
        assert_eq!(Passkey::parse("short"), None);
        assert_eq!(Passkey::parse(&"../".repeat(11)[..32]), None);
        assert!(
            !format!("{a:?}").contains(a.as_str()),
            "debug output hides the secret"
        );
    }

    #[test]
    fn a_created_user_resolves_by_passkey() {
        let users = Users::default();
        let alice = users.create("alice", NOW).unwrap();
        assert_eq!(
            users.resolve(Some(alice.passkey.as_str()), NOW + 5),
            Ok(alice.id)
        );
        assert_eq!(users.list()[0].last_seen_unix, Some(NOW + 5));
        assert_eq!(users.resolve(None, NOW), Err(ProtocolError::InvalidPasskey));
        assert_eq!(
            users.resolve(Some(Passkey::generate().as_str()), NOW),
            Err(ProtocolError::InvalidPasskey)
        );
        assert_eq!(
            users.create("alice", NOW),
            Err(UserError::Taken("alice".into()))
        );
        assert!(matches!(
            users.create("bad name", NOW),
            Err(UserError::BadName(_))
        ));
        assert!(matches!(users.create("", NOW), Err(UserError::BadName(_))));
    }

    #[test]
    fn rotating_revokes_the_old_passkey_at_once() {
        let users = Users::default();
        let old = users.create("bob", NOW).unwrap();
        let new = users.rotate("bob").unwrap();
        assert_ne!(old.passkey, new.passkey);
        assert_eq!(
            users.resolve(Some(old.passkey.as_str()), NOW),
            Err(ProtocolError::PasskeyRevoked)
        );
        assert_eq!(users.resolve(Some(new.passkey.as_str()), NOW), Ok(old.id));
    }

    #[test]
    fn disabled_and_deleted_users_are_revoked() {
        let users = Users::default();
        let carol = users.create("carol", NOW).unwrap();
        users.set_disabled("carol", true).unwrap();
        assert_eq!(
            users.resolve(Some(carol.passkey.as_str()), NOW),
            Err(ProtocolError::PasskeyRevoked)
        );
        users.set_disabled("carol", false).unwrap();
        assert!(users.resolve(Some(carol.passkey.as_str()), NOW).is_ok());
        users.delete("carol").unwrap();
        assert_eq!(
            users.resolve(Some(carol.passkey.as_str()), NOW),
            Err(ProtocolError::PasskeyRevoked)
        );
        assert_eq!(
            users.delete("carol"),
            Err(UserError::NotFound("carol".into()))
        );
    }

    #[test]
    fn credit_adds_to_the_user_and_ignores_nobody() {
        let users = Users::default();
        let dave = users.create("dave", NOW).unwrap();
        users.credit(Credit {
            user: dave.id,
            uploaded: 10,
            downloaded: 20,
            completed: true,
        });
        users.credit(Credit {
            user: dave.id,
            uploaded: 5,
            downloaded: 0,
            completed: false,
        });
        users.credit(Credit {
            user: 0,
            uploaded: 99,
            downloaded: 99,
            completed: true,
        });
        let dave = &users.list()[0];
        assert_eq!(
            (dave.uploaded, dave.downloaded, dave.completed),
            (15, 20, 1)
        );
    }

    #[test]
    fn snapshot_and_restore_keep_users_and_revocations() {
        let users = Users::default();
        let erin = users.create("erin", NOW).unwrap();
        let rotated = users.rotate("erin").unwrap();
        users.credit(Credit {
            user: erin.id,
            uploaded: 7,
            downloaded: 8,
            completed: false,
        });
        let (list, revoked) = users.snapshot();
        let copy = Users::default();
        copy.restore(list, revoked);
        assert_eq!(
            copy.resolve(Some(erin.passkey.as_str()), NOW),
            Err(ProtocolError::PasskeyRevoked)
        );
        let id = copy.resolve(Some(rotated.passkey.as_str()), NOW).unwrap();
        assert_eq!(copy.read().by_name.get("erin"), Some(&id));
        assert_eq!(copy.list()[0].uploaded, 7);
    }
}
