//! The operator's steps in the instance's life: `[[bootstrap]]` containers before the ECS agent
//! may start, and `[hooks]` commands at lifecycle steps.
//!
//! A hook runs **at least once** per step: its start is recorded (fsynced) before it runs and its
//! end after, so a restart that finds it started but not finished runs it again with
//! `ECS_BOOT_ATTEMPT` one higher, and a finished one never runs again. It gets a clean
//! environment (the documented `ECS_BOOT_*` variables and a fixed PATH: never ecs-boot's own,
//! which may hold credentials or proxies), its own process group (killed whole at its timeout, or
//! when ecs-boot stops waiting for it), and its output goes to the journal and, capped, the state.

use crate::config::{HookCommand, HooksSection};
use crate::containers::bootstrap::{self as container, Failure};
use crate::error::{Error, Result};
use crate::lifecycle::boot::Prepared;
use crate::status::bounds::HANDLER_OUTPUT;
use crate::status::state::{HandlerRecord, PhaseStatus, Stage, StateStore};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The PATH a hook gets: the system's directories, nothing from ecs-boot's environment.
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Journal lines logged per hook run; the rest is counted (a chatty hook must not flood it).
const JOURNAL_LINES: usize = 2000;
/// A journal line longer than this is cut.
const LINE_BYTES: usize = 1024;
/// How long the output pipes may stay open after the hook's group was killed.
const DRAIN_PIPES: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    InService,
    PreDrain,
    PostDrain,
    OnFailure,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::InService => "in_service",
            Hook::PreDrain => "pre_drain",
            Hook::PostDrain => "post_drain",
            Hook::OnFailure => "on_failure",
        }
    }

    fn command(self, hooks: &HooksSection) -> Option<&HookCommand> {
        match self {
            Hook::InService => hooks.in_service.as_ref(),
            Hook::PreDrain => hooks.pre_drain.as_ref(),
            Hook::PostDrain => hooks.post_drain.as_ref(),
            Hook::OnFailure => hooks.on_failure.as_ref(),
        }
    }
}

/// What a hook is told about the step (its environment, see `environment`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub instance_id: String,
    pub cluster: String,
    /// `launch` (in_service, on_failure), `terminate` (a drain for a termination), `drain` (a
    /// drain without one: spot or rebalance notice, operator).
    pub transition: &'static str,
    /// `lifecycle`, `spot`, `rebalance`, `operator` for drains; `launched` for in_service; the
    /// error for on_failure.
    pub cause: String,
    pub stage: Option<Stage>,
}

impl Context {
    pub fn new(prepared: Option<&Prepared>, instance_id: Option<&str>) -> Context {
        Context {
            instance_id: prepared
                .map(|p| p.identity.instance_id.as_str())
                .or(instance_id)
                .unwrap_or_default()
                .to_string(),
            cluster: prepared
                .map(|p| p.env.cluster().to_string())
                .unwrap_or_default(),
            ..Context::default()
        }
    }
}

/// The hook's whole environment: nothing else of ecs-boot's reaches it.
pub fn environment(hook: Hook, ctx: &Context, attempt: u32) -> Vec<(String, String)> {
    let stage = ctx
        .stage
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut cause = ctx.cause.clone();
    crate::status::bounds::cap_text(&mut cause, 1024);
    [
        ("PATH", HOOK_PATH.to_string()),
        ("ECS_BOOT_HOOK", hook.name().to_string()),
        ("ECS_BOOT_INSTANCE_ID", ctx.instance_id.clone()),
        ("ECS_BOOT_CLUSTER", ctx.cluster.clone()),
        ("ECS_BOOT_TRANSITION", ctx.transition.to_string()),
        ("ECS_BOOT_CAUSE", cause),
        ("ECS_BOOT_ATTEMPT", attempt.to_string()),
        ("ECS_BOOT_STAGE", stage),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.replace('\0', "")))
    .collect()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Run {
        attempt: u32,
    },
    /// Finished already in this step (or failed, when failing is allowed): never again.
    Done,
}

/// Whether `hook` runs now, and as which attempt, from what the state recorded. `retry_failed`:
/// a finished run that failed counts as not done (a required hook).
pub fn plan(records: &[HandlerRecord], hook: &str, retry_failed: bool) -> Plan {
    match records.iter().rev().find(|r| r.hook == hook && !r.closed) {
        None => Plan::Run { attempt: 1 },
        Some(r) if r.finished_at.is_none() => Plan::Run {
            attempt: r.attempt + 1,
        },
        Some(r) if retry_failed && r.result.as_deref() != Some("ok") => Plan::Run {
            attempt: r.attempt + 1,
        },
        Some(_) => Plan::Done,
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// `ok`, `failed` (non-zero exit or a signal), `timeout` (killed), `error` (did not start).
    pub result: &'static str,
    pub exit_code: Option<i32>,
    /// The last of stdout and stderr, at most `HANDLER_OUTPUT` bytes.
    pub output: String,
    pub duration: Duration,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.result == "ok"
    }

    pub fn describe(&self) -> String {
        match (self.result, self.exit_code) {
            ("ok", _) => format!("ok in {} ms", self.duration.as_millis()),
            ("timeout", _) => format!(
                "killed at its timeout after {} ms",
                self.duration.as_millis()
            ),
            (_, Some(code)) => format!("exited with code {code}"),
            (_, None) if self.result == "error" => format!("could not start: {}", self.output),
            _ => "killed by a signal".to_string(),
        }
    }
}

