//! The drain against an in-memory cluster and a fake clock: operator and spot drains, tasks
//! already gone, the deadline, standalone tasks, DRAINING set by someone else, a restart
//! mid-drain, undrain. No network, no Docker, no real waiting.

use super::*;
use crate::lifecycle::ports::fake::{CI_ARN, FakeWorld, service_task, standalone_task};
use crate::status::state::Registration;

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = StateStore::open(dir.path().join("state.json"));
    (dir, s)
}

/// A config with one system container, so the drain stops them last.
fn config_with_container() -> Config {
    Config::parse(
        "[[container]]\nname = \"cwagent\"\nimage = \"public.ecr.aws/cloudwatch-agent/cloudwatch-agent:latest\"\nmemory_mib = 128\n",
        "t",
    )
    .unwrap()
}

fn drainer<'a>(
    world: &FakeWorld,
    config: &'a Config,
    store: &'a StateStore,
    managed_draining: bool,
) -> Drainer<'a, FakeWorld> {
    Drainer {
        world: world.clone(),
        config,
        store,
        cluster: "web",
        managed_draining,
    }
}

async fn drain_with(
    config: &Config,
    store: &StateStore,
    world: &FakeWorld,
    managed: bool,
    trigger: Trigger,
) -> DrainRecord {
    drainer(world, config, store, managed)
        .run(&trigger)
        .await
        .unwrap();
    store.snapshot().drain.expect("a drain record")
}

async fn drain(
    world: &FakeWorld,
    trigger: Trigger,
) -> (tempfile::TempDir, StateStore, DrainRecord) {
    let (dir, s) = store();
    let r = drain_with(&config_with_container(), &s, world, false, trigger).await;
    (dir, s, r)
}

#[tokio::test]
async fn an_operator_drain_sets_draining_waits_for_the_tasks_then_stops_system_containers() {
    let world = FakeWorld::with_tasks(&[service_task("t1", 3), service_task("t2", 1)]);
    let (_d, _s, r) = drain(&world, Trigger::Manual).await;
    assert_eq!(
        (r.state, r.cause, r.trigger.as_str()),
        (DrainState::Drained, Cause::Operator, "manual")
    );
    assert!(r.set_draining_by_us && r.tasks_left == 0);
    assert_eq!(world.inner.lock().unwrap().status, "DRAINING");
    assert_eq!(world.count("UpdateContainerInstancesState DRAINING"), 1);
    assert_eq!(world.count("agent /v1/tasks"), 4, "{:?}", world.calls());
    assert_eq!(
        world.calls().last().map(String::as_str),
        Some("docker stop system containers"),
        "system containers go last"
    );
    assert!(world.clock.slept() > Duration::ZERO);
}

#[tokio::test]
async fn a_drain_whose_tasks_are_already_gone_ends_at_once() {
    let world = FakeWorld::with_tasks(&[]);
    let (_d, _s, r) = drain(&world, Trigger::Lifecycle).await;
    assert_eq!(r.state, DrainState::Drained);
    assert_eq!(world.count("agent /v1/tasks"), 1);
    assert_eq!(world.clock.slept(), Duration::ZERO, "no wait");
    assert_eq!(r.drained_at, Some(r.started_at));
}

#[tokio::test]
async fn a_drain_deadline_hit_ends_the_drain_with_the_tasks_still_running() {
    let world = FakeWorld::with_tasks(&[service_task("t1", u32::MAX)]);
    let (_d, _s, r) = drain(&world, Trigger::Lifecycle).await;
    assert_eq!((r.state, r.tasks_left), (DrainState::Deadline, 1));
    let deadline = Config::default().drain.deadline;
    assert_eq!(
        world.clock.slept(),
        deadline,
        "slept exactly up to the deadline"
    );
    assert_eq!(r.drained_at, Some(r.deadline_at));
    assert_eq!(world.count("docker stop system containers"), 1);
}

#[tokio::test]
async fn a_spot_notice_drains_until_a_little_before_the_reclaim() {
    let world = FakeWorld::with_tasks(&[service_task("t1", u32::MAX)]);
    let reclaim = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(120);
    let spot = Trigger::Spot {
        action: "terminate".into(),
        time: Some(reclaim),
    };
    let (_d, _s, r) = drain(&world, spot).await;
    assert_eq!((r.state, r.cause), (DrainState::Deadline, Cause::Spot));
    assert_eq!(world.clock.slept(), Duration::from_secs(110));
}

