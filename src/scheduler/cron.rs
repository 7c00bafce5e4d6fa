//! Cron expressions as the contract defines them, and when they fire.
//!
//! # Syntax
//! - Five fields `minute hour day-of-month month day-of-week`, or six with a
//!   leading `second` field. `*`, lists (`1,15`), ranges (`1-5`), steps
//!   (`*/15`, `1-30/5`), month names `JAN`-`DEC` and day names `SUN`-`SAT`
//!   (or in full, `MONDAY`) in any case. Day-of-week is 0-7, and both 0 and 7
//!   are Sunday (Vixie cron). A day-of-week range that ends in Sunday written
//!   as 0 or `SUN` runs through Sunday: `MON-SUN`, `wed-sun`, `mon-0`, `1-0`
//!   and `5-0` mean the same as `1-7`, `3-7`, `1-7`, `1-7` and `5-7`.
//! - Macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
//! - Rejected with a message that names the problem:
//!   - croner's and Quartz's extensions `L`, `W`, `#`, `?` and `+`. A `?`
//!     usually comes with Quartz's 1 = Sunday numbering, which would silently
//!     shift every weekday by one;
//!   - a step after a single value (`5/15`): write `5-59/15`;
//!   - backwards ranges (`FRI-MON`): write `FRI-SUN,MON` or `0,1,5,6`. Only
//!     an end of 0/`SUN` after a later start counts as Sunday = 7 (above);
//!   - a day-of-month that never occurs in the chosen months (`0 0 30 2 *`),
//!     so every accepted expression has a next fire.
//!
//! # Days
//! Vixie rule: when both day fields are restricted, a day matches when either
//! matches; otherwise a day must match both. As in Vixie cron, a field is
//! restricted unless it starts with `*`: `0 0 1-31 * MON` is every day (either
//! field), while `0 0 */2 * MON` needs both (odd days that are Mondays).
//!
//! # Time zones and daylight saving
//! Fields are matched against the wall clock of the schedule's IANA zone.
//! - Clocks jump forward: every scheduled wall-clock time that the jump skips
//!   fires once, at the instant of the jump (Europe/Berlin 2027-03-28:
//!   `30 2 * * *` fires at 03:00 CEST = 01:00Z). The contract states this for
//!   every expression, so `30 * * * *` fires at 03:00 in place of the missing
//!   02:30 that day, and `0,30 2 * * *` fires once at 03:00.
//! - Clocks go back: what counts is how the hour field is written.
//!   - Interval: the hour field is `*`, a step over the whole day (`*/N` or
//!     `0-23/N`), or anything else that selects all 24 hours (`0-23`). The
//!     expression repeats across the whole day (`*/15 * * * *`, `0 * * * *`,
//!     `0 */2 * * *`) and fires in both passes of the repeated hour, so real
//!     time between fires never grows past the step: on Europe/Berlin
//!     2026-10-25, `0 */2 * * *` fires at 02:00 CEST and again at 02:00 CET,
//!     not three real hours apart.
//!   - Fixed times: every other hour field: a single hour (`2`), a list
//!     (`2,14`), a range (`1-3`), or a step over part of the day (`1-23/2`,
//!     `8-18/2`). The expression names times of day (`30 2 * * *`,
//!     `*/20 2 * * *`) and each of them fires once, on its first occurrence.
//!     A list is fixed times even when it contains a step (`*/6,3`), unless it
//!     selects every hour.
//!
//! # Why not croner
//! Matching and the search are a small bitset walk over the local wall clock
//! rather than croner 4.0.3, which differs from the contract on Europe/Berlin
//! 2027: `0,30 2 * * *` and `30 2,14 * * *` skip the 02:xx runs of 28 March
//! entirely instead of firing after the jump; on 31 October `0,30 2 * * *`
//! fires four times (each fixed time twice); `0 0 30 2 *` parses and only
//! fails at search time, after scanning for tens of milliseconds; and its
//! errors ("Number out of bounds.") do not say which field is wrong.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// How late the latest run missed during downtime may be and still run once.
pub const CATCH_UP_WINDOW: Duration = Duration::minutes(10);

/// `MissedPlan::missed_total` stops counting here: a `* * * * * *` schedule
/// down for a year must not make start-up walk 31 million fires.
pub const MISSED_COUNT_CAP: usize = 10_000;

/// How many missed fires `MissedPlan::missed` lists (the first ones and the last).
const MISSED_SAMPLE: usize = 20;

/// How far ahead to look for a matching day. A day of the month that must
/// also be a given weekday (`0 0 2 9 */7`: 2 September on a Sunday) recurs
/// within 28 years, 40 across 2100 (not a leap year), so this only stops a
/// search that runs off the end of the calendar. (It was 10: 2 September
/// 2018 was a Sunday, the next one is in 2029, and such an expression had
/// no next fire for a while.)
const SEARCH_YEARS: i32 = 50;

/// The offset of any time zone lies within this of UTC (real ones: -12 to +14 h).
const MAX_OFFSET: Duration = Duration::hours(26);

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CronError {
    #[error("{0}")]
    InvalidCron(String),
    #[error("unknown time zone '{0}' (use an IANA name like Europe/Berlin)")]
    InvalidTimezone(String),
}

fn invalid(message: String) -> CronError {
    CronError::InvalidCron(message)
}

/// A parsed cron expression: one bitset of allowed values per field.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    has_seconds: bool,
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 is Sunday; a 7 in the expression is folded into it.
    days_of_week: u64,
    /// Both day fields are restricted, so either one selects a day (Vixie).
    either_day: bool,
    /// The hour field is an interval across the day, not fixed times of day.
    hour_interval: bool,
}

