//! `ecs-boot run`: the agent systemd starts at boot. One loop drives the instance's life through
//! the table in machine.rs: the current stage's work yields the next event (a phase done or
//! failed, a termination notice, a signal), the table gives the next stage and the action, the
//! action is performed, and the stage is persisted so a restart resumes from it.

use crate::config::{Config, OnFailure};
use crate::error::{Error, Result};
use crate::lifecycle::boot::{self, Known, Prepared, phase};
use crate::lifecycle::drain::{self, Drainer, Trigger};
use crate::lifecycle::handlers::{self, Hook};
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::machine::{self, Action, Cause, Event, Stage};
use crate::sources::aws::Aws;
use crate::sources::ecs_agent::Introspection;
use crate::sources::imds::Imds;
use crate::status::state::{DrainState, HookResult, PhaseStatus, StateStore, Transition};
use crate::util::paths::Paths;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Agent {
    /// The trusted config (baked + config.d); the effective one, with a tag-named fragment and
    /// the identity's placeholders, is `Prepared::config`.
    pub config: Config,
    pub config_path: std::path::PathBuf,
    pub paths: Paths,
    pub imds: Imds,
    pub store: StateStore,
    pub intro: Introspection,
    /// The label value marking system containers as ours.
    pub container_scope: crate::containers::Scope,
}

/// What the life has learned so far, carried from stage to stage.
#[derive(Default)]
struct Life {
    prepared: Option<Prepared>,
    /// What a failed boot learned, to find and ABANDON the launch hook.
    known: Known,
    /// The group's hooks, read once at launch; termination needs no discovery call.
    hooks: Option<GroupHooks>,
    /// What started the current drain (for its deadline and cause).
    trigger: Option<Trigger>,
    /// The terminate action, open (heartbeating) from the start of a lifecycle drain.
    terminate: Option<HookAction<Aws>>,
    /// When the last task was gone, for the terminate hook's latency.
    drained_at: Option<Instant>,
    failure: Option<Error>,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    /// `ecs-boot drain`: an operator asks for a drain now.
    usr1: Signal,
    /// `ecs-boot undrain`: an operator returns a drained instance to service.
    usr2: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        let s =
            |k| signal(k).map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")));
        Ok(Signals {
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
            hup: s(SignalKind::hangup())?,
            usr1: s(SignalKind::user_defined1())?,
            usr2: s(SignalKind::user_defined2())?,
        })
    }

    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}

impl Agent {
    pub fn new(config: Config, config_path: std::path::PathBuf, paths: Paths) -> Agent {
        let store = StateStore::on_host(&paths);
        let imds = Imds::new(config.imds.timeout);
        let intro = Introspection::new(&config.ecs_agent.introspection_url);
        Agent {
            container_scope: crate::containers::Scope::new(
                &paths,
                crate::containers::DEFAULT_SCOPE,
            ),
            config,
            config_path,
            paths,
            imds,
            store,
            intro,
        }
    }

    /// Drives the life until it stops: SIGTERM, or a failed boot (exits non-zero so systemd
    /// retries; the launch hook was abandoned unless `on_failure = "leave"`).
    pub async fn run(mut self) -> Result<()> {
        let signals = Signals::install()?;
        let start = machine::resume(self.store.snapshot().stage);
        let mut running = Running {
            agent: &mut self,
            life: Life::default(),
            signals,
        };
        let result = machine::drive(&mut running, start).await;
        crate::util::notify::stopping();
        result
    }

