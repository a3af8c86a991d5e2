//! Waiting for what comes next: parked in the warm pool, or in service (or drained) watching
//! for termination notices, operator requests and signals.

use super::{Agent, Life, Signals};
use crate::error::{Error, Result};
use crate::lifecycle::machine::{Cause, Event};
use crate::lifecycle::notice;
use crate::lifecycle::watch;
use crate::status::state::Transition;
use crate::util::clock::SystemClock;
use std::time::Duration;

impl Agent {
    /// Warm pool: complete the pool's launch hook; systemd gets READY=1 (its start timeout must
    /// not kill us while parked), but the gate stays closed, so the agent never registers.
    pub(super) async fn park(&self, life: &mut Life) -> Result<()> {
        let p = life
            .prepared
            .as_ref()
            .ok_or_else(|| Error::Other("parked before the config phase".into()))?;
        let state = self
            .imds
            .target_lifecycle_state()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        self.park_hook(p, &mut life.hooks, &state).await?;
        crate::util::notify::ready(&format!(
            "parked in the warm pool ({state}); the ECS agent waits"
        ));
        Ok(())
    }

    /// Parked: wait until the instance leaves the pool (src/lifecycle/watch).
    pub(super) async fn wait_in_pool(&self, life: &Life, signals: &mut Signals) -> Event {
        let poll = life
            .prepared
            .as_ref()
            .map_or(Duration::from_secs(5), |p| p.config.drain.poll_interval);
        watch::in_pool(&self.imds, &SystemClock, poll, signals).await
    }

    /// In service (or drained): termination notices, operator requests, reload, stop.
    pub(super) async fn watch(
        &self,
        life: &mut Life,
        signals: &mut Signals,
        drained: bool,
    ) -> Event {
        let Some(p) = life.prepared.as_ref() else {
            // Resumed drained after a restart without a config phase: only stopping is possible.
            signals.stop().await;
            return Event::Stop;
        };
        if !drained {
            // From here the agent sleeps and polls: the boot path's code pages go back to the
            // kernel (src/util/pageout.rs).
            let bytes = crate::util::pageout::release_own_code();
            tracing::debug!(bytes, "in service: the boot path's code pages released");
        }
        // The essential containers' health runs beside the watch: a death for good under
        // `[health] on_essential_failure = "drain"` ends it like an operator drain.
        let (trigger, event) = tokio::select! {
            t = self.keep_ready(&mut life.readiness, p), if !drained => {
                (Some(t), Event::Terminating(Cause::Operator))
            }
            r = watch::in_service(&self.imds, &SystemClock, &p.config, drained, signals) => r,
        };
        if !drained {
            crate::util::pageout::restore_own_code();
        }
        if trigger.is_some() {
            life.trigger = trigger;
        }
        if event == Event::Stop && !drained {
            self.stop_best_effort(life).await;
        }
        event
    }

    /// SIGTERM in service: systemd has already stopped ecs.service (ordered after us), so only
    /// what needs no agent is done: if termination is under way, drain as far as time allows.
    pub(super) async fn stop_best_effort(&self, life: &mut Life) {
        let Some(p) = life.prepared.as_ref() else {
            return;
        };
        let Some(trigger) = notice::check_once(&self.imds, &p.config).await else {
            return;
        };
        if self
            .store
            .snapshot()
            .hook_done(Transition::Terminate)
            .is_some()
        {
            return;
        }
        tracing::info!(
            "stopping while termination is under way: draining as far as the stop timeout allows"
        );
        let cause = trigger.cause();
        life.trigger = Some(trigger);
        let work = async {
            self.drain(life).await?;
            if cause == Cause::Lifecycle {
                self.complete_terminate(life).await?;
            }
            Ok::<(), Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(60), work).await {
            Err(_) => tracing::warn!("best-effort drain did not finish before the stop timeout"),
            Ok(Err(e)) => tracing::warn!(error = %e, "best-effort drain failed"),
            Ok(Ok(())) => {}
        }
    }
}
