//! `ecs-boot run`: the agent systemd starts at boot. Phases in order; each one recorded in the
//! state file for `status`. READY=1 goes to systemd only once ecs.config is on disk.

use crate::boot::{self, Prepared};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::imds::Imds;
use crate::paths::Paths;
use crate::state::{Outcome, StateStore};
use tokio::signal::unix::{SignalKind, signal};

pub struct Agent {
    pub config: Config,
    pub paths: Paths,
    pub imds: Imds,
    pub store: StateStore,
}

impl Agent {
    pub fn new(config: Config, paths: Paths) -> Agent {
        let store = StateStore::open(paths.state_file());
        let imds = Imds::new(config.imds.timeout);
        Agent {
            config,
            paths,
            imds,
            store,
        }
    }

    /// Boots, then stays up until SIGTERM. A failed boot exits non-zero after recording the cause.
    pub async fn run(self) -> Result<()> {
        let prepared = match self.boot().await {
            Ok(p) => p,
            Err(e) => {
                self.store.update(|s| s.outcome = Outcome::Failed);
                return Err(e);
            }
        };
        tracing::info!(INSTANCE_ID = %prepared.identity.instance_id, cluster = prepared.env.cluster(), "boot complete");
        self.store.update(|s| {
            if s.outcome == Outcome::Booting {
                s.outcome = Outcome::InService
            }
        });
        crate::notify::status("in service");
        self.wait_for_stop().await;
        Ok(())
    }

    async fn boot(&self) -> Result<Prepared> {
        let prepared =
            boot::prepare(&self.config, &self.paths, &self.imds, Some(&self.store)).await?;
        boot::write(&prepared, &self.paths, &self.store).await?;
        crate::notify::ready("ecs.config written");
        Ok(prepared)
    }

    async fn wait_for_stop(&self) {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        crate::notify::stopping();
        tracing::info!("stopping");
    }
}

/// Converts a phase error for main: keeps the message, which already names field and source.
pub fn describe(e: &Error) -> String {
    format!("{e}\n  hint: {}", e.hint())
}
