//! The orchestration against a fake cloud: a toy instance refresh that moves one replacement
//! per poll, instances that boot healthy, ABANDON, or report a failed essential container.

use super::cloud::{Cloud, Group, Preferences, Refresh, Result, Version};
use super::engine::{Settings, SetupError, rollout};
use super::gate::Limits;
use super::report::Outcome;
use crate::fleet::output::{InstanceResult, Invocation, Reach};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const OLD: &str = "ami-0000000a";
const NEW: &str = "ami-0000000b";
const PARAM: &str = "/ecs-boot/ami/x86_64";

#[derive(Clone, Copy, PartialEq)]
enum Boot {
    Healthy,
    Abandon,
    FailedContainer,
}

struct World {
    group: Group,
    versions: Vec<Version>,
    default: i64,
    param: Option<String>,
    refreshes: Vec<Refresh>,
    on_version: HashMap<String, i64>,
    /// What instances of each AMI do.
    boots: HashMap<String, Boot>,
    calls: Vec<String>,
    /// Old instances the running refresh has yet to replace; those it launched.
    old: Vec<String>,
    launched: Vec<String>,
    next: u32,
}

struct Fake(Mutex<World>);

impl Fake {
    fn new(instances: usize, new_boot: Boot) -> Fake {
        let ids: Vec<String> = (0..instances).map(|i| format!("i-old{i}")).collect();
        Fake(Mutex::new(World {
            group: Group {
                name: "g".into(),
                desired: instances as u32,
                template_id: Some("lt-1".into()),
                template_version: Some("1".into()),
                mixed_instances: false,
                instances: ids
                    .iter()
                    .map(|i| (i.clone(), "InService".into()))
                    .collect(),
            },
            versions: vec![Version {
                number: 1,
                image_id: OLD.into(),
                description: Some("by terraform".into()),
            }],
            default: 1,
            param: Some(OLD.into()),
            refreshes: Vec::new(),
            on_version: ids.iter().map(|i| (i.clone(), 1)).collect(),
            boots: HashMap::from([
                (OLD.to_string(), Boot::Healthy),
                (NEW.to_string(), new_boot),
            ]),
            calls: Vec::new(),
            old: Vec::new(),
            launched: Vec::new(),
            next: 0,
        }))
    }

