//! The wall clock and sleeping, behind one small trait: the drain's deadline and the watch's
//! polling read time through it, so their tests run on a fake clock in milliseconds instead of
//! waiting out real deadlines.

use std::time::Duration;
use time::OffsetDateTime;

/// How long the kernel has been up, from the procfs file `uptime` (None when unreadable).
pub fn uptime(path: &std::path::Path) -> Option<Duration> {
    let up = std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|up| up.is_finite() && *up >= 0.0)?;
    Duration::try_from_secs_f64(up).ok()
}

pub trait Clock: Send + Sync {
    fn now_utc(&self) -> OffsetDateTime;
    fn sleep(&self, d: Duration) -> impl std::future::Future<Output = ()> + Send;
}

/// The real clock: the system's UTC time and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// Wall time at creation, moved on by tokio's monotonic timer: a deadline on it is immune to the
/// clock steps of early boot (chrony), and it follows tokio's paused time in tests.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    wall: OffsetDateTime,
    start: tokio::time::Instant,
}

impl MonotonicClock {
    pub fn start() -> MonotonicClock {
        MonotonicClock {
            wall: OffsetDateTime::now_utc(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_utc(&self) -> OffsetDateTime {
        self.wall + self.start.elapsed()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

#[cfg(test)]
pub mod fake {
    //! A clock that moves only when slept on: each sleep advances it at once (after yielding, so
    //! other tasks run), and the total slept is there to assert on.

    use super::*;
    use std::sync::{Arc, Mutex};

    /// Far beyond any deadline the tests set (the drain's default is 15 min).
    const LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

    #[derive(Clone)]
    pub struct FakeClock {
        inner: Arc<Mutex<(OffsetDateTime, Duration)>>,
    }

    impl Default for FakeClock {
        fn default() -> FakeClock {
            FakeClock {
                inner: Arc::new(Mutex::new((OffsetDateTime::UNIX_EPOCH, Duration::ZERO))),
            }
        }
    }

    impl FakeClock {
        /// How long everything slept on this clock, in total.
        pub fn slept(&self) -> Duration {
            self.inner.lock().unwrap().1
        }
    }

    impl Clock for FakeClock {
        fn now_utc(&self) -> OffsetDateTime {
            self.inner.lock().unwrap().0
        }

        async fn sleep(&self, d: Duration) {
            {
                let mut i = self.inner.lock().unwrap();
                i.0 += d;
                i.1 += d;
                // A wait no test needs: the code under test would never end; fail, not hang.
                assert!(
                    i.1 <= LIMIT,
                    "slept {:?} on the fake clock: a wait that never ends",
                    i.1
                );
            }
            tokio::task::yield_now().await
        }
    }
}
