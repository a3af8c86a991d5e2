//! The state `run` keeps and `status` reads (`gate` reads only the ready marker): phases with timings, results, errors with
//! hints. Versioned (`schema`) and tolerant of unknown fields, so an upgraded binary reads an old
//! file and an old `status` reads a new one. Never holds a secret.

use crate::util::atomic_file::Durability;
use crate::util::paths::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Booting,
    /// ecs.config written, registration and hook done: the instance takes tasks.
    InService,
    /// Warm pool: prepared and parked; the full boot runs when the instance leaves the pool.
    Warmed,
    Failed,
    Draining,
    /// Drained without a termination (operator drain, spot or rebalance notice): still running,
    /// still watching; `ecs-boot undrain` returns it to service.
    Drained,
    Terminated,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Booting => "booting",
            Outcome::InService => "in_service",
            Outcome::Warmed => "warmed",
            Outcome::Failed => "failed",
            Outcome::Draining => "draining",
            Outcome::Drained => "drained",
            Outcome::Terminated => "terminated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    Running,
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub status: PhaseStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub region: String,
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default)]
    pub instance_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EcsConfigRecord {
    pub path: String,
    pub sha256: String,
    pub cluster: String,
    /// Variable names ecs-boot wrote (values of secret ones never stored).
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<String>,
    /// Where each variable of the file came from (`tag ecs-boot:cluster`, `config.d <path>`,
    /// `user data ...`): names and sources only, never a value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub container_instance_arn: String,
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}

/// Where the instance is in its life; persisted, so a restart resumes in the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading identity, tags, credentials; writing ecs.config.
    Config,
    /// Parked in a warm pool: ecs.config written, the ECS agent kept from registering.
    Warmed,
    /// System containers, registration, the launch hook.
    Launch,
    InService,
    Draining,
    /// Drained without a termination (operator drain, rebalance, spot notice): still watching.
    Drained,
    /// The terminate hook is completed; nothing is left to do but stop.
    Terminated,
    /// The boot failed and the launch hook was abandoned.
    Failed,
}

/// Why a drain started. Only `Lifecycle` (Auto Scaling's target state `Terminated`) has a
/// terminate lifecycle action to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Lifecycle,
    Spot,
    Rebalance,
    Operator,
}

/// The lifecycle transitions whose actions ecs-boot completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Launching into the group (`Pending:Wait`).
    #[serde(rename = "launch")]
    Launch,
    /// Launching into the warm pool (`Warmed:Pending:Wait`).
    #[serde(rename = "launch-warmed")]
    LaunchWarmed,
    /// Terminating (`Terminating:Wait`, `Warmed:Terminating:Wait`).
    #[serde(rename = "terminate")]
    Terminate,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Launch => "launch",
            Transition::LaunchWarmed => "launch-warmed",
            Transition::Terminate => "terminate",
        }
    }

    /// The hook's LifecycleTransition in the Auto Scaling API.
    pub fn aws_name(self) -> &'static str {
        match self {
            Transition::Launch | Transition::LaunchWarmed => "autoscaling:EC2_INSTANCE_LAUNCHING",
            Transition::Terminate => "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    }

    /// Whether Auto Scaling still waits on this transition's action in lifecycle `state`.
    pub fn waiting_in(self, state: &str) -> bool {
        match self {
            Transition::Launch => state == "Pending:Wait",
            Transition::LaunchWarmed => state == "Warmed:Pending:Wait",
            Transition::Terminate => {
                state == "Terminating:Wait" || state == "Warmed:Terminating:Wait"
            }
        }
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was done with a lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookResult {
    #[serde(rename = "CONTINUE")]
    Continue,
    #[serde(rename = "ABANDON")]
    Abandon,
    /// Nothing to complete (no hook for this transition); the cause says why.
    #[serde(rename = "skipped")]
    Skipped,
}

impl HookResult {
    /// The LifecycleActionResult sent to Auto Scaling.
    pub fn as_str(self) -> &'static str {
        match self {
            HookResult::Continue => "CONTINUE",
            HookResult::Abandon => "ABANDON",
            HookResult::Skipped => "skipped",
        }
    }
}

impl From<crate::config::DeadlineResult> for HookResult {
    fn from(r: crate::config::DeadlineResult) -> HookResult {
        match r {
            crate::config::DeadlineResult::Continue => HookResult::Continue,
            crate::config::DeadlineResult::Abandon => HookResult::Abandon,
        }
    }
}

impl std::fmt::Display for HookResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a drain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainState {
    Draining,
    /// No task left.
    Drained,
    /// The deadline passed with tasks still running.
    Deadline,
}

impl DrainState {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainState::Draining => "draining",
            DrainState::Drained => "drained",
            DrainState::Deadline => "deadline",
        }
    }
}

