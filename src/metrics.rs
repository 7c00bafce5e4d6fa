//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Counters and histograms are recorded where things happen (a schedule
//! fires, an action ends, a login fails) into one process-wide [`Metrics`];
//! gauges are read from the live views at scrape time, so they are never
//! stale and cost nothing between scrapes.
//!
//! Written by hand rather than with `prometheus-client`: that crate writes
//! only the OpenMetrics format (`# EOF`, counters named without `_total`),
//! not the Prometheus text format the contract names; the format below is
//! a few lines per type and is checked by the reference parser (PyPI
//! `prometheus_client`) in tests/integration/metrics.rs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};

use crate::docker::Fleet;
use crate::model::{Action, Desired, HostStatus, StackStatus, TargetType};
use crate::window::Windows;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Seconds after its due time a fire started: the engine wakes within a few
/// milliseconds, waits for an unreachable engine, or catches up after downtime.
const LATENESS_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0];
/// Seconds an action took: a container start takes well under a second, a
/// stack's ordered stop up to its containers' stop timeouts (10 s each by default).
const DURATION_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative (made cumulative when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = |s: &str| if s.is_empty() { String::new() } else { format!("{{{s}}}") };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

#[derive(Debug)]
struct Recorded {
    runs: BTreeMap<(&'static str, bool), u64>,
    lateness: Histogram,
    durations: BTreeMap<(&'static str, &'static str), Histogram>,
}

/// What happened since start-up. One per process ([`global`]): the events
/// come from many services, and a counter is a fact about the process.
#[derive(Debug)]
pub struct Metrics {
    recorded: Mutex<Recorded>,
    notifications: [AtomicU64; 2],
    login_failures: AtomicU64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    recorded: Mutex::new(Recorded {
        runs: BTreeMap::new(),
        lateness: Histogram::new(LATENESS_BUCKETS),
        durations: BTreeMap::new(),
    }),
    notifications: Default::default(),
    login_failures: AtomicU64::new(0),
});

pub fn global() -> &'static Metrics {
    &METRICS
}

/// Quotes a label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The scrape-time gauges' inputs, read from the live views.
pub struct Views<'a> {
    pub fleet: &'a Fleet,
    pub windows: &'a Windows,
    pub now: DateTime<Utc>,
}

impl Metrics {
    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        crate::store::lock(&self.recorded)
    }

    /// A schedule fired (`ok`: its action succeeded), `late_seconds` after its due time.
    pub fn schedule_run(&self, action: Action, ok: bool, late_seconds: f64) {
        let mut r = self.recorded();
        *r.runs.entry((action.as_str(), ok)).or_default() += 1;
        r.lateness.observe(late_seconds.max(0.0));
    }

    /// An action on a target ended (whatever its result) after `seconds`.
    pub fn action_duration(&self, target_type: TargetType, action: Action, seconds: f64) {
        let mut r = self.recorded();
        r.durations
            .entry((target_type.as_str(), action.as_str()))
            .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
            .observe(seconds);
    }

    /// A notification was sent (`ok`) or gave up.
    pub fn notification(&self, ok: bool) {
        self.notifications[usize::from(ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// A login was refused (wrong password or code, or rate limited).
    pub fn login_failure(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition: recorded families, then gauges from `views`.
    pub fn render(&self, views: &Views) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let recorded = {
            let r = self.recorded();
            (r.runs.clone(), r.lateness.clone(), r.durations.clone())
        };
        let (runs, lateness, durations) = recorded;

        header(
            &mut out,
            "docknap_schedule_runs_total",
            "counter",
            "Schedule fires that ran an action, by action and result.",
        );
        for ((action, ok), n) in &runs {
            let _ = writeln!(out, "docknap_schedule_runs_total{{action={},ok=\"{ok}\"}} {n}", label(action));
        }
        header(
            &mut out,
            "docknap_schedule_lateness_seconds",
            "histogram",
            "How long after its due time a schedule fire started.",
        );
        lateness.write(&mut out, "docknap_schedule_lateness_seconds", "");
        header(
            &mut out,
            "docknap_action_duration_seconds",
            "histogram",
            "How long actions took, by target type and action.",
        );
        for ((target_type, action), h) in &durations {
            h.write(
                &mut out,
                "docknap_action_duration_seconds",
                &format!("target_type={},action={}", label(target_type), label(action)),
            );
        }
        header(
            &mut out,
            "docknap_notifications_total",
            "counter",
            "Notifications sent (ok=true) or given up on (ok=false).",
        );
        for ok in [false, true] {
            let _ = writeln!(
                out,
                "docknap_notifications_total{{ok=\"{ok}\"}} {}",
                self.notifications[usize::from(ok)].load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "docknap_login_failures_total",
            "counter",
            "Refused logins: wrong password or code, or rate limited.",
        );
        let _ = writeln!(out, "docknap_login_failures_total {}", self.login_failures.load(Ordering::Relaxed));

        write_gauges(&mut out, views);
        out
    }
}

fn write_gauges(out: &mut String, views: &Views) {
    let hosts = views.fleet.statuses();
    header(out, "docknap_host_up", "gauge", "1 when DockNap reaches the host's Docker Engine.");
    for (host, status) in &hosts {
        let _ = writeln!(out, "docknap_host_up{{host={}}} {}", label(host), u8::from(*status == HostStatus::Ok));
    }

    let mut containers: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in views.fleet.containers(None) {
        *containers.entry((c.host, c.state.to_string())).or_default() += 1;
    }
    header(out, "docknap_containers", "gauge", "Containers by host and state.");
    for ((host, state), n) in &containers {
        let _ = writeln!(out, "docknap_containers{{host={},state={}}} {n}", label(host), label(state));
    }

    let mut stacks: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in views.fleet.stacks(None) {
        let status = match s.status {
            StackStatus::Running => "running",
            StackStatus::Stopped => "stopped",
            StackStatus::Paused => "paused",
            StackStatus::Partial => "partial",
        };
        *stacks.entry((s.host, status.to_string())).or_default() += 1;
    }
    header(out, "docknap_stacks", "gauge", "Compose stacks by host and status.");
    for ((host, status), n) in &stacks {
        let _ = writeln!(out, "docknap_stacks{{host={},status={}}} {n}", label(host), label(status));
    }

    header(out, "docknap_window_desired_up", "gauge", "1 when an enabled window wants its target up now, 0 when down.");
    for c in views.windows.compiled().iter().filter(|c| c.window.fields.enabled) {
        let f = &c.window.fields;
        let up = u8::from(c.desired(views.now) == Desired::Up);
        let _ = writeln!(
            out,
            "docknap_window_desired_up{{host={},target_type={},target_id={}}} {up}",
            label(&f.host),
            label(f.target_type.as_str()),
            label(&f.target_id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }

    #[test]
    fn a_histogram_is_cumulative_with_inf_sum_and_count() {
        let mut h = Histogram::new(&[1.0, 5.0]);
        for v in [0.5, 2.0, 7.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"");
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"1\"} 1\nx_bucket{a=\"b\",le=\"5\"} 2\nx_bucket{a=\"b\",le=\"+Inf\"} 3\nx_sum{a=\"b\"} 9.5\nx_count{a=\"b\"} 3\n"
        );
    }
}
