//! Watching a rollout's refresh: the replacements of a checkpoint coming into service, and the
//! refresh reaching an end. Every wait has a deadline; polls back off (doubling to 8x) with jitter.

use super::cloud::{Cloud, Refresh};
use super::engine::{Run, log};
use super::plan::Step;
use crate::util::retry::jitter;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Consecutive failed looks after which a wait gives up.
const MAX_FAILED_LOOKS: u32 = 5;

impl<C: Cloud> Run<'_, C> {
    /// Waits until the step's replacements are in service; Err says why the gate fails early.
    pub(super) async fn wait_for_step(
        &mut self,
        refresh_id: &str,
        version: i64,
        step: &Step,
        budget: Duration,
        seen: &mut BTreeMap<String, Option<String>>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + budget;
        let mut pause = self.s.poll;
        let mut errors = 0;
        log(format!(
            "waiting for {} replacement(s) in service (checkpoint {}%)",
            step.instances, step.percent
        ));
        loop {
            match self.look(refresh_id, version, seen).await {
                Ok(r) => {
                    errors = 0;
                    self.note_refresh(&r);
                    if seen.values().any(Option::is_none) {
                        return Err(format!(
                            "a replacement left the group before it was in service (refresh {}: {})",
                            r.status,
                            r.reason.unwrap_or_default()
                        ));
                    }
                    if !r.is_active() && r.status != "Successful"
                        || r.status == "RollbackInProgress"
                    {
                        return Err(format!(
                            "instance refresh {}: {}",
                            r.status,
                            r.reason.unwrap_or_default()
                        ));
                    }
                    let in_service = seen
                        .values()
                        .filter(|l| l.as_deref() == Some("InService"))
                        .count() as u32;
                    if in_service >= step.instances || r.status == "Successful" {
                        return Ok(());
                    }
                }
                Err(e) => {
                    errors += 1;
                    if errors >= MAX_FAILED_LOOKS {
                        return Err(format!("cannot watch the refresh: {e}"));
                    }
                }
            }
            if Instant::now() >= deadline {
                let n = seen
                    .values()
                    .filter(|l| l.as_deref() == Some("InService"))
                    .count();
                return Err(format!(
                    "{n} of {} replacement(s) in service within {}",
                    step.instances,
                    humantime::format_duration(budget)
                ));
            }
            self.cloud.sleep(jitter(pause)).await;
            pause = (pause * 2).min(self.s.poll * 8);
        }
    }

    /// The refresh, and the group's replacements (instances on `version`) into `seen`.
    pub(super) async fn look(
        &self,
        refresh_id: &str,
        version: i64,
        seen: &mut BTreeMap<String, Option<String>>,
    ) -> Result<Refresh, String> {
        let r = self.refresh(refresh_id).await?;
        let group = self
            .cloud
            .group(&self.s.group)
            .await?
            .ok_or_else(|| format!("group {} is gone", self.s.group))?;
        let states: BTreeMap<String, String> = group.instances.iter().cloned().collect();
        let unknown: Vec<String> = states
            .keys()
            .filter(|i| !seen.contains_key(*i))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let versions = self.cloud.instance_versions(&unknown).await?;
            for id in unknown {
                if versions.get(&id) == Some(&version) {
                    seen.insert(id, None);
                }
            }
        }
        for (id, lifecycle) in seen.iter_mut() {
            *lifecycle = states
                .get(id)
                .filter(|s| !s.starts_with("Terminat"))
                .cloned();
        }
        Ok(r)
    }

    pub(super) async fn refresh(&self, id: &str) -> Result<Refresh, String> {
        self.cloud
            .refreshes(&self.s.group)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| format!("instance refresh {id} is not listed"))
    }

    pub(super) fn note_refresh(&mut self, r: &Refresh) {
        if let Some(rep) = self.report.refresh.as_mut() {
            rep.status = r.status.clone();
            rep.status_reason = r.reason.clone();
        }
    }

    pub(super) async fn wait_refresh(
        &mut self,
        id: &str,
        budget: Duration,
        done: impl Fn(&Refresh) -> bool,
    ) -> Result<Refresh, String> {
        let deadline = Instant::now() + budget;
        let mut pause = self.s.poll;
        loop {
            let last = match self.refresh(id).await {
                Ok(r) => {
                    self.note_refresh(&r);
                    if done(&r) {
                        return Ok(r);
                    }
                    r.status
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "instance refresh {id} still {last} after {}",
                    humantime::format_duration(budget)
                ));
            }
            self.cloud.sleep(jitter(pause)).await;
            pause = (pause * 2).min(self.s.poll * 8);
        }
    }
}
