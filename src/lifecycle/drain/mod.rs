//! Draining, once something asked for it (a `Trigger`: termination, spot notice, rebalance,
//! operator; see notice.rs and watch/): set DRAINING (unless ECS managed draining does), wait for
//! the instance's tasks until the deadline, stop standalone tasks after their grace, stop system
//! containers last. The terminate hook is the hook action's (run/ completes it after a lifecycle
//! drain). Every step is recorded, so a restart resumes. ECS, the agent, Docker and the clock are
//! reached through the traits in lifecycle/ports/, so every path is unit-tested against its fake.rs.

#[cfg(test)]
mod tests;

pub use crate::lifecycle::ports::{AgentView, EcsControl, Live, SystemContainers, TaskInfo};

use crate::config::Config;
use crate::error::Result;
use crate::status::state::{Cause, DrainRecord, DrainState, StateStore};
use crate::util::clock::Clock;
use crate::util::retry::Backoff;
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;

/// Which view of the instance's tasks answered: it sets how soon to ask again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Agent,
    Ecs,
}

/// What started the drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Lifecycle,
    Spot {
        action: String,
        time: Option<OffsetDateTime>,
    },
    Rebalance,
    Manual,
    /// `[health] on_essential_failure = "drain"`: this essential system container died for good.
    EssentialFailure {
        container: String,
    },
}

impl Trigger {
    /// Only `Lifecycle` has a terminate lifecycle action behind it.
    pub fn cause(&self) -> Cause {
        match self {
            Trigger::Lifecycle => Cause::Lifecycle,
            Trigger::Spot { .. } => Cause::Spot,
            Trigger::Rebalance => Cause::Rebalance,
            // Like an operator's drain: no termination behind it; `ecs-boot undrain` ends it.
            Trigger::Manual | Trigger::EssentialFailure { .. } => Cause::Operator,
        }
    }

    /// The trigger a persisted cause stands for (a spot notice's time is not kept).
    pub fn from_cause(cause: Cause) -> Trigger {
        match cause {
            Cause::Lifecycle => Trigger::Lifecycle,
            Cause::Spot => Trigger::Spot {
                action: "terminate".into(),
                time: None,
            },
            Cause::Rebalance => Trigger::Rebalance,
            Cause::Operator => Trigger::Manual,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Trigger::Lifecycle => "lifecycle:Terminated".into(),
            Trigger::Spot { action, .. } => format!("spot:{action}"),
            Trigger::Rebalance => "rebalance-recommendation".into(),
            Trigger::Manual => "manual".into(),
            Trigger::EssentialFailure { container } => format!("essential-failure:{container}"),
        }
    }
}

/// The drain deadline: the configured one, capped a little before a spot reclaim.
pub fn deadline_for(config: &Config, trigger: &Trigger, now: OffsetDateTime) -> OffsetDateTime {
    let configured = now + config.drain.deadline;
    match trigger {
        Trigger::Spot { time: Some(t), .. } => {
            configured.min(*t - time::Duration::seconds(10)).max(now)
        }
        _ => configured,
    }
}

/// The world a drain acts on: ECS, the local agent, the system containers, the clock.
pub trait DrainWorld: EcsControl + AgentView + SystemContainers + Clock {}
impl<W: EcsControl + AgentView + SystemContainers + Clock> DrainWorld for W {}

pub struct Drainer<'a, W: DrainWorld> {
    pub world: W,
    pub config: &'a Config,
    pub store: &'a StateStore,
    pub cluster: &'a str,
    /// The group has ECS's managed-draining hook: ECS sets DRAINING itself; never fight it.
    pub managed_draining: bool,
}

