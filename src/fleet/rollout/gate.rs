//! The gate at one checkpoint: are the instances launched with the new AMI booting healthy?
//! Pure: it judges what the group says about membership and what each instance's
//! `ecs-boot status --json` (collected by the fleet collector) says about its boot.
//!
//! A replacement passes when it is InService in the group, its status document says `healthy`
//! and `in_service`, its launch hook was completed with CONTINUE, no essential system container
//! is anything but running nor died since the boot (`state.health`), and no boot phase (nor the
//! whole boot) took longer than the limits.
//! Anything else fails the gate, including no answer: a gate never passes on missing evidence.

use crate::fleet::render::{Health, Row};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest any one boot phase may take.
    pub max_phase: Duration,
    /// The longest the phases together may take.
    pub max_boot: Duration,
}

/// A replacement as the group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub instance_id: String,
    /// The group's LifecycleState; None once the instance left the group.
    pub lifecycle: Option<String>,
}

/// What one replacement showed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub instance_id: String,
    pub lifecycle: Option<String>,
    pub health: Option<Health>,
    pub outcome: Option<String>,
    pub launch_hook: Option<String>,
    pub boot_ms: Option<u64>,
    pub slowest_phase: Option<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_containers: Vec<String>,
    /// Why this instance fails the gate; empty when it passes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// One line per problem, instance first.
    pub reasons: Vec<String>,
    pub instances: Vec<Evidence>,
}

/// The members a gate judges: once `expected` replacements are in service, those and every one
/// that left the group; replacements launched past the checkpoint are the next gate's. Until
/// then, all of them (the ones not in service fail).
pub fn judged(members: &[Member], expected: u32) -> Vec<Member> {
    let in_service = |m: &Member| m.lifecycle.as_deref() == Some("InService");
    let enough = members.iter().filter(|m| in_service(m)).count() as u32 >= expected;
    members
        .iter()
        .filter(|m| !enough || in_service(m) || m.lifecycle.is_none())
        .cloned()
        .collect()
}

/// Judges `members` (every replacement the refresh launched so far, gone ones included) against
/// `expected` replacements, with the collected `rows` (one per member asked).
pub fn judge(expected: u32, members: &[Member], rows: &[Row], limits: Limits) -> Verdict {
    let members = judged(members, expected);
    let mut instances: Vec<Evidence> = members
        .iter()
        .map(|m| {
            evidence(
                m,
                rows.iter().find(|r| r.instance_id == m.instance_id),
                limits,
            )
        })
        .collect();
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let mut reasons: Vec<String> = instances
        .iter()
        .flat_map(|e| {
            e.problems
                .iter()
                .map(move |p| format!("{}: {p}", e.instance_id))
        })
        .collect();
    if (members.len() as u32) < expected {
        reasons.push(format!(
            "{} of {expected} replacements launched",
            members.len()
        ));
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
        instances,
    }
}

fn evidence(member: &Member, row: Option<&Row>, limits: Limits) -> Evidence {
    let mut e = Evidence {
        instance_id: member.instance_id.clone(),
        lifecycle: member.lifecycle.clone(),
        health: row.map(|r| r.health),
        outcome: row.and_then(|r| r.outcome.clone()),
        launch_hook: None,
        boot_ms: None,
        slowest_phase: None,
        failed_containers: Vec::new(),
        problems: Vec::new(),
    };
    match member.lifecycle.as_deref() {
        Some("InService") => {}
        None => e
            .problems
            .push("left the group before the gate (launch hook ABANDON, or terminated)".into()),
        Some(other) => e.problems.push(format!("not in service: {other}")),
    }
    let state = row
        .and_then(|r| r.status.as_ref())
        .and_then(|d| d.get("state"));
    if let Some(state) = state {
        read_state(state, limits, &mut e);
    }
    match row {
        None => e.problems.push("no boot report collected".into()),
        Some(r) if r.health != Health::Healthy => e.problems.push(match &r.error {
            Some(err) => format!("boot health {}: {err}", r.health),
            None => format!("boot health {}", r.health),
        }),
        Some(_) if state.is_none() => e.problems.push("its status has no boot record".into()),
        Some(_) => {}
    }
    if e.outcome.as_deref().is_some_and(|o| o != "in_service") {
        e.problems
            .push(format!("outcome {}", e.outcome.as_deref().unwrap_or("")));
    }
    e
}

