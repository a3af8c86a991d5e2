//! `ecs-boot run`: the agent systemd starts at boot. Phases in order, each recorded in the state
//! file for `status`: config (READY=1 to systemd once ecs.config is on disk), system containers
//! and the ECS agent's registration (in parallel), the launch hook; then it watches for
//! termination, drains, and completes the terminate hook.

use crate::boot::{self, Known, Prepared, phase};
use crate::config::{Config, OnFailure};
use crate::drain::{self, Drainer, Trigger};
use crate::ecs_agent::{self, Introspection};
use crate::error::{Error, Result};
use crate::imds::Imds;
use crate::lifecycle::{self, Heartbeats, Hook, Transition};
use crate::paths::Paths;
use crate::state::{Outcome, PhaseStatus, Registration, StateStore};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Agent {
    /// The baked config; the effective one (with a tag-named fragment) is `Prepared::config`.
    pub config: Config,
    pub config_path: std::path::PathBuf,
    pub paths: Paths,
    pub imds: Imds,
    pub store: StateStore,
    pub intro: Introspection,
    /// The label value marking system containers as ours.
    pub container_scope: String,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    /// `ecs-boot drain`: an operator asks for a drain now.
    usr1: Signal,
}

/// SIGTERM or SIGINT.
struct Terminate<'a> {
    term: &'a mut Signal,
    int: &'a mut Signal,
}

