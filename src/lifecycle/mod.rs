//! The life of an instance: boot (config phase), launch (containers, registration, launch hook),
//! in service (watching for termination), drain, terminate hook. `run` drives it.

pub mod boot;
pub mod drain;
mod evidence;
pub mod handlers;
mod health;
pub mod hook;
pub mod launch;
pub mod machine;
mod metrics;
pub mod notice;
pub mod ports;
mod readiness;
pub mod run;
pub mod watch;