    /// The ongoing work of `stage`, until something happens that the table may act on.
    async fn work(&mut self, stage: Stage, life: &mut Life, signals: &mut Signals) -> Event {
        match stage {
            Stage::Config => tokio::select! {
                e = self.configure(life) => e,
                _ = signals.stop() => Event::Stop,
            },
            Stage::Launch => {
                let Some(p) = life.prepared.as_ref() else {
                    return Event::Failed;
                };
                let launched = tokio::select! {
                    r = self.launch(p, &mut life.hooks) => r,
                    _ = signals.stop() => return Event::Stop,
                };
                match launched {
                    Ok(()) => Event::Launched,
                    Err(e) => {
                        life.failure = Some(e);
                        Event::Failed
                    }
                }
            }
            Stage::Warmed => self.wait_in_pool(life, signals).await,
            Stage::InService => self.watch(life, signals, false).await,
            Stage::Drained => self.watch(life, signals, true).await,
            Stage::Draining => {
                let cause = self.drain_cause(life);
                let until_drained = async {
                    // A failed step (an API error) is retried: the drain record makes each
                    // attempt resume where the last one stopped.
                    while let Err(e) = self.drain(life).await {
                        tracing::error!(error = %e, "drain step failed; retrying");
                        tokio::time::sleep(crate::util::retry::jitter(Duration::from_secs(5)))
                            .await;
                    }
                    // Before the terminate action completes: its heartbeats still run.
                    let _ = self.hook(life, Hook::PostDrain, cause).await;
                };
                tokio::select! {
                    () = until_drained => Event::DrainEnded(cause),
                    _ = signals.stop() => Event::Stop,
                }
            }
            Stage::Terminated => {
                signals.stop().await;
                Event::Stop
            }
            Stage::Failed => Event::Stop,
        }
    }

    async fn perform(&mut self, action: Action, life: &mut Life) -> Result<()> {
        match action {
            Action::Release => {
                let p = life
                    .prepared
                    .as_ref()
                    .ok_or_else(|| Error::Other("released before the config phase".into()))?;
                boot::open_gate(p, &self.paths)?;
                crate::util::notify::ready("ecs.config written; waiting for the ECS agent");
            }
            Action::Park => self.park(life).await?,
            Action::Watch => {
                let drained = self.store.snapshot().stage == Some(Stage::Draining);
                let what = if drained {
                    "drained; waiting for termination or `ecs-boot undrain`"
                } else {
                    "in service"
                };
                if let (false, Some(p)) = (drained, life.prepared.as_ref()) {
                    // A journald field operators search by (`journalctl INSTANCE_ID=i-…`).
                    tracing::info!(INSTANCE_ID = %p.identity.instance_id, cluster = p.env.cluster(), "boot complete: in service");
                }
                crate::util::notify::status(what);
                if !drained {
                    self.hook(life, Hook::InService, Cause::Lifecycle).await?;
                }
                if !drained
                    && life
                        .prepared
                        .as_ref()
                        .is_some_and(|p| !p.config.drain.enabled)
                {
                    self.store.begin("termination-watch");
                    let why =
                        "[drain] enabled = false (another drainer, e.g. ECS managed draining)";
                    self.store.end(
                        "termination-watch",
                        PhaseStatus::Skipped,
                        Some(why.into()),
                        None,
                    );
                }
            }
            Action::Drain(cause) => {
                if life.trigger.is_none() || cause == Cause::Lifecycle {
                    life.trigger = Some(
                        life.trigger
                            .take()
                            .filter(|_| cause != Cause::Lifecycle)
                            .unwrap_or(match cause {
                                Cause::Lifecycle => Trigger::Lifecycle,
                                Cause::Operator => Trigger::Manual,
                                Cause::Rebalance => Trigger::Rebalance,
                                Cause::Spot => Trigger::Spot {
                                    action: "terminate".into(),
                                    time: None,
                                },
                            }),
                    );
                }
                if cause == Cause::Lifecycle {
                    self.open_terminate_action(life).await?;
                }
                self.hook(life, Hook::PreDrain, cause).await?;
            }
            Action::CompleteTerminate => self.complete_terminate(life).await?,
            Action::Reactivate => {
                self.reactivate(life).await?;
                handlers::close_drain(&self.store);
            }
            Action::Abandon => {
                // Before the ABANDON: the instance is still there for diagnostics.
                let _ = self.hook(life, Hook::OnFailure, Cause::Lifecycle).await;
                self.abandon_launch(life).await
            }
            Action::Reload => {
                crate::util::notify::reloading();
                match self.reload(life).await {
                    Ok(()) => crate::util::notify::ready("reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "reload failed; keeping the running configuration");
                        crate::util::notify::ready("reload failed; running configuration kept");
                    }
                }
            }
            Action::Exit => {}
        }
        Ok(())
    }

