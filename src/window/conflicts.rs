//! Conflicts over the next 7 days: two schedules of one target (or a stack
//! and one of its containers) with opposing actions due in the same minute,
//! and schedules that act against their target's window. Pure: the caller
//! gives the fires and the windows' specs.

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;

use super::spec::WindowSpec;
use crate::model::{Action, Conflict, Desired, TargetType};
use crate::scheduler::cron::CronExpr;

/// How far ahead conflicts are looked for.
pub const HORIZON: TimeDelta = TimeDelta::days(7);
/// Most fires of one schedule considered (one a minute for a week): a
/// per-second schedule is judged by its minutes.
pub const MAX_FIRES: usize = 7 * 24 * 60;

/// A target, and the stack it belongs to when it is a container of one.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub stack: Option<String>,
}

impl Target {
    /// The same target, or a stack and one of its containers.
    fn overlaps(&self, other: &Target) -> bool {
        let contains = |stack: &Target, c: &Target| {
            stack.target_type == TargetType::Stack && c.stack.as_deref() == Some(stack.target_id.as_str())
        };
        self.host == other.host
            && ((self.target_type == other.target_type && self.target_id == other.target_id)
                || contains(self, other)
                || contains(other, self))
    }

    /// Targets that can overlap share this key (on one host).
    pub fn scope(&self) -> &str {
        self.stack.as_deref().unwrap_or(&self.target_id)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.target_type, self.target_id)
    }
}

pub struct TimedSchedule {
    pub id: i64,
    pub target: Target,
    pub action: Action,
    /// Due times within the horizon, sorted.
    pub fires: Vec<DateTime<Utc>>,
}

pub struct TimedWindow<'a> {
    pub id: i64,
    pub target: Target,
    pub spec: &'a WindowSpec,
    pub tz: Tz,
}

#[derive(Debug, Default)]
pub struct Found {
    pub schedules: HashMap<i64, Vec<Conflict>>,
    pub windows: HashMap<i64, Vec<Conflict>>,
}

