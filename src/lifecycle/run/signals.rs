//! The signals `ecs-boot run` answers: SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 drains
//! (`ecs-boot drain`), SIGUSR2 undrains (`ecs-boot undrain`).

use crate::error::{Error, Result};
use crate::lifecycle::watch::{Accept, Request, Requests};
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
        self.next(Accept::STOP_ONLY).await;
    }
}

impl Requests for Signals {
    async fn next(&mut self, accept: Accept) -> Request {
        let Signals {
            term,
            int,
            hup,
            usr1,
            usr2,
        } = self;
        tokio::select! {
            _ = usr1.recv(), if accept.drain => Request::Drain,
            _ = usr2.recv(), if accept.undrain => Request::Undrain,
            Some(_) = hup.recv(), if accept.reload => Request::Reload,
            _ = term.recv() => Request::Stop,
            _ = int.recv() => Request::Stop,
        }
    }
}
