//! The SQLite store: one file in the data directory, one connection behind a
//! mutex (one writer, like Moonfire NVR), WAL, versioned migrations. Every
//! statement is parameterised; every multi-statement write is one
//! `BEGIN IMMEDIATE` transaction so a killed process leaves no half-write.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use crate::model::{AuditEntry, AuditFilter, LastRun, NewAuditEntry, Role, Schedule, ScheduleFields, User};

pub const DB_FILE: &str = "docknap.db";

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

-- Live tokens: a token is valid only while its row exists (logout and
-- revocation delete it), so a stolen token dies with its row.
CREATE TABLE tokens (
    jti        TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY,
    target_type      TEXT NOT NULL CHECK (target_type IN ('stack', 'container')),
    target_id        TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('start', 'stop', 'restart', 'pause', 'unpause')),
    cron             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_run_at      TEXT,
    last_run_ok      INTEGER,
    last_run_message TEXT,
    -- The scheduler has handled every fire up to this instant; after a
    -- restart, fires between it and now were missed.
    checked_until    TEXT
) STRICT;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    timestamp   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ok          INTEGER NOT NULL,
    message     TEXT NOT NULL,
    client_addr TEXT,
    details     TEXT
) STRICT;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    ),
    // The audit filters the API offers, each newest first: without these a
    // filter that matches few rows reads the whole table under the store's lock.
    M::up(
        r#"
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_target ON audit (target_type, target_id, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_ok ON audit (ok, id);
"#,
    ),
];

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

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    conn: Mutex<Connection>,
    /// Bumped after tokens are revoked, so long-lived streams can re-check
    /// their session at once instead of polling.
    revocations: tokio::sync::watch::Sender<u64>,
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
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("unexpected value '{s}'").into())
    })
}

const USER_COLS: &str = "id, username, role, created_at";

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role: parse_enum(r.get(2)?)?,
        created_at: parse_time(&r.get::<_, String>(3)?)?,
    })
}

const SCHEDULE_COLS: &str = "id, target_type, target_id, action, cron, timezone, enabled, created_at, updated_at, \
                             last_run_at, last_run_ok, last_run_message, checked_until";

