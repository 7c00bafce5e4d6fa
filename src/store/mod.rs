//! The SQLite store: one file in the data directory, WAL, versioned
//! migrations. One writer connection (like Moonfire NVR) and one reader, so
//! reads never queue behind a write's fsync. Every statement is
//! parameterised; every multi-statement write is one `BEGIN IMMEDIATE`
//! transaction so a killed process leaves no half-write.
//!
//! Calls block (SQLite, fsync): async code reaches the store through
//! [`Store::run`], which moves the call to a blocking thread.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use rusqlite_migration::Migrations;

use self::migrations::MIGRATIONS;
use crate::model::{ApiKey, User};

pub const DB_FILE: &str = "docknap.db";

mod api_keys;
mod audit;
pub mod audit_chain;
mod backup;
pub use backup::backup;
mod hosts;
mod labels;
pub use labels::LabelSync;
mod migrations;
pub mod notify;
mod schedules;
mod swarm;
mod transfer;
pub use transfer::ImportTx;
mod totp;
mod users;

pub use users::NO_PASSWORD;
mod windows;

pub use api_keys::NewApiKey;
pub use totp::TotpRow;
pub use users::{UserChange, UserUpdate};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error(
        "the database {path} has schema version {found}, newer than this DockNap supports ({supported}); \
         run a newer DockNap or restore a backup"
    )]
    TooNew { path: PathBuf, found: usize, supported: usize },
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
}

