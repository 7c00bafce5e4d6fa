//! Window specs: when a target should be up, and when that changes.
//!
//! # Syntax
//! - `always`, `never` (any case), or rules separated by `,`.
//! - A rule is `DAYS HH:MM-HH:MM`. DAYS is one day or a range of days. Days
//!   are read as in cron expressions (`parse_day_name`): `Mon`…`Sun` or in
//!   full (`monday`), any case. A range runs forward from its first day to its
//!   last and wraps past Sunday: `Mon-Fri`, `Mon-Sun` (the whole week),
//!   `Sun-Thu`, `Fri-Mon` (Friday to Monday). A range from a day to itself
//!   (`Mon-Mon`) is that one day.
//! - Times are `HH:MM` with two digits each, 00:00 to 23:59; `24:00` is
//!   allowed as an end. The start is inclusive, the end exclusive, both at
//!   second 0 of their minute. An end before the start is an overnight window
//!   that belongs to its start day: `Fri 22:00-06:00` is Friday 22:00 to
//!   Saturday 06:00, and `Sun 22:00-06:00` runs into Monday. `22:00-00:00` is
//!   the same as `22:00-24:00`.
//! - Whitespace around `,` and `-` is allowed:
//!   `Mon - Fri 07:00 - 19:00 , Sat 10:00-14:00`.
//! - Rules are a union: overlapping and repeated rules are fine.
//! - Rejected with a message that quotes the bad part: an empty spec or rule,
//!   a rule without days or without times (`7-19`), times that are not
//!   `HH:MM` (`Mon 7-19`), unknown days (numbers included), `start == end`,
//!   a start of `24:00` (or any `24:xx`), and `always`/`never` mixed with rules.
//!
//! # Daylight saving
//! Membership is judged on the local wall clock of the window's zone, so the
//! state is a function of the wall clock alone:
//! - Clocks jump forward: a boundary inside the skipped hour takes effect at
//!   the first local time that exists (Europe/Berlin 2026-03-29: a rule
//!   starting 02:30 starts at 03:00 CEST = 01:00Z). A rule that lies entirely
//!   inside the skipped hour does nothing that day.
//! - Clocks go back: wall-clock times inside a rule are inside both times
//!   they occur (Europe/Berlin 2026-10-25: `Sun 02:15-02:45` is up 00:15Z to
//!   00:45Z and again 01:15Z to 01:45Z). So a boundary inside the repeated
//!   hour takes effect twice: `Sun 00:00-02:30` goes down at 02:30 CEST, up
//!   when the clock goes back to 02:00 and down again at 02:30 CET, and
//!   `Sun 02:30-04:00` comes up at 02:30 CEST, is down from the clock change
//!   until 02:30 CET, then up until 04:00.
//!
//! # Cost
//! Parsing turns the rules into one bit per minute of the week (10,080 bits)
//! and the sorted list of minutes where that bit changes. `desired_at` is one
//! zone-offset lookup and one bit test. `next_transition` and
//! `previous_transition` jump from one change minute to the next in local
//! time and probe the zone's offset every 6 hours on the way (bisecting to
//! the second when it changed), so they cost a few offset lookups, not a
//! scan. The probing assumes a zone never changes its offset twice within 6
//! hours: in chrono-tz 0.10.4's data (597 zones, 65,123 offset changes up to
//! 2099) the closest two changes of one zone are 167 hours apart.

use std::fmt;

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

pub use crate::model::Desired;
use crate::scheduler::cron::{first_second_where, parse_day_name, shown};

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: usize = 7 * MINUTES_PER_DAY as usize;
const WEEK_WORDS: usize = MINUTES_PER_WEEK.div_ceil(64);
/// How far `next_transition` and `previous_transition` look.
const HORIZON_SECONDS: i64 = 8 * 86_400;
/// How often the walk checks whether the zone's offset changed.
const OFFSET_PROBE_SECONDS: i64 = 6 * 3_600;
const DAY_ABBREVIATIONS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A spec that does not parse; the message quotes the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// A parsed window spec.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    text: String,
    week: WeekMinutes,
    /// The minutes of the week (0 = Monday 00:00) whose state differs from the
    /// minute before (cyclically), ascending. Empty for a constant spec.
    boundaries: Vec<u16>,
}

impl WindowSpec {
    pub fn parse(text: &str) -> Result<WindowSpec, SpecError> {
        let text = text.trim();
        let mut week = WeekMinutes([0; WEEK_WORDS]);
        if text.is_empty() {
            return Err(error(
                "the window spec is empty (use 'always', 'never' or rules like 'Mon-Fri 07:00-19:00')".into(),
            ));
        } else if text.eq_ignore_ascii_case("always") {
            (0..MINUTES_PER_WEEK).for_each(|minute| week.set(minute));
        } else if !text.eq_ignore_ascii_case("never") {
            for rule in text.split(',') {
                let rule = rule.trim();
                if rule.is_empty() {
                    return Err(error(format!(
                        "'{}' has an empty rule (a ',' with no rule before or after it)",
                        shown(text)
                    )));
                }
                parse_rule(rule)?.add_to(&mut week);
            }
        }
        let boundaries = (0..MINUTES_PER_WEEK)
            .filter(|&minute| week.get(minute) != week.get((minute + MINUTES_PER_WEEK - 1) % MINUTES_PER_WEEK))
            .map(|minute| minute as u16)
            .collect();
        Ok(WindowSpec { text: text.to_string(), week, boundaries })
    }

