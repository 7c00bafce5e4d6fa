//! The audit log as a hash chain: each entry's `hash` is SHA-256 over the
//! previous entry's hash and the entry's stored fields, so an entry edited
//! or removed in the database breaks the chain at the next one. Retention
//! cuts the oldest entries behind a checkpoint entry (`audit_pruned`) that
//! carries the hash the rest continues from.
//!
//! What it proves: nobody changed the log without also recomputing every
//! later hash. Whoever can rewrite the database file can do that too, so keep
//! the head hash (`GET /api/audit/verify`) somewhere else to pin it.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Result, Store, fmt_time};
use crate::model::NewAuditEntry;

/// The "previous hash" of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of a retention checkpoint entry.
pub const PRUNED: crate::model::AuditAction = crate::model::AuditAction::AuditPruned;

/// An entry's stored fields, in the order they are hashed.
struct Stored {
    id: i64,
    timestamp: String,
    actor: String,
    action: String,
    host: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    ok: bool,
    message: String,
    client_addr: Option<String>,
    details: Option<String>,
}

const STORED_COLS: &str =
    "id, timestamp, actor, action, host, target_type, target_id, ok, message, client_addr, details, hash";

fn stored_from_row(r: &Row) -> rusqlite::Result<(Stored, Option<String>)> {
    let s = Stored {
        id: r.get(0)?,
        timestamp: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        host: r.get(4)?,
        target_type: r.get(5)?,
        target_id: r.get(6)?,
        ok: r.get(7)?,
        message: r.get(8)?,
        client_addr: r.get(9)?,
        details: r.get(10)?,
    };
    Ok((s, r.get(11)?))
}

