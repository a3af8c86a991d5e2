//! In service: the essential system containers stay watched (containers/watch.rs, Docker events)
//! and `ecs-boot.ready` follows them: `false` (PutAttributes) when one dies for good, `true` once
//! every one is healthy again. Each death is counted in the state (`essential_failures`, the
//! metric EssentialContainerFailures); `[health] on_essential_failure = "drain"` also drains.

use crate::config::{HealthSection, OnEssentialFailure};
use crate::containers::liveness::{Change, Tracker};
use crate::containers::watch::{Connection, DockerEngine, Watch};
use crate::lifecycle::boot::Prepared;
use crate::lifecycle::drain::Trigger;
use crate::lifecycle::readiness::put_ready;
use crate::lifecycle::run::Agent;
use crate::status::essential::{EssentialHealth, FailingContainer};
use crate::status::state::StateStore;
use crate::util::retry::Backoff;
use std::time::Duration;
use tokio::time::Instant;

/// Retries of a refused PutAttributes: the attribute must end up right, without hammering ECS.
const ATTRIBUTE_RETRY_FIRST: Duration = Duration::from_secs(1);
const ATTRIBUTE_RETRY_MAX: Duration = Duration::from_secs(60);

/// The watch and what ECS holds, kept across the in-service stage's re-entries (a reload).
pub struct Readiness {
    watch: Watch<DockerEngine>,
    essential: Vec<String>,
    policy: HealthSection,
    /// The value of `ecs-boot.ready` ECS accepted last.
    published: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// A drain was asked for this failure; asked again only after the node was healthy.
    drain_asked: bool,
}

impl Readiness {
    fn new(agent: &Agent, p: &Prepared, essential: Vec<String>) -> Readiness {
        let engine = DockerEngine {
            address: agent.container_scope.engine.clone(),
            scope: agent.container_scope.label.clone(),
        };
        let tracker = Tracker::new(essential.clone(), p.config.health.restart_grace);
        // The launch set it true (readiness.rs); a restarted agent knows better from its state.
        let published = agent.store.snapshot().health.is_none_or(|h| h.ready);
        agent.store.update(|s| {
            let h = s
                .health
                .get_or_insert_with(|| EssentialHealth::new(published));
            h.watch_error = Some("not subscribed to Docker events yet".into());
        });
        Readiness {
            watch: Watch::new(engine, tracker),
            essential,
            policy: p.config.health.clone(),
            published,
            retry_at: None,
            backoff: Backoff::new(ATTRIBUTE_RETRY_FIRST, ATTRIBUTE_RETRY_MAX),
            drain_asked: false,
        }
    }

    /// Counts each new death and records who is failing now and how the watch is connected;
    /// returns the new deaths.
    fn record(&self, store: &StateStore, changes: &[Change]) -> u64 {
        for change in changes {
            match change {
                Change::Failed(f) => {
                    tracing::error!(container = %f.name, cause = %f.cause, "essential system container dead for good: marking the node not ready")
                }
                Change::Recovered(name) => {
                    tracing::info!(container = %name, "essential system container healthy again")
                }
            }
        }
        let deaths = changes
            .iter()
            .filter(|c| matches!(c, Change::Failed(_)))
            .count() as u64;
        let failing = self
            .watch
            .tracker()
            .failures()
            .into_iter()
            .map(|f| FailingContainer {
                name: f.name,
                cause: f.cause,
            })
            .collect();
        let watch_error = match self.watch.connection() {
            Connection::Subscribed => None,
            Connection::Lost(why) => Some(why.clone()),
        };
        let published = self.published;
        let write = |s: &mut crate::status::state::State| {
            let h = s
                .health
                .get_or_insert_with(|| EssentialHealth::new(published));
            h.essential_failures += deaths;
            h.failing = failing;
            h.watch_error = watch_error;
            if deaths > 0 {
                h.changed_at = time::OffsetDateTime::now_utc();
            }
        };
        // A counter a restart must not lose goes to disk before anything else happens.
        if deaths > 0 {
            store.update_durable(write)
        } else {
            store.update(write)
        }
        deaths
    }

