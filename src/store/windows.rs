//! Windows and their overrides.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{ErrorCode, OptionalExtension, Row, params, params_from_iter};

use super::{Result, Store, StoreError, fmt_time, parse_enum, parse_time};
use crate::model::{Override, Window, WindowFields};

pub(super) const WINDOW_COLS: &str = "id, host, target_type, target_id, spec, timezone, down_action, enforce, grace_seconds, \
                           enabled, source, override_desired, override_until, override_by, override_reason, \
                           created_at, updated_at, stopped, label_key, label_origin, label_error";

pub(super) fn window_from_row(r: &Row) -> rusqlite::Result<Window> {
    let override_ = match r.get::<_, Option<String>>(11)? {
        Some(desired) => Some(Override {
            desired: parse_enum(desired)?,
            until: parse_time(&r.get::<_, String>(12)?)?,
            by: r.get(13)?,
            reason: r.get(14)?,
        }),
        None => None,
    };
    Ok(Window {
        id: r.get(0)?,
        fields: WindowFields {
            host: r.get(1)?,
            target_type: parse_enum(r.get(2)?)?,
            target_id: r.get(3)?,
            spec: r.get(4)?,
            timezone: r.get(5)?,
            down_action: parse_enum(r.get(6)?)?,
            enforce: parse_enum(r.get(7)?)?,
            grace_seconds: r.get(8)?,
            enabled: r.get(9)?,
        },
        source: parse_enum(r.get(10)?)?,
        override_,
        created_at: parse_time(&r.get::<_, String>(15)?)?,
        updated_at: parse_time(&r.get::<_, String>(16)?)?,
        stopped: serde_json::from_str(&r.get::<_, String>(17)?).unwrap_or_default(),
        label: super::labels::label_from_row(r, 18)?,
    })
}

/// A window's fields as `?1`…`?9`, then `extra`, for the statements below.
fn field_params(f: &WindowFields, extra: impl IntoIterator<Item = Value>) -> rusqlite::ParamsFromIter<Vec<Value>> {
    let fields = [
        Value::from(f.host.clone()),
        Value::from(f.target_type.as_str().to_string()),
        Value::from(f.target_id.clone()),
        Value::from(f.spec.clone()),
        Value::from(f.timezone.clone()),
        Value::from(f.down_action.as_str().to_string()),
        Value::from(f.enforce.as_str().to_string()),
        Value::from(f.grace_seconds),
        Value::from(f.enabled),
    ];
    params_from_iter(fields.into_iter().chain(extra).collect())
}

/// Inserts an API window; its id.
pub(super) fn insert_window(
    conn: &rusqlite::Connection,
    f: &WindowFields,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO windows (host, target_type, target_id, spec, timezone, down_action, enforce, grace_seconds, \
         enabled, source, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'api', ?10, ?10)",
        field_params(f, [Value::from(fmt_time(now))]),
    )?;
    Ok(conn.last_insert_rowid())
}

/// Saves new fields; a change of target or timing drops the override,
/// which was about the old one. The number of rows changed.
pub(super) fn update_window(
    conn: &rusqlite::Connection,
    id: i64,
    f: &WindowFields,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE windows SET host = ?1, target_type = ?2, target_id = ?3, spec = ?4, timezone = ?5, \
         down_action = ?6, enforce = ?7, grace_seconds = ?8, enabled = ?9, updated_at = ?10, \
         override_desired = CASE WHEN host IS ?1 AND target_type IS ?2 AND target_id IS ?3 AND spec IS ?4 \
             AND timezone IS ?5 THEN override_desired END \
         WHERE id = ?11",
        field_params(f, [Value::from(fmt_time(now)), Value::from(id)]),
    )
}

/// A second enabled window on a target trips the unique index.
pub(super) fn one_per_target(e: rusqlite::Error, f: &WindowFields) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(format!(
            "{} {} on host {} already has an enabled window",
            f.target_type, f.target_id, f.host
        )),
        _ => e.into(),
    }
}

impl Store {
    pub fn windows(&self) -> Result<Vec<Window>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {WINDOW_COLS} FROM windows ORDER BY id"))?;
        Ok(stmt.query_map([], window_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn window(&self, id: i64) -> Result<Window> {
        let sql = format!("SELECT {WINDOW_COLS} FROM windows WHERE id = ?1");
        self.reader().query_row(&sql, [id], window_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn insert_window(&self, f: &WindowFields, now: DateTime<Utc>) -> Result<Window> {
        let id = insert_window(&self.writer(), f, now).map_err(|e| one_per_target(e, f))?;
        self.window(id)
    }

    /// Saves new fields; a change of target or timing drops the override,
    /// which was about the old one.
    pub fn update_window(&self, id: i64, f: &WindowFields, now: DateTime<Utc>) -> Result<Window> {
        let n = update_window(&self.writer(), id, f, now).map_err(|e| one_per_target(e, f))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.window(id)
    }

    pub fn delete_window(&self, id: i64) -> Result<Window> {
        self.write(|tx| {
            let sql = format!("SELECT {WINDOW_COLS} FROM windows WHERE id = ?1");
            let w = tx.query_row(&sql, [id], window_from_row).optional()?.ok_or(StoreError::NotFound)?;
            tx.execute("DELETE FROM windows WHERE id = ?1", [id])?;
            Ok(w)
        })
    }

    /// Remembers which containers the window stopped.
    pub fn set_window_stopped(&self, id: i64, names: &[String]) -> Result<()> {
        let json = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        self.writer().execute("UPDATE windows SET stopped = ?1 WHERE id = ?2", params![json, id])?;
        Ok(())
    }

    /// Sets (or with `None` clears) a window's override.
    pub fn set_override(&self, id: i64, o: Option<&Override>) -> Result<Window> {
        let n = self.writer().execute(
            "UPDATE windows SET override_desired = ?1, override_until = ?2, override_by = ?3, override_reason = ?4 \
             WHERE id = ?5",
            params![
                o.map(|o| o.desired.as_str()),
                o.map(|o| fmt_time(o.until)),
                o.map(|o| o.by.as_str()),
                o.and_then(|o| o.reason.as_deref()),
                id
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.window(id)
    }
}