/// SHA-256 (hex) of the previous hash and the entry as a JSON array: an
/// unambiguous encoding of exactly what is stored.
fn entry_hash(prev: &str, e: &Stored) -> String {
    let fields = serde_json::json!([
        e.id,
        e.timestamp,
        e.actor,
        e.action,
        e.host,
        e.target_type,
        e.target_id,
        e.ok,
        e.message,
        e.client_addr,
        e.details
    ]);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(fields.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a check of the chain found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub checked: u64,
    /// The first entry whose hash does not follow: it, or one before it, was
    /// altered or removed.
    #[schema(required = true)]
    pub first_bad_id: Option<i64>,
    /// The newest entry's hash: keep it elsewhere to pin the whole log.
    #[schema(required = true)]
    pub head: Option<String>,
}

/// The newest entry's id and hash (`0`, [`GENESIS`] when there is none).
fn head(tx: &Transaction) -> Result<(i64, String)> {
    let row = tx
        .query_row("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row
        .map(|(id, h): (i64, Option<String>)| (id, h.unwrap_or_else(|| GENESIS.to_string())))
        .unwrap_or((0, GENESIS.to_string())))
}

/// Appends entries to the chain inside the caller's write transaction.
pub(super) fn append(tx: &Transaction, entries: &[(NewAuditEntry, chrono::DateTime<chrono::Utc>)]) -> Result<()> {
    let (mut id, mut prev) = head(tx)?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO audit ({STORED_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    for (e, at) in entries {
        id += 1;
        let s = Stored {
            id,
            timestamp: fmt_time(*at),
            actor: e.actor.clone(),
            action: e.action.as_str().to_string(),
            host: e.host.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            ok: e.ok,
            message: e.message.clone(),
            client_addr: e.client_addr.clone(),
            details: e.details.as_ref().map(|d| d.to_string()),
        };
        let hash = entry_hash(&prev, &s);
        insert.execute(params![
            s.id,
            s.timestamp,
            s.actor,
            s.action,
            s.host,
            s.target_type,
            s.target_id,
            s.ok,
            s.message,
            s.client_addr,
            s.details,
            hash
        ])?;
        prev = hash;
    }
    Ok(())
}

impl Store {
    /// Gives hashes to entries written before the chain existed (once, in
    /// id order, continuing from the entry before them).
    pub(super) fn hash_unhashed_audit(&self) -> Result<u64> {
        self.write(|tx| {
            let first: Option<i64> = tx.query_row("SELECT min(id) FROM audit WHERE hash IS NULL", [], |r| r.get(0))?;
            let Some(first) = first else { return Ok(0) };
            let mut prev: String = tx
                .query_row("SELECT hash FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT 1", [first], |r| r.get(0))
                .optional()?
                .unwrap_or_else(|| GENESIS.to_string());
            let rows: Vec<(Stored, Option<String>)> = {
                let mut stmt = tx.prepare(&format!("SELECT {STORED_COLS} FROM audit WHERE id >= ?1 ORDER BY id"))?;
                stmt.query_map([first], stored_from_row)?.collect::<rusqlite::Result<_>>()?
            };
            let mut set = tx.prepare("UPDATE audit SET hash = ?1 WHERE id = ?2")?;
            let mut n = 0;
            for (row, hash) in rows {
                let hash = match hash {
                    Some(h) => h,
                    None => {
                        n += 1;
                        let h = entry_hash(&prev, &row);
                        set.execute(params![h, row.id])?;
                        h
                    }
                };
                prev = hash;
            }
            Ok(n)
        })
    }

    /// Walks the whole chain (from the last retention checkpoint).
    pub fn verify_audit(&self) -> Result<Verification> {
        let conn = self.reader();
        let first: Option<i64> = conn.query_row("SELECT min(id) FROM audit", [], |r| r.get(0))?;
        let mut prev = match first {
            None | Some(1) => GENESIS.to_string(),
            // Entries before `first` were pruned: a checkpoint names the hash to go on from.
            Some(first) => {
                let sql = "SELECT json_extract(details, '$.hash') FROM audit WHERE action = ?1 \
                           AND json_extract(details, '$.through_id') = ?2 ORDER BY id DESC LIMIT 1";
                match conn
                    .query_row(sql, params![PRUNED.as_str(), first - 1], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten()
                {
                    Some(h) => h,
                    None => return Ok(Verification { ok: false, checked: 0, first_bad_id: Some(first), head: None }),
                }
            }
        };
        let mut stmt = conn.prepare(&format!("SELECT {STORED_COLS} FROM audit ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        let mut checked = 0;
        while let Some(r) = rows.next()? {
            let (row, hash) = stored_from_row(r)?;
            if hash.as_deref() != Some(entry_hash(&prev, &row).as_str()) {
                return Ok(Verification { ok: false, checked, first_bad_id: Some(row.id), head: None });
            }
            checked += 1;
            prev = hash.unwrap_or_default();
        }
        Ok(Verification { ok: true, checked, first_bad_id: None, head: (checked > 0).then_some(prev) })
    }

    /// Removes entries older than `cutoff` and appends a checkpoint entry
    /// (`audit_pruned`) that keeps the rest verifiable. Returns how many went.
    pub fn prune_audit(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.write(|tx| {
            let cut: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, hash FROM audit WHERE timestamp < ?1 AND action != ?2 ORDER BY id DESC LIMIT 1",
                    params![fmt_time(cutoff), PRUNED.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((through, hash)) = cut else { return Ok(0) };
            let n = tx.execute("DELETE FROM audit WHERE id <= ?1", [through])? as u64;
            let message = format!("removed {n} audit entries older than {} (retention)", fmt_time(cutoff));
            let entry = NewAuditEntry::new("system", PRUNED, true, message)
                .details(serde_json::json!({ "through_id": through, "hash": hash }));
            append(tx, &[(entry, now)])?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let entries: Vec<_> = (0..n)
            .map(|i| {
                let e = NewAuditEntry::new("bob", crate::model::Action::Stop, i % 3 != 0, format!("entry {i}"))
                    .target("stack", "web");
                (e.details(serde_json::json!({ "i": i })), t0 + Duration::days(i as i64))
            })
            .collect();
        s.append_audit_batch(&entries[..n / 2]).unwrap();
        s.append_audit_batch(&entries[n / 2..]).unwrap();
        (dir, s)
    }

    /// What someone with the database file could do: the trigger is theirs to drop.
    fn tamper(s: &Store, sql: &str) {
        let w = s.writer();
        w.execute_batch(&format!("DROP TRIGGER audit_append_only_update; {sql}")).unwrap();
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let (_d, s) = store_with(10);
        let v = s.verify_audit().unwrap();
        assert_eq!((v.ok, v.checked, v.first_bad_id), (true, 10, None));
        let head: String = s.reader().query_row("SELECT hash FROM audit WHERE id = 10", [], |r| r.get(0)).unwrap();
        assert_eq!(v.head, Some(head));
    }

    #[test]
    fn an_edited_entry_is_found() {
        let (_d, s) = store_with(10);
        tamper(&s, "UPDATE audit SET message = 'nothing happened' WHERE id = 4");
        let v = s.verify_audit().unwrap();
        assert_eq!((v.ok, v.checked, v.first_bad_id), (false, 3, Some(4)));
    }

    #[test]
    fn a_removed_entry_is_found_at_the_next_one() {
        let (_d, s) = store_with(10);
        tamper(&s, "DELETE FROM audit WHERE id = 6");
        assert_eq!(s.verify_audit().unwrap().first_bad_id, Some(7));
        let (_d, s) = store_with(10);
        tamper(&s, "DELETE FROM audit WHERE id <= 2");
        assert_eq!(s.verify_audit().unwrap().first_bad_id, Some(3), "entries cut from the start without a checkpoint");
    }

    #[test]
    fn retention_keeps_the_rest_verifiable_and_its_checkpoint_is_chained() {
        let (_d, s) = store_with(10);
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let cutoff = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        assert_eq!(s.prune_audit(cutoff, now).unwrap(), 5, "entries of 1 to 5 January");
        let v = s.verify_audit().unwrap();
        assert_eq!((v.ok, v.checked), (true, 6), "{v:?}: five left and the checkpoint");
        // A second prune continues from the first checkpoint.
        assert_eq!(s.prune_audit(cutoff + Duration::days(2), now).unwrap(), 2, "6 and 7 January");
        assert!(s.verify_audit().unwrap().ok);
        tamper(&s, "UPDATE audit SET details = json_set(details, '$.hash', 'ff') WHERE action = 'audit_pruned'");
        assert!(!s.verify_audit().unwrap().ok, "the checkpoint itself is in the chain");
    }

    #[test]
    fn entries_from_before_the_chain_get_their_hashes_once() {
        let (dir, s) = store_with(6);
        tamper(&s, "UPDATE audit SET hash = NULL");
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let v = s.verify_audit().unwrap();
        assert_eq!((v.ok, v.checked), (true, 6));
    }

    #[test]
    fn a_hash_once_set_is_as_fixed_as_its_entry() {
        let (_d, s) = store_with(2);
        for sql in ["UPDATE audit SET hash = 'x' WHERE id = 1", "UPDATE audit SET hash = NULL WHERE id = 1"] {
            assert!(s.writer().execute(sql, []).is_err(), "{sql}");
        }
    }
}
