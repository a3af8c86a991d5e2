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
mod loop_tests {
    //! The loop over a scripted world: the events each stage's work yields, in order; which
    //! actions fail. What it records is what the loop did.
    use super::*;
    use crate::error::Error;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct Script {
        events: VecDeque<Event>,
        failing: Vec<Action>,
        entered: Vec<Stage>,
        performed: Vec<Action>,
        failure: Option<Error>,
    }

    impl Driven for Script {
        async fn work(&mut self, stage: Stage) -> Event {
            let e = self.events.pop_front().unwrap_or(Event::Stop);
            if e == Event::Failed && stage != Failed {
                self.failure = Some(Error::Other(format!("{stage:?} failed")));
            }
            e
        }
        async fn perform(&mut self, action: Action) -> Result<(), Error> {
            self.performed.push(action);
            if self.failing.contains(&action) {
                return Err(Error::Other(format!("{action:?} failed")));
            }
            Ok(())
        }
        fn enter(&mut self, stage: Stage) {
            self.entered.push(stage);
        }
        fn take_failure(&mut self) -> Option<Error> {
            self.failure.take()
        }
        fn set_failure(&mut self, e: Error) {
            self.failure = Some(e);
        }
    }

    fn run(start: Stage, events: &[Event], failing: &[Action]) -> (Script, Result<(), Error>) {
        let mut s = Script {
            events: events.iter().copied().collect(),
            failing: failing.to_vec(),
            ..Script::default()
        };
        let r = futures_util::FutureExt::now_or_never(drive(&mut s, start)).expect("no awaits");
        (s, r)
    }

    #[test]
    fn a_whole_life_from_boot_to_terminate_hook() {
        let (s, r) = run(
            Config,
            &[
                Event::ConfigWritten { warmed: false },
                Event::Launched,
                Event::Reload,
                Event::Terminating(Cause::Lifecycle),
                Event::DrainEnded(Cause::Lifecycle),
                Event::Stop,
            ],
            &[],
        );
        assert!(r.is_ok());
        assert_eq!(s.entered, [Config, Launch, InService, Draining, Terminated]);
        assert_eq!(
            s.performed,
            [
                Action::Release,
                Action::Watch,
                Action::Reload,
                Action::Drain(Cause::Lifecycle),
                Action::CompleteTerminate
            ]
        );
    }

    #[test]
    fn a_failed_boot_abandons_and_exits_with_its_error() {
        let (s, r) = run(Config, &[Event::Failed], &[]);
        assert!(r.unwrap_err().to_string().contains("Config failed"));
        assert_eq!(s.performed, [Action::Abandon]);
        assert_eq!(s.entered, [Config, Failed]);
    }

    #[test]
    fn a_failed_action_before_service_is_a_failed_boot() {
        let (s, r) = run(
            Config,
            &[Event::ConfigWritten { warmed: false }],
            &[Action::Release],
        );
        assert!(r.unwrap_err().to_string().contains("Release failed"));
        assert_eq!(s.performed, [Action::Release, Action::Abandon]);
    }

    #[test]
    fn a_failed_action_in_service_exits_with_its_error_without_abandoning() {
        let (s, r) = run(
            InService,
            &[
                Event::Terminating(Cause::Lifecycle),
                Event::DrainEnded(Cause::Lifecycle),
            ],
            &[Action::CompleteTerminate],
        );
        assert!(r.is_err());
        assert!(!s.performed.contains(&Action::Abandon));
    }

    #[test]
    fn events_that_mean_nothing_are_ignored_and_stop_keeps_the_stage() {
        let (s, r) = run(
            InService,
            &[
                Event::Launched,
                Event::Undrain,
                Event::DrainEnded(Cause::Operator),
                Event::Stop,
            ],
            &[],
        );
        assert!(r.is_ok());
        assert!(s.performed.is_empty());
        assert_eq!(s.entered, [InService]);
    }

    #[test]
    fn a_restart_mid_drain_drains_then_completes() {
        let (s, _) = run(
            resume(Some(Draining)),
            &[Event::DrainEnded(Cause::Lifecycle)],
            &[],
        );
        assert_eq!(s.performed, [Action::CompleteTerminate]);
    }

