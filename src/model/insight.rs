//! What a container says and what it uses: log lines and resource figures.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of a container's log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LogLine {
    /// The engine's timestamp of the line (`null` if it gave none).
    #[schema(required = true)]
    pub at: Option<DateTime<Utc>>,
    pub stream: LogStream,
    /// The line without its newline; ANSI colour codes are left in, for the
    /// UI to render as styles (never as HTML).
    pub text: String,
    /// The container it came from, in a stack's merged log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Which lines of a log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// The last this many lines (of those since `since`).
    pub tail: usize,
    pub since: Option<DateTime<Utc>>,
    /// Keep the stream open for new lines.
    pub follow: bool,
}

impl LogQuery {
    pub const DEFAULT_TAIL: usize = 100;
    /// What one request may load: the viewer's memory and the server's are bounded.
    pub const MAX_TAIL: usize = 5000;

    /// From a request's `tail`, `since` (RFC 3339, or a duration ago such as
    /// `10m` or `2h`) and `follow`.
    pub fn from_params(
        tail: Option<usize>,
        since: Option<&str>,
        follow: bool,
        now: DateTime<Utc>,
    ) -> Result<LogQuery, String> {
        let tail = tail.unwrap_or(Self::DEFAULT_TAIL);
        if tail > Self::MAX_TAIL {
            return Err(format!("tail must be at most {}, not {tail}", Self::MAX_TAIL));
        }
        let since = since
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Ok(t.with_timezone(&Utc)),
                Err(_) => humantime::parse_duration(s)
                    .ok()
                    .and_then(|d| chrono::TimeDelta::from_std(d).ok())
                    .map(|d| now - d)
                    .ok_or_else(|| {
                        format!("since must be an RFC 3339 time or a duration such as 10m or 2h, not '{s}'")
                    }),
            })
            .transpose()?;
        Ok(LogQuery { tail, since, follow })
    }
}

/// A container's resource use (a stack's: its running members' sums).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Stats {
    pub cpu_percent: f64,
    /// In use, without the page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
}

impl Stats {
    pub fn sum(all: impl IntoIterator<Item = Stats>) -> Stats {
        all.into_iter().fold(Stats::default(), |a, b| Stats {
            cpu_percent: a.cpu_percent + b.cpu_percent,
            memory_bytes: a.memory_bytes + b.memory_bytes,
            memory_limit_bytes: a.memory_limit_bytes + b.memory_limit_bytes,
            net_rx_bytes: a.net_rx_bytes + b.net_rx_bytes,
            net_tx_bytes: a.net_tx_bytes + b.net_tx_bytes,
            block_read_bytes: a.block_read_bytes + b.block_read_bytes,
            block_write_bytes: a.block_write_bytes + b.block_write_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_queries_take_a_time_or_a_duration_ago_and_cap_the_tail() {
        let now: DateTime<Utc> = "2026-12-02T12:00:00Z".parse().unwrap();
        let q = LogQuery::from_params(None, Some("10m"), true, now).unwrap();
        assert_eq!((q.tail, q.since, q.follow), (100, Some("2026-12-02T11:50:00Z".parse().unwrap()), true));
        let q = LogQuery::from_params(Some(5), Some("2026-12-01T08:00:00+01:00"), false, now).unwrap();
        assert_eq!(q.since, Some("2026-12-01T07:00:00Z".parse().unwrap()));
        assert!(LogQuery::from_params(Some(5001), None, false, now).unwrap_err().contains("at most 5000"));
        assert!(LogQuery::from_params(None, Some("yesterday"), false, now).unwrap_err().contains("'yesterday'"));
    }

    #[test]
    fn a_stacks_figures_are_its_members_sums() {
        let a = Stats { cpu_percent: 1.5, memory_bytes: 10, net_rx_bytes: 3, ..Stats::default() };
        let b = Stats { cpu_percent: 2.0, memory_bytes: 5, block_write_bytes: 7, ..Stats::default() };
        let sum = Stats::sum([a, b]);
        assert_eq!((sum.cpu_percent, sum.memory_bytes, sum.net_rx_bytes, sum.block_write_bytes), (3.5, 15, 3, 7));
    }
}
