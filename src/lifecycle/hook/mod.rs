//! Auto Scaling lifecycle actions: which hook is this instance's for a transition, and a
//! `HookAction` value that owns one action from start to end — heartbeats while it is open,
//! completion exactly once, recorded. Launch, warm-pool launch and terminate all use it.
//!
//! The calls go through `LifecycleApi`, which `Aws` implements, so the rules here (which hook,
//! exactly once across restarts) are unit-tested against an in-memory group.

mod action;
mod aws;
#[cfg(test)]
pub mod fake;
mod group;
mod heartbeats;
#[cfg(test)]
mod tests;

pub use action::HookAction;
pub use group::GroupHooks;
pub use heartbeats::Heartbeats;

use crate::config::Config;
use crate::error::Result;
use crate::status::state::HookResult;
use std::future::Future;
use std::time::Duration;

/// ECS adds this hook for managed instance draining; it is ECS's to complete, never ours.
pub const ECS_MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";

/// One hook of the group, as DescribeLifecycleHooks lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHook {
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `..._TERMINATING`.
    pub transition: String,
    pub heartbeat_timeout: Option<Duration>,
}

/// What completing an action answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Accepted,
    /// "No active Lifecycle Action found": completed before, or timed out.
    NoActiveAction,
    /// Refused by the account's rate limit before Auto Scaling considered it: certainly not
    /// applied, so it is sent again without asking Auto Scaling first (that would be one more
    /// call against the same exhausted budget).
    Throttled,
}

/// The Auto Scaling calls a lifecycle action needs.
pub trait LifecycleApi: Clone + Send + Sync + 'static {
    /// The group of `instance_id`, and its lifecycle state there (`None`: not in a group).
    fn instance(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;
    fn hooks(&self, asg: &str) -> impl Future<Output = Result<Vec<GroupHook>>> + Send;
    fn complete(
        &self,
        hook: &Hook,
        result: HookResult,
    ) -> impl Future<Output = Result<Completion>> + Send;
    /// `Ok(false)`: the action is no longer active.
    fn heartbeat(&self, hook: &Hook) -> impl Future<Output = Result<bool>> + Send;
}

/// A hook this instance must complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub asg: String,
    pub name: String,
    pub instance_id: String,
    pub heartbeat_timeout: Option<Duration>,
}

impl Hook {
    /// Half the hook's timeout (at most 5 min), or 15 s: inside AWS's 30 s minimum. Half, not
    /// less: a beat is one call against the account's Auto Scaling budget, which a scale-in of
    /// hundreds of instances shares with their completions; a failed beat is retried sooner
    /// (heartbeats.rs), so the other half is the margin.
    pub fn heartbeat_interval(&self, config: &Config) -> Duration {
        config
            .lifecycle
            .heartbeat_interval
            .unwrap_or_else(|| match self.heartbeat_timeout {
                Some(t) => (t / 2).clamp(Duration::from_secs(1), Duration::from_secs(300)),
                None => Duration::from_secs(15),
            })
    }

    /// How long the action waits after its last heartbeat before Auto Scaling applies the
    /// DefaultResult: the hook's timeout, or AWS's default (1 h) when it is not known.
    pub fn expires_after(&self) -> Duration {
        self.heartbeat_timeout.unwrap_or(Duration::from_secs(3600))
    }
}
