//! The launch stage against an in-memory cluster (ports/fake.rs: the agent's introspection
//! answers, PutAttributes), an in-memory Auto Scaling group (hook/fake.rs) and a fake clock:
//! registration at once, late, never, into another cluster; readiness refused; the launch hook
//! completed once, already completed before a restart, or gone; SIGTERM during the wait; the
//! warm-pool variant.

use super::Launch;
use super::stage::launch_event;
use crate::error::Error;
use crate::lifecycle::hook::fake::FakeGroup;
use crate::lifecycle::hook::{Hook, HookAction};
use crate::lifecycle::machine::Event;
use crate::lifecycle::ports::fake::{AgentAnswer, CI_ARN, CLUSTER, FakeWorld};
use crate::status::state::{HookResult, PhaseStatus, StateStore, Transition};
use crate::util::clock::fake::FakeClock;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(600);
const HOOK: &str = "web-launch";

struct Rig {
    _dir: tempfile::TempDir,
    store: StateStore,
    world: FakeWorld,
    group: FakeGroup,
}

/// An instance waiting in `asg_state` on the launch hook; its agent up or down.
fn rig(asg_state: &str, agent_up: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path().join("state.json"));
    let world = FakeWorld::with_tasks(&[]);
    world.inner.lock().unwrap().agent_up = agent_up;
    let group = FakeGroup::new("web-asg", asg_state, &[(HOOK, Transition::Launch)]);
    Rig {
        _dir: dir,
        store,
        world,
        group,
    }
}

impl Rig {
    fn script(&self, answers: &[AgentAnswer]) {
        self.world.inner.lock().unwrap().agent_script = answers.iter().cloned().collect();
    }

    fn stage(&self) -> Launch<'_, FakeWorld, FakeClock> {
        Launch {
            world: self.world.clone(),
            clock: &self.world.clock,
            store: &self.store,
            cluster: CLUSTER,
            registration_timeout: TIMEOUT,
        }
    }

    /// The action as discovery opens it (heartbeats far apart: none in a test).
    fn action(&self, transition: Transition) -> HookAction<FakeGroup> {
        let hook = Hook {
            asg: "web-asg".into(),
            name: HOOK.into(),
            instance_id: "i-1".into(),
            heartbeat_timeout: Some(Duration::from_secs(300)),
        };
        HookAction::begin(
            self.group.clone(),
            self.store.clone(),
            transition,
            Some(hook),
            Duration::from_secs(3600),
            Duration::ZERO,
        )
    }

    async fn launch(&self) -> crate::error::Result<()> {
        self.stage()
            .run(self.action(Transition::Launch), async { Ok(()) })
            .await
    }

    fn phase(&self, name: &str) -> Option<PhaseStatus> {
        let s = self.store.snapshot();
        s.phases
            .iter()
            .rev()
            .find(|p| p.name == name)
            .map(|p| p.status)
    }

    fn completions(&self) -> usize {
        self.group.count("CompleteLifecycleAction")
    }
}

#[tokio::test]
async fn an_agent_registered_at_once_is_marked_ready_then_the_hook_continues() {
    let r = rig("Pending:Wait", true);
    r.launch().await.unwrap();
    assert_eq!(
        r.world.calls(),
        ["agent /v1/metadata", "PutAttributes ecs-boot.ready=true"]
    );
    assert_eq!(
        r.group.calls(),
        [format!("CompleteLifecycleAction {HOOK} CONTINUE")]
    );
    assert_eq!(r.group.state(), "InService");
    assert_eq!(r.world.clock.slept(), Duration::ZERO);
    let s = r.store.snapshot();
    let reg = s.registration.as_ref().expect("registration recorded");
    assert_eq!(
        (reg.container_instance_arn.as_str(), reg.cluster.as_str()),
        (CI_ARN, CLUSTER)
    );
    let done = s.hook_done(Transition::Launch).expect("hook recorded");
    assert_eq!(
        (done.result, done.already_done),
        (HookResult::Continue, false)
    );
    for phase in ["registration", "readiness", "launch-hook"] {
        assert_eq!(r.phase(phase), Some(PhaseStatus::Ok), "{phase}");
    }
}

