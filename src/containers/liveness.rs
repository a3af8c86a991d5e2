//! Whether the essential system containers are alive, once the launch is done: a pure state
//! machine fed by Docker events and by snapshots of the engine (taken at every (re)subscription,
//! so a death missed while the event stream was down is not lost). It never does I/O; the watch
//! (watch.rs) feeds it and asks when its next deadline falls.
//!
//! | state      | input                                  | next       | why                                        |
//! |------------|----------------------------------------|------------|--------------------------------------------|
//! | Up         | die / unhealthy / snapshot not running | Down       | the restart policy gets `grace` to act     |
//! | Up         | die, the `CRASH_LOOP_RESTARTS`th in `grace * CRASH_WINDOW_GRACES` | Failed | restarting in a loop      |
//! | Down       | start / healthy / snapshot running     | Up         | the restart policy did its job             |
//! | Down       | `grace` elapsed                        | Failed     | dead for good: counted, readiness `false`  |
//! | any        | destroy                                | Failed     | no restart policy brings a removed one back |
//! | Failed     | start / snapshot running               | Recovering |                                            |
//! | Recovering | `grace` of uptime elapsed              | Up         | healthy again: readiness `true`            |
//! | Recovering | die / destroy / snapshot not running   | Failed     |                                            |
//!
//! Events for another container id than the one known under a name are stale (a container
//! replaced by a reload) and ignored, except a start, which adopts the new id.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Exits within the crash window that make a restart loop (as at launch, containers/up.rs).
pub const CRASH_LOOP_RESTARTS: usize = super::up::CRASH_LOOP_RESTARTS as usize;
/// The crash window, in graces: Docker's restart backoff doubles from 100 ms, so a crash loop
/// exits several times within a few graces.
pub const CRASH_WINDOW_GRACES: u32 = 6;

/// What the engine said about one of our containers (by its `[[container]]` name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Started {
        id: String,
    },
    Died {
        id: String,
        exit_code: Option<i64>,
    },
    Destroyed {
        id: String,
    },
    Health {
        id: String,
        healthy: bool,
    },
    /// The engine's current view, from a listing: `None` when no such container exists.
    Snapshot {
        id: Option<String>,
        running: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    Up,
    /// Not running since `since`; the restart policy has until `since + grace`.
    Down {
        since: Instant,
        why: String,
    },
    /// Dead for good.
    Failed {
        why: String,
    },
    /// Running again since `since` after a failure; healthy after `grace` of uptime.
    Recovering {
        since: Instant,
        why: String,
    },
}

#[derive(Debug, Clone)]
struct Tracked {
    id: Option<String>,
    life: Life,
    exits: VecDeque<Instant>,
}

/// A container that is dead for good, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub cause: String,
}

/// A change the watch acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `name` is dead for good (one more essential failure).
    Failed(Failure),
    /// `name` counts as healthy again.
    Recovered(String),
}

/// Every essential container's life; all start `Up` (the launch waited for them).
#[derive(Debug, Clone)]
pub struct Tracker {
    grace: Duration,
    containers: BTreeMap<String, Tracked>,
}

impl Tracker {
    pub fn new(essential: impl IntoIterator<Item = String>, grace: Duration) -> Tracker {
        let containers = essential
            .into_iter()
            .map(|name| {
                let t = Tracked {
                    id: None,
                    life: Life::Up,
                    exits: VecDeque::new(),
                };
                (name, t)
            })
            .collect();
        Tracker { grace, containers }
    }

