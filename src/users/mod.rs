//! Administration users, roles, permissions and sessions, and how users made through the API
//! are kept in the store (`admin_user` documents, restored at start).
//!
//! Passwords are stored as Argon2id PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`):
//! a memory-hard, salted hash, so a leaked configuration or store does not give passwords away
//! to a GPU farm the way a fast salted SHA-256 would; the parameters travel inside the string,
//! so they can be raised later without invalidating stored hashes. Verification compares in
//! constant time (inside the argon2 crate), and a login for an unknown user still runs one
//! verification, so the answer time does not tell which user names exist.
//!
//! A successful login returns a random 256-bit bearer token; only its SHA-256 is kept. A session
//! ends after `admin.session_idle_minutes` (default 20, as the seed's UI) without a request,
//! measured with the injected clock, or at logout.

pub mod login_guard;

use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::clock::SharedClock;
use crate::config::{AdminSettings, AdminUserSpec};
use crate::store::Document;
use login_guard::LoginGuard;

/// A role of the seed's Callback UI; a user may hold several.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    utoipa::ToSchema,
)]
pub enum Role {
    /// Everything, including rules, groups, users, agents and reload.
    Administrator,
    /// The whole Callback tab (create, cancel, reschedule, export) and the Tools tab.
    Supervisor,
    /// Reads callbacks only (and, as the seed says, rules and groups read-only).
    Monitor,
    /// Reads callbacks; the Developer tab (errors, API key validation, credentials, CORS).
    Developer,
}

/// One thing a user may do; roles grant sets of them (see [`Role::grants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    /// List, search and read callbacks and their metrics (every role).
    ReadCallbacks,
    /// Create, cancel, reschedule, recreate and bulk-cancel callbacks.
    WriteCallbacks,
    /// Export the cancellation summary as CSV.
    ExportCallbacks,
    /// The Tools tab: queues page, EWT, agents list.
    UseTools,
    /// Read number validation, capacity and region affinity rules and call-in groups (the seed
    /// gives Developer, Supervisor and Monitor read-only access to capacity rules and groups).
    ReadRules,
    /// Create, edit and delete number validation rules (Administrator, Developer, Supervisor).
    WriteNumberRules,
    /// Create, edit and delete capacity rules (Administrator only).
    WriteCapacityRules,
    /// Create, edit and delete region affinity rules (Administrator only).
    WriteRegionRules,
    /// The Call-In tab: Click-to-Call-In requests (Administrator, Developer).
    ReadCallIn,
    /// Create, edit and delete Click-to-Call-In groups (Administrator only).
    WriteCallInGroups,
    /// The Developer tab: error log, API key validation, credentials, CORS origins.
    DeveloperTools,
    /// Manage administration users.
    ManageUsers,
    /// Create, edit and delete agents and change their state.
    ManageAgents,
    /// Re-read the configuration file.
    ReloadConfig,
    /// Read the audit log.
    ReadAudit,
}

impl Permission {
    /// Every permission, for tables and tests.
    pub const ALL: [Permission; 15] = [
        Permission::ReadCallbacks,
        Permission::WriteCallbacks,
        Permission::ExportCallbacks,
        Permission::UseTools,
        Permission::ReadRules,
        Permission::WriteNumberRules,
        Permission::WriteCapacityRules,
        Permission::WriteRegionRules,
        Permission::ReadCallIn,
        Permission::WriteCallInGroups,
        Permission::DeveloperTools,
        Permission::ManageUsers,
        Permission::ManageAgents,
        Permission::ReloadConfig,
        Permission::ReadAudit,
    ];

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Administrator,
        Role::Supervisor,
        Role::Monitor,
        Role::Developer,
    ];

    /// Whether this role grants `p`: the seed's matrix, one arm per role.
    pub fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Administrator => true,
            Role::Supervisor => matches!(
                p,
                ReadCallbacks
                    | WriteCallbacks
                    | ExportCallbacks
                    | UseTools
                    | ReadRules
                    | WriteNumberRules
            ),
            Role::Monitor => matches!(p, ReadCallbacks | ReadRules),
            Role::Developer => matches!(
                p,
                ReadCallbacks
                    | UseTools
                    | ReadRules
                    | WriteNumberRules
                    | ReadCallIn
                    | DeveloperTools
            ),
        }
    }
}