    /// Config phase: identity, tags, credentials, ecs.config on disk; then whether the instance
    /// is headed for a warm pool (the gate must then stay closed).
    async fn configure(&self, life: &mut Life) -> Event {
        boot::close_gate(&self.paths);
        let prepared = boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            Some(&self.store),
            &mut life.known,
        )
        .await;
        let written = match prepared {
            Ok(p) => boot::write(&p, &self.paths, &self.store).await.map(|()| p),
            Err(e) => Err(e),
        };
        // Bootstrap containers finish before the gate opens, so the ECS agent starts after them.
        let written = match written {
            Ok(p) => handlers::bootstrap(&p, &self.store, &self.container_scope)
                .await
                .map(|()| p),
            Err(e) => Err(e),
        };
        match written {
            Ok(p) => {
                let warmed = self
                    .imds
                    .target_lifecycle_state()
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.starts_with("Warmed:"));
                life.prepared = Some(p);
                Event::ConfigWritten { warmed }
            }
            Err(e) => {
                life.failure = Some(e);
                Event::Failed
            }
        }
    }

    /// Runs the operator's `hook` for this step (src/lifecycle/handlers.rs); only a required
    /// hook (`pre_drain`) that fails is an error.
    async fn hook(&self, life: &Life, hook: Hook, cause: Cause) -> Result<()> {
        let config = life.prepared.as_ref().map_or(&self.config, |p| &p.config);
        let instance_id = life.known.identity.as_ref().map(|i| i.instance_id.as_str());
        let mut ctx = handlers::Context::new(life.prepared.as_ref(), instance_id);
        // The stage the step belongs to (the table records it only after the action).
        ctx.stage = Some(match hook {
            Hook::InService => Stage::InService,
            Hook::PreDrain | Hook::PostDrain => Stage::Draining,
            Hook::OnFailure => Stage::Failed,
        });
        (ctx.transition, ctx.cause) = match hook {
            Hook::InService => ("launch", "launched".to_string()),
            Hook::OnFailure => (
                "launch",
                life.failure
                    .as_ref()
                    .map_or("boot failed".into(), |e| e.to_string()),
            ),
            Hook::PreDrain | Hook::PostDrain => (
                if cause == Cause::Lifecycle {
                    "terminate"
                } else {
                    "drain"
                },
                serde_json::to_value(cause)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
        };
        handlers::run(&self.store, &config.hooks, hook, &ctx).await?;
        Ok(())
    }

    /// Warm pool: complete the pool's launch hook; systemd gets READY=1 (its start timeout must
    /// not kill us while parked), but the gate stays closed, so the agent never registers.
    async fn park(&self, life: &mut Life) -> Result<()> {
        let p = life
            .prepared
            .as_ref()
            .ok_or_else(|| Error::Other("parked before the config phase".into()))?;
        let state = self
            .imds
            .target_lifecycle_state()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let action = self
            .begin_action(p, &mut life.hooks, Transition::LaunchWarmed)
            .await?;
        phase(Some(&self.store), "warm-pool-hook", async {
            let r = action.complete(HookResult::Continue, None, None).await?;
            Ok(((), Some(format!("{} {} ({state})", r.result, r.hook))))
        })
        .await?;
        crate::util::notify::ready(&format!(
            "parked in the warm pool ({state}); the ECS agent waits"
        ));
        Ok(())
    }

    /// Parked: wait until the instance leaves the pool for service (Warmed:Running and
    /// Warmed:Hibernated do so without a reboot) or is terminated in it.
    async fn wait_in_pool(&self, life: &Life, signals: &mut Signals) -> Event {
        let poll = life
            .prepared
            .as_ref()
            .map_or(Duration::from_secs(5), |p| p.config.drain.poll_interval);
        loop {
            match self
                .imds
                .target_lifecycle_state()
                .await
                .ok()
                .flatten()
                .as_deref()
            {
                Some("InService") => return Event::TargetInService,
                Some("Terminated" | "Warmed:Terminated") => {
                    return Event::Terminating(Cause::Lifecycle);
                }
                _ => {}
            }
            let Signals { term, int, hup, .. } = &mut *signals;
            tokio::select! {
                _ = tokio::time::sleep(crate::util::retry::jitter(poll)) => {}
                Some(_) = hup.recv() => return Event::Reload,
                _ = term.recv() => return Event::Stop,
                _ = int.recv() => return Event::Stop,
            }
        }
    }

    /// In service (or drained): termination notices, operator requests, reload, stop.
    async fn watch(&self, life: &mut Life, signals: &mut Signals, drained: bool) -> Event {
        let Some(p) = life.prepared.as_ref() else {
            // Resumed drained after a restart without a config phase: only stopping is possible.
            signals.stop().await;
            return Event::Stop;
        };
        let config = &p.config;
        let notice = async {
            if !config.drain.enabled && !drained {
                std::future::pending::<()>().await;
            }
            loop {
                if let Some(t) = drain::check_once(&self.imds, config).await {
                    // Drained already: only the real termination matters now.
                    if !drained || t == Trigger::Lifecycle {
                        return t;
                    }
                }
                tokio::time::sleep(crate::util::retry::jitter(config.drain.poll_interval)).await;
            }
        };
        let Signals {
            term,
            int,
            hup,
            usr1,
            usr2,
        } = signals;
        let (trigger, event) = tokio::select! {
            t = notice => {
                let cause = t.cause();
                (Some(t), Event::Terminating(cause))
            }
            _ = usr1.recv(), if !drained => (Some(Trigger::Manual), Event::Terminating(Cause::Operator)),
            _ = usr2.recv(), if drained => (None, Event::Undrain),
            Some(_) = hup.recv() => (None, Event::Reload),
            _ = term.recv() => (None, Event::Stop),
            _ = int.recv() => (None, Event::Stop),
        };
        if trigger.is_some() {
            life.trigger = trigger;
        }
        if event == Event::Stop && !drained {
            self.stop_best_effort(life).await;
        }
        event
    }

    fn drain_cause(&self, life: &Life) -> Cause {
        life.trigger
            .as_ref()
            .map(Trigger::cause)
            .or_else(|| self.store.snapshot().drain.map(|d| d.cause))
            .unwrap_or(Cause::Operator)
    }

    async fn group_hooks<'h>(
        &self,
        p: &Prepared,
        hooks: &'h mut Option<GroupHooks>,
    ) -> Result<&'h GroupHooks> {
        if hooks.is_none() {
            *hooks = Some(GroupHooks::discover(&p.aws, &p.tags, &p.identity.instance_id).await?);
        }
        Ok(hooks.as_ref().expect("just set"))
    }

    /// The action for `transition` on this instance's hook (the group's hooks read once),
    /// heartbeating from now.
    pub(crate) async fn begin_action(
        &self,
        p: &Prepared,
        hooks: &mut Option<GroupHooks>,
        transition: Transition,
    ) -> Result<HookAction<Aws>> {
        let group = self.group_hooks(p, hooks).await?;
        let hook = group.resolve(&p.config, &p.tags, &p.identity.instance_id, transition)?;
        let interval = hook
            .as_ref()
            .map_or(Duration::from_secs(20), |h| h.heartbeat_interval(&p.config));
        Ok(HookAction::begin(
            p.aws.clone(),
            self.store.clone(),
            transition,
            hook,
            interval,
        ))
    }

    /// The terminate action opens with the drain, so its heartbeats cover the whole drain.
    async fn open_terminate_action(&self, life: &mut Life) -> Result<()> {
        if life.terminate.is_some() {
            return Ok(());
        }
        let Some(p) = life.prepared.as_ref() else {
            return Ok(());
        };
        life.terminate = Some(
            self.begin_action(p, &mut life.hooks, Transition::Terminate)
                .await?,
        );
        Ok(())
    }

    async fn drain(&self, life: &mut Life) -> Result<()> {
        if life.prepared.is_none() {
            // Resumed mid-drain after a restart: the config phase gives clients and identity.
            life.prepared = Some(self.prepare_again().await?);
        }
        let trigger = life
            .trigger
            .clone()
            .unwrap_or_else(|| match self.drain_cause(life) {
                Cause::Lifecycle => Trigger::Lifecycle,
                Cause::Spot => Trigger::Spot {
                    action: "terminate".into(),
                    time: None,
                },
                Cause::Rebalance => Trigger::Rebalance,
                Cause::Operator => Trigger::Manual,
            });
        if trigger.cause() == Cause::Lifecycle {
            self.open_terminate_action(life).await?;
        }
        let p = life.prepared.as_ref().expect("prepared above");
        let managed = match &life.hooks {
            Some(h) => h.managed_draining(),
            None => false,
        };
        let drainer = Drainer {
            container_scope: &self.container_scope,
            config: &p.config,
            aws: &p.aws,
            intro: &self.intro,
            store: &self.store,
            cluster: p.env.cluster(),
            managed_draining: managed,
        };
        phase(Some(&self.store), "drain", async {
            drainer.run(&trigger).await?;
            let d = self.store.snapshot().drain;
            Ok((
                (),
                d.map(|d| format!("{} ({})", d.state.as_str(), d.trigger)),
            ))
        })
        .await?;
        life.drained_at = Some(Instant::now());
        self.record_if_drain_deadline(&p.aws, &p.identity).await;
        Ok(())
    }

    async fn complete_terminate(&self, life: &mut Life) -> Result<()> {
        if life.terminate.is_none() {
            self.open_terminate_action(life).await?;
        }
        let Some(action) = life.terminate.take() else {
            return Ok(());
        };
        let deadline_hit = self
            .store
            .snapshot()
            .drain
            .is_some_and(|d| d.state == DrainState::Deadline);
        let (result, cause) = match (&life.prepared, deadline_hit) {
            (Some(p), true) => (
                HookResult::from(p.config.drain.result_on_deadline),
                Some("drain deadline reached with tasks still running".to_string()),
            ),
            _ => (HookResult::Continue, None),
        };
        phase(Some(&self.store), "terminate-hook", async {
            let r = action.complete(result, cause, life.drained_at).await?;
            Ok(((), Some(format!("{} {}", r.result, r.hook))))
        })
        .await?;
        crate::util::notify::status("drained; terminate hook completed");
        Ok(())
    }

    /// `ecs-boot undrain`: ACTIVE again (only if ecs-boot set DRAINING), system containers back.
    async fn reactivate(&self, life: &mut Life) -> Result<()> {
        let Some(p) = life.prepared.as_ref() else {
            return Ok(());
        };
        let drainer = Drainer {
            container_scope: &self.container_scope,
            config: &p.config,
            aws: &p.aws,
            intro: &self.intro,
            store: &self.store,
            cluster: p.env.cluster(),
            managed_draining: false,
        };
        phase(Some(&self.store), "undrain", async {
            let detail = drainer.reactivate().await?;
            Ok(((), Some(detail)))
        })
        .await?;
        life.trigger = None;
        phase(
            Some(&self.store),
            "containers",
            self.reconcile_containers(p),
        )
        .await
    }

    /// SIGTERM in service: systemd has already stopped ecs.service (ordered after us), so only
    /// what needs no agent is done: if termination is under way, drain as far as time allows.
    async fn stop_best_effort(&self, life: &mut Life) {
        let Some(p) = life.prepared.as_ref() else {
            return;
        };
        let Some(trigger) = drain::check_once(&self.imds, &p.config).await else {
            return;
        };
        if self
            .store
            .snapshot()
            .hook_done(Transition::Terminate)
            .is_some()
        {
            return;
        }
        tracing::info!(
            "stopping while termination is under way: draining as far as the stop timeout allows"
        );
        let cause = trigger.cause();
        life.trigger = Some(trigger);
        let work = async {
            self.drain(life).await?;
            if cause == Cause::Lifecycle {
                self.complete_terminate(life).await?;
            }
            Ok::<(), Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(60), work).await {
            Err(_) => tracing::warn!("best-effort drain did not finish before the stop timeout"),
            Ok(Err(e)) => tracing::warn!(error = %e, "best-effort drain failed"),
            Ok(Ok(())) => {}
        }
    }

    /// The config phase once more (after a restart mid-drain, or a reload): sources re-read, the
    /// gate left as it is.
    async fn prepare_again(&self) -> Result<Prepared> {
        let mut known = Known::default();
        boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            Some(&self.store),
            &mut known,
        )
        .await
    }

    /// SIGHUP: re-read the config sources and credentials, re-render ecs.config (the gate opens
    /// on the new file unless warmed), re-reconcile system containers.
    async fn reload(&mut self, life: &mut Life) -> Result<()> {
        tracing::info!("reloading");
        self.config = Config::load(&self.config_path)?;
        let p = self.prepare_again().await?;
        boot::write(&p, &self.paths, &self.store).await?;
        if self.store.snapshot().stage != Some(Stage::Warmed) {
            boot::open_gate(&p, &self.paths)?;
            phase(
                Some(&self.store),
                "containers",
                self.reconcile_containers(&p),
            )
            .await?;
        }
        life.prepared = Some(p);
        Ok(())
    }

    /// ABANDON the launch hook with the cause, unless `on_failure = "leave"`.
    async fn abandon_launch(&self, life: &mut Life) {
        let cause = life
            .failure
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "boot failed".into());
        if self.config.lifecycle.on_failure == OnFailure::Leave {
            tracing::warn!("boot failed; leaving the launch hook pending (on_failure = \"leave\")");
            return;
        }
        if self
            .store
            .snapshot()
            .hook_done(Transition::Launch)
            .is_some()
        {
            return;
        }
        let (Some(identity), Some(aws)) = (&life.known.identity, &life.known.aws) else {
            self.store.warn("cannot ABANDON the launch hook: the instance identity is unknown (IMDS failed); the hook will time out to its DefaultResult".into());
            return;
        };
        let tags = life.known.tags.clone().unwrap_or_default();
        let config = life.prepared.as_ref().map_or(&self.config, |p| &p.config);
        self.record_evidence(crate::evidence::Trigger::Abandon, aws, identity)
            .await;
        let res = phase(Some(&self.store), "launch-hook", async {
            let hooks = match &life.hooks {
                Some(h) => h.clone(),
                None => GroupHooks::discover(aws, &tags, &identity.instance_id).await?,
            };
            let hook = hooks.resolve(config, &tags, &identity.instance_id, Transition::Launch)?;
            let action = HookAction::begin(
                aws.clone(),
                self.store.clone(),
                Transition::Launch,
                hook,
                Duration::from_secs(3600),
            );
            let r = action
                .complete(HookResult::Abandon, Some(cause.clone()), None)
                .await?;
            Ok((
                (),
                Some(match r.result {
                    HookResult::Skipped => "no launch hook to abandon".to_string(),
                    _ => format!("ABANDON {} on {}: {cause}", r.hook, r.asg),
                }),
            ))
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot abandon the launch hook");
        }
    }
}

/// The agent, what its life has learned and its signals: what the loop in machine.rs drives.
struct Running<'a> {
    agent: &'a mut Agent,
    life: Life,
    signals: Signals,
}

impl machine::Driven for Running<'_> {
    async fn work(&mut self, stage: Stage) -> Event {
        self.agent
            .work(stage, &mut self.life, &mut self.signals)
            .await
    }

    async fn perform(&mut self, action: Action) -> Result<()> {
        self.agent.perform(action, &mut self.life).await
    }

    fn enter(&mut self, stage: Stage) {
        self.agent.store.set_stage(stage);
    }

    fn take_failure(&mut self) -> Option<Error> {
        self.life.failure.take()
    }

    fn set_failure(&mut self, e: Error) {
        self.life.failure = Some(e);
    }
}

/// The error for main: the message, which already names field and source, and the hint.
pub fn describe(e: &Error) -> String {
    format!("{e}\n  hint: {}", e.hint())
}
