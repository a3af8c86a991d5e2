//! Auto Scaling lifecycle actions: which hook is this instance's for a transition, and a
//! `HookAction` value that owns one action from start to end — heartbeats while it is open,
//! completion exactly once, recorded. Launch, warm-pool launch and terminate all use it.
//!
//! The calls go through `LifecycleApi`, which `Aws` implements, so the rules here (which hook,
//! exactly once across restarts) are unit-tested against an in-memory group.

use crate::config::Config;
use crate::config::tags::{self, TagInputs};
use crate::error::{Error, Result};
use crate::sources::aws::{self, Aws};
use crate::status::state::{HookIntent, HookRecord, HookResult, StateStore, Transition};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

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

/// The group's hooks, read once at launch (DescribeLifecycleHooks) and kept for the whole life:
/// the terminate hook is known before termination, which then needs no discovery call.
#[derive(Debug, Clone, Default)]
pub struct GroupHooks {
    pub asg: Option<String>,
    pub hooks: Vec<GroupHook>,
}

impl GroupHooks {
    /// Reads the group (the tag, else DescribeAutoScalingInstances) and its hooks.
    pub async fn discover<A: LifecycleApi>(
        api: &A,
        tags: &TagInputs,
        instance_id: &str,
    ) -> Result<GroupHooks> {
        let asg = match &tags.asg {
            Some(a) => Some(a.clone()),
            None => api.instance(instance_id).await?.map(|(asg, _)| asg),
        };
        let hooks = match &asg {
            Some(a) => api.hooks(a).await?,
            None => Vec::new(),
        };
        Ok(GroupHooks { asg, hooks })
    }

    /// Whether ECS managed draining is on for the group: ECS sets DRAINING itself.
    pub fn managed_draining(&self) -> bool {
        self.hooks
            .iter()
            .any(|h| h.name == ECS_MANAGED_DRAINING_HOOK)
    }

    /// The hook for `transition`. One rule, the README's: the trusted config names it, else a
    /// tag, else the group's first hook for the transition. A named hook must exist on the group
    /// for that transition, and ECS's managed-draining hook is never ours, whoever names it.
    pub fn resolve(
        &self,
        config: &Config,
        tags: &TagInputs,
        instance_id: &str,
        transition: Transition,
    ) -> Result<Option<Hook>> {
        let Some(asg) = &self.asg else {
            return Ok(None);
        };
        let (configured, tag) = match transition {
            Transition::Terminate => (&config.lifecycle.terminate_hook, &tags.terminate_hook),
            _ => (&config.lifecycle.launch_hook, &tags.launch_hook),
        };
        let named = configured
            .as_ref()
            .map(|n| (n, "[lifecycle] in the trusted config"))
            .or_else(|| {
                let tag_key = match transition {
                    Transition::Terminate => tags::TERMINATE_HOOK,
                    _ => tags::LAUNCH_HOOK,
                };
                tag.as_ref().map(|n| (n, tag_key))
            });
        let of_transition = |h: &&GroupHook| {
            h.transition == transition.aws_name() && h.name != ECS_MANAGED_DRAINING_HOOK
        };
        let found = match named {
            Some((name, source)) => {
                let hook = self
                    .hooks
                    .iter()
                    .filter(of_transition)
                    .find(|h| &h.name == name);
                if hook.is_none() {
                    return Err(Error::HookNotFound {
                        named_by: source.to_string(),
                        asg: asg.clone(),
                        transition,
                    });
                }
                hook
            }
            None => self.hooks.iter().find(of_transition),
        };
        Ok(found.map(|h| Hook {
            asg: asg.clone(),
            name: h.name.clone(),
            instance_id: instance_id.to_string(),
            heartbeat_timeout: h.heartbeat_timeout,
        }))
    }
}

/// One lifecycle action from start to end: heartbeats while open, completed exactly once (also
/// across restarts, through the intent recorded before the call), always recorded.
pub struct HookAction<A: LifecycleApi> {
    api: A,
    store: StateStore,
    transition: Transition,
    hook: Option<Hook>,
    beats: Option<Heartbeats>,
}

