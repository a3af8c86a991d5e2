//! Auto Scaling lifecycle hooks: find this instance's group and hook without extra config,
//! heartbeat while waiting, and complete exactly once. AWS's "No active Lifecycle Action found"
//! means the action already ended (completed before a restart, or timed out): that counts as done.

use crate::config::Config;
use crate::config::tags::TagInputs;
use crate::error::{Error, Result};
use crate::sources::aws::{self, Aws};
use crate::status::state::{HookIntent, HookRecord, StateStore};
use std::time::Duration;
use time::OffsetDateTime;

/// ECS adds this hook for managed instance draining; it is ECS's to complete, never ours.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Launch,
    Terminate,
}

impl Transition {
    pub fn aws_name(self) -> &'static str {
        match self {
            Transition::Launch => "autoscaling:EC2_INSTANCE_LAUNCHING",
            Transition::Terminate => "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Transition::Launch => "launch",
            Transition::Terminate => "terminate",
        }
    }
}

/// A hook this instance must complete.
#[derive(Debug, Clone)]
pub struct Hook {
    pub asg: String,
    pub name: String,
    pub instance_id: String,
    /// Known when discovered through DescribeLifecycleHooks.
    pub heartbeat_timeout: Option<Duration>,
}

impl Hook {
    /// A third of the hook's timeout (at most 5 min), or 20 s: inside AWS's 30 s minimum.
    pub fn heartbeat_interval(&self, config: &Config) -> Duration {
        config
            .lifecycle
            .heartbeat_interval
            .unwrap_or_else(|| match self.heartbeat_timeout {
                Some(t) => (t / 3).clamp(Duration::from_secs(1), Duration::from_secs(300)),
                None => Duration::from_secs(20),
            })
    }
}

/// Finds the ASG (tags, else DescribeAutoScalingInstances) and the hook for `transition` (config,
/// tag, else DescribeLifecycleHooks). `None`: not in an ASG, or no such hook.
pub async fn discover(
    aws: &Aws,
    config: &Config,
    tags: &TagInputs,
    instance_id: &str,
    transition: Transition,
) -> Result<Option<Hook>> {
    let asg = match &tags.asg {
        Some(a) => a.clone(),
        None => {
            let out = aws
                .autoscaling()
                .describe_auto_scaling_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .map_err(|e| {
                    Error::Lifecycle(format!(
                        "DescribeAutoScalingInstances: {}",
                        aws::describe(&e)
                    ))
                })?;
            match out
                .auto_scaling_instances()
                .first()
                .and_then(|i| i.auto_scaling_group_name())
            {
                Some(a) => a.to_string(),
                None => return Ok(None),
            }
        }
    };
    let named = match transition {
        Transition::Launch => config
            .lifecycle
            .launch_hook
            .clone()
            .or_else(|| tags.launch_hook.clone()),
        Transition::Terminate => config
            .lifecycle
            .terminate_hook
            .clone()
            .or_else(|| tags.terminate_hook.clone()),
    };
    if let Some(name) = named {
        return Ok(Some(Hook {
            asg,
            name,
            instance_id: instance_id.to_string(),
            heartbeat_timeout: None,
        }));
    }
    let out = aws
        .autoscaling()
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(&asg)
        .send()
        .await
        .map_err(|e| {
            Error::Lifecycle(format!(
                "DescribeLifecycleHooks {asg}: {}",
                aws::describe(&e)
            ))
        })?;
    let hook = out
        .lifecycle_hooks()
        .iter()
        .filter(|h| h.lifecycle_transition() == Some(transition.aws_name()))
        .find(|h| h.lifecycle_hook_name() != Some(ECS_MANAGED_DRAINING_HOOK))
        .map(|h| Hook {
            asg: asg.clone(),
            name: h.lifecycle_hook_name().unwrap_or_default().to_string(),
            instance_id: instance_id.to_string(),
            heartbeat_timeout: h
                .heartbeat_timeout()
                .map(|s| Duration::from_secs(s.max(0) as u64)),
        });
    Ok(hook)
}

fn no_active_action(e: &str) -> bool {
    e.contains("No active Lifecycle Action found")
}

/// Completes the hook. `Ok(true)` when AWS says the action had already ended.
pub async fn complete(aws: &Aws, hook: &Hook, result: &str) -> Result<bool> {
    let out = aws
        .autoscaling()
        .complete_lifecycle_action()
        .auto_scaling_group_name(&hook.asg)
        .lifecycle_hook_name(&hook.name)
        .instance_id(&hook.instance_id)
        .lifecycle_action_result(result)
        .send()
        .await;
    match out {
        Ok(_) => Ok(false),
        Err(e) => {
            let msg = aws::describe(&e);
            if no_active_action(&msg) {
                Ok(true)
            } else {
                Err(Error::Lifecycle(format!(
                    "CompleteLifecycleAction {result} on {}/{}: {msg}",
                    hook.asg, hook.name
                )))
            }
        }
    }
}

/// `Ok(false)` when the action is no longer active: stop heartbeating.
pub async fn heartbeat(aws: &Aws, hook: &Hook) -> Result<bool> {
    let out = aws
        .autoscaling()
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&hook.asg)
        .lifecycle_hook_name(&hook.name)
        .instance_id(&hook.instance_id)
        .send()
        .await;
    match out {
        Ok(_) => Ok(true),
        Err(e) => {
            let msg = aws::describe(&e);
            if no_active_action(&msg) {
                Ok(false)
            } else {
                Err(Error::Lifecycle(format!(
                    "RecordLifecycleActionHeartbeat on {}/{}: {msg}",
                    hook.asg, hook.name
                )))
            }
        }
    }
}

