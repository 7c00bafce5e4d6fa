//! The append-only audit log.

use chrono::{DateTime, Utc};

use super::{Result, Store, parse_time};
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry};

impl Store {

    pub fn append_audit(&self, e: &NewAuditEntry, at: DateTime<Utc>) -> Result<()> {
        self.append_audit_batch(&[(e.clone(), at)])
    }

    /// Appends entries in one transaction (one fsync for a burst of them),
    /// each chained to the one before (see `audit_chain`).
    pub fn append_audit_batch(&self, entries: &[(NewAuditEntry, DateTime<Utc>)]) -> Result<()> {
        self.write(|tx| super::audit_chain::append(tx, entries))
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
                action: r.get(3)?,
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

