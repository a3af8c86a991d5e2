use super::*;
use std::collections::BTreeMap;

fn command(script: &str, timeout: Duration) -> HookCommand {
    HookCommand {
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        timeout,
        required: false,
    }
}

fn hooks(step: &str, script: &str, timeout: Duration) -> HooksSection {
    let mut h = HooksSection::default();
    let c = Some(command(script, timeout));
    match step {
        "pre_drain" => h.pre_drain = c,
        "post_drain" => h.post_drain = c,
        "in_service" => h.in_service = c,
        _ => h.on_failure = c,
    }
    h
}

fn ctx() -> Context {
    Context {
        instance_id: "i-0123".into(),
        cluster: "prod".into(),
        transition: "terminate",
        cause: "lifecycle".into(),
        stage: Some(Stage::Draining),
    }
}

#[tokio::test]
async fn a_hook_sees_only_the_documented_environment() {
    // The test process has HOME, CARGO_* and more: none of it may reach the hook.
    let ran = execute(
        "pre_drain",
        &command("env | sort", Duration::from_secs(10)),
        &environment(Hook::PreDrain, &ctx(), 3),
    )
    .await;
    assert!(ran.ok(), "{ran:?}");
    let env: BTreeMap<&str, &str> = ran
        .output
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !["PWD", "SHLVL", "_"].contains(k))
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([
            ("ECS_BOOT_ATTEMPT", "3"),
            ("ECS_BOOT_CAUSE", "lifecycle"),
            ("ECS_BOOT_CLUSTER", "prod"),
            ("ECS_BOOT_HOOK", "pre_drain"),
            ("ECS_BOOT_INSTANCE_ID", "i-0123"),
            ("ECS_BOOT_STAGE", "draining"),
            ("ECS_BOOT_TRANSITION", "terminate"),
            ("PATH", HOOK_PATH),
        ])
    );
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_killed_with_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late");
    // The child in the background outlives the shell unless the group is killed.
    let script = format!(
        "(sleep 2; touch {}) & echo started; sleep 30",
        late.display()
    );
    let ran = execute(
        "post_drain",
        &command(&script, Duration::from_millis(500)),
        &[],
    )
    .await;
    assert_eq!(ran.result, "timeout", "{ran:?}");
    assert!(ran.duration < Duration::from_secs(10), "{ran:?}");
    assert!(ran.output.contains("started"), "{ran:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !late.exists(),
        "a process of the hook's group survived the timeout"
    );
}

#[tokio::test]
async fn exit_codes_and_missing_programs_are_reported() {
    let ran = execute(
        "x",
        &command("echo oops >&2; exit 7", Duration::from_secs(10)),
        &[],
    )
    .await;
    assert_eq!((ran.result, ran.exit_code), ("failed", Some(7)));
    assert!(ran.output.contains("oops"));
    let missing = HookCommand {
        command: vec!["/nonexistent/hook".into()],
        timeout: Duration::from_secs(1),
        required: false,
    };
    let ran = execute("x", &missing, &[]).await;
    assert_eq!(ran.result, "error");
    assert!(
        ran.describe().contains("/nonexistent/hook"),
        "{}",
        ran.describe()
    );
}

#[tokio::test]
async fn output_is_capped_to_its_tail() {
    let ran = execute(
        "x",
        &command(
            "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done; echo LAST",
            Duration::from_secs(20),
        ),
        &[],
    )
    .await;
    assert!(ran.ok());
    assert!(ran.output.len() <= HANDLER_OUTPUT, "{}", ran.output.len());
    assert!(ran.output.ends_with("LAST") && !ran.output.contains("line-0\n"));
    // And the state keeps it within its cap, escapes included.
    let mut s = crate::status::state::State::new();
    s.handlers.push(HandlerRecord {
        hook: "x".into(),
        attempt: 1,
        started_at: OffsetDateTime::now_utc(),
        finished_at: None,
        result: None,
        exit_code: None,
        duration_ms: None,
        output: "\u{1b}\"".repeat(4000),
        closed: false,
    });
    s.bound();
    assert!(serde_json::to_string(&s.handlers[0].output).unwrap().len() <= HANDLER_OUTPUT + 2);
}

#[tokio::test]
async fn attempts_count_across_a_restart_and_a_finished_hook_never_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let log = dir.path().join("runs");
    let script = format!("echo $ECS_BOOT_ATTEMPT >> {}", log.display());
    let h = hooks("pre_drain", &script, Duration::from_secs(10));

    // A run that crashed mid-hook: started recorded, never finished.
    let store = StateStore::open(path.clone());
    store.update_durable(|s| {
        s.handlers.push(HandlerRecord {
            hook: "pre_drain".into(),
            attempt: 1,
            started_at: OffsetDateTime::now_utc(),
            finished_at: None,
            result: None,
            exit_code: None,
            duration_ms: None,
            output: String::new(),
            closed: false,
        })
    });
    drop(store);

    let store = StateStore::open(path.clone());
    let ran = run(&store, &h, Hook::PreDrain, &ctx())
        .await
        .unwrap()
        .unwrap();
    assert!(ran.ok());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "2\n");
    drop(store);

    let store = StateStore::open(path.clone());
    assert!(
        run(&store, &h, Hook::PreDrain, &ctx())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "2\n",
        "ran again after it finished"
    );
    let r = &store.snapshot().handlers[0];
    assert_eq!((r.attempt, r.result.as_deref()), (2, Some("ok")));

    // An undrain ends the step: the next drain runs it afresh.
    close_drain(&store);
    run(&store, &h, Hook::PreDrain, &ctx())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "2\n1\n");
}

#[test]
fn plan_follows_the_records() {
    let rec = |attempt, finished: bool, result: Option<&str>, closed| HandlerRecord {
        hook: "pre_drain".into(),
        attempt,
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: finished.then_some(OffsetDateTime::UNIX_EPOCH),
        result: result.map(str::to_string),
        exit_code: None,
        duration_ms: None,
        output: String::new(),
        closed,
    };
    assert_eq!(plan(&[], "pre_drain", false), Plan::Run { attempt: 1 });
    assert_eq!(
        plan(&[rec(1, false, None, false)], "pre_drain", false),
        Plan::Run { attempt: 2 }
    );
    assert_eq!(
        plan(&[rec(2, true, Some("ok"), false)], "pre_drain", false),
        Plan::Done
    );
    assert_eq!(
        plan(&[rec(1, true, Some("failed"), false)], "pre_drain", false),
        Plan::Done
    );
    assert_eq!(
        plan(&[rec(1, true, Some("failed"), false)], "pre_drain", true),
        Plan::Run { attempt: 2 }
    );
    assert_eq!(
        plan(&[rec(3, true, Some("ok"), true)], "pre_drain", false),
        Plan::Run { attempt: 1 }
    );
    assert_eq!(
        plan(&[rec(3, true, Some("ok"), false)], "post_drain", false),
        Plan::Run { attempt: 1 }
    );
}
