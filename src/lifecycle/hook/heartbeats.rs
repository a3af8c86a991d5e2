//! Lifecycle action heartbeats in the background, for as long as the action is open.

use super::{Hook, LifecycleApi};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Heartbeats in the background until stopped or dropped. Failures are logged and retried at
/// the next beat: one lost heartbeat must not cost the instance.
pub struct Heartbeats {
    task: tokio::task::JoinHandle<()>,
    count: Arc<AtomicU32>,
}

impl Heartbeats {
    pub fn start<A: LifecycleApi>(api: A, hook: Hook, interval: Duration) -> Heartbeats {
        let count = Arc::new(AtomicU32::new(0));
        let counter = count.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match api.heartbeat(&hook).await {
                    Ok(true) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(hook = %hook.name, "lifecycle heartbeat sent");
                    }
                    Ok(false) => {
                        tracing::warn!(hook = %hook.name, "lifecycle action no longer active; heartbeats stop");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "lifecycle heartbeat failed; will retry"),
                }
            }
        });
        Heartbeats { task, count }
    }

    /// Stops beating; how many were sent.
    pub fn stop(self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}