    /// Sets `ecs-boot.ready` to what the containers say, unless ECS holds it already; a refusal
    /// is recorded and retried with backoff.
    async fn publish(&mut self, p: &Prepared, store: &StateStore) {
        let ready = self.watch.tracker().healthy();
        if ready == self.published && self.retry_at.is_none() {
            return;
        }
        let Some(registration) = store.snapshot().registration else {
            return;
        };
        let arn = registration.container_instance_arn;
        match put_ready(&p.aws, p.env.cluster(), &arn, ready).await {
            Ok(()) => {
                tracing::info!(
                    attribute = crate::ecs_config::attribute::READY,
                    value = ready,
                    "container instance attribute set"
                );
                self.published = ready;
                self.retry_at = None;
                self.backoff = Backoff::new(ATTRIBUTE_RETRY_FIRST, ATTRIBUTE_RETRY_MAX);
                store.update_durable(|s| {
                    let h = s.health.get_or_insert_with(|| EssentialHealth::new(ready));
                    h.ready = ready;
                    h.attribute_error = None;
                    h.changed_at = time::OffsetDateTime::now_utc();
                });
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot set ecs-boot.ready; retrying");
                self.retry_at = Some(Instant::now() + delay);
                store.update(|s| {
                    if let Some(h) = s.health.as_mut() {
                        h.attribute_error = Some(e.to_string());
                    }
                });
            }
        }
    }

    /// The drain `[health]` asks for, once per failure.
    fn drain_trigger(&mut self) -> Option<Trigger> {
        let failures = self.watch.tracker().failures();
        drain_for(
            self.policy.on_essential_failure,
            failures.first().map(|f| f.name.as_str()),
            &mut self.drain_asked,
        )
    }
}

/// Whether to drain now: with the `drain` policy, once per failure (`asked` remembers it), and
/// again only after the node was healthy in between (`failing` None).
fn drain_for(
    policy: OnEssentialFailure,
    failing: Option<&str>,
    asked: &mut bool,
) -> Option<Trigger> {
    let Some(container) = failing else {
        *asked = false;
        return None;
    };
    if policy != OnEssentialFailure::Drain || *asked {
        return None;
    }
    *asked = true;
    Some(Trigger::EssentialFailure {
        container: container.to_string(),
    })
}

impl Agent {
    /// While in service: keeps `ecs-boot.ready` in step with the essential system containers.
    /// Returns only when `[health] on_essential_failure = "drain"` asks for a drain; a node
    /// without essential containers waits forever (the caller selects on other events).
    pub(crate) async fn keep_ready(&self, slot: &mut Option<Readiness>, p: &Prepared) -> Trigger {
        let essential: Vec<String> = p
            .config
            .containers
            .iter()
            .filter(|c| c.essential)
            .map(|c| c.name.clone())
            .collect();
        if essential.is_empty() {
            return std::future::pending().await;
        }
        let readiness = match slot {
            // Same containers: list them again (a reload may have replaced some).
            Some(r)
                if r.essential == essential
                    && r.policy.restart_grace == p.config.health.restart_grace =>
            {
                r.policy = p.config.health.clone();
                r.watch.resubscribe();
                r
            }
            _ => slot.insert(Readiness::new(self, p, essential)),
        };
        loop {
            let retry = async {
                match readiness.retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let changes = tokio::select! {
                changes = readiness.watch.next() => changes,
                () = retry => Vec::new(),
            };
            let deaths = readiness.record(&self.store, &changes);
            readiness.publish(p, &self.store).await;
            if deaths > 0 {
                let (asg, cluster) = (p.tags.asg.as_deref(), Some(p.env.cluster()));
                let moment = crate::metrics::Moment::EssentialFailures(deaths);
                self.publish_metrics(moment, &p.aws, asg, cluster).await;
            }
            if let Some(trigger) = readiness.drain_trigger() {
                tracing::warn!(trigger = %trigger.label(), "draining: [health] on_essential_failure = \"drain\"");
                return trigger;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_policy_drains_once_per_failure() {
        let mut asked = false;
        let drain = OnEssentialFailure::Drain;
        assert_eq!(drain_for(drain, None, &mut asked), None);
        let first = drain_for(drain, Some("logs"), &mut asked);
        assert_eq!(
            first.map(|t| t.label()),
            Some("essential-failure:logs".to_string())
        );
        assert_eq!(
            drain_for(drain, Some("logs"), &mut asked),
            None,
            "still the same failure"
        );
        assert_eq!(drain_for(drain, None, &mut asked), None);
        assert!(
            drain_for(drain, Some("metrics"), &mut asked).is_some(),
            "healthy in between: a new failure drains again"
        );
        let mut asked = false;
        assert_eq!(
            drain_for(OnEssentialFailure::Mark, Some("logs"), &mut asked),
            None,
            "mark only marks"
        );
    }
}
