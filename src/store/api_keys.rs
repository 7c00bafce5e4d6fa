//! API keys: rows keyed by the hash of the key, and a cache of the keys in
//! use so that checking one needs no disk read per request. Every change
//! that could alter an answer (a key deleted, its user demoted or deleted)
//! goes through this store and empties the cache.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Store, StoreError, fmt_time, parse_enum, parse_time};
use crate::model::{ApiKey, Role, User};

const KEY_COLS: &str =
    "k.id, k.name, k.role, k.prefix, k.created_at, k.expires_at, k.last_used_at, k.user_id, u.username";

fn key_from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        r.get::<_, Option<String>>(i)?.as_deref().map(parse_time).transpose()
    };
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        role: parse_enum(r.get(2)?)?,
        prefix: r.get(3)?,
        created_at: parse_time(&r.get::<_, String>(4)?)?,
        expires_at: time(5)?,
        last_used_at: time(6)?,
        user_id: r.get(7)?,
        username: r.get(8)?,
    })
}

/// A key to insert: only the hash of its secret.
pub struct NewApiKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub role: Role,
    pub prefix: &'a str,
    pub hash: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Lowers the user's keys above `role` to it (on demotion), in the caller's
/// transaction. Returns how many keys it lowered.
pub(super) fn cap_api_keys(tx: &rusqlite::Transaction, user_id: i64, role: Role) -> Result<usize> {
    let above: Vec<&str> = [Role::Operator, Role::Admin].into_iter().filter(|r| *r > role).map(Role::as_str).collect();
    let mut n = 0;
    for r in above {
        n += tx.execute(
            "UPDATE api_keys SET role = ?1 WHERE user_id = ?2 AND role = ?3",
            params![role.as_str(), user_id, r],
        )?;
    }
    Ok(n)
}

