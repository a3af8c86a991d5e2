//! The state `run` keeps and `status` reads (`gate` reads only the ready marker): phases with timings, results, errors with
//! hints. Versioned (`schema`) and tolerant of unknown fields, so an upgraded binary reads an old
//! file and an old `status` reads a new one. Never holds a secret.

use serde::{Deserialize, Serialize};
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

/// A CompleteLifecycleAction about to be sent, recorded first (see `State::hook_intents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookIntent {
    pub transition: String,
    pub hook: String,
    pub result: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRecord {
    /// `launch` or `terminate`.
    pub transition: String,
    pub asg: String,
    pub hook: String,
    /// CONTINUE or ABANDON; `skipped` when there was nothing to complete.
    pub result: String,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainRecord {
    /// What started the drain: `lifecycle:Terminated`, `spot:terminate`, `rebalance`, `manual`.
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline_at: OffsetDateTime,
    pub tasks_left: usize,
    /// `draining`, `drained`, `deadline`.
    pub state: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
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
            instance: None,
            phases: Vec::new(),
            ecs_config: None,
            containers: Vec::new(),
            registration: None,
            hooks: Vec::new(),
            hook_intents: Vec::new(),
            drain: None,
            warnings: Vec::new(),
            error: None,
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
    pub fn hook_intent(&self, transition: &str) -> Option<&HookIntent> {
        self.hook_intents
            .iter()
            .find(|h| h.transition == transition)
    }

    /// A hook already completed (or found finished) for this transition.
    pub fn hook_done(&self, transition: &str) -> Option<&HookRecord> {
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
    /// Starts a new record for this run, carrying over what must survive a restart (hook
    /// completions, registration, drain progress) so a restarted agent never completes twice.
    pub fn open(path: PathBuf) -> StateStore {
        let mut state = State::new();
        if let Ok(prev) = State::read(&path)
            && same_boot(&prev)
        {
            state.hooks = prev.hooks;
            state.hook_intents = prev.hook_intents;
            state.registration = prev.registration;
            state.drain = prev.drain;
            if matches!(prev.outcome, Outcome::Draining | Outcome::Terminated) {
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

    pub fn snapshot(&self) -> State {
        self.state.lock().expect("state lock").clone()
    }

    /// Applies `f` and persists. A failure to persist is logged, never fatal: status is a view,
    /// the instance's work must go on.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.state.lock().expect("state lock");
        let r = f(&mut s);
        // Every reload adds phases, every failure an error: bounded here, once for all writers.
        s.bound();
        s.updated_at = OffsetDateTime::now_utc();
        let json = serde_json::to_vec_pretty(&*s).expect("state serializes");
        // A crash leaves the previous or the new file, never a mix. No fsync: a power loss starts
        // a new boot, and a new boot never carries this record over (see `same_boot`).
        let written = crate::util::atomic_file::write_file(
            &self.path,
            &json,
            crate::util::atomic_file::Durability::RenameOnly,
        );
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

/// Whether `prev` was written during this boot: an earlier boot's hook completions and drain
/// must not carry over.
fn same_boot(prev: &State) -> bool {
    // `started_at` before the kernel booted means another boot; uptime gives the boot time.
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
    match uptime {
        Some(up) => {
            prev.started_at >= OffsetDateTime::now_utc() - time::Duration::seconds_f64(up + 1.0)
        }
        None => true,
    }
}
