//! Replica counts a DockNap stop of a Swarm service remembered, so a start
//! can scale it back to what it had.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store, fmt_time};

impl Store {
    /// Remembered counts on `host`, by service name.
    pub fn saved_replicas(&self, host: &str) -> Result<HashMap<String, u64>> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT service, replicas FROM swarm_saved_replicas WHERE host = ?1")?;
        let rows = stmt.query_map([host], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        // The table's CHECK keeps replicas > 0, so the cast cannot wrap.
        Ok(rows.map(|r| r.map(|(s, n)| (s, n as u64))).collect::<rusqlite::Result<_>>()?)
    }

    /// Remembers `replicas` (> 0, as the table checks) for a service,
    /// replacing an earlier count.
    pub fn save_replicas(&self, host: &str, service: &str, replicas: u64, now: DateTime<Utc>) -> Result<()> {
        let n = i64::try_from(replicas).unwrap_or(i64::MAX);
        self.writer().execute(
            "INSERT INTO swarm_saved_replicas (host, service, replicas, saved_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (host, service) DO UPDATE SET replicas = excluded.replicas, saved_at = excluded.saved_at",
            params![host, service, n, fmt_time(now)],
        )?;
        Ok(())
    }

    pub fn forget_replicas(&self, host: &str, service: &str) -> Result<()> {
        self.writer()
            .execute("DELETE FROM swarm_saved_replicas WHERE host = ?1 AND service = ?2", params![host, service])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_counts_are_saved_replaced_and_forgotten_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(s.saved_replicas("local").unwrap().is_empty());
        s.save_replicas("local", "web", 3, now).unwrap();
        s.save_replicas("local", "api", 1, now).unwrap();
        s.save_replicas("edge", "web", 5, now).unwrap();
        s.save_replicas("local", "web", 4, now).unwrap();
        assert_eq!(s.saved_replicas("local").unwrap(), HashMap::from([("web".into(), 4), ("api".into(), 1)]));
        s.forget_replicas("local", "web").unwrap();
        s.forget_replicas("local", "nothing-saved").unwrap();
        assert_eq!(s.saved_replicas("local").unwrap(), HashMap::from([("api".into(), 1)]));
        assert_eq!(s.saved_replicas("edge").unwrap(), HashMap::from([("web".into(), 5)]));
        assert!(s.save_replicas("local", "web", 0, now).is_err(), "a count of 0 is not one to start back to");
    }
}
