//! The hook rules and the action's exactly-once completion, against an in-memory group.

use super::fake::FakeGroup;
use super::*;
use crate::config::tags::TagInputs;
use crate::status::state::{HookIntent, StateStore, Transition};
use time::OffsetDateTime;

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = StateStore::open(dir.path().join("state.json"));
    (dir, s)
}

fn tags_with(asg: &str) -> TagInputs {
    TagInputs {
        asg: Some(asg.into()),
        ..TagInputs::default()
    }
}

const HOOKS: &[(&str, Transition)] = &[
    (ECS_MANAGED_DRAINING_HOOK, Transition::Terminate),
    ("web-launch", Transition::Launch),
    ("web-terminate", Transition::Terminate),
    ("other-launch", Transition::Launch),
];

async fn hooks_of(g: &FakeGroup) -> GroupHooks {
    GroupHooks::discover(g, &tags_with("web"), "i-1")
        .await
        .unwrap()
}

#[tokio::test]
async fn discovery_reads_the_hooks_once_for_launch_and_terminate() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let hooks = hooks_of(&g).await;
    let c = Config::default();
    let t = TagInputs::default();
    let launch = hooks
        .resolve(&c, &t, "i-1", Transition::Launch)
        .unwrap()
        .unwrap();
    let term = hooks
        .resolve(&c, &t, "i-1", Transition::Terminate)
        .unwrap()
        .unwrap();
    assert_eq!(
        (launch.name.as_str(), term.name.as_str()),
        ("web-launch", "web-terminate")
    );
    assert_eq!(
        g.calls(),
        ["DescribeLifecycleHooks"],
        "one call serves both transitions"
    );
    assert!(hooks.managed_draining());
}

#[tokio::test]
async fn hook_names_follow_one_rule_trusted_config_then_tag_then_discovery() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let hooks = hooks_of(&g).await;
    let tag = TagInputs {
        launch_hook: Some("other-launch".into()),
        ..TagInputs::default()
    };
    let named = |c: &Config, t: &TagInputs| {
        hooks
            .resolve(c, t, "i-1", Transition::Launch)
            .map(|h| h.map(|h| h.name))
    };
    let trusted = Config::parse("[lifecycle]\nlaunch_hook = \"web-launch\"\n", "t").unwrap();
    assert_eq!(
        named(&trusted, &tag).unwrap().as_deref(),
        Some("web-launch")
    );
    assert_eq!(
        named(&Config::default(), &tag).unwrap().as_deref(),
        Some("other-launch")
    );
    assert_eq!(
        named(&Config::default(), &TagInputs::default())
            .unwrap()
            .as_deref(),
        Some("web-launch")
    );
    // A named hook must exist for that transition...
    let missing = TagInputs {
        launch_hook: Some("web-terminate".into()),
        ..TagInputs::default()
    };
    let err = named(&Config::default(), &missing).unwrap_err().to_string();
    assert!(err.contains("ecs-boot:launch-hook"), "{err}");
    // ...and ECS's managed-draining hook is never ours, whoever names it.
    let managed = TagInputs {
        terminate_hook: Some(ECS_MANAGED_DRAINING_HOOK.into()),
        ..TagInputs::default()
    };
    assert!(
        hooks
            .resolve(&Config::default(), &managed, "i-1", Transition::Terminate)
            .is_err()
    );
    let only_managed = FakeGroup::new("web", "InService", &HOOKS[..1]);
    let h = hooks_of(&only_managed).await;
    assert_eq!(
        h.resolve(
            &Config::default(),
            &TagInputs::default(),
            "i-1",
            Transition::Terminate
        )
        .unwrap(),
        None
    );
}

/// The action for `transition` on the group's hook, heartbeating every `interval`.
async fn action_for(
    g: &FakeGroup,
    store: &StateStore,
    transition: Transition,
    interval: Duration,
) -> HookAction<FakeGroup> {
    let hook = hooks_of(g)
        .await
        .resolve(&Config::default(), &TagInputs::default(), "i-1", transition)
        .unwrap();
    HookAction::begin(
        g.clone(),
        store.clone(),
        transition,
        hook,
        interval,
        Duration::ZERO,
    )
}

async fn launch_action(g: &FakeGroup, store: &StateStore) -> HookAction<FakeGroup> {
    action_for(g, store, Transition::Launch, Duration::from_secs(3600)).await
}

#[tokio::test]
async fn completes_exactly_once_and_records_it() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let (_d, store) = store();
    let r = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert_eq!((r.result, r.already_done), (HookResult::Continue, false));
    assert_eq!(g.state(), "InService");
    // A second action for the same transition (a restart) sends nothing.
    let again = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert_eq!(again.completed_at, r.completed_at);
    let completions = g.count("CompleteLifecycleAction");
    assert_eq!(completions, 1);
    assert!(store.snapshot().hook_intents.is_empty());
}

