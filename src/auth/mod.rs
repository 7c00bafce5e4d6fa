//! Local users, password hashing, login tokens and login rate limits. No HTTP
//! here: `api::extract` turns requests into calls on [`Auth`].

mod api_keys;
mod limiter;
mod password;
mod policy;
mod token;
mod totp;
mod two_factor;
mod users;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use api_keys::{CreatedKey, KEY_PREFIX, KeyRequest};
pub use limiter::{Attempt, LoginLimiter, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_USERNAME, WINDOW};
pub use password::{hash_password, verify_password};
pub use policy::{DEFAULT_MIN_LENGTH, LOWEST_MIN_LENGTH, PasswordPolicy};
pub use token::{Claims, TokenKeys};
pub use two_factor::TotpSetup;
pub use users::UserEdit;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::model::{InvalidValue, NewAuditEntry, Role, User};
use crate::store::{NO_PASSWORD, Store, StoreError, UserChange};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    InvalidCredentials,
    /// A signed-in user got their current password wrong: not a lost session.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("not authenticated")]
    Unauthenticated,
    #[error("too many failed logins; try again in {} s", .0.as_secs())]
    RateLimited(Duration),
    /// Input that breaks a rule; the code names the rule.
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    InvalidValue(#[from] InvalidValue),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Right password, but the user has two-factor sign-in and sent no code.
    #[error("this account needs a two-factor code: send it in the `totp` field")]
    TotpRequired,
    #[error("wrong or already used two-factor code")]
    WrongTotp,
    #[error(transparent)]
    Seal(#[from] totp::SealError),
    #[error("{0}")]
    Forbidden(String),
}

/// Who must have two-factor sign-in (`DOCKNAP_REQUIRE_2FA`). A user who must
/// but has not yet set it up can sign in, and then only set it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Require2fa {
    #[default]
    None,
    Admin,
    All,
}

impl Require2fa {
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            Require2fa::None => false,
            Require2fa::Admin => role == Role::Admin,
            Require2fa::All => true,
        }
    }
}

/// The settings of [`Auth`] that come from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct AuthOptions {
    pub ttl: Duration,
    pub require_2fa: Require2fa,
    pub password_policy: PasswordPolicy,
}

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;

/// The bounds any password has, old ones included (new ones also pass
/// [`PasswordPolicy`]).
pub fn validate_password(p: &str) -> Result<(), AuthError> {
    let n = p.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(AuthError::Invalid(
            "invalid_password",
            format!("a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters, this one has {n}"),
        ));
    }
    Ok(())
}

pub const USERNAME_MAX: usize = 64;

pub fn validate_username(u: &str) -> Result<(), AuthError> {
    let ok = (1..=USERNAME_MAX).contains(&u.chars().count())
        && u.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        return Err(AuthError::Invalid(
            "invalid_username",
            "a username has 1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
        ));
    }
    Ok(())
}

/// A successful login.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: SessionUser,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

impl From<&User> for SessionUser {
    fn from(u: &User) -> Self {
        SessionUser { id: u.id, username: u.username.clone(), role: u.role }
    }
}

/// An authenticated request's principal.
#[derive(Debug, Clone)]
pub struct Principal {
    /// With an API key, the owner with the lower of the key's and their role.
    pub user: User,
    /// Who the audit names: the username, or `USERNAME:KEYNAME` for a key.
    pub actor: String,
    /// The API key used, by id; `None` for a login session.
    pub key: Option<i64>,
    /// The login token's id (empty for an API key).
    pub jti: String,
    pub expires_at: DateTime<Utc>,
    /// `DOCKNAP_REQUIRE_2FA` applies to this user, who has not set it up:
    /// only the routes that set it up are open.
    pub must_enrol: bool,
}

pub struct Auth {
    store: Arc<Store>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
    keys: TokenKeys,
    secrets: totp::SecretBox,
    options: AuthOptions,
    limiter: Arc<LoginLimiter>,
    key_uses: api_keys::KeyUses,
    /// Written while the first admin is created (a bcrypt round, kept off the
    /// start-up path); logins read it, so they wait instead of failing.
    bootstrap: Arc<tokio::sync::RwLock<()>>,
}

/// Verified against when the user does not exist, so an unknown name costs
/// the same time as a wrong password. A constant (cost 12, like real hashes):
/// its result is ignored, so knowing its input gains nothing, and start-up
/// does not pay for a bcrypt round.
const DUMMY_HASH: &str = "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5bW7hG0aT9mW8Ck0hVQjV0o1kVwHtMa";

pub const SECRET_FILE: &str = "jwt.secret";