impl CronExpr {
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let text = expr.trim();
        if text.is_empty() {
            return Err(invalid("the cron expression is empty".into()));
        }
        let fields_text = if text.starts_with('@') {
            MACROS.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, fields)| *fields).ok_or_else(
                || {
                    invalid(format!(
                        "unknown macro '{}' (use one of @yearly @annually @monthly @weekly @daily @midnight @hourly)",
                        shown(text)
                    ))
                },
            )?
        } else {
            text
        };
        let fields: Vec<&str> = fields_text.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => (bit(0), &fields[..]),
            6 => (parse_field(Field::Second, fields[0])?, &fields[1..]),
            n => {
                return Err(invalid(format!(
                    "expected 5 or 6 fields (minute hour day-of-month month day-of-week), got {n}"
                )));
            }
        };
        let minutes = parse_field(Field::Minute, rest[0])?;
        let hours = parse_field(Field::Hour, rest[1])?;
        let days_of_month = parse_field(Field::DayOfMonth, rest[2])?;
        let months = parse_field(Field::Month, rest[3])?;
        let days_of_week = parse_field(Field::DayOfWeek, rest[4])?;
        // Vixie: a day field that starts with `*` does not select days on its own.
        let either_day = !rest[2].starts_with('*') && !rest[4].starts_with('*');
        if !either_day && !day_occurs_in_months(days_of_month, months) {
            return Err(invalid(format!(
                "day-of-month '{}' never occurs in month '{}'",
                shown(rest[2]),
                shown(rest[3])
            )));
        }
        Ok(CronExpr {
            text: text.to_string(),
            has_seconds: fields.len() == 6,
            seconds,
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            either_day,
            hour_interval: hours == Field::Hour.all() || is_whole_day_step(rest[1]),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn has_seconds(&self) -> bool {
        self.has_seconds
    }

    /// The first fire strictly after `after`, or `None` past the end of the calendar.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let wall = wall_clock(after, tz)?;
        let walked = self.walk(after, wall, tz);
        match (walked, self.second_pass_fire(after, wall, tz)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::with_capacity(n.min(1024));
        let mut t = after;
        while fires.len() < n {
            match self.next_after(t, tz) {
                Some(fire) => {
                    fires.push(fire);
                    t = fire;
                }
                None => break,
            }
        }
        fires
    }

    /// Interval expressions (hour field `*`, `*/N`, `0-23/N`) fire in both passes
    /// of an hour repeated when clocks go back; fixed times of day only in the first.
    fn fires_in_both_passes(&self) -> bool {
        self.hour_interval
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days_of_month & bit(date.day()) != 0;
        let dow = self.days_of_week & bit(date.weekday().num_days_from_sunday()) != 0;
        self.months & bit(date.month()) != 0 && if self.either_day { dom || dow } else { dom && dow }
    }

    /// The first matching wall-clock time strictly after `after` (whole seconds).
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_nanosecond(0)?.checked_add_signed(Duration::seconds(1))?;
        let (mut date, mut from) = (start.date(), start.time());
        let last_year = date.year().checked_add(SEARCH_YEARS)?;
        while date.year() <= last_year {
            if self.months & bit(date.month()) == 0 {
                date = first_of_next_month(date)?;
                from = NaiveTime::MIN;
                continue;
            }
            if let Some(time) = self.day_matches(date).then(|| self.next_time_of_day(from)).flatten() {
                return Some(date.and_time(time));
            }
            date = date.succ_opt()?;
            from = NaiveTime::MIN;
        }
        None
    }

    /// The first matching time of day at or after `from`.
    fn next_time_of_day(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        let mut hour = next_bit(self.hours, h0);
        while let Some(h) = hour {
            let mut minute = next_bit(self.minutes, if h == h0 { m0 } else { 0 });
            while let Some(m) = minute {
                if let Some(s) = next_bit(self.seconds, if (h, m) == (h0, m0) { s0 } else { 0 }) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
                minute = next_bit(self.minutes, m + 1);
            }
            hour = next_bit(self.hours, h + 1);
        }
        None
    }

    /// The first fire after `after` met by walking the wall clock forward from `wall`.
    fn walk(&self, after: DateTime<Utc>, mut wall: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
        loop {
            wall = self.next_local(wall)?;
            let fire = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, second) => {
                    let passes = if self.fires_in_both_passes() { 2 } else { 1 };
                    [first, second].into_iter().take(passes).map(|t| t.with_timezone(&Utc)).find(|t| *t > after)
                }
                LocalResult::None => jump_instant(wall, tz),
            };
            if let Some(fire) = fire.filter(|t| *t > after) {
                return Some(fire);
            }
        }
    }

    /// When `after` lies in the first pass of a repeated hour, an interval
    /// expression's fires in the second pass are still ahead, although the
    /// forward walk of the wall clock has already passed their wall time.
    fn second_pass_fire(&self, after: DateTime<Utc>, wall: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
        if !self.fires_in_both_passes() {
            return None;
        }
        let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&wall) else { return None };
        let first_offset = first.offset().fix();
        if tz.offset_from_utc_datetime(&after.naive_utc()).fix() != first_offset {
            return None;
        }
        let clocks_back = first_second_where(after.timestamp(), second.timestamp(), |t| {
            instant(t).is_some_and(|u| tz.offset_from_utc_datetime(&u.naive_utc()).fix() != first_offset)
        });
        let repeat_start = wall_clock(instant(clocks_back)?, tz)?;
        let candidate = self.next_local(repeat_start.checked_sub_signed(Duration::seconds(1))?)?;
        match tz.from_local_datetime(&candidate) {
            LocalResult::Ambiguous(_, second) => Some(second.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// The latest fire in `(after, until]`, found by bisection so that a long
    /// range of dense fires costs a few dozen steps, not one per fire.
    fn last_fire_in(&self, after: DateTime<Utc>, until: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let fire_in = |lo: DateTime<Utc>, hi: DateTime<Utc>| self.next_after(lo, tz).filter(|f| *f <= hi);
        let mut last = fire_in(after, until)?;
        // Invariant: `last` is a fire and the answer lies in [last, hi].
        let mut hi = until;
        while let Some(next) = fire_in(last, hi) {
            let mid = next + (hi - next) / 2;
            match fire_in(mid, hi) {
                Some(later) => last = later,
                None => (last, hi) = (next, mid),
            }
        }
        Some(last)
    }
}

pub fn parse_timezone(name: &str) -> Result<Tz, CronError> {
    name.parse().map_err(|_| CronError::InvalidTimezone(shown(name)))
}

/// What to do about fires that fell while DockNap was not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedPlan {
    /// A sample of the missed fires: the first ones and always the last one.
    pub missed: Vec<DateTime<Utc>>,
    /// How many fires were missed, counted up to `MISSED_COUNT_CAP`.
    pub missed_total: usize,
    /// The latest fire in the range, when it is recent enough to run late.
    pub run_late: Option<DateTime<Utc>>,
    pub next: Option<DateTime<Utc>>,
}

/// What a schedule's fires come from: a cron expression, or one instant.
pub trait Fires {
    /// The first fire strictly after `after`.
    fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>>;
    /// The last fire in `(after, until]`.
    fn last_fire_in(&self, after: DateTime<Utc>, until: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>>;
}

impl Fires for CronExpr {
    fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        CronExpr::next_after(self, after, tz)
    }
    fn last_fire_in(&self, after: DateTime<Utc>, until: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        CronExpr::last_fire_in(self, after, until, tz)
    }
}

/// A one-time schedule's instant.
impl Fires for DateTime<Utc> {
    fn next_after(&self, after: DateTime<Utc>, _: Tz) -> Option<DateTime<Utc>> {
        (*self > after).then_some(*self)
    }
    fn last_fire_in(&self, after: DateTime<Utc>, until: DateTime<Utc>, _: Tz) -> Option<DateTime<Utc>> {
        (after < *self && *self <= until).then_some(*self)
    }
}

