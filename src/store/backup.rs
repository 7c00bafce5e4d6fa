//! `docknap backup FILE`: a consistent copy of the database, taken while the
//! server runs (SQLite's `VACUUM INTO` reads one snapshot; writers go on).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{DB_FILE, Result, StoreError};

/// Copies the database in `data_dir` to `dest` (which must not exist yet)
/// and checks the copy; returns its size in bytes.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<u64> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(StoreError::Io(format!("no DockNap database at {} (check DOCKNAP_DATA_DIR)", db.display())));
    }
    if dest.exists() {
        return Err(StoreError::Io(format!("{} exists; give a new file name", dest.display())));
    }
    let src = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let target = dest.to_str().ok_or_else(|| StoreError::Io(format!("{} is not a UTF-8 path", dest.display())))?;
    src.execute("VACUUM INTO ?1", [target])?;
    // The copy holds password hashes and TLS keys: as private as the original.
    std::fs::set_permissions(dest, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
    let copy = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Io(format!("the copy at {} failed its integrity check: {check}", dest.display())));
    }
    Ok(std::fs::metadata(dest).map_err(io)?.len())
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}