#[tokio::test]
async fn a_late_registration_is_waited_for_and_only_then_marked_ready() {
    let r = rig("Pending:Wait", true);
    r.script(&[
        AgentAnswer::NotListening,
        AgentAnswer::NotListening,
        AgentAnswer::NoInstance,
    ]);
    r.launch().await.unwrap();
    let calls = r.world.calls();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(calls[3], "agent /v1/metadata");
    assert_eq!(calls[4], "PutAttributes ecs-boot.ready=true");
    // Polled a few times on the fake clock, never near the deadline.
    assert!(r.world.clock.slept() > Duration::ZERO && r.world.clock.slept() < TIMEOUT);
    assert_eq!(r.completions(), 1);
}

#[tokio::test]
async fn introspection_down_then_up_is_not_a_failure() {
    let r = rig("Pending:Wait", true);
    r.script(&[
        AgentAnswer::Broken,
        AgentAnswer::NotListening,
        AgentAnswer::Broken,
    ]);
    r.launch().await.unwrap();
    assert_eq!(r.world.count("agent /v1/metadata"), 4);
    assert_eq!(r.group.state(), "InService");
}

#[tokio::test]
async fn an_agent_that_never_registers_fails_at_the_deadline_and_sends_nothing() {
    let r = rig("Pending:Wait", false);
    let (event, failure) = launch_event(r.launch(), std::future::pending::<()>()).await;
    assert_eq!(
        event,
        Event::Failed,
        "the table abandons the launch on Failed"
    );
    let err = failure
        .expect("the failure is kept for the Abandon")
        .to_string();
    assert!(
        err.contains("did not register within 600s") && err.contains("not open yet"),
        "{err}"
    );
    // The deadline is honoured exactly: the last sleep is cut to what remains.
    assert_eq!(r.world.clock.slept(), TIMEOUT);
    assert!(r.world.count("agent /v1/metadata") > 1);
    assert_eq!(r.world.count("PutAttributes"), 0);
    assert_eq!(
        r.completions(),
        0,
        "ABANDON is the table's action, not the stage's"
    );
    assert_eq!(r.phase("registration"), Some(PhaseStatus::Failed));
    assert!(r.store.snapshot().registration.is_none());
}

#[tokio::test]
async fn an_agent_registered_into_another_cluster_fails_at_once() {
    let r = rig("Pending:Wait", true);
    r.script(&[AgentAnswer::Registered("staging")]);
    let err = r.launch().await.unwrap_err().to_string();
    assert!(err.contains("\"staging\", not \"web\""), "{err}");
    assert_eq!(
        r.world.clock.slept(),
        Duration::ZERO,
        "no waiting once it is wrong"
    );
    assert_eq!(r.world.calls(), ["agent /v1/metadata"]);
    assert_eq!(r.completions(), 0);
}

#[tokio::test]
async fn refused_put_attributes_fails_the_launch_before_the_hook() {
    let r = rig("Pending:Wait", true);
    r.world.inner.lock().unwrap().refuse_put_attributes = true;
    let err = r.launch().await.unwrap_err();
    assert!(matches!(err, Error::Aws { .. }), "{err:?}");
    assert!(err.to_string().contains("PutAttributes"), "{err}");
    assert_eq!(r.world.count("PutAttributes ecs-boot.ready=true"), 1);
    assert_eq!(
        r.completions(),
        0,
        "never CONTINUE a node that cannot be marked ready"
    );
    assert_eq!(r.phase("readiness"), Some(PhaseStatus::Failed));
    assert_eq!(r.group.state(), "Pending:Wait");
}

