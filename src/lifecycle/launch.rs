//! The launch half of `run`: system containers and the ECS agent's registration side by side,
//! then the launch hook (CONTINUE once, or ABANDON with the cause); warm pools park first.

use crate::config::OnFailure;
use crate::error::{Error, Result};
use crate::lifecycle::boot::{Known, Prepared, phase};
use crate::lifecycle::hook::{self, Heartbeats, Hook, Transition};
use crate::lifecycle::run::Agent;
use crate::sources::ecs_agent;
use crate::status::state::{Outcome, Registration};
use std::time::Instant;
use time::OffsetDateTime;

impl Agent {
    /// Containers and registration run side by side; the launch hook is completed once both are
    /// done. Heartbeats keep the hook alive meanwhile.
    pub(crate) async fn launch(&self, p: &Prepared) -> Result<()> {
        let hook = self.launch_hook(p, "launch").await?;
        let beats = hook
            .as_ref()
            .map(|h| Heartbeats::start(p.aws.clone(), h.clone(), h.heartbeat_interval(&p.config)));

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

        if let Some(h) = hook {
            let sent = beats.as_ref().map(Heartbeats::sent).unwrap_or(0);
            drop(beats);
            phase(Some(&self.store), "launch-hook", async {
                let r = hook::complete_once(
                    &p.aws,
                    &self.store,
                    "launch",
                    &h,
                    "CONTINUE",
                    None,
                    Some(registered),
                    sent,
                )
                .await?;
                Ok((
                    (),
                    Some(format!(
                        "{} {} on {}{}",
                        r.result,
                        r.hook,
                        r.asg,
                        if r.already_done {
                            " (already ended)"
                        } else {
                            ""
                        }
                    )),
                ))
            })
            .await?;
        }
        Ok(())
    }

    /// The launch hook to complete for `key`, or `None` (already completed, or none exists:
    /// recorded so status says why).
    pub(crate) async fn launch_hook(&self, p: &Prepared, key: &str) -> Result<Option<Hook>> {
        if self.store.snapshot().hook_done(key).is_some() {
            return Ok(None);
        }
        let found = phase(Some(&self.store), "lifecycle-discovery", async {
            let hook = hook::discover(
                &p.aws,
                &p.config,
                &p.tags,
                &p.identity.instance_id,
                Transition::Launch,
            )
            .await?;
            let detail = hook
                .as_ref()
                .map(|h| format!("{} on {}", h.name, h.asg))
                .unwrap_or_else(|| {
                    "no launch hook (not in an Auto Scaling group, or the group has none)".into()
                });
            Ok((hook, Some(detail)))
        })
        .await?;
        if found.is_none() {
            hook::record_skipped(
                &self.store,
                key,
                "no launch lifecycle hook for this instance",
            );
        }
        Ok(found)
    }

    /// Warm pool: the agent will not register while warmed, so complete the pool's launch hook
    /// at once; if the instance stays running in the pool, wait until it leaves for service.
    pub(crate) async fn park_in_warm_pool(&self, p: &Prepared, state: &str) -> Result<()> {
        if let Some(h) = self.launch_hook(p, "launch-warmed").await? {
            phase(Some(&self.store), "warm-pool-hook", async {
                let r = hook::complete_once(
                    &p.aws,
                    &self.store,
                    "launch-warmed",
                    &h,
                    "CONTINUE",
                    None,
                    None,
                    0,
                )
                .await?;
                Ok(((), Some(format!("{} {} ({state})", r.result, r.hook))))
            })
            .await?;
        }
        self.store.update(|s| s.outcome = Outcome::Warmed);
        crate::util::notify::status(&format!("parked in the warm pool ({state})"));
        loop {
            tokio::time::sleep(crate::util::retry::jitter(p.config.drain.poll_interval)).await;
            if let Ok(Some(s)) = self.imds.target_lifecycle_state().await
                && s == "InService"
            {
                self.store.update(|s| s.outcome = Outcome::Booting);
                return Ok(());
            }
        }
    }

    pub(crate) async fn abandon_launch(&self, known: &Known, cause: &Error) {
        if self.config.lifecycle.on_failure == OnFailure::Leave {
            tracing::warn!("boot failed; leaving the launch hook pending (on_failure = \"leave\")");
            return;
        }
        if self.store.snapshot().hook_done("launch").is_some() {
            return;
        }
        let (Some(identity), Some(aws)) = (&known.identity, &known.aws) else {
            self.store.warn("cannot ABANDON the launch hook: the instance identity is unknown (IMDS failed); the hook will time out to its DefaultResult".into());
            return;
        };
        let tags = known.tags.clone().unwrap_or_default();
        let res = phase(Some(&self.store), "launch-hook", async {
            match hook::discover(
                aws,
                &self.config,
                &tags,
                &identity.instance_id,
                Transition::Launch,
            )
            .await?
            {
                Some(h) => {
                    let r = hook::complete_once(
                        aws,
                        &self.store,
                        "launch",
                        &h,
                        "ABANDON",
                        Some(cause.to_string()),
                        None,
                        0,
                    )
                    .await?;
                    Ok((
                        (),
                        Some(format!("ABANDON {} on {}: {}", r.hook, r.asg, cause)),
                    ))
                }
                None => Ok(((), Some("no launch hook to abandon".into()))),
            }
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot abandon the launch hook");
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
