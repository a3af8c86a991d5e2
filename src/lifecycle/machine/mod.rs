//! The life of an instance as a table: which event moves it from which stage to which, and what
//! the agent does on the way. Pure data and one lookup function, so every (stage, event) pair is
//! unit-tested here, and `run` is a loop that waits for the next event and performs the action.
//!
//! ```text
//!  stage        event                      next         action
//!  Config       ConfigWritten(InService*)  Launch       Release     (gate opens, READY=1)
//!  Config       ConfigWritten(Warmed:*)    Warmed       Park        (READY=1, gate stays closed)
//!  Config       Failed                     Failed       Abandon
//!  Warmed       TargetInService            Launch       Release
//!  Warmed       Terminating(Lifecycle)     Terminated   CompleteTerminate (never registered)
//!  Launch       Launched                   InService    Watch
//!  Launch       Failed                     Failed       Abandon
//!  InService    Terminating(t)             Draining     Drain(t)
//!  Draining     DrainEnded(Lifecycle)      Terminated   CompleteTerminate
//!  Draining     DrainEnded(other)          Drained      Watch       (no termination yet)
//!  Drained      Terminating(Lifecycle)     Draining     Drain       (finds no task: at once)
//!  Drained      Undrain                    InService    Reactivate
//!  any live     Reload                     same         Reload
//!  any          Stop                       same         Exit
//! ```
//! (*) InService, or no target state yet: an instance launched straight into the group.

// The stages and causes are persisted, so their types live with the state file.
pub use crate::status::state::{Cause, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// ecs.config is on disk; `warmed`: the target lifecycle state is `Warmed:*`.
    ConfigWritten { warmed: bool },
    /// The target state went from `Warmed:*` to `InService` without a reboot.
    TargetInService,
    /// Containers up, agent registered, launch hook completed (or none).
    Launched,
    /// A boot phase failed (config, containers, registration, launch hook).
    Failed,
    /// Termination is coming, or an operator asked for a drain.
    Terminating(Cause),
    /// Tasks are gone (or the deadline passed); carries what started the drain.
    DrainEnded(Cause),
    /// `ecs-boot undrain`: the operator returns a drained instance to service.
    Undrain,
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the ready marker (the gate opens) and tell systemd READY=1: ecs.service may start.
    Release,
    /// READY=1 so systemd is content, but no ready marker: the gate keeps the agent from
    /// registering while warmed (amazon-ecs-agent#3000); complete the warm pool's launch hook.
    Park,
    /// Watch for termination (target state, spot and rebalance notices, operator drain).
    Watch,
    /// Set DRAINING (unless ECS already did), wait for the tasks, stop system containers.
    Drain(Cause),
    /// Complete the terminate lifecycle action (exactly once), if one exists.
    CompleteTerminate,
    /// Set the container instance ACTIVE again (only if ecs-boot set it DRAINING).
    Reactivate,
    /// ABANDON the launch hook with the cause (unless `on_failure = "leave"`).
    Abandon,
    /// Re-read the trusted config, the fragment and credentials; re-render; re-reconcile.
    Reload,
    Exit,
}

/// One row of the table: in `from`, `event` leads to `to` by way of `action`.
pub struct Row {
    pub from: Stage,
    pub event: fn(&Event) -> bool,
    pub to: Stage,
    pub action: fn(&Event) -> Action,
}

use Stage::*;

const fn row(
    from: Stage,
    event: fn(&Event) -> bool,
    to: Stage,
    action: fn(&Event) -> Action,
) -> Row {
    Row {
        from,
        event,
        to,
        action,
    }
}

