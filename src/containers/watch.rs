//! Watching the essential system containers after launch, through the engine's `/events` stream
//! filtered by our label (no polling loop). Every (re)subscription starts with a listing, so a
//! death missed while the stream was down (the engine restarted) is still seen; a broken stream is
//! re-subscribed with bounded, jittered backoff. What the events mean is liveness.rs (pure); the
//! engine is reached through [`Engine`], so the loop is tested with an in-memory fake.

use super::engine::{self, EngineAddress};
use super::liveness::{Change, Input, Tracker};
use super::spec_hash::{self, EngineState};
use crate::util::retry::Backoff;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};
use tokio::time::{Instant, sleep_until};

/// First and longest wait before subscribing again after the stream broke.
const RESUBSCRIBE_FIRST: Duration = Duration::from_millis(500);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(30);
/// How long one subscription may take to answer (connect, list) before it counts as failed.
const SUBSCRIBE_DEADLINE: Duration = Duration::from_secs(5);
/// Events replayed from before the listing (`since`), so none falls between listing and stream.
const REPLAY: Duration = Duration::from_secs(1);

/// One of our containers as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub id: String,
    pub running: bool,
}

/// Events as (container name, what happened); an Err ends the subscription.
pub type Events = Pin<Box<dyn Stream<Item = Result<(String, Input), String>> + Send>>;

/// The engine as the watch needs it: one call lists our containers and subscribes to their
/// events from `since` on.
pub trait Engine: Send + Sync {
    fn subscribe(
        &self,
        since: SystemTime,
    ) -> impl Future<Output = Result<(Vec<Seen>, Events), String>> + Send;
}

/// The watch's own view of its connection, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Subscribed,
    /// The stream broke or cannot be opened; retrying.
    Lost(String),
}

pub struct Watch<E> {
    engine: E,
    tracker: Tracker,
    events: Option<Events>,
    subscribed_at: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Backoff,
    connection: Connection,
    connection_changed: bool,
}

impl<E: Engine> Watch<E> {
    pub fn new(engine: E, tracker: Tracker) -> Watch<E> {
        Watch {
            engine,
            tracker,
            events: None,
            subscribed_at: None,
            retry_at: None,
            backoff: Backoff::new(RESUBSCRIBE_FIRST, RESUBSCRIBE_MAX),
            connection: Connection::Lost("not subscribed yet".into()),
            connection_changed: false,
        }
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Drops the subscription: the next `next` lists again (after a reload replaced containers,
    /// so events about the old ones are not taken for deaths).
    pub fn resubscribe(&mut self) {
        self.events = None;
        self.retry_at = None;
    }

    /// Waits until an essential container fails for good or recovers, or the connection
    /// changes (then the changes may be empty: see `connection`). Cancel-safe: the subscription
    /// and the tracker live in `self`, so the caller may drop this future.
    pub async fn next(&mut self) -> Vec<Change> {
        loop {
            if std::mem::take(&mut self.connection_changed) {
                return Vec::new();
            }
            let changes = self.tracker.tick(Instant::now());
            if !changes.is_empty() {
                return changes;
            }
            let deadline = self.tracker.next_deadline();
            let Some(events) = self.events.as_mut() else {
                let now = Instant::now();
                if let Some(at) = self.retry_at.filter(|at| *at > now) {
                    sleep_until(deadline.map_or(at, |d| d.min(at))).await;
                    continue;
                }
                let changes = self.subscribe().await;
                if !changes.is_empty() {
                    return changes;
                }
                continue;
            };
            let wake = async {
                match deadline {
                    Some(d) => sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok((name, input))) => {
                        if let Some(change) = self.tracker.apply(&name, input, Instant::now()) {
                            return vec![change];
                        }
                    }
                    Some(Err(e)) => self.lost(e),
                    None => self.lost("the engine closed the event stream".into()),
                },
                () = wake => {}
            }
        }
    }

    /// Lists, then streams events from just before the listing; the listing goes through the
    /// tracker first, so a container that died unseen counts from now.
    async fn subscribe(&mut self) -> Vec<Change> {
        let since = SystemTime::now() - REPLAY;
        let answer = tokio::time::timeout(SUBSCRIBE_DEADLINE, self.engine.subscribe(since)).await;
        let (seen, events) = match answer {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                self.lost(e);
                return Vec::new();
            }
            Err(_) => {
                self.lost(format!(
                    "no answer within {}s",
                    SUBSCRIBE_DEADLINE.as_secs()
                ));
                return Vec::new();
            }
        };
        let now = Instant::now();
        let by_name: HashMap<&str, &Seen> = seen.iter().map(|s| (s.name.as_str(), s)).collect();
        let names: Vec<String> = self.tracker.names().map(str::to_string).collect();
        let mut changes = Vec::new();
        for name in names {
            let input = match by_name.get(name.as_str()) {
                Some(s) => Input::Snapshot {
                    id: Some(s.id.clone()),
                    running: s.running,
                },
                None => Input::Snapshot {
                    id: None,
                    running: false,
                },
            };
            changes.extend(self.tracker.apply(&name, input, now));
        }
        if self.connection != Connection::Subscribed {
            tracing::info!("watching essential system containers through Docker events");
            self.connection_changed = true;
        }
        self.connection = Connection::Subscribed;
        self.events = Some(events);
        self.subscribed_at = Some(now);
        self.retry_at = None;
        changes
    }

