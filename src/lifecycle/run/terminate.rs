//! The drain and the terminate lifecycle action: the group's hooks, the action opened with the
//! drain, completed once it ends; and the way back to ACTIVE.

use super::{Agent, Life};
use crate::error::Result;
use crate::lifecycle::boot::{Prepared, phase};
use crate::lifecycle::drain::{Drainer, Live, Trigger};
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::machine::Cause;
use crate::sources::aws::Aws;
use crate::status::state::{DrainState, HookResult, Transition};
use std::time::{Duration, Instant};

impl Agent {
    pub(super) fn drain_cause(&self, life: &Life) -> Cause {
        life.trigger
            .as_ref()
            .map(Trigger::cause)
            .or_else(|| self.store.snapshot().drain.map(|d| d.cause))
            .unwrap_or(Cause::Operator)
    }

    pub(super) async fn group_hooks<'h>(
        &self,
        p: &Prepared,
        hooks: &'h mut Option<GroupHooks>,
    ) -> Result<&'h GroupHooks> {
        if hooks.is_none() {
            *hooks = Some(GroupHooks::discover(&p.aws, &p.tags, &p.identity.instance_id).await?);
        }
        Ok(hooks.as_ref().expect("just set"))
    }

    /// The action for `transition` on this instance's hook (the group's hooks read once),
    /// heartbeating from now.
    pub(crate) async fn begin_action(
        &self,
        p: &Prepared,
        hooks: &mut Option<GroupHooks>,
        transition: Transition,
    ) -> Result<HookAction<Aws>> {
        let group = self.group_hooks(p, hooks).await?;
        let hook = group.resolve(&p.config, &p.tags, &p.identity.instance_id, transition)?;
        let interval = hook
            .as_ref()
            .map_or(Duration::from_secs(15), |h| h.heartbeat_interval(&p.config));
        let age = self.action_age(p, transition).min(interval);
        Ok(HookAction::begin(
            p.aws.clone(),
            self.store.clone(),
            transition,
            hook,
            interval,
            age,
        ))
    }

    /// How long Auto Scaling has likely been timing the action before ecs-boot takes it up: a
    /// launch action since the instance started (the kernel's uptime); a termination since
    /// before the watch noticed it (at most one target-lifecycle-state period), or, taken up
    /// again after a restart, for an unknown time (the caller caps it at one interval: a beat at
    /// once).
    fn action_age(&self, p: &Prepared, transition: Transition) -> Duration {
        match transition {
            Transition::Launch | Transition::LaunchWarmed => {
                crate::util::clock::uptime(&self.paths.proc("uptime")).unwrap_or_default()
            }
            Transition::Terminate => {
                let s = self.store.snapshot();
                if s.drain.is_some_and(|d| d.started_at < s.started_at) {
                    Duration::MAX
                } else {
                    p.config.drain.poll_interval * crate::lifecycle::watch::LIFECYCLE_EVERY
                }
            }
        }
    }

    /// The terminate action opens with the drain, so its heartbeats cover the whole drain.
    pub(super) async fn open_terminate_action(&self, life: &mut Life) -> Result<()> {
        if life.terminate.is_some() {
            return Ok(());
        }
        let Some(p) = life.prepared.as_ref() else {
            return Ok(());
        };
        life.terminate = Some(
            self.begin_action(p, &mut life.hooks, Transition::Terminate)
                .await?,
        );
        Ok(())
    }

    pub(super) async fn drain(&self, life: &mut Life) -> Result<()> {
        if life.prepared.is_none() {
            // Resumed mid-drain after a restart: the config phase gives clients and identity.
            life.prepared = Some(self.prepare_again().await?);
        }
        let trigger = life
            .trigger
            .clone()
            .unwrap_or_else(|| Trigger::from_cause(self.drain_cause(life)));
        if trigger.cause() == Cause::Lifecycle {
            self.open_terminate_action(life).await?;
        }
        let p = life.prepared.as_ref().expect("prepared above");
        let managed = match &life.hooks {
            Some(h) => h.managed_draining(),
            None => false,
        };
        let drainer = self.drainer(p, managed);
        phase(Some(&self.store), "drain", async {
            drainer.run(&trigger).await?;
            let d = self.store.snapshot().drain;
            Ok((
                (),
                d.map(|d| format!("{} ({})", d.state.as_str(), d.trigger)),
            ))
        })
        .await?;
        life.drained_at = Some(Instant::now());
        self.record_if_drain_deadline(&p.aws, &p.identity).await;
        let (asg, cluster) = (p.tags.asg.as_deref(), Some(p.env.cluster()));
        self.publish_metrics(crate::metrics::Moment::Drained, &p.aws, asg, cluster)
            .await;
        Ok(())
    }

    /// Past the drain record's deadline, marks the drain as ended by it (`true`); before it, or
    /// with no record yet, leaves it (`false`).
    pub(super) fn end_drain_past_deadline(&self) -> bool {
        let now = time::OffsetDateTime::now_utc();
        let past = self
            .store
            .snapshot()
            .drain
            .is_some_and(|d| now >= d.deadline_at);
        if past {
            self.store.update(|s| {
                if let Some(d) = s.drain.as_mut() {
                    d.state = DrainState::Deadline;
                    d.drained_at = Some(now);
                }
            });
        }
        past
    }

    pub(super) async fn complete_terminate(&self, life: &mut Life) -> Result<()> {
        if life.terminate.is_none() {
            self.open_terminate_action(life).await?;
        }
        let Some(action) = life.terminate.take() else {
            return Ok(());
        };
        let deadline_hit = self
            .store
            .snapshot()
            .drain
            .is_some_and(|d| d.state == DrainState::Deadline);
        let (result, cause) = match (&life.prepared, deadline_hit) {
            (Some(p), true) => (
                HookResult::from(p.config.drain.result_on_deadline),
                Some("drain deadline reached with tasks still running".to_string()),
            ),
            _ => (HookResult::Continue, None),
        };
        phase(Some(&self.store), "terminate-hook", async {
            let r = action.complete(result, cause, life.drained_at).await?;
            Ok(((), Some(format!("{} {}", r.result, r.hook))))
        })
        .await?;
        crate::util::notify::status("drained; terminate hook completed");
        Ok(())
    }

    /// `ecs-boot undrain`: ACTIVE again (only if ecs-boot set DRAINING), system containers back.
    pub(super) async fn reactivate(&self, life: &mut Life) -> Result<()> {
        let Some(p) = life.prepared.as_ref() else {
            return Ok(());
        };
        let drainer = self.drainer(p, false);
        phase(Some(&self.store), "undrain", async {
            let detail = drainer.reactivate().await?;
            Ok(((), Some(detail)))
        })
        .await?;
        life.trigger = None;
        phase(
            Some(&self.store),
            "containers",
            self.reconcile_containers(p),
        )
        .await
    }

    /// The drain over the real world: ECS through this instance's clients, the local agent,
    /// the Docker engine, the system clock.
    fn drainer<'a>(&'a self, p: &'a Prepared, managed_draining: bool) -> Drainer<'a, Live<'a>> {
        Drainer {
            world: Live {
                aws: &p.aws,
                intro: &self.intro,
                container_scope: &self.container_scope,
                config: &p.config,
            },
            config: &p.config,
            store: &self.store,
            cluster: p.env.cluster(),
            managed_draining,
        }
    }
}
