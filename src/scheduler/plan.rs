//! The scheduler's plan: the enabled schedules' timing, each with the
//! instant it next has something to do. Read from the store once; after that
//! each change made through the scheduler updates its own entry, so neither
//! a tick nor the creation of the ten-thousandth schedule reads and compiles
//! them all. An entry holds what planning and the upcoming list need: the
//! schedule itself is read when it has something to do.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Timing;
use super::cron::parse_timezone;
use crate::model::{Action, Schedule, TargetType, Upcoming};

/// When a schedule with no next fire is looked at again.
pub(super) const LOOK_AGAIN: chrono::Duration = chrono::Duration::seconds(60);

/// What a schedule does and when, as compiled from its stored fields.
pub(super) struct Planned {
    pub id: i64,
    pub timing: Timing,
    pub tz: Tz,
    host: String,
    target_type: TargetType,
    target_id: String,
    action: Action,
}

impl Planned {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timing.fires().next_after(t, self.tz)
    }
}

struct Entry {
    planned: Arc<Planned>,
    /// Fires up to here are handled (run, missed or not due).
    from: DateTime<Utc>,
    due: DateTime<Utc>,
}

#[derive(Default)]
pub(super) struct Plan {
    loaded: bool,
    entries: HashMap<i64, Entry>,
}

impl Plan {
    pub(super) fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub(super) fn load(&mut self, all: &[Schedule]) {
        self.entries.clear();
        for s in all {
            self.put(s);
        }
        self.loaded = true;
    }

    /// A schedule as it is now stored: due at once (to be planned), or out
    /// of the plan when it is disabled or does not compile.
    pub(super) fn put(&mut self, s: &Schedule) {
        let f = &s.fields;
        let compiled = f.enabled.then(|| Timing::of(f).zip(parse_timezone(&f.timezone).ok()));
        let Some((timing, tz)) = compiled.flatten() else {
            self.entries.remove(&s.id);
            return;
        };
        let planned = Planned {
            id: s.id,
            timing,
            tz,
            host: f.host.clone(),
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            action: f.action,
        };
        let from = s.checked_until.unwrap_or(s.created_at);
        self.entries.insert(s.id, Entry { planned: Arc::new(planned), from, due: DateTime::<Utc>::MIN_UTC });
    }

    pub(super) fn remove(&mut self, id: i64) {
        self.entries.remove(&id);
    }

    /// Reads everything again when next needed (schedules changed in bulk).
    pub(super) fn reset(&mut self) {
        self.loaded = false;
        self.entries.clear();
    }

    /// The entries whose instant has come, with how far they are handled.
    pub(super) fn due(&self, now: DateTime<Utc>) -> Vec<(Arc<Planned>, DateTime<Utc>)> {
        self.entries.values().filter(|e| e.due <= now).map(|e| (e.planned.clone(), e.from)).collect()
    }

    /// Handled up to `from`; next looked at `due`.
    pub(super) fn planned(&mut self, id: i64, from: DateTime<Utc>, due: DateTime<Utc>) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.from = e.from.max(from);
            e.due = due;
        }
    }

    pub(super) fn earliest(&self) -> Option<DateTime<Utc>> {
        self.entries.values().map(|e| e.due).min()
    }

    pub(super) fn all(&self) -> Vec<Arc<Planned>> {
        self.entries.values().map(|e| e.planned.clone()).collect()
    }
}

/// The next fires of `planned` after `now`, soonest first: at most `limit`,
/// none after `until`, at most `per_schedule` of any one. A k-way merge: one
/// pending fire per schedule in a min-heap.
pub(super) fn upcoming(
    planned: &[Arc<Planned>],
    now: DateTime<Utc>,
    limit: usize,
    until: Option<DateTime<Utc>>,
    per_schedule: Option<usize>,
) -> Vec<Upcoming> {
    // Ties go to the lower id, as the list orders schedules.
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, i64, usize)>> =
        planned.iter().enumerate().filter_map(|(i, p)| p.next_after(now).map(|t| Reverse((t, p.id, i)))).collect();
    let mut out = Vec::with_capacity(limit.min(1024));
    let mut taken = vec![0usize; planned.len()];
    while let Some(Reverse((at, id, i))) = heap.pop() {
        if out.len() >= limit || until.is_some_and(|u| at > u) {
            break;
        }
        let p = &planned[i];
        out.push(Upcoming {
            schedule_id: id,
            host: p.host.clone(),
            target_type: p.target_type,
            target_id: p.target_id.clone(),
            action: p.action,
            at,
        });
        taken[i] += 1;
        if per_schedule.is_some_and(|cap| taken[i] >= cap) {
            continue;
        }
        if let Some(next) = p.next_after(at) {
            heap.push(Reverse((next, id, i)));
        }
    }
    out
}