impl<W: DrainWorld> Drainer<'_, W> {
    /// Drains: DRAINING, tasks gone (or the deadline), system containers stopped. Resumes a drain
    /// recorded before a restart; a new cause (a real termination after an operator drain)
    /// restarts the clock with its own deadline.
    pub async fn run(&self, trigger: &Trigger) -> Result<()> {
        let now = self.world.now_utc();
        let cause = trigger.cause();
        let mut resumed = false;
        let record = self.store.update_durable(|s| {
            let fresh = || DrainRecord {
                trigger: trigger.label(),
                cause,
                started_at: now,
                deadline_at: deadline_for(self.config, trigger, now),
                tasks_left: 0,
                tasks_at_start: None,
                state: DrainState::Draining,
                set_draining_by_us: false,
                standalone_stopped: Vec::new(),
                drained_at: None,
            };
            match s.drain.as_mut() {
                Some(d) if d.cause == cause => resumed = true,
                Some(d) => {
                    let by_us = d.set_draining_by_us;
                    *d = DrainRecord {
                        set_draining_by_us: by_us,
                        ..fresh()
                    };
                }
                None => s.drain = Some(fresh()),
            }
            s.drain.clone().expect("set above")
        });
        tracing::info!(trigger = %record.trigger, "drain started");
        crate::util::notify::status(&format!("draining ({})", record.trigger));

        let ci_arn = self.container_instance_arn().await;
        if let Some(arn) = &ci_arn
            && !record.set_draining_by_us
            && !self.managed_draining
        {
            // A fresh termination sets DRAINING without reading it first; a drain resumed after
            // a crash (the call may have landed unrecorded) or one `undrain` may end reads first.
            let read_first = cause != Cause::Lifecycle || resumed;
            self.set_draining(arn, read_first, record.deadline_at)
                .await?;
        }

        let drained = self.wait_for_tasks(&record, ci_arn.as_deref()).await;
        let ended_at = self.world.now_utc();
        self.store.update(|s| {
            if let Some(d) = s.drain.as_mut() {
                d.state = if drained {
                    DrainState::Drained
                } else {
                    DrainState::Deadline
                };
                if drained {
                    d.tasks_left = 0;
                }
                d.drained_at = Some(ended_at);
            }
        });

        // Log shippers and metrics agents go last, so the tasks' final logs get out. With none
        // configured, boot's reconcile removed any of ours: the engine need not be asked.
        if !self.config.containers.is_empty() {
            match self.world.stop_all().await {
                Ok(()) => self.store.update(|s| {
                    for c in &mut s.containers {
                        c.state = "stopped".into();
                        c.action = "stopped".into();
                    }
                }),
                Err(e) => self.store.warn(format!("stopping system containers: {e}")),
            }
        }
        Ok(())
    }

    /// `ecs-boot undrain`: the container instance goes back to ACTIVE if ecs-boot set it
    /// DRAINING (never over ECS managed draining or the agent's own spot draining).
    pub async fn reactivate(&self) -> Result<String> {
        let Some(record) = self.store.snapshot().drain else {
            return Ok("nothing was drained".into());
        };
        let detail = match self.container_instance_arn().await {
            Some(arn) if record.set_draining_by_us => {
                self.world.set_draining(self.cluster, &arn, false).await?;
                format!("{arn} ACTIVE again")
            }
            _ => "DRAINING was not set by ecs-boot: left as it is".into(),
        };
        self.store.update(|s| s.drain = None);
        Ok(detail)
    }

    async fn container_instance_arn(&self) -> Option<String> {
        if let Some(r) = self.store.snapshot().registration {
            return Some(r.container_instance_arn);
        }
        self.world.container_instance_arn().await
    }

    /// DRAINING. `read_first`: an instance already DRAINING (the agent's spot draining, someone
    /// else, our own call before a crash) is left alone, so `undrain` never reactivates what
    /// ecs-boot did not drain and DRAINING is set at most once. A fresh termination skips the
    /// read: nothing returns a terminating instance to ACTIVE, and DRAINING again is a no-op at
    /// ECS, so it is one call, not two (issue 23: a scale-in of hundreds shares the account's
    /// ECS budget).
    ///
    /// A call the rate limit refused was never considered: it is sent again until `deadline`
    /// (retrying sooner as it nears), not failed into a step retry that would read again.
    async fn set_draining(
        &self,
        arn: &str,
        read_first: bool,
        deadline: OffsetDateTime,
    ) -> Result<()> {
        if read_first {
            let status = self.world.instance_status(self.cluster, arn).await?;
            if status == "DRAINING" {
                tracing::info!(
                    "container instance already DRAINING (the agent's spot draining, or someone else); not setting it again"
                );
                return Ok(());
            }
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let mut throttled = 0u32;
        loop {
            let left: Duration = (deadline - self.world.now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO);
            match self.world.set_draining(self.cluster, arn, true).await {
                Err(e) if e.is_throttled() && !left.is_zero() => {
                    throttled += 1;
                    if throttled.is_power_of_two() {
                        tracing::warn!(
                            throttled,
                            "UpdateContainerInstancesState throttled; sending it again"
                        );
                    }
                    self.world.sleep(backoff.next_delay_before(left)).await;
                }
                result => break result?,
            }
        }
        tracing::info!(
            container_instance = arn,
            throttled,
            "container instance set to DRAINING"
        );
        self.store.update_durable(|s| {
            if let Some(d) = s.drain.as_mut() {
                d.set_draining_by_us = true
            }
        });
        Ok(())
    }

    /// Live task ARNs and where they came from: the local agent's own view, or ECS's when the
    /// agent does not answer.
    async fn live_tasks(&self, ci_arn: Option<&str>) -> (Option<Vec<String>>, Asked) {
        if let Some(live) = self.world.live_tasks().await {
            return (Some(live), Asked::Agent);
        }
        let Some(ci_arn) = ci_arn else {
            return (None, Asked::Ecs);
        };
        (
            self.world.running_tasks(self.cluster, ci_arn).await,
            Asked::Ecs,
        )
    }

    /// `true` once no task is live; `false` at the deadline.
    async fn wait_for_tasks(&self, record: &DrainRecord, ci_arn: Option<&str>) -> bool {
        // The agent's task list is a loopback request: asked every 20-40 ms, the last task's
        // end is seen within tens of milliseconds (issue 23: terminate CONTINUE p99 <= 100 ms).
        // ECS's ListTasks is an account-throttled API call: asked at most every 200-500 ms.
        let mut local = Backoff::new(Duration::from_millis(20), Duration::from_millis(40));
        let mut remote = Backoff::new(Duration::from_millis(200), Duration::from_millis(500));
        let grace_at = record.started_at + self.config.drain.standalone_grace;
        let mut standalone_done = !record.standalone_stopped.is_empty();
        let mut last_left = usize::MAX;
        loop {
            let now = self.world.now_utc();
            let (live, asked) = self.live_tasks(ci_arn).await;
            if last_left == usize::MAX
                && let Some(l) = &live
            {
                // The first answer: what the drain has to move (the TasksDrained metric).
                self.store.update(|s| {
                    if let Some(d) = s.drain.as_mut() {
                        d.tasks_at_start.get_or_insert(l.len());
                    }
                });
            }
            match live {
                Some(live) if live.is_empty() => return true,
                Some(live) => {
                    if live.len() != last_left {
                        last_left = live.len();
                        tracing::info!(tasks_left = live.len(), "draining");
                        self.store.update(|s| {
                            if let Some(d) = s.drain.as_mut() {
                                d.tasks_left = live.len()
                            }
                        });
                    }
                    if !standalone_done && now >= grace_at {
                        standalone_done = true;
                        self.stop_standalone(&live).await;
                    }
                }
                None => tracing::warn!(
                    "cannot list tasks (agent down and no container instance known); waiting"
                ),
            }
            if now >= record.deadline_at {
                tracing::warn!(tasks_left = last_left, "drain deadline reached");
                return false;
            }
            let until_deadline = (record.deadline_at - now)
                .try_into()
                .unwrap_or(Duration::ZERO);
            let backoff = match asked {
                Asked::Agent => &mut local,
                Asked::Ecs => &mut remote,
            };
            self.world
                .sleep(backoff.next_delay().min(until_deadline))
                .await;
        }
    }

    /// DRAINING replaces service tasks but leaves standalone (RunTask) tasks running; after the
    /// grace period those are stopped so the instance can go.
    async fn stop_standalone(&self, live: &[String]) {
        let described = match self.world.describe_tasks(self.cluster, live).await {
            Ok(d) => d,
            Err(e) => {
                self.store
                    .warn(format!("DescribeTasks for standalone tasks: {e}"));
                return;
            }
        };
        let mut stopped = BTreeSet::new();
        for t in described {
            if t.service || t.stopped {
                continue;
            }
            let reason = "ecs-boot: instance is terminating; standalone task outlived the drain grace period";
            match self.world.stop_task(self.cluster, &t.arn, reason).await {
                Ok(()) => {
                    tracing::info!(task = t.arn, "stopped standalone task");
                    stopped.insert(t.arn);
                }
                Err(e) => self.store.warn(format!("StopTask {}: {e}", t.arn)),
            }
        }
        self.store.update(|s| {
            if let Some(d) = s.drain.as_mut() {
                d.standalone_stopped.extend(stopped)
            }
        });
    }
}
