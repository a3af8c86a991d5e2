//! The config phase and what re-runs it (a reload, a resumed drain), the operator's step
//! handlers, and the launch hook's ABANDON after a failed boot.

use super::{Agent, Life};
use crate::config::{Config, OnFailure};
use crate::error::Result;
use crate::lifecycle::boot::{self, ConnectAws, Known, Prepared, phase};
use crate::lifecycle::handlers::{self, Hook};
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::machine::{Cause, Event, Stage};
use crate::status::state::{HookResult, Transition};
use std::time::Duration;

impl Agent {
    /// Config phase: identity, tags, credentials, ecs.config on disk; then whether the instance
    /// is headed for a warm pool (the gate must then stay closed).
    pub(super) async fn configure(&self, life: &mut Life) -> Event {
        boot::close_gate(&self.paths);
        let prepared = boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            &ConnectAws,
            Some(&self.store),
            &mut life.known,
        )
        .await;
        let written = match prepared {
            Ok(p) => boot::write(&p, &self.paths, &self.store).await.map(|()| p),
            Err(e) => Err(e),
        };
        // Bootstrap containers finish before the gate opens, so the ECS agent starts after them.
        let written = match written {
            Ok(p) => handlers::bootstrap(&p, &self.store, &self.container_scope)
                .await
                .map(|()| p),
            Err(e) => Err(e),
        };
        match written {
            Ok(p) => {
                let warmed = crate::lifecycle::notice::target(&self.imds).await.parks();
                life.prepared = Some(p);
                Event::ConfigWritten { warmed }
            }
            Err(e) => {
                life.failure = Some(e);
                Event::Failed
            }
        }
    }

    /// Runs the operator's `hook` for this step (src/lifecycle/handlers.rs); only a required
    /// hook (`pre_drain`) that fails is an error.
    pub(super) async fn hook(&self, life: &Life, hook: Hook, cause: Cause) -> Result<()> {
        let config = life.prepared.as_ref().map_or(&self.config, |p| &p.config);
        let instance_id = life.known.identity.as_ref().map(|i| i.instance_id.as_str());
        let mut ctx = handlers::Context::new(life.prepared.as_ref(), instance_id);
        // The stage the step belongs to (the table records it only after the action).
        ctx.stage = Some(match hook {
            Hook::InService => Stage::InService,
            Hook::PreDrain | Hook::PostDrain => Stage::Draining,
            Hook::OnFailure => Stage::Failed,
        });
        (ctx.transition, ctx.cause) = match hook {
            Hook::InService => ("launch", "launched".to_string()),
            Hook::OnFailure => (
                "launch",
                life.failure
                    .as_ref()
                    .map_or("boot failed".into(), |e| e.to_string()),
            ),
            Hook::PreDrain | Hook::PostDrain => (
                if cause == Cause::Lifecycle {
                    "terminate"
                } else {
                    "drain"
                },
                serde_json::to_value(cause)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
        };
        handlers::run(&self.store, &config.hooks, hook, &ctx).await?;
        Ok(())
    }

    /// The config phase once more (after a restart mid-drain, or a reload): sources re-read, the
    /// gate left as it is.
    pub(super) async fn prepare_again(&self) -> Result<Prepared> {
        let mut known = Known::default();
        boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            &ConnectAws,
            Some(&self.store),
            &mut known,
        )
        .await
    }

    /// SIGHUP: re-read the config sources and credentials, re-render ecs.config (the gate opens
    /// on the new file unless warmed), re-reconcile system containers.
    pub(super) async fn reload(&mut self, life: &mut Life) -> Result<()> {
        tracing::info!("reloading");
        self.config = Config::load(&self.config_path)?;
        let p = self.prepare_again().await?;
        boot::write(&p, &self.paths, &self.store).await?;
        if self.store.snapshot().stage != Some(Stage::Warmed) {
            boot::open_gate(&p, &self.paths)?;
            phase(
                Some(&self.store),
                "containers",
                self.reconcile_containers(&p),
            )
            .await?;
        }
        life.prepared = Some(p);
        Ok(())
    }

    /// ABANDON the launch hook with the cause, unless `on_failure = "leave"`.
    pub(super) async fn abandon_launch(&self, life: &mut Life) {
        let cause = life
            .failure
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "boot failed".into());
        if self.config.lifecycle.on_failure == OnFailure::Leave {
            tracing::warn!("boot failed; leaving the launch hook pending (on_failure = \"leave\")");
            return;
        }
        if self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_some()
        {
            return;
        }
        let (Some(identity), Some(aws)) = (&life.known.identity, &life.known.aws) else {
            self.store.warn("cannot ABANDON the launch hook: the instance identity is unknown (IMDS failed); the hook will time out to its DefaultResult".into());
            return;
        };
        let tags = life.known.tags.clone().unwrap_or_default();
        let config = life.prepared.as_ref().map_or(&self.config, |p| &p.config);
        self.record_evidence(crate::evidence::Trigger::Abandon, aws, identity)
            .await;
        let (asg, cluster) = (tags.asg.as_deref(), tags.cluster.as_deref());
        self.publish_metrics(crate::metrics::Moment::Abandon, aws, asg, cluster)
            .await;
        let res = phase(Some(&self.store), "launch-hook", async {
            let hooks = match &life.hooks {
                Some(h) => h.clone(),
                None => GroupHooks::discover(aws, &tags, &identity.instance_id).await?,
            };
            let hook = hooks.resolve(config, &tags, &identity.instance_id, Transition::Launch)?;
            let action = HookAction::begin(
                aws.clone(),
                self.store.clone(),
                Transition::Launch,
                hook,
                Duration::from_secs(3600),
                Duration::ZERO, // completed at once: no beat
            );
            let r = action
                .complete(HookResult::Abandon, Some(cause.clone()), None)
                .await?;
            Ok((
                (),
                Some(match r.result {
                    HookResult::Skipped => "no launch hook to abandon".to_string(),
                    _ => format!("ABANDON {} on {}: {cause}", r.hook, r.asg),
                }),
            ))
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot abandon the launch hook");
        }
    }
}
