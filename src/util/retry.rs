//! Bounded, jittered retries and deadlines: every wait in ecs-boot goes through here, so no loop
//! can spin forever or hammer an endpoint in lockstep with the rest of the fleet.

use crate::util::clock::{Clock, MonotonicClock};
use std::future::Future;
use std::time::Duration;

/// Exponential backoff with "full jitter" (each sleep is uniform in [base/2, base]), capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The delay to sleep now; doubles the following one up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(base)
    }
}

impl Backoff {
    /// The next delay, but at most an eighth of `left` (the time to the caller's deadline), and
    /// never less than `MIN_URGENT_DELAY` (jittered): among many callers sharing one rate limit,
    /// the one closest to its deadline retries most often, so it gets most of the scarce calls
    /// (earliest deadline first, with no coordination).
    pub fn next_delay_before(&mut self, left: Duration) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(base.min(left / 8).max(MIN_URGENT_DELAY))
    }
}

/// The shortest retry delay of an urgent caller (jittered to 0.5-1 s): more often, a fleet's
/// retries only add load to the rate limit they wait on.
const MIN_URGENT_DELAY: Duration = Duration::from_secs(1);

/// A value in [d/2, d]: spreads a fleet's retries without ever waiting longer than `d`.
pub fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    let extra_ms = half.as_millis() as u64;
    if extra_ms == 0 {
        return d;
    }
    half + Duration::from_millis(rand::random_range(0..=extra_ms))
}

/// What a polled attempt says about the wait.
pub enum Poll<T, E> {
    Ready(T),
    /// Not yet; keep waiting. Carries the latest reason, reported if the deadline passes.
    Pending(String),
    /// Give up now: waiting longer cannot help.
    Fatal(E),
}

/// Why a wait ended without a result.
#[derive(Debug)]
pub enum WaitError<E> {
    /// The deadline passed; the last "not yet" reason is kept for the error message.
    Deadline {
        waited: Duration,
        last: String,
    },
    Fatal(E),
}

/// Polls `attempt` until it is ready, fatal, or `deadline` passes, on tokio's monotonic clock.
pub async fn poll_until<T, E, F, Fut>(
    deadline: Duration,
    backoff: Backoff,
    attempt: F,
) -> Result<T, WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T, E>>,
{
    poll_until_on(&MonotonicClock::start(), deadline, backoff, attempt).await
}

/// `poll_until` on `clock` (a fake one in unit tests). Sleeps follow `backoff`; an attempt and
/// the last sleep are cut short so the deadline is honoured to the millisecond.
pub async fn poll_until_on<T, E, F, Fut>(
    clock: &impl Clock,
    deadline: Duration,
    mut backoff: Backoff,
    mut attempt: F,
) -> Result<T, WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T, E>>,
{
    let start = clock.now_utc();
    let end = start + deadline;
    let remaining = |now| Duration::try_from(end - now).unwrap_or(Duration::ZERO);
    let mut last: Option<String> = None;
    loop {
        let cut = remaining(clock.now_utc()).max(Duration::from_millis(1));
        let answered = tokio::select! {
            biased;
            p = attempt() => Some(p),
            () = clock.sleep(cut) => None,
        };
        match answered {
            Some(Poll::Ready(v)) => return Ok(v),
            Some(Poll::Fatal(e)) => return Err(WaitError::Fatal(e)),
            Some(Poll::Pending(reason)) => last = Some(reason),
            // An attempt cut short by the deadline says nothing new: keep the last real reason.
            None => {
                last.get_or_insert_with(|| "no attempt answered before the deadline".to_string());
            }
        }
        let now = clock.now_utc();
        if now >= end {
            return Err(WaitError::Deadline {
                waited: Duration::try_from(now - start).unwrap_or(Duration::ZERO),
                last: last.unwrap_or_default(),
            });
        }
        clock.sleep(backoff.next_delay().min(remaining(now))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full() {
        for _ in 0..200 {
            let d = jitter(Duration::from_millis(1000));
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_millis(1000),
                "{d:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(100));
        assert!(delays[4] >= Duration::from_millis(200) && delays[4] <= Duration::from_millis(400));
    }

    #[test]
    fn a_caller_near_its_deadline_retries_sooner() {
        let mut b = Backoff::new(Duration::from_secs(4), Duration::from_secs(4));
        let s = Duration::from_secs;
        for _ in 0..50 {
            assert!(
                b.next_delay_before(s(60)) >= s(2),
                "far: the backoff's own delay"
            );
            let near = b.next_delay_before(s(16));
            assert!(near <= s(2), "{near:?}: an eighth of 16 s at most");
            let due = b.next_delay_before(Duration::ZERO);
            assert!(
                due >= Duration::from_millis(500),
                "{due:?}: never a tight loop"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_last_attempt_keeps_the_previous_reason() {
        let mut n = 0;
        let r: Result<(), WaitError<()>> = poll_until(
            Duration::from_secs(2),
            Backoff::new(Duration::from_millis(500), Duration::from_millis(500)),
            || {
                n += 1;
                let first = n == 1;
                async move {
                    if !first {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Poll::Pending("tag ecs-boot:cluster missing".to_string())
                }
            },
        )
        .await;
        match r {
            Err(WaitError::Deadline { last, .. }) => {
                assert_eq!(last, "tag ecs-boot:cluster missing")
            }
            _ => panic!("expected a deadline"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_reports_the_last_reason() {
        let mut n = 0;
        let r: Result<(), WaitError<()>> = poll_until(
            Duration::from_secs(3),
            Backoff::new(Duration::from_millis(250), Duration::from_secs(1)),
            || {
                n += 1;
                let reason = format!("attempt {n}");
                async move { Poll::Pending(reason) }
            },
        )
        .await;
        match r {
            Err(WaitError::Deadline { waited, last }) => {
                assert!(
                    waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100),
                    "{waited:?}"
                );
                assert!(last.starts_with("attempt "));
            }
            _ => panic!("expected a deadline"),
        }
    }
}