/// A CompleteLifecycleAction about to be sent, recorded first (see `State::hook_intents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookIntent {
    pub transition: Transition,
    pub hook: String,
    pub result: HookResult,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRecord {
    pub transition: Transition,
    pub asg: String,
    pub hook: String,
    pub result: HookResult,
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    /// AWS answered that no action was active (already completed, or timed out).
    #[serde(default)]
    pub already_done: bool,
    /// From registration (launch) or the last task gone (terminate) to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub heartbeats: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

fn cause_lifecycle() -> Cause {
    Cause::Lifecycle
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainRecord {
    /// What started the drain: `lifecycle:Terminated`, `spot:terminate`, `rebalance`, `manual`.
    pub trigger: String,
    /// The same as a type: only `lifecycle` has a terminate action to complete.
    #[serde(default = "cause_lifecycle")]
    pub cause: Cause,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline_at: OffsetDateTime,
    pub tasks_left: usize,
    /// Tasks on the instance when the drain began (TasksDrained = this minus `tasks_left`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_at_start: Option<usize>,
    pub state: DrainState,
    #[serde(default)]
    pub set_draining_by_us: bool,
    #[serde(default)]
    pub standalone_stopped: Vec<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub drained_at: Option<OffsetDateTime>,
}

/// One run of an operator hook command (`[hooks]`, src/lifecycle/handlers.rs), written (fsynced)
/// before it starts and again when it ends: a restart that finds one started but not finished
/// runs it again with the next attempt number, and never runs a finished one again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandlerRecord {
    /// `in_service`, `pre_drain`, `post_drain`, `on_failure`.
    pub hook: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    /// `ok`, `failed`, `timeout` (killed), `error` (could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The last of its output (stdout and stderr), capped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Its step is over (an undrain ends the drain's): the next drain runs the hook afresh.
    #[serde(default)]
    pub closed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    #[serde(default)]
    pub id: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub state: String,
    #[serde(default)]
    pub restart_count: i64,
    #[serde(default)]
    pub essential: bool,
    /// What reconcile did last: created, unchanged, replaced, started, removed.
    #[serde(default)]
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The last flight recording (src/evidence): where it went, or why it did not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvidenceRecord {
    /// What asked for it: `abandon`, `drain-deadline`, `operator`.
    pub trigger: String,
    /// `s3://bucket/prefix/<instance-id>/<timestamp>/`
    pub location: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Files uploaded, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Why the recording is missing or incomplete; absent when every file went up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last metrics publication (src/metrics): when, what, and why it failed if it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// `abandon`, `in-service`, `drained`.
    pub moment: String,
    pub namespace: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Data points sent.
    pub data: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub phase: String,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    pub version: String,
    pub commit: String,
    pub pid: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default)]
    pub outcome: Outcome,
    /// Where the instance is in its life (src/lifecycle/machine/); a restart resumes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_config: Option<EcsConfigRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,
    /// Completions sent but not yet answered: a restart finds them and asks Auto Scaling what
    /// happened before it completes again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_intents: Vec<HookIntent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainRecord>,
    /// Operator hook runs (at least once per step: see `HandlerRecord`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<HandlerRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// The last flight recording, when `[recorder]` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceRecord>,
    /// Essential system containers after launch, and `ecs-boot.ready` (status/essential.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::status::essential::EssentialHealth>,
    /// The last metrics publication, when `[metrics]` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsRecord>,
}

impl State {
    pub fn new() -> State {
        let now = OffsetDateTime::now_utc();
        State {
            schema: SCHEMA,
            version: crate::util::version::VERSION.to_string(),
            commit: crate::util::version::COMMIT.to_string(),
            pid: std::process::id(),
            started_at: now,
            updated_at: now,
            outcome: Outcome::Booting,
            stage: None,
            instance: None,
            phases: Vec::new(),
            ecs_config: None,
            containers: Vec::new(),
            registration: None,
            hooks: Vec::new(),
            hook_intents: Vec::new(),
            drain: None,
            handlers: Vec::new(),
            warnings: Vec::new(),
            error: None,
            evidence: None,
            health: None,
            metrics: None,
        }
    }

