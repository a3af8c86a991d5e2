//! The launch stage over small traits: wait for the local ECS agent to register (its
//! introspection API) within the registration deadline, mark the container instance ready
//! (PutAttributes `ecs-boot.ready`), complete the launch hook exactly once; and the warm-pool
//! variant, which only completes its hook (a warming instance's agent never registers). ECS and
//! the agent are reached through lifecycle/ports/, Auto Scaling through hook's `LifecycleApi`,
//! time through util/clock.rs, so tests.rs drives every path on fakes in milliseconds.

use crate::error::{Error, Result};
use crate::lifecycle::boot::phase;
use crate::lifecycle::hook::{HookAction, LifecycleApi};
use crate::lifecycle::machine::Event;
use crate::lifecycle::ports::{AgentView, EcsControl};
use crate::sources::ecs_agent::{Metadata, RegistrationError, Unavailable, cluster_name};
use crate::status::state::{HookResult, Registration, StateStore, Transition};
use crate::util::clock::Clock;
use crate::util::retry::{self, Backoff, Poll, WaitError};
use std::future::Future;
use std::time::{Duration, Instant};

/// The launch stage's world: the agent and ECS, a clock, the state it records into.
pub struct Launch<'a, W, C> {
    pub world: W,
    pub clock: &'a C,
    pub store: &'a StateStore,
    /// The cluster ecs.config names: the agent must register into this one.
    pub cluster: &'a str,
    pub registration_timeout: Duration,
}

impl<W: AgentView + EcsControl, C: Clock> Launch<'_, W, C> {
    /// `containers` (the caller's phase) and the registration side by side; once both are done,
    /// the instance is marked ready and the launch hook completed. The action's heartbeats keep
    /// the hook alive meanwhile.
    pub async fn run<A: LifecycleApi>(
        &self,
        action: HookAction<A>,
        containers: impl Future<Output = Result<()>>,
    ) -> Result<()> {
        let ((), registered) = tokio::try_join!(containers, self.register())?;
        self.mark_ready().await?;
        self.complete_hook(action, registered).await
    }

    /// The `registration` phase: waits for the agent, then records the container instance.
    async fn register(&self) -> Result<Instant> {
        phase(Some(self.store), "registration", async {
            let (meta, arn) = wait_registered(
                &self.world,
                self.clock,
                self.cluster,
                self.registration_timeout,
            )
            .await?;
            let registered = Instant::now();
            let detail = format!("{arn} in {}", meta.cluster);
            self.store.update(|s| {
                s.registration = Some(Registration {
                    container_instance_arn: arn,
                    cluster: meta.cluster.clone(),
                    agent_version: meta.version.clone(),
                    registered_at: self.clock.now_utc(),
                })
            });
            Ok((registered, Some(detail)))
        })
        .await
    }

    /// The `readiness` phase: the container instance is marked ready for placement
    /// (readiness.rs). A failure fails the launch (ABANDON): a node that can never be marked
    /// ready would sit idle.
    async fn mark_ready(&self) -> Result<()> {
        let registration = self
            .store
            .snapshot()
            .registration
            .ok_or_else(|| Error::Other("marked ready before registration".into()))?;
        let arn = registration.container_instance_arn;
        phase(Some(self.store), "readiness", async {
            self.world.set_ready(self.cluster, &arn, true).await?;
            let detail = format!("{}=true on {arn}", crate::ecs_config::attribute::READY);
            Ok(((), Some(detail)))
        })
        .await
    }

    /// The `launch-hook` phase: CONTINUE, unless a run before a restart already completed it.
    async fn complete_hook<A: LifecycleApi>(
        &self,
        action: HookAction<A>,
        registered: Instant,
    ) -> Result<()> {
        if self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_some()
        {
            return Ok(());
        }
        phase(Some(self.store), "launch-hook", async {
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
        .await
    }

    /// The warm-pool variant: the warmed launch hook is completed, nothing else; the gate stays
    /// closed, so the agent never starts and never registers while the instance parks.
    pub async fn park<A: LifecycleApi>(&self, action: HookAction<A>, target: &str) -> Result<()> {
        phase(Some(self.store), "warm-pool-hook", async {
            let r = action.complete(HookResult::Continue, None, None).await?;
            Ok(((), Some(format!("{} {} ({target})", r.result, r.hook))))
        })
        .await
    }
}

/// The launch as the table sees it: launched, failed (the error kept for the table's Abandon),
/// or stopped by SIGTERM first — then nothing more is sent, and the next start resumes.
pub async fn launch_event(
    launch: impl Future<Output = Result<()>>,
    stop: impl Future,
) -> (Event, Option<Error>) {
    tokio::select! {
        biased;
        _ = stop => (Event::Stop, None),
        r = launch => match r {
            Ok(()) => (Event::Launched, None),
            Err(e) => (Event::Failed, Some(e)),
        },
    }
}

/// Waits until the agent reports a container instance ARN in `expected_cluster`. The poll is a
/// loopback request (or a refused connection, some tens of microseconds), so it is asked every
/// 10-20 ms for the whole wait: the launch hook follows registration within tens of
/// milliseconds (issue 23: p99 <= 50 ms), for well under 1 % of a core while the agent starts.
pub async fn wait_registered(
    agent: &impl AgentView,
    clock: &impl Clock,
    expected_cluster: &str,
    deadline: Duration,
) -> std::result::Result<(Metadata, String), RegistrationError> {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(20));
    let result = retry::poll_until_on(clock, deadline, backoff, || async {
        registration_poll(agent.metadata().await, expected_cluster)
    })
    .await;
    match result {
        Ok(v) => Ok(v),
        Err(WaitError::Fatal(e)) => Err(e),
        Err(WaitError::Deadline { waited, last }) => Err(RegistrationError(format!(
            "the ECS agent did not register within {}s: {last}",
            waited.as_secs()
        ))),
    }
}

/// What one answer of `/v1/metadata` says about the registration.
fn registration_poll(
    answer: std::result::Result<Metadata, Unavailable>,
    expected_cluster: &str,
) -> Poll<(Metadata, String), RegistrationError> {
    let m = match answer {
        Err(Unavailable::NotListening) => {
            return Poll::Pending(
                "the agent's introspection port is not open yet (not registered)".into(),
            );
        }
        Err(Unavailable::Other(e)) => return Poll::Pending(e),
        Ok(m) => m,
    };
    match m.container_instance_arn.clone().filter(|a| !a.is_empty()) {
        None => Poll::Pending("the agent answers but reports no container instance yet".into()),
        Some(_) if cluster_name(&m.cluster) != expected_cluster => {
            Poll::Fatal(RegistrationError(format!(
                "the ECS agent registered into cluster {:?}, not {expected_cluster:?} (stale checkpoint in /var/lib/ecs/data, or ecs.config overridden?)",
                m.cluster
            )))
        }
        Some(arn) => Poll::Ready((m, arn)),
    }
}
