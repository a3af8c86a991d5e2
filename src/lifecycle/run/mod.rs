//! `ecs-boot run`: the agent systemd starts at boot. One loop drives the instance's life through
//! the table in machine/: the current stage's work yields the next event (a phase done or
//! failed, a termination notice, a signal), the table gives the next stage and the action, the
//! action is performed, and the stage is persisted so a restart resumes from it.

mod setup;
mod signals;
mod stages;
mod terminate;
mod watch;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lifecycle::boot::{Known, Prepared};
use crate::lifecycle::drain::Trigger;
use crate::lifecycle::hook::{GroupHooks, HookAction};
use crate::lifecycle::machine::{self, Action, Event, Stage};
use crate::sources::aws::Aws;
use crate::sources::ecs_agent::Introspection;
use crate::sources::imds::Imds;
use crate::status::state::StateStore;
use crate::util::paths::Paths;
use signals::Signals;
use std::time::Instant;

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
    /// In service: the essential containers' watch and `ecs-boot.ready` (health.rs).
    readiness: Option<crate::lifecycle::health::Readiness>,
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
}

/// The agent, what its life has learned and its signals: what the loop in machine/ drives.
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