/// The union of several roles' permissions: "the role that allows the most access takes
/// precedence", applied per permission, since Supervisor and Developer are not comparable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u32);

impl Permissions {
    /// Everything the roles grant together.
    pub fn of(roles: &[Role]) -> Self {
        let mut bits = 0;
        for p in Permission::ALL {
            if roles.iter().any(|r| r.grants(p)) {
                bits |= p.bit();
            }
        }
        Permissions(bits)
    }

    /// Whether `p` is granted.
    pub fn has(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// The granted permissions, in [`Permission::ALL`] order.
    pub fn list(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.has(*p))
            .collect()
    }
}

/// Why authentication or a user change failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong user name or password (deliberately not saying which).
    #[error("wrong user name or password")]
    BadCredentials,
    /// No `Authorization: Bearer …` header.
    #[error(
        "an `Authorization: Bearer <token>` header is required; get a token from POST /admin/login"
    )]
    NoToken,
    /// The token is unknown, was logged out, or its session was idle too long.
    #[error("the access token is unknown or expired; log in again")]
    Expired,
    /// The user lacks a permission.
    #[error("your roles do not allow this: it needs the {0:?} permission")]
    Forbidden(Permission),
    /// The user may not read this queue (line-of-business segmentation).
    #[error("you may not read queue `{0}`")]
    QueueDenied(String),
    /// A stored password hash is not an Argon2id PHC string.
    #[error("not an Argon2id password hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash): {0}")]
    BadHash(String),
    /// Hashing failed (parameters out of range).
    #[error("cannot hash the password: {0}")]
    Hashing(String),
    /// Too many wrong passwords for this account: locked for this many more seconds.
    #[error("too many failed logins for this account; retry in {0} s")]
    Locked(u64),
    /// Every password-check slot is busy (a login flood): retry in this many seconds.
    #[error("too many logins at once; retry in {0} s")]
    Busy(u64),
}

impl AuthError {
    /// Seconds for `Retry-After`, for the refusals that have one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AuthError::Locked(s) | AuthError::Busy(s) => Some(*s),
            _ => None,
        }
    }
}

impl From<login_guard::Refusal> for AuthError {
    fn from(r: login_guard::Refusal) -> Self {
        match r {
            login_guard::Refusal::Locked(s) => AuthError::Locked(s),
            login_guard::Refusal::Busy(s) => AuthError::Busy(s),
        }
    }
}

/// True for login names: 1–64 ASCII letters, digits, `_ - . @`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c))
}

/// Argon2id with the OWASP-recommended cost (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a password with a fresh random salt into an Argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hashing(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Checks that `hash` is an Argon2id PHC string this engine can verify.
pub fn check_hash(hash: &str) -> Result<(), AuthError> {
    let parsed = PasswordHash::new(hash).map_err(|e| AuthError::BadHash(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(AuthError::BadHash(format!(
            "algorithm `{}` is not argon2id",
            parsed.algorithm
        )));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(AuthError::BadHash("the salt or the hash is missing".into()));
    }
    Params::try_from(&parsed).map_err(|e| AuthError::BadHash(e.to_string()))?;
    Ok(())
}

/// True when `password` matches the PHC string `hash` (constant-time comparison).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches, verified for unknown users so timing does not reveal names.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

/// An administration user as configured or stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Roles (at least one).
    pub roles: Vec<Role>,
    /// Queues the user may read; `None` = every queue.
    #[serde(default)]
    pub queues: Option<BTreeSet<String>>,
    /// Defined in the configuration file (read-only through the API).
    #[serde(default)]
    pub from_config: bool,
}

