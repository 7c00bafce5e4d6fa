//! Hosts added through the API, with their TLS material (the only place it
//! is kept; it never leaves the process otherwise).

use chrono::{DateTime, Utc};
use rusqlite::{ErrorCode, OptionalExtension, Row, params};

use super::{Result, Store, StoreError, fmt_time};
use crate::model::{HostConfig, HostSource, TlsMaterial};

const HOST_COLS: &str = "name, url, grp, tls_ca, tls_cert, tls_key";

fn host_from_row(r: &Row) -> rusqlite::Result<HostConfig> {
    let tls = match (r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?, r.get::<_, Option<String>>(5)?) {
        (Some(ca), Some(cert), Some(key)) => Some(TlsMaterial { ca, cert, key }),
        _ => None,
    };
    Ok(HostConfig { name: r.get(0)?, url: r.get(1)?, group: r.get(2)?, source: HostSource::Api, tls })
}

pub(super) fn insert_host(conn: &rusqlite::Connection, h: &HostConfig, now: DateTime<Utc>) -> rusqlite::Result<()> {
    let tls = h.tls.as_ref();
    conn.execute(
        "INSERT INTO hosts (name, url, grp, tls_ca, tls_cert, tls_key, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![h.name, h.url, h.group, tls.map(|t| &t.ca), tls.map(|t| &t.cert), tls.map(|t| &t.key), fmt_time(now)],
    )?;
    Ok(())
}

/// The number of rows changed.
pub(super) fn update_host(conn: &rusqlite::Connection, h: &HostConfig, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    let tls = h.tls.as_ref();
    conn.execute(
        "UPDATE hosts SET url = ?2, grp = ?3, tls_ca = ?4, tls_cert = ?5, tls_key = ?6, updated_at = ?7 WHERE name = ?1",
        params![h.name, h.url, h.group, tls.map(|t| &t.ca), tls.map(|t| &t.cert), tls.map(|t| &t.key), fmt_time(now)],
    )
}

/// Deletes a host no schedule or window names (`Conflict` names the count).
/// Those defined by its containers' labels do not count: they go with the
/// host (the labels service removes them once it is gone).
pub(super) fn delete_unused_host(tx: &rusqlite::Connection, name: &str) -> Result<()> {
    let used: i64 = tx.query_row(
        "SELECT (SELECT count(*) FROM schedules WHERE host = ?1 AND label_key IS NULL) \
              + (SELECT count(*) FROM windows WHERE host = ?1 AND label_key IS NULL)",
        [name],
        |r| r.get(0),
    )?;
    if used > 0 {
        return Err(StoreError::Conflict(format!("{used} schedule(s) or window(s) still target host '{name}'")));
    }
    match tx.execute("DELETE FROM hosts WHERE name = ?1", [name])? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(super) fn host_rows(conn: &rusqlite::Connection) -> Result<Vec<HostConfig>> {
    let mut stmt = conn.prepare(&format!("SELECT {HOST_COLS} FROM hosts ORDER BY name"))?;
    Ok(stmt.query_map([], host_from_row)?.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    pub fn hosts(&self) -> Result<Vec<HostConfig>> {
        host_rows(&self.reader())
    }

    pub fn host(&self, name: &str) -> Result<HostConfig> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE name = ?1");
        self.reader().query_row(&sql, [name], host_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn insert_host(&self, h: &HostConfig, now: DateTime<Utc>) -> Result<()> {
        insert_host(&self.writer(), h, now).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(format!("a host named '{}' exists", h.name)),
            _ => e.into(),
        })
    }

    pub fn update_host(&self, h: &HostConfig, now: DateTime<Utc>) -> Result<()> {
        if update_host(&self.writer(), h, now)? == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Deletes a host no schedule or window names, in one transaction, so
    /// one created meanwhile cannot be orphaned. `Conflict` names the count.
    pub fn delete_unused_host(&self, name: &str) -> Result<()> {
        self.write(|tx| delete_unused_host(tx, name))
    }
}
