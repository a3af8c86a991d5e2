//! What IMDS says about the instance's future: the Auto Scaling target lifecycle state (in
//! service, warm pool, terminated), a spot interruption notice, a rebalance recommendation.
//! One reading of each value for the whole life (config phase, warm pool, termination watch),
//! reached through `Notices` so every answer is unit-tested against an in-memory IMDS.

use crate::config::Config;
use crate::lifecycle::drain::Trigger;
use crate::sources::imds::{Imds, ImdsFailure, SpotAction};
use time::OffsetDateTime;

/// The IMDS paths the watch reads (docs/aws-facts.md §3). 404 is `None` / `false`.
#[allow(async_fn_in_trait)]
pub trait Notices {
    async fn target_lifecycle_state(&self) -> Result<Option<String>, ImdsFailure>;
    async fn spot_action(&self) -> Result<Option<SpotAction>, ImdsFailure>;
    async fn rebalance_recommended(&self) -> Result<bool, ImdsFailure>;
    /// `instance-life-cycle`: `on-demand`, `spot`, ...; `None` when IMDS has no answer.
    async fn instance_life_cycle(&self) -> Result<Option<String>, ImdsFailure>;
}

impl Notices for Imds {
    async fn target_lifecycle_state(&self) -> Result<Option<String>, ImdsFailure> {
        Imds::target_lifecycle_state(self).await
    }
    async fn spot_action(&self) -> Result<Option<SpotAction>, ImdsFailure> {
        Imds::spot_action(self).await
    }
    async fn rebalance_recommended(&self) -> Result<bool, ImdsFailure> {
        Imds::rebalance_recommended(self).await
    }
    async fn instance_life_cycle(&self) -> Result<Option<String>, ImdsFailure> {
        Imds::instance_life_cycle(self).await
    }
}

/// What a target lifecycle state means for ecs-boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// 404 (no transition started yet) or unreadable: an instance launched straight into the
    /// group reads this until its first transition; never a reason to park or drain.
    NotYet,
    InService,
    /// `Warmed:Stopped`, `Warmed:Running`, `Warmed:Hibernated`: headed for the warm pool.
    Warmed,
    /// `Terminated`, or `Warmed:Terminated` (terminated while in the pool): drain and complete
    /// the terminate action.
    Terminated {
        from_pool: bool,
    },
    /// `Standby`, `Detached`, or a value IMDS does not document: nothing to act on.
    Other,
}

impl Target {
    pub fn of(state: Option<&str>) -> Target {
        match state {
            None => Target::NotYet,
            Some("InService") => Target::InService,
            Some("Terminated") => Target::Terminated { from_pool: false },
            Some("Warmed:Terminated") => Target::Terminated { from_pool: true },
            Some(s) if s.starts_with("Warmed:") => Target::Warmed,
            Some(_) => Target::Other,
        }
    }

    /// Every `Warmed:*` state keeps the gate closed: the ECS agent must never register from the
    /// pool (amazon-ecs-agent#3000).
    pub fn parks(self) -> bool {
        matches!(
            self,
            Target::Warmed | Target::Terminated { from_pool: true }
        )
    }
}

/// The target state now; an unreadable one counts as none yet (logged).
pub async fn target<N: Notices>(imds: &N) -> Target {
    match imds.target_lifecycle_state().await {
        Ok(s) => Target::of(s.as_deref()),
        Err(e) => {
            tracing::debug!(error = %e, "reading target-lifecycle-state");
            Target::NotYet
        }
    }
}

/// One look for a reason to drain: termination first, then (if configured) a spot
/// interruption, then (if configured) a rebalance recommendation.
pub async fn check_once<N: Notices>(imds: &N, config: &Config) -> Option<Trigger> {
    if let Some(t) = check_lifecycle(imds).await {
        return Some(t);
    }
    check_spot(imds, config).await
}

/// Terminated (in service or in the pool)?
pub async fn check_lifecycle<N: Notices>(imds: &N) -> Option<Trigger> {
    match target(imds).await {
        Target::Terminated { .. } => Some(Trigger::Lifecycle),
        _ => None,
    }
}

/// Whether a spot notice can come at all: IMDS's `instance-life-cycle` saying anything but
/// `spot` (`on-demand`) rules it out; no answer keeps the watch on it.
pub async fn may_be_spot<N: Notices>(imds: &N) -> bool {
    match imds.instance_life_cycle().await {
        Ok(Some(kind)) => kind == "spot",
        _ => true,
    }
}

/// A spot interruption (if configured), then a rebalance recommendation (if configured).
pub async fn check_spot<N: Notices>(imds: &N, config: &Config) -> Option<Trigger> {
    if config.drain.spot {
        match imds.spot_action().await {
            Ok(Some(a)) => {
                let time =
                    OffsetDateTime::parse(&a.time, &time::format_description::well_known::Rfc3339)
                        .ok();
                return Some(Trigger::Spot {
                    action: a.action,
                    time,
                });
            }
            Err(e) => tracing::debug!(error = %e, "reading the spot notice"),
            Ok(None) => {}
        }
    }
    if config.drain.rebalance && imds.rebalance_recommended().await.unwrap_or(false) {
        return Some(Trigger::Rebalance);
    }
    None
}

#[cfg(test)]
pub mod fake {
    //! An in-memory IMDS for the watch: a script of target states (the last one stays), a spot
    //! notice, a rebalance recommendation, failures; every read logged.

    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct State {
        /// Answered in order; the last one is answered from then on. Empty: 404.
        pub targets: VecDeque<Option<String>>,
        pub spot: Option<SpotAction>,
        pub rebalance: bool,
        /// Every read fails (IMDS down).
        pub failing: bool,
        pub reads: Vec<&'static str>,
    }

