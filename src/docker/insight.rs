//! Logs and resource figures over bollard, in the model's terms.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::{LogsOptionsBuilder, StatsOptionsBuilder};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};

use crate::model::{LogLine, LogQuery, LogStream, Stats};

/// Longer lines are cut here: one line must not make a viewer's memory
/// (or the server's) grow without bound.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

pub fn logs(docker: &Docker, id: &str, q: &LogQuery) -> BoxStream<'static, Result<LogLine, BollardError>> {
    let mut opts =
        LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).follow(q.follow).tail(&q.tail.to_string());
    if let Some(since) = q.since {
        opts = opts.since(i32::try_from(since.timestamp()).unwrap_or(i32::MAX));
    }
    docker
        .logs(id, Some(opts.build()))
        .flat_map(|item| {
            let lines = match item {
                Ok(LogOutput::StdErr { message }) => lines(LogStream::Stderr, &message).into_iter().map(Ok).collect(),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    lines(LogStream::Stdout, &message).into_iter().map(Ok).collect()
                }
                Ok(LogOutput::StdIn { .. }) => Vec::new(),
                Err(e) => vec![Err(e)],
            };
            stream::iter(lines)
        })
        .boxed()
}

/// A frame of the log, `2026-12-02T13:45:01.123456789Z text\n` (a tty's may
/// hold several lines: each gets the frame's timestamp).
fn lines(stream: LogStream, frame: &[u8]) -> Vec<LogLine> {
    let text = String::from_utf8_lossy(frame);
    let (at, rest) = match text.split_once(' ') {
        Some((ts, rest)) => match DateTime::parse_from_rfc3339(ts) {
            Ok(t) => (Some(t.with_timezone(&Utc)), rest),
            Err(_) => (None, text.as_ref()),
        },
        None => (None, text.as_ref()),
    };
    rest.strip_suffix('\n')
        .unwrap_or(rest)
        .split('\n')
        .map(|line| LogLine { at, stream, text: cut(line.trim_end_matches('\r')), container: None })
        .collect()
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut at {} KiB]", &line[..end], MAX_LINE_BYTES / 1024)
}

/// Samples about once a second for as long as the stream is read. The first
/// one the engine sends has no earlier reading to take CPU use from, and is
/// skipped.
pub fn stats(docker: &Docker, id: &str) -> BoxStream<'static, Result<Stats, BollardError>> {
    let opts = StatsOptionsBuilder::new().stream(true).one_shot(false).build();
    docker
        .stats(id, Some(opts))
        .filter_map(|item| async move {
            match item {
                Ok(s) => has_previous(&s).then(|| Ok(figures(&s))),
                Err(e) => Some(Err(e)),
            }
        })
        .boxed()
}

fn has_previous(s: &ContainerStatsResponse) -> bool {
    s.precpu_stats.as_ref().and_then(|p| p.system_cpu_usage).is_some_and(|u| u > 0)
}

/// The figures `docker stats` shows, computed the way its CLI does.
fn figures(s: &ContainerStatsResponse) -> Stats {
    let (cpu, pre) = (s.cpu_stats.clone().unwrap_or_default(), s.precpu_stats.clone().unwrap_or_default());
    let total = |c: &bollard::models::ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0);
    let cpu_delta = total(&cpu).saturating_sub(total(&pre)) as f64;
    let system_delta = cpu.system_cpu_usage.unwrap_or(0).saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let cpus = cpu
        .online_cpus
        .map(f64::from)
        .or_else(|| cpu.cpu_usage.as_ref().and_then(|u| u.percpu_usage.as_ref()).map(|p| p.len() as f64))
        .unwrap_or(1.0);
    let cpu_percent = if system_delta > 0.0 { cpu_delta / system_delta * cpus * 100.0 } else { 0.0 };

    let mem = s.memory_stats.clone().unwrap_or_default();
    let usage = mem.usage.unwrap_or(0);
    let stat = |k: &str| mem.stats.as_ref().and_then(|m| m.get(k).copied());
    // cgroup v1 names the page cache total_inactive_file; v2, inactive_file.
    let cache = stat("total_inactive_file").or_else(|| stat("inactive_file")).filter(|c| *c < usage).unwrap_or(0);

    let nets = s.networks.as_ref().map(|n| n.values().collect::<Vec<_>>()).unwrap_or_default();
    let io = s.blkio_stats.as_ref().and_then(|b| b.io_service_bytes_recursive.clone()).unwrap_or_default();
    let io_sum = |op: &str| {
        io.iter().filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op))).filter_map(|e| e.value).sum()
    };
    Stats {
        cpu_percent: (cpu_percent * 100.0).round() / 100.0,
        memory_bytes: usage - cache,
        memory_limit_bytes: mem.limit.unwrap_or(0),
        net_rx_bytes: nets.iter().filter_map(|n| n.rx_bytes).sum(),
        net_tx_bytes: nets.iter().filter_map(|n| n.tx_bytes).sum(),
        block_read_bytes: io_sum("read"),
        block_write_bytes: io_sum("write"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_gives_its_timestamp_stream_and_text() {
        let got = lines(LogStream::Stderr, b"2026-12-02T13:45:01.123456789Z \x1b[31moops\x1b[0m\r\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].at.unwrap().to_rfc3339(), "2026-12-02T13:45:01.123456789+00:00");
        assert_eq!((got[0].stream, got[0].text.as_str()), (LogStream::Stderr, "\x1b[31moops\x1b[0m"));
    }

    #[test]
    fn a_tty_frame_of_several_lines_gives_each_line() {
        let got = lines(LogStream::Stdout, b"2026-12-02T13:45:01Z one\ntwo\n");
        assert_eq!(got.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert!(got.iter().all(|l| l.at.is_some()));
    }

    #[test]
    fn a_frame_without_a_timestamp_keeps_all_its_text() {
        let got = lines(LogStream::Stdout, b"plain words\n");
        assert_eq!((got[0].at, got[0].text.as_str()), (None, "plain words"));
    }

    #[test]
    fn a_huge_line_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let text = cut(&long);
        assert!(text.len() < MAX_LINE_BYTES + 64, "{}", text.len());
        assert!(text.ends_with("[cut at 16 KiB]"));
    }

    #[test]
    fn cpu_and_memory_are_computed_as_the_docker_cli_does() {
        let s: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 50_000_000u64, "limit": 1_000_000_000u64, "stats": {"inactive_file": 10_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 7}, "eth1": {"rx_bytes": 1, "tx_bytes": 3}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "Write", "value": 512}, {"op": "read", "value": 4}]}
        }))
        .unwrap();
        assert!(has_previous(&s));
        let f = figures(&s);
        assert_eq!(f.cpu_percent, 20.0, "1 s of CPU over 10 s of 2 CPUs");
        assert_eq!((f.memory_bytes, f.memory_limit_bytes), (40_000_000, 1_000_000_000));
        assert_eq!((f.net_rx_bytes, f.net_tx_bytes, f.block_read_bytes, f.block_write_bytes), (101, 10, 4100, 512));
    }
}
