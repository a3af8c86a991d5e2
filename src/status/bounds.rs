//! Size bounds on the state and the status document. `status --json` runs through SSM Run Command
//! for `ecs-boot-fleet`, which keeps only the first 24,000 characters of output inline; and the
//! state grows with every reload (SIGHUP). So every stored string is capped (with a visible
//! marker), every list is bounded, and the JSON document is fitted under the budget by dropping
//! detail in a fixed order, the failing phase's error last.

use crate::status::report::Report;
use crate::status::state::{PhaseStatus, State};

/// What `status --json` may print, newline included, with room below SSM's 24,000 characters.
pub const JSON_BUDGET: usize = 23_500;

/// Appended where a string was cut; counts against the cap.
pub const MARKER: &str = "…[truncated]";

/// Caps, in bytes of JSON (escapes included), for what the state stores.
/// The error itself; a phase's copy of it is kept shorter.
const ERROR: usize = 2048;
const PHASE_ERROR: usize = 1024;
const HINT: usize = 384;
const DETAIL: usize = 256;
pub(crate) const WARNING: usize = 512;
const CAUSE: usize = 512;
/// The tail of an operator hook's output kept in the state (the journal has all of it).
pub const HANDLER_OUTPUT: usize = 512;
/// Names, ARNs, images, ids: anything one line of identity.
const NAME: usize = 256;

const MAX_PHASES: usize = 48;
const MAX_WARNINGS: usize = 16;
const MAX_HOOKS: usize = 8;
/// Four hooks, each with its current record; older steps' records go first.
const MAX_HANDLERS: usize = 8;
const MAX_CONTAINERS: usize = 32;
const MAX_LIST: usize = 64;
/// ecs.config variables whose source is kept: more than all the agent variables ecs-boot knows, so only a file
/// stuffed by user data loses some (the first, by name, are kept).
const MAX_SOURCES: usize = 96;
/// An agent variable's name (ecs-boot accepts at most 128 characters).
const VAR_NAME: usize = 128;

/// The last warning kept when more came: the journal has them all.
pub const MORE_WARNINGS: &str = "more warnings were not kept here: see journalctl -u ecs-boot";

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Cuts `s` so that it takes at most `max` bytes inside a JSON string, marker included.
pub fn cap_text(s: &mut String, max: usize) {
    if s.chars().map(json_len).sum::<usize>() <= max {
        return;
    }
    let room = max.saturating_sub(MARKER.len());
    let mut used = 0;
    let cut = s
        .char_indices()
        .find(|&(_, c)| {
            used += json_len(c);
            used > room
        })
        .map_or(s.len(), |(i, _)| i);
    s.truncate(cut);
    s.push_str(MARKER);
}

fn cap_opt(s: &mut Option<String>, max: usize) {
    if let Some(s) = s {
        cap_text(s, max);
    }
}

/// Keeps the last `max` items (the newest), for lists that grow over the instance's life.
fn keep_last<T>(v: &mut Vec<T>, max: usize) {
    if v.len() > max {
        v.drain(..v.len() - max);
    }
}

