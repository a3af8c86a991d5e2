//! Which data points each moment of an instance's life produces, from the state alone. The
//! names and dimensions are a contract with the Terraform module's alarms (terraform/alarms.tf)
//! and the README's metric table: renaming one silences an alarm.

use super::{Datum, Unit};
use crate::status::state::{DrainState, PhaseStatus, State, Transition};

/// 1 for every ABANDON of the launch hook ecs-boot sends (alarm: any).
pub const ABANDONS: &str = "Abandons";
/// 1 for every boot that reached service (CONTINUE).
pub const IN_SERVICE: &str = "InService";
/// Seconds from ecs-boot's start to the launch hook's CONTINUE (alarm: p90 over a budget).
pub const BOOT_DURATION: &str = "BootDuration";
/// Seconds one boot phase took (extra dimension `Phase`).
pub const PHASE_DURATION: &str = "PhaseDuration";
/// Seconds from the ECS agent's registration to the launch hook's completion.
pub const LAUNCH_HOOK_LATENCY: &str = "LaunchHookLatency";
/// Seconds a drain took, to no task left or to its deadline.
pub const DRAIN_DURATION: &str = "DrainDuration";
/// Tasks that left the instance during the drain.
pub const TASKS_DRAINED: &str = "TasksDrained";
/// 1 when a drain hit its deadline with tasks still running, else 0 (alarm: any).
pub const DRAIN_DEADLINE_HIT: &str = "DrainDeadlineHit";
/// Essential system containers that died for good (alarm: any). Name agreed with the health
/// watch (issue 22 item 4).
pub const ESSENTIAL_CONTAINER_FAILURES: &str = "EssentialContainerFailures";

/// The dimensions every data point carries, so the module's alarms (which know both) see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimensions {
    pub asg: String,
    pub cluster: String,
}

/// Stands in for a value not known yet (a boot that failed before its cluster was resolved):
/// the point is still sent, and counted by an alarm on this value or a metric-math search.
pub const UNKNOWN: &str = "unknown";

impl Dimensions {
    /// The group from the launch hook's record, else `asg`; the cluster from the ecs.config
    /// written, else `cluster` (the trusted config's, or a tag's).
    pub fn from_state(state: &State, asg: Option<&str>, cluster: Option<&str>) -> Dimensions {
        let asg = state
            .hooks
            .iter()
            .map(|h| h.asg.as_str())
            .find(|a| !a.is_empty())
            .or(asg);
        let cluster = state
            .ecs_config
            .as_ref()
            .map(|c| c.cluster.as_str())
            .filter(|c| !c.is_empty())
            .or(cluster);
        Dimensions {
            asg: dimension_value(asg),
            cluster: dimension_value(cluster),
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AutoScalingGroupName", self.asg.clone()),
            ("ClusterName", self.cluster.clone()),
        ]
    }

    fn datum(&self, name: &'static str, value: f64, unit: Unit) -> Datum {
        Datum {
            name,
            dimensions: self.pairs(),
            value,
            unit,
        }
    }
}