    /// The trimmed text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn desired_at(&self, t: DateTime<Utc>, tz: Tz) -> Desired {
        if self.boundaries.is_empty() {
            return Desired::from_up(self.week.get(0));
        }
        let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
        Desired::from_up(self.up_at_local(t.timestamp() + i64::from(offset)))
    }

    /// The first instant strictly after `after` at which `desired_at` differs
    /// from `desired_at(after)`, with the new state. `None` for a spec whose
    /// state never changes (`always`, `never`, rules covering the whole week),
    /// and when nothing changes within 8 days (which a changing spec can do:
    /// `Sun 02:00-02:30` does nothing on a Sunday whose 02:00-02:59 is skipped).
    pub fn next_transition(&self, after: DateTime<Utc>, tz: Tz) -> Option<(DateTime<Utc>, Desired)> {
        if self.boundaries.is_empty() {
            return None;
        }
        let start = after.timestamp();
        let limit = start.checked_add(HORIZON_SECONDS)?;
        let (mut now, mut offset) = (start, offset_at(tz, start));
        let was_up = self.up_at_local(now + offset);
        loop {
            // Invariant: the state at `now` is `was_up`, and `offset` is the offset at `now`.
            let boundary = self.next_boundary(now + offset) - offset;
            match first_offset_change(tz, now, offset, boundary.min(limit)) {
                None => {
                    return (boundary <= limit)
                        .then(|| Some((instant(boundary)?, Desired::from_up(!was_up))))
                        .flatten();
                }
                Some((change, new_offset)) => {
                    let up = self.up_at_local(change + new_offset);
                    if up != was_up {
                        return Some((instant(change)?, Desired::from_up(up)));
                    }
                    (now, offset) = (change, new_offset);
                }
            }
        }
    }

    /// The next `count` transitions after `after` (fewer when the state stops changing).
    pub fn transitions(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<(DateTime<Utc>, Desired)> {
        let mut found = Vec::with_capacity(count.min(64));
        let mut t = after;
        while found.len() < count {
            let Some(next) = self.next_transition(t, tz) else { break };
            found.push(next);
            t = next.0;
        }
        found
    }

    /// The last transition at or before `t`: when the state at `t` began.
    /// `None` for a spec whose state never changes, and when it has not
    /// changed within 8 days before `t` (which a changing spec can do when its
    /// only change of a week lies in a skipped hour, as with `next_transition`).
    pub fn previous_transition(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.boundaries.is_empty() {
            return None;
        }
        let end = t.timestamp();
        let limit = end.checked_sub(HORIZON_SECONDS)?;
        let (mut now, mut offset) = (end, offset_at(tz, end));
        let is_up = self.up_at_local(now + offset);
        loop {
            // Invariant: the state is `is_up` from `now` to `t`, and `offset` is the offset at `now`.
            let boundary = self.last_boundary(now + offset) - offset;
            // A change of offset exactly at `boundary` counts too: the state before it is read with the old offset.
            match last_offset_change(tz, now, offset, boundary.max(limit) - 1) {
                None => return (boundary >= limit).then(|| instant(boundary)).flatten(),
                Some((change, old_offset)) => {
                    if self.up_at_local(change - 1 + old_offset) != is_up {
                        return instant(change);
                    }
                    (now, offset) = (change - 1, old_offset);
                }
            }
        }
    }

    fn up_at_local(&self, local_seconds: i64) -> bool {
        self.week.get(week_minute(local_seconds.div_euclid(60)))
    }

    /// The first boundary strictly after `local_seconds`, in local seconds.
    fn next_boundary(&self, local_seconds: i64) -> i64 {
        let minute = local_seconds.div_euclid(60);
        let week_start = minute - week_minute(minute) as i64;
        let i = self.boundaries.partition_point(|&b| week_start + i64::from(b) <= minute);
        let boundary = match self.boundaries.get(i) {
            Some(&b) => week_start + i64::from(b),
            None => week_start + MINUTES_PER_WEEK as i64 + i64::from(self.boundaries[0]),
        };
        boundary * 60
    }

    /// The last boundary at or before `local_seconds`, in local seconds.
    fn last_boundary(&self, local_seconds: i64) -> i64 {
        let minute = local_seconds.div_euclid(60);
        let week_start = minute - week_minute(minute) as i64;
        let i = self.boundaries.partition_point(|&b| week_start + i64::from(b) <= minute);
        let boundary = match i.checked_sub(1) {
            Some(i) => week_start + i64::from(self.boundaries[i]),
            None => week_start - MINUTES_PER_WEEK as i64 + i64::from(self.boundaries[self.boundaries.len() - 1]),
        };
        boundary * 60
    }
}

/// One bit per minute of the week, Monday 00:00 first.
#[derive(Clone)]
struct WeekMinutes([u64; WEEK_WORDS]);

impl WeekMinutes {
    fn get(&self, minute: usize) -> bool {
        self.0[minute / 64] & (1 << (minute % 64)) != 0
    }

    fn set(&mut self, minute: usize) {
        self.0[minute / 64] |= 1 << (minute % 64);
    }
}

/// The up periods, as `Mon 07:00-Mon 19:00`, rather than 158 numbers.
impl fmt::Debug for WeekMinutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = |minute: usize| {
            let (day, time) = (minute / MINUTES_PER_DAY as usize, minute % MINUTES_PER_DAY as usize);
            format!("{} {:02}:{:02}", DAY_ABBREVIATIONS[day % 7], time / 60, time % 60)
        };
        let mut list = f.debug_list();
        let mut minute = 0;
        while minute < MINUTES_PER_WEEK {
            if self.get(minute) {
                let start = minute;
                while minute < MINUTES_PER_WEEK && self.get(minute) {
                    minute += 1;
                }
                list.entry(&format_args!("{}-{}", label(start), label(minute)));
            }
            minute += 1;
        }
        list.finish()
    }
}

/// One rule: a set of days (bit 0 = Monday) and minutes from the start day's midnight.
struct Rule {
    days: u8,
    start: u32,
    /// After `start`; past `MINUTES_PER_DAY` for an overnight rule.
    end: u32,
}

impl Rule {
    fn add_to(&self, week: &mut WeekMinutes) {
        for day in (0..7).filter(|day| self.days & (1 << day) != 0) {
            let first = day * MINUTES_PER_DAY;
            for minute in first + self.start..first + self.end {
                // A Sunday overnight rule spills into Monday.
                week.set(minute as usize % MINUTES_PER_WEEK);
            }
        }
    }
}

fn parse_rule(rule: &str) -> Result<Rule, SpecError> {
    // Tokens, with whitespace around dashes removed: `Mon - Fri 07:00 - 19:00` → [Mon-Fri, 07:00-19:00].
    // Days never join times, so `Mon- 09:00-10:00` is a day range missing its end.
    let is_time = |token: &str| token.trim_start_matches('-').starts_with(|c: char| c.is_ascii_digit());
    let mut parts: Vec<String> = Vec::new();
    for token in rule.split_whitespace() {
        match parts.last_mut() {
            Some(last)
                if (last.ends_with('-') || token.starts_with('-'))
                    && (token == "-" || is_time(last) == is_time(token)) =>
            {
                last.push_str(token)
            }
            _ => parts.push(token.to_string()),
        }
    }
    let (days, times) = match parts.as_slice() {
        [days, times] => (days, times),
        [word] if word.eq_ignore_ascii_case("always") || word.eq_ignore_ascii_case("never") => {
            return Err(error(format!(
                "'{}' cannot be combined with rules (it stands alone as the whole spec)",
                shown(word)
            )));
        }
        [only] if is_time(only) || only.contains(':') => {
            return Err(error(format!(
                "rule '{}' has no days (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00')",
                shown(rule)
            )));
        }
        [only] if parse_days(only, rule).is_err() => {
            return Err(error(format!(
                "'{}' is not a rule (use 'always', 'never' or rules like 'Mon-Fri 07:00-19:00')",
                shown(rule)
            )));
        }
        [_] => {
            return Err(error(format!(
                "rule '{}' has no times (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00'; every rule between commas needs its own times)",
                shown(rule)
            )));
        }
        _ => {
            return Err(error(format!(
                "rule '{}' has {} parts; a rule is DAYS HH:MM-HH:MM, and rules are separated by ','",
                shown(rule),
                parts.len()
            )));
        }
    };
    let days = parse_days(days, rule)?;
    let (start, end) = parse_times(times, rule)?;
    Ok(Rule { days, start, end: if end <= start { end + MINUTES_PER_DAY } else { end } })
}

/// A day or a range of days as a bitset, bit 0 = Monday.
fn parse_days(text: &str, rule: &str) -> Result<u8, SpecError> {
    let day = |name: &str| {
        if name.is_empty() {
            return Err(error(format!("day range '{}' in rule '{}' is missing a day", shown(text), shown(rule))));
        }
        // cron counts from Sunday = 0; here Monday is 0.
        parse_day_name(name).map(|cron_day| (cron_day + 6) % 7).ok_or_else(|| {
            error(format!("unknown day '{}' in rule '{}' (use Mon…Sun or Monday…Sunday)", shown(name), shown(rule)))
        })
    };
    let (first, last) = match text.split('-').collect::<Vec<_>>().as_slice() {
        [one] => (day(one)?, day(one)?),
        [first, last] => (day(first)?, day(last)?),
        _ => return Err(error(format!("day range '{}' in rule '{}' has more than one '-'", shown(text), shown(rule)))),
    };
    // Forward from `first`, wrapping past Sunday.
    let count = (last + 7 - first) % 7 + 1;
    Ok((0..count).fold(0, |days, i| days | 1 << ((first + i) % 7)))
}