impl State {
    /// Applies the caps; called before every write of the state file, and on every state `status`
    /// reads (an older version may have written it unbounded).
    pub fn bound(&mut self) {
        cap_text(&mut self.version, NAME);
        cap_text(&mut self.commit, NAME);
        for p in &mut self.phases {
            cap_text(&mut p.name, NAME);
            cap_opt(&mut p.detail, DETAIL);
            cap_opt(&mut p.error, PHASE_ERROR);
            cap_opt(&mut p.hint, HINT);
        }
        // Oldest first, but never a running phase: `end` finds it by name.
        while self.phases.len() > MAX_PHASES {
            match self
                .phases
                .iter()
                .position(|p| p.status != PhaseStatus::Running)
            {
                Some(i) => {
                    self.phases.remove(i);
                }
                None => break,
            }
        }
        if let Some(h) = &mut self.health {
            h.bound(CAUSE, MAX_CONTAINERS);
        }
        if let Some(e) = &mut self.error {
            cap_text(&mut e.phase, NAME);
            cap_text(&mut e.message, ERROR);
            cap_text(&mut e.hint, HINT);
        }
        for w in &mut self.warnings {
            cap_text(w, WARNING);
        }
        if self.warnings.len() > MAX_WARNINGS {
            self.warnings.truncate(MAX_WARNINGS - 1);
            self.warnings.push(MORE_WARNINGS.into());
        }
        if let Some(i) = &mut self.instance {
            for f in [
                &mut i.instance_id,
                &mut i.region,
                &mut i.availability_zone,
                &mut i.instance_type,
            ] {
                cap_text(f, NAME);
            }
        }
        if let Some(c) = &mut self.ecs_config {
            cap_text(&mut c.cluster, NAME);
            cap_opt(&mut c.registry_auth, NAME);
            c.keys.truncate(MAX_LIST * 2);
            c.registries.truncate(MAX_LIST);
            for r in &mut c.registries {
                cap_text(r, NAME);
            }
            // User data may add any number of lines, with names of any length.
            c.sources = std::mem::take(&mut c.sources)
                .into_iter()
                .take(MAX_SOURCES)
                .map(|(mut name, mut source)| {
                    cap_text(&mut name, VAR_NAME);
                    cap_text(&mut source, NAME);
                    (name, source)
                })
                .collect();
        }
        if let Some(r) = &mut self.registration {
            cap_text(&mut r.container_instance_arn, NAME);
            cap_text(&mut r.cluster, NAME);
            cap_opt(&mut r.agent_version, NAME);
        }
        keep_last(&mut self.hooks, MAX_HOOKS);
        for h in &mut self.hooks {
            cap_text(&mut h.asg, NAME);
            cap_text(&mut h.hook, NAME);
            cap_opt(&mut h.cause, CAUSE);
        }
        keep_last(&mut self.handlers, MAX_HANDLERS);
        for h in &mut self.handlers {
            // Our own short words; capped all the same, as every stored string is.
            cap_text(&mut h.hook, 32);
            cap_opt(&mut h.result, 32);
            cap_text(&mut h.output, HANDLER_OUTPUT);
        }
        if let Some(d) = &mut self.drain {
            cap_text(&mut d.trigger, NAME);
            keep_last(&mut d.standalone_stopped, MAX_LIST);
            for a in &mut d.standalone_stopped {
                cap_text(a, NAME);
            }
        }
        if let Some(e) = &mut self.evidence {
            cap_text(&mut e.trigger, NAME);
            cap_text(&mut e.location, CAUSE);
            cap_opt(&mut e.error, CAUSE);
        }
        if let Some(m) = &mut self.metrics {
            cap_text(&mut m.moment, 32);
            cap_text(&mut m.namespace, NAME);
            cap_opt(&mut m.error, CAUSE);
        }
        self.containers.truncate(MAX_CONTAINERS);
        for c in &mut self.containers {
            for f in [
                &mut c.name,
                &mut c.id,
                &mut c.image,
                &mut c.state,
                &mut c.action,
            ] {
                cap_text(f, NAME);
            }
            cap_opt(&mut c.digest, NAME);
            cap_opt(&mut c.last_error, CAUSE);
        }
    }
}