/// What a run leaves when killed after sending its CONTINUE, before recording the answer.
fn seed_launch_intent(store: &StateStore) {
    store.update(|s| {
        s.hook_intents.push(HookIntent {
            transition: Transition::Launch,
            hook: "web-launch".into(),
            result: HookResult::Continue,
            at: OffsetDateTime::now_utc(),
        })
    });
}

#[tokio::test]
async fn a_restart_after_an_effective_completion_asks_instead_of_completing() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let (dir, store) = store();
    // The completion took effect, then the process died before recording the answer.
    seed_launch_intent(&store);
    g.inner.lock().unwrap().state = "InService".into();
    let restarted = StateStore::open(dir.path().join("state.json"));
    let r = launch_action(&g, &restarted)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert!(
        r.already_done && r.cause.as_deref().unwrap().contains("InService"),
        "{r:?}"
    );
    assert!(g.count("CompleteLifecycleAction") == 0);
}

#[tokio::test]
async fn a_restart_after_a_lost_completion_completes_once_more() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let (dir, store) = store();
    seed_launch_intent(&store);
    let restarted = StateStore::open(dir.path().join("state.json"));
    let r = launch_action(&g, &restarted)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert!(!r.already_done);
    assert_eq!(g.state(), "InService");
}

#[tokio::test(start_paused = true)]
async fn a_failed_completion_leaves_the_intent_and_no_record() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    g.inner.lock().unwrap().fail_always = true;
    let (_d, store) = store();
    let err = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CompleteLifecycleAction"), "{err}");
    let s = store.snapshot();
    assert!(s.hook_done(Transition::Launch).is_none());
    assert!(s.hook_intent(Transition::Launch).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_never_resent_blindly() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    g.inner.lock().unwrap().lose_next_answer = true;
    let (_d, store) = store();
    let r = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert!(r.already_done && r.cause.unwrap().contains("InService"));
    let completions = g.count("CompleteLifecycleAction");
    assert_eq!(completions, 1, "{:?}", g.calls());
}

#[tokio::test(start_paused = true)]
async fn a_refused_completion_is_retried_while_the_action_waits() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    g.inner.lock().unwrap().fail_next_complete = Some("ServiceUnavailable".into());
    let (_d, store) = store();
    let r = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert!(!r.already_done);
    assert_eq!(g.state(), "InService");
}

/// The action ended before we completed it (its heartbeat timeout, someone else): recorded as
/// already done, nothing retried, for launch and terminate alike.
#[tokio::test]
async fn an_action_already_finished_is_recorded_as_already_done() {
    for (state, transition) in [
        ("InService", Transition::Launch),
        ("Terminating:Proceed", Transition::Terminate),
    ] {
        let g = FakeGroup::new("web", state, HOOKS);
        let (_d, store) = store();
        let r = action_for(&g, &store, transition, Duration::from_secs(3600))
            .await
            .complete(HookResult::Continue, None, None)
            .await
            .unwrap();
        assert!(r.already_done, "{state}: {r:?}");
        let recorded = store
            .snapshot()
            .hook_done(transition)
            .map(|h| h.already_done);
        assert_eq!(recorded, Some(true), "{state}");
        let completions = g.count("CompleteLifecycleAction");
        assert_eq!(completions, 1, "{state}: asked once, not retried");
    }
}

#[tokio::test]
async fn no_hook_is_recorded_as_skipped_with_the_reason() {
    let g = FakeGroup::new("web", "Pending:Wait", &[]);
    let (_d, store) = store();
    let r = launch_action(&g, &store)
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert_eq!(r.result, HookResult::Skipped);
    assert!(r.cause.unwrap().contains("no launch lifecycle hook"));
    assert!(g.count("CompleteLifecycleAction") == 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_run_while_the_action_is_open_and_stop_with_it() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    let (_d, store) = store();
    let action = action_for(&g, &store, Transition::Launch, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(35)).await;
    let r = action
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert_eq!(r.heartbeats, 3);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let beats = g.count("RecordLifecycleActionHeartbeat");
    assert_eq!(beats, 3, "heartbeats went on after completion");
}

/// A throttled completion was never considered: it is sent again at once (backoff apart), and
/// Auto Scaling is not asked whether the action still waits — that call would spend the same
/// exhausted budget (issue 23's scale-in storm).
#[tokio::test(start_paused = true)]
async fn a_throttled_completion_is_sent_again_without_asking() {
    let g = FakeGroup::new("web", "Terminating:Wait", HOOKS);
    g.inner.lock().unwrap().throttle_completes = 6;
    let (_d, store) = store();
    let r = action_for(&g, &store, Transition::Terminate, Duration::from_secs(150))
        .await
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert!(!r.already_done && r.result == HookResult::Continue, "{r:?}");
    assert_eq!(g.count("CompleteLifecycleAction"), 7, "{:?}", g.calls());
    assert_eq!(
        g.count("DescribeAutoScalingInstances"),
        0,
        "{:?}",
        g.calls()
    );
    assert_eq!(g.state(), "Terminating:Proceed");
}

/// Throttled until the action's timeout (300 s after it opened here): Auto Scaling applied the
/// DefaultResult; asked once, that is what is recorded, and the retries stop.
#[tokio::test(start_paused = true)]
async fn throttled_until_the_timeout_records_what_auto_scaling_did() {
    let g = FakeGroup::new("web", "Terminating:Wait", HOOKS);
    g.inner.lock().unwrap().throttle_completes = u32::MAX;
    let (_d, store) = store();
    let action = action_for(&g, &store, Transition::Terminate, Duration::from_secs(3600)).await;
    let expire = {
        let g = g.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(300)).await;
            g.inner.lock().unwrap().state = "Terminating:Proceed".into();
        }
    };
    let started = tokio::time::Instant::now();
    let (r, ()) = tokio::join!(action.complete(HookResult::Continue, None, None), expire);
    let r = r.unwrap();
    assert!(r.already_done, "{r:?}");
    assert!(r.cause.unwrap().contains("Terminating:Proceed"));
    assert!(started.elapsed() >= Duration::from_secs(300));
    assert!(
        started.elapsed() < Duration::from_secs(310),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        g.count("DescribeAutoScalingInstances"),
        1,
        "{:?}",
        g.calls()
    );
    // Backoff capped at 4 s: about 80 attempts over 300 s, not a tight loop.
    let attempts = g.count("CompleteLifecycleAction");
    assert!((60..=160).contains(&attempts), "{attempts}");
}

