//! Schedules and what their runs did.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Store, StoreError, fmt_time, parse_enum, parse_time};
use crate::model::{LastRun, Schedule, ScheduleFields};

pub(super) const SCHEDULE_COLS: &str = "id, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at, \
                             last_run_at, last_run_ok, last_run_message, checked_until, running_due, host, \
                             at, run_timeout, steps, on_failure, label_key, label_origin, label_error";

pub(super) fn schedule_from_row(r: &Row) -> rusqlite::Result<Schedule> {
    let last_run = match r.get::<_, Option<String>>(9)? {
        Some(at) => Some(LastRun {
            at: parse_time(&at)?,
            ok: r.get::<_, Option<bool>>(10)?.unwrap_or(false),
            message: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Schedule {
        id: r.get(0)?,
        fields: ScheduleFields {
            host: r.get(14)?,
            target_type: parse_enum(r.get(1)?)?,
            target_id: r.get(2)?,
            action: parse_enum(r.get(3)?)?,
            cron: r.get(4)?,
            at: r.get::<_, Option<String>>(15)?.map(|s| parse_time(&s)).transpose()?,
            timezone: r.get(5)?,
            enabled: r.get(6)?,
            run_timeout: r.get(16)?,
            steps: serde_json::from_str(&r.get::<_, String>(17)?)
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(17, rusqlite::types::Type::Text, Box::new(e)))?,
            on_failure: parse_enum(r.get(18)?)?,
        },
        created_at: parse_time(&r.get::<_, String>(7)?)?,
        updated_at: parse_time(&r.get::<_, String>(8)?)?,
        last_run,
        checked_until: r.get::<_, Option<String>>(12)?.map(|s| parse_time(&s)).transpose()?,
        running_due: r.get::<_, Option<String>>(13)?.map(|s| parse_time(&s)).transpose()?,
        label: super::labels::label_from_row(r, 19)?,
    })
}

/// Inserts an API schedule; its id.
pub(super) fn insert_schedule(
    conn: &rusqlite::Connection,
    f: &ScheduleFields,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO schedules (target_type, target_id, action, cron, timezone, enabled, created_at, updated_at, checked_until, host, \
                                at, run_timeout, steps, on_failure) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            f.target_type.as_str(), f.target_id, f.action.as_str(), f.cron, f.timezone, f.enabled, fmt_time(now), f.host,
            f.at.map(fmt_time), f.run_timeout, steps_json(f), f.on_failure.as_str()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Saves new fields; the number of rows changed.
pub(super) fn update_schedule(
    conn: &rusqlite::Connection,
    id: i64,
    f: &ScheduleFields,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.execute(
        // A new timing starts afresh (no "missed" runs of the old one); an
        // edit that keeps it must not skip a fire already due but not
        // yet dispatched.
        "UPDATE schedules SET target_type = ?1, target_id = ?2, action = ?3, cron = ?4, timezone = ?5, enabled = ?6, \
         updated_at = ?7, host = ?9, at = ?10, run_timeout = ?11, steps = ?12, on_failure = ?13, \
         checked_until = CASE WHEN cron IS ?4 AND at IS ?10 AND timezone IS ?5 AND enabled IS ?6 THEN checked_until ELSE ?7 END \
         WHERE id = ?8",
        params![
            f.target_type.as_str(), f.target_id, f.action.as_str(), f.cron, f.timezone, f.enabled, fmt_time(now), id, f.host,
            f.at.map(fmt_time), f.run_timeout, steps_json(f), f.on_failure.as_str()
        ],
    )
}

impl Store {
    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {SCHEDULE_COLS} FROM schedules ORDER BY id"))?;
        Ok(stmt.query_map([], schedule_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// The schedules on `host` whose target is one of `names`.
    pub fn schedules_on(&self, host: &str, names: &[String]) -> Result<Vec<Schedule>> {
        let conn = self.reader();
        let sql = format!(
            "SELECT {SCHEDULE_COLS} FROM schedules WHERE host = ?1 AND target_id IN (SELECT value FROM json_each(?2)) ORDER BY id"
        );
        let mut stmt = conn.prepare(&sql)?;
        let names = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        Ok(stmt.query_map(rusqlite::params![host, names], schedule_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn schedule(&self, id: i64) -> Result<Schedule> {
        let sql = format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE id = ?1");
        self.reader().query_row(&sql, [id], schedule_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn insert_schedule(&self, f: &ScheduleFields, now: DateTime<Utc>) -> Result<Schedule> {
        let id = insert_schedule(&self.writer(), f, now)?;
        self.schedule(id)
    }

    /// Saves new fields. The fires before `now` are not owed by the edited
    /// schedule, so `checked_until` moves to `now`.
    pub fn update_schedule(&self, id: i64, f: &ScheduleFields, now: DateTime<Utc>) -> Result<Schedule> {
        let n = update_schedule(&self.writer(), id, f, now)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.schedule(id)
    }

    pub fn delete_schedule(&self, id: i64) -> Result<Schedule> {
        self.write(|tx| {
            let sql = format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE id = ?1");
            let s = tx.query_row(&sql, [id], schedule_from_row).optional()?.ok_or(StoreError::NotFound)?;
            tx.execute("DELETE FROM schedules WHERE id = ?1", [id])?;
            Ok(s)
        })
    }

    /// Records a run's outcome (and, for scheduled runs, that fires up to
    /// `checked_until` are handled). A deleted schedule is silently skipped.
    pub fn record_run(&self, id: i64, run: &LastRun, checked_until: Option<DateTime<Utc>>) -> Result<()> {
        self.writer().execute(
            "UPDATE schedules SET last_run_at = ?1, last_run_ok = ?2, last_run_message = ?3, running_due = NULL, \
             checked_until = coalesce(max(checked_until, ?4), checked_until, ?4) WHERE id = ?5",
            params![fmt_time(run.at), run.ok, run.message, checked_until.map(fmt_time), id],
        )?;
        Ok(())
    }

    /// Fires up to `t` are handled; `running`: the due time of the run
    /// about to start (kept until its result is recorded).
    pub fn set_checked_until(&self, id: i64, t: DateTime<Utc>, running: Option<DateTime<Utc>>) -> Result<()> {
        self.writer().execute(
            "UPDATE schedules SET checked_until = max(coalesce(checked_until, ?1), ?1), \
             running_due = coalesce(?3, running_due) WHERE id = ?2",
            params![fmt_time(t), id, running.map(fmt_time)],
        )?;
        Ok(())
    }

    /// A one-time schedule that has had its turn is disabled.
    pub fn set_schedule_enabled(&self, id: i64, enabled: bool) -> Result<Schedule> {
        let n = self.writer().execute("UPDATE schedules SET enabled = ?1 WHERE id = ?2", params![enabled, id])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.schedule(id)
    }

    /// The run cut off by a previous process is accounted for.
    pub fn clear_running(&self, id: i64) -> Result<()> {
        self.writer().execute("UPDATE schedules SET running_due = NULL WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn steps_json(f: &ScheduleFields) -> String {
    serde_json::to_string(&f.steps).unwrap_or_else(|_| "[]".into())
}