/// A strong random password (20 bytes of entropy, URL-safe).
pub fn random_password() -> String {
    token::random_string(20)
}

impl Auth {
    pub fn new(
        store: Arc<Store>,
        audit: Arc<Audit>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        options: AuthOptions,
    ) -> std::io::Result<Auth> {
        let keys = TokenKeys::load_or_create(&data_dir.join(SECRET_FILE))?;
        let secrets = totp::SecretBox::load_or_create(data_dir)?;
        Ok(Auth {
            store,
            audit,
            clock,
            keys,
            secrets,
            options,
            limiter: Arc::default(),
            key_uses: Default::default(),
            bootstrap: Arc::default(),
        })
    }

    /// Creates the first admin when no user exists, with `password` or a
    /// generated one. A generated password is logged once, before the user is
    /// committed: a crash in between costs a new password at the next start,
    /// never an admin nobody can log in as.
    pub fn bootstrap_admin(&self, username: &str, password: Option<&str>) -> Result<(), AuthError> {
        if self.store.user_count()? > 0 {
            return Ok(());
        }
        let generated = password.is_none().then(random_password);
        let password = password.or(generated.as_deref()).expect("one of them is set");
        let hash = hash_password(password)?;
        if let Some(generated) = &generated {
            // Printed once, on purpose: there is no default password.
            tracing::warn!(
                %username,
                "the first admin's generated password: {generated} (shown only this once; change it after logging in)"
            );
        }
        self.store.create_user(username, &hash, Role::Admin, self.clock.now())?;
        self.audit.record(
            NewAuditEntry::new("system", crate::model::AuditAction::UserCreate, true, "first admin created")
                .target("user", username),
        );
        Ok(())
    }