/// Hooks, containers and phases of a status document's `state`.
fn read_state(state: &Value, limits: Limits, e: &mut Evidence) {
    let list = |key: &str| {
        state
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    e.launch_hook = list("hooks")
        .iter()
        .filter(|h| text(h, "transition").as_deref() == Some("launch"))
        .filter_map(|h| text(h, "result"))
        .next_back();
    match e.launch_hook.as_deref() {
        Some("CONTINUE") => {}
        Some("ABANDON") => e
            .problems
            .push("completed its launch hook with ABANDON".into()),
        Some(other) => e.problems.push(format!("launch hook {other}")),
        None => e.problems.push("launch hook not completed".into()),
    }
    for c in list("containers") {
        let essential = c.get("essential").and_then(Value::as_bool).unwrap_or(false);
        let running = text(&c, "state").as_deref() == Some("running");
        if essential && !running {
            let name = text(&c, "name").unwrap_or_default();
            let st = text(&c, "state").unwrap_or_default();
            e.problems
                .push(format!("essential system container {name} is {st}"));
            e.failed_containers.push(name);
        }
    }
    // After launch, ecs-boot watches the essential containers (state.health, status/essential.rs).
    let health = state.get("health");
    for f in health
        .and_then(|h| h.get("failing"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = text(f, "name").unwrap_or_default();
        if !e.failed_containers.contains(&name) {
            let cause = text(f, "cause").unwrap_or_default();
            e.problems
                .push(format!("essential system container {name} died: {cause}"));
            e.failed_containers.push(name);
        }
    }
    let deaths = health
        .and_then(|h| h.get("essential_failures"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if deaths > 0 && e.failed_containers.is_empty() {
        e.problems.push(format!(
            "essential system containers died {deaths} time(s) since the boot"
        ));
    }
    let mut total = 0u64;
    for p in list("phases") {
        let name = text(&p, "name").unwrap_or_default();
        let Some(ms) = p.get("duration_ms").and_then(Value::as_u64) else {
            continue;
        };
        total = total.saturating_add(ms);
        if e.slowest_phase.as_ref().is_none_or(|(_, m)| ms > *m) {
            e.slowest_phase = Some((name.clone(), ms));
        }
        if ms > limits.max_phase.as_millis() as u64 {
            e.problems.push(format!(
                "boot phase {name} took {ms} ms (limit {} ms)",
                limits.max_phase.as_millis()
            ));
        }
    }
    e.boot_ms = Some(total);
    if total > limits.max_boot.as_millis() as u64 {
        e.problems.push(format!(
            "boot took {total} ms (limit {} ms)",
            limits.max_boot.as_millis()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_phase: Duration::from_secs(60),
        max_boot: Duration::from_secs(120),
    };

    fn member(id: &str, lifecycle: Option<&str>) -> Member {
        Member {
            instance_id: id.into(),
            lifecycle: lifecycle.map(str::to_string),
        }
    }

    fn row(id: &str, health: Health, state: Value) -> Row {
        Row {
            instance_id: id.into(),
            health,
            outcome: state
                .get("outcome")
                .and_then(Value::as_str)
                .map(str::to_string),
            phase: None,
            error: None,
            hint: None,
            evidence: None,
            ssm: None,
            status: Some(json!({"health": health.as_str(), "state": state})),
        }
    }

    fn booted(hook: &str, phase_ms: u64, containers: Value) -> Value {
        json!({
            "outcome": "in_service",
            "phases": [{"name": "identity", "status": "ok", "duration_ms": 40},
                       {"name": "registration", "status": "ok", "duration_ms": phase_ms}],
            "hooks": [{"transition": "launch", "result": hook, "asg": "g", "hook": "h"}],
            "containers": containers,
        })
    }

    #[test]
    fn a_healthy_canary_passes_with_its_evidence() {
        let v = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 900, json!([])),
            )],
            LIMITS,
        );
        assert!(v.passed, "{v:?}");
        let e = &v.instances[0];
        assert_eq!(e.launch_hook.as_deref(), Some("CONTINUE"));
        assert_eq!(e.boot_ms, Some(940));
        assert_eq!(e.slowest_phase, Some(("registration".into(), 900)));
    }

    #[test]
    fn abandon_fails_whether_reported_or_only_seen_as_gone() {
        let reported = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row(
                "i-1",
                Health::Healthy,
                booted("ABANDON", 10, json!([])),
            )],
            LIMITS,
        );
        assert!(!reported.passed);
        assert!(
            reported.reasons[0].contains("ABANDON"),
            "{:?}",
            reported.reasons
        );
        let gone = judge(1, &[member("i-1", None)], &[], LIMITS);
        assert!(!gone.passed);
        assert!(gone.reasons.iter().any(|r| r.contains("left the group")));
        assert!(gone.reasons.iter().any(|r| r.contains("no boot report")));
    }

    #[test]
    fn a_failed_essential_container_fails_but_a_stopped_optional_one_does_not() {
        let containers = json!([
            {"name": "log-router", "image": "x", "state": "exited", "essential": true},
            {"name": "helper", "image": "y", "state": "exited", "essential": false},
        ]);
        let v = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 10, containers),
            )],
            LIMITS,
        );
        assert!(!v.passed);
        assert_eq!(v.instances[0].failed_containers, ["log-router"]);
        assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
    }

    #[test]
    fn an_essential_container_dead_after_launch_fails() {
        let mut state = booted("CONTINUE", 10, json!([]));
        state["health"] = json!({"ready": false, "essential_failures": 1,
            "failing": [{"name": "logs", "cause": "exited with code 1"}]});
        let v = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row("i-1", Health::Failed, state.clone())],
            LIMITS,
        );
        assert!(!v.passed);
        assert_eq!(v.instances[0].failed_containers, ["logs"]);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("logs died: exited with code 1")),
            "{v:?}"
        );
        // A death since recovered still counts: the AMI's container is not reliable.
        state["health"] = json!({"ready": true, "essential_failures": 2, "failing": []});
        let v = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row("i-1", Health::Healthy, state)],
            LIMITS,
        );
        assert_eq!(
            v.reasons,
            ["i-1: essential system containers died 2 time(s) since the boot"]
        );
    }

    #[test]
    fn slow_phases_and_slow_boots_fail() {
        let slow_phase = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 61_000, json!([])),
            )],
            LIMITS,
        );
        assert!(
            slow_phase
                .reasons
                .iter()
                .any(|r| r.contains("phase registration took 61000 ms"))
        );
        let mut state = booted("CONTINUE", 59_000, json!([]));
        let phases = state["phases"].as_array_mut().unwrap();
        for name in ["containers", "launch-hook"] {
            phases.push(json!({"name": name, "status": "ok", "duration_ms": 59_000}));
        }
        let slow_boot = judge(
            1,
            &[member("i-1", Some("InService"))],
            &[row("i-1", Health::Healthy, state)],
            LIMITS,
        );
        assert_eq!(
            slow_boot.reasons,
            ["i-1: boot took 177040 ms (limit 120000 ms)"]
        );
    }

    #[test]
    fn replacements_past_the_checkpoint_wait_for_the_next_gate() {
        let v = judge(
            1,
            &[
                member("i-1", Some("InService")),
                member("i-2", Some("Pending:Wait")),
            ],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 10, json!([])),
            )],
            LIMITS,
        );
        assert!(v.passed, "{v:?}");
        assert_eq!(v.instances.len(), 1);
        let gone = judge(
            1,
            &[member("i-1", Some("InService")), member("i-2", None)],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 10, json!([])),
            )],
            LIMITS,
        );
        assert!(!gone.passed);
    }

    #[test]
    fn missing_evidence_never_passes() {
        let not_launched = judge(
            2,
            &[member("i-1", Some("InService"))],
            &[row(
                "i-1",
                Health::Healthy,
                booted("CONTINUE", 10, json!([])),
            )],
            LIMITS,
        );
        assert_eq!(not_launched.reasons, ["1 of 2 replacements launched"]);
        let timed_out = Row {
            status: None,
            ..row("i-1", Health::TimedOut, json!({}))
        };
        let v = judge(1, &[member("i-1", Some("InService"))], &[timed_out], LIMITS);
        assert!(!v.passed);
        assert!(
            v.reasons[0].contains("boot health timed_out"),
            "{:?}",
            v.reasons
        );
        let pending = judge(
            1,
            &[member("i-1", Some("Pending:Wait"))],
            &[row(
                "i-1",
                Health::InProgress,
                json!({"outcome": "booting"}),
            )],
            LIMITS,
        );
        assert!(
            pending
                .reasons
                .iter()
                .any(|r| r.contains("not in service: Pending:Wait"))
        );
        assert!(
            pending
                .reasons
                .iter()
                .any(|r| r.contains("launch hook not completed"))
        );
    }
}