    fn lost(&mut self, why: String) {
        let now = Instant::now();
        // A subscription that held for a while earns a fresh backoff; one that breaks at once
        // keeps doubling, so a flapping engine is not hammered.
        if self
            .subscribed_at
            .is_some_and(|at| now - at >= RESUBSCRIBE_MAX)
        {
            self.backoff = Backoff::new(RESUBSCRIBE_FIRST, RESUBSCRIBE_MAX);
        }
        let delay = self.backoff.next_delay();
        tracing::warn!(error = %why, retry_in_ms = delay.as_millis() as u64, "Docker event stream lost; subscribing again");
        self.tracker.engine_lost(now, &why);
        self.events = None;
        self.subscribed_at = None;
        self.retry_at = Some(now + delay);
        let now_lost = Connection::Lost(why);
        self.connection_changed |= self.connection != now_lost;
        self.connection = now_lost;
    }
}

/// The real engine, through bollard: containers labelled with our scope.
pub struct DockerEngine {
    pub address: EngineAddress,
    pub scope: String,
}

impl Engine for DockerEngine {
    async fn subscribe(&self, since: SystemTime) -> Result<(Vec<Seen>, Events), String> {
        let docker = engine::connect(&self.address, SUBSCRIBE_DEADLINE).await?;
        let seen = engine::list_ours(&docker, &self.scope)
            .await?
            .into_iter()
            .map(|(name, o)| Seen {
                name,
                running: o.state == EngineState::Running,
                id: o.id,
            })
            .collect();
        let since = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={}", spec_hash::MANAGED, self.scope)],
            ),
        ]);
        let options = bollard::query_parameters::EventsOptions {
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            until: None,
            filters: Some(filters),
        };
        let events = docker.events(Some(options)).filter_map(|e| async move {
            match e {
                Ok(message) => translate(&message).map(Ok),
                Err(e) => Some(Err(engine::one_line(&e))),
            }
        });
        Ok((seen, Box::pin(events)))
    }
}

