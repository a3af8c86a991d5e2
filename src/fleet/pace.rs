//! How fast to call one SSM API: an adaptive, client-side rate shared by every task of a fleet
//! run. AWS throttles Run Command per account and API (`ThrottlingException`) and publishes no
//! fixed rate, so the rate is found, not configured: it grows by one call per second each second
//! without a throttle (additive increase) and halves on a throttle (multiplicative decrease, at
//! most once per `CUT_SPACING`, so one burst of refusals is one cut). Calls are spaced evenly at
//! the current rate, never bunched: a burst is what gets a fleet throttled.

use crate::util::retry::jitter;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Refusals that arrive within this window answer calls sent at the old rate: one cut for all.
const CUT_SPACING: Duration = Duration::from_millis(500);

pub struct Pace {
    floor: f64,
    ceiling: f64,
    state: Mutex<State>,
}

struct State {
    rate: f64,
    next_slot: Instant,
    last_cut: Option<Instant>,
    calls: u64,
    throttled: u64,
}

/// What one API's pace did over a run, for the operator's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceStats {
    pub rate: f64,
    pub calls: u64,
    pub throttled: u64,
}

impl Pace {
    /// Starts at `initial` calls per second, never below `floor` nor above `ceiling`.
    pub fn new(initial: f64, floor: f64, ceiling: f64) -> Pace {
        Pace {
            floor,
            ceiling,
            state: Mutex::new(State {
                rate: initial.clamp(floor, ceiling),
                next_slot: Instant::now(),
                last_cut: None,
                calls: 0,
                throttled: 0,
            }),
        }
    }

    /// Waits for this call's slot: slots are 1/rate apart, handed out in the order asked.
    pub async fn slot(&self) {
        let at = {
            let mut s = self.state.lock().expect("pace lock");
            let at = s.next_slot.max(Instant::now());
            s.next_slot = at + Duration::from_secs_f64(1.0 / s.rate);
            s.calls += 1;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// The call went through: one more call per second after a second's worth of successes.
    pub fn ok(&self) {
        let mut s = self.state.lock().expect("pace lock");
        s.rate = (s.rate + 1.0 / s.rate).min(self.ceiling);
    }

    /// The call was throttled: halve the rate (once per burst) and leave a jittered gap, so
    /// every waiting task does not retry in the same instant.
    pub fn throttled(&self) {
        let mut s = self.state.lock().expect("pace lock");
        s.throttled += 1;
        let now = Instant::now();
        if s.last_cut
            .is_some_and(|t| now.duration_since(t) < CUT_SPACING)
        {
            return;
        }
        s.last_cut = Some(now);
        s.rate = (s.rate / 2.0).max(self.floor);
        let gap = jitter(Duration::from_secs_f64(1.0 / s.rate));
        s.next_slot = s.next_slot.max(now + gap);
    }

    pub fn stats(&self) -> PaceStats {
        let s = self.state.lock().expect("pace lock");
        PaceStats {
            rate: s.rate,
            calls: s.calls,
            throttled: s.throttled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_at_the_rate() {
        let pace = Pace::new(4.0, 1.0, 4.0);
        let start = Instant::now();
        for _ in 0..5 {
            pace.slot().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_throttles_halves_once_and_successes_climb_back() {
        let pace = Pace::new(16.0, 1.0, 20.0);
        for _ in 0..10 {
            pace.throttled();
        }
        assert_eq!(pace.stats().rate, 8.0);
        tokio::time::advance(CUT_SPACING).await;
        pace.throttled();
        assert_eq!(pace.stats().rate, 4.0);
        for _ in 0..100 {
            pace.ok();
        }
        assert!(pace.stats().rate > 14.0 && pace.stats().rate <= 20.0);
        assert_eq!(pace.stats().throttled, 11);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_leaves_its_bounds() {
        let pace = Pace::new(2.0, 0.5, 3.0);
        for _ in 0..10 {
            pace.throttled();
            tokio::time::advance(CUT_SPACING).await;
        }
        assert_eq!(pace.stats().rate, 0.5);
        for _ in 0..1000 {
            pace.ok();
        }
        assert_eq!(pace.stats().rate, 3.0);
    }
}
