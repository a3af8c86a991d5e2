//! The signals `ecs-boot run` answers: SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 drains
//! (`ecs-boot drain`), SIGUSR2 undrains (`ecs-boot undrain`).

use crate::error::{Error, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub(super) struct Signals {
    pub(super) term: Signal,
    pub(super) int: Signal,
    pub(super) hup: Signal,
    /// `ecs-boot drain`: an operator asks for a drain now.
    pub(super) usr1: Signal,
    /// `ecs-boot undrain`: an operator returns a drained instance to service.
    pub(super) usr2: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Signals> {
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

    pub(super) async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}
