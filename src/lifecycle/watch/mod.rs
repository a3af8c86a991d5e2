//! Waiting for what comes next, once the instance is parked or in service: the target lifecycle
//! state, spot and rebalance notices (through `Notices`), and the operator's requests (signals,
//! through `Requests`), polled on a `Clock`. Pure of the rest of the agent, so SIGTERM, SIGHUP,
//! `ecs-boot drain` and every notice are unit-tested against fakes.

use crate::config::Config;
use crate::lifecycle::drain::Trigger;
use crate::lifecycle::machine::{Cause, Event};
use crate::lifecycle::notice::{self, Notices, Target};
use crate::util::clock::Clock;
use crate::util::retry::jitter;
use std::time::Duration;

/// A request from outside the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT.
    Stop,
    /// SIGHUP.
    Reload,
    /// SIGUSR1: `ecs-boot drain`.
    Drain,
    /// SIGUSR2: `ecs-boot undrain`.
    Undrain,
}

/// Which requests a stage listens to; the others stay queued (as a signal does) until one that
/// listens to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    pub reload: bool,
    pub drain: bool,
    pub undrain: bool,
}

impl Accept {
    pub const STOP_ONLY: Accept = Accept {
        reload: false,
        drain: false,
        undrain: false,
    };
}

#[allow(async_fn_in_trait)]
pub trait Requests {
    /// The next accepted request (Stop is always accepted).
    async fn next(&mut self, accept: Accept) -> Request;
}

/// Parked in the warm pool: until the instance leaves it for service (Warmed:Running and
/// Warmed:Hibernated do so without a reboot) or is terminated in it.
pub async fn in_pool<N: Notices, K: Clock, R: Requests>(
    imds: &N,
    clock: &K,
    poll: Duration,
    requests: &mut R,
) -> Event {
    let accept = Accept {
        reload: true,
        ..Accept::STOP_ONLY
    };
    loop {
        match notice::target(imds).await {
            Target::InService => return Event::TargetInService,
            Target::Terminated { .. } => return Event::Terminating(Cause::Lifecycle),
            _ => {}
        }
        tokio::select! {
            () = clock.sleep(jitter(poll)) => {}
            r = requests.next(accept) => return match r {
                Request::Reload => Event::Reload,
                _ => Event::Stop,
            },
        }
    }
}

/// The in-service watch reads target-lifecycle-state once every this many polls (15 s with the
/// default 5 s `poll_interval`); see docs/aws-facts.md §3.
pub const LIFECYCLE_EVERY: u32 = 3;

/// In service (or drained): termination notices, operator requests, reload, stop. Drained, only
/// a real termination (or `undrain`) matters; with `[drain] enabled = false` in service, no
/// notice does (another drainer owns it). The trigger is what started a drain, if one starts.
pub async fn in_service<N: Notices, K: Clock, R: Requests>(
    imds: &N,
    clock: &K,
    config: &Config,
    drained: bool,
    requests: &mut R,
) -> (Option<Trigger>, Event) {
    let notices = async {
        if !config.drain.enabled && !drained {
            std::future::pending::<()>().await;
        }
        // target-lifecycle-state every LIFECYCLE_EVERY polls: the terminate hook holds the
        // instance in Terminating:Wait for its heartbeat timeout, so a later look only starts the
        // drain later. The spot notice (two minutes' warning, AWS: look every 5 s) every poll,
        // and only where one can come. Drained, only the real termination matters.
        let spot = !drained
            && (config.drain.spot || config.drain.rebalance)
            && notice::may_be_spot(imds).await;
        let poll = config.drain.poll_interval;
        let mut tick: u32 = 0;
        loop {
            if tick % LIFECYCLE_EVERY == 0
                && let Some(t) = notice::check_lifecycle(imds).await
            {
                return t;
            }
            if spot && let Some(t) = notice::check_spot(imds, config).await {
                return t;
            }
            let pause = if spot {
                tick = tick.wrapping_add(1);
                poll
            } else {
                poll * LIFECYCLE_EVERY
            };
            clock.sleep(jitter(pause)).await;
        }
    };
    let accept = Accept {
        reload: true,
        drain: !drained,
        undrain: drained,
    };
    tokio::select! {
        t = notices => {
            let cause = t.cause();
            (Some(t), Event::Terminating(cause))
        }
        r = requests.next(accept) => match r {
            Request::Drain => (Some(Trigger::Manual), Event::Terminating(Cause::Operator)),
            Request::Undrain => (None, Event::Undrain),
            Request::Reload => (None, Event::Reload),
            Request::Stop => (None, Event::Stop),
        },
    }
}

#[cfg(test)]
pub mod fake {
    //! Requests queued in advance, delivered as signals are: the first one the stage accepts;
    //! with none left, never (the stage's own work decides).

    use super::*;

    #[derive(Default)]
    pub struct Queued(pub Vec<Request>);

    impl Requests for Queued {
        async fn next(&mut self, accept: Accept) -> Request {
            let wanted = |r: &Request| match r {
                Request::Stop => true,
                Request::Reload => accept.reload,
                Request::Drain => accept.drain,
                Request::Undrain => accept.undrain,
            };
            match self.0.iter().position(wanted) {
                Some(i) => self.0.remove(i),
                None => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests;
