//! Users and live login tokens.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Store, StoreError, fmt_time, parse_enum, parse_time};
use crate::model::{Role, User};

const USER_COLS: &str = "id, username, role, created_at";

/// What to change about a user; `None`/`false` leave a part as it is.
#[derive(Debug, Default)]
pub struct UserChange<'a> {
    pub role: Option<Role>,
    pub password_hash: Option<&'a str>,
    pub reset_totp: bool,
    /// The session making the change, spared from the revocation.
    pub keep_token: Option<&'a str>,
}

/// What an update did.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub user: User,
    /// Set when the role changed.
    pub previous_role: Option<Role>,
    pub password_changed: bool,
    /// True when two-factor sign-in was on (or being set up) and was removed.
    pub totp_reset: bool,
    /// How many of the user's API keys a demotion lowered to the new role.
    pub keys_capped: usize,
}

impl UserUpdate {
    pub fn changed(&self) -> bool {
        self.previous_role.is_some() || self.password_changed || self.totp_reset
    }
}

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role: parse_enum(r.get(2)?)?,
        created_at: parse_time(&r.get::<_, String>(3)?)?,
    })
}

/// The password hash of a user who signs in through a provider: no bcrypt
/// hash, so no password matches it.
pub const NO_PASSWORD: &str = "!sso";

