//! Notification channels and the outbox of deliveries.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Result, Store, StoreError, fmt_time, parse_enum, parse_time};
use crate::model::{Channel, ChannelInput, Delivery, EventKind, HostSource, Notice};

/// How long a notice with a group key waits for others to join it.
pub const GATHER: chrono::Duration = chrono::Duration::seconds(3);
/// A group keeps gathering at most this long after its first notice.
const MAX_GATHER: chrono::Duration = chrono::Duration::seconds(30);
/// Notices in one delivery at most; past this a new one starts.
const MAX_GROUP: i64 = 500;

pub(super) const CHANNEL_COLS: &str = "id, name, url, secret, events, enabled, source";
const DELIVERY_COLS: &str = "id, event, created_at, ok, attempts, status, error, count, channel_id";

pub(super) fn channel_from_row(r: &Row) -> rusqlite::Result<Channel> {
    let events: String = r.get(4)?;
    let names: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    Ok(Channel {
        id: r.get(0)?,
        name: r.get(1)?,
        url: r.get(2)?,
        secret: r.get(3)?,
        events: names.iter().filter_map(|n| n.parse().ok()).collect(),
        enabled: r.get(5)?,
        source: parse_enum(r.get(6)?)?,
    })
}

fn delivery_from_row(r: &Row) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        event: r.get(1)?,
        at: parse_time(&r.get::<_, String>(2)?)?,
        ok: r.get(3)?,
        attempts: r.get(4)?,
        status: r.get(5)?,
        error: r.get(6)?,
        count: r.get(7)?,
        channel_id: r.get(8)?,
    })
}

/// One channel row, on the connection or transaction given (the API's
/// writes and an import's share it); its id.
pub(super) fn insert_channel(
    conn: &rusqlite::Connection,
    c: &ChannelInput,
    source: HostSource,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO notify_channels (name, url, secret, events, enabled, source, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![c.name, c.url, c.secret, events_json(&c.events), c.enabled, source.as_str(), fmt_time(now)],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn events_json(events: &[EventKind]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).expect("strings serialise")
}

/// New settings of an API channel. `url`/`secret` of `None` keep the stored
/// ones (write-only fields: a client that never saw them can edit the rest);
/// `secret: Some(None)` removes it.
pub struct ChannelUpdate<'a> {
    pub name: &'a str,
    pub url: Option<&'a str>,
    pub secret: Option<Option<&'a str>>,
    pub events: &'a [EventKind],
    pub enabled: bool,
}

/// A delivery taken for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub channel_id: i64,
    /// Attempts including this one.
    pub attempt: i64,
    pub notices: Vec<Notice>,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub id: i64,
    pub ok: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Try again then; `None`: this was the last attempt.
    pub retry_at: Option<DateTime<Utc>>,
}