    /// [`Auth::bootstrap_admin`] on a blocking thread (a bcrypt round, kept
    /// off the start-up path); logins wait for it. The runtime waits for
    /// blocking tasks at exit, so a quick shutdown does not cut it short.
    pub async fn bootstrap_admin_in_background(self: &Arc<Self>, username: String, password: Option<String>) {
        let guard = self.bootstrap.clone().write_owned().await;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _held = guard;
            if let Err(e) = this.bootstrap_admin(&username, password.as_deref()) {
                tracing::error!(error = %e, "could not create the first admin; restart to try again");
            }
        });
    }

    fn audit_login_failure(&self, username: &str, client: IpAddr, message: &str) {
        self.audit.record(
            NewAuditEntry::new(username, crate::model::AuditAction::Login, false, message)
                .target("user", username)
                .client(client),
        );
    }

    /// Checks credentials under the login limits (bcrypt runs on a blocking
    /// thread).
    async fn login_unmetered(
        self: &Arc<Self>,
        username: String,
        password: String,
        totp: Option<String>,
        client: IpAddr,
    ) -> Result<Session, AuthError> {
        drop(self.bootstrap.read().await);
        let attempt = self.limiter.admit(&username, client).await.map_err(|blocked| {
            if blocked.first {
                self.audit_login_failure(
                    &username,
                    client,
                    "rate limited (further attempts in this block are not audited)",
                );
            }
            AuthError::RateLimited(blocked.wait)
        })?;
        self.on_blocking_thread(move |auth| auth.check_login(attempt, &username, &password, totp.as_deref(), client))
            .await
    }

    /// [`Auth::login_unmetered`], with refusals counted in `/metrics`.
    pub async fn login(
        self: &Arc<Self>,
        username: String,
        password: String,
        totp: Option<String>,
        client: IpAddr,
    ) -> Result<Session, AuthError> {
        let result = self.login_unmetered(username, password, totp, client).await;
        if matches!(result, Err(AuthError::InvalidCredentials | AuthError::WrongTotp | AuthError::RateLimited(_))) {
            crate::metrics::global().login_failure();
        }
        result
    }

    /// Runs `f` (bcrypt) on a blocking thread.
    async fn on_blocking_thread<T: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&Auth) -> T + Send + 'static) -> T {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this)).await.expect("blocking auth task panicked")
    }

    fn check_login(
        &self,
        attempt: Attempt,
        username: &str,
        password: &str,
        totp: Option<&str>,
        client: IpAddr,
    ) -> Result<Session, AuthError> {
        // Input no user can have never reaches bcrypt or the store, but costs
        // the same time and counts as a failure.
        let possible = password.chars().count() <= PASSWORD_MAX && validate_username(username).is_ok();
        let creds = if possible { self.store.user_credentials(username)? } else { None };
        let verified = match &creds {
            Some((_, hash)) if hash != NO_PASSWORD => verify_password(password, hash),
            // Unknown, or signs in through the provider only: the same time as a wrong password.
            _ => {
                let _ = verify_password(password, DUMMY_HASH);
                false
            }
        };
        let Some((user, _)) = creds.filter(|_| verified) else {
            self.audit_login_failure(username, client, "wrong username or password");
            return Err(AuthError::InvalidCredentials);
        };
        // A wrong code drops `attempt` there: a failed login like a wrong password.
        let attempt = self.check_second_factor(attempt, &user, totp, client)?;
        attempt.succeeded();
        let session = self.issue(&user)?;
        self.audit.record(
            NewAuditEntry::new(&user.username, crate::model::AuditAction::Login, true, "logged in")
                .target("user", &user.username)
                .client(client),
        );
        Ok(session)
    }

    /// A session for a user the identity provider vouched for: the same
    /// token and cookie as a password login, audited as an SSO login.
    pub fn sso_login(&self, user: &User, provider: &str, client: IpAddr) -> Result<Session, AuthError> {
        let session = self.issue(user)?;
        self.audit.record(
            NewAuditEntry::new(
                &user.username,
                crate::model::AuditAction::Login,
                true,
                format!("logged in through {provider}"),
            )
            .target("user", &user.username)
            .client(client)
            .details(serde_json::json!({ "method": "oidc" })),
        );
        Ok(session)
    }

    /// Waits while the first admin is being created: it is created only
    /// while no user exists, so a provider's user must not come first.
    pub async fn first_admin_ready(&self) {
        drop(self.bootstrap.read().await);
    }

    fn issue(&self, user: &User) -> Result<Session, AuthError> {
        let now = self.clock.now();
        let expires_at = now + chrono::Duration::from_std(self.options.ttl).expect("ttl is bounded by config");
        let (token, jti) = self.keys.sign(user.id, now, expires_at);
        self.store.insert_token(&jti, user.id, now, expires_at)?;
        Ok(Session { token, expires_at, user: user.into() })
    }

    /// Resolves a bearer token or cookie value to its user, reading the role
    /// from the store so that changes apply on the next request.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if token.starts_with(KEY_PREFIX) {
            return self.authenticate_key(token);
        }
        let now = self.clock.now();
        let claims = self.keys.verify(token, now).ok_or(AuthError::Unauthenticated)?;
        let user = self.store.token_user(&claims.jti, now)?.ok_or(AuthError::Unauthenticated)?;
        if user.id.to_string() != claims.sub {
            return Err(AuthError::Unauthenticated);
        }
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::Unauthenticated)?;
        // Read only where the rule applies: most requests stay on the cached session.
        let must_enrol = self.options.require_2fa.applies_to(user.role) && !self.store.totp_enabled(user.id)?;
        Ok(Principal { actor: user.username.clone(), user, key: None, jti: claims.jti, expires_at, must_enrol })
    }

    /// Is this session still alive (not revoked, expired, or its user gone)?
    pub fn session_alive(&self, p: &Principal) -> bool {
        if let Some(key) = p.key {
            return self.key_alive(key, p.user.id);
        }
        let now = self.clock.now();
        now < p.expires_at && matches!(self.store.token_user(&p.jti, now), Ok(Some(u)) if u.id == p.user.id)
    }

    /// Resolves once `p`'s session ends: at its expiry, or when a revocation
    /// in this process (logout, password or role change, user deleted)
    /// removed it. Re-checks every minute too, for revocations made by
    /// another process (`docknap reset-password`).
    pub async fn session_ended(self: Arc<Self>, p: Principal) {
        let mut revocations = self.store.revocations();
        loop {
            let until_expiry = (p.expires_at - self.clock.now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = revocations.changed() => {}
                _ = tokio::time::sleep(until_expiry.min(Duration::from_secs(60))) => {}
            }
            if !self.session_alive(&p) {
                return;
            }
        }
    }

    pub async fn logout(&self, p: &Principal, client: IpAddr) -> Result<(), AuthError> {
        let jti = p.jti.clone();
        self.store.run(move |s| s.revoke_token(&jti)).await?;
        self.audit.record(
            NewAuditEntry::new(&p.user.username, crate::model::AuditAction::Logout, true, "logged out")
                .target("user", &p.user.username)
                .client(client),
        );
        Ok(())
    }

    /// Guesses of the current password count against the login limits, so a
    /// stolen session cannot be used to find it (bcrypt runs on a blocking
    /// thread).
    pub async fn change_own_password(
        self: &Arc<Self>,
        p: Principal,
        current: String,
        new: String,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        self.options.password_policy.check(&new)?;
        let attempt = self.limiter.admit(&p.user.username, client).await.map_err(|b| AuthError::RateLimited(b.wait))?;
        self.on_blocking_thread(move |auth| auth.check_and_change_password(attempt, &p, &current, &new, client)).await
    }

    fn check_and_change_password(
        &self,
        attempt: Attempt,
        p: &Principal,
        current: &str,
        new: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let hash = self.store.password_hash(p.user.id)?;
        if hash == NO_PASSWORD {
            return Err(AuthError::Invalid(
                "sso_account",
                "this account signs in through the identity provider and has no DockNap password".into(),
            ));
        }
        if current.chars().count() > PASSWORD_MAX || !verify_password(current, &hash) {
            self.audit.record(
                NewAuditEntry::new(
                    &p.user.username,
                    crate::model::AuditAction::PasswordChange,
                    false,
                    "current password is wrong",
                )
                .target("user", &p.user.username)
                .client(client),
            );
            return Err(AuthError::WrongCurrentPassword);
        }
        attempt.succeeded();
        let new_hash = hash_password(new)?;
        let change = UserChange { password_hash: Some(&new_hash), keep_token: Some(&p.jti), ..Default::default() };
        self.store.update_user(p.user.id, &change, self.clock.now())?;
        self.audit.record(
            NewAuditEntry::new(
                &p.user.username,
                crate::model::AuditAction::PasswordChange,
                true,
                "password changed; other sessions revoked",
            )
            .target("user", &p.user.username),
        );
        Ok(())
    }

    /// Drops expired tokens and stale limiter entries; run on a timer.
    pub fn prune(&self) {
        self.limiter.prune(Instant::now());
        if let Err(e) = self.store.prune_tokens(self.clock.now()) {
            tracing::warn!(error = %e, "pruning expired tokens failed");
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn ttl(&self) -> Duration {
        self.options.ttl
    }

    pub fn password_policy(&self) -> PasswordPolicy {
        self.options.password_policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn auth_at(dir: &Path, clock: Arc<FakeClock>) -> Arc<Auth> {
        let store = Arc::new(Store::open(dir).unwrap());
        let audit = Arc::new(Audit::new(store.clone(), clock.clone()));
        let options = AuthOptions {
            ttl: Duration::from_secs(3600),
            require_2fa: Require2fa::None,
            password_policy: PasswordPolicy::default(),
        };
        Arc::new(Auth::new(store, audit, clock, dir, options).unwrap())
    }

    /// The sessions of a fresh user "ann" (admin), logged in twice.
    fn two_sessions(auth: &Auth) -> (Principal, Principal) {
        auth.store.create_user("ann", "unused-hash", Role::Admin, auth.clock.now()).unwrap();
        let user = auth.store.user_credentials("ann").unwrap().unwrap().0;
        let session = || auth.authenticate(&auth.issue(&user).unwrap().token).unwrap();
        (session(), session())
    }

    #[tokio::test(start_paused = true)]
    async fn session_ended_resolves_on_revocation_and_at_expiry_only() {
        let dir = tempfile::tempdir().unwrap();
        // jsonwebtoken checks `exp` against the system clock too: start now.
        let start = Utc::now();
        let clock = Arc::new(FakeClock::at(&start.to_rfc3339()));
        let auth = auth_at(dir.path(), clock.clone());
        let (revoked, expiring) = two_sessions(&auth);
        let pending = |p: Principal| tokio::spawn(auth.clone().session_ended(p));

        let ends_on_revocation = pending(revoked.clone());
        let ends_at_expiry = pending(expiring.clone());
        tokio::time::sleep(Duration::from_secs(600)).await; // ten periodic checks
        assert!(!ends_on_revocation.is_finished() && !ends_at_expiry.is_finished(), "live sessions do not end");

        auth.store.revoke_token(&revoked.jti).unwrap();
        tokio::time::timeout(Duration::from_millis(1), ends_on_revocation).await.expect("ends at once").unwrap();
        assert!(!ends_at_expiry.is_finished(), "another user's revocation does not end this session");
        assert!(auth.session_alive(&expiring));

        clock.set(&(start + chrono::Duration::hours(1)).to_rfc3339());
        tokio::time::timeout(Duration::from_secs(61), ends_at_expiry).await.expect("ends by its expiry").unwrap();
        assert!(!auth.session_alive(&expiring));
    }

    #[test]
    fn dummy_hash_is_a_real_cost_12_hash() {
        // A malformed hash would fail fast and make unknown usernames
        // distinguishable by timing.
        assert!(super::DUMMY_HASH.starts_with("$2b$12$"));
        assert_eq!(bcrypt::verify("anything", super::DUMMY_HASH).ok(), Some(false));
    }
}