/// `HH:MM-HH:MM` as minutes of the day; the end may be 24:00 (1440).
fn parse_times(text: &str, rule: &str) -> Result<(u32, u32), SpecError> {
    let Some((start_text, end_text)) = text.split_once('-') else {
        return Err(error(format!(
            "times '{}' in rule '{}' need a start and an end, as in '09:00-17:00'",
            shown(text),
            shown(rule)
        )));
    };
    if end_text.contains('-') {
        return Err(error(format!("times '{}' in rule '{}' have more than one '-'", shown(text), shown(rule))));
    }
    let time = |token: &str| {
        let Some((hours, minutes)) = token.split_once(':') else {
            return Err(error(format!(
                "times '{}' in rule '{}' are not HH:MM-HH:MM (as in '07:00-19:00')",
                shown(text),
                shown(rule)
            )));
        };
        let two_digits =
            |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
        match (two_digits(hours), two_digits(minutes)) {
            (Some(h), Some(m)) if (h < 24 && m < 60) || (h, m) == (24, 0) => Ok(h * 60 + m),
            (Some(_), Some(_)) => Err(error(format!(
                "time '{}' in rule '{}' is out of range (00:00 to 23:59, and 24:00 as an end)",
                shown(token),
                shown(rule)
            ))),
            _ => Err(error(format!("time '{}' in rule '{}' is not HH:MM", shown(token), shown(rule)))),
        }
    };
    let (start, end) = (time(start_text)?, time(end_text)?);
    if start == MINUTES_PER_DAY {
        return Err(error(format!(
            "rule '{}' starts at 24:00; only an end may be 24:00 (start at 00:00 of the next day)",
            shown(rule)
        )));
    }
    if start == end {
        return Err(error(format!(
            "rule '{}' starts and ends at {}: an empty window (for a whole day write 00:00-24:00)",
            shown(rule),
            shown(start_text)
        )));
    }
    Ok((start, end))
}

fn error(message: String) -> SpecError {
    SpecError(message)
}

/// Minute 0..10080 of the week (Monday 00:00 = 0) of a minute counted from 1970-01-01 00:00, a Thursday.
fn week_minute(minute: i64) -> usize {
    let day = minute.div_euclid(MINUTES_PER_DAY as i64);
    let weekday = (day + 3).rem_euclid(7);
    (weekday * MINUTES_PER_DAY as i64 + minute.rem_euclid(MINUTES_PER_DAY as i64)) as usize
}

/// The zone's offset from UTC in seconds at a Unix time (clamped to chrono's range).
fn offset_at(tz: Tz, seconds: i64) -> i64 {
    let clamped = seconds.clamp(DateTime::<Utc>::MIN_UTC.timestamp(), DateTime::<Utc>::MAX_UTC.timestamp());
    DateTime::from_timestamp(clamped, 0)
        .map_or(0, |t| i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()))
}