    #[derive(Clone, Default)]
    pub struct FakeImds {
        pub inner: Arc<Mutex<State>>,
    }

    impl FakeImds {
        /// Target states answered one per read, the last one kept.
        pub fn targets(states: &[Option<&str>]) -> FakeImds {
            let f = FakeImds::default();
            f.inner.lock().unwrap().targets = states.iter().map(|s| s.map(String::from)).collect();
            f
        }

        pub fn reads(&self) -> Vec<&'static str> {
            self.inner.lock().unwrap().reads.clone()
        }

        fn read(
            &self,
            what: &'static str,
        ) -> Result<std::sync::MutexGuard<'_, State>, ImdsFailure> {
            let mut s = self.inner.lock().unwrap();
            s.reads.push(what);
            if s.failing {
                return Err(ImdsFailure {
                    path: what.into(),
                    message: "connection refused".into(),
                    status: None,
                });
            }
            Ok(s)
        }
    }

    impl Notices for FakeImds {
        async fn target_lifecycle_state(&self) -> Result<Option<String>, ImdsFailure> {
            let mut s = self.read("target-lifecycle-state")?;
            Ok(match s.targets.len() {
                0 => None,
                1 => s.targets[0].clone(),
                _ => s.targets.pop_front().flatten(),
            })
        }
        async fn spot_action(&self) -> Result<Option<SpotAction>, ImdsFailure> {
            Ok(self.read("spot/instance-action")?.spot.clone())
        }
        async fn rebalance_recommended(&self) -> Result<bool, ImdsFailure> {
            Ok(self.read("rebalance")?.rebalance)
        }
        async fn instance_life_cycle(&self) -> Result<Option<String>, ImdsFailure> {
            Ok(None) // as an IMDS without the path: the watch keeps reading the spot notice
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeImds;
    use super::*;

    fn config(spot: bool, rebalance: bool) -> Config {
        let mut c = Config::default();
        c.drain.spot = spot;
        c.drain.rebalance = rebalance;
        c
    }

    /// Every value IMDS documents, a few it does not (lifecycle states, not target states), 404.
    #[test]
    fn each_target_lifecycle_state_means_one_thing() {
        use Target::*;
        let cases = [
            (Some("InService"), InService, false),
            (Some("Warmed:Pending"), Warmed, true),
            (Some("Warmed:Running"), Warmed, true),
            (Some("Warmed:Stopped"), Warmed, true),
            (Some("Warmed:Hibernated"), Warmed, true),
            (
                Some("Warmed:Terminated"),
                Terminated { from_pool: true },
                true,
            ),
            (Some("Terminated"), Terminated { from_pool: false }, false),
            // Lifecycle states, never target states: nothing to act on if IMDS ever said them.
            (Some("Terminating"), Other, false),
            (Some("Terminating:Wait"), Other, false),
            (Some("Detaching"), Other, false),
            (Some("Detached"), Other, false),
            (Some("Standby"), Other, false),
            (None, NotYet, false),
        ];
        for (state, meaning, parks) in cases {
            assert_eq!(Target::of(state), meaning, "{state:?}");
            assert_eq!(Target::of(state).parks(), parks, "{state:?}");
        }
    }

    #[tokio::test]
    async fn only_a_terminated_target_is_a_lifecycle_termination() {
        for (state, drains) in [
            ("Terminated", true),
            ("Warmed:Terminated", true),
            ("InService", false),
            ("Warmed:Running", false),
            ("Terminating:Wait", false),
            ("Detached", false),
        ] {
            let imds = FakeImds::targets(&[Some(state)]);
            let t = check_once(&imds, &config(true, true)).await;
            assert_eq!(t == Some(Trigger::Lifecycle), drains, "{state}");
        }
        // 404 and an IMDS that does not answer: no trigger, and no panic.
        assert_eq!(
            check_once(&FakeImds::default(), &config(true, true)).await,
            None
        );
        let down = FakeImds::targets(&[Some("Terminated")]);
        down.inner.lock().unwrap().failing = true;
        assert_eq!(check_once(&down, &config(true, true)).await, None);
        assert_eq!(target(&down).await, Target::NotYet);
    }

    #[tokio::test]
    async fn a_spot_interruption_notice_drains_with_its_time_when_enabled() {
        let imds = FakeImds::targets(&[Some("InService")]);
        imds.inner.lock().unwrap().spot = Some(SpotAction {
            action: "stop".into(),
            time: "2026-11-30T17:02:00Z".into(),
        });
        let Some(Trigger::Spot { action, time }) = check_once(&imds, &config(true, false)).await
        else {
            panic!("a spot notice must drain");
        };
        assert_eq!(action, "stop");
        assert_eq!(time.unwrap().unix_timestamp(), 1_796_058_120);
        assert_eq!(check_once(&imds, &config(false, false)).await, None);
        // A termination outranks the notice: the terminate action is then ours to complete.
        imds.inner.lock().unwrap().targets = [Some("Terminated".to_string())].into();
        assert_eq!(
            check_once(&imds, &config(true, false)).await,
            Some(Trigger::Lifecycle)
        );
    }

    #[tokio::test]
    async fn a_rebalance_recommendation_drains_only_when_enabled() {
        let imds = FakeImds::targets(&[Some("InService")]);
        imds.inner.lock().unwrap().rebalance = true;
        assert_eq!(
            check_once(&imds, &config(false, true)).await,
            Some(Trigger::Rebalance)
        );
        assert_eq!(check_once(&imds, &config(true, false)).await, None);
        assert!(!imds.reads().is_empty());
    }
}
