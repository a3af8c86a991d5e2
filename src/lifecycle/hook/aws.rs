//! `LifecycleApi` over the real Auto Scaling API: "no active action" answers become values.

use super::{Completion, GroupHook, Hook, LifecycleApi};
use crate::error::{Error, Result};
use crate::sources::aws::{self, Aws};
use crate::status::state::HookResult;
use std::time::Duration;

fn no_active_action(e: &str) -> bool {
    e.contains("No active Lifecycle Action found")
}

impl LifecycleApi for Aws {
    async fn instance(&self, instance_id: &str) -> Result<Option<(String, String)>> {
        let out = self
            .autoscaling()
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| {
                Error::aws(
                    "DescribeAutoScalingInstances",
                    instance_id,
                    aws::describe(&e),
                )
            })?;
        Ok(out.auto_scaling_instances().first().map(|i| {
            (
                i.auto_scaling_group_name().unwrap_or_default().to_string(),
                i.lifecycle_state().unwrap_or_default().to_string(),
            )
        }))
    }

    async fn hooks(&self, asg: &str) -> Result<Vec<GroupHook>> {
        let out = self
            .autoscaling()
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(asg)
            .send()
            .await
            .map_err(|e| Error::aws("DescribeLifecycleHooks", asg, aws::describe(&e)))?;
        Ok(out
            .lifecycle_hooks()
            .iter()
            .map(|h| GroupHook {
                name: h.lifecycle_hook_name().unwrap_or_default().to_string(),
                transition: h.lifecycle_transition().unwrap_or_default().to_string(),
                heartbeat_timeout: h
                    .heartbeat_timeout()
                    .map(|s| Duration::from_secs(s.max(0) as u64)),
            })
            .collect())
    }

    async fn complete(&self, hook: &Hook, result: HookResult) -> Result<Completion> {
        // Never resent blindly by the SDK: a retry after a lost answer is a second completion.
        // HookAction resends a throttled one, and any other only after asking whether the action
        // still waits.
        let out = self
            .autoscaling_retried_by_caller()
            .complete_lifecycle_action()
            .auto_scaling_group_name(&hook.asg)
            .lifecycle_hook_name(&hook.name)
            .instance_id(&hook.instance_id)
            .lifecycle_action_result(result.as_str())
            .send()
            .await;
        match out {
            Ok(_) => Ok(Completion::Accepted),
            Err(e) if aws::throttled(&e) => Ok(Completion::Throttled),
            Err(e) => {
                let msg = aws::describe(&e);
                if no_active_action(&msg) {
                    Ok(Completion::NoActiveAction)
                } else {
                    Err(Error::aws(
                        "CompleteLifecycleAction",
                        &format!("{}/{} {result}", hook.asg, hook.name),
                        msg,
                    ))
                }
            }
        }
    }

    async fn heartbeat(&self, hook: &Hook) -> Result<bool> {
        // Heartbeats retries a failed beat itself, paced by the hook's timeout.
        let out = self
            .autoscaling_retried_by_caller()
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
                    Err(Error::aws(
                        "RecordLifecycleActionHeartbeat",
                        &format!("{}/{}", hook.asg, hook.name),
                        msg,
                    ))
                }
            }
        }
    }
}