impl Store {
    pub fn notify_channels(&self) -> Result<Vec<Channel>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {CHANNEL_COLS} FROM notify_channels ORDER BY id"))?;
        Ok(stmt.query_map([], channel_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn notify_channel(&self, id: i64) -> Result<Channel> {
        let sql = format!("SELECT {CHANNEL_COLS} FROM notify_channels WHERE id = ?1");
        self.reader().query_row(&sql, [id], channel_from_row).optional()?.ok_or(StoreError::NotFound)
    }

    pub fn insert_notify_channel(&self, c: &ChannelInput, source: HostSource, now: DateTime<Utc>) -> Result<Channel> {
        let id = self.write(|tx| Ok(insert_channel(tx, c, source, now)?))?;
        self.notify_channel(id)
    }

    /// Replaces an API channel's settings (see [`ChannelUpdate`]).
    pub fn update_notify_channel(&self, id: i64, u: &ChannelUpdate, now: DateTime<Utc>) -> Result<Channel> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE notify_channels SET name = ?2, url = COALESCE(?3, url), \
                 secret = CASE WHEN ?4 THEN ?5 ELSE secret END, events = ?6, enabled = ?7, updated_at = ?8 \
                 WHERE id = ?1 AND source = 'api'",
                params![
                    id,
                    u.name,
                    u.url,
                    u.secret.is_some(),
                    u.secret.flatten(),
                    events_json(u.events),
                    u.enabled,
                    fmt_time(now)
                ],
            )?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })?;
        self.notify_channel(id)
    }

    /// Deletes an API channel and its deliveries.
    pub fn delete_notify_channel(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM notify_channels WHERE id = ?1 AND source = 'api'", [id])?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }

    /// Makes the env channels those of `DOCKNAP_NOTIFY_URLS`: one kept per
    /// URL still listed (with its deliveries), new ones added, the rest removed.
    pub fn sync_env_notify_channels(&self, urls: &[(String, String)], now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let existing: Vec<(i64, String)> = {
                let mut stmt = tx.prepare("SELECT id, url FROM notify_channels WHERE source = 'env'")?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
            };
            for (id, url) in &existing {
                if !urls.iter().any(|(_, u)| u == url) {
                    tx.execute("DELETE FROM notify_channels WHERE id = ?1", [id])?;
                }
            }
            for (name, url) in urls {
                if !existing.iter().any(|(_, u)| u == url) {
                    tx.execute(
                        "INSERT INTO notify_channels (name, url, secret, events, enabled, source, created_at, updated_at) \
                         VALUES (?1, ?2, NULL, ?3, 1, 'env', ?4, ?4)",
                        params![name, url, events_json(EventKind::ALL), fmt_time(now)],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Queues `notices` for every enabled channel that wants them, in one
    /// transaction of their own (events that are not audit entries).
    pub fn enqueue_notices(&self, notices: &[Notice], now: DateTime<Utc>) -> Result<usize> {
        let n = self.write(|tx| enqueue(tx, notices, now))?;
        if n > 0 {
            self.outbox.notify_one();
        }
        Ok(n)
    }

    /// At start-up: attempts cut off by the last process's end are due now.
    pub fn release_notify_leases(&self, now: DateTime<Utc>) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute("UPDATE notify_deliveries SET leased = 0, due_at = ?1 WHERE leased = 1", [fmt_time(now)])?)
        })
    }

    /// Takes up to `limit` due deliveries for an attempt, at most `per_channel`
    /// of a channel counting `busy` (its attempts already under way).
    pub fn claim_notify_due(
        &self,
        now: DateTime<Utc>,
        busy: &std::collections::HashMap<i64, usize>,
        per_channel: usize,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        self.write(|tx| {
            let rows: Vec<(i64, i64, i64, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, channel_id, attempts, notices FROM notify_deliveries \
                     WHERE due_at IS NOT NULL AND due_at <= ?1 AND leased = 0 ORDER BY due_at LIMIT ?2",
                )?;
                stmt.query_map(params![fmt_time(now), (limit * 4) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            let mut taken: std::collections::HashMap<i64, usize> = busy.clone();
            let mut out = Vec::new();
            for (id, channel_id, attempts, notices) in rows {
                let n = taken.entry(channel_id).or_default();
                if *n >= per_channel || out.len() >= limit {
                    continue;
                }
                *n += 1;
                tx.execute("UPDATE notify_deliveries SET leased = 1, attempts = attempts + 1 WHERE id = ?1", [id])?;
                let notices = serde_json::from_str(&notices).unwrap_or_default();
                out.push(Claimed { id, channel_id, attempt: attempts + 1, notices });
            }
            Ok(out)
        })
    }

    /// Records attempts' outcomes in one transaction.
    pub fn finish_notify_attempts(&self, done: &[Attempted], now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            for a in done {
                let finished = a.retry_at.is_none();
                tx.execute(
                    "UPDATE notify_deliveries SET leased = 0, due_at = ?2, status = ?3, error = ?4, \
                     ok = CASE WHEN ?5 THEN ?6 ELSE NULL END, finished_at = CASE WHEN ?5 THEN ?7 ELSE NULL END WHERE id = ?1",
                    params![a.id, a.retry_at.map(fmt_time), a.status, a.error, finished, a.ok, fmt_time(now)],
                )?;
            }
            Ok(())
        })
    }

    /// When the next pending delivery is due (leased ones are under way).
    pub fn next_notify_due(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> = self.reader().query_row(
            "SELECT MIN(due_at) FROM notify_deliveries WHERE due_at IS NOT NULL AND leased = 0",
            [],
            |r| r.get(0),
        )?;
        t.map(|t| parse_time(&t)).transpose().map_err(Into::into)
    }

    /// The Test button's delivery, recorded like any other.
    pub fn record_notify_test(
        &self,
        channel_id: i64,
        ok: bool,
        status: Option<u16>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO notify_deliveries (channel_id, event, notices, count, created_at, attempts, ok, status, error, finished_at) \
                 VALUES (?1, 'test', '[]', 1, ?2, 1, ?3, ?4, ?5, ?2)",
                params![channel_id, fmt_time(now), ok, status, error],
            )?;
            Ok(())
        })
    }

    /// A channel's deliveries, newest first.
    pub fn notify_deliveries(&self, channel_id: i64, limit: i64) -> Result<Vec<Delivery>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLS} FROM notify_deliveries WHERE channel_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        Ok(stmt.query_map(params![channel_id, limit], delivery_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest failed deliveries of every channel (the dashboard's warning).
    pub fn failed_notify_deliveries(&self, limit: i64) -> Result<Vec<Delivery>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLS} FROM notify_deliveries WHERE ok = 0 ORDER BY id DESC LIMIT ?1"
        ))?;
        Ok(stmt.query_map([limit], delivery_from_row)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets finished deliveries older than `cutoff` (pending ones stay).
    pub fn prune_notify_deliveries(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM notify_deliveries WHERE due_at IS NULL AND finished_at < ?1",
                [fmt_time(cutoff)],
            )?)
        })
    }

    /// Deliveries still waiting (for the benchmark and tests).
    pub fn pending_notify_count(&self) -> Result<i64> {
        Ok(self
            .reader()
            .query_row("SELECT COUNT(*) FROM notify_deliveries WHERE due_at IS NOT NULL", [], |r| r.get(0))?)
    }
}

