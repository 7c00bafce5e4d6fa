//! `run`: a container as a job. It is started, waited for until it exits
//! (within a time limit), and judged by its exit code; the result keeps the
//! last lines it wrote.

use std::time::{Duration, Instant};

use super::{ActionError, On};
use crate::docker::DockerError;
use crate::model::{Action, Container, ContainerResult, ContainerState, RunOutcome, TargetType};

/// How long a `run` waits for its container to exit, unless told otherwise.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest time limit a `run` may be given.
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
/// A run's result keeps this many of its last log lines, in at most this many bytes.
const RUN_LOG_LINES: usize = 20;
const RUN_LOG_BYTES: usize = 4096;

/// A run's time limit as people write it: `90s`, `30m`, `2h`, `1h30m` (at most 7 days).
pub fn parse_run_timeout(text: &str) -> Result<Duration, ActionError> {
    humantime::parse_duration(text.trim()).ok().filter(|d| !d.is_zero() && *d <= MAX_RUN_TIMEOUT).ok_or_else(|| {
        ActionError::InvalidTarget(format!(
            "timeout '{}' is not a duration like 90s, 30m or 2h (at most 7 days)",
            text.trim()
        ))
    })
}

/// `run` is for one container: a stack, service or group has no single exit code.
pub(super) fn check_run_target(target_type: TargetType, action: Action) -> Result<(), ActionError> {
    if action == Action::Run && target_type != TargetType::Container {
        return Err(ActionError::InvalidTarget(format!(
            "run is for a container (it starts it and waits for its exit), not a {target_type}"
        )));
    }
    Ok(())
}

impl On<'_> {
    /// `run`: starts the container and waits until it exits, for at most
    /// `timeout` (then stops it). Ok on exit code 0.
    pub(super) async fn run_to_exit(&self, c: &Container, timeout: Duration) -> (ContainerResult, RunOutcome) {
        let (started, since) = (Instant::now(), chrono::Utc::now());
        let view = &self.host.view;
        let mut exit_code = None;
        let error = match view.unless_lost(self.engine().list(Some(&c.id))).await.map(|mut v| v.pop()) {
            Ok(Some(fresh))
                if matches!(
                    fresh.state,
                    ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
                ) =>
            {
                Some(format!("already {}: a run starts it and waits for it to exit", fresh.state))
            }
            Ok(Some(_)) => match view.unless_lost(self.engine().act(&c.id, Action::Start)).await {
                Ok(()) | Err(DockerError::NotModified) => match self.wait_exit(c, timeout).await {
                    Ok(0) => {
                        exit_code = Some(0);
                        None
                    }
                    Ok(code) => {
                        exit_code = Some(code);
                        Some(format!("exited with code {code}"))
                    }
                    Err(e) => Some(e),
                },
                Err(e) => Some(e.to_string()),
            },
            Ok(None) => Some("container no longer exists".into()),
            Err(e) => Some(e.to_string()),
        };
        let log_tail = self.log_tail(c, since).await;
        let result = ContainerResult { container: c.name.clone(), ok: error.is_none(), error };
        (result, RunOutcome { exit_code, duration_ms: started.elapsed().as_millis() as u64, log_tail })
    }

    /// The exit code once the container has exited; past `timeout` it is
    /// stopped and the run fails.
    async fn wait_exit(&self, c: &Container, timeout: Duration) -> Result<i64, String> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.host.view.unless_lost(self.engine().exit_code(&c.id)).await {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => {}
                Err(e) => return Err(format!("lost track of it: {e}")),
            }
            if Instant::now() >= deadline {
                let stopped = match self.apply(c, Action::Stop).await {
                    r if r.ok => "stopped it".to_string(),
                    r => format!("could not stop it: {}", r.error.unwrap_or_default()),
                };
                return Err(format!("did not exit within {}; {stopped}", humantime::format_duration(timeout)));
            }
            tokio::time::sleep(pause.min(deadline - Instant::now())).await;
            // Short jobs are seen finishing at once; long ones cost one call a second.
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The last lines the run wrote (best effort: a failure to read them
    /// does not change the run's result).
    async fn log_tail(&self, c: &Container, since: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        use futures_util::StreamExt;
        let since = since - chrono::TimeDelta::seconds(1);
        let query = crate::model::LogQuery { tail: RUN_LOG_LINES, since: Some(since), follow: false };
        let lines =
            self.engine().logs(&c.id, &query).filter_map(|l| async move { l.ok().map(|l| l.text) }).collect::<Vec<_>>();
        let mut lines = tokio::time::timeout(Duration::from_secs(10), lines).await.unwrap_or_default();
        // Newest kept first when the bytes run out.
        let mut bytes = 0;
        let keep = lines.iter().rev().take_while(|l| {
            bytes += l.len() + 1;
            bytes <= RUN_LOG_BYTES
        });
        let n = keep.count();
        lines.drain(..lines.len() - n);
        lines
    }
}