impl Store {
    pub fn user_count(&self) -> Result<i64> {
        Ok(self.reader().query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
    }

    pub fn create_user(&self, username: &str, password_hash: &str, role: Role, now: DateTime<Utc>) -> Result<User> {
        self.write(|tx| {
            let exists: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)", [username], |r| r.get(0))?;
            if exists {
                return Err(StoreError::Conflict(format!("user '{username}' already exists")));
            }
            let t = fmt_time(now);
            tx.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![username, password_hash, role.as_str(), t],
            )?;
            Ok(User { id: tx.last_insert_rowid(), username: username.to_string(), role, created_at: now })
        })
    }

    /// The user and their password hash, for login.
    pub fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1");
        Ok(self.reader().query_row(&sql, [username], |r| Ok((user_from_row(r)?, r.get(4)?))).optional()?)
    }

    pub fn password_hash(&self, user_id: i64) -> Result<String> {
        self.reader()
            .query_row("SELECT password_hash FROM users WHERE id = ?1", [user_id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    pub fn user(&self, id: i64) -> Result<User> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        self.reader().query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))?;
        Ok(stmt.query_map([], user_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Applies `change` in one transaction and, when it changed anything,
    /// revokes every token of the user but `keep_token`. Refuses to demote
    /// the last admin.
    pub fn update_user(&self, id: i64, change: &UserChange, now: DateTime<Utc>) -> Result<UserUpdate> {
        let done = self.write(|tx| {
            let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
            let mut user = tx.query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)?;
            let mut done = UserUpdate {
                previous_role: None,
                password_changed: false,
                totp_reset: false,
                keys_capped: 0,
                user: user.clone(),
            };
            if let Some(role) = change.role.filter(|r| *r != user.role) {
                if user.role == Role::Admin && admin_count(tx)? <= 1 {
                    return Err(StoreError::Conflict("the last admin cannot be demoted".into()));
                }
                tx.execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.as_str(), id])?;
                done.previous_role = Some(user.role);
                done.keys_capped = super::api_keys::cap_api_keys(tx, id, role)?;
                user.role = role;
            }
            if let Some(hash) = change.password_hash {
                tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, id])?;
                done.password_changed = true;
            }
            if change.reset_totp {
                done.totp_reset = super::totp::remove_totp(tx, id)?;
            }
            done.user = user;
            if done.changed() {
                tx.execute("UPDATE users SET updated_at = ?1 WHERE id = ?2", params![fmt_time(now), id])?;
                tx.execute("DELETE FROM tokens WHERE user_id = ?1 AND jti IS NOT ?2", params![id, change.keep_token])?;
            }
            Ok(done)
        })?;
        if done.changed() {
            self.tokens_revoked(|_, (user, _)| user.id != id);
        }
        Ok(done)
    }

    /// Deletes a user (their tokens and API keys go with them). Refuses the last admin.
    pub fn delete_user(&self, id: i64) -> Result<User> {
        self.write(|tx| {
            let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
            let user = tx.query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)?;
            if user.role == Role::Admin && admin_count(tx)? <= 1 {
                return Err(StoreError::Conflict("the last admin cannot be deleted".into()));
            }
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(user)
        })
        .inspect(|_| self.tokens_revoked(|_, (user, _)| user.id != id))
    }

    /// The user linked to a provider's subject, created on first sign-in
    /// (named `wanted`, or `wanted-2`, … when taken: a provider never takes
    /// over a local account by its name) and given `role` on each, with their
    /// sessions revoked when it changed. `None` is refused: the last admin
    /// cannot be demoted by the provider either.
    pub fn oidc_user(&self, issuer: &str, subject: &str, wanted: &str, role: Role, now: DateTime<Utc>) -> Result<User> {
        let mut role_changed = None;
        self.write(|tx| {
            let sql = format!(
                "SELECT {} FROM oidc_identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = ?1 AND i.subject = ?2",
                USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
            );
            if let Some(mut user) = tx.query_row(&sql, params![issuer, subject], user_from_row).optional()? {
                if user.role != role {
                    if user.role == Role::Admin && admin_count(tx)? <= 1 {
                        return Err(StoreError::Conflict("the last admin cannot be demoted".into()));
                    }
                    tx.execute("UPDATE users SET role = ?1, updated_at = ?2 WHERE id = ?3", params![role.as_str(), fmt_time(now), user.id])?;
                    tx.execute("DELETE FROM tokens WHERE user_id = ?1", [user.id])?;
                    super::api_keys::cap_api_keys(tx, user.id, role)?;
                    role_changed = Some(user.id);
                    user.role = role;
                }
                return Ok(user);
            }
            let taken = |name: &str| -> rusqlite::Result<bool> {
                tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)", [name], |r| r.get(0))
            };
            let mut username = wanted.to_string();
            let mut n = 2;
            while taken(&username)? {
                username = format!("{wanted}-{n}");
                n += 1;
            }
            let t = fmt_time(now);
            tx.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![username, NO_PASSWORD, role.as_str(), t],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO oidc_identities (issuer, subject, user_id) VALUES (?1, ?2, ?3)", params![issuer, subject, id])?;
            Ok(User { id, username, role, created_at: now })
        })
        .inspect(|_| {
            if let Some(id) = role_changed {
                self.tokens_revoked(|_, (user, _)| user.id != id);
            }
        })
    }

    // ---- tokens ----

    pub fn insert_token(&self, jti: &str, user_id: i64, issued: DateTime<Utc>, expires: DateTime<Utc>) -> Result<()> {
        self.writer().execute(
            "INSERT INTO tokens (jti, user_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![jti, user_id, fmt_time(issued), fmt_time(expires)],
        )?;
        Ok(())
    }

    /// The user of a live token. From memory after its first use: every
    /// change that could alter the answer (revocation, role or password
    /// change, user deleted, expiry pruned) goes through this store and drops
    /// the cached session, so a role change still applies at once.
    pub fn token_user(&self, jti: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        // Held across the read on a miss: a revocation that commits meanwhile
        // waits to drop the entry until it is cached, so it cannot be missed.
        let mut sessions = super::lock(&self.sessions);
        if let Some((user, expires)) = sessions.get(jti) {
            return Ok((*expires > now).then(|| user.clone()));
        }
        let sql = "SELECT u.id, u.username, u.role, u.created_at, t.expires_at FROM tokens t \
                   JOIN users u ON u.id = t.user_id WHERE t.jti = ?1";
        let found = self
            .reader()
            .query_row(sql, [jti], |r| Ok((user_from_row(r)?, parse_time(&r.get::<_, String>(4)?)?)))
            .optional()?;
        Ok(found.and_then(|(user, expires)| {
            sessions.insert(jti.to_string(), (user.clone(), expires));
            (expires > now).then_some(user)
        }))
    }

    pub fn revoke_token(&self, jti: &str) -> Result<()> {
        self.writer().execute("DELETE FROM tokens WHERE jti = ?1", [jti])?;
        self.tokens_revoked(|cached, _| cached != jti);
        Ok(())
    }

    /// After tokens were deleted: drops their cached sessions (keeping those
    /// `keep` accepts) and tells long-lived streams to re-check.
    /// API keys are cached with their owner's role: that cache is emptied too.
    pub(super) fn tokens_revoked(&self, keep: impl Fn(&str, &(User, DateTime<Utc>)) -> bool) {
        super::lock(&self.sessions).retain(|jti, session| keep(jti, session));
        super::lock(&self.api_keys).clear();
        self.revocations.send_modify(|n| *n += 1);
    }

    /// Changes whenever tokens are revoked in this process.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    pub fn prune_tokens(&self, now: DateTime<Utc>) -> Result<usize> {
        let pruned = self.writer().execute("DELETE FROM tokens WHERE expires_at <= ?1", [fmt_time(now)])?;
        super::lock(&self.sessions).retain(|_, (_, expires)| *expires > now);
        Ok(pruned)
    }
}

fn admin_count(tx: &rusqlite::Transaction) -> Result<i64> {
    Ok(tx.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| r.get(0))?)
}
