//! The watch over an in-memory IMDS, queued signals and a fake clock: each notice, each request,
//! in the pool, in service and drained.

use super::fake::Queued;
use super::*;
use crate::lifecycle::notice::fake::FakeImds;
use crate::sources::imds::SpotAction;
use crate::util::clock::fake::FakeClock;

fn config() -> Config {
    let mut c = Config::default();
    c.drain.spot = true;
    c.drain.rebalance = true;
    c
}

const POLL: Duration = Duration::from_secs(5);

async fn pool(states: &[Option<&str>], requests: &[Request]) -> (Event, FakeClock, Queued) {
    let imds = FakeImds::targets(states);
    let clock = FakeClock::default();
    let mut q = Queued(requests.to_vec());
    let e = in_pool(&imds, &clock, POLL, &mut q).await;
    (e, clock, q)
}

#[tokio::test]
async fn warmed_running_or_hibernated_goes_in_service_in_the_same_run() {
    for parked in ["Warmed:Running", "Warmed:Hibernated", "Warmed:Stopped"] {
        let (e, clock, _) = pool(&[Some(parked), None, Some(parked), Some("InService")], &[]).await;
        assert_eq!(e, Event::TargetInService, "{parked}");
        assert!(
            clock.slept() >= POLL * 3 / 2,
            "polled three times: {:?}",
            clock.slept()
        );
    }
}

#[tokio::test]
async fn terminated_in_the_pool_completes_the_terminate_action() {
    for gone in ["Warmed:Terminated", "Terminated"] {
        let (e, ..) = pool(&[Some("Warmed:Stopped"), Some(gone)], &[]).await;
        assert_eq!(e, Event::Terminating(Cause::Lifecycle), "{gone}");
    }
}

#[tokio::test]
async fn in_the_pool_sighup_reloads_sigterm_stops_and_a_drain_request_waits() {
    let parked = [Some("Warmed:Stopped")];
    let (e, _, left) = pool(&parked, &[Request::Drain, Request::Reload]).await;
    assert_eq!(e, Event::Reload);
    assert_eq!(
        left.0,
        [Request::Drain],
        "a drain request is not the pool's"
    );
    let (e, ..) = pool(&parked, &[Request::Undrain, Request::Stop]).await;
    assert_eq!(e, Event::Stop);
}

async fn watch(
    imds: &FakeImds,
    config: &Config,
    drained: bool,
    requests: &[Request],
) -> (Option<Trigger>, Event, FakeClock) {
    let clock = FakeClock::default();
    let mut q = Queued(requests.to_vec());
    let (t, e) = in_service(imds, &clock, config, drained, &mut q).await;
    (t, e, clock)
}

#[tokio::test]
async fn in_service_sigterm_stops_and_sighup_reloads() {
    let imds = FakeImds::targets(&[Some("InService")]);
    for (r, e) in [
        (Request::Stop, Event::Stop),
        (Request::Reload, Event::Reload),
    ] {
        for drained in [false, true] {
            let (t, got, _) = watch(&imds, &config(), drained, &[r]).await;
            assert_eq!((t, got), (None, e), "{r:?} drained={drained}");
        }
    }
}

#[tokio::test]
async fn an_operator_drain_in_service_and_undrain_only_when_drained() {
    let imds = FakeImds::targets(&[Some("InService")]);
    let (t, e, _) = watch(&imds, &config(), false, &[Request::Undrain, Request::Drain]).await;
    assert_eq!(
        (t, e),
        (Some(Trigger::Manual), Event::Terminating(Cause::Operator))
    );
    let (t, e, _) = watch(&imds, &config(), true, &[Request::Drain, Request::Undrain]).await;
    assert_eq!((t, e), (None, Event::Undrain));
}

#[tokio::test]
async fn each_notice_in_service_starts_its_drain() {
    let terminated = FakeImds::targets(&[Some("InService"), None, Some("Terminated")]);
    let (t, e, clock) = watch(&terminated, &config(), false, &[]).await;
    assert_eq!(
        (t, e),
        (
            Some(Trigger::Lifecycle),
            Event::Terminating(Cause::Lifecycle)
        )
    );
    assert!(clock.slept() > Duration::ZERO, "it polled");

    let spot = FakeImds::targets(&[Some("InService")]);
    spot.inner.lock().unwrap().spot = Some(SpotAction {
        action: "terminate".into(),
        time: "2026-11-30T17:02:00Z".into(),
    });
    let (t, e, _) = watch(&spot, &config(), false, &[]).await;
    assert!(matches!(t, Some(Trigger::Spot { .. })), "{t:?}");
    assert_eq!(e, Event::Terminating(Cause::Spot));

    let rebalance = FakeImds::targets(&[Some("InService")]);
    rebalance.inner.lock().unwrap().rebalance = true;
    let (t, e, _) = watch(&rebalance, &config(), false, &[]).await;
    assert_eq!(
        (t, e),
        (
            Some(Trigger::Rebalance),
            Event::Terminating(Cause::Rebalance)
        )
    );
}

#[tokio::test]
async fn drained_only_the_real_termination_counts() {
    let imds = FakeImds::targets(&[Some("InService"), Some("InService"), Some("Terminated")]);
    imds.inner.lock().unwrap().rebalance = true;
    let (t, e, _) = watch(&imds, &config(), true, &[]).await;
    assert_eq!(
        (t, e),
        (
            Some(Trigger::Lifecycle),
            Event::Terminating(Cause::Lifecycle)
        )
    );
    let polls = imds
        .reads()
        .iter()
        .filter(|r| **r == "target-lifecycle-state")
        .count();
    assert_eq!(polls, 3, "the rebalance notice did not end the watch");
}

#[tokio::test]
async fn with_drain_disabled_no_notice_is_read_in_service() {
    let imds = FakeImds::targets(&[Some("Terminated")]);
    let mut c = config();
    c.drain.enabled = false;
    let (t, e, _) = watch(&imds, &c, false, &[Request::Stop]).await;
    assert_eq!((t, e), (None, Event::Stop));
    assert!(imds.reads().is_empty(), "{:?}", imds.reads());
}
