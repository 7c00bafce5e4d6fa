//! Schedules and windows defined by container labels: one transaction per
//! host makes the stored label objects equal to what the labels say now.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::schedules::{SCHEDULE_COLS, schedule_from_row};
use super::windows::{WINDOW_COLS, window_from_row};
use super::{Result, Store, fmt_time};
use crate::model::{LabelOrigin, Schedule, ScheduleFields, Window, WindowFields};

/// `label_key, label_origin, label_error` from column `at` on.
pub(super) fn label_from_row(r: &Row, at: usize) -> rusqlite::Result<Option<LabelOrigin>> {
    Ok(match r.get::<_, Option<String>>(at)? {
        Some(key) => Some(LabelOrigin {
            key,
            origin: r.get::<_, Option<String>>(at + 1)?.unwrap_or_default(),
            error: r.get(at + 2)?,
        }),
        None => None,
    })
}

/// What one sync changed: the objects created or updated (as stored now)
/// and those deleted (as they were).
#[derive(Debug)]
pub struct LabelSync<T> {
    pub created: Vec<T>,
    pub updated: Vec<T>,
    pub deleted: Vec<T>,
}

impl<T> Default for LabelSync<T> {
    fn default() -> Self {
        LabelSync { created: Vec::new(), updated: Vec::new(), deleted: Vec::new() }
    }
}