fn instant(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// The first second in `(from, until]` whose offset differs from `offset`
/// (the offset at `from`), with that offset.
fn first_offset_change(tz: Tz, from: i64, offset: i64, until: i64) -> Option<(i64, i64)> {
    let mut lo = from;
    while lo < until {
        let hi = lo.saturating_add(OFFSET_PROBE_SECONDS).min(until);
        if offset_at(tz, hi) != offset {
            let change = first_second_where(lo, hi, |t| offset_at(tz, t) != offset);
            return Some((change, offset_at(tz, change)));
        }
        lo = hi;
    }
    None
}

/// The last second `c` in `(floor, from]` where the offset became `offset`
/// (the offset at `from`), so the offset at `c - 1` differs, with that earlier offset.
fn last_offset_change(tz: Tz, from: i64, offset: i64, floor: i64) -> Option<(i64, i64)> {
    let mut hi = from;
    while hi > floor {
        let lo = hi.saturating_sub(OFFSET_PROBE_SECONDS).max(floor);
        if offset_at(tz, lo) != offset {
            let change = first_second_where(lo, hi, |t| offset_at(tz, t) == offset);
            return Some((change, offset_at(tz, change - 1)));
        }
        hi = lo;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, NaiveDateTime, Timelike};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap_or_else(|e| panic!("bad test zone {name}: {e}"))
    }

    fn spec(text: &str) -> WindowSpec {
        WindowSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn show((at, desired): (DateTime<Utc>, Desired)) -> String {
        format!("{} {desired:?}", at.format("%Y-%m-%dT%H:%M:%SZ"))
    }

    use Desired::{Down, Up};

    /// (day of January 2026, time, expected state)
    type Checks<'a> = &'a [(u32, &'a str, Desired)];

    #[test]
    fn specs_and_their_states() {
        // 2026-01-05 is a Monday; the week runs to Sunday 2026-01-11. Times are UTC.
        let at = |day: u32, time: &str| utc(&format!("2026-01-{day:02}T{time}Z"));
        let (mon, tue, wed, thu, fri, sat, sun, next_mon) = (5, 6, 7, 8, 9, 10, 11, 12);
        #[rustfmt::skip]
        let table: &[(&str, Checks)] = &[
            ("always", &[(mon, "00:00:00", Up), (sun, "23:59:59", Up)]),
            ("  ALWAYS ", &[(wed, "12:00:00", Up)]),
            ("never", &[(mon, "00:00:00", Down), (sun, "23:59:59", Down)]),
            ("Never", &[(wed, "12:00:00", Down)]),
            ("Mon-Fri 07:00-19:00", &[
                (mon, "06:59:59", Down), (mon, "07:00:00", Up), (wed, "12:00:00", Up), (fri, "18:59:59", Up),
                (fri, "19:00:00", Down), (sat, "12:00:00", Down), (sun, "12:00:00", Down),
            ]),
            // Overnight belongs to its start day: Friday night into Saturday morning only.
            ("Fri 22:00-06:00", &[
                (fri, "05:00:00", Down), (fri, "21:59:59", Down), (fri, "22:00:00", Up), (sat, "05:59:59", Up),
                (sat, "06:00:00", Down), (sat, "22:00:00", Down), (thu, "23:00:00", Down),
            ]),
            // Sunday night spills into Monday (the start of the week's bitmap).
            ("Sun 22:00-06:00", &[
                (mon, "05:59:59", Up), (mon, "06:00:00", Down), (sun, "21:59:59", Down), (sun, "22:00:00", Up),
                (next_mon, "05:59:59", Up), (next_mon, "06:00:00", Down), (tue, "03:00:00", Down),
            ]),
            // Day ranges wrap past Sunday.
            ("Sun-Thu 22:00-23:00", &[
                (sun, "22:30:00", Up), (mon, "22:30:00", Up), (thu, "22:30:00", Up), (fri, "22:30:00", Down), (sat, "22:30:00", Down),
            ]),
            ("Fri-Mon 12:00-13:00", &[
                (fri, "12:30:00", Up), (sat, "12:30:00", Up), (sun, "12:30:00", Up), (mon, "12:30:00", Up),
                (tue, "12:30:00", Down), (wed, "12:30:00", Down), (thu, "12:30:00", Down),
            ]),
            ("Mon-Fri 07:00-19:00, Sat 10:00-14:00", &[(sat, "09:59:59", Down), (sat, "10:00:00", Up), (sat, "14:00:00", Down), (fri, "18:00:00", Up)]),
            ("Mon-Fri 07:00-19:00,Sat 10:00-14:00", &[(sat, "10:00:00", Up), (fri, "18:00:00", Up)]),
            ("Mon - Fri 07:00 - 19:00 , Sat 10:00 -14:00", &[(sat, "10:00:00", Up), (fri, "18:00:00", Up), (sun, "12:00:00", Down)]),
            // Names in full and in any case; ranges ending in Sunday.
            ("monday 09:00-17:00", &[(mon, "09:00:00", Up), (tue, "09:00:00", Down)]),
            ("MONDAY-friday 09:00-17:00", &[(fri, "16:59:59", Up), (sat, "09:00:00", Down)]),
            ("wed-sun 09:00-17:00", &[(sun, "09:00:00", Up), (wed, "09:00:00", Up), (mon, "09:00:00", Down), (tue, "09:00:00", Down)]),
            ("Sat-Sun 00:00-24:00", &[(sat, "00:00:00", Up), (sun, "23:59:59", Up), (next_mon, "00:00:00", Down), (fri, "23:59:59", Down)]),
            ("Mon-Mon 09:00-10:00", &[(mon, "09:30:00", Up), (tue, "09:30:00", Down), (sun, "09:30:00", Down)]),
            // 24:00 as an end, 00:00 as an overnight end.
            ("Mon 00:00-24:00", &[(mon, "00:00:00", Up), (mon, "23:59:59", Up), (tue, "00:00:00", Down), (sun, "23:59:59", Down)]),
            ("Mon 22:00-00:00", &[(mon, "21:59:59", Down), (mon, "23:59:59", Up), (tue, "00:00:00", Down)]),
            ("Mon 07:00-09:30", &[(mon, "07:00:00", Up), (mon, "09:29:59", Up), (mon, "09:30:00", Down)]),
            // Unions.
            ("Mon 09:00-12:00, Mon 11:00-14:00, Mon 11:00-14:00", &[(mon, "08:59:59", Down), (mon, "09:00:00", Up), (mon, "13:59:59", Up), (mon, "14:00:00", Down)]),
        ];
        let mut failures = Vec::new();
        for (text, checks) in table {
            let spec = spec(text);
            for &(day, time, want) in *checks {
                let got = spec.desired_at(at(day, time), chrono_tz::UTC);
                if got != want {
                    failures.push(format!("{text:?} at 2026-01-{day:02} {time}: expected {want:?}, got {got:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn error_messages_name_the_bad_part() {
        #[rustfmt::skip]
        let cases = [
            ("", "the window spec is empty (use 'always', 'never' or rules like 'Mon-Fri 07:00-19:00')"),
            ("  \n", "the window spec is empty (use 'always', 'never' or rules like 'Mon-Fri 07:00-19:00')"),
            ("Mon 09:00-09:00", "rule 'Mon 09:00-09:00' starts and ends at 09:00: an empty window (for a whole day write 00:00-24:00)"),
            ("Mon 24:00-06:00", "rule 'Mon 24:00-06:00' starts at 24:00; only an end may be 24:00 (start at 00:00 of the next day)"),
            ("Mon 24:30-06:00", "time '24:30' in rule 'Mon 24:30-06:00' is out of range (00:00 to 23:59, and 24:00 as an end)"),
            ("Mon 09:00-24:30", "time '24:30' in rule 'Mon 09:00-24:30' is out of range (00:00 to 23:59, and 24:00 as an end)"),
            ("Mon 25:00-26:00", "time '25:00' in rule 'Mon 25:00-26:00' is out of range (00:00 to 23:59, and 24:00 as an end)"),
            ("Mon 12:60-13:00", "time '12:60' in rule 'Mon 12:60-13:00' is out of range (00:00 to 23:59, and 24:00 as an end)"),
            ("Mon 09:0-10:00", "time '09:0' in rule 'Mon 09:0-10:00' is not HH:MM"),
            ("Mon 009:00-10:00", "time '009:00' in rule 'Mon 009:00-10:00' is not HH:MM"),
            ("Mon 7:00-9:30", "time '7:00' in rule 'Mon 7:00-9:30' is not HH:MM"),
            ("Mon 09:00-1o:00", "time '1o:00' in rule 'Mon 09:00-1o:00' is not HH:MM"),
            ("7-19", "rule '7-19' has no days (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00')"),
            ("07:00-19:00", "rule '07:00-19:00' has no days (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00')"),
            ("Mon-Fri 7-19", "times '7-19' in rule 'Mon-Fri 7-19' are not HH:MM-HH:MM (as in '07:00-19:00')"),
            ("Mon 09:00", "times '09:00' in rule 'Mon 09:00' need a start and an end, as in '09:00-17:00'"),
            ("Mon 09:00-10:00-11:00", "times '09:00-10:00-11:00' in rule 'Mon 09:00-10:00-11:00' have more than one '-'"),
            ("Funday 09:00-10:00", "unknown day 'Funday' in rule 'Funday 09:00-10:00' (use Mon…Sun or Monday…Sunday)"),
            ("Mon-Funday 09:00-10:00", "unknown day 'Funday' in rule 'Mon-Funday 09:00-10:00' (use Mon…Sun or Monday…Sunday)"),
            ("1-5 09:00-17:00", "unknown day '1' in rule '1-5 09:00-17:00' (use Mon…Sun or Monday…Sunday)"),
            ("Tues 09:00-17:00", "unknown day 'Tues' in rule 'Tues 09:00-17:00' (use Mon…Sun or Monday…Sunday)"),
            ("Mon-Wed-Fri 09:00-10:00", "day range 'Mon-Wed-Fri' in rule 'Mon-Wed-Fri 09:00-10:00' has more than one '-'"),
            ("Mon- 09:00-10:00", "day range 'Mon-' in rule 'Mon- 09:00-10:00' is missing a day"),
            ("-Fri 09:00-10:00", "day range '-Fri' in rule '-Fri 09:00-10:00' is missing a day"),
            ("Mon", "rule 'Mon' has no times (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00'; every rule between commas needs its own times)"),
            ("Mon,Tue 09:00-10:00", "rule 'Mon' has no times (a rule is DAYS HH:MM-HH:MM, as in 'Mon-Fri 07:00-19:00'; every rule between commas needs its own times)"),
            ("sometimes", "'sometimes' is not a rule (use 'always', 'never' or rules like 'Mon-Fri 07:00-19:00')"),
            ("Mon Tue 09:00-10:00", "rule 'Mon Tue 09:00-10:00' has 3 parts; a rule is DAYS HH:MM-HH:MM, and rules are separated by ','"),
            ("Mon-Fri 07:00-19:00 Sat 10:00-14:00", "rule 'Mon-Fri 07:00-19:00 Sat 10:00-14:00' has 4 parts; a rule is DAYS HH:MM-HH:MM, and rules are separated by ','"),
            ("Mon 09:00-10:00,", "'Mon 09:00-10:00,' has an empty rule (a ',' with no rule before or after it)"),
            (",Mon 09:00-10:00", "',Mon 09:00-10:00' has an empty rule (a ',' with no rule before or after it)"),
            ("Mon 09:00-10:00, ,Tue 09:00-10:00", "'Mon 09:00-10:00, ,Tue 09:00-10:00' has an empty rule (a ',' with no rule before or after it)"),
            ("always, Mon 09:00-10:00", "'always' cannot be combined with rules (it stands alone as the whole spec)"),
            ("Mon 09:00-10:00, NEVER", "'NEVER' cannot be combined with rules (it stands alone as the whole spec)"),
            // A huge input makes a short message.
            ("Mon 09:00-10:00, Tue 09:00-10:00, Wed 09:00-10:00, Thu 09:00-10:00, Fri 09:00-10:00,",
             "'Mon 09:00-10:00, Tue 09:00-10:00, Wed 09…' has an empty rule (a ',' with no rule before or after it)"),
        ];
        let mut failures = Vec::new();
        for (text, expected) in cases {
            match WindowSpec::parse(text) {
                Err(SpecError(message)) if message == expected => {}
                other => failures.push(format!("{text:?}: expected {expected:?}, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        assert_eq!(
            WindowSpec::parse("Funday 09:00-10:00").unwrap_err().to_string(),
            "unknown day 'Funday' in rule 'Funday 09:00-10:00' (use Mon…Sun or Monday…Sunday)"
        );
    }

    #[test]
    fn transitions_in_an_ordinary_week() {
        let berlin = tz("Europe/Berlin");
        let spec = spec("Mon-Fri 07:00-19:00, Sat 10:00-14:00");
        // 2026-01-09 is a Friday; Berlin is UTC+1 in January.
        let got: Vec<String> = spec.transitions(utc("2026-01-09T12:00:00Z"), berlin, 5).into_iter().map(show).collect();
        assert_eq!(
            got,
            [
                "2026-01-09T18:00:00Z Down",
                "2026-01-10T09:00:00Z Up",
                "2026-01-10T13:00:00Z Down",
                "2026-01-12T06:00:00Z Up",
                "2026-01-12T18:00:00Z Down",
            ]
        );
        // Strictly after: from a transition instant, the next one.
        assert_eq!(
            spec.next_transition(utc("2026-01-10T09:00:00Z"), berlin),
            Some((utc("2026-01-10T13:00:00Z"), Down))
        );
        assert_eq!(spec.transitions(utc("2026-01-10T09:00:00Z"), berlin, 0), []);
    }

    #[test]
    fn boundaries_are_at_second_zero() {
        let spec = spec("Mon 07:00-08:00");
        let utc_zone = chrono_tz::UTC;
        assert_eq!(spec.desired_at(utc("2026-01-05T06:59:59.999999999Z"), utc_zone), Down);
        assert_eq!(spec.desired_at(utc("2026-01-05T07:00:00Z"), utc_zone), Up);
        assert_eq!(spec.desired_at(utc("2026-01-05T07:59:59.999Z"), utc_zone), Up);
        assert_eq!(spec.desired_at(utc("2026-01-05T08:00:00Z"), utc_zone), Down);
        assert_eq!(
            spec.next_transition(utc("2026-01-05T06:59:59.5Z"), utc_zone),
            Some((utc("2026-01-05T07:00:00Z"), Up))
        );
        assert_eq!(
            spec.next_transition(utc("2026-01-05T07:00:00Z"), utc_zone),
            Some((utc("2026-01-05T08:00:00Z"), Down))
        );
        assert_eq!(
            spec.previous_transition(utc("2026-01-05T07:59:59.5Z"), utc_zone),
            Some(utc("2026-01-05T07:00:00Z"))
        );
        assert_eq!(spec.previous_transition(utc("2026-01-05T07:00:00Z"), utc_zone), Some(utc("2026-01-05T07:00:00Z")));
        assert_eq!(
            spec.previous_transition(utc("2026-01-05T06:59:59.9Z"), utc_zone),
            Some(utc("2025-12-29T08:00:00Z"))
        );
    }

    #[test]
    fn previous_transition_is_when_the_state_began() {
        let (utc_zone, berlin) = (chrono_tz::UTC, tz("Europe/Berlin"));
        let weekdays = spec("Mon-Fri 07:00-19:00");
        #[rustfmt::skip]
        let table: &[(&WindowSpec, Tz, &str, Option<&str>)] = &[
            (&weekdays, utc_zone, "2026-01-07T12:00:00Z", Some("2026-01-07T07:00:00Z")),
            (&weekdays, utc_zone, "2026-01-10T12:00:00Z", Some("2026-01-09T19:00:00Z")),
            (&weekdays, utc_zone, "2026-01-12T06:00:00Z", Some("2026-01-09T19:00:00Z")),
            (&weekdays, utc_zone, "2026-01-07T07:00:00Z", Some("2026-01-07T07:00:00Z")),
            // Europe/Berlin 2026-10-25, 02:15-02:45 twice: at 01:00Z the clock goes back to 02:00, outside.
            (&spec("Sun 02:15-02:45"), berlin, "2026-10-25T01:20:00Z", Some("2026-10-25T01:15:00Z")),
            (&spec("Sun 02:15-02:45"), berlin, "2026-10-25T01:00:00Z", Some("2026-10-25T00:45:00Z")),
            // ... and a rule that covers 02:00 is re-entered when the clock goes back.
            (&spec("Sun 00:00-02:30"), berlin, "2026-10-25T01:10:00Z", Some("2026-10-25T01:00:00Z")),
            // Europe/Berlin 2026-03-29: a rule starting at 03:00, just after the gap, continues one that
            // ends inside the gap: up since Sunday 00:00, no transition at the jump.
            (&spec("Sun 00:00-02:30, Sun 03:00-05:00"), berlin, "2026-03-29T01:30:00Z", Some("2026-03-28T23:00:00Z")),
            (&spec("Sun 00:00-02:30, Sun 03:00-05:00"), berlin, "2026-03-29T01:00:00Z", Some("2026-03-28T23:00:00Z")),
            // A rule starting in the gap starts at the jump.
            (&spec("Sun 02:30-05:00"), berlin, "2026-03-29T01:30:00Z", Some("2026-03-29T01:00:00Z")),
            (&spec("Sun 02:30-05:00"), berlin, "2026-03-29T00:59:59Z", Some("2026-03-22T04:00:00Z")),
            // A rule entirely in the gap does nothing that day, so the spec goes two weeks without a change.
            (&spec("Sun 02:00-02:30"), berlin, "2026-03-29T01:00:00Z", Some("2026-03-22T01:30:00Z")),
            (&spec("Sun 02:00-02:30"), berlin, "2026-03-30T01:30:00Z", Some("2026-03-22T01:30:00Z")),
            (&spec("Sun 02:00-02:30"), berlin, "2026-03-30T01:30:01Z", None),
            (&spec("Sun 02:00-02:30"), berlin, "2026-04-05T00:00:00Z", Some("2026-04-05T00:00:00Z")),
            // Constant specs have none.
            (&spec("always"), berlin, "2026-03-29T01:30:00Z", None),
            (&spec("Mon-Sun 00:00-24:00"), berlin, "2026-03-29T01:30:00Z", None),
        ];
        let mut failures = Vec::new();
        for (spec, zone, at, want) in table {
            let got = spec.previous_transition(utc(at), *zone);
            if got != want.map(utc) {
                failures.push(format!("{:?} in {zone} at {at}: expected {want:?}, got {got:?}", spec.as_str()));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        // A change more than 8 days back is not looked for.
        let monthly_ish = spec("Mon 09:00-10:00");
        assert_eq!(
            monthly_ish.previous_transition(utc("2026-01-05T09:30:00Z"), utc_zone),
            Some(utc("2026-01-05T09:00:00Z"))
        );
        assert_eq!(
            monthly_ish.previous_transition(utc("2026-01-05T08:30:00Z"), utc_zone),
            Some(utc("2025-12-29T10:00:00Z"))
        );
        // Nor one more than 8 days ahead: `Sun 02:00-02:30` skips Europe/Berlin's 2026-03-29.
        let in_the_gap = spec("Sun 02:00-02:30");
        assert_eq!(in_the_gap.next_transition(utc("2026-03-22T01:30:00Z"), berlin), None);
        assert_eq!(
            in_the_gap.next_transition(utc("2026-03-28T00:00:00Z"), berlin),
            Some((utc("2026-04-05T00:00:00Z"), Up))
        );
    }

    #[test]
    fn daylight_saving_table() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, &[&str])] = &[
            // Europe/Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z.
            // A boundary in the gap takes effect at the first local time that exists.
            ("Sun 02:30-04:00", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-29T01:00:00Z Up", "2026-03-29T02:00:00Z Down", "2026-04-05T00:30:00Z Up"]),
            ("Sat 23:00-02:30", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-28T22:00:00Z Up", "2026-03-29T01:00:00Z Down"]),
            // A rule entirely inside the gap does nothing that day.
            ("Sun 02:15-02:45", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-04-05T00:15:00Z Up", "2026-04-05T00:45:00Z Down"]),
            // Ending in the gap and starting again right after it: no change at the jump.
            ("Sun 00:00-02:30, Sun 03:00-05:00", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-28T23:00:00Z Up", "2026-03-29T03:00:00Z Down"]),
            // Europe/Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:00-02:59 happens twice.
            // Wall-clock times inside a rule are inside both times they occur.
            ("Sun 02:15-02:45", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:15:00Z Up", "2026-10-25T00:45:00Z Down", "2026-10-25T01:15:00Z Up", "2026-10-25T01:45:00Z Down"]),
            ("Sun 00:00-02:30", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-24T22:00:00Z Up", "2026-10-25T00:30:00Z Down", "2026-10-25T01:00:00Z Up", "2026-10-25T01:30:00Z Down"]),
            // A rule starting inside the repeated hour: when the clock goes back to 02:00 it is outside
            // again until 02:30 comes round a second time.
            ("Sun 02:30-04:00", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z Up", "2026-10-25T01:00:00Z Down", "2026-10-25T01:30:00Z Up", "2026-10-25T03:00:00Z Down"]),
            // America/New_York 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z.
            ("Sun 02:30-03:30", "America/New_York", "2026-03-07T12:00:00Z", &["2026-03-08T07:00:00Z Up", "2026-03-08T07:30:00Z Down"]),
            ("Sat 22:00-02:30", "America/New_York", "2026-03-07T12:00:00Z", &["2026-03-08T03:00:00Z Up", "2026-03-08T07:00:00Z Down"]),
            // America/New_York 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00-01:59 happens twice.
            ("Sun 01:30-02:00", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T05:30:00Z Up", "2026-11-01T06:00:00Z Down", "2026-11-01T06:30:00Z Up", "2026-11-01T07:00:00Z Down"]),
            ("Sat 22:00-01:30", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T02:00:00Z Up", "2026-11-01T05:30:00Z Down", "2026-11-01T06:00:00Z Up", "2026-11-01T06:30:00Z Down"]),
            // Australia/Lord_Howe 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30) at 15:00Z the day before.
            ("Sun 01:40-01:50", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", &["2026-04-04T14:40:00Z Up", "2026-04-04T14:50:00Z Down", "2026-04-04T15:10:00Z Up", "2026-04-04T15:20:00Z Down"]),
            // Australia/Lord_Howe 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11) at 15:30Z the day before.
            ("Sun 02:10-03:00", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", &["2026-10-03T15:30:00Z Up", "2026-10-03T16:00:00Z Down"]),
            ("Sun 02:00-02:30", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", &["2026-10-10T15:00:00Z Up", "2026-10-10T15:30:00Z Down"]),
        ];
        let mut failures = Vec::new();
        for (text, zone, after, expected) in table {
            let got: Vec<String> =
                spec(text).transitions(utc(after), tz(zone), expected.len()).into_iter().map(show).collect();
            if got != *expected {
                failures.push(format!("{text} in {zone} after {after}:\n  expected {expected:?}\n  got      {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        // States right at the spring-forward jump.
        let (berlin, late_start) = (tz("Europe/Berlin"), spec("Sun 02:30-04:00"));
        assert_eq!(late_start.desired_at(utc("2026-03-29T00:59:59Z"), berlin), Down);
        assert_eq!(late_start.desired_at(utc("2026-03-29T01:00:00Z"), berlin), Up);
    }

    #[test]
    fn the_tables_use_the_real_transition_dates() {
        let offset =
            |zone: &str, at: &str| tz(zone).offset_from_utc_datetime(&utc(at).naive_utc()).fix().local_minus_utc() / 60;
        for (zone, at, minutes_before, minutes_after) in [
            ("Europe/Berlin", "2026-03-29T01:00:00Z", 60, 120),
            ("Europe/Berlin", "2026-10-25T01:00:00Z", 120, 60),
            ("America/New_York", "2026-03-08T07:00:00Z", -300, -240),
            ("America/New_York", "2026-11-01T06:00:00Z", -240, -300),
            ("Australia/Lord_Howe", "2026-04-04T15:00:00Z", 660, 630),
            ("Australia/Lord_Howe", "2026-10-03T15:30:00Z", 630, 660),
        ] {
            let before = (utc(at) - Duration::seconds(1)).to_rfc3339();
            assert_eq!((offset(zone, &before), offset(zone, at)), (minutes_before, minutes_after), "{zone} at {at}");
        }
        assert_eq!(utc("2026-01-05T00:00:00Z").weekday(), chrono::Weekday::Mon);
    }

    #[test]
    fn specs_that_never_change_have_no_transitions() {
        let berlin = tz("Europe/Berlin");
        let t = utc("2026-03-29T00:30:00Z");
        for (text, state) in [
            ("always", Up),
            ("never", Down),
            ("Mon-Sun 00:00-24:00", Up),
            ("Sun-Sat 00:00-24:00", Up),
            ("Mon-Sun 06:00-05:59, Mon-Sun 05:59-06:00", Up),
            ("Mon 00:00-24:00, Tue-Sun 00:00-24:00", Up),
        ] {
            let spec = spec(text);
            assert_eq!(spec.desired_at(t, berlin), state, "{text}");
            assert_eq!(spec.next_transition(t, berlin), None, "{text}");
            assert_eq!(spec.transitions(t, berlin, 3), [], "{text}");
            assert_eq!(spec.previous_transition(t, berlin), None, "{text}");
        }
    }

    #[test]
    fn as_str_debug_and_serde() {
        let spec = spec("  Fri 22:00-06:00 ,Sun 22:00-06:00\n");
        assert_eq!(spec.as_str(), "Fri 22:00-06:00 ,Sun 22:00-06:00");
        let debug = format!("{spec:?}");
        assert!(debug.contains("week: [Mon 00:00-Mon 06:00, Fri 22:00-Sat 06:00, Sun 22:00-Mon 00:00]"), "{debug}");
        assert_eq!(serde_json::to_string(&[Up, Down]).unwrap(), r#"["up","down"]"#);
        assert_eq!(serde_json::from_str::<Desired>(r#""down""#).unwrap(), Down);
        assert!(serde_json::from_str::<Desired>(r#""Up""#).is_err());
        assert_eq!(SpecError("x".into()).to_string(), "x");
    }

    #[test]
    fn ends_of_the_calendar_give_none_without_panicking() {
        let spec = spec("Mon-Fri 07:00-19:00");
        for zone in ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin"] {
            for at in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
                let _ = spec.desired_at(at, tz(zone));
                let _ = spec.next_transition(at, tz(zone));
                let _ = spec.previous_transition(at, tz(zone));
            }
        }
        assert_eq!(spec.next_transition(DateTime::<Utc>::MAX_UTC, chrono_tz::UTC), None);
        assert_eq!(spec.previous_transition(DateTime::<Utc>::MIN_UTC, chrono_tz::UTC), None);
    }

    // ---- properties ----

    /// A generated rule, kept in structured form for the oracle.
    #[derive(Debug, Clone)]
    struct GenRule {
        first: usize,
        last: Option<usize>,
        start: u32,
        /// 1440 is 24:00; below `start` is overnight.
        end: u32,
        style: usize,
        spaced: bool,
    }

    const NAMES: [[&str; 7]; 4] = [
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"],
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    ];

    impl GenRule {
        fn text(&self) -> String {
            let dash = if self.spaced { " - " } else { "-" };
            let time = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
            let days = match self.last {
                None => NAMES[self.style][self.first].to_string(),
                Some(last) => format!("{}{dash}{}", NAMES[self.style][self.first], NAMES[(self.style + 1) % 4][last]),
            };
            format!("{days} {}{dash}{}", time(self.start), time(self.end))
        }

        fn on(&self, day: usize) -> bool {
            match self.last {
                None => day == self.first,
                Some(last) => (day + 7 - self.first) % 7 <= (last + 7 - self.first) % 7,
            }
        }
    }

    /// The contract read directly off the rules, on a local wall-clock time.
    fn oracle_up(rules: &[GenRule], wall: NaiveDateTime) -> bool {
        let day = wall.weekday().num_days_from_monday() as usize;
        let minute = wall.hour() * 60 + wall.minute();
        rules.iter().any(|r| {
            if r.end > r.start {
                r.on(day) && r.start <= minute && minute < r.end
            } else {
                (r.on(day) && minute >= r.start) || (r.on((day + 6) % 7) && minute < r.end)
            }
        })
    }

    fn oracle_at(rules: &[GenRule], zone: Tz, u: DateTime<Utc>) -> bool {
        oracle_up(rules, u.with_timezone(&zone).naive_local())
    }

    fn zone_offset(zone: Tz, u: DateTime<Utc>) -> i32 {
        zone.offset_from_utc_datetime(&u.naive_utc()).fix().local_minus_utc()
    }

    /// The first change after `t` within 8 days by brute force: every whole
    /// minute, and every second of a minute in which the zone's offset changed.
    fn brute_next(rules: &[GenRule], zone: Tz, t: DateTime<Utc>) -> Option<(DateTime<Utc>, bool)> {
        let was_up = oracle_at(rules, zone, t);
        let horizon = t + Duration::days(8);
        let mut previous = t;
        let mut u = DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60 + 60, 0).unwrap();
        while u <= horizon {
            if zone_offset(zone, previous) != zone_offset(zone, u) {
                let mut s = DateTime::from_timestamp(previous.timestamp() + 1, 0).unwrap();
                while s < u {
                    if oracle_at(rules, zone, s) != was_up {
                        return Some((s, !was_up));
                    }
                    s += Duration::seconds(1);
                }
            }
            if oracle_at(rules, zone, u) != was_up {
                return Some((u, !was_up));
            }
            previous = u;
            u += Duration::minutes(1);
        }
        None
    }

    /// Whether `previous_transition(u)` looks back as far as `began`: to the
    /// whole second of `u`, less 8 days.
    fn looked_back_to(began: DateTime<Utc>, u: DateTime<Utc>) -> bool {
        began.timestamp() >= u.timestamp() - 8 * 86_400
    }

    fn minute_of_day() -> impl Strategy<Value = u32> {
        prop_oneof![
            // Around the clock changes of the three zones (01:00-03:30 local).
            2 => (2..=7u32).prop_map(|half_hours| half_hours * 30),
            1 => (0..96u32).prop_map(|quarter| quarter * 15),
            1 => 0..1440u32,
        ]
    }

    fn rule() -> impl Strategy<Value = GenRule> {
        let end = prop_oneof![4 => minute_of_day(), 1 => Just(1440u32), 1 => Just(0u32)];
        (0..7usize, prop::option::of(0..7usize), minute_of_day(), end, 0..4usize, any::<bool>())
            .prop_filter("start == end is invalid", |(_, _, start, end, _, _)| start != end)
            .prop_map(|(first, last, start, end, style, spaced)| GenRule { first, last, start, end, style, spaced })
    }

    fn rules() -> impl Strategy<Value = (Vec<GenRule>, String)> {
        (prop::collection::vec(rule(), 1..=3), prop::sample::select(vec![",", ", ", " , "])).prop_map(
            |(rules, separator)| {
                let text = rules.iter().map(GenRule::text).collect::<Vec<_>>().join(separator);
                (rules, text)
            },
        )
    }

    /// `default`, or `PROPTEST_CASES` when it is set.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
    }

    const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"];

    /// The clock changes of those zones in 2026-2027.
    const CHANGES: [(usize, &str); 12] = [
        (0, "2026-03-29T01:00:00Z"),
        (0, "2026-10-25T01:00:00Z"),
        (0, "2027-03-28T01:00:00Z"),
        (0, "2027-10-31T01:00:00Z"),
        (1, "2026-03-08T07:00:00Z"),
        (1, "2026-11-01T06:00:00Z"),
        (1, "2027-03-14T07:00:00Z"),
        (1, "2027-11-07T06:00:00Z"),
        (2, "2026-04-04T15:00:00Z"),
        (2, "2026-10-03T15:30:00Z"),
        (2, "2027-04-03T15:00:00Z"),
        (2, "2027-10-02T15:30:00Z"),
    ];

    /// A zone and an instant: within a week before (or a few hours after) one of
    /// its clock changes half of the time, anywhere in 2026-2027 otherwise; on a
    /// whole minute a quarter of the time.
    fn zone_and_instant() -> impl Strategy<Value = (Tz, DateTime<Utc>)> {
        let nanos = prop_oneof![Just(0u32), 0..1_000_000_000u32];
        let near_change = (0..CHANGES.len(), -7 * 86_400..6 * 3_600i64)
            .prop_map(|(i, s)| (CHANGES[i].0, utc(CHANGES[i].1).timestamp() + s));
        let anywhere = (0..ZONES.len(), 1_767_225_600..1_830_297_600i64);
        (prop_oneof![near_change, anywhere], any::<bool>(), nanos).prop_map(|((zone, s), on_minute, ns)| {
            let s = if on_minute { s.div_euclid(60) * 60 } else { s };
            (tz(ZONES[zone]), DateTime::from_timestamp(s, if on_minute { 0 } else { ns }).unwrap())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn next_transition_is_the_first_change((rules, text) in rules(), (zone, t) in zone_and_instant()) {
            let spec = WindowSpec::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(spec.desired_at(t, zone), Desired::from_up(oracle_at(&rules, zone, t)), "'{}' in {} at {}", text, zone, t);
            let want = brute_next(&rules, zone, t).map(|(at, up)| (at, Desired::from_up(up)));
            prop_assert_eq!(spec.next_transition(t, zone), want, "'{}' in {} after {}", text, zone, t);
        }

        #[test]
        fn the_state_holds_between_transitions_and_flips_at_each(
            (rules, text) in rules(),
            (zone, t) in zone_and_instant(),
            fractions in prop::collection::vec(0.0..1.0f64, 4),
        ) {
            let spec = WindowSpec::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let found = spec.transitions(t, zone, 5);
            let began = spec.previous_transition(t, zone);
            // A changing spec need not change within 8 days: when a week's only changes lie in a
            // skipped hour (`Sun 02:00-02:30` on a spring-forward Sunday), it goes two weeks without
            // one, and `next_transition`/`previous_transition` give `None` beyond their 8 days.
            match began {
                // When the state at `t` began: a transition into that state, within 8 days, with none after it up to `t`.
                Some(began) => {
                    prop_assert!(began <= t);
                    prop_assert!(looked_back_to(began, t), "'{}' in {}: {} is more than 8 days before {}", text, zone, began, t);
                    prop_assert_eq!(spec.next_transition(began - Duration::seconds(1), zone), Some((began, spec.desired_at(t, zone))));
                    prop_assert!(spec.next_transition(began, zone).is_none_or(|(next, _)| next > t));
                }
                // Nothing changed in the 8 days up to `t`, by brute force.
                None => prop_assert_eq!(brute_next(&rules, zone, t - Duration::days(8)), None, "'{}' in {} before {}", text, zone, t),
            }
            if found.is_empty() {
                // Nothing changes in the 8 days after `t` either.
                let state = oracle_at(&rules, zone, t);
                for day in 0..8 {
                    for hour in [0, 2, 5, 13] {
                        prop_assert_eq!(oracle_at(&rules, zone, t + Duration::days(day) + Duration::hours(hour)), state);
                    }
                }
                // A spec that covers the whole week (or none of it) has never changed.
                let monday = utc("2026-01-05T00:00:00Z").naive_utc();
                if (1..MINUTES_PER_WEEK as i64).all(|m| oracle_up(&rules, monday + Duration::minutes(m)) == oracle_up(&rules, monday)) {
                    prop_assert_eq!(began, None);
                }
                return Ok(());
            }
            let mut start = (t, spec.desired_at(t, zone), began);
            for &(at, desired) in &found {
                prop_assert!(at > start.0);
                prop_assert_ne!(desired, start.1, "'{}' in {}: {} does not change the state", text, zone, at);
                // Constant in between, by the oracle, and known to have begun at the same transition.
                let span = (at - start.0).num_nanoseconds().unwrap() as f64;
                for &fraction in fractions.iter().chain(&[0.0, 0.999_999]) {
                    let u = start.0 + Duration::nanoseconds((span * fraction) as i64);
                    prop_assert_eq!(Desired::from_up(oracle_at(&rules, zone, u)), start.1, "'{}' in {} at {}", text, zone, u);
                    prop_assert_eq!(spec.desired_at(u, zone), start.1);
                    // The state began at `start.2`, which `previous_transition` finds if it is at most 8 days back.
                    let want = start.2.filter(|&began| looked_back_to(began, u));
                    prop_assert_eq!(spec.previous_transition(u, zone), want, "'{}' in {} at {}", text, zone, u);
                }
                // Flips exactly there.
                prop_assert_eq!(Desired::from_up(oracle_at(&rules, zone, at)), desired, "'{}' in {} at {}", text, zone, at);
                prop_assert_eq!(Desired::from_up(oracle_at(&rules, zone, at - Duration::seconds(1))), start.1, "'{}' in {} just before {}", text, zone, at);
                prop_assert_eq!(spec.previous_transition(at, zone), Some(at));
                start = (at, desired, Some(at));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn no_spec_like_string_panics(
            tokens in prop::collection::vec(prop::sample::select(vec![
                "Mon", "sun", "FRIDAY", "-", ",", " ", "\t", ":", "0", "00", "07", "24", "59", "60", "99999999999",
                "07:00", "24:00", "00:00", "always", "never", "é", "…", "Mon-", "-Sun",
            ]), 0..12),
            (zone, t) in zone_and_instant(),
        ) {
            if let Ok(spec) = WindowSpec::parse(&tokens.concat()) {
                let _ = spec.desired_at(t, zone);
                if let Some((next, _)) = spec.next_transition(t, zone) {
                    prop_assert!(next > t);
                }
                if let Some(began) = spec.previous_transition(t, zone) {
                    prop_assert!(began <= t);
                }
            }
        }

        #[test]
        fn no_string_panics_the_parser(text in ".{0,60}") {
            let _ = WindowSpec::parse(&text);
        }
    }

    /// `cargo test --release -- --ignored --nocapture window_spec_timing`
    #[test]
    #[ignore]
    fn window_spec_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        let spec = spec("Mon-Fri 07:00-19:00, Sat 10:00-14:00");
        let berlin = tz("Europe/Berlin");
        let start = utc("2026-01-01T00:00:00Z");
        let n = 2_000_000u32;
        let began = Instant::now();
        let mut ups = 0;
        for i in 0..n {
            let t = start + Duration::seconds(i64::from(i) * 15_773);
            ups += (black_box(&spec).desired_at(black_box(t), berlin) == Up) as u32;
        }
        let per = began.elapsed() / n;
        println!("desired_at: {per:?} per call ({ups} up of {n})");
        for (name, zone) in [("Europe/Berlin", berlin), ("UTC", chrono_tz::UTC)] {
            let n = 200_000u32;
            let began = Instant::now();
            for i in 0..n {
                let t = start + Duration::seconds(i64::from(i) * 157_731);
                black_box(black_box(&spec).next_transition(black_box(t), zone));
            }
            println!("next_transition ({name}): {:?} per call", began.elapsed() / n);
            let began = Instant::now();
            for i in 0..n {
                let t = start + Duration::seconds(i64::from(i) * 157_731);
                black_box(black_box(&spec).previous_transition(black_box(t), zone));
            }
            println!("previous_transition ({name}): {:?} per call", began.elapsed() / n);
        }
        let sparse = self::spec("Sun 02:15-02:45");
        let n = 200_000u32;
        let began = Instant::now();
        for i in 0..n {
            let t = start + Duration::seconds(i64::from(i) * 157_731);
            black_box(black_box(&sparse).next_transition(black_box(t), berlin));
        }
        println!("next_transition (one rule a week, Europe/Berlin): {:?} per call", began.elapsed() / n);
        let n = 20_000u32;
        let began = Instant::now();
        for _ in 0..n {
            black_box(WindowSpec::parse(black_box("Mon-Fri 07:00-19:00, Sat 10:00-14:00")).unwrap());
        }
        println!("parse: {:?} per call", began.elapsed() / n);
    }
}