fn schedule_from_row(r: &Row) -> rusqlite::Result<Schedule> {
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
            target_type: parse_enum(r.get(1)?)?,
            target_id: r.get(2)?,
            action: parse_enum(r.get(3)?)?,
            cron: r.get(4)?,
            timezone: r.get(5)?,
            enabled: r.get(6)?,
        },
        created_at: parse_time(&r.get::<_, String>(7)?)?,
        updated_at: parse_time(&r.get::<_, String>(8)?)?,
        last_run,
        checked_until: r.get::<_, Option<String>>(12)?.map(|s| parse_time(&s)).transpose()?,
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
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(|e| {
            StoreError::Io(format!("cannot create {}: {e}", path.display()))
        })?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed schedule or audit entry survives power loss too;
        // DockNap writes rarely, so the extra fsync costs nothing noticeable.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The image has no writable /tmp (and may run with a read-only root):
        // SQLite's temporary tables and sort spills stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "foreign_keys", true)?;

        let migrations = Migrations::from_slice(MIGRATIONS);
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        if found > MIGRATIONS.len() {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found, supported: MIGRATIONS.len() });
        }
        migrations.to_latest(&mut conn)?;
        Ok(Store { conn: Mutex::new(conn), revocations: tokio::sync::watch::Sender::new(0) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back on drop), so a poisoned mutex is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (takes the write lock up
    /// front, so no deadlock upgrading a read to a write).
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    // ---- users ----

    pub fn user_count(&self) -> Result<i64> {
        Ok(self.conn().query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
    }

    pub fn create_user(&self, username: &str, password_hash: &str, role: Role, now: DateTime<Utc>) -> Result<User> {
        self.write(|tx| {
            let exists: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)", [username], |r| r.get(0))?;
            if exists {
                return Err(StoreError::Conflict(format!("user '{username}' already exists")));
            }
            let t = fmt_time(now);
            tx.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![username, password_hash, role.as_str(), t],
            )?;
            Ok(User { id: tx.last_insert_rowid(), username: username.to_string(), role, created_at: now })
        })
    }

    /// The user and their password hash, for login.
    pub fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1");
        Ok(self.conn().query_row(&sql, [username], |r| Ok((user_from_row(r)?, r.get(4)?))).optional()?)
    }

    pub fn password_hash(&self, user_id: i64) -> Result<String> {
        self.conn()
            .query_row("SELECT password_hash FROM users WHERE id = ?1", [user_id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    pub fn user(&self, id: i64) -> Result<User> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        self.conn().query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))?;
        Ok(stmt.query_map([], user_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Changes role and/or password and revokes every token of the user, in
    /// one transaction. Refuses to demote the last admin.
    pub fn update_user(
        &self,
        id: i64,
        role: Option<Role>,
        password_hash: Option<&str>,
        keep_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<User> {
        self.write(|tx| {
            let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
            let mut user = tx.query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)?;
            if let Some(role) = role {
                if user.role == Role::Admin && role != Role::Admin && admin_count(tx)? <= 1 {
                    return Err(StoreError::Conflict("the last admin cannot be demoted".into()));
                }
                tx.execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.as_str(), id])?;
                user.role = role;
            }
            if let Some(hash) = password_hash {
                tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, id])?;
            }
            tx.execute("UPDATE users SET updated_at = ?1 WHERE id = ?2", params![fmt_time(now), id])?;
            tx.execute(
                "DELETE FROM tokens WHERE user_id = ?1 AND jti IS NOT ?2",
                params![id, keep_token],
            )?;
            Ok(user)
        })
        .inspect(|_| self.tokens_revoked())
    }

    /// Deletes a user (their tokens go with them). Refuses the last admin.
    pub fn delete_user(&self, id: i64) -> Result<User> {
        self.write(|tx| {
            let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
            let user = tx.query_row(&sql, [id], user_from_row).optional()?.ok_or(StoreError::NotFound)?;
            if user.role == Role::Admin && admin_count(tx)? <= 1 {
                return Err(StoreError::Conflict("the last admin cannot be deleted".into()));
            }
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(user)
        })
        .inspect(|_| self.tokens_revoked())
    }

    // ---- tokens ----

    pub fn insert_token(&self, jti: &str, user_id: i64, issued: DateTime<Utc>, expires: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO tokens (jti, user_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![jti, user_id, fmt_time(issued), fmt_time(expires)],
        )?;
        Ok(())
    }

    /// The user of a live token, read fresh so a role change applies at once.
    pub fn token_user(&self, jti: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let sql = "SELECT u.id, u.username, u.role, u.created_at FROM tokens t JOIN users u ON u.id = t.user_id \
                   WHERE t.jti = ?1 AND t.expires_at > ?2";
        Ok(self.conn().query_row(sql, params![jti, fmt_time(now)], user_from_row).optional()?)
    }

    pub fn revoke_token(&self, jti: &str) -> Result<()> {
        self.conn().execute("DELETE FROM tokens WHERE jti = ?1", [jti])?;
        self.tokens_revoked();
        Ok(())
    }

    fn tokens_revoked(&self) {
        self.revocations.send_modify(|n| *n += 1);
    }

    /// Changes whenever tokens are revoked in this process.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    pub fn prune_tokens(&self, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM tokens WHERE expires_at <= ?1", [fmt_time(now)])?)
    }

    // ---- schedules ----

    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {SCHEDULE_COLS} FROM schedules ORDER BY id"))?;
        Ok(stmt.query_map([], schedule_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn schedule(&self, id: i64) -> Result<Schedule> {
        let sql = format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE id = ?1");
        self.conn().query_row(&sql, [id], schedule_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn insert_schedule(&self, f: &ScheduleFields, now: DateTime<Utc>) -> Result<Schedule> {
        let t = fmt_time(now);
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO schedules (target_type, target_id, action, cron, timezone, enabled, created_at, updated_at, checked_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)",
                params![f.target_type.as_str(), f.target_id, f.action.as_str(), f.cron, f.timezone, f.enabled, t],
            )?;
            conn.last_insert_rowid()
        };
        self.schedule(id)
    }

    /// Saves new fields. The fires before `now` are not owed by the edited
    /// schedule, so `checked_until` moves to `now`.
    pub fn update_schedule(&self, id: i64, f: &ScheduleFields, now: DateTime<Utc>) -> Result<Schedule> {
        let n = self.conn().execute(
            // A new timing starts afresh (no "missed" runs of the old one); an
            // edit that keeps it must not skip a fire already due but not
            // yet dispatched.
            "UPDATE schedules SET target_type = ?1, target_id = ?2, action = ?3, cron = ?4, timezone = ?5, enabled = ?6, \
             updated_at = ?7, \
             checked_until = CASE WHEN cron IS ?4 AND timezone IS ?5 AND enabled IS ?6 THEN checked_until ELSE ?7 END \
             WHERE id = ?8",
            params![f.target_type.as_str(), f.target_id, f.action.as_str(), f.cron, f.timezone, f.enabled, fmt_time(now), id],
        )?;
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
        self.conn().execute(
            "UPDATE schedules SET last_run_at = ?1, last_run_ok = ?2, last_run_message = ?3, \
             checked_until = coalesce(max(checked_until, ?4), checked_until, ?4) WHERE id = ?5",
            params![fmt_time(run.at), run.ok, run.message, checked_until.map(fmt_time), id],
        )?;
        Ok(())
    }

    pub fn set_checked_until(&self, id: i64, t: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "UPDATE schedules SET checked_until = max(coalesce(checked_until, ?1), ?1) WHERE id = ?2",
            params![fmt_time(t), id],
        )?;
        Ok(())
    }

    // ---- audit ----

    pub fn append_audit(&self, e: &NewAuditEntry, now: DateTime<Utc>) -> Result<AuditEntry> {
        let details = e.details.as_ref().map(|d| d.to_string());
        let conn = self.conn();
        conn.execute(
            "INSERT INTO audit (timestamp, actor, action, target_type, target_id, ok, message, client_addr, details) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![fmt_time(now), e.actor, e.action, e.target_type, e.target_id, e.ok, e.message, e.client_addr, details],
        )?;
        Ok(AuditEntry {
            id: conn.last_insert_rowid(),
            timestamp: now,
            actor: e.actor.clone(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            ok: e.ok,
            message: e.message.clone(),
            client_addr: e.client_addr.clone(),
            details: e.details.clone(),
        })
    }

    /// Newest first, at most `filter.limit` entries with id < `filter.before`.
    /// The WHERE clause holds only the filters given, so SQLite can walk the
    /// matching index backwards instead of scanning the table.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let before = filter.before.unwrap_or(i64::MAX);
        let (sql, args) = audit_query(filter, &before);
        let conn = self.conn();
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
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The audit page query for `filter` and its arguments.
fn audit_query<'a>(filter: &'a AuditFilter, before: &'a i64) -> (String, Vec<&'a dyn rusqlite::ToSql>) {
    let mut clauses = vec!["id < ?"];
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![before];
    let given: [(&str, Option<&dyn rusqlite::ToSql>); 5] = [
        ("actor = ?", filter.actor.as_ref().map(|v| v as _)),
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
        "SELECT id, timestamp, actor, action, target_type, target_id, ok, message, client_addr, details FROM audit \
         WHERE {} ORDER BY id DESC LIMIT ?",
        clauses.join(" AND ")
    );
    (sql, args)
}

fn admin_count(tx: &rusqlite::Transaction) -> Result<i64> {
    Ok(tx.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let conn = store.conn();
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> = plan.query_map(args.as_slice(), |r| r.get(3)).unwrap().map(Result::unwrap).collect();
            assert!(steps.iter().all(|d| !d.starts_with("SCAN audit") || d.contains("USING")), "{f:?}: {steps:?}");
            assert!(!steps.iter().any(|d| d.contains("TEMP B-TREE")), "{f:?} sorts: {steps:?}");
        }
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

    #[test]
    fn last_admin_is_protected() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = s.create_user("root", "h", Role::Admin, now()).unwrap();
        assert!(matches!(s.update_user(a.id, Some(Role::Viewer), None, None, now()), Err(StoreError::Conflict(_))));
        assert!(matches!(s.delete_user(a.id), Err(StoreError::Conflict(_))));
        let b = s.create_user("second", "h", Role::Admin, now()).unwrap();
        s.update_user(a.id, Some(Role::Viewer), None, None, now()).unwrap();
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
        s.update_user(u.id, None, Some("h2"), Some("b"), now()).unwrap();
        assert!(s.token_user("a", now()).unwrap().is_none(), "revoked by password change");
        assert!(s.token_user("b", now()).unwrap().is_some(), "the changing session survives");
    }

    #[test]
    fn audit_is_append_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let e = NewAuditEntry::new("x", "login", true, "ok");
        s.append_audit(&e, now()).unwrap();
        let r = s.conn().execute("UPDATE audit SET message = 'forged'", []);
        assert!(r.is_err());
    }
}