    /// The essential containers watched.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.containers.keys().map(String::as_str)
    }

    pub fn is_watched(&self, name: &str) -> bool {
        self.containers.contains_key(name)
    }

    /// The containers that are dead for good now (Failed or Recovering), by name.
    pub fn failures(&self) -> Vec<Failure> {
        self.containers
            .iter()
            .filter_map(|(name, t)| match &t.life {
                Life::Failed { why } | Life::Recovering { why, .. } => Some(Failure {
                    name: name.clone(),
                    cause: why.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn healthy(&self) -> bool {
        self.failures().is_empty()
    }

    pub fn life(&self, name: &str) -> Option<&Life> {
        self.containers.get(name).map(|t| &t.life)
    }

    /// When `tick` must next run for a deadline to be noticed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.containers
            .values()
            .filter_map(|t| match t.life {
                Life::Down { since, .. } | Life::Recovering { since, .. } => {
                    Some(since + self.grace)
                }
                _ => None,
            })
            .min()
    }

    /// Deadlines that have passed by `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let grace = self.grace;
        let mut changes = Vec::new();
        for (name, t) in &mut self.containers {
            match &t.life {
                Life::Down { since, why } if now >= *since + grace => {
                    let cause = format!("{why}; not running again within {}s", grace.as_secs_f32());
                    t.life = Life::Failed { why: cause.clone() };
                    changes.push(Change::Failed(Failure {
                        name: name.clone(),
                        cause,
                    }));
                }
                Life::Recovering { since, .. } if now >= *since + grace => {
                    t.life = Life::Up;
                    t.exits.clear();
                    changes.push(Change::Recovered(name.clone()));
                }
                _ => {}
            }
        }
        changes
    }

    /// The engine lost (the event stream broke and cannot be re-subscribed): every running
    /// container counts as down, so an engine that never comes back fails them after `grace`.
    pub fn engine_lost(&mut self, now: Instant, why: &str) {
        for t in self.containers.values_mut() {
            if t.life == Life::Up {
                t.life = Life::Down {
                    since: now,
                    why: format!("Docker engine unreachable ({why})"),
                };
            }
        }
    }

    /// One input about `name`; inputs about containers not watched are ignored.
    pub fn apply(&mut self, name: &str, input: Input, now: Instant) -> Option<Change> {
        let grace = self.grace;
        let t = self.containers.get_mut(name)?;
        let window = grace * CRASH_WINDOW_GRACES;
        let stale = |id: &String| t.id.as_ref().is_some_and(|known| known != id);
        let alive = match input {
            Input::Started { id } => {
                t.id = Some(id);
                true
            }
            Input::Snapshot { id, running } => {
                t.id = id.clone();
                if id.is_none() {
                    return fail(name, t, "the container is gone (removed)".into());
                }
                // What the listing saw beats a guess made while the engine was unreachable.
                if let (false, Life::Down { why, .. }) = (running, &mut t.life) {
                    *why = "found not running when the engine was listed".into();
                }
                running
            }
            Input::Health { id, .. } | Input::Died { id, .. } | Input::Destroyed { id }
                if stale(&id) =>
            {
                return None;
            }
            Input::Destroyed { .. } => {
                t.id = None;
                return fail(name, t, "the container was removed".into());
            }
            Input::Health { healthy, .. } => {
                if !healthy && t.life == Life::Up {
                    t.life = Life::Down {
                        since: now,
                        why: "its healthcheck reports unhealthy".into(),
                    };
                }
                healthy
            }
            Input::Died { exit_code, .. } => {
                t.exits.push_back(now);
                while t.exits.front().is_some_and(|e| now - *e > window) {
                    t.exits.pop_front();
                }
                let code = exit_code.map_or("unknown".into(), |c| c.to_string());
                if t.exits.len() >= CRASH_LOOP_RESTARTS {
                    let why = format!(
                        "restarting in a loop: exited {} times within {}s (last exit code {code})",
                        t.exits.len(),
                        window.as_secs()
                    );
                    return fail(name, t, why);
                }
                if let Life::Up = t.life {
                    t.life = Life::Down {
                        since: now,
                        why: format!("exited with code {code}"),
                    };
                }
                false
            }
        };
        match (&t.life, alive) {
            (Life::Down { .. }, true) => {
                t.life = Life::Up;
                None
            }
            (Life::Failed { why }, true) => {
                t.life = Life::Recovering {
                    since: now,
                    why: why.clone(),
                };
                None
            }
            (Life::Recovering { why, .. }, false) => {
                t.life = Life::Failed { why: why.clone() };
                None
            }
            (Life::Up, false) => {
                t.life = Life::Down {
                    since: now,
                    why: "not running".into(),
                };
                None
            }
            _ => None,
        }
    }
}

/// `t` is dead for good; a change only if it was not already.
fn fail(name: &str, t: &mut Tracked, cause: String) -> Option<Change> {
    let was_failed = matches!(t.life, Life::Failed { .. } | Life::Recovering { .. });
    t.life = Life::Failed { why: cause.clone() };
    (!was_failed).then(|| {
        Change::Failed(Failure {
            name: name.to_string(),
            cause,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn tracker() -> (Tracker, Instant) {
        let mut t = Tracker::new(["logs".to_string(), "metrics".to_string()], GRACE);
        let now = Instant::now();
        for name in ["logs", "metrics"] {
            t.apply(name, snapshot(name, true), now);
        }
        (t, now)
    }

    fn snapshot(name: &str, running: bool) -> Input {
        Input::Snapshot {
            id: Some(format!("{name}-1")),
            running,
        }
    }

    fn died(id: &str) -> Input {
        Input::Died {
            id: id.into(),
            exit_code: Some(1),
        }
    }

    fn started(id: &str) -> Input {
        Input::Started { id: id.into() }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_restart_within_the_grace_is_the_policy_doing_its_job() {
        let (mut t, at) = tracker();
        assert_eq!(t.apply("logs", died("logs-1"), at), None);
        assert!(matches!(t.life("logs"), Some(Life::Down { .. })));
        assert!(t.healthy(), "down within the grace is not yet a failure");
        assert_eq!(t.next_deadline(), Some(at + GRACE));
        assert_eq!(t.apply("logs", started("logs-1"), at + S(1)), None);
        assert_eq!(t.life("logs"), Some(&Life::Up));
        assert_eq!(t.tick(at + S(20)), vec![], "nothing left to time out");
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn exited_past_the_grace_is_dead_for_good_then_healthy_after_a_grace_of_uptime() {
        let (mut t, at) = tracker();
        t.apply("logs", died("logs-1"), at);
        assert_eq!(t.tick(at + S(9)), vec![]);
        let changes = t.tick(at + S(10));
        assert!(
            matches!(&changes[..], [Change::Failed(f)] if f.name == "logs" && f.cause.contains("exited with code 1")),
            "{changes:?}"
        );
        assert!(!t.healthy());
        assert_eq!(t.tick(at + S(11)), vec![], "counted once");
        t.apply("logs", started("logs-1"), at + S(30));
        assert!(!t.healthy(), "a restart alone is not yet health");
        assert_eq!(t.next_deadline(), Some(at + S(40)));
        assert_eq!(t.tick(at + S(40)), vec![Change::Recovered("logs".into())]);
        assert!(t.healthy());
    }

    #[test]
    fn a_crash_loop_fails_at_once_even_while_the_policy_restarts_it() {
        let (mut t, at) = tracker();
        assert_eq!(t.apply("metrics", died("metrics-1"), at), None);
        t.apply("metrics", started("metrics-1"), at + S(1));
        assert_eq!(t.apply("metrics", died("metrics-1"), at + S(2)), None);
        t.apply("metrics", started("metrics-1"), at + S(3));
        let third = t.apply("metrics", died("metrics-1"), at + S(4));
        assert!(
            matches!(&third, Some(Change::Failed(f)) if f.cause.contains("restarting in a loop")),
            "{third:?}"
        );
        t.apply("metrics", started("metrics-1"), at + S(5));
        assert!(!t.healthy(), "still failing while it loops");
        assert!(
            t.apply("metrics", died("metrics-1"), at + S(6)).is_none(),
            "a failing container is counted once"
        );
        // Exits spread wider than the window are no loop.
        let (mut t, at) = tracker();
        for i in 0..5u64 {
            let when = at + GRACE * CRASH_WINDOW_GRACES * i as u32 + S(1);
            assert_eq!(t.apply("logs", died("logs-1"), when), None);
            t.apply("logs", started("logs-1"), when + S(1));
        }
        assert!(t.healthy());
    }

    #[test]
    fn a_removed_container_fails_at_once_and_a_new_one_recovers() {
        let (mut t, at) = tracker();
        let c = t.apply(
            "logs",
            Input::Destroyed {
                id: "logs-1".into(),
            },
            at,
        );
        assert!(matches!(c, Some(Change::Failed(_))), "{c:?}");
        t.apply("logs", started("logs-2"), at + S(1));
        assert_eq!(t.tick(at + S(11)), vec![Change::Recovered("logs".into())]);
    }

    #[test]
    fn events_about_a_replaced_container_are_stale() {
        let (mut t, at) = tracker();
        t.apply("logs", snapshot("logs", true), at);
        t.apply(
            "logs",
            Input::Snapshot {
                id: Some("logs-2".into()),
                running: true,
            },
            at,
        );
        assert_eq!(
            t.apply(
                "logs",
                Input::Destroyed {
                    id: "logs-1".into()
                },
                at
            ),
            None
        );
        assert_eq!(t.apply("logs", died("logs-1"), at), None);
        assert_eq!(t.life("logs"), Some(&Life::Up));
    }

    #[test]
    fn a_snapshot_finds_a_death_the_events_missed() {
        let (mut t, at) = tracker();
        t.apply("logs", snapshot("logs", false), at);
        assert_eq!(t.tick(at + GRACE).len(), 1);
        let gone = t.apply(
            "metrics",
            Input::Snapshot {
                id: None,
                running: false,
            },
            at,
        );
        assert!(matches!(gone, Some(Change::Failed(f)) if f.cause.contains("gone")));
    }

    #[test]
    fn a_lost_engine_fails_running_containers_after_the_grace_unless_it_returns() {
        let (mut t, at) = tracker();
        t.engine_lost(at, "connection refused");
        assert!(t.healthy());
        t.apply("logs", snapshot("logs", true), at + S(2));
        let changes = t.tick(at + GRACE);
        assert!(
            matches!(&changes[..], [Change::Failed(f)] if f.name == "metrics" && f.cause.contains("unreachable")),
            "{changes:?}"
        );
        // Back within the grace, the listing tells what really happened.
        let (mut t, at) = tracker();
        t.engine_lost(at, "connection refused");
        t.apply("logs", snapshot("logs", false), at + S(1));
        t.apply("metrics", snapshot("metrics", true), at + S(1));
        let changes = t.tick(at + GRACE);
        assert!(
            matches!(&changes[..], [Change::Failed(f)] if f.name == "logs" && f.cause.contains("found not running")),
            "{changes:?}"
        );
    }

    #[test]
    fn unhealthy_is_down_and_healthy_is_up() {
        let (mut t, at) = tracker();
        let id = "logs-1".to_string();
        t.apply(
            "logs",
            Input::Health {
                id: id.clone(),
                healthy: false,
            },
            at,
        );
        assert!(matches!(t.life("logs"), Some(Life::Down { .. })));
        t.apply("logs", Input::Health { id, healthy: true }, at + S(1));
        assert_eq!(t.life("logs"), Some(&Life::Up));
    }

    #[test]
    fn other_containers_are_ignored() {
        let (mut t, at) = tracker();
        assert_eq!(t.apply("optional", died("x"), at), None);
        assert!(!t.is_watched("optional"));
        assert!(t.healthy());
    }
}