/// A container event as the tracker's input; None for events that say nothing about liveness
/// (create, kill, stop, exec, ...): a kill or stop is followed by its `die`.
pub fn translate(message: &bollard::models::EventMessage) -> Option<(String, Input)> {
    let actor = message.actor.as_ref()?;
    let id = actor.id.clone()?;
    let attributes = actor.attributes.as_ref()?;
    let name = attributes
        .get(spec_hash::NAME)
        .or_else(|| attributes.get("name"))?
        .clone();
    let input = match message.action.as_deref()? {
        "start" => Input::Started { id },
        "die" => Input::Died {
            id,
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "destroy" => Input::Destroyed { id },
        "health_status: healthy" => Input::Health { id, healthy: true },
        "health_status: unhealthy" => Input::Health { id, healthy: false },
        _ => return None,
    };
    Some((name, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// One scripted answer to `subscribe`: refused, or a listing and the events that follow
    /// (then the stream breaks when `then_break`, else stays open and quiet).
    enum Answer {
        Refused(&'static str),
        Listing {
            seen: Vec<Seen>,
            events: Vec<(String, Input)>,
            then_break: bool,
        },
    }

    #[derive(Clone, Default)]
    struct FakeEngine {
        answers: Arc<Mutex<VecDeque<Answer>>>,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl FakeEngine {
        fn script(answers: Vec<Answer>) -> FakeEngine {
            FakeEngine {
                answers: Arc::new(Mutex::new(answers.into())),
                ..Default::default()
            }
        }
    }

    impl Engine for FakeEngine {
        async fn subscribe(&self, _since: SystemTime) -> Result<(Vec<Seen>, Events), String> {
            self.calls.lock().unwrap().push(Instant::now());
            let answer = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Answer::Refused("engine down"));
            match answer {
                Answer::Refused(why) => Err(why.to_string()),
                Answer::Listing {
                    seen,
                    events,
                    then_break,
                } => {
                    let events = futures_util::stream::iter(events.into_iter().map(Ok));
                    let end: Events = if then_break {
                        Box::pin(events.chain(futures_util::stream::iter([Err(
                            "connection reset".to_string(),
                        )])))
                    } else {
                        Box::pin(events.chain(futures_util::stream::pending()))
                    };
                    Ok((seen, end))
                }
            }
        }
    }

    const GRACE: Duration = Duration::from_secs(5);

    fn seen(name: &str, running: bool) -> Seen {
        Seen {
            name: name.into(),
            id: format!("{name}-1"),
            running,
        }
    }

    async fn next_change(w: &mut Watch<FakeEngine>) -> Vec<Change> {
        loop {
            let changes = w.next().await;
            if !changes.is_empty() {
                return changes;
            }
        }
    }

    fn watch(engine: &FakeEngine) -> Watch<FakeEngine> {
        Watch::new(engine.clone(), Tracker::new(["logs".to_string()], GRACE))
    }

    #[tokio::test(start_paused = true)]
    async fn a_death_without_a_restart_fails_after_the_grace() {
        let engine = FakeEngine::script(vec![Answer::Listing {
            seen: vec![seen("logs", true)],
            events: vec![(
                "logs".into(),
                Input::Died {
                    id: "logs-1".into(),
                    exit_code: Some(137),
                },
            )],
            then_break: false,
        }]);
        let mut w = watch(&engine);
        let t0 = Instant::now();
        let changes = next_change(&mut w).await;
        assert!(
            matches!(&changes[..], [Change::Failed(f)] if f.cause.contains("exited with code 137")),
            "{changes:?}"
        );
        assert_eq!(
            Instant::now() - t0,
            GRACE,
            "timed by the grace, not by polling"
        );
        assert_eq!(engine.calls.lock().unwrap().len(), 1, "one subscription");
    }

    #[tokio::test(start_paused = true)]
    async fn a_death_missed_while_the_stream_was_down_is_found_on_resubscribing() {
        let engine = FakeEngine::script(vec![
            Answer::Listing {
                seen: vec![seen("logs", true)],
                events: vec![],
                then_break: true,
            },
            Answer::Refused("connection refused"),
            Answer::Listing {
                seen: vec![seen("logs", false)],
                events: vec![],
                then_break: false,
            },
        ]);
        let mut w = watch(&engine);
        let changes = next_change(&mut w).await;
        assert!(
            matches!(&changes[..], [Change::Failed(f)] if f.name == "logs"),
            "{changes:?}"
        );
        assert_eq!(engine.calls.lock().unwrap().len(), 3);
        assert_eq!(w.connection(), &Connection::Subscribed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_back_within_the_grace_with_the_container_running_is_no_failure() {
        let engine = FakeEngine::script(vec![
            Answer::Listing {
                seen: vec![seen("logs", true)],
                events: vec![],
                then_break: true,
            },
            Answer::Listing {
                seen: vec![seen("logs", true)],
                events: vec![],
                then_break: false,
            },
        ]);
        let mut w = watch(&engine);
        let quiet = tokio::time::timeout(Duration::from_secs(120), next_change(&mut w)).await;
        assert!(quiet.is_err(), "{quiet:?}");
        assert!(w.tracker().healthy());
        assert_eq!(engine.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn resubscribing_backs_off_with_jitter_up_to_a_bound() {
        let engine = FakeEngine::script(vec![]);
        let mut w = Watch::new(engine.clone(), Tracker::new(Vec::<String>::new(), GRACE));
        let _ = tokio::time::timeout(Duration::from_secs(300), next_change(&mut w)).await;
        let calls = engine.calls.lock().unwrap().clone();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 8, "it keeps trying: {gaps:?}");
        assert!(gaps.len() < 40, "but never in a tight loop: {gaps:?}");
        assert!(gaps.iter().all(|g| *g <= RESUBSCRIBE_MAX), "{gaps:?}");
        assert!(gaps[0] < Duration::from_secs(1), "the first retry is quick");
        assert!(
            gaps.iter().rev().take(3).all(|g| *g >= RESUBSCRIBE_MAX / 2),
            "then capped: {gaps:?}"
        );
        assert!(matches!(w.connection(), Connection::Lost(_)));
    }

    #[test]
    fn docker_events_translate_by_our_name_label() {
        use bollard::models::{EventActor, EventMessage};
        let event = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        let ours = [
            (spec_hash::NAME, "logs"),
            ("name", "renamed"),
            ("exitCode", "3"),
        ];
        assert_eq!(
            translate(&event("die", &ours)),
            Some((
                "logs".into(),
                Input::Died {
                    id: "abc".into(),
                    exit_code: Some(3)
                }
            ))
        );
        assert_eq!(
            translate(&event("health_status: unhealthy", &ours)).map(|e| e.1),
            Some(Input::Health {
                id: "abc".into(),
                healthy: false
            })
        );
        assert_eq!(translate(&event("kill", &ours)), None);
        assert_eq!(
            translate(&event("start", &[("name", "plain")])).map(|e| e.0),
            Some("plain".into())
        );
    }
}