#[tokio::test]
async fn a_hook_completed_before_a_restart_is_not_completed_again() {
    let r = rig("Pending:Wait", true);
    r.launch().await.unwrap();
    // The restart: the same state file, a new action, the stage run again.
    let restarted = StateStore::open(r._dir.path().join("state.json"));
    let again = Rig {
        _dir: tempfile::tempdir().unwrap(),
        store: restarted,
        world: r.world.clone(),
        group: r.group.clone(),
    };
    again.launch().await.unwrap();
    assert_eq!(r.completions(), 1, "{:?}", r.group.calls());
    assert_eq!(r.group.count("RecordLifecycleActionHeartbeat"), 0);
    // Registration and readiness are idempotent and run again.
    assert_eq!(r.world.count("PutAttributes ecs-boot.ready=true"), 2);
    let s = again.store.snapshot();
    assert_eq!(s.hooks.len(), 1);
}

#[tokio::test]
async fn an_action_gone_is_recorded_as_already_ended_and_the_launch_goes_on() {
    // Someone (or the hook's timeout with CONTINUE) ended the action: "No active Lifecycle
    // Action found".
    let r = rig("InService", true);
    r.launch().await.unwrap();
    assert_eq!(r.completions(), 1);
    let s = r.store.snapshot();
    let done = s.hook_done(Transition::Launch).expect("recorded");
    assert!(done.already_done);
    assert_eq!(done.result, HookResult::Continue);
    assert_eq!(r.phase("launch-hook"), Some(PhaseStatus::Ok));
}

#[tokio::test]
async fn no_hook_for_the_instance_is_recorded_as_skipped() {
    let r = rig("Pending:Wait", true);
    let action = HookAction::begin(
        r.group.clone(),
        r.store.clone(),
        Transition::Launch,
        None,
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    r.stage().run(action, async { Ok(()) }).await.unwrap();
    assert_eq!(r.completions(), 0);
    let s = r.store.snapshot();
    assert_eq!(
        s.hook_done(Transition::Launch).unwrap().result,
        HookResult::Skipped
    );
}

#[tokio::test]
async fn sigterm_during_the_wait_stops_before_anything_is_sent() {
    let r = rig("Pending:Wait", false);
    // SIGTERM arrives while the agent is still not registered (a few polls in).
    let sigterm = async {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    };
    let (event, failure) = launch_event(r.launch(), sigterm).await;
    assert_eq!(event, Event::Stop);
    assert!(failure.is_none());
    assert!(r.world.count("agent /v1/metadata") >= 1);
    assert!(
        r.world.clock.slept() < TIMEOUT,
        "stopped before the deadline"
    );
    assert_eq!(r.world.count("PutAttributes"), 0);
    assert_eq!(r.completions(), 0);
    assert_eq!(
        r.group.state(),
        "Pending:Wait",
        "the next start resumes the launch"
    );
    assert!(r.store.snapshot().hook_done(Transition::Launch).is_none());
}

#[tokio::test]
async fn a_failing_container_phase_fails_the_launch_before_readiness() {
    let r = rig("Pending:Wait", true);
    let containers = async { Err(Error::Other("essential container exited".into())) };
    let err = r
        .stage()
        .run(r.action(Transition::Launch), containers)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("essential container"), "{err}");
    assert_eq!(r.world.count("PutAttributes"), 0);
    assert_eq!(r.completions(), 0);
}

#[tokio::test]
async fn a_warming_instance_completes_its_hook_once_and_never_asks_the_agent() {
    let r = rig("Warmed:Pending:Wait", false);
    r.stage()
        .park(r.action(Transition::LaunchWarmed), "Warmed:Stopped")
        .await
        .unwrap();
    assert_eq!(
        r.group.calls(),
        [format!("CompleteLifecycleAction {HOOK} CONTINUE")]
    );
    assert_eq!(r.group.state(), "Warmed:Stopped");
    assert!(r.world.calls().is_empty(), "{:?}", r.world.calls());
    assert_eq!(r.phase("warm-pool-hook"), Some(PhaseStatus::Ok));
    // Parked again after a restart: the record says done, nothing is sent.
    r.stage()
        .park(r.action(Transition::LaunchWarmed), "Warmed:Stopped")
        .await
        .unwrap();
    assert_eq!(r.completions(), 1);
}
