//! Each stage's ongoing work (until its next event) and the table's actions, dispatched.

use super::{Agent, Life, Signals};
use crate::error::{Error, Result};
use crate::lifecycle::boot::{self};
use crate::lifecycle::drain::Trigger;
use crate::lifecycle::handlers::{self, Hook};
use crate::lifecycle::launch::launch_event;
use crate::lifecycle::machine::{Action, Cause, Event, Stage};
use crate::status::state::PhaseStatus;
use std::time::Duration;

impl Agent {
    /// The ongoing work of `stage`, until something happens that the table may act on.
    pub(super) async fn work(
        &mut self,
        stage: Stage,
        life: &mut Life,
        signals: &mut Signals,
    ) -> Event {
        match stage {
            Stage::Config => tokio::select! {
                e = self.configure(life) => e,
                _ = signals.stop() => Event::Stop,
            },
            Stage::Launch => {
                let Some(p) = life.prepared.as_ref() else {
                    return Event::Failed;
                };
                let (event, failure) =
                    launch_event(self.launch(p, &mut life.hooks), signals.stop()).await;
                if failure.is_some() {
                    life.failure = failure;
                }
                event
            }
            Stage::Warmed => self.wait_in_pool(life, signals).await,
            Stage::InService => self.watch(life, signals, false).await,
            Stage::Drained => self.watch(life, signals, true).await,
            Stage::Draining => {
                let cause = self.drain_cause(life);
                let until_drained = async {
                    // A failed step (an API error) is retried: the drain record makes each
                    // attempt resume where the last one stopped. Not past the drain's deadline:
                    // then the drain ends as one that ran out of time (result_on_deadline), so
                    // a step that keeps failing (a permission missing, DRAINING throttled for
                    // good) cannot hold a terminating instance until the hook's global timeout.
                    while let Err(e) = self.drain(life).await {
                        if self.end_drain_past_deadline() {
                            tracing::error!(error = %e, "drain step failed past the drain deadline; ending the drain");
                            break;
                        }
                        tracing::error!(error = %e, "drain step failed; retrying");
                        tokio::time::sleep(crate::util::retry::jitter(Duration::from_secs(5)))
                            .await;
                    }
                    // Before the terminate action completes: its heartbeats still run.
                    let _ = self.hook(life, Hook::PostDrain, cause).await;
                };
                tokio::select! {
                    () = until_drained => Event::DrainEnded(cause),
                    _ = signals.stop() => Event::Stop,
                }
            }
            Stage::Terminated => {
                signals.stop().await;
                Event::Stop
            }
            Stage::Failed => Event::Stop,
        }
    }

    pub(super) async fn perform(&mut self, action: Action, life: &mut Life) -> Result<()> {
        match action {
            Action::Release => {
                let p = life
                    .prepared
                    .as_ref()
                    .ok_or_else(|| Error::Other("released before the config phase".into()))?;
                boot::open_gate(p, &self.paths)?;
                crate::util::notify::ready("ecs.config written; waiting for the ECS agent");
            }
            Action::Park => self.park(life).await?,
            Action::Watch => {
                let drained = self.store.snapshot().stage == Some(Stage::Draining);
                let what = if drained {
                    "drained; waiting for termination or `ecs-boot undrain`"
                } else {
                    "in service"
                };
                if let (false, Some(p)) = (drained, life.prepared.as_ref()) {
                    // A journald field operators search by (`journalctl INSTANCE_ID=i-…`).
                    tracing::info!(INSTANCE_ID = %p.identity.instance_id, cluster = p.env.cluster(), "boot complete: in service");
                }
                crate::util::notify::status(what);
                if !drained {
                    self.hook(life, Hook::InService, Cause::Lifecycle).await?;
                }
                if !drained
                    && life
                        .prepared
                        .as_ref()
                        .is_some_and(|p| !p.config.drain.enabled)
                {
                    self.store.begin("termination-watch");
                    let why =
                        "[drain] enabled = false (another drainer, e.g. ECS managed draining)";
                    self.store.end(
                        "termination-watch",
                        PhaseStatus::Skipped,
                        Some(why.into()),
                        None,
                    );
                }
            }
            Action::Drain(cause) => {
                if life.trigger.is_none() || cause == Cause::Lifecycle {
                    life.trigger = Some(
                        life.trigger
                            .take()
                            .filter(|_| cause != Cause::Lifecycle)
                            .unwrap_or_else(|| Trigger::from_cause(cause)),
                    );
                }
                if cause == Cause::Lifecycle {
                    self.open_terminate_action(life).await?;
                }
                self.hook(life, Hook::PreDrain, cause).await?;
            }
            Action::CompleteTerminate => self.complete_terminate(life).await?,
            Action::Reactivate => {
                self.reactivate(life).await?;
                handlers::close_drain(&self.store);
            }
            Action::Abandon => {
                // Before the ABANDON: the instance is still there for diagnostics.
                let _ = self.hook(life, Hook::OnFailure, Cause::Lifecycle).await;
                self.abandon_launch(life).await
            }
            Action::Reload => {
                crate::util::notify::reloading();
                match self.reload(life).await {
                    Ok(()) => crate::util::notify::ready("reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "reload failed; keeping the running configuration");
                        crate::util::notify::ready("reload failed; running configuration kept");
                    }
                }
            }
            Action::Exit => {}
        }
        Ok(())
    }
}