/// A failed beat is retried a fifth of the interval later, not a whole interval: the action's
/// timeout (twice the interval by default) is never reached for one lost beat.
#[tokio::test(start_paused = true)]
async fn a_failed_heartbeat_is_retried_sooner_than_the_next_beat() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    g.inner.lock().unwrap().fail_heartbeats = 2;
    let (_d, store) = store();
    let action = action_for(&g, &store, Transition::Launch, Duration::from_secs(50)).await;
    // 50 s: the first beat fails; two retries within 20 s (10 s each at most), the second lands.
    tokio::time::sleep(Duration::from_secs(71)).await;
    assert_eq!(
        g.count("RecordLifecycleActionHeartbeat"),
        3,
        "{:?}",
        g.calls()
    );
    let r = action
        .complete(HookResult::Continue, None, None)
        .await
        .unwrap();
    assert_eq!(r.heartbeats, 1);
}

#[test]
fn a_beat_every_half_of_the_hooks_timeout() {
    let hook = |t: Option<u64>| Hook {
        asg: "web".into(),
        name: "h".into(),
        instance_id: "i-1".into(),
        heartbeat_timeout: t.map(Duration::from_secs),
    };
    let c = Config::default();
    assert_eq!(
        hook(Some(60)).heartbeat_interval(&c),
        Duration::from_secs(30)
    );
    assert_eq!(
        hook(Some(3600)).heartbeat_interval(&c),
        Duration::from_secs(300)
    );
    assert_eq!(hook(None).heartbeat_interval(&c), Duration::from_secs(15));
    assert_eq!(hook(None).expires_after(), Duration::from_secs(3600));
}

/// The action timed out while our completions were throttled: the one that got through finds no
/// active action. Auto Scaling is asked what happened, and that is recorded — an ABANDON by the
/// DefaultResult, not the CONTINUE we meant.
#[tokio::test(start_paused = true)]
async fn no_active_action_after_throttling_records_what_auto_scaling_did() {
    let g = FakeGroup::new("web", "Pending:Wait", HOOKS);
    g.inner.lock().unwrap().throttle_completes = 3;
    let (_d, store) = store();
    let action = launch_action(&g, &store).await;
    let timeout = {
        let g = g.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            g.inner.lock().unwrap().state = "Terminating".into();
        }
    };
    let (r, ()) = tokio::join!(action.complete(HookResult::Continue, None, None), timeout);
    let err = r.unwrap_err();
    assert!(err.to_string().contains("Terminating"), "{err}");
    let done = store
        .snapshot()
        .hook_done(Transition::Launch)
        .cloned()
        .unwrap();
    assert_eq!(done.result, HookResult::Abandon);
    assert_eq!(
        g.count("DescribeAutoScalingInstances"),
        1,
        "{:?}",
        g.calls()
    );
}

/// An action taken up late (after a restart, or long after Auto Scaling started timing it)
/// beats at once, not an interval later.
#[tokio::test(start_paused = true)]
async fn an_action_taken_up_late_beats_at_once() {
    let g = FakeGroup::new("web", "Terminating:Wait", HOOKS);
    let (_d, store) = store();
    let hook = hooks_of(&g)
        .await
        .resolve(
            &Config::default(),
            &TagInputs::default(),
            "i-1",
            Transition::Terminate,
        )
        .unwrap();
    let interval = Duration::from_secs(30);
    let action = HookAction::begin(
        g.clone(),
        store.clone(),
        Transition::Terminate,
        hook,
        interval,
        interval,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(g.count("RecordLifecycleActionHeartbeat"), 1);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(g.count("RecordLifecycleActionHeartbeat"), 2);
    drop(action);
}