/// Every fire in `(last_checked, now]` is missed, except the latest one, which
/// still runs once when it is at most `CATCH_UP_WINDOW` late.
pub fn plan_missed(
    expr: &(impl Fires + ?Sized),
    tz: Tz,
    last_checked: DateTime<Utc>,
    now: DateTime<Utc>,
) -> MissedPlan {
    let next = expr.next_after(now, tz);
    let Some(latest) = expr.last_fire_in(last_checked, now, tz) else {
        return MissedPlan { missed: Vec::new(), missed_total: 0, run_late: None, next };
    };
    let run_late = (now - latest <= CATCH_UP_WINDOW).then_some(latest);
    let missed_until = if run_late.is_some() { latest - Duration::nanoseconds(1) } else { latest };
    let mut missed = Vec::new();
    let mut missed_total = 0;
    let mut t = last_checked;
    while missed_total < MISSED_COUNT_CAP {
        let Some(fire) = expr.next_after(t, tz).filter(|f| *f <= missed_until) else { break };
        missed_total += 1;
        if missed.len() < MISSED_SAMPLE - 1 {
            missed.push(fire);
        }
        t = fire;
    }
    let last = expr.last_fire_in(last_checked, missed_until, tz);
    if let Some(last) = last.filter(|last| missed.last() != Some(last)) {
        missed.push(last);
    }
    MissedPlan { missed, missed_total, run_late, next }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    /// How a field reads names, and what to call them.
    fn names(self) -> Option<(NameParser, &'static str)> {
        match self {
            Field::Month => Some((parse_month_name, "month")),
            Field::DayOfWeek => Some((parse_day_name, "day")),
            _ => None,
        }
    }

    /// The bitset of `*` (day-of-week without the 7, which folds into 0).
    fn all(self) -> u64 {
        let (min, max) = match self {
            Field::DayOfWeek => (0, 6),
            _ => self.range(),
        };
        (min..=max).fold(0, |bits, v| bits | bit(v))
    }
}

fn parse_field(field: Field, text: &str) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in text.split(',') {
        bits |= parse_item(field, item)?;
    }
    if field == Field::DayOfWeek && bits & bit(7) != 0 {
        bits = (bits & !bit(7)) | bit(0);
    }
    Ok(bits)
}

fn parse_item(field: Field, item: &str) -> Result<u64, CronError> {
    let label = field.label();
    if item.is_empty() {
        return Err(invalid(format!("{label} field has an empty list item")));
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(field, step)?)),
        None => (item, None),
    };
    let (min, max) = field.range();
    let (lo, hi) = if base == "*" {
        (min, max)
    } else if let Some((a, b)) = base.split_once('-') {
        if a.is_empty() || b.is_empty() {
            return Err(invalid(format!("{label} range '{}' is missing a value", shown(base))));
        }
        let (lo, mut hi) = (parse_value(field, a)?, parse_value(field, b)?);
        if field == Field::DayOfWeek && hi == 0 && lo > 0 {
            // `MON-SUN`, `5-0`: through Sunday, written 7 at the end of a range.
            hi = 7;
        }
        if lo > hi {
            return Err(invalid(format!(
                "{label} range '{}' goes backwards (write the smaller value first)",
                shown(base)
            )));
        }
        (lo, hi)
    } else {
        let value = parse_value(field, base)?;
        if let Some(step) = step {
            return Err(invalid(format!(
                "{label} '{}': a step needs '*' or a range before it, as in '*/{step}' or '{value}-{max}/{step}'",
                shown(item)
            )));
        }
        (value, value)
    };
    Ok((lo..=hi).step_by(step.unwrap_or(1) as usize).fold(0, |bits, v| bits | bit(v)))
}

fn parse_step(field: Field, text: &str) -> Result<u32, CronError> {
    let (label, max) = (field.label(), field.range().1);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{label} step '{}' is not a number", shown(text))));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(invalid(format!("{label} step must be at least 1"))),
        Ok(step) if step <= max => Ok(step),
        _ => Err(invalid(format!("{label} step {} is out of range 1-{max}", shown(text)))),
    }
}

fn parse_value(field: Field, token: &str) -> Result<u32, CronError> {
    let (label, (min, max)) = (field.label(), field.range());
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return token
            .parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| invalid(format!("{label} {} is out of range {min}-{max}", shown(token))));
    }
    if is_extension(token) {
        return Err(invalid(format!(
            "{label} '{}': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            shown(token)
        )));
    }
    if let Some((parse_name, kind)) = field.names() {
        if let Some(value) = parse_name(token) {
            return Ok(value);
        }
        if token.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid(format!("unknown {kind} name '{}'", shown(token))));
        }
    }
    Err(invalid(format!("{label} value '{}' is not a number", shown(token))))
}

/// Reads a month or day name into its number.
type NameParser = fn(&str) -> Option<u32>;

/// A day of the week by name, `SUN`-`SAT` or in full (`sunday`), in any case:
/// 0 for Sunday to 6 for Saturday, cron's numbering. Window specs read days with it too.
pub fn parse_day_name(name: &str) -> Option<u32> {
    const FULL_NAMES: [&str; 7] = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"];
    (0..7u32).find(|&day| {
        let i = day as usize;
        DAY_NAMES[i].eq_ignore_ascii_case(name) || FULL_NAMES[i].eq_ignore_ascii_case(name)
    })
}

fn parse_month_name(name: &str) -> Option<u32> {
    MONTH_NAMES.iter().position(|month| month.eq_ignore_ascii_case(name)).map(|i| i as u32 + 1)
}

/// Whether an hour field is a single step over the whole day, `*/N` or `0-23/N`.
fn is_whole_day_step(text: &str) -> bool {
    let Some((base, _step)) = text.split_once('/') else { return false };
    let whole_day =
        |(a, b): (&str, &str)| parse_value(Field::Hour, a) == Ok(0) && parse_value(Field::Hour, b) == Ok(23);
    !text.contains(',') && (base == "*" || base.split_once('-').is_some_and(whole_day))
}

