//! An in-memory Auto Scaling group: one instance, its lifecycle state, its hooks, and a log
//! of every call, with the real service's answers (no active action once completed).

use super::*;
use crate::error::Error;
use crate::status::state::Transition;
use crate::util::call_log::CallLog;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct FakeGroup {
    pub inner: Arc<Mutex<Group>>,
}

#[derive(Default)]
pub struct Group {
    pub asg: String,
    pub state: String,
    pub hooks: Vec<GroupHook>,
    pub calls: CallLog,
    /// The next complete fails with this error (once).
    pub fail_next_complete: Option<String>,
    /// Every complete fails (a permission missing).
    pub fail_always: bool,
    /// The next complete takes effect, but its answer is lost (a timeout).
    pub lose_next_answer: bool,
    /// The next this many completes are refused by the rate limit (`u32::MAX`: all of them).
    pub throttle_completes: u32,
    /// The next this many heartbeats fail (a throttle, a timeout).
    pub fail_heartbeats: u32,
}

impl FakeGroup {
    pub fn new(asg: &str, state: &str, hooks: &[(&str, Transition)]) -> FakeGroup {
        let g = FakeGroup::default();
        {
            let mut i = g.inner.lock().unwrap();
            i.asg = asg.into();
            i.state = state.into();
            i.hooks = hooks
                .iter()
                .map(|(n, t)| GroupHook {
                    name: n.to_string(),
                    transition: t.aws_name().into(),
                    heartbeat_timeout: Some(Duration::from_secs(300)),
                })
                .collect();
        }
        g
    }

    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.all()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.inner.lock().unwrap().calls.count(prefix)
    }

    pub fn state(&self) -> String {
        self.inner.lock().unwrap().state.clone()
    }
}

impl LifecycleApi for FakeGroup {
    async fn instance(&self, _id: &str) -> Result<Option<(String, String)>> {
        let mut g = self.inner.lock().unwrap();
        g.calls.push("DescribeAutoScalingInstances");
        Ok(Some((g.asg.clone(), g.state.clone())))
    }

    async fn hooks(&self, _asg: &str) -> Result<Vec<GroupHook>> {
        let mut g = self.inner.lock().unwrap();
        g.calls.push("DescribeLifecycleHooks");
        Ok(g.hooks.clone())
    }

    async fn complete(&self, hook: &Hook, result: HookResult) -> Result<Completion> {
        let mut g = self.inner.lock().unwrap();
        g.calls
            .push(format!("CompleteLifecycleAction {} {result}", hook.name));
        if g.fail_always {
            return Err(Error::aws(
                "CompleteLifecycleAction",
                &hook.name,
                "AccessDenied".into(),
            ));
        }
        if g.throttle_completes > 0 {
            if g.throttle_completes != u32::MAX {
                g.throttle_completes -= 1;
            }
            return Ok(Completion::Throttled);
        }
        if let Some(e) = g.fail_next_complete.take() {
            return Err(Error::aws("CompleteLifecycleAction", &hook.name, e));
        }
        let next = match (g.state.as_str(), result) {
            ("Pending:Wait", HookResult::Continue) => "InService",
            ("Pending:Wait", _) => "Terminating",
            ("Warmed:Pending:Wait", _) => "Warmed:Stopped",
            ("Terminating:Wait", _) => "Terminating:Proceed",
            _ => return Ok(Completion::NoActiveAction),
        };
        g.state = next.into();
        if std::mem::take(&mut g.lose_next_answer) {
            return Err(Error::aws(
                "CompleteLifecycleAction",
                &hook.name,
                "timeout".into(),
            ));
        }
        Ok(Completion::Accepted)
    }

    async fn heartbeat(&self, hook: &Hook) -> Result<bool> {
        let mut g = self.inner.lock().unwrap();
        g.calls
            .push(format!("RecordLifecycleActionHeartbeat {}", hook.name));
        if g.fail_heartbeats > 0 {
            g.fail_heartbeats -= 1;
            return Err(Error::aws(
                "RecordLifecycleActionHeartbeat",
                &hook.name,
                "Throttling: Rate exceeded".into(),
            ));
        }
        Ok(g.state.ends_with(":Wait"))
    }
}