impl<T> LabelSync<T> {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

fn one_schedule(tx: &Transaction, id: i64) -> Result<Schedule> {
    Ok(tx.query_row(&format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE id = ?1"), [id], schedule_from_row)?)
}

fn one_window(tx: &Transaction, id: i64) -> Result<Window> {
    Ok(tx.query_row(&format!("SELECT {WINDOW_COLS} FROM windows WHERE id = ?1"), [id], window_from_row)?)
}

impl Store {
    /// The hosts that label-defined objects name.
    pub fn label_hosts(&self) -> Result<Vec<String>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT host FROM schedules WHERE label_key IS NOT NULL UNION SELECT host FROM windows WHERE label_key IS NOT NULL",
        )?;
        Ok(stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    /// Makes the label schedules of `host` exactly `desired` (matched by key),
    /// but leaves those whose keys are in `keep` (missing only for a moment).
    pub fn sync_label_schedules(
        &self,
        host: &str,
        desired: &[(ScheduleFields, LabelOrigin)],
        keep: &[String],
        now: DateTime<Utc>,
    ) -> Result<LabelSync<Schedule>> {
        self.write(|tx| {
            let sql = format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE host = ?1 AND label_key IS NOT NULL");
            let stored: Vec<Schedule> = tx.prepare(&sql)?.query_map([host], schedule_from_row)?.collect::<rusqlite::Result<_>>()?;
            let mut out = LabelSync::default();
            let t = fmt_time(now);
            for (f, label) in desired {
                let at = f.at.map(fmt_time);
                let cols = params![
                    f.target_type.as_str(), f.target_id, f.action.as_str(), f.cron, f.timezone, f.enabled, t, f.host,
                    label.key, label.origin, label.error, at
                ];
                match stored.iter().find(|s| s.label.as_ref().is_some_and(|l| l.key == label.key)) {
                    Some(s) if s.fields == *f && s.label.as_ref() == Some(label) => {}
                    Some(s) => {
                        tx.execute(
                            "UPDATE schedules SET target_type = ?1, target_id = ?2, action = ?3, cron = ?4, timezone = ?5, \
                             enabled = ?6, updated_at = ?7, host = ?8, label_key = ?9, label_origin = ?10, label_error = ?11, at = ?12, \
                             checked_until = CASE WHEN cron IS ?4 AND at IS ?12 AND timezone IS ?5 AND enabled IS ?6 THEN checked_until ELSE ?7 END \
                             WHERE id = ?13",
                            rusqlite::params_from_iter(cols.iter().copied().chain([&s.id as &dyn rusqlite::ToSql])),
                        )?;
                        out.updated.push(one_schedule(tx, s.id)?);
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO schedules (target_type, target_id, action, cron, timezone, enabled, created_at, updated_at, \
                             checked_until, host, source, label_key, label_origin, label_error, at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?8, 'label', ?9, ?10, ?11, ?12)",
                            cols,
                        )?;
                        out.created.push(one_schedule(tx, tx.last_insert_rowid())?);
                    }
                }
            }
            for s in stored {
                let key = s.label.as_ref().map(|l| l.key.as_str()).unwrap_or_default();
                if !desired.iter().any(|(_, l)| l.key == key) && !keep.iter().any(|k| k == key) {
                    tx.execute("DELETE FROM schedules WHERE id = ?1", [s.id])?;
                    out.deleted.push(s);
                }
            }
            Ok(out)
        })
    }

    /// Makes the label windows of `host` exactly `desired` (matched by key),
    /// but leaves those whose keys are in `keep`. One whose target already
    /// has another enabled window is stored disabled, with that as its error.
    pub fn sync_label_windows(
        &self,
        host: &str,
        desired: &[(WindowFields, LabelOrigin)],
        keep: &[String],
        now: DateTime<Utc>,
    ) -> Result<LabelSync<Window>> {
        self.write(|tx| {
            let sql = format!("SELECT {WINDOW_COLS} FROM windows WHERE host = ?1 AND label_key IS NOT NULL");
            let stored: Vec<Window> = tx.prepare(&sql)?.query_map([host], window_from_row)?.collect::<rusqlite::Result<_>>()?;
            let mut out = LabelSync::default();
            let t = fmt_time(now);
            // Deletions first: a window moving between keys must not trip the one-per-target index.
            for w in &stored {
                let key = w.label.as_ref().map(|l| l.key.as_str()).unwrap_or_default();
                if !desired.iter().any(|(_, l)| l.key == key) && !keep.iter().any(|k| k == key) {
                    tx.execute("DELETE FROM windows WHERE id = ?1", [w.id])?;
                    out.deleted.push(w.clone());
                }
            }
            for (f, label) in desired {
                let existing = stored.iter().find(|w| w.label.as_ref().is_some_and(|l| l.key == label.key));
                let (mut f, mut label) = (f.clone(), label.clone());
                if f.enabled {
                    let other: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM windows WHERE host = ?1 AND target_type = ?2 AND target_id = ?3 AND enabled \
                             AND label_key IS NOT ?4",
                            params![f.host, f.target_type.as_str(), f.target_id, label.key],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(other) = other {
                        f.enabled = false;
                        label.error = Some(format!("{} {} already has an enabled window ({other})", f.target_type, f.target_id));
                    }
                }
                let cols = params![
                    f.host, f.target_type.as_str(), f.target_id, f.spec, f.timezone, f.down_action.as_str(), f.enforce.as_str(),
                    f.grace_seconds, f.enabled, t, label.key, label.origin, label.error
                ];
                match existing {
                    Some(w) if w.fields == f && w.label.as_ref() == Some(&label) => {}
                    Some(w) => {
                        tx.execute(
                            "UPDATE windows SET host = ?1, target_type = ?2, target_id = ?3, spec = ?4, timezone = ?5, \
                             down_action = ?6, enforce = ?7, grace_seconds = ?8, enabled = ?9, updated_at = ?10, \
                             label_key = ?11, label_origin = ?12, label_error = ?13, \
                             override_desired = CASE WHEN host IS ?1 AND target_type IS ?2 AND target_id IS ?3 AND spec IS ?4 \
                                 AND timezone IS ?5 THEN override_desired END \
                             WHERE id = ?14",
                            rusqlite::params_from_iter(cols.iter().copied().chain([&w.id as &dyn rusqlite::ToSql])),
                        )?;
                        out.updated.push(one_window(tx, w.id)?);
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO windows (host, target_type, target_id, spec, timezone, down_action, enforce, grace_seconds, \
                             enabled, created_at, updated_at, source, label_key, label_origin, label_error) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 'label', ?11, ?12, ?13)",
                            cols,
                        )?;
                        out.created.push(one_window(tx, tx.last_insert_rowid())?);
                    }
                }
            }
            Ok(out)
        })
    }
}