impl Store {
    /// Refuses a role above the owner's and a name the owner already uses.
    pub fn create_api_key(&self, key: &NewApiKey, now: DateTime<Utc>) -> Result<ApiKey> {
        self.write(|tx| {
            let owner: Option<(String, String)> = tx
                .query_row("SELECT username, role FROM users WHERE id = ?1", [key.user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (username, owner_role) = owner.ok_or(StoreError::NotFound)?;
            if key.role > parse_enum::<Role>(owner_role)? {
                return Err(StoreError::Conflict("a key's role cannot be above its owner's".into()));
            }
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE user_id = ?1 AND name = ?2)",
                params![key.user_id, key.name],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::Conflict(format!("you already have a key named '{}'", key.name)));
            }
            tx.execute(
                "INSERT INTO api_keys (user_id, name, role, prefix, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![key.user_id, key.name, key.role.as_str(), key.prefix, key.hash, fmt_time(now), key.expires_at.map(fmt_time)],
            )?;
            Ok(ApiKey {
                id: tx.last_insert_rowid(),
                name: key.name.to_string(),
                role: key.role,
                prefix: key.prefix.to_string(),
                created_at: now,
                expires_at: key.expires_at,
                last_used_at: None,
                user_id: key.user_id,
                username,
            })
        })
    }

    /// One user's keys, or everyone's (`None`), by owner then name.
    pub fn api_keys(&self, user_id: Option<i64>) -> Result<Vec<ApiKey>> {
        let conn = self.reader();
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE ?1 IS NULL OR k.user_id = ?1 ORDER BY u.username, k.name"
        );
        let mut stmt = conn.prepare(&sql)?;
        Ok(stmt.query_map([user_id], key_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn api_key(&self, id: i64) -> Result<ApiKey> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?1");
        self.reader().query_row(&sql, [id], key_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    /// Deletes a key; it stops working at once, open event streams included.
    pub fn delete_api_key(&self, id: i64) -> Result<()> {
        let n = self.writer().execute("DELETE FROM api_keys WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.tokens_revoked(|_, _| true);
        Ok(())
    }

    /// The key with this hash and its owner (expired keys too: the caller
    /// compares with its clock). From memory after its first use.
    pub fn api_key_by_hash(&self, hash: &str) -> Result<Option<(ApiKey, User)>> {
        // Held across the read on a miss, like the sessions: a change that
        // commits meanwhile empties the cache only after this fills it.
        let mut cache = super::lock(&self.api_keys);
        if let Some(found) = cache.get(hash) {
            return Ok(Some(found.clone()));
        }
        let sql = format!(
            "SELECT {KEY_COLS}, u.role, u.created_at FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = ?1"
        );
        let found = self
            .reader()
            .query_row(&sql, [hash], |r| {
                let key = key_from_row(r)?;
                let user = User {
                    id: key.user_id,
                    username: key.username.clone(),
                    role: parse_enum(r.get(9)?)?,
                    created_at: parse_time(&r.get::<_, String>(10)?)?,
                };
                Ok((key, user))
            })
            .optional()?;
        if let Some(found) = &found {
            cache.insert(hash.to_string(), found.clone());
        }
        Ok(found)
    }

    /// Records when keys were last used, batched: one transaction for many
    /// uses. A time never moves backwards.
    pub fn record_api_key_uses(&self, uses: &[(i64, DateTime<Utc>)]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )?;
            for (id, at) in uses {
                stmt.execute(params![id, fmt_time(*at)])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserChange;

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn key<'a>(user_id: i64, name: &'a str, role: Role, hash: &'a str) -> NewApiKey<'a> {
        NewApiKey { user_id, name, role, prefix: "dnp_abcdefgh", hash, expires_at: None }
    }

    #[test]
    fn demotion_caps_keys_deletion_removes_them_and_the_cache_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_user("root", "h", Role::Admin, now()).unwrap();
        let ann = store.create_user("ann", "h", Role::Admin, now()).unwrap();
        store.create_api_key(&key(ann.id, "ci", Role::Admin, "h1"), now()).unwrap();
        store.create_api_key(&key(ann.id, "ro", Role::Viewer, "h2"), now()).unwrap();
        assert!(matches!(
            store.create_api_key(&key(ann.id, "ci", Role::Viewer, "h3"), now()),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.api_key_by_hash("h1").unwrap().unwrap().0.role, Role::Admin, "cached now");

        let change = UserChange { role: Some(Role::Operator), ..Default::default() };
        let done = store.update_user(ann.id, &change, now()).unwrap();
        assert_eq!(done.keys_capped, 1);
        let (k, owner) = store.api_key_by_hash("h1").unwrap().unwrap();
        assert_eq!((k.role, owner.role), (Role::Operator, Role::Operator), "the cache saw the demotion");
        assert_eq!(store.api_key_by_hash("h2").unwrap().unwrap().0.role, Role::Viewer, "a lower key stays as it was");
        assert!(matches!(
            store.create_api_key(&key(ann.id, "up", Role::Admin, "h4"), now()),
            Err(StoreError::Conflict(_))
        ));

        store.delete_user(ann.id).unwrap();
        assert!(store.api_key_by_hash("h1").unwrap().is_none(), "gone with the user, cache included");
        assert!(store.api_keys(None).unwrap().is_empty());
    }

    #[test]
    fn a_role_lowered_by_the_identity_provider_caps_keys_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_user("root", "h", Role::Admin, now()).unwrap();
        let sso = store.oidc_user("https://idp", "sub-1", "sam", Role::Operator, now()).unwrap();
        store.create_api_key(&key(sso.id, "ci", Role::Operator, "h1"), now()).unwrap();
        assert_eq!(store.api_key_by_hash("h1").unwrap().unwrap().0.role, Role::Operator);
        store.oidc_user("https://idp", "sub-1", "sam", Role::Viewer, now()).unwrap();
        let (k, owner) = store.api_key_by_hash("h1").unwrap().unwrap();
        assert_eq!((k.role, owner.role), (Role::Viewer, Role::Viewer));
    }

    #[test]
    fn uses_are_recorded_in_one_batch_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ann = store.create_user("ann", "h", Role::Viewer, now()).unwrap();
        let k = store.create_api_key(&key(ann.id, "ci", Role::Viewer, "h1"), now()).unwrap();
        let later = now() + chrono::Duration::minutes(5);
        store.record_api_key_uses(&[(k.id, later), (k.id, now())]).unwrap();
        assert_eq!(store.api_key(k.id).unwrap().last_used_at, Some(later));
        store.delete_api_key(k.id).unwrap();
        assert!(matches!(store.delete_api_key(k.id), Err(StoreError::NotFound)));
    }
}
