//! systemd notifications. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use sd_notify::NotifyState;

/// `READY=1`: ecs.config is on disk, so units ordered after us (ecs.service) may start.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading configuration"),
    ]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `EXTEND_TIMEOUT_USEC`: the start may take `by` longer than the unit's TimeoutStartSec from
/// now (bootstrap containers run before READY=1, each with its own timeout).
pub fn extend_timeout(by: std::time::Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}
