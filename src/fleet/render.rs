//! The fleet as rows (one per instance, failures first), a table for people, one JSON document
//! for machines, and the exit code. Pure.

use super::output::{InstanceResult, Invocation, Reach, first_line, truncate};
pub use crate::status::health::Health;
use crate::util::escape::for_terminal as esc;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Version of the `--json` document; bumped only on incompatible changes.
pub const JSON_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub instance_id: String,
    pub health: Health,
    pub outcome: Option<String>,
    /// The failing phase (failed), the running one (in progress).
    pub phase: Option<String>,
    pub error: Option<String>,
    pub hint: Option<String>,
    /// Where the instance's last flight recording went (`state.evidence.location`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    pub ssm: Option<Invocation>,
    /// The instance's own `ecs-boot status --json` document, as it printed it.
    pub status: Option<Value>,
}

const HINT_SSM: &str = "check that the instance is running, amazon-ssm-agent is up, and the instance profile allows SSM (AmazonSSMManagedInstanceCore)";

/// One row per instance, sorted by health (failures first), then instance id.
pub fn rows(results: &[InstanceResult]) -> Vec<Row> {
    let mut rows: Vec<Row> = results.iter().map(row).collect();
    rows.sort_by(|a, b| (a.health, &a.instance_id).cmp(&(b.health, &b.instance_id)));
    rows
}