/// The JSON document for `r`, at most `JSON_BUDGET - 1` bytes (one line plus its newline).
/// Detail goes in this order until it fits: the journal, phases' texts but the failing one's,
/// the oldest phases, warnings, container errors and hook causes, the containers, the error's
/// own text (shortened, never dropped).
pub fn fit_json(r: &Report) -> String {
    let fits = |r: &Report| {
        let json = serde_json::to_string(r).expect("report serializes");
        (json.len() < JSON_BUDGET).then_some(json)
    };
    if let Some(json) = fits(r) {
        return json;
    }
    let mut r = r.clone();
    r.truncated = true;
    if let Some(s) = &mut r.state {
        s.bound();
    }
    for l in &mut r.journal {
        cap_text(l, 240);
    }
    for d in [
        &mut r.ecs_config_drift,
        &mut r.agent_drift,
        &mut r.render_drift,
    ] {
        cap_opt(d, 512);
    }
    if let Some(a) = &mut r.ecs_agent {
        cap_text(&mut a.cluster, NAME);
        cap_opt(&mut a.container_instance_arn, NAME);
    }
    let steps: [&dyn Fn(&mut Report) -> bool; 8] = [
        &|r| {
            keep_last(&mut r.journal, 3);
            true
        },
        &|r| {
            with_state(r, |s| {
                let failing = s
                    .phases
                    .iter()
                    .rposition(|p| p.status == PhaseStatus::Failed);
                for (i, p) in s.phases.iter_mut().enumerate() {
                    if Some(i) != failing {
                        p.detail = None;
                        p.error = None;
                        p.hint = None;
                    }
                }
            })
        },
        &|r| {
            with_state(r, |s| {
                for p in &mut s.phases {
                    cap_opt(&mut p.error, 256);
                    cap_opt(&mut p.hint, 128);
                    cap_opt(&mut p.detail, 128);
                }
            })
        },
        &|r| {
            // One phase at a time from the oldest, down to the latest 8.
            with_state(r, |s| {
                if s.phases.len() > 8 {
                    s.phases.remove(0);
                }
            });
            r.state.as_ref().is_none_or(|s| s.phases.len() <= 8)
        },
        &|r| {
            with_state(r, |s| {
                if s.warnings.len() > 3 {
                    s.warnings.truncate(2);
                    s.warnings.push(MORE_WARNINGS.into());
                }
                for w in &mut s.warnings {
                    cap_text(w, 160);
                }
                for c in &mut s.containers {
                    cap_opt(&mut c.last_error, 160);
                }
                for h in &mut s.hooks {
                    cap_opt(&mut h.cause, 256);
                }
                for h in &mut s.handlers {
                    cap_text(&mut h.output, 160);
                }
            })
        },
        &|r| {
            r.journal.clear();
            with_state(r, |s| {
                s.containers.truncate(16);
                if let Some(c) = &mut s.ecs_config {
                    c.keys.clear();
                    c.sources.clear();
                    c.registries.truncate(4);
                }
                if let Some(d) = &mut s.drain {
                    d.standalone_stopped.clear();
                }
            })
        },
        &|r| {
            with_state(r, |s| {
                if let Some(e) = &mut s.error {
                    cap_text(&mut e.message, 1024);
                    cap_text(&mut e.hint, 256);
                }
                s.containers.truncate(4);
                s.phases.truncate(8);
            })
        },
        &|r| {
            with_state(r, |s| {
                s.phases.clear();
                s.containers.clear();
                s.warnings.truncate(1);
                s.hooks.truncate(2);
                s.handlers.retain(|h| h.finished_at.is_none());
                for h in &mut s.handlers {
                    h.output.clear();
                }
            })
        },
    ];
    for step in steps {
        // A step may need several passes (dropping phases one by one); each pass is checked.
        loop {
            if let Some(json) = fits(&r) {
                return json;
            }
            if step(&mut r) {
                break;
            }
        }
    }
    fits(&r).unwrap_or_else(|| {
        // Unreachable with the caps above; never print more than SSM keeps, whatever happens.
        serde_json::json!({"status_schema": r.status_schema, "health": r.health, "truncated": true})
            .to_string()
    })
}