    pub fn read(path: &Path) -> std::io::Result<State> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// A completion sent for this transition whose answer was never recorded.
    pub fn hook_intent(&self, transition: Transition) -> Option<&HookIntent> {
        self.hook_intents
            .iter()
            .find(|h| h.transition == transition)
    }

    /// A hook already completed (or found finished) for this transition.
    pub fn hook_done(&self, transition: Transition) -> Option<&HookRecord> {
        self.hooks.iter().find(|h| h.transition == transition)
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// The live state of a running agent, persisted atomically after every change.
#[derive(Clone)]
pub struct StateStore {
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

impl StateStore {
    /// The host's state file (under `--root`). Starts a new record for this run, carrying over
    /// what must survive a restart (hook completions, registration, drain progress) so a
    /// restarted agent never completes twice, but only from this boot: the host's procfs (under
    /// the root too) says when the kernel booted.
    pub fn on_host(paths: &Paths) -> StateStore {
        StateStore::open_since(paths.state_file(), booted_at(&paths.proc("uptime")))
    }

    /// `path`, carrying over any earlier record (no boot time to compare with).
    #[cfg(test)]
    pub fn open(path: PathBuf) -> StateStore {
        StateStore::open_since(path, None)
    }

    fn open_since(path: PathBuf, booted_at: Option<OffsetDateTime>) -> StateStore {
        let mut state = State::new();
        if let Ok(prev) = State::read(&path)
            && same_boot(&prev, booted_at)
        {
            state.hooks = prev.hooks;
            state.hook_intents = prev.hook_intents;
            state.stage = prev.stage;
            state.registration = prev.registration;
            state.drain = prev.drain;
            state.handlers = prev.handlers;
            state.evidence = prev.evidence;
            if matches!(
                prev.outcome,
                Outcome::Draining | Outcome::Drained | Outcome::Terminated
            ) {
                state.outcome = prev.outcome;
            }
        }
        let store = StateStore {
            path,
            state: Arc::new(Mutex::new(state)),
        };
        store.update(|_| ());
        store
    }

    /// Moves to `stage` and shows it as the matching outcome in status.
    pub fn set_stage(&self, stage: Stage) {
        self.update_durable(|s| {
            s.stage = Some(stage);
            s.outcome = match stage {
                Stage::Config | Stage::Launch => Outcome::Booting,
                Stage::Warmed => Outcome::Warmed,
                Stage::InService => Outcome::InService,
                Stage::Draining => Outcome::Draining,
                Stage::Drained => Outcome::Drained,
                Stage::Terminated => Outcome::Terminated,
                Stage::Failed => Outcome::Failed,
            };
        });
    }

    pub fn snapshot(&self) -> State {
        self.state.lock().expect("state lock").clone()
    }

    /// Applies `f` and persists. A failure to persist is logged, never fatal: status is a view,
    /// the instance's work must go on.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.write(f, Durability::RenameOnly)
    }

    /// `update`, on disk before it returns (fsync of the file and its directory): for what a
    /// restart must find whatever happened — a completion about to be sent, a completion done,
    /// the stage. Phase timings and warnings go through `update`: losing one costs nothing.
    pub fn update_durable<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.write(f, Durability::Fsync)
    }

    fn write<R>(&self, f: impl FnOnce(&mut State) -> R, durability: Durability) -> R {
        let mut s = self.state.lock().expect("state lock");
        let r = f(&mut s);
        // Every reload adds phases, every failure an error: bounded here, once for all writers.
        s.bound();
        s.updated_at = OffsetDateTime::now_utc();
        let json = serde_json::to_vec_pretty(&*s).expect("state serializes");
        // A crash leaves the previous or the new file, never a mix.
        let written = crate::util::atomic_file::write_file(&self.path, &json, durability);
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot persist state");
        }
        r
    }

    pub fn begin(&self, name: &str) {
        tracing::info!(PHASE = name, "phase started");
        crate::util::notify::status(&format!("phase: {name}"));
        self.update(|s| {
            s.phases.push(Phase {
                name: name.into(),
                status: PhaseStatus::Running,
                started_at: OffsetDateTime::now_utc(),
                ended_at: None,
                duration_ms: None,
                detail: None,
                error: None,
                hint: None,
            })
        });
    }

