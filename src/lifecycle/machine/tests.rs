//! The table checked pair by pair, and the loop over a scripted world.

mod loop_tests {
    //! The loop over a scripted world: the events each stage's work yields, in order; which
    //! actions fail. What it records is what the loop did.
    use super::super::*;
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

    /// Each stage written to a state file, the file read back by a restarted agent, and the life
    /// driven on from where `resume` puts it.
    #[test]
    fn a_restart_from_every_persisted_stage_takes_up_its_life() {
        use crate::status::state::StateStore;
        let booting = [Event::ConfigWritten { warmed: false }, Event::Launched];
        for persisted in STAGES.iter().copied().map(Some).chain([None]) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.json");
            if let Some(stage) = persisted {
                StateStore::open(path.clone()).set_stage(stage);
            }
            let read_back = StateStore::open(path).snapshot().stage;
            assert_eq!(read_back, persisted);
            let (events, entered, performed): (&[Event], &[Stage], &[Action]) = match persisted {
                Some(Draining) => (
                    &[Event::DrainEnded(Cause::Lifecycle)],
                    &[Draining, Terminated],
                    &[Action::CompleteTerminate],
                ),
                Some(Drained) => (
                    &[
                        Event::Terminating(Cause::Lifecycle),
                        Event::DrainEnded(Cause::Lifecycle),
                    ],
                    &[Drained, Draining, Terminated],
                    &[Action::Drain(Cause::Lifecycle), Action::CompleteTerminate],
                ),
                Some(Terminated) => (
                    &[Event::Terminating(Cause::Lifecycle), Event::Undrain],
                    &[Terminated],
                    &[],
                ),
                // Not yet in service, failed, or in service: the config phase again (every
                // step idempotent, the launch hook's completion already recorded).
                _ => (
                    &booting,
                    &[Config, Launch, InService],
                    &[Action::Release, Action::Watch],
                ),
            };
            let (s, r) = run(resume(read_back), events, &[]);
            assert!(r.is_ok(), "{persisted:?}");
            assert_eq!(s.entered, entered, "{persisted:?}");
            assert_eq!(s.performed, performed, "{persisted:?}");
        }
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

mod table {
    use super::super::*;

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