/// Applies `f` to the state, if any; always done in one pass.
fn with_state(r: &mut Report, f: impl FnOnce(&mut State)) -> bool {
    if let Some(s) = &mut r.state {
        f(s);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::report::{AgentView, JSON_SCHEMA, Report};
    use crate::status::state::*;

    /// Control characters take 6 bytes each in JSON: the worst case for a byte budget.
    fn huge(tag: &str) -> String {
        format!("{tag}:{}", "\u{1b}\"\\é".repeat(2_000))
    }

    fn phase(name: String, status: PhaseStatus, text: bool) -> Phase {
        Phase {
            name,
            status,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            ended_at: Some(time::OffsetDateTime::UNIX_EPOCH),
            duration_ms: Some(u64::MAX),
            detail: text.then(|| huge("detail")),
            error: text.then(|| huge("error")),
            hint: text.then(|| huge("hint")),
        }
    }

    /// Everything at once, as large as outside input can make it: 20 reloads' phases, errors
    /// of 100 KB, more warnings, hooks and containers than anything keeps.
    fn worst_state() -> State {
        let mut s = State::new();
        s.outcome = Outcome::Failed;
        s.version = huge("v");
        s.commit = huge("c");
        for i in 0..120 {
            let status = if i % 7 == 6 {
                PhaseStatus::Failed
            } else {
                PhaseStatus::Ok
            };
            s.phases.push(phase(huge(&format!("p{i}")), status, true));
        }
        s.phases
            .push(phase("reload-last".into(), PhaseStatus::Failed, true));
        s.error = Some(ErrorRecord {
            phase: "reload-last".into(),
            message: huge("the error"),
            hint: huge("the hint"),
        });
        s.warnings = (0..40).map(|i| huge(&format!("w{i}"))).collect();
        s.instance = Some(Instance {
            instance_id: huge("i"),
            region: huge("r"),
            availability_zone: huge("az"),
            instance_type: huge("t"),
        });
        s.ecs_config = Some(EcsConfigRecord {
            path: "/etc/ecs/ecs.config".into(),
            sha256: "0".repeat(64),
            cluster: huge("cluster"),
            keys: (0..500).map(|i| format!("ECS_K{i}")).collect(),
            registry_auth: Some(huge("loc")),
            registries: (0..80).map(|i| huge(&format!("reg{i}"))).collect(),
            sources: (0..500)
                .map(|i| (huge(&format!("USER_{i}")), huge("config.d")))
                .collect(),
        });
        s.registration = Some(Registration {
            container_instance_arn: huge("arn"),
            cluster: huge("cluster"),
            agent_version: Some(huge("agent")),
            registered_at: time::OffsetDateTime::UNIX_EPOCH,
        });
        s.hooks = (0..30)
            .map(|i| HookRecord {
                transition: Transition::Launch,
                asg: huge("asg"),
                hook: huge(&format!("hook{i}")),
                result: HookResult::Abandon,
                completed_at: time::OffsetDateTime::UNIX_EPOCH,
                already_done: false,
                latency_ms: Some(u64::MAX),
                heartbeats: u32::MAX,
                cause: Some(huge("cause")),
            })
            .collect();
        s.handlers = (0..30)
            .map(|i| crate::status::state::HandlerRecord {
                hook: huge(&format!("handler{i}")),
                attempt: u32::MAX,
                started_at: time::OffsetDateTime::UNIX_EPOCH,
                finished_at: (i % 2 == 0).then_some(time::OffsetDateTime::UNIX_EPOCH),
                result: Some(huge("result")),
                exit_code: Some(i32::MIN),
                duration_ms: Some(u64::MAX),
                output: huge("output"),
                closed: false,
            })
            .collect();
        s.drain = Some(DrainRecord {
            trigger: huge("trigger"),
            cause: Cause::Lifecycle,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            deadline_at: time::OffsetDateTime::UNIX_EPOCH,
            tasks_left: usize::MAX,
            tasks_at_start: Some(usize::MAX),
            state: DrainState::Deadline,
            set_draining_by_us: true,
            standalone_stopped: (0..80).map(|i| huge(&format!("task{i}"))).collect(),
            drained_at: None,
        });
        s.containers = (0..50)
            .map(|i| ContainerRecord {
                name: huge(&format!("c{i}")),
                id: huge("id"),
                image: huge("image"),
                digest: Some(huge("digest")),
                state: huge("state"),
                restart_count: i64::MAX,
                essential: true,
                action: huge("action"),
                last_error: Some(huge("last")),
            })
            .collect();
        s.metrics = Some(crate::status::state::MetricsRecord {
            moment: huge("moment"),
            namespace: huge("namespace"),
            at: time::OffsetDateTime::UNIX_EPOCH,
            data: usize::MAX,
            error: Some(huge("metrics error")),
        });
        s
    }

    fn report(state: State) -> Report {
        Report {
            status_schema: JSON_SCHEMA,
            health: crate::status::health::Health::Failed,
            daemon_running: false,
            ecs_config_drift: Some(huge("drift")),
            ecs_agent: Some(AgentView {
                cluster: huge("agent cluster"),
                container_instance_arn: Some(huge("agent arn")),
            }),
            agent_drift: Some(huge("agent drift")),
            render_drift: Some(huge("render drift")),
            state: Some(state),
            journal: (0..12).map(|i| huge(&format!("journal{i}"))).collect(),
            truncated: false,
        }
    }

    #[test]
    fn status_json_fits_ssm_in_the_worst_case_bounded_or_not() {
        let mut bounded = worst_state();
        bounded.bound();
        // Unbounded: a state file written by a version before these caps.
        for state in [bounded, worst_state()] {
            let json = crate::status::report::render_json(&report(state));
            assert!(json.len() + 1 < 24_000, "{} bytes", json.len());
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            // What a fleet operator needs survives: health, the failing phase, the error.
            assert_eq!(v["health"], "failed");
            assert_eq!(v["truncated"], true);
            assert_eq!(v["state"]["error"]["phase"], "reload-last");
            let message = v["state"]["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("the error:") && message.ends_with(MARKER),
                "{message}"
            );
        }
    }

    #[test]
    fn the_state_stays_bounded_over_any_number_of_reloads() {
        let mut s = worst_state();
        s.bound();
        let size = serde_json::to_vec(&s).unwrap().len();
        for i in 0..200 {
            s.phases
                .push(phase(format!("reload{i}"), PhaseStatus::Failed, true));
            s.warnings.push(huge(&format!("new{i}")));
            s.bound();
        }
        assert!(s.phases.len() <= MAX_PHASES && s.warnings.len() <= MAX_WARNINGS);
        assert_eq!(
            s.phases.last().unwrap().name,
            "reload199",
            "the newest phases are kept"
        );
        assert_eq!(s.warnings.last().unwrap(), MORE_WARNINGS);
        let after = serde_json::to_vec(&s).unwrap().len();
        assert!(after <= size + 4096, "{size} -> {after} bytes");
        assert!(after < 256 << 10, "{after} bytes");
    }

    #[test]
    fn a_small_report_is_untouched() {
        let r = report(State::new());
        let mut small = r.clone();
        small.journal.clear();
        small.ecs_agent = None;
        small.ecs_config_drift = None;
        small.agent_drift = None;
        small.render_drift = None;
        let json = crate::status::report::render_json(&small);
        assert_eq!(json, serde_json::to_string(&small).unwrap());
        assert!(!json.contains("truncated"));
    }

    #[test]
    fn cuts_respect_json_escapes_and_char_boundaries() {
        let mut s = "\u{1b}".repeat(100);
        cap_text(&mut s, 60);
        assert!(serde_json::to_string(&s).unwrap().len() - 2 <= 60, "{s:?}");
        assert!(s.ends_with(MARKER));
        let mut s = "é".repeat(100);
        cap_text(&mut s, 51);
        assert!(s.len() <= 51 && s.ends_with(MARKER));
        let mut short = "fine".to_string();
        cap_text(&mut short, 4);
        assert_eq!(short, "fine");
    }
}