/// Runs `hook` if configured and not done in this step: recorded before and after (durably),
/// logged, shown as phase `hook:<name>`. `None`: nothing ran. A failure is a warning, except for
/// a required hook: then it is the phase's error, and `Err`.
pub async fn run(
    store: &StateStore,
    hooks: &HooksSection,
    hook: Hook,
    ctx: &Context,
) -> Result<Option<Ran>> {
    let Some(command) = hook.command(hooks) else {
        return Ok(None);
    };
    let attempt = match plan(&store.snapshot().handlers, hook.name(), command.required) {
        Plan::Done => {
            tracing::info!(
                hook = hook.name(),
                "hook finished earlier in this step; not run again"
            );
            return Ok(None);
        }
        Plan::Run { attempt } => attempt,
    };
    store.update_durable(|s| {
        let record = HandlerRecord {
            hook: hook.name().to_string(),
            attempt,
            started_at: OffsetDateTime::now_utc(),
            finished_at: None,
            result: None,
            exit_code: None,
            duration_ms: None,
            output: String::new(),
            closed: false,
        };
        match s
            .handlers
            .iter_mut()
            .rev()
            .find(|r| r.hook == record.hook && !r.closed)
        {
            Some(r) => *r = record,
            None => s.handlers.push(record),
        }
    });
    let phase = format!("hook:{}", hook.name());
    store.begin(&phase);
    tracing::info!(hook = hook.name(), attempt, "hook started");
    let ran = execute(hook.name(), command, &environment(hook, ctx, attempt)).await;
    store.update_durable(|s| {
        if let Some(r) = s
            .handlers
            .iter_mut()
            .rev()
            .find(|r| r.hook == hook.name() && !r.closed)
        {
            r.finished_at = Some(OffsetDateTime::now_utc());
            r.result = Some(ran.result.to_string());
            r.exit_code = ran.exit_code;
            r.duration_ms = Some(ran.duration.as_millis() as u64);
            r.output = ran.output.clone();
        }
    });
    let detail = format!("attempt {attempt}: {}", ran.describe());
    if ran.ok() {
        store.end(&phase, PhaseStatus::Ok, Some(detail), None);
    } else if command.required {
        let err = Error::Hook(format!(
            "required hook {} {}; the drain waits for it",
            hook.name(),
            ran.describe()
        ));
        store.end(
            &phase,
            PhaseStatus::Failed,
            Some(detail),
            Some((err.to_string(), err.hint())),
        );
        return Err(err);
    } else {
        store.end(&phase, PhaseStatus::Failed, Some(detail.clone()), None);
        store.warn(format!("hook {} {detail}", hook.name()));
    }
    Ok(Some(ran))
}

/// Ends the drain's steps (an undrain): the next drain runs `pre_drain` and `post_drain` afresh.
pub fn close_drain(store: &StateStore) {
    store.update_durable(|s| {
        for r in &mut s.handlers {
            if r.hook == Hook::PreDrain.name() || r.hook == Hook::PostDrain.name() {
                r.closed = true;
            }
        }
    });
}

/// Kills the hook's whole process group when dropped: at its timeout, when it ended (nothing it
/// started outlives it), and when ecs-boot stops waiting (SIGTERM drops the future).
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // ESRCH: the group is gone already.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `command` with exactly `env`, in its own process group, for at most its timeout.
pub async fn execute(name: &str, command: &HookCommand, env: &[(String, String)]) -> Ran {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&command.command[0]);
    cmd.args(&command.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(hook = name, error = %e, "hook could not start");
            return Ran {
                result: "error",
                exit_code: None,
                output: format!("{}: {e}", command.command[0]),
                duration: started.elapsed(),
            };
        }
    };
    let group = Group(child.id().map(|id| Pid::from_raw(id as i32)));
    let capture = Arc::new(Mutex::new(Capture::default()));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| tokio::spawn(read_lines(name.to_string(), "stdout", r, capture.clone()))),
        child
            .stderr
            .take()
            .map(|r| tokio::spawn(read_lines(name.to_string(), "stderr", r, capture.clone()))),
    ];
    let waited = tokio::time::timeout(command.timeout, child.wait()).await;
    drop(group);
    let (result, exit_code) = match waited {
        Ok(Ok(status)) if status.success() => ("ok", Some(0)),
        Ok(Ok(status)) => ("failed", status.code()),
        Ok(Err(e)) => {
            tracing::error!(hook = name, error = %e, "cannot wait for the hook");
            ("error", None)
        }
        Err(_) => {
            tracing::warn!(
                hook = name,
                timeout_s = command.timeout.as_secs(),
                "hook killed at its timeout"
            );
            let _ = child.wait().await;
            ("timeout", None)
        }
    };
    for reader in readers.into_iter().flatten() {
        // A process that left the group may hold the pipe: stop reading, do not wait for it.
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_PIPES, reader).await.is_err() {
            abort.abort();
        }
    }
    let capture = capture.lock().expect("capture lock");
    if capture.dropped_lines > 0 {
        tracing::warn!(
            hook = name,
            lines = capture.dropped_lines,
            "hook output not logged past the line limit"
        );
    }
    let ran = Ran {
        result,
        exit_code,
        output: container::keep_end(&String::from_utf8_lossy(&capture.tail), HANDLER_OUTPUT - 16),
        duration: started.elapsed(),
    };
    tracing::info!(hook = name, result = ran.result, exit_code = ?ran.exit_code, duration_ms = ran.duration.as_millis() as u64, "hook ended");
    ran
}

