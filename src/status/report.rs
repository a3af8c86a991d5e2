//! `ecs-boot status`: what the running (or last) agent recorded, as a table for people or JSON for
//! machines. Reads only the state file, the ecs.config on disk and the local agent: it answers even
//! when the daemon is down, and it never prints a secret (the state holds none).

use crate::status::health::Health;
use crate::status::state::{Outcome, PhaseStatus, State};
use crate::util::atomic_file::sha256_hex;
use crate::util::escape::for_terminal as esc;
use crate::util::paths::Paths;
use serde::Serialize;
use std::fmt::Write as _;

/// Version of the `--json` document; bumped only on incompatible changes.
pub const JSON_SCHEMA: u32 = 1;

/// Exit codes scripts can rely on.
pub mod exit {
    pub const HEALTHY: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const IN_PROGRESS: i32 = 3;
    pub const NO_STATE: i32 = 4;
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status_schema: u32,
    /// `healthy`, `in_progress`, `failed` or `no_state` (never a fleet-only word).
    pub health: Health,
    pub daemon_running: bool,
    pub ecs_config_drift: Option<String>,
    /// What the local ECS agent reports, when it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs_agent: Option<AgentView>,
    /// The agent reports another cluster than ecs-boot wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_drift: Option<String>,
    /// `--check-render`: a fresh render from the live sources differs from the file on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_drift: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<String>,
    /// Detail was left out to keep the document under SSM's inline output limit
    /// (`bounds::JSON_BUDGET`); `ecs-boot status` on the instance shows the rest.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        match self.health {
            Health::Healthy => exit::HEALTHY,
            Health::InProgress => exit::IN_PROGRESS,
            Health::NoState => exit::NO_STATE,
            // `status` never computes the fleet's words; were one here, it is no success.
            Health::Failed | Health::Error | Health::TimedOut | Health::Offline | Health::NoSsm => {
                exit::FAILED
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
}

/// The report, with the local agent's own view of its registration.
pub async fn collect_live(
    paths: &Paths,
    intro: &crate::sources::ecs_agent::Introspection,
) -> Report {
    let mut report = collect(paths);
    if let Ok(m) = intro.metadata().await {
        let written = report
            .state
            .as_ref()
            .and_then(|s| s.ecs_config.as_ref())
            .map(|c| c.cluster.clone());
        let reported = crate::sources::ecs_agent::cluster_name(&m.cluster).to_string();
        if let Some(w) = written.filter(|w| *w != reported) {
            report.agent_drift = Some(format!(
                "the ECS agent reports cluster {reported:?}, ecs.config says {w:?}: restart ecs after fixing ecs.config, or clear a stale /var/lib/ecs/data checkpoint"
            ));
        }
        report.ecs_agent = Some(AgentView {
            cluster: m.cluster,
            container_instance_arn: m.container_instance_arn,
        });
    }
    report
}

pub fn collect(paths: &Paths) -> Report {
    let state = State::read(&paths.state_file()).ok().map(|mut s| {
        crate::evidence::merge_latest(paths, &mut s);
        s.bound();
        s
    });
    let daemon_running = state
        .as_ref()
        .is_some_and(|s| pid_is_ecs_boot(paths, s.pid));
    let health = match &state {
        None => Health::NoState,
        Some(s) => health_of(s, daemon_running),
    };
    let ecs_config_drift = state.as_ref().and_then(|s| drift(paths, s));
    let journal = if daemon_running {
        Vec::new()
    } else {
        last_journal_lines(paths, 12)
    };
    Report {
        status_schema: JSON_SCHEMA,
        ecs_agent: None,
        agent_drift: None,
        render_drift: None,
        health,
        daemon_running,
        ecs_config_drift,
        state,
        journal,
        truncated: false,
    }
}

/// A boot that stopped midway without a running daemon has failed, whatever it last recorded.
/// No `_` arm: a new outcome must be placed here. `drained` (a drain without a termination: the
/// instance is drained, still running, waiting) is healthy, like `warmed`.
pub fn health_of(s: &State, daemon_running: bool) -> Health {
    // In service but marked not ready: an essential system container died for good.
    if s.outcome == Outcome::InService && s.health.as_ref().is_some_and(|h| !h.ready) {
        return Health::Failed;
    }
    match s.outcome {
        Outcome::InService | Outcome::Warmed | Outcome::Drained | Outcome::Terminated => {
            Health::Healthy
        }
        Outcome::Failed => Health::Failed,
        Outcome::Booting | Outcome::Draining if daemon_running => Health::InProgress,
        Outcome::Booting | Outcome::Draining => Health::Failed,
    }
}

/// Differences between what ecs-boot wrote and what is on disk now.
fn drift(paths: &Paths, s: &State) -> Option<String> {
    let recorded = s.ecs_config.as_ref()?;
    match std::fs::read(paths.ecs_config()) {
        Err(_) => Some("ecs.config is missing".into()),
        Ok(bytes) if sha256_hex(&bytes) != recorded.sha256 => Some(format!(
            "ecs.config on disk (sha256 {}) differs from what ecs-boot wrote ({})",
            &sha256_hex(&bytes)[..12],
            &recorded.sha256[..12.min(recorded.sha256.len())]
        )),
        Ok(_) => None,
    }
}

/// Whether `pid` is an `ecs-boot run` of this host (its procfs under the root).
pub fn pid_is_ecs_boot(paths: &Paths, pid: u32) -> bool {
    std::fs::read_to_string(paths.proc(&format!("{pid}/cmdline")))
        .is_ok_and(|c| c.contains("ecs-boot") && c.split('\0').any(|a| a == "run"))
}

/// `journalctl`'s arguments for the unit's last `n` lines, reading the journal under the root.
fn journal_args(paths: &Paths, n: usize) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(root) = paths.journal_root() {
        args.push("--root".into());
        args.push(root.into());
    }
    for a in [
        "-u",
        "ecs-boot",
        "-n",
        &n.to_string(),
        "--no-pager",
        "-o",
        "short-iso",
    ] {
        args.push(a.into());
    }
    args
}