fn row(r: &InstanceResult) -> Row {
    let bare = |health, error: String, hint: &str, ssm: Option<&Invocation>| Row {
        instance_id: r.instance_id.clone(),
        health,
        outcome: None,
        phase: None,
        error: Some(error),
        hint: Some(hint.to_string()),
        evidence: None,
        ssm: ssm.cloned(),
        status: None,
    };
    match &r.reach {
        Reach::Report { doc, ssm } => from_report(&r.instance_id, doc, ssm),
        Reach::Unreadable { problem, ssm } => bare(
            Health::Error,
            problem.clone(),
            if ssm.response_code == 127 {
                "ecs-boot is not installed there (not an ecs-boot AMI?)"
            } else {
                "run `ecs-boot status` on the instance (Session Manager) to see why"
            },
            Some(ssm),
        ),
        Reach::NoSsm => bare(
            Health::NoSsm,
            "not an SSM managed node".into(),
            HINT_SSM,
            None,
        ),
        Reach::Offline { ping, last_ping } => bare(
            Health::Offline,
            match last_ping {
                Some(t) => format!("SSM agent {ping} (last ping {t})"),
                None => format!("SSM agent {ping}"),
            },
            HINT_SSM,
            None,
        ),
        Reach::Undelivered { ssm } => bare(
            Health::Offline,
            format!(
                "SSM could not run the command: {} ({})",
                ssm.status, ssm.status_details
            ),
            HINT_SSM,
            Some(ssm),
        ),
        Reach::TimedOut { last } => bare(
            Health::TimedOut,
            format!("no answer before the deadline ({last})"),
            "raise --timeout, or look at the instance's SSM agent",
            None,
        ),
        Reach::ApiError { problem } => bare(
            Health::Error,
            problem.clone(),
            "check your credentials and ssm:SendCommand / ssm:GetCommandInvocation permissions",
            None,
        ),
    }
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The name of the latest phase with this status.
fn phase_with(state: &Value, status: &str) -> Option<String> {
    state
        .get("phases")?
        .as_array()?
        .iter()
        .rev()
        .find(|p| p.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|p| text(p, &["name"]))
}

fn from_report(instance_id: &str, doc: &Value, ssm: &Invocation) -> Row {
    let state = doc.get("state").unwrap_or(&Value::Null);
    let health = Health::from_instance(doc.get("health"));
    let outcome = text(state, &["outcome"]);
    let daemon_running = doc.get("daemon_running").and_then(Value::as_bool) == Some(true);
    let drift = text(doc, &["ecs_config_drift"]).map(|d| format!("drift: {d}"));
    let (phase, error, hint) = match health {
        Health::Failed => {
            let running = phase_with(state, "running");
            let phase = text(state, &["error", "phase"])
                .or_else(|| phase_with(state, "failed"))
                .or_else(|| running.clone());
            let error = text(state, &["error", "message"]).or_else(|| {
                (!daemon_running && running.is_some())
                    .then(|| "the daemon stopped mid-phase without recording an error".into())
            });
            let hint = text(state, &["error", "hint"]).or_else(|| {
                Some("see `journalctl -u ecs-boot` on the instance (`ecs-boot status` shows the last lines)".into())
            });
            (phase, error, hint)
        }
        Health::InProgress => (phase_with(state, "running"), drift, None),
        Health::NoState => (
            None,
            Some("ecs-boot has not run there (no state file)".into()),
            Some("is ecs-boot.service enabled on this AMI? `systemctl status ecs-boot`".into()),
        ),
        _ => (None, drift, None),
    };
    Row {
        instance_id: instance_id.to_string(),
        health,
        outcome,
        phase,
        error,
        hint,
        evidence: text(state, &["evidence", "location"]),
        ssm: Some(ssm.clone()),
        status: Some(doc.clone()),
    }
}

pub fn counts(rows: &[Row]) -> Vec<(Health, usize)> {
    Health::ALL
        .iter()
        .map(|h| (*h, rows.iter().filter(|r| r.health == *h).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// "200 instances: 12 failed, 5 offline, 183 healthy"
pub fn summary(rows: &[Row]) -> String {
    let parts: Vec<String> = counts(rows)
        .iter()
        .map(|(h, n)| format!("{n} {}", h.as_str()))
        .collect();
    format!(
        "{} instance{}: {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

const ERROR_WIDTH: usize = 60;
/// Outcome and phase are short words ecs-boot writes; anything longer is not worth a wide column.
const CELL_WIDTH: usize = 24;
const HINT_WIDTH: usize = 90;

/// Every cell but the health comes from the instance (or SSM's report of it): escaped before it
/// is cut to width, so a control character can neither act on the terminal nor hide in the cut.
pub fn table(rows: &[Row]) -> String {
    let cell = |v: Option<&str>, width: usize| match v {
        None => "-".to_string(),
        Some(v) => truncate(&esc(v), width),
    };
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                esc(&r.instance_id).into_owned(),
                r.health.as_str().to_string(),
                cell(r.outcome.as_deref(), CELL_WIDTH),
                cell(r.phase.as_deref(), CELL_WIDTH),
                r.error
                    .as_deref()
                    .map_or("-".into(), |e| first_line(&esc(e), ERROR_WIDTH)),
                r.hint
                    .as_deref()
                    .map_or(String::new(), |h| truncate(&esc(h), HINT_WIDTH)),
            ]
        })
        .collect();
    let header = ["INSTANCE", "HEALTH", "OUTCOME", "PHASE", "ERROR", "HINT"];
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |c: &[String; 6]| {
        let mut l = String::new();
        for (i, v) in c.iter().enumerate().take(5) {
            let _ = write!(l, "{v}{}  ", " ".repeat(widths[i] - v.chars().count()));
        }
        l.push_str(&c[5]);
        l.trim_end().to_string()
    };
    let mut o = String::new();
    let _ = writeln!(o, "{}", line(&header.map(String::from)));
    for c in &cells {
        let _ = writeln!(o, "{}", line(c));
    }
    let recorded: Vec<&Row> = rows.iter().filter(|r| r.evidence.is_some()).collect();
    if !recorded.is_empty() {
        let _ = writeln!(o, "\nEVIDENCE (flight recordings)");
        for r in recorded {
            let location = r.evidence.as_deref().unwrap_or_default();
            let _ = writeln!(
                o,
                "{}  {}",
                esc(&r.instance_id),
                truncate(&esc(location), HINT_WIDTH * 2)
            );
        }
    }
    let _ = writeln!(o, "\n{}", summary(rows));
    o
}

pub fn json(rows: &[Row]) -> String {
    let counts: serde_json::Map<String, Value> = Health::ALL
        .iter()
        .map(|h| {
            let n = rows.iter().filter(|r| r.health == *h).count();
            (h.as_str().to_string(), json!(n))
        })
        .collect();
    json!({
        "fleet_schema": JSON_SCHEMA,
        "total": rows.len(),
        "counts": counts,
        "exit_code": exit_code(rows),
        "instances": rows,
    })
    .to_string()
}

/// 0: all healthy; 1: anything failed or unreachable (or never ran); 3: the rest still in
/// progress.
pub fn exit_code(rows: &[Row]) -> i32 {
    use super::exit;
    if rows.iter().any(|r| r.health < Health::InProgress) {
        exit::FAILED
    } else if rows.iter().any(|r| r.health == Health::InProgress) {
        exit::IN_PROGRESS
    } else {
        exit::HEALTHY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(id: &str, doc: Value) -> InstanceResult {
        InstanceResult {
            instance_id: id.into(),
            reach: Reach::Report {
                doc,
                ssm: Invocation {
                    command_id: "c-1".into(),
                    status: "Success".into(),
                    status_details: "Success".into(),
                    ..Default::default()
                },
            },
        }
    }

    fn healthy(id: &str) -> InstanceResult {
        reported(
            id,
            json!({"status_schema": 1, "health": "healthy", "daemon_running": true,
                   "state": {"outcome": "in_service", "phases": []}}),
        )
    }

    fn failed(id: &str) -> InstanceResult {
        reported(
            id,
            json!({"status_schema": 1, "health": "failed", "daemon_running": false,
                   "state": {"outcome": "failed",
                             "phases": [{"name": "imds", "status": "ok"},
                                        {"name": "tags", "status": "failed"}],
                             "error": {"phase": "tags", "message": "required tags still missing after 30s: ecs-boot:cluster",
                                       "hint": "tag the ASG"}}}),
        )
    }

    fn in_progress(id: &str) -> InstanceResult {
        reported(
            id,
            json!({"status_schema": 1, "health": "in_progress", "daemon_running": true,
                   "state": {"outcome": "booting",
                             "phases": [{"name": "imds", "status": "ok"},
                                        {"name": "registration", "status": "running"}]}}),
        )
    }

    fn reach(id: &str, reach: Reach) -> InstanceResult {
        InstanceResult {
            instance_id: id.into(),
            reach,
        }
    }

    fn fleet() -> Vec<InstanceResult> {
        vec![
            healthy("i-05"),
            in_progress("i-04"),
            reach("i-03", Reach::NoSsm),
            reach(
                "i-02",
                Reach::Offline {
                    ping: "ConnectionLost".into(),
                    last_ping: Some("2024-05-01T10:00:00Z".into()),
                },
            ),
            failed("i-01"),
            reach(
                "i-00",
                Reach::TimedOut {
                    last: "InProgress".into(),
                },
            ),
        ]
    }

    #[test]
    fn failures_come_first_then_unreachable_then_progress_then_healthy() {
        let order: Vec<_> = rows(&fleet()).iter().map(|r| r.health).collect();
        assert_eq!(
            order,
            [
                Health::Failed,
                Health::TimedOut,
                Health::Offline,
                Health::NoSsm,
                Health::InProgress,
                Health::Healthy
            ]
        );
    }

    #[test]
    fn a_recorded_instance_shows_where_its_evidence_went() {
        let mut doc = json!({"health": "failed", "state": {"outcome": "failed",
            "evidence": {"location": "s3://ev/boots/i-1/20261130T140509Z/"}}});
        let rows = rows(&[reported("i-1", doc.clone())]);
        assert_eq!(
            rows[0].evidence.as_deref(),
            Some("s3://ev/boots/i-1/20261130T140509Z/")
        );
        let t = table(&rows);
        assert!(
            t.contains("EVIDENCE (flight recordings)\ni-1  s3://ev/boots/i-1/20261130T140509Z/\n"),
            "{t}"
        );
        doc["state"]["evidence"] = Value::Null;
        assert!(!table(&super::rows(&[reported("i-1", doc)])).contains("EVIDENCE"));
    }

    #[test]
    fn golden_table() {
        let t = table(&rows(&fleet()));
        let expected = "\
INSTANCE  HEALTH       OUTCOME     PHASE         ERROR                                                      HINT
i-01      failed       failed      tags          required tags still missing after 30s: ecs-boot:cluster    tag the ASG
i-00      timed_out    -           -             no answer before the deadline (InProgress)                 raise --timeout, or look at the instance's SSM agent
i-02      offline      -           -             SSM agent ConnectionLost (last ping 2024-05-01T10:00:00Z)  check that the instance is running, amazon-ssm-agent is up, and the instance profile allo…
i-03      no_ssm       -           -             not an SSM managed node                                    check that the instance is running, amazon-ssm-agent is up, and the instance profile allo…
i-04      in_progress  booting     registration  -
i-05      healthy      in_service  -             -

6 instances: 1 failed, 1 timed_out, 1 offline, 1 no_ssm, 1 in_progress, 1 healthy
";
        assert_eq!(t, expected, "\n{t}");
    }

    #[test]
    fn json_counts_every_health_and_keeps_the_instance_document() {
        let v: Value = serde_json::from_str(&json(&rows(&fleet()))).unwrap();
        assert_eq!(v["fleet_schema"], 1);
        assert_eq!(v["total"], 6);
        assert_eq!(v["counts"]["failed"], 1);
        assert_eq!(v["counts"]["error"], 0);
        assert_eq!(v["exit_code"], 1);
        let first = &v["instances"][0];
        assert_eq!(first["instance_id"], "i-01");
        assert_eq!(first["health"], "failed");
        assert_eq!(first["phase"], "tags");
        assert_eq!(first["status"]["state"]["error"]["hint"], "tag the ASG");
        assert_eq!(first["ssm"]["command_id"], "c-1");
        assert_eq!(v["instances"][3]["health"], "no_ssm");
        assert!(v["instances"][3]["status"].is_null());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&rows(&[healthy("a")])), 0);
        assert_eq!(exit_code(&rows(&[healthy("a"), in_progress("b")])), 3);
        assert_eq!(exit_code(&rows(&[in_progress("b"), failed("c")])), 1);
        assert_eq!(
            exit_code(&rows(&[healthy("a"), reach("d", Reach::NoSsm)])),
            1
        );
    }

    #[test]
    fn a_dead_daemon_mid_boot_names_the_phase_it_stopped_in() {
        let r = rows(&[reported(
            "i-1",
            json!({"health": "failed", "daemon_running": false,
                   "state": {"outcome": "booting", "phases": [{"name": "containers", "status": "running"}]}}),
        )]);
        assert_eq!(r[0].phase.as_deref(), Some("containers"));
        assert!(r[0].error.as_deref().unwrap().contains("stopped mid-phase"));
    }

    #[test]
    fn unknown_health_and_missing_fields_do_not_panic() {
        let r = rows(&[reported("i-1", json!({"health": "sideways"}))]);
        assert_eq!(r[0].health, Health::Failed);
        assert_eq!(r[0].outcome, None);
    }

    #[test]
    fn instance_strings_cannot_steer_the_terminal_or_fake_rows() {
        let hide = "\x1b[8m";
        let clipboard = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07";
        let r = rows(&[
            reported(
                "i-bad",
                json!({"health": "failed", "daemon_running": false,
                       "state": {"outcome": format!("failed{hide}"),
                                 "phases": [{"name": format!("tags{clipboard}"), "status": "failed"}],
                                 "error": {"phase": format!("tags{clipboard}"),
                                           "message": format!("{hide}\ni-00      healthy      in_service  -             -"),
                                           "hint": format!("\u{202e}{clipboard}")}}}),
            ),
            healthy("i-ok"),
        ]);
        let t = table(&r);
        for bad in ['\x1b', '\x07', '\u{202e}'] {
            assert!(!t.contains(bad), "{bad:?} in\n{t}");
        }
        assert!(
            !t.lines().any(|l| l.starts_with("i-00")),
            "a faked row:\n{t}"
        );
        assert_eq!(
            t.lines().count(),
            5,
            "header, two rows, blank, summary:\n{t}"
        );
        assert!(
            t.contains("\\e[8m\\ni-00"),
            "the newline is shown, not obeyed:\n{t}"
        );
        // The JSON document keeps what the instance said, byte for byte.
        let v: Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["instances"][0]["outcome"], format!("failed{hide}"));
    }

    #[test]
    fn summary_names_only_what_is_there() {
        assert_eq!(summary(&rows(&[healthy("a")])), "1 instance: 1 healthy");
    }
}