impl StoreError {
    /// The disk, not the request, is at fault (full, read-only, failing):
    /// the write can succeed later without any change by the caller.
    pub fn is_storage_fault(&self) -> bool {
        let StoreError::Sqlite(e) = self else { return false };
        matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DiskFull | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Live sessions by token id, filled on first use and kept exact by every
    /// revocation (all of them go through this store), so checking a token
    /// needs no disk read per request.
    sessions: Mutex<HashMap<String, (User, DateTime<Utc>)>>,
    /// API keys in use by hash, with their owners; emptied by every change
    /// that revokes sessions (src/store/api_keys.rs).
    api_keys: Mutex<HashMap<String, (ApiKey, User)>>,
    /// Bumped after tokens are revoked, so long-lived streams can re-check
    /// their session at once instead of polling.
    revocations: tokio::sync::watch::Sender<u64>,
    /// Woken when deliveries are queued (the notifier's sender waits on it).
    pub outbox: tokio::sync::Notify,
}

pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_enum<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unexpected value '{s}'").into(),
        )
    })
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_file(&data_dir.join(DB_FILE))
    }

    pub fn open_file(path: &Path) -> Result<Store> {
        // A new database is created 0600 (it holds password hashes); SQLite
        // gives its -wal and -shm files the database file's mode.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        let mut conn = Self::connect(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed schedule or audit entry survives power loss too;
        // DockNap writes rarely, so the extra fsync costs nothing noticeable.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;

        let migrations = Migrations::from_slice(MIGRATIONS);
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        if found > MIGRATIONS.len() {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found, supported: MIGRATIONS.len() });
        }
        migrations.to_latest(&mut conn)?;
        let reader = Self::connect(path)?;
        reader.pragma_update(None, "query_only", true)?;
        let store = Store {
            writer: Mutex::new(conn),
            reader: Mutex::new(reader),
            sessions: Mutex::default(),
            api_keys: Mutex::default(),
            revocations: tokio::sync::watch::Sender::new(0),
            outbox: tokio::sync::Notify::new(),
        };
        let hashed = store.hash_unhashed_audit()?;
        if hashed > 0 {
            tracing::info!(entries = hashed, "audit entries from before the hash chain were given their hashes");
        }
        Ok(store)
    }

    fn connect(path: &Path) -> Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // The image has no writable /tmp (and may run with a read-only root):
        // SQLite's temporary tables and sort spills stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(conn)
    }

    /// Runs `f` on a blocking thread, so SQLite and its fsync never stall the
    /// async workers that serve requests and events.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        lock(&self.reader)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (takes the write lock up
    /// front, so no deadlock upgrading a read to a write).
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// A panic while holding a connection leaves SQLite consistent (transactions
/// roll back on drop), so a poisoned mutex is safe to keep using.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::audit::audit_query;
    use super::*;
    use crate::model::{AuditFilter, NewAuditEntry, Role};

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn every_audit_filter_walks_an_index_not_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let some = |v: &str| Some(v.to_string());
        let filters = [
            AuditFilter { limit: 50, ..Default::default() },
            AuditFilter { limit: 50, before: Some(1000), ..Default::default() },
            AuditFilter { limit: 50, before: Some(1000), actor: some("bob"), ..Default::default() },
            AuditFilter { limit: 50, target_type: some("stack"), target_id: some("web"), ..Default::default() },
            AuditFilter { limit: 50, ok: Some(false), ..Default::default() },
            AuditFilter { limit: 50, action: some("login"), ok: Some(false), ..Default::default() },
        ];
        for f in &filters {
            let before = f.before.unwrap_or(i64::MAX);
            let (sql, args) = audit_query(f, &before);
            let conn = store.reader();
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> =
                plan.query_map(args.as_slice(), |r| r.get(3)).unwrap().map(Result::unwrap).collect();
            assert!(steps.iter().all(|d| !d.starts_with("SCAN audit") || d.contains("USING")), "{f:?}: {steps:?}");
            assert!(!steps.iter().any(|d| d.contains("TEMP B-TREE")), "{f:?} sorts: {steps:?}");
        }
    }

    #[test]
    fn a_read_only_or_full_disk_is_a_storage_fault_and_a_bad_request_is_not() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let ro =
            Connection::open_with_flags(dir.path().join(DB_FILE), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let refused = ro.execute("DELETE FROM users", []).unwrap_err();
        assert!(StoreError::Sqlite(refused).is_storage_fault());
        let unknown = ro.execute("SELECT nope FROM users", []).unwrap_err();
        assert!(!StoreError::Sqlite(unknown).is_storage_fault());
        assert!(!StoreError::Conflict("taken".into()).is_storage_fault());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Store::open(dir.path()).err().unwrap();
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("newer than this DockNap"));
    }

    fn role(r: Role) -> UserChange<'static> {
        UserChange { role: Some(r), ..Default::default() }
    }

    #[test]
    fn a_change_that_changes_nothing_revokes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let u = s.create_user("u", "h", Role::Viewer, now()).unwrap();
        s.insert_token("a", u.id, now(), now() + chrono::Duration::hours(1)).unwrap();
        let same = UserChange { role: Some(Role::Viewer), reset_totp: true, ..Default::default() };
        assert!(!s.update_user(u.id, &same, now()).unwrap().changed());
        assert!(s.token_user("a", now()).unwrap().is_some());
        let done = s.update_user(u.id, &role(Role::Operator), now()).unwrap();
        assert_eq!(done.previous_role, Some(Role::Viewer));
        assert!(s.token_user("a", now()).unwrap().is_none());
    }

    #[test]
    fn last_admin_is_protected() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = s.create_user("root", "h", Role::Admin, now()).unwrap();
        assert!(matches!(s.update_user(a.id, &role(Role::Viewer), now()), Err(StoreError::Conflict(_))));
        assert!(matches!(s.delete_user(a.id), Err(StoreError::Conflict(_))));
        let b = s.create_user("second", "h", Role::Admin, now()).unwrap();
        s.update_user(a.id, &role(Role::Viewer), now()).unwrap();
        assert!(matches!(s.delete_user(b.id), Err(StoreError::Conflict(_))));
        assert!(matches!(s.create_user("ROOT", "h", Role::Viewer, now()), Err(StoreError::Conflict(_))));
    }

    #[test]
    fn tokens_die_with_revocation_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let u = s.create_user("u", "h", Role::Viewer, now()).unwrap();
        let later = now() + chrono::Duration::hours(1);
        s.insert_token("a", u.id, now(), later).unwrap();
        s.insert_token("b", u.id, now(), later).unwrap();
        assert!(s.token_user("a", now()).unwrap().is_some());
        assert!(s.token_user("a", later).unwrap().is_none(), "expired");
        s.update_user(u.id, &role(Role::Operator), now()).unwrap();
        s.insert_token("a", u.id, now(), later).unwrap();
        s.insert_token("b", u.id, now(), later).unwrap();
        assert_eq!(s.token_user("a", now()).unwrap().unwrap().role, Role::Operator, "a role change applies at once");
        let change = UserChange { password_hash: Some("h2"), keep_token: Some("b"), ..Default::default() };
        s.update_user(u.id, &change, now()).unwrap();
        assert!(s.token_user("a", now()).unwrap().is_none(), "revoked by password change");
        assert!(s.token_user("b", now()).unwrap().is_some(), "the changing session survives");
    }

    #[test]
    fn audit_is_append_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let e = NewAuditEntry::new("x", crate::model::AuditAction::Login, true, "ok");
        s.append_audit(&e, now()).unwrap();
        let r = s.writer().execute("UPDATE audit SET message = 'forged'", []);
        assert!(r.is_err());
    }
}