/// croner's and Quartz's special day values: `L`, `LW`, `15W`, `5L`, `5#2`, `?`, `+MON`.
fn is_extension(token: &str) -> bool {
    let upper = token.to_ascii_uppercase();
    let numbered = |suffix: char| {
        upper.strip_suffix(suffix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(upper.as_str(), "L" | "LW" | "?")
        || upper.contains('#')
        || upper.starts_with('+')
        || numbered('L')
        || numbered('W')
}

/// Whether some chosen day-of-month exists in some chosen month (29 February counts).
fn day_occurs_in_months(days_of_month: u64, months: u64) -> bool {
    const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).any(|m| months & bit(m) != 0 && next_bit(days_of_month, 1).is_some_and(|d| d <= LONGEST[m as usize - 1]))
}

/// A user's text quoted back in a message, cut short so a huge input cannot make a huge answer.
pub(crate) fn shown(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn bit(value: u32) -> u64 {
    1u64 << value
}

/// The smallest set bit at position `from` or above.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    let above = bits.checked_shr(from)?;
    (above != 0).then(|| from + above.trailing_zeros())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1),
        m => NaiveDate::from_ymd_opt(date.year(), m + 1, 1),
    }
}

/// The wall-clock time of `instant` in `tz`, or `None` past the end of the calendar.
fn wall_clock(instant: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let utc = instant.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

fn instant(timestamp: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp, 0)
}

/// The instant clocks jumped forward over `skipped`, a wall-clock time that
/// does not exist: the first instant whose wall clock is later.
fn jump_instant(skipped: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let guess = skipped.and_utc();
    let (lo, hi) = (guess.checked_sub_signed(MAX_OFFSET)?, guess.checked_add_signed(MAX_OFFSET)?);
    let jump = first_second_where(lo.timestamp(), hi.timestamp(), |t| {
        instant(t).and_then(|u| wall_clock(u, tz)).is_some_and(|wall| wall > skipped)
    });
    instant(jump)
}

