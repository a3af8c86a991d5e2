//! Lifecycle action heartbeats in the background, for as long as the action is open.

use super::{Hook, LifecycleApi};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Heartbeats in the background until stopped or dropped: one every `interval` after the last
/// that Auto Scaling accepted. A failed beat (a throttle, a lost answer) is retried sooner, a
/// fifth of the interval later (jittered), so one failure never lets the action time out.
pub struct Heartbeats {
    task: tokio::task::JoinHandle<()>,
    sent: Arc<Mutex<Sent>>,
}

/// What the heartbeats achieved: how many Auto Scaling accepted, and when the action's timeout
/// last restarted (the action's opening, or the last accepted beat).
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub count: u32,
    pub last: Instant,
}

impl Sent {
    pub fn none_since(opened: Instant) -> Sent {
        Sent {
            count: 0,
            last: opened,
        }
    }
}

impl Heartbeats {
    /// `opened`: when the action's timeout last restarted as far as is known (its first beat
    /// is due an interval after that, at once if that is past).
    pub fn start<A: LifecycleApi>(
        api: A,
        hook: Hook,
        interval: Duration,
        opened: Instant,
    ) -> Heartbeats {
        let sent = Arc::new(Mutex::new(Sent::none_since(opened)));
        let record = sent.clone();
        let retry = (interval / 5).max(Duration::from_millis(200));
        let task = tokio::spawn(async move {
            let mut next = (opened + interval).saturating_duration_since(Instant::now());
            loop {
                tokio::time::sleep(next).await;
                match api.heartbeat(&hook).await {
                    Ok(true) => {
                        if let Ok(mut s) = record.lock() {
                            s.count += 1;
                            s.last = Instant::now();
                        }
                        next = interval;
                        tracing::info!(hook = %hook.name, "lifecycle heartbeat sent");
                    }
                    Ok(false) => {
                        tracing::warn!(hook = %hook.name, "lifecycle action no longer active; heartbeats stop");
                        return;
                    }
                    Err(e) => {
                        next = crate::util::retry::jitter(retry);
                        tracing::warn!(error = %e, retry_in_ms = next.as_millis() as u64, "lifecycle heartbeat failed; retrying");
                    }
                }
            }
        });
        Heartbeats { task, sent }
    }

    /// Stops beating; what was sent.
    pub fn stop(self) -> Sent {
        self.task.abort();
        *self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}