/// The table. Order matters only where two rows of one stage match one event (none do; a test
/// checks it). A pair with no row is ignored: the event means nothing in that stage.
pub const TABLE: &[Row] = &[
    row(
        Config,
        |e| matches!(e, Event::ConfigWritten { warmed: false }),
        Launch,
        |_| Action::Release,
    ),
    row(
        Config,
        |e| matches!(e, Event::ConfigWritten { warmed: true }),
        Warmed,
        |_| Action::Park,
    ),
    row(
        Config,
        |e| matches!(e, Event::Failed),
        Failed,
        |_| Action::Abandon,
    ),
    row(
        Warmed,
        |e| matches!(e, Event::TargetInService),
        Launch,
        |_| Action::Release,
    ),
    row(
        Warmed,
        |e| matches!(e, Event::Terminating(Cause::Lifecycle)),
        Terminated,
        |_| Action::CompleteTerminate,
    ),
    row(
        Warmed,
        |e| matches!(e, Event::Failed),
        Failed,
        |_| Action::Abandon,
    ),
    row(
        Launch,
        |e| matches!(e, Event::Launched),
        InService,
        |_| Action::Watch,
    ),
    row(
        Launch,
        |e| matches!(e, Event::Failed),
        Failed,
        |_| Action::Abandon,
    ),
    row(
        InService,
        |e| matches!(e, Event::Terminating(_)),
        Draining,
        |e| match e {
            Event::Terminating(c) => Action::Drain(*c),
            _ => unreachable!("matched Terminating"),
        },
    ),
    row(
        Draining,
        |e| matches!(e, Event::DrainEnded(Cause::Lifecycle)),
        Terminated,
        |_| Action::CompleteTerminate,
    ),
    row(
        Draining,
        |e| matches!(e, Event::DrainEnded(c) if *c != Cause::Lifecycle),
        Drained,
        |_| Action::Watch,
    ),
    // Re-checked through a drain (tasks already gone: it ends at once), so a task started in
    // between is never cut off.
    row(
        Drained,
        |e| matches!(e, Event::Terminating(Cause::Lifecycle)),
        Draining,
        |_| Action::Drain(Cause::Lifecycle),
    ),
    row(
        Drained,
        |e| matches!(e, Event::Undrain),
        InService,
        |_| Action::Reactivate,
    ),
    row(
        InService,
        |e| matches!(e, Event::Reload),
        InService,
        |_| Action::Reload,
    ),
    row(
        Drained,
        |e| matches!(e, Event::Reload),
        Drained,
        |_| Action::Reload,
    ),
    row(
        Warmed,
        |e| matches!(e, Event::Reload),
        Warmed,
        |_| Action::Reload,
    ),
];

/// The next stage and the action for `event` in `stage`; `None`: ignored there. `Stop` is
/// accepted everywhere and keeps the stage (the state file says where a restart resumes).
pub fn next(stage: Stage, event: &Event) -> Option<(Stage, Action)> {
    if matches!(event, Event::Stop) {
        return Some((stage, Action::Exit));
    }
    TABLE
        .iter()
        .find(|r| r.from == stage && (r.event)(event))
        .map(|r| (r.to, (r.action)(event)))
}

/// Where a restarted agent resumes, from the stage it persisted. A boot that had not reached
/// service starts over (every step is idempotent: ecs.config, containers, exactly-once hooks);
/// later stages carry on where they were.
pub fn resume(persisted: Option<Stage>) -> Stage {
    match persisted {
        None | Some(Config) | Some(Launch) | Some(Warmed) | Some(Failed) => Config,
        Some(InService) => Config, // re-verify the config; the launch hook is already recorded
        Some(Draining) => Draining,
        Some(Drained) => Drained,
        Some(Terminated) => Terminated,
    }
}

/// What the loop needs from the world: the work of a stage (until its next event), an action,
/// and where to keep the stage. `run/` implements it over IMDS, AWS, Docker and the state file;
/// the tests below over a script. The agent runs on one thread, so no `Send` bound is wanted.
#[allow(async_fn_in_trait)]
pub trait Driven {
    /// The ongoing work of `stage`, until something happens that the table may act on.
    async fn work(&mut self, stage: Stage) -> Event;
    async fn perform(&mut self, action: Action) -> Result<(), crate::error::Error>;
    /// Records the stage (durably: a restart resumes from it).
    fn enter(&mut self, stage: Stage);
    /// The failure a stage's work recorded, for the exit code.
    fn take_failure(&mut self) -> Option<crate::error::Error>;
    fn set_failure(&mut self, e: crate::error::Error);
}

/// The one loop: from `start`, until Exit. A failed boot exits with its error (systemd retries
/// the unit); a failed action before service is a failed boot (ABANDON); after it, an error exit.
pub async fn drive<D: Driven>(world: &mut D, start: Stage) -> Result<(), crate::error::Error> {
    let mut stage = start;
    world.enter(stage);
    let mut event = world.work(stage).await;
    loop {
        let Some((to, action)) = next(stage, &event) else {
            tracing::debug!(?stage, ?event, "event means nothing in this stage");
            event = world.work(stage).await;
            continue;
        };
        tracing::info!(from = ?stage, ?event, to = ?to, ?action, "lifecycle");
        if action == Action::Exit {
            return match world.take_failure() {
                Some(e) if stage == Failed => Err(e),
                _ => Ok(()),
            };
        }
        if let Err(e) = world.perform(action).await {
            tracing::error!(error = %e, ?action, "lifecycle action failed");
            if matches!(stage, Config | Warmed | Launch) {
                world.set_failure(e);
                event = Event::Failed;
                continue;
            }
            return Err(e);
        }
        if to != stage {
            world.enter(to);
        }
        stage = to;
        event = world.work(stage).await;
    }
}

/// Every stage, for exhaustive tests and documentation.
pub const STAGES: &[Stage] = &[
    Config, Warmed, Launch, InService, Draining, Drained, Terminated, Failed,
];

#[cfg(test)]
mod tests;