/// Heartbeats in the background until dropped. Failures are logged and retried at the next beat:
/// one lost heartbeat must not cost the instance.
pub struct Heartbeats {
    task: tokio::task::JoinHandle<()>,
    count: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Heartbeats {
    pub fn start(aws: Aws, hook: Hook, interval: Duration) -> Heartbeats {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = count.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match heartbeat(&aws, &hook).await {
                    Ok(true) => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    pub fn sent(&self) -> u32 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Completes once per transition and records it; a record from before a restart means done.
pub async fn complete_once(
    aws: &Aws,
    store: &StateStore,
    transition_key: &str,
    hook: &Hook,
    result: &str,
    cause: Option<String>,
    latency_from: Option<std::time::Instant>,
    heartbeats: u32,
) -> Result<HookRecord> {
    let snapshot = store.snapshot();
    if let Some(done) = snapshot.hook_done(transition_key) {
        tracing::info!(hook = %done.hook, result = %done.result, "lifecycle hook already completed before a restart; not completing again");
        return Ok(done.clone());
    }
    // A previous run sent this completion and stopped before recording the answer: the call may
    // have taken effect. Ask Auto Scaling instead of guessing, and record what is true.
    let mut cause = cause;
    if let Some(intent) = snapshot.hook_intent(transition_key) {
        match lifecycle_state(aws, &hook.instance_id).await {
            Ok(state) if !waiting_on(state.as_deref(), transition_key) => {
                let state = state.unwrap_or_else(|| "not in a group".into());
                tracing::info!(hook = %hook.name, result = %intent.result, %state, "completion sent before a restart took effect; not completing again");
                let note = format!(
                    "{} sent before a restart; Auto Scaling reports {state}",
                    intent.result
                );
                let record = HookRecord {
                    transition: transition_key.to_string(),
                    asg: hook.asg.clone(),
                    hook: hook.name.clone(),
                    result: intent.result.clone(),
                    completed_at: intent.at,
                    already_done: true,
                    latency_ms: None,
                    heartbeats,
                    cause: Some(cause.map_or(note.clone(), |c| format!("{c}; {note}"))),
                };
                store.update(|s| {
                    s.hooks.push(record.clone());
                    s.hook_intents.retain(|i| i.transition != transition_key);
                });
                return Ok(record);
            }
            Ok(_) => {
                tracing::info!(hook = %hook.name, "a completion sent before a restart did not take effect; completing again")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this instance's lifecycle state; completing again");
                cause = cause.or(Some(format!("completing again after a restart ({e})")));
            }
        }
    }
    store.update(|s| {
        s.hook_intents.retain(|i| i.transition != transition_key);
        s.hook_intents.push(HookIntent {
            transition: transition_key.to_string(),
            hook: hook.name.clone(),
            result: result.to_string(),
            at: OffsetDateTime::now_utc(),
        });
    });
    let already_done = complete(aws, hook, result).await?;
    let record = HookRecord {
        transition: transition_key.to_string(),
        asg: hook.asg.clone(),
        hook: hook.name.clone(),
        result: result.to_string(),
        completed_at: OffsetDateTime::now_utc(),
        already_done,
        latency_ms: latency_from.map(|t| t.elapsed().as_millis() as u64),
        heartbeats,
        cause,
    };
    tracing::info!(hook = %hook.name, result, already_done, latency_ms = record.latency_ms.unwrap_or(0), "lifecycle hook completed");
    store.update(|s| {
        s.hooks.push(record.clone());
        s.hook_intents.retain(|i| i.transition != transition_key);
    });
    Ok(record)
}

/// This instance's lifecycle state in its group (`None`: not in a group, e.g. already gone).
pub async fn lifecycle_state(aws: &Aws, instance_id: &str) -> Result<Option<String>> {
    let out = aws
        .autoscaling()
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| {
            Error::Lifecycle(format!(
                "DescribeAutoScalingInstances: {}",
                aws::describe(&e)
            ))
        })?;
    Ok(out
        .auto_scaling_instances()
        .first()
        .and_then(|i| i.lifecycle_state())
        .map(str::to_string))
}

/// Whether Auto Scaling still waits on the action of this transition in `state`.
pub fn waiting_on(state: Option<&str>, transition_key: &str) -> bool {
    match (state, transition_key) {
        (Some(s), "terminate") => {
            s.starts_with("Terminating:Wait") || s == "Warmed:Terminating:Wait"
        }
        (Some(s), "launch-warmed") => s == "Warmed:Pending:Wait",
        (Some(s), _) => s == "Pending:Wait",
        (None, _) => false,
    }
}

/// Records that there was nothing to complete, so status says why.
pub fn record_skipped(store: &StateStore, transition_key: &str, why: &str) {
    store.update(|s| {
        if s.hook_done(transition_key).is_none() {
            s.hooks.push(HookRecord {
                transition: transition_key.to_string(),
                asg: String::new(),
                hook: String::new(),
                result: "skipped".into(),
                completed_at: OffsetDateTime::now_utc(),
                already_done: false,
                latency_ms: None,
                heartbeats: 0,
                cause: Some(why.to_string()),
            })
        }
    });
}