impl<A: LifecycleApi> HookAction<A> {
    /// Starts heartbeats for `hook` (none if there is no hook, or it is already completed).
    pub fn begin(
        api: A,
        store: StateStore,
        transition: Transition,
        hook: Option<Hook>,
        interval: Duration,
    ) -> HookAction<A> {
        let done = store.snapshot().hook_done(transition).is_some();
        let beats = hook
            .as_ref()
            .filter(|_| !done)
            .map(|h| Heartbeats::start(api.clone(), h.clone(), interval));
        HookAction {
            api,
            store,
            transition,
            hook,
            beats,
        }
    }

    pub fn hook(&self) -> Option<&Hook> {
        self.hook.as_ref()
    }

    /// Completes with `result` and records it; with no hook, records why there was nothing to
    /// complete. A record from before a restart means done: nothing is sent again.
    pub async fn complete(
        mut self,
        result: HookResult,
        cause: Option<String>,
        latency_from: Option<Instant>,
    ) -> Result<HookRecord> {
        let heartbeats = self.beats.take().map(|b| b.stop()).unwrap_or(0);
        let snapshot = self.store.snapshot();
        if let Some(done) = snapshot.hook_done(self.transition) {
            tracing::info!(hook = %done.hook, result = %done.result, "lifecycle hook already completed before a restart; not completing again");
            return Ok(done.clone());
        }
        let Some(hook) = &self.hook else {
            let record = self.record(
                String::new(),
                String::new(),
                HookResult::Skipped,
                false,
                None,
                0,
                Some(format!(
                    "no {} lifecycle hook for this instance",
                    self.transition
                )),
            );
            return Ok(record);
        };
        // A previous run sent this completion and stopped before recording the answer: the
        // call may have taken effect. Ask Auto Scaling instead of guessing; record what is true.
        let mut cause = cause;
        if let Some(intent) = snapshot.hook_intent(self.transition) {
            match self.api.instance(&hook.instance_id).await {
                Ok(found)
                    if !found
                        .as_ref()
                        .is_some_and(|(_, s)| self.transition.waiting_in(s)) =>
                {
                    let state = found.map_or("not in a group".to_string(), |(_, s)| s);
                    let effective = effective_result(self.transition, &state, intent.result);
                    tracing::info!(hook = %hook.name, result = %intent.result, %state, "completion sent before a restart took effect; not completing again");
                    let note = format!(
                        "{} sent before a restart; Auto Scaling reports {state}",
                        intent.result
                    );
                    let cause = Some(cause.map_or(note.clone(), |c| format!("{c}; {note}")));
                    let record = self.record(
                        hook.asg.clone(),
                        hook.name.clone(),
                        effective,
                        true,
                        None,
                        heartbeats,
                        cause,
                    );
                    if effective != result {
                        return Err(Error::Lifecycle(format!(
                            "the {} action ended as {effective}: Auto Scaling reports {state}",
                            self.transition
                        )));
                    }
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
        let transition = self.transition;
        self.store.update_durable(|s| {
            s.hook_intents.retain(|i| i.transition != transition);
            s.hook_intents.push(HookIntent {
                transition,
                hook: hook.name.clone(),
                result,
                at: OffsetDateTime::now_utc(),
            });
        });
        let answer = match self.complete_checked(hook, result).await? {
            Checked::Answered(a) => a,
            Checked::TookEffect { state, last_error } => {
                let effective = effective_result(self.transition, &state, result);
                let note = if effective == result {
                    format!(
                        "{result} took effect though its answer was lost; Auto Scaling reports {state}"
                    )
                } else {
                    format!(
                        "the action ended without our {result} (Auto Scaling reports {state}: the hook's timeout and DefaultResult, or someone else); our last attempt: {last_error}"
                    )
                };
                let record = self.record(
                    hook.asg.clone(),
                    hook.name.clone(),
                    effective,
                    true,
                    latency_from.map(|t| t.elapsed().as_millis() as u64),
                    heartbeats,
                    Some(cause.map_or(note.clone(), |c| format!("{c}; {note}"))),
                );
                if effective != result {
                    return Err(Error::Lifecycle(note));
                }
                return Ok(record);
            }
        };
        let already_done = answer == Completion::NoActiveAction;
        let latency_ms = latency_from.map(|t| t.elapsed().as_millis() as u64);
        tracing::info!(hook = %hook.name, result = %result, already_done, latency_ms = latency_ms.unwrap_or(0), "lifecycle hook completed");
        Ok(self.record(
            hook.asg.clone(),
            hook.name.clone(),
            result,
            already_done,
            latency_ms,
            heartbeats,
            cause,
        ))
    }

    /// Sends the completion; a failed call (a timeout whose answer was lost, a throttle) is never
    /// resent blindly: Auto Scaling is asked first whether the action still waits.
    async fn complete_checked(&self, hook: &Hook, result: HookResult) -> Result<Checked> {
        let mut backoff =
            crate::util::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        let mut attempt = 1;
        loop {
            let err = match self.api.complete(hook, result).await {
                Ok(a) => return Ok(Checked::Answered(a)),
                Err(e) => e,
            };
            match self.api.instance(&hook.instance_id).await {
                Ok(found)
                    if !found
                        .as_ref()
                        .is_some_and(|(_, s)| self.transition.waiting_in(s)) =>
                {
                    let state = found.map_or("not in a group".to_string(), |(_, s)| s);
                    return Ok(Checked::TookEffect {
                        state,
                        last_error: err.to_string(),
                    });
                }
                _ if attempt >= COMPLETE_ATTEMPTS => return Err(err),
                _ => {
                    tracing::warn!(error = %err, attempt, "CompleteLifecycleAction failed and the action still waits; retrying")
                }
            }
            attempt += 1;
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        asg: String,
        hook: String,
        result: HookResult,
        already_done: bool,
        latency_ms: Option<u64>,
        heartbeats: u32,
        cause: Option<String>,
    ) -> HookRecord {
        let record = HookRecord {
            transition: self.transition,
            asg,
            hook,
            result,
            completed_at: OffsetDateTime::now_utc(),
            already_done,
            latency_ms,
            heartbeats,
            cause,
        };
        let transition = self.transition;
        self.store.update_durable(|s| {
            s.hooks.push(record.clone());
            s.hook_intents.retain(|i| i.transition != transition);
        });
        record
    }
}

/// What an action that ended without our answer amounts to, from the state Auto Scaling reports:
/// a launch that left for termination was abandoned, whatever we meant to send.
fn effective_result(transition: Transition, state: &str, intended: HookResult) -> HookResult {
    let gone = state.contains("Terminat") || state == "Detached" || state == "not in a group";
    match transition {
        Transition::Launch | Transition::LaunchWarmed if gone => HookResult::Abandon,
        Transition::Launch | Transition::LaunchWarmed => HookResult::Continue,
        Transition::Terminate => intended,
    }
}

/// Completion attempts before giving up (each after checking the action still waits).
const COMPLETE_ATTEMPTS: u32 = 4;

enum Checked {
    Answered(Completion),
    /// The call failed, yet the action no longer waits: it ended (by our call or otherwise).
    TookEffect {
        state: String,
        last_error: String,
    },
}

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
        let out = self
            .autoscaling()
            .complete_lifecycle_action()
            .auto_scaling_group_name(&hook.asg)
            .lifecycle_hook_name(&hook.name)
            .instance_id(&hook.instance_id)
            .lifecycle_action_result(result.as_str())
            .customize()
            // Never resent blindly by the SDK: a retry after a lost answer is a second
            // completion. HookAction retries only after asking whether the action still waits.
            .config_override(
                aws_sdk_autoscaling::config::Config::builder()
                    .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        match out {
            Ok(_) => Ok(Completion::Accepted),
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
        let out = self
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

#[cfg(test)]
pub mod fake {
    //! An in-memory Auto Scaling group: one instance, its lifecycle state, its hooks, and a log
    //! of every call, with the real service's answers (no active action once completed).

    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    pub struct FakeGroup {
        pub inner: Arc<Mutex<Group>>,
    }

    #[derive(Default)]
    pub struct Group {
        pub asg: String,
        pub state: String,
        pub hooks: Vec<GroupHook>,
        pub calls: Vec<String>,
        /// The next complete fails with this error (once).
        pub fail_next_complete: Option<String>,
        /// Every complete fails (a permission missing).
        pub fail_always: bool,
        /// The next complete takes effect, but its answer is lost (a timeout).
        pub lose_next_answer: bool,
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
            self.inner.lock().unwrap().calls.clone()
        }

        pub fn state(&self) -> String {
            self.inner.lock().unwrap().state.clone()
        }
    }

    impl LifecycleApi for FakeGroup {
        async fn instance(&self, _id: &str) -> Result<Option<(String, String)>> {
            let mut g = self.inner.lock().unwrap();
            g.calls.push("DescribeAutoScalingInstances".into());
            Ok(Some((g.asg.clone(), g.state.clone())))
        }

        async fn hooks(&self, _asg: &str) -> Result<Vec<GroupHook>> {
            let mut g = self.inner.lock().unwrap();
            g.calls.push("DescribeLifecycleHooks".into());
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
            Ok(g.state.ends_with(":Wait"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeGroup;
    use super::*;

    fn store() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path().join("state.json"));
        (dir, s)
    }

    fn tags_with(asg: &str) -> TagInputs {
        TagInputs {
            asg: Some(asg.into()),
            ..TagInputs::default()
        }
    }

    const HOOKS: &[(&str, Transition)] = &[
        (ECS_MANAGED_DRAINING_HOOK, Transition::Terminate),
        ("web-launch", Transition::Launch),
        ("web-terminate", Transition::Terminate),
        ("other-launch", Transition::Launch),
    ];

    async fn hooks_of(g: &FakeGroup) -> GroupHooks {
        GroupHooks::discover(g, &tags_with("web"), "i-1")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn discovery_reads_the_hooks_once_for_launch_and_terminate() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let hooks = hooks_of(&g).await;
        let c = Config::default();
        let t = TagInputs::default();
        let launch = hooks
            .resolve(&c, &t, "i-1", Transition::Launch)
            .unwrap()
            .unwrap();
        let term = hooks
            .resolve(&c, &t, "i-1", Transition::Terminate)
            .unwrap()
            .unwrap();
        assert_eq!(
            (launch.name.as_str(), term.name.as_str()),
            ("web-launch", "web-terminate")
        );
        assert_eq!(
            g.calls(),
            ["DescribeLifecycleHooks"],
            "one call serves both transitions"
        );
        assert!(hooks.managed_draining());
    }

    #[tokio::test]
    async fn hook_names_follow_one_rule_trusted_config_then_tag_then_discovery() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let hooks = hooks_of(&g).await;
        let tag = TagInputs {
            launch_hook: Some("other-launch".into()),
            ..TagInputs::default()
        };
        let named = |c: &Config, t: &TagInputs| {
            hooks
                .resolve(c, t, "i-1", Transition::Launch)
                .map(|h| h.map(|h| h.name))
        };
        let trusted = Config::parse("[lifecycle]\nlaunch_hook = \"web-launch\"\n", "t").unwrap();
        assert_eq!(
            named(&trusted, &tag).unwrap().as_deref(),
            Some("web-launch")
        );
        assert_eq!(
            named(&Config::default(), &tag).unwrap().as_deref(),
            Some("other-launch")
        );
        assert_eq!(
            named(&Config::default(), &TagInputs::default())
                .unwrap()
                .as_deref(),
            Some("web-launch")
        );
        // A named hook must exist for that transition...
        let missing = TagInputs {
            launch_hook: Some("web-terminate".into()),
            ..TagInputs::default()
        };
        let err = named(&Config::default(), &missing).unwrap_err().to_string();
        assert!(err.contains("ecs-boot:launch-hook"), "{err}");
        // ...and ECS's managed-draining hook is never ours, whoever names it.
        let managed = TagInputs {
            terminate_hook: Some(ECS_MANAGED_DRAINING_HOOK.into()),
            ..TagInputs::default()
        };
        assert!(
            hooks
                .resolve(&Config::default(), &managed, "i-1", Transition::Terminate)
                .is_err()
        );
        let only_managed = FakeGroup::new("web", "InService", &HOOKS[..1]);
        let h = hooks_of(&only_managed).await;
        assert_eq!(
            h.resolve(
                &Config::default(),
                &TagInputs::default(),
                "i-1",
                Transition::Terminate
            )
            .unwrap(),
            None
        );
    }

    async fn launch_action(g: &FakeGroup, store: &StateStore) -> HookAction<FakeGroup> {
        let hooks = hooks_of(g).await;
        let hook = hooks
            .resolve(
                &Config::default(),
                &TagInputs::default(),
                "i-1",
                Transition::Launch,
            )
            .unwrap();
        HookAction::begin(
            g.clone(),
            store.clone(),
            Transition::Launch,
            hook,
            Duration::from_secs(3600),
        )
    }

    #[tokio::test]
    async fn completes_exactly_once_and_records_it() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let (_d, store) = store();
        let r = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert_eq!((r.result, r.already_done), (HookResult::Continue, false));
        assert_eq!(g.state(), "InService");
        // A second action for the same transition (a restart) sends nothing.
        let again = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert_eq!(again.completed_at, r.completed_at);
        let completions = g
            .calls()
            .iter()
            .filter(|c| c.starts_with("CompleteLifecycleAction"))
            .count();
        assert_eq!(completions, 1);
        assert!(store.snapshot().hook_intents.is_empty());
    }

    /// What a run leaves when killed after sending its CONTINUE, before recording the answer.
    fn seed_launch_intent(store: &StateStore) {
        store.update(|s| {
            s.hook_intents.push(HookIntent {
                transition: Transition::Launch,
                hook: "web-launch".into(),
                result: HookResult::Continue,
                at: OffsetDateTime::now_utc(),
            })
        });
    }

    #[tokio::test]
    async fn a_restart_after_an_effective_completion_asks_instead_of_completing() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let (dir, store) = store();
        // The completion took effect, then the process died before recording the answer.
        seed_launch_intent(&store);
        g.inner.lock().unwrap().state = "InService".into();
        let restarted = StateStore::open(dir.path().join("state.json"));
        let r = launch_action(&g, &restarted)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert!(
            r.already_done && r.cause.as_deref().unwrap().contains("InService"),
            "{r:?}"
        );
        assert!(
            !g.calls()
                .iter()
                .any(|c| c.starts_with("CompleteLifecycleAction"))
        );
    }

    #[tokio::test]
    async fn a_restart_after_a_lost_completion_completes_once_more() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let (dir, store) = store();
        seed_launch_intent(&store);
        let restarted = StateStore::open(dir.path().join("state.json"));
        let r = launch_action(&g, &restarted)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert!(!r.already_done);
        assert_eq!(g.state(), "InService");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_completion_leaves_the_intent_and_no_record() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        g.inner.lock().unwrap().fail_always = true;
        let (_d, store) = store();
        let err = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CompleteLifecycleAction"), "{err}");
        let s = store.snapshot();
        assert!(s.hook_done(Transition::Launch).is_none());
        assert!(s.hook_intent(Transition::Launch).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_never_resent_blindly() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        g.inner.lock().unwrap().lose_next_answer = true;
        let (_d, store) = store();
        let r = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert!(r.already_done && r.cause.unwrap().contains("InService"));
        let completions = g
            .calls()
            .iter()
            .filter(|c| c.starts_with("CompleteLifecycleAction"))
            .count();
        assert_eq!(completions, 1, "{:?}", g.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_completion_is_retried_while_the_action_waits() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        g.inner.lock().unwrap().fail_next_complete = Some("Throttling".into());
        let (_d, store) = store();
        let r = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert!(!r.already_done);
        assert_eq!(g.state(), "InService");
    }

    #[tokio::test]
    async fn no_hook_is_recorded_as_skipped_with_the_reason() {
        let g = FakeGroup::new("web", "Pending:Wait", &[]);
        let (_d, store) = store();
        let r = launch_action(&g, &store)
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert_eq!(r.result, HookResult::Skipped);
        assert!(r.cause.unwrap().contains("no launch lifecycle hook"));
        assert!(
            !g.calls()
                .iter()
                .any(|c| c.starts_with("CompleteLifecycleAction"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_run_while_the_action_is_open_and_stop_with_it() {
        let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
        let (_d, store) = store();
        let hooks = hooks_of(&g).await;
        let hook = hooks
            .resolve(
                &Config::default(),
                &TagInputs::default(),
                "i-1",
                Transition::Launch,
            )
            .unwrap();
        let action = HookAction::begin(
            g.clone(),
            store,
            Transition::Launch,
            hook,
            Duration::from_secs(10),
        );
        tokio::time::sleep(Duration::from_secs(35)).await;
        let r = action
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert_eq!(r.heartbeats, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let beats = g
            .calls()
            .iter()
            .filter(|c| c.starts_with("RecordLifecycleActionHeartbeat"))
            .count();
        assert_eq!(beats, 3, "heartbeats went on after completion");
    }
}