/// The last bytes of the output, and how many lines the journal did not get.
#[derive(Default)]
struct Capture {
    tail: Vec<u8>,
    logged_lines: usize,
    dropped_lines: usize,
}

impl Capture {
    fn keep(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * HANDLER_OUTPUT {
            self.tail.drain(..self.tail.len() - HANDLER_OUTPUT);
        }
    }

    fn log(&mut self, hook: &str, stream: &str, line: &[u8]) {
        if self.logged_lines >= JOURNAL_LINES {
            self.dropped_lines += 1;
            return;
        }
        self.logged_lines += 1;
        let line = String::from_utf8_lossy(&line[..line.len().min(LINE_BYTES)]);
        tracing::info!(hook, stream, line = %line.trim_end(), "hook output");
    }
}

async fn read_lines(
    hook: String,
    stream: &'static str,
    mut r: impl AsyncRead + Unpin,
    capture: Arc<Mutex<Capture>>,
) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut c = capture.lock().expect("capture lock");
        c.keep(&buf[..n]);
        for &b in &buf[..n] {
            if b == b'\n' {
                c.log(&hook, stream, &line);
                line.clear();
            } else if line.len() < LINE_BYTES {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        capture
            .lock()
            .expect("capture lock")
            .log(&hook, stream, &line);
    }
}

/// Every `[[bootstrap]]` container in order, each to completion, each a phase
/// `bootstrap:<name>`: an essential one that fails fails the boot; another is a warning.
pub async fn bootstrap(
    p: &Prepared,
    store: &StateStore,
    scope: &crate::containers::Scope,
) -> Result<()> {
    for spec in &p.config.bootstrap {
        let phase = format!("bootstrap:{}", spec.name);
        // READY=1 comes after every bootstrap container: systemd's start timeout must allow it.
        crate::util::notify::extend_timeout(
            spec.timeout + p.config.docker.engine_wait + Duration::from_secs(120),
        );
        store.begin(&phase);
        let ran = container::run(
            spec,
            p.auth.as_ref(),
            &p.aws,
            scope,
            p.config.docker.engine_wait,
        )
        .await;
        let (problem, tail) = match ran {
            Ok(done) if done.exit_code == 0 => {
                log_tail(&spec.name, &done.tail);
                store.end(&phase, PhaseStatus::Ok, Some("exit code 0".into()), None);
                continue;
            }
            Ok(done) => (format!("exited with code {}", done.exit_code), done.tail),
            Err(f @ Failure::Timeout { .. }) => {
                let problem = f.to_string();
                let Failure::Timeout { tail, .. } = f else {
                    unreachable!("matched Timeout")
                };
                (problem, tail)
            }
            Err(Failure::Engine(e)) => (e, String::new()),
        };
        log_tail(&spec.name, &tail);
        let shown = if tail.is_empty() {
            problem.clone()
        } else {
            format!(
                "{problem}; last lines: {}",
                crate::util::escape::for_terminal(&tail)
            )
        };
        if spec.essential {
            let err = Error::Bootstrap {
                name: spec.name.clone(),
                image: spec.image.clone(),
                problem: shown,
            };
            store.end(
                &phase,
                PhaseStatus::Failed,
                Some(problem),
                Some((err.to_string(), err.hint())),
            );
            return Err(err);
        }
        store.end(&phase, PhaseStatus::Failed, Some(problem.clone()), None);
        store.warn(format!(
            "bootstrap container {} (not essential) {problem}; the boot goes on",
            spec.name
        ));
    }
    Ok(())
}

fn log_tail(name: &str, tail: &str) {
    for line in tail.lines() {
        tracing::info!(bootstrap = name, line, "bootstrap output");
    }
}

#[cfg(test)]
mod tests;
