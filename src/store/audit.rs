//! The append-only audit log.

use chrono::{DateTime, Utc};

use super::{Result, Store, parse_enum, parse_time};
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry, Notice};

impl Store {
    pub fn append_audit(&self, e: &NewAuditEntry, at: DateTime<Utc>) -> Result<()> {
        self.append_audit_batch(&[(e.clone(), at)])
    }

    /// Appends entries in one transaction (one fsync for a burst of them),
    /// each chained to the one before (see `audit_chain`).
    /// The notifications these entries stand for are queued in the same
    /// transaction: a result is never recorded without its notice.
    pub fn append_audit_batch(&self, entries: &[(NewAuditEntry, DateTime<Utc>)]) -> Result<()> {
        let queued = self.write(|tx| {
            super::audit_chain::append(tx, entries)?;
            let notices: Vec<Notice> = entries.iter().filter_map(|(e, at)| Notice::from_audit(e, *at)).collect();
            match entries.last() {
                Some((_, now)) => super::notify::enqueue(tx, &notices, *now),
                None => Ok(0),
            }
        })?;
        if queued > 0 {
            self.outbox.notify_one();
        }
        Ok(())
    }

    /// Did the run of schedule `id` due at `due` get its audit entry? (A
    /// process killed between that entry and the schedule's own record
    /// leaves `running_due` set although the run finished.)
    pub fn scheduled_run_audited(&self, id: i64, due: DateTime<Utc>) -> Result<bool> {
        let conn = self.reader();
        // Newest first by the actor index; a cut-off run is among the last few of its schedule.
        let mut stmt = conn.prepare(
            "SELECT json_extract(details, '$.due') FROM audit WHERE actor = 'scheduler' \
             AND json_extract(details, '$.trigger') = 'scheduled' AND json_extract(details, '$.schedule_id') = ?1 \
             ORDER BY id DESC LIMIT 16",
        )?;
        let dues = stmt.query_map([id], |r| r.get::<_, Option<String>>(0))?;
        for d in dues {
            if d?.is_some_and(|d| parse_time(&d).is_ok_and(|t| t == due)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Newest first, at most `filter.limit` entries with id < `filter.before`.
    /// The WHERE clause holds only the filters given, so SQLite can walk the
    /// matching index backwards instead of scanning the table.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let before = filter.before.unwrap_or(i64::MAX);
        let (sql, args) = audit_query(filter, &before);
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(args.as_slice(), |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                timestamp: parse_time(&r.get::<_, String>(1)?)?,
                actor: r.get(2)?,
                action: parse_enum(r.get(3)?)?,
                target_type: r.get(4)?,
                target_id: r.get(5)?,
                ok: r.get(6)?,
                message: r.get(7)?,
                client_addr: r.get(8)?,
                details: r.get::<_, Option<String>>(9)?.and_then(|d| serde_json::from_str(&d).ok()),
                host: r.get(10)?,
                hash: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The audit page query for `filter` and its arguments.
pub(super) fn audit_query<'a>(filter: &'a AuditFilter, before: &'a i64) -> (String, Vec<&'a dyn rusqlite::ToSql>) {
    let mut clauses = vec!["id < ?"];
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![before];
    let given: [(&str, Option<&dyn rusqlite::ToSql>); 6] = [
        ("actor = ?", filter.actor.as_ref().map(|v| v as _)),
        ("host = ?", filter.host.as_ref().map(|v| v as _)),
        ("target_type = ?", filter.target_type.as_ref().map(|v| v as _)),
        ("target_id = ?", filter.target_id.as_ref().map(|v| v as _)),
        ("ok = ?", filter.ok.as_ref().map(|v| v as _)),
        ("action = ?", filter.action.as_ref().map(|v| v as _)),
    ];
    for (clause, value) in given {
        if let Some(value) = value {
            clauses.push(clause);
            args.push(value);
        }
    }
    args.push(&filter.limit);
    let sql = format!(
        "SELECT id, timestamp, actor, action, target_type, target_id, ok, message, client_addr, details, host, hash FROM audit \
         WHERE {} ORDER BY id DESC LIMIT ?",
        clauses.join(" AND ")
    );
    (sql, args)
}
