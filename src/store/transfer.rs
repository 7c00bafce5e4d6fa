//! The store side of an import: one `BEGIN IMMEDIATE` transaction whose
//! reads and writes the import service drives, committed only when asked
//! (a dry run, or any error, rolls everything back).

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, TransactionBehavior};

use super::notify::{CHANNEL_COLS, channel_from_row};
use super::schedules::{SCHEDULE_COLS, schedule_from_row};
use super::windows::{WINDOW_COLS, one_per_target, window_from_row};
use super::{Result, Store, StoreError};
use crate::model::{Channel, ChannelInput, HostConfig, Schedule, ScheduleFields, Window, WindowFields};

/// The objects an import can change, inside its transaction. Objects
/// defined by container labels are neither listed nor changed.
pub struct ImportTx<'a> {
    tx: &'a Transaction<'a>,
    now: DateTime<Utc>,
}

impl ImportTx<'_> {
    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let sql = format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE label_key IS NULL ORDER BY id");
        Ok(self.tx.prepare(&sql)?.query_map([], schedule_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_schedule(&self, f: &ScheduleFields) -> Result<i64> {
        Ok(super::schedules::insert_schedule(self.tx, f, self.now)?)
    }

    pub fn update_schedule(&self, id: i64, f: &ScheduleFields) -> Result<()> {
        super::schedules::update_schedule(self.tx, id, f, self.now)?;
        Ok(())
    }

    pub fn delete_schedule(&self, id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM schedules WHERE id = ?1 AND label_key IS NULL", [id])?;
        Ok(())
    }

    pub fn windows(&self) -> Result<Vec<Window>> {
        let sql = format!("SELECT {WINDOW_COLS} FROM windows WHERE label_key IS NULL ORDER BY id");
        Ok(self.tx.prepare(&sql)?.query_map([], window_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_window(&self, f: &WindowFields) -> Result<i64> {
        super::windows::insert_window(self.tx, f, self.now).map_err(|e| one_per_target(e, f))
    }

    pub fn update_window(&self, id: i64, f: &WindowFields) -> Result<()> {
        super::windows::update_window(self.tx, id, f, self.now).map_err(|e| one_per_target(e, f))?;
        Ok(())
    }

    pub fn delete_window(&self, id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM windows WHERE id = ?1 AND label_key IS NULL", [id])?;
        Ok(())
    }

    /// The hosts added through the API, with their TLS material.
    pub fn hosts(&self) -> Result<Vec<HostConfig>> {
        super::hosts::host_rows(self.tx)
    }

    pub fn insert_host(&self, h: &HostConfig) -> Result<()> {
        super::hosts::insert_host(self.tx, h, self.now).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => {
                StoreError::Conflict(format!("a host named '{}' exists", h.name))
            }
            _ => e.into(),
        })
    }

    pub fn update_host(&self, h: &HostConfig) -> Result<()> {
        super::hosts::update_host(self.tx, h, self.now)?;
        Ok(())
    }

    /// Every notification channel (the import changes only API ones).
    pub fn channels(&self) -> Result<Vec<Channel>> {
        let sql = format!("SELECT {CHANNEL_COLS} FROM notify_channels ORDER BY id");
        Ok(self.tx.prepare(&sql)?.query_map([], channel_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_channel(&self, c: &ChannelInput) -> Result<()> {
        super::notify::insert_channel(self.tx, c, crate::model::HostSource::Api, self.now)?;
        Ok(())
    }

    pub fn update_channel(&self, id: i64, c: &ChannelInput) -> Result<()> {
        self.tx.execute(
            "UPDATE notify_channels SET name = ?2, url = ?3, secret = ?4, events = ?5, enabled = ?6, updated_at = ?7 \
             WHERE id = ?1 AND source = 'api'",
            rusqlite::params![
                id,
                c.name,
                c.url,
                c.secret,
                super::notify::events_json(&c.events),
                c.enabled,
                super::fmt_time(self.now)
            ],
        )?;
        Ok(())
    }

    /// With its deliveries.
    pub fn delete_channel(&self, id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM notify_channels WHERE id = ?1 AND source = 'api'", [id])?;
        Ok(())
    }

    /// Refused (`Conflict`) while schedules or windows still target it.
    pub fn delete_host(&self, name: &str) -> Result<()> {
        super::hosts::delete_unused_host(self.tx, name)
    }
}

impl Store {
    /// Runs `f` in one transaction; commits only when `f` says so (its
    /// `bool`), otherwise everything it did is rolled back.
    pub fn import<T>(&self, now: DateTime<Utc>, f: impl FnOnce(&ImportTx) -> Result<(T, bool)>) -> Result<T> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (out, commit) = f(&ImportTx { tx: &tx, now })?;
        if commit {
            tx.commit()?;
        }
        Ok(out)
    }
}