/// The fires of `expr` after `now` up to `until`, at most one a minute.
pub fn fires_within(expr: &CronExpr, tz: Tz, now: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut fires = Vec::new();
    let mut after = now;
    while let Some(next) = expr.next_after(after, tz).filter(|n| *n <= until && fires.len() < MAX_FIRES) {
        fires.push(next);
        // Skip the rest of this minute: conflicts are judged by the minute.
        after = minute(next) + TimeDelta::seconds(59);
    }
    fires
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// The first minute both sorted fire lists share.
fn first_common_minute(a: &[DateTime<Utc>], b: &[DateTime<Utc>]) -> Option<DateTime<Utc>> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (minute(a[i]), minute(b[j]));
        match x.cmp(&y) {
            std::cmp::Ordering::Equal => return Some(x),
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    None
}

pub fn find(schedules: &[TimedSchedule], windows: &[TimedWindow]) -> Found {
    let mut found = Found::default();
    let mut by_scope: HashMap<&str, Vec<&TimedSchedule>> = HashMap::new();
    for s in schedules {
        by_scope.entry(s.target.scope()).or_default().push(s);
    }
    for group in by_scope.values() {
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                let (Some(up_a), Some(up_b)) = (a.action.brings_up(), b.action.brings_up()) else { continue };
                if up_a == up_b || !a.target.overlaps(&b.target) {
                    continue;
                }
                if let Some(at) = first_common_minute(&a.fires, &b.fires) {
                    let message = |x: &TimedSchedule, y: &TimedSchedule| {
                        format!(
                            "{}s {} in the same minute as schedule {} {}s {}",
                            x.action,
                            x.target.describe(),
                            y.id,
                            y.action,
                            y.target.describe()
                        )
                    };
                    let conflict = |with: &TimedSchedule, message: String| Conflict {
                        kind: "opposing_schedules",
                        with_type: "schedule",
                        with_id: with.id,
                        at,
                        message,
                    };
                    found.schedules.entry(a.id).or_default().push(conflict(b, message(a, b)));
                    found.schedules.entry(b.id).or_default().push(conflict(a, message(b, a)));
                }
            }
        }
    }
    for w in windows {
        for s in by_scope.get(w.target.scope()).into_iter().flatten() {
            let Some(up) = s.action.brings_up() else { continue };
            if !w.target.overlaps(&s.target) {
                continue;
            }
            let against = s.fires.iter().find(|t| (w.spec.desired_at(**t, w.tz) == Desired::Up) != up);
            if let Some(at) = against.copied() {
                let wanted = if up { "down" } else { "up" };
                let conflict =
                    |with_type, with_id, message| Conflict { kind: "against_window", with_type, with_id, at, message };
                found.schedules.entry(s.id).or_default().push(conflict(
                    "window",
                    w.id,
                    format!("{}s {} while window {} wants it {wanted}", s.action, s.target.describe(), w.id),
                ));
                found.windows.entry(w.id).or_default().push(conflict(
                    "schedule",
                    s.id,
                    format!(
                        "schedule {} {}s {} while this window wants it {wanted}",
                        s.id,
                        s.action,
                        s.target.describe()
                    ),
                ));
            }
        }
    }
    for list in found.schedules.values_mut().chain(found.windows.values_mut()) {
        list.sort_by_key(|c| (c.at, c.with_id));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn target(target_type: TargetType, id: &str, stack: Option<&str>) -> Target {
        Target {
            host: crate::model::LOCAL_HOST.into(),
            target_type,
            target_id: id.into(),
            stack: stack.map(str::to_string),
        }
    }

    fn sched(id: i64, target: Target, action: Action, fires: &[&str]) -> TimedSchedule {
        TimedSchedule { id, target, action, fires: fires.iter().map(|f| t(f)).collect() }
    }

    #[test]
    fn opposing_actions_in_one_minute_on_one_target_or_its_stack() {
        let web = target(TargetType::Stack, "web", None);
        let app = target(TargetType::Container, "web-app-1", Some("web"));
        let other = target(TargetType::Container, "web-db-1", Some("web"));
        let schedules = [
            sched(1, web.clone(), Action::Stop, &["2026-01-05T23:00:00Z"]),
            sched(2, app.clone(), Action::Start, &["2026-01-05T23:00:30Z"]),
            sched(3, other.clone(), Action::Start, &["2026-01-06T07:00:00Z"]),
            sched(4, app.clone(), Action::Restart, &["2026-01-05T23:00:00Z"]),
            sched(5, other, Action::Stop, &["2026-01-06T07:01:00Z"]),
        ];
        let found = find(&schedules, &[]);
        let ids = |id: i64| {
            found.schedules.get(&id).map(|v| v.iter().map(|c| c.with_id).collect::<Vec<_>>()).unwrap_or_default()
        };
        assert_eq!(ids(1), [2], "a stack and one of its containers, same minute");
        assert_eq!(ids(2), [1]);
        assert_eq!(found.schedules[&1][0].at, t("2026-01-05T23:00:00Z"));
        assert!(ids(3).is_empty() && ids(5).is_empty(), "different minutes");
        assert!(ids(4).is_empty(), "a restart opposes nothing");
        assert_eq!(
            found.schedules[&1][0].message,
            "stops stack web in the same minute as schedule 2 starts container web-app-1"
        );
    }

    #[test]
    fn a_schedule_against_its_window() {
        let spec = WindowSpec::parse("Mon-Fri 07:00-19:00").unwrap();
        let web = target(TargetType::Stack, "web", None);
        let windows = [TimedWindow { id: 9, target: web.clone(), spec: &spec, tz: chrono_tz::UTC }];
        // 2026-01-05 is a Monday.
        let schedules = [
            sched(1, web.clone(), Action::Stop, &["2026-01-05T20:00:00Z", "2026-01-06T12:00:00Z"]),
            sched(2, web.clone(), Action::Start, &["2026-01-05T07:00:00Z"]),
            sched(3, target(TargetType::Stack, "api", None), Action::Stop, &["2026-01-05T12:00:00Z"]),
        ];
        let found = find(&schedules, &windows);
        assert_eq!(found.schedules[&1][0].at, t("2026-01-06T12:00:00Z"), "the first fire against it");
        assert_eq!(found.schedules[&1][0].message, "stops stack web while window 9 wants it up");
        assert!(!found.schedules.contains_key(&2) && !found.schedules.contains_key(&3));
        assert_eq!(found.windows[&9].iter().map(|c| c.with_id).collect::<Vec<_>>(), [1]);
    }
}