    fn w(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    fn calls(&self, prefix: &str) -> Vec<String> {
        self.w()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// One step of the toy refresh (called on every sleep): settle the last launch, then
    /// launch the next replacement.
    fn step(&self) {
        let mut w = self.w();
        let Some(r) = w.refreshes.first().cloned() else {
            return;
        };
        let target: i64 = r.version.as_deref().unwrap_or("0").parse().unwrap();
        let image = |w: &World, v: i64| {
            w.versions
                .iter()
                .find(|x| x.number == v)
                .unwrap()
                .image_id
                .clone()
        };
        match r.status.as_str() {
            "InProgress" => {
                let boot = w.boots[&image(&w, target)];
                let pending: Vec<String> = w
                    .group
                    .instances
                    .iter()
                    .filter(|(_, s)| s == "Pending:Wait")
                    .map(|(i, _)| i.clone())
                    .collect();
                for id in pending {
                    if boot == Boot::Abandon {
                        w.group.instances.retain(|(i, _)| *i != id);
                        w.refreshes[0].status = "RollbackInProgress".into();
                        w.refreshes[0].reason = Some(format!("{id} failed to launch (ABANDON)"));
                        return;
                    }
                    for (i, s) in w.group.instances.iter_mut() {
                        if *i == id {
                            *s = "InService".into();
                        }
                    }
                    if let Some(old) = w.old.pop() {
                        w.group.instances.retain(|(i, _)| *i != old);
                    }
                }
                if w.old.is_empty() {
                    w.refreshes[0].status = "Successful".into();
                    w.group.template_version = Some(target.to_string());
                    return;
                }
                w.next += 1;
                let id = format!("i-new{}", w.next);
                w.group.instances.push((id.clone(), "Pending:Wait".into()));
                w.on_version.insert(id.clone(), target);
                w.launched.push(id);
            }
            "RollbackInProgress" => {
                let launched = std::mem::take(&mut w.launched);
                w.group.instances.retain(|(i, _)| !launched.contains(i));
                w.refreshes[0].status = "RollbackSuccessful".into();
            }
            _ => {}
        }
    }
}

fn doc(boot: Boot) -> serde_json::Value {
    let containers = if boot == Boot::FailedContainer {
        json!([{"name": "log-router", "image": "x", "state": "exited", "essential": true}])
    } else {
        json!([])
    };
    json!({"health": "healthy", "state": {
        "outcome": "in_service",
        "phases": [{"name": "identity", "status": "ok", "duration_ms": 20}],
        "hooks": [{"transition": "launch", "result": "CONTINUE"}],
        "containers": containers}})
}

impl Cloud for Fake {
    async fn group(&self, name: &str) -> Result<Option<Group>> {
        self.w().calls.push(format!("DescribeGroup {name}"));
        Ok(Some(self.w().group.clone()).filter(|g| g.name == name))
    }
    async fn groups_of_environment(&self, _: &str) -> Result<Vec<String>> {
        Ok(vec![])
    }
    async fn versions(&self, _: &str) -> Result<Vec<Version>> {
        Ok(self.w().versions.clone())
    }
    async fn default_version(&self, _: &str) -> Result<i64> {
        Ok(self.w().default)
    }
    async fn create_version(&self, _: &str, source: &Version, image: &str) -> Result<i64> {
        let mut w = self.w();
        let number = w.versions.len() as i64 + 1;
        w.calls.push(format!(
            "CreateVersion {number} from {} {image}",
            source.number
        ));
        w.versions.push(Version {
            number,
            image_id: image.into(),
            description: source.description.clone(),
        });
        Ok(number)
    }
    async fn set_default_version(&self, _: &str, v: i64) -> Result<()> {
        let mut w = self.w();
        w.calls.push(format!("SetDefault {v}"));
        w.default = v;
        Ok(())
    }
    async fn image_architecture(&self, _: &str) -> Result<Option<String>> {
        Ok(Some("x86_64".into()))
    }
    async fn parameter(&self, _: &str) -> Result<Option<String>> {
        Ok(self.w().param.clone())
    }
    async fn put_parameter(&self, name: &str, value: &str) -> Result<()> {
        let mut w = self.w();
        w.calls.push(format!("PutParameter {name} {value}"));
        w.param = Some(value.into());
        Ok(())
    }
    async fn refreshes(&self, _: &str) -> Result<Vec<Refresh>> {
        Ok(self.w().refreshes.clone())
    }
    async fn start_refresh(&self, _: &str, t: &str, v: i64, p: &Preferences) -> Result<String> {
        let mut w = self.w();
        w.calls
            .push(format!("StartRefresh {v} {:?}", p.checkpoints));
        w.old = w.group.instances.iter().map(|(i, _)| i.clone()).collect();
        w.refreshes.insert(
            0,
            Refresh {
                id: "r-1".into(),
                status: "InProgress".into(),
                reason: None,
                template_id: Some(t.into()),
                version: Some(v.to_string()),
            },
        );
        Ok("r-1".into())
    }
    async fn rollback_refresh(&self, _: &str) -> Result<()> {
        let mut w = self.w();
        w.calls.push("RollbackRefresh".into());
        w.refreshes[0].status = "RollbackInProgress".into();
        Ok(())
    }
    async fn set_group_version(&self, _: &str, _: &str, v: i64) -> Result<()> {
        let mut w = self.w();
        w.calls.push(format!("SetGroupVersion {v}"));
        w.group.template_version = Some(v.to_string());
        Ok(())
    }
    async fn instance_versions(&self, ids: &[String]) -> Result<HashMap<String, i64>> {
        let w = self.w();
        Ok(ids
            .iter()
            .filter_map(|i| Some((i.clone(), *w.on_version.get(i)?)))
            .collect())
    }
    async fn boot_reports(&self, ids: Vec<String>, _: Duration) -> Vec<InstanceResult> {
        let mut w = self.w();
        w.calls.push(format!("BootReports {}", ids.join(",")));
        ids.into_iter()
            .map(|id| {
                let v = w.on_version[&id];
                let image = w
                    .versions
                    .iter()
                    .find(|x| x.number == v)
                    .unwrap()
                    .image_id
                    .clone();
                InstanceResult {
                    instance_id: id,
                    reach: Reach::Report {
                        doc: doc(w.boots[&image]),
                        ssm: Invocation::default(),
                    },
                }
            })
            .collect()
    }
    async fn sleep(&self, _: Duration) {
        self.step();
    }
}

fn settings() -> Settings {
    Settings {
        group: "g".into(),
        environment: Some("dev".into()),
        ami: NEW.into(),
        parameter: None,
        min_healthy: 100,
        max_healthy: 200,
        warmup: Some(0),
        checkpoint_delay: Duration::from_secs(600),
        bake_time: Duration::from_secs(600),
        in_service_budget: Duration::from_secs(600),
        collect_timeout: Duration::from_secs(60),
        rollback_timeout: Duration::from_secs(600),
        limits: Limits {
            max_phase: Duration::from_secs(300),
            max_boot: Duration::from_secs(600),
        },
        poll: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn a_good_ami_passes_every_gate_and_is_promoted() {
    let fake = Fake::new(3, Boot::Healthy);
    let report = rollout(&fake, &settings()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.json());
    assert_eq!(
        fake.calls("CreateVersion"),
        ["CreateVersion 2 from 1 ami-0000000b"]
    );
    assert_eq!(fake.calls("SetDefault"), ["SetDefault 2"]);
    assert_eq!(
        fake.calls("PutParameter"),
        [format!("PutParameter {PARAM} {NEW}")]
    );
    assert_eq!(fake.calls("StartRefresh"), ["StartRefresh 2 [33, 50, 100]"]);
    let gates: Vec<_> = report
        .gates
        .iter()
        .map(|g| (g.step.name, g.verdict.passed, g.verdict.instances.len()))
        .collect();
    assert_eq!(
        gates,
        [("canary", true, 1), ("half", true, 2), ("all", true, 3)]
    );
    assert_eq!(fake.w().group.template_version.as_deref(), Some("2"));
    assert!(fake.calls("RollbackRefresh").is_empty());
    assert_eq!(
        (
            report.launch_template.previous_version,
            report.launch_template.version
        ),
        (1, 2)
    );
    assert_eq!(report.previous_ami, OLD);
}

#[tokio::test]
async fn an_abandoning_ami_stops_at_the_canary_and_everything_is_restored() {
    let fake = Fake::new(3, Boot::Abandon);
    let report = rollout(&fake, &settings()).await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.json());
    assert_eq!(report.gates.len(), 1);
    assert!(!report.gates[0].verdict.passed);
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("gate canary failed"),
        "{:?}",
        report.reason
    );
    // AutoRollback already rolls back: no second rollback call.
    assert!(fake.calls("RollbackRefresh").is_empty());
    let w = fake.w();
    assert_eq!(w.param.as_deref(), Some(OLD));
    // The copy of version 1 is the latest, the default and the group's.
    assert_eq!(
        w.versions.last().map(|v| (v.number, v.image_id.as_str())),
        Some((3, OLD))
    );
    assert_eq!(
        (w.default, w.group.template_version.as_deref()),
        (3, Some("3"))
    );
    assert_eq!(report.launch_template.restored_version, Some(3));
}

#[tokio::test]
async fn a_failed_essential_container_rolls_back_at_the_canary() {
    let fake = Fake::new(4, Boot::FailedContainer);
    let report = rollout(&fake, &settings()).await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.json());
    assert_eq!(fake.calls("RollbackRefresh").len(), 1);
    assert_eq!(fake.calls("BootReports"), ["BootReports i-new1"]);
    assert_eq!(
        report.gates[0].verdict.instances[0].failed_containers,
        ["log-router"]
    );
    assert_eq!(fake.w().param.as_deref(), Some(OLD));
}

#[tokio::test]
async fn a_rerun_resumes_the_refresh_it_started() {
    let fake = Fake::new(2, Boot::Healthy);
    {
        let mut w = fake.w();
        w.versions.push(Version {
            number: 2,
            image_id: NEW.into(),
            description: None,
        });
        w.default = 2;
        w.param = Some(NEW.into());
        w.old = w.group.instances.iter().map(|(i, _)| i.clone()).collect();
        w.refreshes.push(Refresh {
            id: "r-0".into(),
            status: "InProgress".into(),
            reason: None,
            template_id: Some("lt-1".into()),
            version: Some("2".into()),
        });
    }
    let report = rollout(&fake, &settings()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.json());
    assert!(fake.calls("CreateVersion").is_empty() && fake.calls("StartRefresh").is_empty());
    assert!(fake.calls("SetDefault").is_empty() && fake.calls("PutParameter").is_empty());
    assert!(report.refresh.as_ref().unwrap().resumed);
}

#[tokio::test]
async fn another_refresh_on_the_group_changes_nothing() {
    let fake = Fake::new(2, Boot::Healthy);
    fake.w().refreshes.push(Refresh {
        id: "r-x".into(),
        status: "InProgress".into(),
        reason: None,
        template_id: Some("lt-1".into()),
        version: Some("1".into()),
    });
    let report = rollout(&fake, &settings()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Busy);
    let changes: Vec<String> = fake
        .w()
        .calls
        .iter()
        .filter(|c| !c.starts_with("Describe"))
        .cloned()
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

#[tokio::test]
async fn a_floating_group_version_is_refused_before_any_change() {
    let fake = Fake::new(1, Boot::Healthy);
    fake.w().group.template_version = Some("$Latest".into());
    let err = rollout(&fake, &settings()).await.unwrap_err();
    assert!(matches!(err, SetupError::Floating { .. }), "{err}");
    assert!(fake.calls("CreateVersion").is_empty());
}

#[tokio::test]
async fn an_ami_already_running_converges_without_a_refresh() {
    let fake = Fake::new(2, Boot::Healthy);
    let mut s = settings();
    s.ami = OLD.into();
    fake.w().param = Some("ami-0000000c".into());
    let report = rollout(&fake, &s).await.unwrap();
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(
        fake.calls("PutParameter"),
        [format!("PutParameter {PARAM} {OLD}")]
    );
    assert!(fake.calls("StartRefresh").is_empty());
}
