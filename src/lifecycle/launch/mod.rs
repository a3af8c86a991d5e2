//! The Launch stage, wired to the real world: the launch hook discovered, the system containers
//! reconciled, then stage.rs (registration, readiness, the launch hook; CONTINUE once, a failure
//! becomes ABANDON through the table) over the live clients. The warm-pool variant likewise.

mod stage;
#[cfg(test)]
mod tests;

pub use stage::{Launch, launch_event, wait_registered};

use crate::error::Result;
use crate::lifecycle::boot::{Prepared, phase};
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::ports::Live;
use crate::lifecycle::run::Agent;
use crate::metrics::Moment;
use crate::status::state::Transition;
use crate::util::clock::{Clock, MonotonicClock};
use std::time::Duration;

impl Agent {
    /// Containers and registration run side by side; the launch hook is completed once both are
    /// done. The hook action's heartbeats keep it alive meanwhile.
    pub(crate) async fn launch(&self, p: &Prepared, hooks: &mut Option<GroupHooks>) -> Result<()> {
        let completed_before = self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_some();
        let action = if completed_before {
            // Completed before a restart: nothing to heartbeat or send.
            HookAction::begin(
                p.aws.clone(),
                self.store.clone(),
                Transition::Launch,
                None,
                Duration::ZERO,
                Duration::ZERO,
            )
        } else {
            phase(Some(&self.store), "lifecycle-discovery", async {
                let action = self.begin_action(p, hooks, Transition::Launch).await?;
                // The terminate hook is resolved now too: a name that cannot be completed (not
                // on the group, or ECS's managed-draining hook) fails the boot, not the drain.
                let group = hooks.as_ref().expect("read by begin_action");
                group.resolve(
                    &p.config,
                    &p.tags,
                    &p.identity.instance_id,
                    Transition::Terminate,
                )?;
                let asg = hooks.as_ref().and_then(|g| g.asg.clone());
                let detail = match (action.hook(), asg) {
                    (Some(h), _) => format!("{} on {}", h.name, h.asg),
                    (None, Some(asg)) => format!("no launch hook on {asg}"),
                    (None, None) => "not in an Auto Scaling group".into(),
                };
                Ok((action, Some(detail)))
            })
            .await?
        };

        let containers = phase(
            Some(&self.store),
            "containers",
            self.reconcile_containers(p),
        );
        self.stage(p, &MonotonicClock::start())
            .run(action, containers)
            .await?;
        if !completed_before {
            let (asg, cluster) = (p.tags.asg.as_deref(), Some(p.env.cluster()));
            self.publish_metrics(Moment::InService, &p.aws, asg, cluster)
                .await;
        }
        Ok(())
    }

    /// The warm-pool variant: the warmed launch hook completed, nothing else.
    pub(crate) async fn park_hook(
        &self,
        p: &Prepared,
        hooks: &mut Option<GroupHooks>,
        target: &str,
    ) -> Result<()> {
        let action = self
            .begin_action(p, hooks, Transition::LaunchWarmed)
            .await?;
        self.stage(p, &MonotonicClock::start())
            .park(action, target)
            .await
    }

    /// The stage over the live clients (`Live` borrows them for the call).
    fn stage<'a, C: Clock>(&'a self, p: &'a Prepared, clock: &'a C) -> Launch<'a, Live<'a>, C> {
        Launch {
            world: Live {
                aws: &p.aws,
                intro: &self.intro,
                container_scope: &self.container_scope,
                config: &p.config,
            },
            clock,
            store: &self.store,
            cluster: p.env.cluster(),
            registration_timeout: p.config.ecs_agent.registration_timeout,
        }
    }

    /// Reconciles system containers and records every one of them in status, failed or not.
    pub(crate) async fn reconcile_containers(&self, p: &Prepared) -> Result<((), Option<String>)> {
        let report = crate::containers::reconcile_report(
            &p.config,
            p.auth.as_ref(),
            &p.aws,
            &self.container_scope,
        )
        .await;
        let detail = format!("{} system containers", report.records.len());
        let failed = report.error();
        self.store.update(|s| s.containers = report.records);
        match failed {
            Some(e) => Err(e),
            None => Ok(((), Some(detail))),
        }
    }
}
