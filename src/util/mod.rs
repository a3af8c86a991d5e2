//! Small shared pieces with no knowledge of ECS: host paths under `--root`, the atomic file writer,
//! the clock, terminal escaping, bounded retries, the async runtime, logging set-up, systemd notification, proxy
//! environment, version string, handing the boot path's code back to the kernel.

pub mod atomic_file;
#[cfg(test)]
pub mod call_log;
pub mod clock;
pub mod escape;
pub mod logging;
pub mod notify;
pub mod pageout;
pub mod paths;
pub mod proxy;
pub mod retry;
pub mod runtime;
pub mod version;