/// Queues each notice for the enabled channels whose filter takes its event,
/// joining a pending delivery of the same group when there is one. Runs in
/// the caller's transaction (the audit writer's, for audited results).
pub(super) fn enqueue(tx: &Transaction, notices: &[Notice], now: DateTime<Utc>) -> Result<usize> {
    if notices.is_empty() {
        return Ok(0);
    }
    let channels: Vec<(i64, Vec<EventKind>)> = {
        let mut stmt = tx.prepare_cached("SELECT id, events FROM notify_channels WHERE enabled = 1")?;
        stmt.query_map([], |r| {
            let names: Vec<String> = serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default();
            Ok((r.get(0)?, names.iter().filter_map(|n| n.parse().ok()).collect()))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut queued = 0;
    for n in notices {
        let json = serde_json::to_string(n).expect("a notice serialises");
        let key = n.group_key();
        for (channel, _) in channels.iter().filter(|(_, e)| e.contains(&n.event)) {
            queued += 1;
            if let Some(key) = &key {
                let open: Option<(i64, String)> = tx
                    .prepare_cached(
                        "SELECT id, created_at FROM notify_deliveries WHERE channel_id = ?1 AND group_key = ?2 \
                         AND attempts = 0 AND due_at IS NOT NULL AND leased = 0 AND count < ?3 AND created_at > ?4 \
                         ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row(params![channel, key, MAX_GROUP, fmt_time(now - MAX_GATHER)], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((id, created)) = open {
                    let due = (now + GATHER).min(parse_time(&created)? + MAX_GATHER);
                    tx.prepare_cached(
                        "UPDATE notify_deliveries SET notices = json_insert(notices, '$[#]', json(?2)), count = count + 1, due_at = ?3 \
                         WHERE id = ?1",
                    )?
                    .execute(params![id, json, fmt_time(due)])?;
                    continue;
                }
            }
            let due = if key.is_some() { now + GATHER } else { now };
            tx.prepare_cached(
                "INSERT INTO notify_deliveries (channel_id, event, group_key, notices, count, created_at, due_at) \
                 VALUES (?1, ?2, ?3, json_array(json(?4)), 1, ?5, ?6)",
            )?
            .execute(params![channel, n.event.as_str(), key, json, fmt_time(now), fmt_time(due)])?;
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn channel(events: Vec<EventKind>) -> ChannelInput {
        ChannelInput {
            name: "c".into(),
            url: "generic+http://127.0.0.1:1/x".into(),
            secret: None,
            events,
            enabled: true,
        }
    }

    fn failed(actor: &str, target: &str) -> crate::model::NewAuditEntry {
        let t = crate::model::Target::new("local", crate::model::TargetType::Container, target);
        crate::model::NewAuditEntry::new(actor, crate::model::Action::Stop, false, "boom")
            .on(&t)
            .details(serde_json::json!({ "trigger": "manual" }))
    }

    #[test]
    fn an_audited_failure_queues_a_delivery_in_the_same_write_only_for_channels_that_want_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let wants = s.insert_notify_channel(&channel(EventKind::defaults()), HostSource::Api, now()).unwrap();
        let other = s.insert_notify_channel(&channel(vec![EventKind::HostRecovered]), HostSource::Api, now()).unwrap();
        s.append_audit(&failed("bob", "a"), now()).unwrap();
        assert_eq!(s.notify_deliveries(wants.id, 10).unwrap().len(), 1);
        assert!(s.notify_deliveries(other.id, 10).unwrap().is_empty());
    }

    #[test]
    fn a_result_and_its_notice_are_written_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.insert_notify_channel(&channel(EventKind::defaults()), HostSource::Api, now()).unwrap();
        let side = rusqlite::Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
        side.execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON notify_deliveries BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
        assert!(s.append_audit(&failed("bob", "a"), now()).is_err());
        let all = crate::model::AuditFilter { limit: 10, ..Default::default() };
        assert!(s.audit(&all).unwrap().is_empty(), "no audit entry without its notice");
        side.execute_batch(
            "DROP TRIGGER full; CREATE TRIGGER full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
        assert!(s.append_audit(&failed("bob", "a"), now()).is_err());
        assert!(s.notify_deliveries(c.id, 10).unwrap().is_empty(), "no notice without its audit entry");
        side.execute_batch("DROP TRIGGER full").unwrap();
        s.append_audit(&failed("bob", "a"), now()).unwrap();
        assert_eq!((s.audit(&all).unwrap().len(), s.notify_deliveries(c.id, 10).unwrap().len()), (1, 1));
    }

    #[test]
    fn thirty_failures_of_one_bulk_request_are_one_delivery_and_a_claimed_one_takes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.insert_notify_channel(&channel(EventKind::defaults()), HostSource::Api, now()).unwrap();
        for i in 0..30 {
            s.append_audit(&failed("bob", &format!("c{i}")), now() + chrono::Duration::milliseconds(i * 50)).unwrap();
        }
        let d = s.notify_deliveries(c.id, 10).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 30);
        assert!(s.claim_notify_due(now(), &Default::default(), 4, 10).unwrap().is_empty(), "still gathering");
        let later = now() + chrono::Duration::seconds(10);
        let claimed = s.claim_notify_due(later, &Default::default(), 4, 10).unwrap();
        assert_eq!(claimed[0].notices.len(), 30);
        s.append_audit(&failed("bob", "late"), later).unwrap();
        assert_eq!(s.notify_deliveries(c.id, 10).unwrap().len(), 2, "a claimed delivery is sealed");
    }

    #[test]
    fn finished_deliveries_are_pruned_and_pending_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.insert_notify_channel(&channel(EventKind::ALL.to_vec()), HostSource::Api, now()).unwrap();
        s.record_notify_test(c.id, true, Some(204), None, now()).unwrap();
        s.enqueue_notices(&[Notice::new(EventKind::HostRecovered, now(), true, "back")], now()).unwrap();
        assert_eq!(s.prune_notify_deliveries(now() + chrono::Duration::days(31)).unwrap(), 1);
        assert_eq!(s.pending_notify_count().unwrap(), 1);
    }

    #[test]
    fn a_lease_left_by_a_killed_process_is_due_again_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.insert_notify_channel(&channel(EventKind::ALL.to_vec()), HostSource::Api, now()).unwrap();
        let mut n = Notice::new(EventKind::HostUnreachable, now(), false, "gone");
        n.host = Some("h".into());
        s.enqueue_notices(&[n], now()).unwrap();
        assert_eq!(s.claim_notify_due(now(), &Default::default(), 4, 10).unwrap().len(), 1);
        assert!(s.next_notify_due().unwrap().is_none(), "under way");
        let restart = now() + chrono::Duration::seconds(60);
        assert_eq!(s.release_notify_leases(restart).unwrap(), 1);
        let again = s.claim_notify_due(restart, &Default::default(), 4, 10).unwrap();
        assert_eq!(again[0].attempt, 2);
    }
}