    #[test]
    fn warmed_then_in_service_in_the_same_run() {
        let (s, _) = run(
            Config,
            &[
                Event::ConfigWritten { warmed: true },
                Event::TargetInService,
                Event::Launched,
            ],
            &[],
        );
        assert_eq!(s.performed, [Action::Park, Action::Release, Action::Watch]);
        assert_eq!(s.entered, [Config, Warmed, Launch, InService]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAUSES: &[Cause] = &[
        Cause::Lifecycle,
        Cause::Spot,
        Cause::Rebalance,
        Cause::Operator,
    ];

    fn events() -> Vec<Event> {
        let mut e = vec![
            Event::ConfigWritten { warmed: false },
            Event::ConfigWritten { warmed: true },
            Event::TargetInService,
            Event::Launched,
            Event::Failed,
            Event::Undrain,
            Event::Reload,
            Event::Stop,
        ];
        for c in CAUSES {
            e.push(Event::Terminating(*c));
            e.push(Event::DrainEnded(*c));
        }
        e
    }

    /// The whole table, written out once more by hand: every (stage, event) pair, so a change to
    /// TABLE that this list does not also make fails here.
    fn expected(stage: Stage, e: &Event) -> Option<(Stage, Action)> {
        use Action as A;
        use Event as E;
        Some(match (stage, e) {
            (s, E::Stop) => (s, A::Exit),
            (Config, E::ConfigWritten { warmed: false }) => (Launch, A::Release),
            (Config, E::ConfigWritten { warmed: true }) => (Warmed, A::Park),
            (Config | Warmed | Launch, E::Failed) => (Failed, A::Abandon),
            (Warmed, E::TargetInService) => (Launch, A::Release),
            (Warmed, E::Terminating(Cause::Lifecycle)) => (Terminated, A::CompleteTerminate),
            (Launch, E::Launched) => (InService, A::Watch),
            (InService, E::Terminating(c)) => (Draining, A::Drain(*c)),
            (Draining, E::DrainEnded(Cause::Lifecycle)) => (Terminated, A::CompleteTerminate),
            (Draining, E::DrainEnded(_)) => (Drained, A::Watch),
            (Drained, E::Terminating(Cause::Lifecycle)) => (Draining, A::Drain(Cause::Lifecycle)),
            (Drained, E::Undrain) => (InService, A::Reactivate),
            (s @ (InService | Drained | Warmed), E::Reload) => (s, A::Reload),
            _ => return None,
        })
    }

    #[test]
    fn every_stage_and_event_pair_follows_the_table() {
        for stage in STAGES {
            for e in events() {
                assert_eq!(next(*stage, &e), expected(*stage, &e), "{stage:?} + {e:?}");
            }
        }
    }

    #[test]
    fn no_two_rows_of_a_stage_match_one_event() {
        for stage in STAGES {
            for e in events() {
                let n = TABLE
                    .iter()
                    .filter(|r| r.from == *stage && (r.event)(&e))
                    .count();
                assert!(n <= 1, "{stage:?} + {e:?} matches {n} rows");
            }
        }
    }

    #[test]
    fn a_drain_without_a_termination_never_completes_the_terminate_hook() {
        for c in [Cause::Spot, Cause::Rebalance, Cause::Operator] {
            assert_eq!(
                next(Draining, &Event::DrainEnded(c)),
                Some((Drained, Action::Watch))
            );
        }
        // ...and the later real termination does, after a drain that finds the tasks gone.
        assert_eq!(
            next(Drained, &Event::Terminating(Cause::Lifecycle)),
            Some((Draining, Action::Drain(Cause::Lifecycle)))
        );
        assert_eq!(
            next(Draining, &Event::DrainEnded(Cause::Lifecycle)),
            Some((Terminated, Action::CompleteTerminate))
        );
    }

    #[test]
    fn a_warmed_instance_never_releases_the_agent_until_in_service() {
        assert_eq!(
            next(Config, &Event::ConfigWritten { warmed: true }),
            Some((Warmed, Action::Park))
        );
        for e in events() {
            if let Some((_, a)) = next(Warmed, &e) {
                assert!(a != Action::Release || e == Event::TargetInService, "{e:?}");
            }
        }
    }

    #[test]
    fn terminal_stages_only_stop() {
        for stage in [Terminated, Failed] {
            for e in events() {
                match next(stage, &e) {
                    None | Some((_, Action::Exit)) => {}
                    other => panic!("{stage:?} + {e:?} -> {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_restart_resumes_from_every_persisted_stage() {
        for s in STAGES {
            let r = resume(Some(*s));
            match s {
                Draining | Drained | Terminated => assert_eq!(r, *s),
                _ => assert_eq!(r, Config, "{s:?}"),
            }
        }
        assert_eq!(resume(None), Config);
    }
}
