//! When an essential container counts as up: healthy, or running for `min_uptime` without being
//! unhealthy. A container that exits, or restarts again and again, is a failure (a crash-looping
//! metrics agent must abandon the launch, not sit behind a CONTINUE).

use crate::util::retry::{Backoff, Poll, WaitError, poll_until};
use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::engine::{self, is_not_found, one_line};

/// Restarts seen while waiting that make a crash loop.
pub const CRASH_LOOP_RESTARTS: i64 = 3;

/// One inspection of the container, reduced to what the verdict needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub status: String,
    pub started_at: Option<OffsetDateTime>,
    pub restart_count: i64,
    pub exit_code: i64,
    /// `healthy`, `unhealthy`, `starting`, or None without a healthcheck.
    pub health: Option<String>,
    pub error: String,
}

impl Sample {
    pub fn from_inspect(c: &ContainerInspectResponse) -> Sample {
        let state = c.state.clone().unwrap_or_default();
        Sample {
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            started_at: state
                .started_at
                .as_deref()
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()),
            restart_count: c.restart_count.unwrap_or(0),
            exit_code: state.exit_code.unwrap_or(0),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            error: state.error.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Up,
    Waiting(String),
    Failed(String),
}

/// Judges `now` against `first` (the sample when the wait began).
pub fn judge(first: &Sample, now: &Sample, at: OffsetDateTime, min_uptime: Duration) -> Verdict {
    let restarts = now.restart_count - first.restart_count;
    if restarts >= CRASH_LOOP_RESTARTS {
        return Verdict::Failed(format!(
            "crash loop: restarted {restarts} times while ecs-boot waited for it to stay up (last exit code {})",
            now.exit_code
        ));
    }
    match now.status.as_str() {
        "running" => {}
        "exited" | "dead" => {
            let why = if now.error.is_empty() {
                String::new()
            } else {
                format!(": {}", now.error)
            };
            return Verdict::Failed(format!(
                "exited with code {}{why} (restart policy does not bring it back)",
                now.exit_code
            ));
        }
        other => return Verdict::Waiting(format!("state {other}")),
    }
    if now.health.as_deref() == Some("healthy") {
        return Verdict::Up;
    }
    let uptime = now
        .started_at
        .map(|s| (at - s).max(time::Duration::ZERO).unsigned_abs())
        .unwrap_or_default();
    if now.health.as_deref() == Some("unhealthy") {
        return Verdict::Waiting("running but unhealthy".into());
    }
    if uptime >= min_uptime {
        return Verdict::Up;
    }
    Verdict::Waiting(format!(
        "up {}ms of the {}ms min_uptime",
        uptime.as_millis(),
        min_uptime.as_millis()
    ))
}

/// How long an essential container may take to count as up.
pub fn deadline(min_uptime: Duration) -> Duration {
    min_uptime * 2 + Duration::from_secs(30)
}

/// Waits until the container counts as up; Err says why it does not.
pub async fn wait(docker: &Docker, id: &str, min_uptime: Duration) -> Result<(), String> {
    let first = engine::inspect(docker, id)
        .await
        .map(|c| Sample::from_inspect(&c))
        .map_err(|e| one_line(&e))?;
    let attempt = || {
        let first = first.clone();
        async move {
            match engine::inspect(docker, id).await {
                Ok(c) => match judge(
                    &first,
                    &Sample::from_inspect(&c),
                    OffsetDateTime::now_utc(),
                    min_uptime,
                ) {
                    Verdict::Up => Poll::Ready(()),
                    Verdict::Waiting(why) => Poll::Pending(why),
                    Verdict::Failed(why) => Poll::Fatal(why),
                },
                Err(e) if is_not_found(&e) => Poll::Fatal("the container disappeared".into()),
                Err(e) => Poll::Pending(one_line(&e)),
            }
        }
    };
    let backoff = Backoff::new(Duration::from_millis(250), Duration::from_millis(500));
    match poll_until(deadline(min_uptime), backoff, attempt).await {
        Ok(()) => Ok(()),
        Err(WaitError::Fatal(why)) => Err(why),
        Err(WaitError::Deadline { waited, last }) => {
            Err(format!("not up after {}s ({last})", waited.as_secs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: &str, started_secs_ago: i64, restarts: i64) -> Sample {
        Sample {
            status: status.into(),
            started_at: Some(at() - time::Duration::seconds(started_secs_ago)),
            restart_count: restarts,
            exit_code: 1,
            health: None,
            error: String::new(),
        }
    }

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    const MIN: Duration = Duration::from_secs(3);

    #[test]
    fn up_after_min_uptime() {
        let first = sample("running", 0, 0);
        assert!(matches!(
            judge(&first, &sample("running", 1, 0), at(), MIN),
            Verdict::Waiting(_)
        ));
        assert_eq!(
            judge(&first, &sample("running", 3, 0), at(), MIN),
            Verdict::Up
        );
    }

    #[test]
    fn healthy_counts_at_once_and_unhealthy_never() {
        let first = sample("running", 0, 0);
        let healthy = Sample {
            health: Some("healthy".into()),
            ..sample("running", 0, 0)
        };
        assert_eq!(judge(&first, &healthy, at(), MIN), Verdict::Up);
        let unhealthy = Sample {
            health: Some("unhealthy".into()),
            ..sample("running", 60, 0)
        };
        assert!(matches!(
            judge(&first, &unhealthy, at(), MIN),
            Verdict::Waiting(_)
        ));
    }

    #[test]
    fn crash_loops_and_exits_fail() {
        let first = sample("running", 0, 1);
        match judge(&first, &sample("restarting", 0, 4), at(), MIN) {
            Verdict::Failed(why) => assert!(why.contains("crash loop"), "{why}"),
            v => panic!("{v:?}"),
        }
        match judge(&first, &sample("exited", 0, 1), at(), MIN) {
            Verdict::Failed(why) => assert!(why.contains("exited with code 1"), "{why}"),
            v => panic!("{v:?}"),
        }
        // One restart is the policy doing its job, not yet a loop.
        assert!(matches!(
            judge(&first, &sample("restarting", 0, 2), at(), MIN),
            Verdict::Waiting(_)
        ));
    }
}
