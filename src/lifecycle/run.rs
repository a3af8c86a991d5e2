//! `ecs-boot run`: the agent systemd starts at boot. Phases in order, each recorded in the state
//! file for `status`: config (READY=1 to systemd once ecs.config is on disk), then the launch
//! (launch.rs: system containers and registration in parallel, the launch hook); then it watches
//! for termination, drains, and completes the terminate hook.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lifecycle::boot::{self, Known, Prepared, phase};
use crate::lifecycle::drain::{self, Drainer, Trigger};
use crate::sources::ecs_agent::Introspection;
use crate::sources::imds::Imds;
use crate::status::state::{Outcome, PhaseStatus, StateStore};
use crate::util::paths::Paths;
use std::time::Duration;
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
                crate::util::notify::stopping();
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
        crate::util::notify::ready("ecs.config written; waiting for the ECS agent");

        if let Some(state) = self.imds.target_lifecycle_state().await.ok().flatten()
            && state.starts_with("Warmed:")
        {
            self.park_in_warm_pool(&prepared, &state).await?;
        }
        self.launch(&prepared).await?;
        self.store.update(|s| s.outcome = Outcome::InService);
        crate::util::notify::status("in service");
        Ok(prepared)
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
                    crate::util::notify::reloading();
                    match self.reload().await {
                        Ok(p) => prepared = p,
                        Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
                    }
                    crate::util::notify::ready("reloaded");
                }
                _ = term.recv() => {
                    self.stop_best_effort(&prepared).await;
                    break;
                }
            }
        }
        crate::util::notify::stopping();
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
}

/// The error for main: the message, which already names field and source, and the hint.
pub fn describe(e: &Error) -> String {
    format!("{e}\n  hint: {}", e.hint())
}