#[tokio::test]
async fn standalone_tasks_are_stopped_after_their_grace_service_tasks_never() {
    let world = FakeWorld::with_tasks(&[service_task("svc", 600), standalone_task("batch")]);
    let (_d, _s, r) = drain(&world, Trigger::Lifecycle).await;
    assert_eq!(r.state, DrainState::Drained);
    assert_eq!(r.standalone_stopped, ["batch"]);
    assert_eq!(world.count("StopTask"), 1, "{:?}", world.calls());
    assert_eq!(world.count("DescribeTasks"), 1);
}

#[tokio::test]
async fn draining_set_by_someone_else_is_never_set_again_nor_undone() {
    // ECS managed draining: the group has ECS's hook; ecs-boot does not even look.
    let world = FakeWorld::with_tasks(&[]);
    let (_d, s) = store();
    let r = drain_with(&Config::default(), &s, &world, true, Trigger::Lifecycle).await;
    assert!(!r.set_draining_by_us);
    assert_eq!(world.count("DescribeContainerInstances"), 0);
    assert_eq!(world.count("UpdateContainerInstancesState"), 0);
    // The agent's spot draining set it already: read, not set again.
    let world = FakeWorld::with_tasks(&[]);
    world.inner.lock().unwrap().status = "DRAINING".into();
    let (_d, s) = store();
    let r = drain_with(&Config::default(), &s, &world, false, Trigger::Rebalance).await;
    assert!(!r.set_draining_by_us);
    assert_eq!(world.count("UpdateContainerInstancesState"), 0);
    // ...and undrain leaves it as it is.
    let config = Config::default();
    let drainer = drainer(&world, &config, &s, false);
    let detail = drainer.reactivate().await.unwrap();
    assert!(detail.contains("not set by ecs-boot"), "{detail}");
    assert_eq!(world.inner.lock().unwrap().status, "DRAINING");
    assert!(s.snapshot().drain.is_none());
}

/// A termination sets DRAINING without reading the status first: nothing returns a terminating
/// instance to ACTIVE, and DRAINING again is a no-op at ECS — one call, not two.
#[tokio::test]
async fn a_termination_sets_draining_in_one_call_even_if_already_draining() {
    for before in ["ACTIVE", "DRAINING"] {
        let world = FakeWorld::with_tasks(&[]);
        world.inner.lock().unwrap().status = before.into();
        let (_d, _s, r) = drain(&world, Trigger::Lifecycle).await;
        assert_eq!(r.state, DrainState::Drained);
        assert_eq!(world.count("DescribeContainerInstances"), 0, "{before}");
        assert_eq!(
            world.count("UpdateContainerInstancesState DRAINING"),
            1,
            "{before}"
        );
        assert_eq!(world.inner.lock().unwrap().status, "DRAINING");
    }
}

/// A throttled DRAINING was never considered: sent again (sooner as the deadline nears), no
/// status read in between, the drain goes on.
#[tokio::test]
async fn a_throttled_draining_is_sent_again_without_reading() {
    let world = FakeWorld::with_tasks(&[service_task("t1", 2)]);
    world.inner.lock().unwrap().throttle_updates = 5;
    let (_d, _s, r) = drain(&world, Trigger::Lifecycle).await;
    assert_eq!(r.state, DrainState::Drained);
    assert!(r.set_draining_by_us);
    assert_eq!(world.count("UpdateContainerInstancesState DRAINING"), 6);
    assert_eq!(
        world.count("DescribeContainerInstances"),
        0,
        "{:?}",
        world.calls()
    );
}

/// A termination's drain resumed after a crash may have set DRAINING without recording it: it
/// reads first, so DRAINING is set at most once.
#[tokio::test]
async fn a_resumed_termination_reads_draining_before_setting_it() {
    let world = FakeWorld::with_tasks(&[]);
    let (_d, s) = store();
    let config = Config::default();
    drain_with(&config, &s, &world, false, Trigger::Lifecycle).await;
    // The crash: DRAINING landed, the record of it did not.
    s.update(|st| {
        let d = st.drain.as_mut().unwrap();
        d.set_draining_by_us = false;
        d.state = DrainState::Draining;
    });
    drain_with(&config, &s, &world, false, Trigger::Lifecycle).await;
    assert_eq!(
        world.count("DescribeContainerInstances"),
        1,
        "{:?}",
        world.calls()
    );
    assert_eq!(world.count("UpdateContainerInstancesState DRAINING"), 1);
}