fn last_journal_lines(paths: &Paths, n: usize) -> Vec<String> {
    let out = std::process::Command::new("journalctl")
        .args(journal_args(paths, n))
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("-- "))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// One line of JSON, always under SSM's inline output limit (see `bounds`).
pub fn render_json(r: &Report) -> String {
    crate::status::bounds::fit_json(r)
}

fn ms(d: Option<u64>) -> String {
    match d {
        None => "…".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

fn clock(t: time::OffsetDateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The human table. Every string that is not ecs-boot's own goes through `esc`: the state quotes
/// tags, fetched names and other processes' answers, and a terminal must print them, not obey them.
pub fn render_table(r: &Report) -> String {
    let mut o = String::new();
    let Some(s) = &r.state else {
        let _ = writeln!(
            o,
            "ecs-boot has not run on this instance (no state file). health: no_state"
        );
        push_journal(&mut o, &r.journal);
        return o;
    };
    let _ = writeln!(
        o,
        "ecs-boot {} ({})   health: {}   outcome: {}   daemon: {}",
        esc(&s.version),
        esc(&s.commit),
        r.health.as_str(),
        s.outcome.as_str(),
        if r.daemon_running {
            format!("running (pid {})", s.pid)
        } else {
            "not running".into()
        }
    );
    if let Some(i) = &s.instance {
        let _ = writeln!(
            o,
            "instance {}  {}  {}  {}",
            esc(&i.instance_id),
            esc(&i.region),
            esc(&i.availability_zone),
            esc(&i.instance_type)
        );
    }
    let _ = writeln!(
        o,
        "\nPHASE                  STATUS   START         DURATION  DETAIL"
    );
    for p in &s.phases {
        let status = match p.status {
            PhaseStatus::Running => "running",
            PhaseStatus::Ok => "ok",
            PhaseStatus::Failed => "FAILED",
            PhaseStatus::Skipped => "skipped",
        };
        let detail = p.error.as_deref().or(p.detail.as_deref()).unwrap_or("");
        let _ = writeln!(
            o,
            "{:<22} {:<8} {:<13} {:>8}  {}",
            esc(&p.name),
            status,
            clock(p.started_at),
            ms(p.duration_ms),
            esc(detail)
        );
    }
    if let Some(c) = &s.ecs_config {
        let _ = writeln!(
            o,
            "\necs.config  cluster {}  sha256 {}  {} keys{}",
            esc(&c.cluster),
            esc(c.sha256.get(..12).unwrap_or(&c.sha256)),
            c.keys.len(),
            c.registry_auth
                .as_ref()
                .map(|l| format!("  credentials from {}", esc(l)))
                .unwrap_or_default()
        );
    }
    if let Some(c) = &s.ecs_config {
        push_sources(&mut o, &c.sources);
    }
    for d in r.agent_drift.iter().chain(r.render_drift.iter()) {
        let _ = writeln!(o, "DRIFT: {}", esc(d));
    }
    match &r.ecs_config_drift {
        Some(d) => {
            let _ = writeln!(o, "DRIFT: {}", esc(d));
        }
        None if s.ecs_config.is_some() => {
            let _ = writeln!(o, "no drift: the file on disk is what ecs-boot wrote");
        }
        None => {}
    }
    if !s.containers.is_empty() {
        let _ = writeln!(
            o,
            "\nCONTAINER        STATE      RESTARTS  ACTION     ID            IMAGE"
        );
        for c in &s.containers {
            let _ = writeln!(
                o,
                "{:<16} {:<10} {:>8}  {:<10} {:<13} {}{}",
                esc(&c.name),
                esc(&c.state),
                c.restart_count,
                esc(&c.action),
                esc(&c.id.chars().take(12).collect::<String>()),
                esc(&c.image),
                c.last_error
                    .as_ref()
                    .map(|e| format!("  error: {}", esc(e)))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(reg) = &s.registration {
        let _ = writeln!(
            o,
            "\nregistered  {}  cluster {}  at {}",
            esc(&reg.container_instance_arn),
            esc(&reg.cluster),
            clock(reg.registered_at)
        );
    }
    for h in &s.hooks {
        let latency = h
            .latency_ms
            .map(|l| {
                format!(
                    "  {l} ms after {}",
                    if h.transition == crate::status::state::Transition::Launch {
                        "registration"
                    } else {
                        "drain"
                    }
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "hook {:<9} {}  {} on {}  {}{}{}",
            h.transition.as_str(),
            h.result.as_str(),
            esc(&h.hook),
            esc(&h.asg),
            clock(h.completed_at),
            latency,
            h.cause
                .as_ref()
                .map(|c| format!("  cause: {}", esc(c)))
                .unwrap_or_default()
        );
    }
    if let Some(d) = &s.drain {
        let _ = writeln!(
            o,
            "drain  {}  trigger {}  tasks left {}  started {}  deadline {}",
            d.state.as_str(),
            esc(&d.trigger),
            d.tasks_left,
            clock(d.started_at),
            clock(d.deadline_at)
        );
    }
    if let Some(h) = &s.health {
        let _ = writeln!(o, "{}", h.line());
    }
    if let Some(e) = &s.evidence {
        let _ = writeln!(
            o,
            "evidence  {}  {}  {} files, {} bytes  ({}){}",
            esc(&e.location),
            clock(e.at),
            e.files,
            e.bytes,
            esc(&e.trigger),
            e.error
                .as_deref()
                .map(|x| format!("  INCOMPLETE: {}", esc(x)))
                .unwrap_or_default()
        );
    }
    if let Some(m) = &s.metrics {
        let _ = writeln!(
            o,
            "metrics  {}  {}  {} points into {}{}",
            esc(&m.moment),
            clock(m.at),
            m.data,
            esc(&m.namespace),
            m.error
                .as_deref()
                .map(|x| format!("  NOT PUBLISHED: {}", esc(x)))
                .unwrap_or_default()
        );
    }
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING: {}", esc(w));
    }
    if let Some(e) = &s.error {
        let _ = writeln!(
            o,
            "\nERROR in {}: {}\n  hint: {}",
            esc(&e.phase),
            esc(&e.message),
            esc(&e.hint)
        );
    }
    if !r.daemon_running {
        push_journal(&mut o, &r.journal);
    }
    o
}

/// `KEY  from SOURCE`, one variable a line: why each is set, never its value.
fn push_sources(o: &mut String, sources: &std::collections::BTreeMap<String, String>) {
    let width = sources
        .keys()
        .map(|k| esc(k).chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for (key, source) in sources {
        let _ = writeln!(o, "  {:<width$}  from {}", esc(key), esc(source));
    }
}

fn push_journal(o: &mut String, journal: &[String]) {
    if !journal.is_empty() {
        let _ = writeln!(o, "\nlast journal lines of ecs-boot.service:");
        for l in journal {
            let _ = writeln!(o, "  {}", esc(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::state::{ErrorRecord, Phase};

    fn report(state: State, running: bool) -> Report {
        Report {
            status_schema: JSON_SCHEMA,
            health: health_of(&state, running),
            daemon_running: running,
            ecs_config_drift: None,
            ecs_agent: None,
            agent_drift: None,
            render_drift: None,
            state: Some(state),
            journal: vec![],
            truncated: false,
        }
    }

    #[test]
    fn a_dead_daemon_mid_boot_is_a_failure() {
        let s = State::new();
        assert_eq!(report(s.clone(), true).exit_code(), exit::IN_PROGRESS);
        assert_eq!(report(s, false).exit_code(), exit::FAILED);
    }

    #[test]
    fn in_service_but_not_ready_is_a_failure_shown_in_the_table() {
        let mut s = State::new();
        s.outcome = Outcome::InService;
        let mut h = crate::status::essential::EssentialHealth::new(true);
        s.health = Some(h.clone());
        assert_eq!(report(s.clone(), true).exit_code(), exit::HEALTHY);
        h.ready = false;
        h.essential_failures = 1;
        h.failing.push(crate::status::essential::FailingContainer {
            name: "logs".into(),
            cause: "exited with code 1".into(),
        });
        s.health = Some(h);
        let r = report(s, true);
        assert_eq!(r.exit_code(), exit::FAILED);
        let table = render_table(&r);
        assert!(
            table.contains("ecs-boot.ready=false  essential failures 1")
                && table.contains("DEAD logs: exited with code 1"),
            "{table}"
        );
    }

    #[test]
    fn table_shows_phases_errors_and_hints() {
        let mut s = State::new();
        s.outcome = Outcome::Failed;
        s.phases.push(Phase {
            name: "tags".into(),
            status: PhaseStatus::Failed,
            started_at: s.started_at,
            ended_at: Some(s.started_at),
            duration_ms: Some(1500),
            detail: None,
            error: Some("required tags still missing".into()),
            hint: Some("tag the ASG".into()),
        });
        s.error = Some(ErrorRecord {
            phase: "tags".into(),
            message: "required tags still missing".into(),
            hint: "tag the ASG".into(),
        });
        let table = render_table(&report(s, false));
        assert!(
            table.contains("tags") && table.contains("FAILED") && table.contains("1.5 s"),
            "{table}"
        );
        assert!(table.contains("hint: tag the ASG"), "{table}");
        assert!(table.contains("health: failed"));
    }

    #[test]
    fn table_lists_where_each_ecs_config_variable_came_from() {
        let mut s = State::new();
        s.outcome = Outcome::InService;
        s.ecs_config = Some(crate::status::state::EcsConfigRecord {
            cluster: "prod".into(),
            sha256: "0".repeat(64),
            keys: vec!["ECS_CLUSTER".into()],
            sources: [
                ("ECS_CLUSTER", "tag ecs-boot:cluster"),
                (
                    "ECS_DISABLE_PRIVILEGED",
                    "user data (a line outside ecs-boot's block)",
                ),
                (
                    "ECS_EVIL\x1b[8m",
                    "user data (a line outside ecs-boot's block)",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        });
        let table = render_table(&report(s.clone(), true));
        assert!(
            table.contains("\n  ECS_CLUSTER             from tag ecs-boot:cluster\n"),
            "{table}"
        );
        assert!(
            table.contains(
                "\n  ECS_DISABLE_PRIVILEGED  from user data (a line outside ecs-boot's block)\n"
            ),
            "{table}"
        );
        assert!(
            !table.contains('\x1b') && table.contains("ECS_EVIL\\e[8m"),
            "{table}"
        );
        let v: serde_json::Value = serde_json::from_str(&render_json(&report(s, true))).unwrap();
        assert_eq!(
            v["state"]["ecs_config"]["sources"]["ECS_CLUSTER"],
            "tag ecs-boot:cluster"
        );
    }

    #[test]
    fn the_daemon_and_the_journal_are_looked_up_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let pid = std::process::id();
        // This test process is no `ecs-boot run`; a procfs under the root says pid 7 is.
        let cmdline = dir.path().join(format!("proc/{pid}"));
        std::fs::create_dir_all(&cmdline).unwrap();
        std::fs::write(cmdline.join("cmdline"), "/usr/bin/ecs-boot\0run\0").unwrap();
        assert!(pid_is_ecs_boot(&paths, pid));
        assert!(
            !pid_is_ecs_boot(&Paths::new("/"), pid),
            "the host's own /proc"
        );
        assert!(!pid_is_ecs_boot(&paths, pid + 1));

        let args: Vec<String> = journal_args(&paths, 12)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args[..2],
            ["--root".to_string(), dir.path().display().to_string()]
        );
        let host: Vec<_> = journal_args(&Paths::new("/"), 12);
        assert_eq!(host.first().map(|a| a.to_str().unwrap()), Some("-u"));
    }

    /// What a hostile tag or answer could put into the state: hide the rows below, write the
    /// clipboard, fake a healthy row.
    const HIDE: &str = "\x1b[8m";
    const CLIPBOARD: &str = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07";
    const FAKE_ROW: &str = "x\nregistration           ok       12:00:00.000    0.1 s  registered";

    fn hostile_state() -> State {
        let mut s = State::new();
        s.outcome = Outcome::Failed;
        s.phases.push(Phase {
            name: "tags".into(),
            status: PhaseStatus::Failed,
            started_at: s.started_at,
            ended_at: None,
            duration_ms: Some(1),
            detail: None,
            error: Some(format!("tag ecs-boot:cluster {HIDE}")),
            hint: None,
        });
        s.warnings.push(format!("tag {CLIPBOARD} ignored"));
        s.error = Some(ErrorRecord {
            phase: "tags".into(),
            message: FAKE_ROW.into(),
            hint: format!("\u{202e}{HIDE}"),
        });
        s.instance = Some(crate::status::state::Instance {
            instance_id: format!("i-1{HIDE}"),
            region: "\u{9b}2J".into(),
            ..Default::default()
        });
        s
    }

    #[test]
    fn table_never_passes_terminal_controls_through() {
        let mut r = report(hostile_state(), false);
        r.journal = vec![format!("journal {CLIPBOARD}")];
        r.agent_drift = Some(format!("cluster {HIDE}"));
        let table = render_table(&r);
        for bad in ['\x1b', '\x07', '\u{9b}', '\u{202e}'] {
            assert!(!table.contains(bad), "{bad:?} in\n{table}");
        }
        assert!(
            table.contains("\\e[8m") && table.contains("\\e]52;c;"),
            "{table}"
        );
        assert!(
            !table
                .lines()
                .any(|l| l.starts_with("registration") && l.contains("registered")),
            "a newline in an error started a fake row:\n{table}"
        );
        assert!(table.contains("x\\nregistration"), "{table}");
    }

    #[test]
    fn json_keeps_hostile_strings_exact() {
        let json = render_json(&report(hostile_state(), false));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["state"]["error"]["message"], FAKE_ROW);
        assert_eq!(
            v["state"]["warnings"][0],
            format!("tag {CLIPBOARD} ignored")
        );
        assert!(!json.contains('\x1b'), "serde_json escapes controls itself");
    }

    #[test]
    fn json_is_one_line_and_versioned() {
        let json = render_json(&report(State::new(), true));
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["status_schema"], 1);
        assert_eq!(v["health"], "in_progress");
        assert_eq!(v["state"]["schema"], 1);
    }
}
