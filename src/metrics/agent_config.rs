//! The CloudWatch agent's configuration, rendered from the trusted config by
//! `ecs-boot cloudwatch-agent` at every boot (the log group and namespace are per group, the AMI
//! is shared): host logs into `[logs] group`, one stream per instance, and the host's disk and
//! memory into `[metrics] namespace`, aggregated per Auto Scaling group so the module's alarms
//! see one series per group and mount point.
//!
//! Logs come from journald: AL2023 has no /var/log/messages, and the agent reads the journal
//! natively from 1.300070.0 (docs/aws-facts.md, "CloudWatch agent"). ecs-init and the ECS agent
//! also write files under /var/log/ecs, which are shipped as they are.

use crate::config::Config;
use serde_json::{Value, json};

/// Where `ecs-boot cloudwatch-agent` writes the agent's JSON (the unit then hands it to
/// `amazon-cloudwatch-agent-ctl -a fetch-config`).
pub const CONFIG_FILE: &str = "/run/ecs-boot/cloudwatch-agent.json";

/// The mount points whose usage is reported: the root volume and Docker's data volume (the
/// second reports nothing when Docker's data sits on the root volume: the alarm treats missing
/// data as fine).
pub const DISK_PATHS: &[&str] = &["/", "/var/lib/docker"];

/// journald units shipped, each into its own stream `<instance-id>/<name>`.
const UNITS: &[(&str, &[&str])] = &[
    ("ecs-boot", &["ecs-boot.service"]),
    ("ecs", &["ecs.service"]),
    ("docker", &["docker.service", "containerd.service"]),
];

/// Files the ECS agent and ecs-init write.
const FILES: &[(&str, &str)] = &[
    ("ecs-agent", "/var/log/ecs/ecs-agent.log*"),
    ("ecs-init", "/var/log/ecs/ecs-init.log*"),
];

/// Why the agent is not configured (`None` from `render`).
pub fn why_off(config: &Config) -> Option<&'static str> {
    if !config.logs.enabled && !config.metrics.enabled {
        return Some("[logs] and [metrics] are disabled");
    }
    if config.logs.group.is_none() && !config.metrics.enabled {
        return Some("[logs] names no group and [metrics] is disabled");
    }
    None
}

/// The agent's JSON, or `None` when it has nothing to do.
pub fn render(config: &Config) -> Option<Value> {
    if why_off(config).is_some() {
        return None;
    }
    let mut doc = json!({
        "agent": { "run_as_user": "root", "metrics_collection_interval": 60 },
    });
    if let (true, Some(group)) = (config.logs.enabled, &config.logs.group) {
        doc["logs"] = logs(group);
    }
    if config.metrics.enabled {
        doc["metrics"] = metrics(&config.metrics.namespace);
    }
    Some(doc)
}

fn logs(group: &str) -> Value {
    let mut journald: Vec<Value> = UNITS
        .iter()
        .map(|(name, units)| {
            json!({
                "log_group_name": group,
                "log_stream_name": format!("{{instance_id}}/{name}"),
                "units": units,
            })
        })
        .collect();
    // The kernel's messages (OOM kills, disk errors) and anything at warning or worse.
    journald.push(json!({
        "log_group_name": group,
        "log_stream_name": "{instance_id}/kernel",
        "matches": [{ "_TRANSPORT": "kernel" }],
    }));
    journald.push(json!({
        "log_group_name": group,
        "log_stream_name": "{instance_id}/system",
        "priority": "warning",
    }));
    let files: Vec<Value> = FILES
        .iter()
        .map(|(name, path)| {
            json!({
                "file_path": path,
                "log_group_name": group,
                "log_stream_name": format!("{{instance_id}}/{name}"),
            })
        })
        .collect();
    json!({
        "logs_collected": {
            "journald": { "collect_list": journald },
            "files": { "collect_list": files },
        },
    })
}

fn metrics(namespace: &str) -> Value {
    json!({
        "namespace": namespace,
        "append_dimensions": {
            "AutoScalingGroupName": "${aws:AutoScalingGroupName}",
            "InstanceId": "${aws:InstanceId}",
        },
        // One series per group (and mount point) besides the per-instance ones: what the
        // module's alarms watch with the Maximum statistic.
        "aggregation_dimensions": [["AutoScalingGroupName"], ["AutoScalingGroupName", "path"]],
        "metrics_collected": {
            "disk": {
                "measurement": ["used_percent"],
                "resources": DISK_PATHS,
                "drop_device": true,
                "ignore_file_system_types": ["sysfs", "devtmpfs", "tmpfs", "overlay"],
            },
            "mem": { "measurement": ["mem_available_percent"] },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_the_journal_and_ecs_files_into_the_group_one_stream_per_instance() {
        let c = Config::parse(
            "[logs]\ngroup = \"/ecs-boot/web\"\n[metrics]\nnamespace = \"Team/Boot\"\n",
            "t",
        )
        .unwrap();
        let doc = render(&c).unwrap();
        let journald = doc["logs"]["logs_collected"]["journald"]["collect_list"]
            .as_array()
            .unwrap();
        let streams: Vec<&str> = journald
            .iter()
            .map(|e| e["log_stream_name"].as_str().unwrap())
            .collect();
        assert_eq!(
            streams,
            [
                "{instance_id}/ecs-boot",
                "{instance_id}/ecs",
                "{instance_id}/docker",
                "{instance_id}/kernel",
                "{instance_id}/system"
            ]
        );
        assert!(
            journald
                .iter()
                .all(|e| e["log_group_name"] == "/ecs-boot/web")
        );
        let files = &doc["logs"]["logs_collected"]["files"]["collect_list"];
        assert_eq!(files[0]["file_path"], "/var/log/ecs/ecs-agent.log*");
        assert_eq!(doc["metrics"]["namespace"], "Team/Boot");
        assert_eq!(
            doc["metrics"]["metrics_collected"]["disk"]["resources"],
            json!(["/", "/var/lib/docker"])
        );
    }

    #[test]
    fn turned_off_through_the_trusted_config() {
        let no_logs = Config::parse("[logs]\nenabled = false\ngroup = \"/g\"\n", "t").unwrap();
        let doc = render(&no_logs).unwrap();
        assert!(doc.get("logs").is_none() && doc.get("metrics").is_some());
        let nothing =
            Config::parse("[logs]\nenabled = false\n[metrics]\nenabled = false\n", "t").unwrap();
        assert!(render(&nothing).is_none());
        let no_group = Config::parse("[metrics]\nenabled = false\n", "t").unwrap();
        assert!(render(&no_group).is_none());
    }
}