#[tokio::test]
async fn undrain_returns_to_active_what_ecs_boot_drained() {
    let world = FakeWorld::with_tasks(&[]);
    let (_d, s) = store();
    drain_with(&Config::default(), &s, &world, false, Trigger::Manual).await;
    let config = Config::default();
    let drainer = drainer(&world, &config, &s, false);
    assert!(drainer.reactivate().await.unwrap().contains("ACTIVE again"));
    assert_eq!(world.inner.lock().unwrap().status, "ACTIVE");
    assert_eq!(drainer.reactivate().await.unwrap(), "nothing was drained");
}

#[tokio::test]
async fn a_restart_mid_drain_resumes_its_record_and_a_termination_restarts_the_clock() {
    let world = FakeWorld::with_tasks(&[service_task("t1", u32::MAX)]);
    let (dir, s) = store();
    let config = Config::default();
    let first = drain_with(&config, &s, &world, false, Trigger::Manual).await;
    assert_eq!(world.count("UpdateContainerInstancesState"), 1);
    // The restarted agent reads the record back: same cause, same deadline, DRAINING not set
    // again (it was ours).
    let restarted = StateStore::open(dir.path().join("state.json"));
    let again = drain_with(&config, &restarted, &world, false, Trigger::Manual).await;
    assert_eq!(
        (again.started_at, again.deadline_at),
        (first.started_at, first.deadline_at)
    );
    assert_eq!(world.count("UpdateContainerInstancesState"), 1);
    assert_eq!(world.count("DescribeContainerInstances"), 1);
    // A real termination after the operator's drain: its own clock, DRAINING still ours.
    let term = drain_with(&config, &restarted, &world, false, Trigger::Lifecycle).await;
    assert_eq!(term.cause, Cause::Lifecycle);
    assert!(term.started_at > first.started_at && term.set_draining_by_us);
}

#[tokio::test]
async fn with_the_agent_down_the_tasks_come_from_ecs() {
    let world = FakeWorld::with_tasks(&[service_task("t1", 2)]);
    world.inner.lock().unwrap().agent_up = false;
    let (_d, s) = store();
    s.update(|st| {
        st.registration = Some(Registration {
            container_instance_arn: CI_ARN.into(),
            cluster: "web".into(),
            agent_version: None,
            registered_at: OffsetDateTime::UNIX_EPOCH,
        })
    });
    let r = drain_with(&Config::default(), &s, &world, false, Trigger::Manual).await;
    assert_eq!(r.state, DrainState::Drained);
    assert_eq!(world.count("ListTasks"), 3);
    assert_eq!(
        world.count("agent /v1/metadata"),
        0,
        "the registration record names it"
    );
}

#[test]
fn spot_notice_caps_the_deadline() {
    let config = Config::default();
    let now = OffsetDateTime::now_utc();
    let spot = Trigger::Spot {
        action: "terminate".into(),
        time: Some(now + time::Duration::seconds(120)),
    };
    assert_eq!(
        deadline_for(&config, &spot, now),
        now + time::Duration::seconds(110)
    );
    assert_eq!(
        deadline_for(&config, &Trigger::Lifecycle, now),
        now + config.drain.deadline
    );
    let past = Trigger::Spot {
        action: "terminate".into(),
        time: Some(now - time::Duration::seconds(5)),
    };
    assert_eq!(deadline_for(&config, &past, now), now);
}

#[test]
fn a_persisted_cause_gives_back_a_trigger_of_that_cause() {
    for c in [
        Cause::Lifecycle,
        Cause::Spot,
        Cause::Rebalance,
        Cause::Operator,
    ] {
        assert_eq!(Trigger::from_cause(c).cause(), c);
    }
    assert_eq!(Trigger::from_cause(Cause::Spot).label(), "spot:terminate");
}