    /// Ends the latest phase called `name`.
    pub fn end(
        &self,
        name: &str,
        status: PhaseStatus,
        detail: Option<String>,
        error: Option<(String, String)>,
    ) {
        let elapsed = self.update(|s| {
            let Some(p) = s.phases.iter_mut().rev().find(|p| p.name == name) else {
                return 0;
            };
            let now = OffsetDateTime::now_utc();
            let ms = (now - p.started_at).whole_milliseconds().max(0) as u64;
            p.status = status;
            p.ended_at = Some(now);
            p.duration_ms = Some(ms);
            p.detail = detail.clone();
            if let Some((message, hint)) = &error {
                p.error = Some(message.clone());
                p.hint = Some(hint.clone());
                s.error = Some(ErrorRecord {
                    phase: name.into(),
                    message: message.clone(),
                    hint: hint.clone(),
                });
            }
            ms
        });
        match (&error, status) {
            (Some((message, _)), _) => {
                tracing::error!(PHASE = name, duration_ms = elapsed, error = %message, "phase failed")
            }
            (None, PhaseStatus::Skipped) => tracing::info!(
                PHASE = name,
                detail = detail.as_deref().unwrap_or(""),
                "phase skipped"
            ),
            _ => tracing::info!(
                PHASE = name,
                duration_ms = elapsed,
                detail = detail.as_deref().unwrap_or(""),
                "phase done"
            ),
        }
    }

    pub fn warn(&self, mut message: String) {
        tracing::warn!(warning = %message, "warning");
        // Stored capped: compare the capped form, or a long warning repeats once per call.
        crate::status::bounds::cap_text(&mut message, crate::status::bounds::WARNING);
        self.update(|s| {
            if !s.warnings.contains(&message) {
                s.warnings.push(message)
            }
        });
    }
}

/// When the kernel booted, from the procfs file `uptime` (None when unreadable).
fn booted_at(uptime: &Path) -> Option<OffsetDateTime> {
    let up = crate::util::clock::uptime(uptime)?;
    // A second of slack: uptime and the clock are read at different instants.
    Some(OffsetDateTime::now_utc() - time::Duration::seconds_f64(up.as_secs_f64() + 1.0))
}

/// Whether `prev` was written during this boot: an earlier boot's hook completions and drain
/// must not carry over. Without a boot time, it is taken to be (a restart is likelier than a
/// reboot that also lost procfs).
fn same_boot(prev: &State, booted_at: Option<OffsetDateTime>) -> bool {
    booted_at.is_none_or(|booted| prev.started_at >= booted)
}

#[cfg(test)]
mod same_boot_tests {
    use super::*;

    /// A root whose procfs says the kernel booted `up` seconds ago, and a record from a run that
    /// started `age` seconds ago with a completed hook.
    fn host(up: &str, age: i64) -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.proc("")).unwrap();
        std::fs::write(paths.proc("uptime"), up).unwrap();
        let mut prev = State::new();
        prev.started_at = OffsetDateTime::now_utc() - time::Duration::seconds(age);
        prev.outcome = Outcome::Terminated;
        std::fs::create_dir_all(paths.state_dir()).unwrap();
        std::fs::write(paths.state_file(), serde_json::to_vec(&prev).unwrap()).unwrap();
        (dir, paths)
    }

    #[test]
    fn the_boot_time_comes_from_the_procfs_under_the_root() {
        // Written 10 s ago, booted an hour ago: a restart, the record carries over.
        let (_d, paths) = host("3600.25 7000.00\n", 10);
        assert_eq!(
            StateStore::on_host(&paths).snapshot().outcome,
            Outcome::Terminated
        );
        // Written an hour ago, booted 10 s ago: another boot's record, never carried over.
        let (_d, paths) = host("10.00 20.00\n", 3600);
        assert_eq!(
            StateStore::on_host(&paths).snapshot().outcome,
            Outcome::Booting
        );
    }

    #[test]
    fn an_unreadable_uptime_counts_as_the_same_boot() {
        for up in ["", "soon", "NaN", "-5"] {
            let (_d, paths) = host(up, 3600);
            assert_eq!(
                StateStore::on_host(&paths).snapshot().outcome,
                Outcome::Terminated,
                "{up:?}"
            );
        }
    }
}