impl Terminate<'_> {
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
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
        let store = StateStore::open(paths.state_file());
        let imds = Imds::new(config.imds.timeout);
        let intro = Introspection::new(&config.ecs_agent.introspection_url);
        Agent {
            config,
            config_path,
            paths,
            imds,
            store,
            intro,
            container_scope: crate::containers::DEFAULT_SCOPE.to_string(),
        }
    }

    /// Boots, then watches for termination until SIGTERM. A failed boot records the cause,
    /// abandons the launch hook (unless `on_failure = "leave"`) and exits non-zero.
    pub async fn run(mut self) -> Result<()> {
        let mut signals = Signals::install()?;
        let mut known = Known::default();
        let booted = tokio::select! {
            r = self.boot(&mut known) => r,
            _ = signals.stop() => {
                tracing::info!("stopped during boot");
                crate::notify::stopping();
                return Ok(());
            }
        };
        let prepared = match booted {
            Ok(p) => p,
            Err(e) => {
                self.store.update(|s| s.outcome = Outcome::Failed);
                self.abandon_launch(&known, &e).await;
                return Err(e);
            }
        };
        tracing::info!(INSTANCE_ID = %prepared.identity.instance_id, cluster = prepared.env.cluster(), "boot complete");
        self.serve(prepared, &mut signals).await
    }

    async fn boot(&self, known: &mut Known) -> Result<Prepared> {
        let prepared = boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            Some(&self.store),
            known,
        )
        .await?;
        boot::write(&prepared, &self.paths, &self.store).await?;
        crate::notify::ready("ecs.config written; waiting for the ECS agent");

        if let Some(state) = self.imds.target_lifecycle_state().await.ok().flatten()
            && state.starts_with("Warmed:")
        {
            self.park_in_warm_pool(&prepared, &state).await?;
        }
        self.launch(&prepared).await?;
        self.store.update(|s| s.outcome = Outcome::InService);
        crate::notify::status("in service");
        Ok(prepared)
    }

    /// Containers and registration run side by side; the launch hook is completed once both are
    /// done. Heartbeats keep the hook alive meanwhile.
    async fn launch(&self, p: &Prepared) -> Result<()> {
        let hook = self.launch_hook(p, "launch").await?;
        let beats = hook
            .as_ref()
            .map(|h| Heartbeats::start(p.aws.clone(), h.clone(), h.heartbeat_interval(&p.config)));

        let containers = phase(
            Some(&self.store),
            "containers",
            self.reconcile_containers(p),
        );
        let registration = phase(Some(&self.store), "registration", async {
            let (meta, arn) = ecs_agent::wait_registered(
                &self.intro,
                p.env.cluster(),
                p.config.ecs_agent.registration_timeout,
            )
            .await?;
            let registered = Instant::now();
            let detail = format!("{arn} in {}", meta.cluster);
            self.store.update(|s| {
                s.registration = Some(Registration {
                    container_instance_arn: arn,
                    cluster: meta.cluster.clone(),
                    agent_version: meta.version.clone(),
                    registered_at: OffsetDateTime::now_utc(),
                })
            });
            Ok((registered, Some(detail)))
        });
        let ((), registered) = tokio::try_join!(containers, registration)?;

        if let Some(h) = hook {
            let sent = beats.as_ref().map(Heartbeats::sent).unwrap_or(0);
            drop(beats);
            phase(Some(&self.store), "launch-hook", async {
                let r = lifecycle::complete_once(
                    &p.aws,
                    &self.store,
                    "launch",
                    &h,
                    "CONTINUE",
                    None,
                    Some(registered),
                    sent,
                )
                .await?;
                Ok((
                    (),
                    Some(format!(
                        "{} {} on {}{}",
                        r.result,
                        r.hook,
                        r.asg,
                        if r.already_done {
                            " (already ended)"
                        } else {
                            ""
                        }
                    )),
                ))
            })
            .await?;
        }
        Ok(())
    }

    /// The launch hook to complete for `key`, or `None` (already completed, or none exists:
    /// recorded so status says why).
    async fn launch_hook(&self, p: &Prepared, key: &str) -> Result<Option<Hook>> {
        if self.store.snapshot().hook_done(key).is_some() {
            return Ok(None);
        }
        let found = phase(Some(&self.store), "lifecycle-discovery", async {
            let hook = lifecycle::discover(
                &p.aws,
                &p.config,
                &p.tags,
                &p.identity.instance_id,
                Transition::Launch,
            )
            .await?;
            let detail = hook
                .as_ref()
                .map(|h| format!("{} on {}", h.name, h.asg))
                .unwrap_or_else(|| {
                    "no launch hook (not in an Auto Scaling group, or the group has none)".into()
                });
            Ok((hook, Some(detail)))
        })
        .await?;
        if found.is_none() {
            lifecycle::record_skipped(
                &self.store,
                key,
                "no launch lifecycle hook for this instance",
            );
        }
        Ok(found)
    }

    /// Warm pool: the agent will not register while warmed, so complete the pool's launch hook
    /// at once; if the instance stays running in the pool, wait until it leaves for service.
    async fn park_in_warm_pool(&self, p: &Prepared, state: &str) -> Result<()> {
        if let Some(h) = self.launch_hook(p, "launch-warmed").await? {
            phase(Some(&self.store), "warm-pool-hook", async {
                let r = lifecycle::complete_once(
                    &p.aws,
                    &self.store,
                    "launch-warmed",
                    &h,
                    "CONTINUE",
                    None,
                    None,
                    0,
                )
                .await?;
                Ok(((), Some(format!("{} {} ({state})", r.result, r.hook))))
            })
            .await?;
        }
        self.store.update(|s| s.outcome = Outcome::Warmed);
        crate::notify::status(&format!("parked in the warm pool ({state})"));
        loop {
            tokio::time::sleep(crate::retry::jitter(p.config.drain.poll_interval)).await;
            if let Ok(Some(s)) = self.imds.target_lifecycle_state().await
                && s == "InService"
            {
                self.store.update(|s| s.outcome = Outcome::Booting);
                return Ok(());
            }
        }
    }

    async fn abandon_launch(&self, known: &Known, cause: &Error) {
        if self.config.lifecycle.on_failure == OnFailure::Leave {
            tracing::warn!("boot failed; leaving the launch hook pending (on_failure = \"leave\")");
            return;
        }
        if self.store.snapshot().hook_done("launch").is_some() {
            return;
        }
        let (Some(identity), Some(aws)) = (&known.identity, &known.aws) else {
            self.store.warn("cannot ABANDON the launch hook: the instance identity is unknown (IMDS failed); the hook will time out to its DefaultResult".into());
            return;
        };
        let tags = known.tags.clone().unwrap_or_default();
        let res = phase(Some(&self.store), "launch-hook", async {
            match lifecycle::discover(
                aws,
                &self.config,
                &tags,
                &identity.instance_id,
                Transition::Launch,
            )
            .await?
            {
                Some(h) => {
                    let r = lifecycle::complete_once(
                        aws,
                        &self.store,
                        "launch",
                        &h,
                        "ABANDON",
                        Some(cause.to_string()),
                        None,
                        0,
                    )
                    .await?;
                    Ok((
                        (),
                        Some(format!("ABANDON {} on {}: {}", r.hook, r.asg, cause)),
                    ))
                }
                None => Ok(((), Some("no launch hook to abandon".into()))),
            }
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot abandon the launch hook");
        }
    }

    /// In service: watch for termination and drain; reload on SIGHUP; stop on SIGTERM.
    async fn serve(&mut self, mut prepared: Prepared, signals: &mut Signals) -> Result<()> {
        if !prepared.config.drain.enabled {
            self.store.begin("termination-watch");
            self.store.end(
                "termination-watch",
                PhaseStatus::Skipped,
                Some("[drain] enabled = false".into()),
                None,
            );
        }
        // A drain recorded before a restart resumes at once.
        let resumed = self
            .store
            .snapshot()
            .drain
            .filter(|d| d.state == "draining")
            .map(|_| Trigger::Manual);
        let Signals {
            term,
            int,
            hup,
            usr1,
        } = signals;
        let mut term = Terminate { term, int };
        loop {
            let trigger = async {
                match &resumed {
                    Some(t) => t.clone(),
                    None if prepared.config.drain.enabled => tokio::select! {
                        t = drain::watch(&self.imds, &prepared.config) => t,
                        _ = usr1.recv() => Trigger::Manual,
                    },
                    None => {
                        usr1.recv().await;
                        Trigger::Manual
                    }
                }
            };
            tokio::select! {
                t = trigger => {
                    self.drain(&prepared, t).await?;
                    term.recv().await;
                    break;
                }
                Some(_) = hup.recv() => {
                    crate::notify::reloading();
                    match self.reload().await {
                        Ok(p) => prepared = p,
                        Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
                    }
                    crate::notify::ready("reloaded");
                }
                _ = term.recv() => {
                    self.stop_best_effort(&prepared).await;
                    break;
                }
            }
        }
        crate::notify::stopping();
        tracing::info!("stopping");
        Ok(())
    }

    async fn drain(&self, p: &Prepared, trigger: Trigger) -> Result<()> {
        let drainer = Drainer {
            container_scope: &self.container_scope,
            config: &p.config,
            aws: &p.aws,
            intro: &self.intro,
            store: &self.store,
            tags: &p.tags,
            instance_id: &p.identity.instance_id,
            cluster: p.env.cluster(),
        };
        phase(Some(&self.store), "drain", async {
            drainer.run(trigger).await?;
            let d = self.store.snapshot().drain;
            Ok(((), d.map(|d| format!("{} ({})", d.state, d.trigger))))
        })
        .await
    }

    /// SIGTERM at shutdown: systemd has already stopped ecs.service (ordered after us), so only
    /// what needs no agent is done: if termination is under way, finish the drain bookkeeping.
    async fn stop_best_effort(&self, p: &Prepared) {
        let Some(trigger) = drain::check_once(&self.imds, &p.config).await else {
            return;
        };
        if self.store.snapshot().hook_done("terminate").is_some() {
            return;
        }
        tracing::info!(
            "stopping while termination is under way: draining as far as the stop timeout allows"
        );
        if tokio::time::timeout(Duration::from_secs(60), self.drain(p, trigger))
            .await
            .is_err()
        {
            tracing::warn!("best-effort drain did not finish before the stop timeout");
        }
    }

    /// SIGHUP: re-read the config sources and credentials, re-render ecs.config, re-reconcile.
    async fn reload(&mut self) -> Result<Prepared> {
        tracing::info!("reloading");
        self.config = Config::load(&self.config_path)?;
        let mut known = Known::default();
        let p = boot::prepare(
            &self.config,
            &self.paths,
            &self.imds,
            Some(&self.store),
            &mut known,
        )
        .await?;
        boot::write(&p, &self.paths, &self.store).await?;
        phase(
            Some(&self.store),
            "containers",
            self.reconcile_containers(&p),
        )
        .await?;
        Ok(p)
    }

    /// Reconciles system containers and records every one of them in status, failed or not.
    async fn reconcile_containers(&self, p: &Prepared) -> Result<((), Option<String>)> {
        let report = crate::containers::reconcile_report(
            &p.config,
            p.auth.as_ref(),
            &p.aws,
            &self.container_scope,
        )
        .await;
        let detail = format!("{} system containers", report.records.len());
        let failed = report.error();
        self.store.update(|s| s.containers = report.records);
        match failed {
            Some(e) => Err(e),
            None => Ok(((), Some(detail))),
        }
    }
}

/// The error for main: the message, which already names field and source, and the hint.
pub fn describe(e: &Error) -> String {
    format!("{e}\n  hint: {}", e.hint())
}
