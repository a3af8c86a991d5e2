//! The JSON document `ecs-boot-fleet rollout` prints on stdout: which AMI went where, which
//! launch template versions, each gate's evidence, and how it ended. Pure.

use super::gate::Verdict;
use super::plan::Step;
use serde::Serialize;

/// Version of the report; bumped only on incompatible changes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every gate passed; the refresh succeeded (or had already, on a rerun).
    Promoted,
    /// A gate failed; the refresh was rolled back, the parameter and default version restored.
    RolledBack,
    /// Something could not be finished (rollback failed or timed out, an API kept failing):
    /// the report says where things stand.
    NeedsAttention,
    /// Another refresh is running on the group; nothing was changed.
    Busy,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Template {
    pub id: String,
    /// The version the group ran before (and the default before, restored on rollback).
    pub previous_version: i64,
    /// The numbered version holding the new AMI.
    pub version: i64,
    /// false when a rerun found the version already made.
    pub created: bool,
    /// After a rollback: the copy of the previous version made the default and the group's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    #[serde(flatten)]
    pub step: Step,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RefreshReport {
    pub id: String,
    /// true when a rerun found this rollout's refresh already running.
    pub resumed: bool,
    pub checkpoints: Vec<u32>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report_schema: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub group: String,
    pub ami: String,
    pub previous_ami: String,
    pub ami_parameter: String,
    pub launch_template: Template,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshReport>,
    pub gates: Vec<GateReport>,
    pub outcome: Outcome,
    /// Why it did not end promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was undone after a failed gate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<String>,
}

impl Report {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(r#"{{"report_schema":{SCHEMA},"error":"cannot serialise the report: {e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::rollout::gate::{Evidence, Verdict};
    use serde_json::Value;

    #[test]
    fn names_the_ami_the_versions_and_each_gates_evidence() {
        let report = Report {
            report_schema: SCHEMA,
            environment: Some("dev".into()),
            group: "fleet".into(),
            ami: "ami-1a2b3c4d".into(),
            previous_ami: "ami-12c6146b".into(),
            ami_parameter: "/ecs-boot/ami/x86_64".into(),
            launch_template: Template {
                id: "lt-1".into(),
                previous_version: 1,
                version: 2,
                created: true,
                restored_version: None,
            },
            refresh: None,
            gates: vec![GateReport {
                step: Step {
                    name: "canary",
                    percent: 33,
                    instances: 1,
                },
                verdict: Verdict {
                    passed: false,
                    reasons: vec!["i-1: completed its launch hook with ABANDON".into()],
                    instances: vec![Evidence {
                        instance_id: "i-1".into(),
                        lifecycle: None,
                        health: None,
                        outcome: None,
                        launch_hook: Some("ABANDON".into()),
                        boot_ms: None,
                        slowest_phase: None,
                        failed_containers: vec![],
                        problems: vec!["completed its launch hook with ABANDON".into()],
                    }],
                },
            }],
            outcome: Outcome::RolledBack,
            reason: Some("gate canary failed".into()),
            restored: vec!["ssm parameter".into()],
        };
        let v: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(v["ami"], "ami-1a2b3c4d");
        assert_eq!(v["launch_template"]["version"], 2);
        assert_eq!(v["launch_template"]["previous_version"], 1);
        assert_eq!(v["outcome"], "rolled_back");
        let gate = &v["gates"][0];
        assert_eq!(
            (gate["name"].as_str(), gate["percent"].as_u64()),
            (Some("canary"), Some(33))
        );
        assert_eq!(gate["passed"], false);
        assert_eq!(gate["instances"][0]["launch_hook"], "ABANDON");
        assert!(v.get("refresh").is_none());
    }
}
