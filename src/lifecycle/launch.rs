//! The Launch stage: system containers and the ECS agent's registration side by side, then the
//! launch hook (CONTINUE once; a failure becomes ABANDON in run/setup.rs).

use crate::error::Result;
use crate::lifecycle::boot::{Prepared, phase};
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::run::Agent;
use crate::metrics::Moment;
use crate::sources::ecs_agent;
use crate::status::state::{HookResult, Registration, Transition};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

impl Agent {
    /// Containers and registration run side by side; the launch hook is completed once both are
    /// done. The hook action's heartbeats keep it alive meanwhile.
    pub(crate) async fn launch(&self, p: &Prepared, hooks: &mut Option<GroupHooks>) -> Result<()> {
        let action = if self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_some()
        {
            // Completed before a restart: nothing to heartbeat or send.
            HookAction::begin(
                p.aws.clone(),
                self.store.clone(),
                Transition::Launch,
                None,
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
        let registration = phase(Some(&self.store), "registration", async {
            let (meta, arn) = ecs_agent::wait_registered(
                &self.intro,
                p.env.cluster(),
                p.config.ecs_agent.registration_timeout,
            )
            .await?;
            let registered = Instant::now();
            let detail = format!("{arn} in {}", meta.cluster);
            self.store.update(|s| {
                s.registration = Some(Registration {
                    container_instance_arn: arn,
                    cluster: meta.cluster.clone(),
                    agent_version: meta.version.clone(),
                    registered_at: OffsetDateTime::now_utc(),
                })
            });
            Ok((registered, Some(detail)))
        });
        let ((), registered) = tokio::try_join!(containers, registration)?;
        self.mark_ready(p).await?;

        if self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_none()
        {
            phase(Some(&self.store), "launch-hook", async {
                let r = action
                    .complete(HookResult::Continue, None, Some(registered))
                    .await?;
                let detail = match r.result {
                    HookResult::Skipped => "no launch hook for this instance".to_string(),
                    _ => format!(
                        "{} {} on {}{}",
                        r.result,
                        r.hook,
                        r.asg,
                        if r.already_done {
                            " (already ended)"
                        } else {
                            ""
                        }
                    ),
                };
                Ok(((), Some(detail)))
            })
            .await?;
            let (asg, cluster) = (p.tags.asg.as_deref(), Some(p.env.cluster()));
            self.publish_metrics(Moment::InService, &p.aws, asg, cluster)
                .await;
        }
        Ok(())
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