impl From<&AdminUserSpec> for UserRecord {
    fn from(s: &AdminUserSpec) -> Self {
        UserRecord {
            name: s.name.clone(),
            password_hash: s.password_hash.clone(),
            roles: s.roles.clone(),
            queues: s.queues.as_ref().map(|q| q.iter().cloned().collect()),
            from_config: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    last_seen: DateTime<Utc>,
}

/// Users and their live sessions.
pub struct AdminAuth {
    users: RwLock<BTreeMap<String, Arc<UserRecord>>>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    idle: TimeDelta,
    clock: SharedClock,
    guard: LoginGuard,
    /// Held by a user change from its checks to its write, so that two changes cannot both
    /// pass a check the other would fail (each removing one of the last two administrators).
    changes: tokio::sync::Mutex<()>,
}

/// A refused login: why, and the lockout the failure started (for the audit log).
#[derive(Debug, PartialEq, Eq)]
pub struct LoginFailed {
    /// What the caller is told.
    pub error: AuthError,
    /// When this wrong password locked the account: for how long.
    pub locks_for: Option<TimeDelta>,
}

/// The token's digest, the only form sessions are kept under.
fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AdminAuth {
    /// Users from the configuration's `admin` section; sessions idle out per its setting.
    pub fn new(settings: &AdminSettings, clock: SharedClock) -> Self {
        let users = settings
            .users
            .iter()
            .map(|u| (u.name.clone(), Arc::new(UserRecord::from(u))))
            .collect();
        AdminAuth {
            users: RwLock::new(users),
            sessions: Mutex::new(HashMap::new()),
            idle: TimeDelta::minutes(settings.session_idle_minutes.max(1)),
            clock,
            guard: LoginGuard::new(settings),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Serialises user changes (create, change, delete) from their checks to their write.
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// Whether a user other than `name` holds the Administrator role.
    pub fn another_administrator(&self, name: &str) -> bool {
        self.users
            .read()
            .values()
            .any(|u| u.name != name && u.roles.contains(&Role::Administrator))
    }

    /// How long a session may stay idle.
    pub fn idle_timeout(&self) -> TimeDelta {
        self.idle
    }

    fn sessions(&self) -> parking_lot::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock()
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<Arc<UserRecord>> {
        self.users.read().get(name).cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<UserRecord>> {
        self.users.read().values().cloned().collect()
    }

    /// Adds or replaces a user; their open sessions see the new roles at the next request.
    pub fn put_user(&self, user: UserRecord) {
        self.users.write().insert(user.name.clone(), Arc::new(user));
    }

    /// Ends every open session of `name` (after a new password: whoever held a token logs in
    /// again).
    pub fn end_sessions(&self, name: &str) {
        self.sessions().retain(|_, s| s.user != name);
    }

    /// Removes a user and ends their sessions; true if they existed.
    pub fn remove_user(&self, name: &str) -> bool {
        let existed = self.users.write().remove(name).is_some();
        self.sessions().retain(|_, s| s.user != name);
        existed
    }

    /// Checks the password and opens a session; returns the bearer token. The lockout applies;
    /// the password check runs on the calling thread (the HTTP path uses [`Self::login_guarded`]).
    pub fn login(&self, name: &str, password: &str) -> Result<String, AuthError> {
        self.guard.check(name, self.clock.now())?;
        let (hash, known) = self.hash_of(name);
        let good = verify_password(&hash, password) && known;
        self.settle(name, good).map_err(|f| f.error)
    }

    /// The login of `POST /admin/login`: refused while the account is locked, then the password
    /// is checked in one of the engine's few password-check slots (waiting for one at most
    /// `admin.login_wait_ms`) on a blocking thread, off the async workers.
    pub async fn login_guarded(&self, name: &str, password: String) -> Result<String, LoginFailed> {
        let refused = |error: AuthError| LoginFailed {
            error,
            locks_for: None,
        };
        self.guard
            .check(name, self.clock.now())
            .map_err(|r| refused(r.into()))?;
        let slot = self.guard.slot().await.map_err(|r| refused(r.into()))?;
        let (hash, known) = self.hash_of(name);
        let good = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_password(&hash, &password)
        })
        .await
        .unwrap_or(false)
            && known;
        self.settle(name, good)
    }

    /// The stored hash of `name`, or the decoy (so an unknown name costs the same check).
    fn hash_of(&self, name: &str) -> (String, bool) {
        match self.user(name) {
            Some(u) => (u.password_hash.clone(), true),
            None => (decoy_hash().to_string(), false),
        }
    }

    /// After the password check: count a failure, or forget failures and open a session.
    fn settle(&self, name: &str, good: bool) -> Result<String, LoginFailed> {
        if !good {
            return Err(LoginFailed {
                error: AuthError::BadCredentials,
                locks_for: self.guard.failed(name, self.clock.now()),
            });
        }
        self.guard.succeeded(name);
        let token = hex::encode(rand::random::<[u8; 32]>());
        let now = self.clock.now();
        let mut sessions = self.sessions();
        // Forget idle sessions here so the table stays bounded by the active ones.
        sessions.retain(|_, s| now - s.last_seen <= self.idle);
        sessions.insert(
            token_key(&token),
            Session {
                user: name.to_string(),
                last_seen: now,
            },
        );
        Ok(token)
    }

    /// Ends the session of `token`; true if it was open.
    pub fn logout(&self, token: &str) -> bool {
        self.sessions().remove(&token_key(token)).is_some()
    }

    /// Resolves a bearer token to its user, refreshing the idle timer.
    pub fn resolve(&self, token: &str) -> Result<AdminUser, AuthError> {
        let key = token_key(token);
        let now = self.clock.now();
        let name = {
            let mut sessions = self.sessions();
            let Some(s) = sessions.get_mut(&key) else {
                return Err(AuthError::Expired);
            };
            if now - s.last_seen > self.idle {
                sessions.remove(&key);
                return Err(AuthError::Expired);
            }
            s.last_seen = now;
            s.user.clone()
        };
        let user = self.user(&name).ok_or(AuthError::Expired)?;
        Ok(AdminUser {
            name: user.name.clone(),
            roles: user.roles.clone(),
            permissions: Permissions::of(&user.roles),
            queues: user.queues.clone().map(Arc::new),
        })
    }

    /// Open sessions (idle ones included until they are swept).
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }
}

/// The administration user making a request, resolved from the bearer token by the API's
/// authentication layer; handlers take it as an extractor and call [`AdminUser::require`].
#[derive(Debug, Clone)]
pub struct AdminUser {
    /// Login name (what the audit log records).
    pub name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// What the roles grant together.
    pub permissions: Permissions,
    /// Queues the user may read; `None` = every queue.
    pub queues: Option<Arc<BTreeSet<String>>>,
}

impl AdminUser {
    /// Whether the user may read `queue` (line-of-business segmentation).
    pub fn can_read_queue(&self, queue: &str) -> bool {
        self.queues.as_ref().is_none_or(|q| q.contains(queue))
    }
}

/// Document kind of users in the store.
pub const DOC_KIND: &str = "admin_user";

/// Why a user definition is refused (the API answers 400 with the message).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    /// The login name has characters or a length a login name may not have.
    #[error("name: 1 to 64 letters, digits, _ - . @")]
    BadName,
    /// The password is too short or too long.
    #[error("password: must be 8 to 256 characters")]
    BadPassword,
    /// No role given.
    #[error("roles: give at least one of Administrator, Supervisor, Monitor, Developer")]
    NoRole,
}

/// `Ok` for a password of 8 to 256 characters.
pub fn check_password(p: &str) -> Result<(), UserError> {
    let n = p.chars().count();
    if !(8..=256).contains(&n) {
        return Err(UserError::BadPassword);
    }
    Ok(())
}

/// `Ok` when at least one role is given.
pub fn check_roles(roles: &[Role]) -> Result<(), UserError> {
    if roles.is_empty() {
        return Err(UserError::NoRole);
    }
    Ok(())
}

/// The stored form of a user.
pub fn document(u: &UserRecord) -> Document {
    Document {
        kind: DOC_KIND.into(),
        id: u.name.clone(),
        body: serde_json::to_value(u).unwrap_or_default(),
    }
}

/// Users stored by earlier runs, put into `auth`; a name now written in the configuration keeps
/// the file's version. Returns how many were restored.
pub fn restore(auth: &AdminAuth, docs: Vec<Document>) -> usize {
    let mut n = 0;
    for d in docs {
        match serde_json::from_value::<UserRecord>(d.body) {
            Ok(mut u) if auth.user(&u.name).is_none() => {
                u.from_config = false;
                auth.put_user(u);
                n += 1;
            }
            Ok(u) => {
                tracing::warn!(user = %u.name, "stored user shadowed by the configuration file")
            }
            Err(e) => tracing::warn!(id = %d.id, error = %e, "stored user unreadable; skipped"),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn the_matrix_follows_the_seed() {
        use Permission::*;
        let monitor = Permissions::of(&[Role::Monitor]);
        assert_eq!(monitor.list(), vec![ReadCallbacks, ReadRules]);
        let sup = Permissions::of(&[Role::Supervisor]);
        assert!(sup.has(WriteCallbacks) && sup.has(ExportCallbacks));
        assert!(!sup.has(DeveloperTools) && !sup.has(WriteCapacityRules));
        let dev = Permissions::of(&[Role::Developer]);
        assert!(dev.has(DeveloperTools) && dev.has(ReadCallIn));
        assert!(!dev.has(WriteCallbacks) && !dev.has(ManageUsers));
        let admin = Permissions::of(&[Role::Administrator]);
        assert_eq!(admin.list().len(), Permission::ALL.len());
        // Several roles: the union, so Supervisor + Developer can both export and see errors.
        let both = Permissions::of(&[Role::Supervisor, Role::Developer]);
        assert!(both.has(ExportCallbacks) && both.has(DeveloperTools));
        assert!(!both.has(ManageAgents));
    }

    #[test]
    fn hashes_verify_only_their_password_and_are_salted() {
        let a = hash_password("s3cret").unwrap_or_default();
        let b = hash_password("s3cret").unwrap_or_default();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "two hashes of one password differ by their salt");
        assert!(verify_password(&a, "s3cret"));
        assert!(!verify_password(&a, "s3cret "));
        assert_eq!(check_hash(&a), Ok(()));
        assert!(matches!(
            check_hash("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"),
            Err(AuthError::BadHash(_))
        ));
        assert!(!verify_password("garbage", "s3cret"));
    }

    #[test]
    fn sessions_idle_out_with_the_injected_clock() {
        let clock = ManualClock::new(t0());
        let settings = AdminSettings {
            users: vec![AdminUserSpec {
                name: "ann".into(),
                password_hash: hash_password("pw").unwrap_or_default(),
                roles: vec![Role::Monitor],
                queues: Some(vec!["Sales_VQ_CB".into()]),
            }],
            session_idle_minutes: 20,
            ..Default::default()
        };
        let auth = AdminAuth::new(&settings, clock.shared());
        assert_eq!(auth.login("ann", "nope"), Err(AuthError::BadCredentials));
        assert_eq!(auth.login("bob", "pw"), Err(AuthError::BadCredentials));
        let token = auth.login("ann", "pw").unwrap_or_default();
        clock.advance(TimeDelta::minutes(19));
        let u = auth.resolve(&token).map_err(|e| e.to_string());
        assert!(
            u.as_ref().is_ok_and(
                |u| u.can_read_queue("Sales_VQ_CB") && !u.can_read_queue("Service_VQ_CB")
            ),
            "{u:?}"
        );
        // Activity at 19 minutes restarts the idle timer.
        clock.advance(TimeDelta::minutes(20));
        assert!(auth.resolve(&token).is_ok());
        clock.advance(TimeDelta::minutes(20) + TimeDelta::seconds(1));
        assert_eq!(auth.resolve(&token).err(), Some(AuthError::Expired));
        assert_eq!(auth.session_count(), 0, "an expired session is forgotten");
        let again = auth.login("ann", "pw").unwrap_or_default();
        assert!(auth.logout(&again));
        assert_eq!(auth.resolve(&again).err(), Some(AuthError::Expired));
    }
}
