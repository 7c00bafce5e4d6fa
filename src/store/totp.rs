//! Two-factor state: sealed TOTP secrets and hashed recovery codes. Every
//! "use once" rule is a conditional UPDATE, so two requests racing with the
//! same code cannot both win.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError, fmt_time};

#[derive(Debug, Clone)]
pub struct TotpRow {
    pub secret_enc: String,
    pub enabled: bool,
    pub last_step: Option<i64>,
}

impl Store {
    pub fn totp(&self, user_id: i64) -> Result<Option<TotpRow>> {
        Ok(self
            .reader()
            .query_row("SELECT secret_enc, enabled, last_step FROM totp WHERE user_id = ?1", [user_id], |r| {
                Ok(TotpRow { secret_enc: r.get(0)?, enabled: r.get(1)?, last_step: r.get(2)? })
            })
            .optional()?)
    }

    pub fn totp_enabled(&self, user_id: i64) -> Result<bool> {
        Ok(self.totp(user_id)?.is_some_and(|t| t.enabled))
    }

    /// The ids of the users with two-factor sign-in on.
    pub fn totp_users(&self) -> Result<HashSet<i64>> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT user_id FROM totp WHERE enabled")?;
        Ok(stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores a new, unconfirmed secret (replacing an earlier unconfirmed
    /// one). Refused while one is enabled: that takes disabling first.
    pub fn totp_begin(&self, user_id: i64, secret_enc: &str, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let enabled: Option<bool> =
                tx.query_row("SELECT enabled FROM totp WHERE user_id = ?1", [user_id], |r| r.get(0)).optional()?;
            if enabled == Some(true) {
                return Err(StoreError::Conflict("two-factor sign-in is already on; disable it first".into()));
            }
            tx.execute(
                "INSERT OR REPLACE INTO totp (user_id, secret_enc, enabled, last_step, created_at) VALUES (?1, ?2, 0, NULL, ?3)",
                params![user_id, secret_enc, fmt_time(now)],
            )?;
            Ok(())
        })
    }

    /// Confirms the unconfirmed secret with the step of the code that proved
    /// it, and replaces the recovery codes. False when there was none to confirm.
    pub fn totp_enable(&self, user_id: i64, step: i64, code_hashes: &[String]) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE totp SET enabled = 1, last_step = ?2 WHERE user_id = ?1 AND NOT enabled",
                params![user_id, step],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
            for h in code_hashes {
                tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)", params![user_id, h])?;
            }
            Ok(true)
        })
    }

    /// Records `step` as used; false when it (or a later one) already was.
    pub fn totp_use_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let n = self.writer().execute(
            "UPDATE totp SET last_step = ?2 WHERE user_id = ?1 AND enabled AND (last_step IS NULL OR last_step < ?2)",
            params![user_id, step],
        )?;
        Ok(n == 1)
    }

    /// Marks an unused recovery code used; the number left, or `None` when
    /// the code was not an unused one of this user's.
    pub fn recovery_code_use(&self, user_id: i64, code_hash: &str, now: DateTime<Utc>) -> Result<Option<i64>> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                params![user_id, code_hash, fmt_time(now)],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let left = tx.query_row(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                [user_id],
                |r| r.get(0),
            )?;
            Ok(Some(left))
        })
    }

    /// Removes the secret and the recovery codes; false when there were none.
    pub fn totp_remove(&self, user_id: i64) -> Result<bool> {
        self.write(|tx| remove_totp(tx, user_id))
    }
}

pub(super) fn remove_totp(tx: &rusqlite::Transaction, user_id: i64) -> Result<bool> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    Ok(tx.execute("DELETE FROM totp WHERE user_id = ?1", [user_id])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    #[test]
    fn steps_and_recovery_codes_are_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let now = Utc::now();
        let u = s.create_user("ann", "h", Role::Viewer, now).unwrap();
        assert!(!s.totp_enable(u.id, 5, &[]).unwrap(), "nothing to confirm");
        s.totp_begin(u.id, "sealed", now).unwrap();
        assert!(!s.totp_enabled(u.id).unwrap());
        assert!(!s.totp_use_step(u.id, 6).unwrap(), "not enabled yet");
        assert!(s.totp_enable(u.id, 5, &["h1".into(), "h2".into()]).unwrap());
        assert!(matches!(s.totp_begin(u.id, "other", now), Err(StoreError::Conflict(_))));
        assert!(!s.totp_use_step(u.id, 5).unwrap(), "the enabling code's step");
        assert!(s.totp_use_step(u.id, 6).unwrap());
        assert!(!s.totp_use_step(u.id, 6).unwrap());
        assert_eq!(s.recovery_code_use(u.id, "h1", now).unwrap(), Some(1));
        assert_eq!(s.recovery_code_use(u.id, "h1", now).unwrap(), None);
        assert_eq!(s.recovery_code_use(u.id, "nope", now).unwrap(), None);
        assert_eq!(s.totp_users().unwrap(), HashSet::from([u.id]));
        assert!(s.totp_remove(u.id).unwrap());
        assert!(!s.totp_remove(u.id).unwrap());
        assert_eq!(s.recovery_code_use(u.id, "h2", now).unwrap(), None, "codes go with the secret");
    }
}