/// The first whole second in `(lo, hi]` where `reached` holds, given that it
/// fails at `lo`, holds at `hi` and changes only once in between.
pub(crate) fn first_second_where(mut lo: i64, mut hi: i64, reached: impl Fn(i64) -> bool) -> i64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reached(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
    }

    fn tz(name: &str) -> Tz {
        parse_timezone(name).unwrap()
    }

    fn fires(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let expr = CronExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        expr.upcoming(utc(after), tz(zone), n).iter().map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect()
    }

    #[test]
    fn next_fires_table() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, &[&str])] = &[
            // Plain fields, lists, ranges, steps, seconds.
            ("*/15 * * * *", "UTC", "2027-01-01T00:00:00Z", &["2027-01-01T00:15:00Z", "2027-01-01T00:30:00Z"]),
            ("5,10-20/5 * * * *", "UTC", "2027-01-01T00:06:00Z", &["2027-01-01T00:10:00Z", "2027-01-01T00:15:00Z", "2027-01-01T00:20:00Z", "2027-01-01T01:05:00Z"]),
            ("*/20 * * * * *", "UTC", "2027-01-01T00:00:05Z", &["2027-01-01T00:00:20Z", "2027-01-01T00:00:40Z", "2027-01-01T00:01:00Z"]),
            ("30 15 10 * * *", "UTC", "2027-01-01T10:15:30Z", &["2027-01-02T10:15:30Z"]),
            ("0 0 29 2 *", "UTC", "2027-03-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
            ("0 0 31 * *", "UTC", "2027-01-31T00:00:00Z", &["2027-03-31T00:00:00Z"]),
            // Names in any case, 7 = Sunday. 2027-01-01 is a Friday.
            ("0 12 * jan-MAR Mon-fri", "UTC", "2026-12-31T12:00:00Z", &["2027-01-01T12:00:00Z", "2027-01-04T12:00:00Z"]),
            ("0 0 * * 7", "UTC", "2027-01-01T00:00:00Z", &["2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z"]),
            ("0 0 * * 5-7", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-08T00:00:00Z"]),
            ("0 0 * DEC SUN", "UTC", "2027-01-01T00:00:00Z", &["2027-12-05T00:00:00Z"]),
            // Ranges through Sunday (0 or SUN at the end of a range) and full day names.
            ("0 0 * * FRI-SUN", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-08T00:00:00Z"]),
            ("0 0 * * 6-0", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-09T00:00:00Z"]),
            ("0 0 * * saturday,Sunday", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-09T00:00:00Z"]),
            // Vixie OR when both day fields are restricted (do not start with `*`).
            ("0 0 13 * FRI", "UTC", "2027-01-01T00:00:00Z", &["2027-01-08T00:00:00Z", "2027-01-13T00:00:00Z", "2027-01-15T00:00:00Z"]),
            ("0 0 */10 * MON", "UTC", "2027-01-01T00:00:00Z", &["2027-01-11T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"]),
            ("0 0 * * MON", "UTC", "2027-01-01T00:00:00Z", &["2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z"]),
            ("0 0 1-31 * MON", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"]),
            ("0 0 1 * *", "UTC", "2027-01-01T00:00:00Z", &["2027-02-01T00:00:00Z"]),
            // Macros.
            ("@yearly", "UTC", "2027-01-01T00:00:00Z", &["2028-01-01T00:00:00Z"]),
            ("@ANNUALLY", "UTC", "2027-06-01T00:00:00Z", &["2028-01-01T00:00:00Z"]),
            ("@monthly", "UTC", "2027-01-01T00:00:00Z", &["2027-02-01T00:00:00Z"]),
            ("@weekly", "UTC", "2027-01-01T00:00:00Z", &["2027-01-03T00:00:00Z"]),
            ("@daily", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z"]),
            ("@midnight", "UTC", "2027-01-01T00:00:00Z", &["2027-01-02T00:00:00Z"]),
            ("@hourly", "UTC", "2027-01-01T00:00:00Z", &["2027-01-01T01:00:00Z"]),
            // Europe/Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST at 01:00Z.
            // A skipped time fires once, at the jump; every time the jump skips collapses into that fire.
            ("30 2 * * *", "Europe/Berlin", "2027-03-27T12:00:00Z", &["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]),
            ("0,30 2 * * *", "Europe/Berlin", "2027-03-27T12:00:00Z", &["2027-03-28T01:00:00Z", "2027-03-29T00:00:00Z"]),
            ("30 2,14 * * *", "Europe/Berlin", "2027-03-27T12:00:00Z", &["2027-03-27T13:30:00Z", "2027-03-28T01:00:00Z", "2027-03-28T12:30:00Z"]),
            ("30 * * * *", "Europe/Berlin", "2027-03-28T00:00:00Z", &["2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z", "2027-03-28T01:30:00Z"]),
            ("*/15 * * * *", "Europe/Berlin", "2027-03-28T00:50:00Z", &["2027-03-28T01:00:00Z", "2027-03-28T01:15:00Z"]),
            ("0 30 2 * * *", "Europe/Berlin", "2027-03-28T00:59:59Z", &["2027-03-28T01:00:00Z"]),
            ("0 30 2 * * *", "Europe/Berlin", "2027-03-28T01:00:00Z", &["2027-03-29T00:30:00Z"]),
            // Europe/Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:00-02:59 happens twice.
            // A time of day fires once, on its first pass; an interval fires in both passes.
            ("30 2 * * *", "Europe/Berlin", "2027-10-30T12:00:00Z", &["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]),
            ("30 2 * * *", "Europe/Berlin", "2027-10-31T00:45:00Z", &["2027-11-01T01:30:00Z"]),
            ("30 2 * * *", "Europe/Berlin", "2027-10-31T01:10:00Z", &["2027-11-01T01:30:00Z"]),
            ("*/20 2 * * *", "Europe/Berlin", "2027-10-30T23:59:00Z", &["2027-10-31T00:00:00Z", "2027-10-31T00:20:00Z", "2027-10-31T00:40:00Z", "2027-11-01T01:00:00Z"]),
            ("*/30 * * * *", "Europe/Berlin", "2027-10-30T23:50:00Z", &["2027-10-31T00:00:00Z", "2027-10-31T00:30:00Z", "2027-10-31T01:00:00Z", "2027-10-31T01:30:00Z", "2027-10-31T02:00:00Z"]),
            ("0 * * * *", "Europe/Berlin", "2027-10-31T00:30:00Z", &["2027-10-31T01:00:00Z", "2027-10-31T02:00:00Z"]),
            ("45 * * * *", "Europe/Berlin", "2027-10-31T00:50:00Z", &["2027-10-31T01:45:00Z", "2027-10-31T02:45:00Z"]),
            // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:00-02:59 happens twice.
            // A step over the whole day (`*/2`, `0-23/2`) is an interval: 02:00 fires in both passes.
            ("0 */2 * * *", "Europe/Berlin", "2026-10-24T21:30:00Z", &["2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T03:00:00Z"]),
            ("0 */2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", &["2026-10-25T01:00:00Z", "2026-10-25T03:00:00Z"]),
            ("0 */2 * * *", "Europe/Berlin", "2026-10-25T01:00:00Z", &["2026-10-25T03:00:00Z"]),
            ("0 0-23/2 * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", &["2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T03:00:00Z"]),
            ("0 0-23 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", &["2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]),
            // A single hour, a list, a range or a step over part of the day names fixed times: once.
            ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
            ("0 2,14 * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", &["2026-10-25T00:00:00Z", "2026-10-25T13:00:00Z"]),
            ("0 1-3 * * *", "Europe/Berlin", "2026-10-24T22:30:00Z", &["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"]),
            ("0 2-22/4 * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", &["2026-10-25T00:00:00Z", "2026-10-25T05:00:00Z"]),
            ("0 */6,2 * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", &["2026-10-25T00:00:00Z", "2026-10-25T05:00:00Z"]),
            // America/New_York, 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00-01:59 happens twice.
            // `*/2` has no fire in the repeated hour, so 00:00 EDT to 02:00 EST is three real hours.
            ("0 */2 * * *", "America/New_York", "2026-11-01T03:30:00Z", &["2026-11-01T04:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T09:00:00Z"]),
            ("0 1-23/2 * * *", "America/New_York", "2026-11-01T04:30:00Z", &["2026-11-01T05:00:00Z", "2026-11-01T08:00:00Z"]),
            ("30 */1 * * *", "America/New_York", "2026-11-01T05:00:00Z", &["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z"]),
            ("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]),
            ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
            // America/New_York, 2027-03-14: 02:00 EST becomes 03:00 EDT at 07:00Z.
            ("30 2 * * *", "America/New_York", "2027-03-13T12:00:00Z", &["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]),
            ("0 * * * *", "America/New_York", "2027-03-14T06:30:00Z", &["2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z"]),
            // America/New_York, 2027-11-07: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00-01:59 happens twice.
            ("30 1 * * *", "America/New_York", "2027-11-06T12:00:00Z", &["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"]),
            ("30 * * * *", "America/New_York", "2027-11-07T05:00:00Z", &["2027-11-07T05:30:00Z", "2027-11-07T06:30:00Z", "2027-11-07T07:30:00Z"]),
            // Australia/Lord_Howe, 2027-10-03: 02:00 (+10:30) becomes 02:30 (+11) at 15:30Z the day before.
            ("15 2 * * *", "Australia/Lord_Howe", "2027-10-02T00:00:00Z", &["2027-10-02T15:30:00Z", "2027-10-03T15:15:00Z"]),
            ("0 * * * *", "Australia/Lord_Howe", "2027-10-02T15:00:00Z", &["2027-10-02T15:30:00Z", "2027-10-02T16:00:00Z"]),
            // Australia/Lord_Howe, 2027-04-04: 02:00 (+11) becomes 01:30 (+10:30) at 15:00Z the day before.
            ("45 1 * * *", "Australia/Lord_Howe", "2027-04-03T00:00:00Z", &["2027-04-03T14:45:00Z", "2027-04-04T15:15:00Z"]),
            ("*/15 * * * *", "Australia/Lord_Howe", "2027-04-03T14:20:00Z", &["2027-04-03T14:30:00Z", "2027-04-03T14:45:00Z", "2027-04-03T15:00:00Z", "2027-04-03T15:15:00Z", "2027-04-03T15:30:00Z"]),
            // America/Sao_Paulo, 2018-11-04: midnight (-03) becomes 01:00 (-02) at 03:00Z, so that day has no midnight.
            ("0 0 * * *", "America/Sao_Paulo", "2018-11-03T12:00:00Z", &["2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"]),
            // America/Sao_Paulo, 2019-02-17: midnight (-02) becomes 23:00 (-03) of the day before, at 02:00Z.
            ("30 23 * * *", "America/Sao_Paulo", "2019-02-16T12:00:00Z", &["2019-02-17T01:30:00Z", "2019-02-18T02:30:00Z"]),
            ("0 0 * * *", "America/Sao_Paulo", "2019-02-16T12:00:00Z", &["2019-02-17T03:00:00Z"]),
        ];
        let mut failures = Vec::new();
        for (expr, zone, after, expected) in table {
            let got = fires(expr, zone, after, expected.len());
            if got != *expected {
                failures.push(format!("{expr} in {zone} after {after}:\n  expected {expected:?}\n  got      {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn the_table_uses_the_real_transition_dates() {
        let offset =
            |zone: &str, at: &str| tz(zone).offset_from_utc_datetime(&utc(at).naive_utc()).fix().local_minus_utc() / 60;
        for (zone, before, at, minutes_before, minutes_after) in [
            ("Europe/Berlin", "2027-03-28T00:59:59Z", "2027-03-28T01:00:00Z", 60, 120),
            ("Europe/Berlin", "2026-10-25T00:59:59Z", "2026-10-25T01:00:00Z", 120, 60),
            ("America/New_York", "2026-11-01T05:59:59Z", "2026-11-01T06:00:00Z", -240, -300),
            ("Europe/Berlin", "2027-10-31T00:59:59Z", "2027-10-31T01:00:00Z", 120, 60),
            ("America/New_York", "2027-03-14T06:59:59Z", "2027-03-14T07:00:00Z", -300, -240),
            ("America/New_York", "2027-11-07T05:59:59Z", "2027-11-07T06:00:00Z", -240, -300),
            ("Australia/Lord_Howe", "2027-10-02T15:29:59Z", "2027-10-02T15:30:00Z", 630, 660),
            ("Australia/Lord_Howe", "2027-04-03T14:59:59Z", "2027-04-03T15:00:00Z", 660, 630),
            ("America/Sao_Paulo", "2018-11-04T02:59:59Z", "2018-11-04T03:00:00Z", -180, -120),
            ("America/Sao_Paulo", "2019-02-17T01:59:59Z", "2019-02-17T02:00:00Z", -120, -180),
        ] {
            assert_eq!((offset(zone, before), offset(zone, at)), (minutes_before, minutes_after), "{zone} at {at}");
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let cases = [
            ("", "the cron expression is empty"),
            ("   ", "the cron expression is empty"),
            ("* * *", "expected 5 or 6 fields (minute hour day-of-month month day-of-week), got 3"),
            ("* * * * * * *", "expected 5 or 6 fields (minute hour day-of-month month day-of-week), got 7"),
            ("61 * * * *", "minute 61 is out of range 0-59"),
            ("0 24 * * *", "hour 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
            ("0 0 1 13 *", "month 13 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
            ("60 * * * * *", "second 60 is out of range 0-59"),
            ("99999999999 * * * *", "minute 99999999999 is out of range 0-59"),
            ("0 0 * FOO *", "unknown month name 'FOO'"),
            ("0 0 * * FUNDAY", "unknown day name 'FUNDAY'"),
            ("0 0 * * JAN", "unknown day name 'JAN'"),
            ("MON * * * *", "minute value 'MON' is not a number"),
            ("*/0 * * * *", "minute step must be at least 1"),
            ("*/x * * * *", "minute step 'x' is not a number"),
            ("0 */24 * * *", "hour step 24 is out of range 1-23"),
            ("5/15 * * * *", "minute '5/15': a step needs '*' or a range before it, as in '*/15' or '5-59/15'"),
            ("30-10 * * * *", "minute range '30-10' goes backwards (write the smaller value first)"),
            ("0 0 * * FRI-MON", "day-of-week range 'FRI-MON' goes backwards (write the smaller value first)"),
            ("-5 * * * *", "minute range '-5' is missing a value"),
            ("1,,2 * * * *", "minute field has an empty list item"),
            (
                "0 0 L * *",
                "day-of-month 'L': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            ),
            (
                "0 0 15W * *",
                "day-of-month '15W': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            ),
            (
                "0 0 * * 5#2",
                "day-of-week '5#2': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            ),
            (
                "0 0 12 ? * 2",
                "day-of-month '?': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            ),
            (
                "0 0 1 * +MON",
                "day-of-week '+MON': the L, W, #, ? and + extensions are not supported (use numbers, names, ranges, lists and steps)",
            ),
            ("0 0 30 2 *", "day-of-month '30' never occurs in month '2'"),
            ("0 0 31 APR,JUN *", "day-of-month '31' never occurs in month 'APR,JUN'"),
            (
                "@reboot",
                "unknown macro '@reboot' (use one of @yearly @annually @monthly @weekly @daily @midnight @hourly)",
            ),
            (
                "@every 5m",
                "unknown macro '@every 5m' (use one of @yearly @annually @monthly @weekly @daily @midnight @hourly)",
            ),
        ];
        let mut failures = Vec::new();
        for (expr, expected) in cases {
            match CronExpr::parse(expr) {
                Err(CronError::InvalidCron(message)) if message == expected => {}
                other => failures.push(format!("{expr:?}: expected {expected:?}, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err().to_string(),
            "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Berlin)"
        );
        assert_eq!(parse_timezone("Europe/Berlin").unwrap().name(), "Europe/Berlin");
    }

    #[test]
    fn day_of_week_ranges_may_end_in_sunday() {
        let days = |text: &str| {
            CronExpr::parse(&format!("0 0 * * {text}")).unwrap_or_else(|e| panic!("{text}: {e}")).days_of_week
        };
        #[rustfmt::skip]
        let same = [
            ("Mon-Sun", "1-7"), ("wed-sun", "3-7"), ("mon-0", "1-7"), ("1-0", "1-7"), ("5-0", "5-7"),
            ("SAT-SUN", "0,6"), ("sat-0", "6,7"), ("7-0", "0"), ("SUN-SUN", "0"), ("0-0", "0"),
            ("Sun-Sat", "0-6"), ("1-0/2", "1,3,5,7"), ("monday-sunday", "*"), ("Friday-SUN", "5-7"),
        ];
        for (text, equivalent) in same {
            assert_eq!(days(text), days(equivalent), "{text} should mean {equivalent}");
        }
        assert_eq!(days("mon-0"), 0b111_1111);
        for backwards in ["FRI-MON", "5-1", "SAT-FRI", "friday-monday"] {
            let message = format!("day-of-week range '{backwards}' goes backwards (write the smaller value first)");
            assert_eq!(CronExpr::parse(&format!("0 0 * * {backwards}")).unwrap_err(), CronError::InvalidCron(message));
        }
    }

    #[test]
    fn day_names_short_and_full_in_any_case() {
        for (names, day) in [
            (["sun", "SUNDAY", "Sun"], 0),
            (["mon", "monday", "MoNdAy"], 1),
            (["tue", "Tuesday", "TUE"], 2),
            (["wed", "wednesday", "WED"], 3),
            (["thu", "thursday", "Thu"], 4),
            (["fri", "FRIDAY", "Fri"], 5),
            (["sat", "saturday", "SAT"], 6),
        ] {
            for name in names {
                assert_eq!(parse_day_name(name), Some(day), "{name}");
            }
        }
        for not_a_day in ["", "m", "mo", "tues", "thurs", "sundays", "7", "0", "jan", " mon"] {
            assert_eq!(parse_day_name(not_a_day), None, "{not_a_day:?}");
        }
    }

    #[test]
    fn what_counts_as_an_interval_hour_field() {
        for (hours, interval) in [
            ("*", true),
            ("*/1", true),
            ("*/2", true),
            ("*/5", true),
            ("*/23", true),
            ("0-23/2", true),
            ("00-23/3", true),
            ("0-23", true),
            ("*,5", true),
            ("0-11,12-23", true),
            ("2", false),
            ("1-3", false),
            ("2,14", false),
            ("1-23/2", false),
            ("0-22/2", false),
            ("8-18/2", false),
            ("*/6,3", false),
            ("*/2,*/3", false),
        ] {
            let expr = CronExpr::parse(&format!("0 {hours} * * *")).unwrap_or_else(|e| panic!("{hours}: {e}"));
            assert_eq!(expr.fires_in_both_passes(), interval, "hour field {hours}");
        }
    }

    #[test]
    fn a_date_on_a_weekday_that_is_eleven_years_away_still_has_a_next_fire() {
        let expr = CronExpr::parse("* * 2-2/1 9 */7").unwrap();
        let next = expr.next_after(utc("2018-11-04T03:00:00Z"), tz("America/Sao_Paulo")).unwrap();
        assert_eq!(next.date_naive().to_string(), "2029-09-02", "{next}");
    }

    #[test]
    fn impossible_dates_only_parse_when_the_weekday_can_still_match() {
        // With a restricted day-of-week, the Vixie OR still fires on that weekday.
        assert_eq!(
            fires("0 0 30 2 MON", "UTC", "2027-02-01T00:00:00Z", 2),
            ["2027-02-08T00:00:00Z", "2027-02-15T00:00:00Z"]
        );
    }

    #[test]
    fn as_str_and_has_seconds() {
        let expr = CronExpr::parse("  0 */5 * * * *\n").unwrap();
        assert_eq!((expr.as_str(), expr.has_seconds()), ("0 */5 * * * *", true));
        let expr = CronExpr::parse("@daily").unwrap();
        assert_eq!((expr.as_str(), expr.has_seconds()), ("@daily", false));
    }

    #[test]
    fn ends_of_the_calendar_give_none_without_panicking() {
        let every_second = CronExpr::parse("* * * * * *").unwrap();
        for zone in ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin"] {
            for at in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
                let _ = every_second.next_after(at, tz(zone));
                let _ = plan_missed(&every_second, tz(zone), at, at);
            }
        }
        assert_eq!(every_second.next_after(DateTime::<Utc>::MAX_UTC, tz("UTC")), None);
    }

    #[test]
    fn missed_runs_while_down() {
        let hourly = CronExpr::parse("0 * * * *").unwrap();
        let berlin = tz("Europe/Berlin");
        // Down from 00:30Z to 05:05Z: 01..04 are missed, 05:00 is 5 minutes late and runs.
        let plan = plan_missed(&hourly, berlin, utc("2027-01-10T00:30:00Z"), utc("2027-01-10T05:05:00Z"));
        let at = |h: u32| utc(&format!("2027-01-10T{h:02}:00:00Z"));
        assert_eq!(plan.missed, [at(1), at(2), at(3), at(4)]);
        assert_eq!((plan.missed_total, plan.run_late, plan.next), (4, Some(at(5)), Some(at(6))));
        // Down until 05:20Z: 05:00 is 20 minutes late, so it is missed too.
        let plan = plan_missed(&hourly, berlin, utc("2027-01-10T00:30:00Z"), utc("2027-01-10T05:20:00Z"));
        assert_eq!((plan.missed_total, plan.missed.last(), plan.run_late), (5, Some(&at(5)), None));
        // Exactly ten minutes late still runs.
        let plan = plan_missed(&hourly, berlin, utc("2027-01-10T04:30:00Z"), utc("2027-01-10T05:10:00Z"));
        assert_eq!((plan.missed_total, plan.run_late), (0, Some(at(5))));
        // Nothing due.
        let plan = plan_missed(&hourly, berlin, utc("2027-01-10T04:30:00Z"), utc("2027-01-10T04:59:59Z"));
        assert_eq!(plan, MissedPlan { missed: vec![], missed_total: 0, run_late: None, next: Some(at(5)) });
    }

    #[test]
    fn a_year_of_downtime_on_a_per_second_schedule_is_capped_and_quick() {
        let every_second = CronExpr::parse("* * * * * *").unwrap();
        let (from, now) = (utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00.5Z"));
        let started = std::time::Instant::now();
        let plan = plan_missed(&every_second, tz("Europe/Berlin"), from, now);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(plan.missed_total, MISSED_COUNT_CAP);
        assert_eq!(plan.missed.len(), MISSED_SAMPLE);
        assert_eq!(plan.missed.first(), Some(&utc("2026-01-01T00:00:01Z")));
        assert_eq!(plan.missed.last(), Some(&utc("2026-12-31T23:59:59Z")));
        assert_eq!(plan.run_late, Some(utc("2027-01-01T00:00:00Z")));
        assert_eq!(plan.next, Some(utc("2027-01-01T00:00:01Z")));
    }

    // ---- properties ----

    /// Brute-force reading of the documented semantics, independent of the walk in `next_after`.
    fn wall_matches(expr: &CronExpr, wall: NaiveDateTime) -> bool {
        expr.day_matches(wall.date())
            && expr.hours & bit(wall.hour()) != 0
            && expr.minutes & bit(wall.minute()) != 0
            && expr.seconds & bit(wall.second()) != 0
    }

    /// The documented rule for the repeated hour, read from the text (generated
    /// expressions have no macros): the hour field is an interval when it is one
    /// step over the whole day, `*/N` or `0-23/N`, or selects every hour.
    fn hour_field_is_interval(text: &str, expr: &CronExpr) -> bool {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let hour = fields[fields.len() - 4];
        let one_whole_day_step = !hour.contains(',') && (hour.starts_with("*/") || hour.starts_with("0-23/"));
        one_whole_day_step || (0..24).all(|h| expr.hours & bit(h) != 0)
    }

    /// Whether `u` is a fire: its wall time matches (and, in a repeated hour, it
    /// is the first pass or the expression is an interval), or clocks jumped
    /// forward at `u` over some matching wall time. `step` is the expression's granularity.
    fn is_fire(expr: &CronExpr, tz: Tz, u: DateTime<Utc>, step: Duration, both_passes: bool) -> bool {
        let wall = wall_clock(u, tz).unwrap();
        let first_pass = match tz.from_local_datetime(&wall) {
            LocalResult::Ambiguous(first, _) => first == u,
            _ => true,
        };
        if wall_matches(expr, wall) && (first_pass || both_passes) {
            return true;
        }
        let mut skipped = wall_clock(u - step, tz).unwrap() + step;
        while skipped < wall {
            if wall_matches(expr, skipped) {
                return true;
            }
            skipped += step;
        }
        false
    }

    fn field(min: u32, max: u32, names: Option<(&'static [&'static str], u32)>) -> impl Strategy<Value = String> {
        let value = move |v: u32| match names {
            Some((names, first)) if v >= first && ((v - first) as usize) < names.len() && v % 2 == 0 => {
                let name = names[(v - first) as usize];
                if v % 4 == 0 { name.to_lowercase() } else { name.to_string() }
            }
            _ => v.to_string(),
        };
        let item = prop_oneof![
            3 => Just("*".to_string()),
            2 => (1..=max).prop_map(|s| format!("*/{s}")),
            2 => (min..=max).prop_map(value),
            2 => (min..=max, min..=max).prop_map(move |(a, b)| format!("{}-{}", value(a.min(b)), value(a.max(b)))),
            1 => (min..=max, min..=max, 1..=max).prop_map(move |(a, b, s)| format!("{}-{}/{s}", value(a.min(b)), value(a.max(b)))),
        ];
        prop::collection::vec(item, 1..=3).prop_map(|items| items.join(","))
    }

    fn expression() -> impl Strategy<Value = String> {
        (
            prop::option::of(field(0, 59, None)),
            field(0, 59, None),
            field(0, 23, None),
            field(1, 31, None),
            field(1, 12, Some((&MONTH_NAMES, 1))),
            field(0, 7, Some((&DAY_NAMES, 0))),
        )
            .prop_map(|(s, m, h, dom, mon, dow)| match s {
                Some(s) => format!("{s} {m} {h} {dom} {mon} {dow}"),
                None => format!("{m} {h} {dom} {mon} {dow}"),
            })
    }

    const ZONES: [&str; 7] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "America/Sao_Paulo",
    ];

    /// Clock changes in the table, with their zones.
    const CHANGES: [(&str, &str); 8] = [
        ("Europe/Berlin", "2027-03-28T01:00:00Z"),
        ("Europe/Berlin", "2027-10-31T01:00:00Z"),
        ("America/New_York", "2027-03-14T07:00:00Z"),
        ("America/New_York", "2027-11-07T06:00:00Z"),
        ("Australia/Lord_Howe", "2027-10-02T15:30:00Z"),
        ("Australia/Lord_Howe", "2027-04-03T15:00:00Z"),
        ("America/Sao_Paulo", "2018-11-04T03:00:00Z"),
        ("America/Sao_Paulo", "2019-02-17T02:00:00Z"),
    ];

    /// A zone and an instant: within three hours or three days of one of its
    /// clock changes half of the time, anywhere in 2000-2040 in any zone otherwise.
    fn zone_and_instant() -> impl Strategy<Value = (Tz, DateTime<Utc>)> {
        let seconds_off = prop_oneof![-3 * 3_600..3 * 3_600i64, -3 * 86_400..3 * 86_400i64];
        let near_change = (0..CHANGES.len(), seconds_off, 0..1_000_000_000i64).prop_map(|(i, s, ns)| {
            (tz(CHANGES[i].0), utc(CHANGES[i].1) + Duration::seconds(s) + Duration::nanoseconds(ns))
        });
        let anywhere = (0..ZONES.len(), 946_684_800..2_208_988_800i64, 0..1_000_000_000u32)
            .prop_map(|(zone, s, ns)| (tz(ZONES[zone]), DateTime::from_timestamp(s, ns).unwrap()));
        prop_oneof![near_change, anywhere]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn next_is_later_matches_and_skips_nothing(text in expression(), (tz, t) in zone_and_instant()) {
            // Some generated day/month combinations never occur; those must not parse.
            let Ok(expr) = CronExpr::parse(&text) else { return Ok(()) };
            let next = expr.next_after(t, tz).expect("an accepted expression always fires again");
            prop_assert!(next > t);
            let (step, horizon) = if expr.has_seconds() { (Duration::seconds(1), Duration::hours(2)) } else { (Duration::minutes(1), Duration::days(3)) };
            let both_passes = hour_field_is_interval(&text, &expr);
            prop_assert!(is_fire(&expr, tz, next, step, both_passes), "{next} is not a fire of '{text}' in {tz}");
            let granule = step.num_seconds();
            let mut u = DateTime::from_timestamp(t.timestamp().div_euclid(granule) * granule, 0).unwrap() + step;
            while u < next && u < t + horizon {
                prop_assert!(!is_fire(&expr, tz, u, step, both_passes), "'{text}' in {tz}: {u} was skipped between {t} and {next}");
                u += step;
            }
        }

        #[test]
        fn no_string_panics_the_parser(text in ".{0,60}") {
            if let Ok(expr) = CronExpr::parse(&text) {
                let _ = expr.upcoming(utc("2027-03-28T00:00:00Z"), chrono_tz::UTC, 3);
            }
        }

        #[test]
        fn no_cron_like_string_panics(
            tokens in prop::collection::vec(prop::sample::select(vec![
                "*", "/", "-", ",", " ", "\t", "0", "1", "7", "12", "23", "29", "30", "31", "59", "60", "99999999999",
                "L", "W", "#", "?", "+", "MON", "sun", "Jan", "feb", "@daily", "@", "é", "2-", "/0",
            ]), 0..16),
            (tz, t) in prop_oneof![
                zone_and_instant(),
                (0..ZONES.len(), DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp())
                    .prop_map(|(zone, s)| (tz(ZONES[zone]), instant(s).unwrap())),
            ],
        ) {
            if let Ok(expr) = CronExpr::parse(&tokens.concat()) {
                if let Some(next) = expr.next_after(t, tz) {
                    prop_assert!(next > t);
                }
                let _ = plan_missed(&expr, tz, t - Duration::hours(1), t);
            }
        }
    }

    proptest! {
        // Every point of a window is checked, so fewer cases cover a lot.
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn next_fire_around_clock_changes_is_the_brute_force_one(text in expression(), change in 0..CHANGES.len()) {
            let Ok(expr) = CronExpr::parse(&text) else { return Ok(()) };
            let (tz, at) = (tz(CHANGES[change].0), utc(CHANGES[change].1));
            let (step, half_window) = if expr.has_seconds() { (Duration::seconds(1), Duration::minutes(20)) } else { (Duration::minutes(1), Duration::hours(3)) };
            let (from, until) = (at - half_window, at + half_window);
            let both_passes = hour_field_is_interval(&text, &expr);
            let mut expected = Vec::new();
            let mut u = from + step;
            while u <= until {
                if is_fire(&expr, tz, u, step, both_passes) {
                    expected.push(u);
                }
                u += step;
            }
            // From every point of the window, not just its start: a start in the second pass of a
            // repeated hour takes a different path than one before it.
            let mut t = from;
            while t < until {
                if let Some(&want) = expected.iter().find(|fire| **fire > t) {
                    prop_assert_eq!(expr.next_after(t, tz), Some(want), "'{}' in {} after {}", text, tz, t);
                }
                t += step;
            }
        }
    }
}