/// CloudWatch takes 1-1024 characters; anything else becomes `unknown` rather than a refused
/// call that would lose every other point of the batch.
fn dimension_value(v: Option<&str>) -> String {
    match v {
        Some(v) if !v.trim().is_empty() && v.len() <= 1024 && !v.chars().any(char::is_control) => {
            v.to_string()
        }
        _ => UNKNOWN.into(),
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Every finished phase's duration.
fn phases(state: &State, dims: &Dimensions) -> Vec<Datum> {
    state
        .phases
        .iter()
        .filter(|p| matches!(p.status, PhaseStatus::Ok | PhaseStatus::Failed))
        .filter_map(|p| {
            let mut d = dims.datum(PHASE_DURATION, seconds(p.duration_ms?), Unit::Seconds);
            d.dimensions.push(("Phase", dimension_value(Some(&p.name))));
            Some(d)
        })
        .collect()
}

/// Before the ABANDON: the failure, and the phases as far as they went.
pub fn abandon(state: &State, dims: &Dimensions) -> Vec<Datum> {
    let mut out = vec![dims.datum(ABANDONS, 1.0, Unit::Count)];
    out.extend(phases(state, dims));
    out
}

/// After the launch hook's CONTINUE: the boot's length, its phases, the hook's latency, and the
/// essential containers' failures so far (0 on a healthy boot: it gives the alarm data; each
/// later death is published by the health watch as `Moment::EssentialFailures`).
pub fn in_service(state: &State, dims: &Dimensions, now: time::OffsetDateTime) -> Vec<Datum> {
    let mut out = vec![dims.datum(IN_SERVICE, 1.0, Unit::Count)];
    let launch = state.hook_done(Transition::Launch);
    let end = launch.map_or(now, |h| h.completed_at);
    let boot = (end - state.started_at).as_seconds_f64().max(0.0);
    out.push(dims.datum(BOOT_DURATION, boot, Unit::Seconds));
    if let Some(ms) = launch.and_then(|h| h.latency_ms) {
        out.push(dims.datum(LAUNCH_HOOK_LATENCY, seconds(ms), Unit::Seconds));
    }
    out.extend(phases(state, dims));
    out.push(essential_failures(dims, essential_failure_count(state)));
    out
}

/// Before the terminate hook's completion: how long the drain took, how many tasks it moved,
/// and whether it ran out of time. Nothing when there was no drain.
pub fn drain(state: &State, dims: &Dimensions, now: time::OffsetDateTime) -> Vec<Datum> {
    let Some(d) = &state.drain else {
        return Vec::new();
    };
    let end = d.drained_at.unwrap_or(now);
    let took = (end - d.started_at).as_seconds_f64().max(0.0);
    let moved = d.tasks_at_start.map(|n| n.saturating_sub(d.tasks_left));
    let mut out = vec![dims.datum(DRAIN_DURATION, took, Unit::Seconds)];
    if let Some(n) = moved {
        out.push(dims.datum(TASKS_DRAINED, n as f64, Unit::Count));
    }
    let hit = if d.state == DrainState::Deadline {
        1.0
    } else {
        0.0
    };
    out.push(dims.datum(DRAIN_DEADLINE_HIT, hit, Unit::Count));
    out
}

/// One point of `EssentialContainerFailures`.
pub fn essential_failures(dims: &Dimensions, count: u64) -> Datum {
    dims.datum(ESSENTIAL_CONTAINER_FAILURES, count as f64, Unit::Count)
}

/// Essential system containers that died for good since the boot (the health watch's count,
/// src/lifecycle/health.rs); 0 before the watch has started.
pub fn essential_failure_count(state: &State) -> u64 {
    state.health.as_ref().map_or(0, |h| h.essential_failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::state::{DrainRecord, EcsConfigRecord, HookRecord, HookResult, Phase};
    use time::macros::datetime;

    fn dims() -> Dimensions {
        Dimensions {
            asg: "web-asg".into(),
            cluster: "web".into(),
        }
    }

    fn phase(name: &str, status: PhaseStatus, ms: Option<u64>) -> Phase {
        Phase {
            name: name.into(),
            status,
            started_at: datetime!(2026-11-30 10:00:00 UTC),
            ended_at: None,
            duration_ms: ms,
            detail: None,
            error: None,
            hint: None,
        }
    }

    fn names(data: &[Datum]) -> Vec<&str> {
        data.iter().map(|d| d.name).collect()
    }

    #[test]
    fn an_abandon_counts_one_and_carries_the_finished_phases() {
        let mut s = State::new();
        s.phases = vec![
            phase("config", PhaseStatus::Ok, Some(1500)),
            phase("register", PhaseStatus::Failed, Some(600_000)),
            phase("launch-hook", PhaseStatus::Running, None),
        ];
        let data = abandon(&s, &dims());
        assert_eq!(names(&data), [ABANDONS, PHASE_DURATION, PHASE_DURATION]);
        assert_eq!(data[0].value, 1.0);
        assert_eq!(data[1].value, 1.5);
        assert_eq!(
            data[2].dimensions,
            [
                ("AutoScalingGroupName", "web-asg".to_string()),
                ("ClusterName", "web".to_string()),
                ("Phase", "register".to_string())
            ]
        );
    }

    #[test]
    fn in_service_has_boot_duration_hook_latency_and_essential_failures() {
        let mut s = State::new();
        s.started_at = datetime!(2026-11-30 10:00:00 UTC);
        s.hooks.push(HookRecord {
            transition: Transition::Launch,
            asg: "web-asg".into(),
            hook: "launch".into(),
            result: HookResult::Continue,
            completed_at: datetime!(2026-11-30 10:01:30 UTC),
            already_done: false,
            latency_ms: Some(2500),
            heartbeats: 0,
            cause: None,
        });
        let data = in_service(&s, &dims(), datetime!(2026-11-30 10:05:00 UTC));
        assert_eq!(
            names(&data),
            [
                IN_SERVICE,
                BOOT_DURATION,
                LAUNCH_HOOK_LATENCY,
                ESSENTIAL_CONTAINER_FAILURES
            ]
        );
        assert_eq!(data[1].value, 90.0);
        assert_eq!(data[2].value, 2.5);
        assert_eq!(data[3].value, 0.0);
        // The health watch's count, once it has one.
        let mut h = crate::status::essential::EssentialHealth::new(true);
        h.essential_failures = 3;
        s.health = Some(h);
        let data = in_service(&s, &dims(), datetime!(2026-11-30 10:05:00 UTC));
        assert_eq!(data[3].value, 3.0);
    }

    #[test]
    fn a_drain_reports_its_length_tasks_moved_and_the_deadline() {
        let mut s = State::new();
        assert!(drain(&s, &dims(), datetime!(2026-11-30 10:00:00 UTC)).is_empty());
        s.drain = Some(DrainRecord {
            trigger: "lifecycle:Terminated".into(),
            cause: crate::status::state::Cause::Lifecycle,
            started_at: datetime!(2026-11-30 10:00:00 UTC),
            deadline_at: datetime!(2026-11-30 10:15:00 UTC),
            tasks_left: 2,
            tasks_at_start: Some(5),
            state: DrainState::Deadline,
            set_draining_by_us: true,
            standalone_stopped: Vec::new(),
            drained_at: None,
        });
        let data = drain(&s, &dims(), datetime!(2026-11-30 10:15:00 UTC));
        assert_eq!(
            names(&data),
            [DRAIN_DURATION, TASKS_DRAINED, DRAIN_DEADLINE_HIT]
        );
        assert_eq!(
            data.iter().map(|d| d.value).collect::<Vec<_>>(),
            [900.0, 3.0, 1.0]
        );
    }

    #[test]
    fn dimensions_come_from_the_state_then_the_fallbacks_else_unknown() {
        let mut s = State::new();
        let d = Dimensions::from_state(&s, None, None);
        assert_eq!((d.asg.as_str(), d.cluster.as_str()), (UNKNOWN, UNKNOWN));
        let d = Dimensions::from_state(&s, Some("g"), Some("c"));
        assert_eq!((d.asg.as_str(), d.cluster.as_str()), ("g", "c"));
        s.ecs_config = Some(EcsConfigRecord {
            path: "/etc/ecs/ecs.config".into(),
            sha256: String::new(),
            cluster: "from-config".into(),
            keys: Vec::new(),
            registry_auth: None,
            registries: Vec::new(),
            sources: Default::default(),
        });
        let d = Dimensions::from_state(&s, Some("g"), Some("c"));
        assert_eq!(d.cluster, "from-config");
        assert_eq!(dimension_value(Some("a\nb")), UNKNOWN);
    }
}
