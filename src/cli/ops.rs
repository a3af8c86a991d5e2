//! Operator commands for use over SSM: `ecs-boot drain [--wait]` asks the running agent to drain
//! now; `ecs-boot hook complete|abandon` completes this instance's lifecycle action by hand.

use crate::config::Config;
use crate::config::tags;
use crate::error::{Error, Result};
use crate::lifecycle::hook::{self, Transition};
use crate::sources::aws::Aws;
use crate::sources::imds::Imds;
use crate::status::state::{Outcome, State};
use crate::util::paths::Paths;
use clap::{Args, ValueEnum};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

#[derive(Args)]
pub struct DrainArgs {
    /// Wait until the drain ends and the terminate hook is completed
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Signals the running agent (SIGUSR1): it drains exactly as for a scale-in, with its
/// heartbeats, deadline and terminate-hook completion.
pub async fn drain(paths: &Paths, args: DrainArgs) -> Result<i32> {
    let state = State::read(&paths.state_file())
        .map_err(|e| Error::Other(format!("no ecs-boot state ({e}); is ecs-boot running?")))?;
    if !crate::status::report::pid_is_ecs_boot(state.pid) {
        return Err(Error::Other(format!(
            "ecs-boot run (pid {}) is not running: `systemctl start ecs-boot` first",
            state.pid
        )));
    }
    if state.outcome != Outcome::InService {
        return Err(Error::Other(format!(
            "the instance is {}, not in service: nothing to drain now",
            state.outcome.as_str()
        )));
    }
    kill(Pid::from_raw(state.pid as i32), Signal::SIGUSR1)
        .map_err(|e| Error::Other(format!("cannot signal pid {}: {e}", state.pid)))?;
    println!("drain requested from ecs-boot (pid {})", state.pid);
    if !args.wait {
        return Ok(0);
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = State::read(&paths.state_file()).map_err(|e| Error::Other(e.to_string()))?;
        if let Some(d) = &s.drain {
            eprint!("\rdraining: {} tasks left ({})   ", d.tasks_left, d.state);
        }
        match s.outcome {
            Outcome::Terminated => {
                eprintln!();
                let d = s.drain.map(|d| d.state).unwrap_or_default();
                println!("drain finished: {d}");
                return Ok(if d == "drained" { 0 } else { 1 });
            }
            Outcome::Failed => return Ok(1),
            _ if tokio::time::Instant::now() >= deadline => {
                eprintln!();
                println!("still draining after {}s", args.timeout.as_secs());
                return Ok(3);
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HookAction {
    Complete,
    Abandon,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HookTransition {
    Launch,
    Terminate,
}

#[derive(Args)]
pub struct HookArgs {
    /// `complete` sends CONTINUE, `abandon` sends ABANDON
    pub action: HookAction,
    #[arg(long, value_enum, default_value = "launch")]
    pub transition: HookTransition,
}

/// Finds this instance's hook as `run` does and completes it. Needs only IMDS and Auto Scaling,
/// so it works on an instance whose credentials or config are broken.
pub async fn hook(config: &Config, args: HookArgs) -> Result<i32> {
    let imds = Imds::new(config.imds.timeout);
    let identity = imds.identity().await?;
    let aws = Aws::load(&identity.region).await;
    let tags = match imds.tags().await? {
        Some(raw) => tags::parse(&raw)?,
        None => Default::default(),
    };
    let transition = match args.transition {
        HookTransition::Launch => Transition::Launch,
        HookTransition::Terminate => Transition::Terminate,
    };
    let result = match args.action {
        HookAction::Complete => "CONTINUE",
        HookAction::Abandon => "ABANDON",
    };
    let Some(h) = hook::discover(&aws, config, &tags, &identity.instance_id, transition).await?
    else {
        println!(
            "no {} lifecycle hook for {}",
            transition.label(),
            identity.instance_id
        );
        return Ok(0);
    };
    let already = hook::complete(&aws, &h, result).await?;
    if already {
        println!(
            "{} on {}/{}: no active lifecycle action (already completed or timed out)",
            result, h.asg, h.name
        );
    } else {
        println!(
            "{result} sent for {} on {}/{}",
            h.instance_id, h.asg, h.name
        );
    }
    Ok(0)
}
