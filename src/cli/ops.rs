//! Operator commands for use over SSM: `ecs-boot drain [--wait]` asks the running agent to drain
//! now; `ecs-boot hook complete|abandon` completes this instance's lifecycle action by hand.

use crate::config::Config;
use crate::config::tags;
use crate::error::{Error, Result};
use crate::lifecycle::hook::{Completion, GroupHooks, LifecycleApi};
use crate::sources::aws::Aws;
use crate::sources::imds::Imds;
use crate::status::state::{DrainState, HookResult, Transition};
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
    let state = running_agent(paths)?;
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
            eprint!(
                "\rdraining: {} tasks left ({})   ",
                d.tasks_left,
                d.state.as_str()
            );
            if d.state == DrainState::Drained && s.outcome == Outcome::Drained {
                // Drained without a termination: the agent now waits for one (or `undrain`).
                eprintln!();
                println!(
                    "drain finished: drained (the instance stays until terminated, or `ecs-boot undrain`)"
                );
                return Ok(0);
            }
        }
        match s.outcome {
            Outcome::Terminated => {
                eprintln!();
                let d = s.drain.map(|d| d.state);
                println!(
                    "drain finished: {}",
                    d.map_or("no drain record", DrainState::as_str)
                );
                return Ok(if d == Some(DrainState::Drained) { 0 } else { 1 });
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

/// Signals the running agent (SIGUSR2): a drained instance (operator drain, spot or rebalance
/// notice, no termination) goes back to service: ACTIVE again, system containers back.
pub async fn undrain(paths: &Paths) -> Result<i32> {
    let state = running_agent(paths)?;
    if state.outcome != Outcome::Drained {
        return Err(Error::Other(format!(
            "the instance is {}, not drained: nothing to undo (a drain for a termination cannot be undone)",
            state.outcome.as_str()
        )));
    }
    kill(Pid::from_raw(state.pid as i32), Signal::SIGUSR2)
        .map_err(|e| Error::Other(format!("cannot signal pid {}: {e}", state.pid)))?;
    println!("undrain requested from ecs-boot (pid {})", state.pid);
    Ok(0)
}

/// The running agent's state; an error when no `ecs-boot run` is there to signal.
fn running_agent(paths: &Paths) -> Result<State> {
    let state = State::read(&paths.state_file())
        .map_err(|e| Error::Other(format!("no ecs-boot state ({e}); is ecs-boot running?")))?;
    if !crate::status::report::pid_is_ecs_boot(paths, state.pid) {
        return Err(Error::Other(format!(
            "ecs-boot run (pid {}) is not running: `systemctl start ecs-boot` first",
            state.pid
        )));
    }
    Ok(state)
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
        HookAction::Complete => HookResult::Continue,
        HookAction::Abandon => HookResult::Abandon,
    };
    let hooks = GroupHooks::discover(&aws, &tags, &identity.instance_id).await?;
    let Some(h) = hooks.resolve(config, &tags, &identity.instance_id, transition)? else {
        println!(
            "no {transition} lifecycle hook for {}",
            identity.instance_id
        );
        return Ok(0);
    };
    match aws.complete(&h, result).await? {
        Completion::NoActiveAction => println!(
            "{result} on {}/{}: no active lifecycle action (already completed or timed out)",
            h.asg, h.name
        ),
        Completion::Throttled => {
            return Err(Error::aws(
                "CompleteLifecycleAction",
                &format!("{}/{} {result}", h.asg, h.name),
                "Throttling: the account's Auto Scaling rate limit refused it (not applied); run it again".into(),
            ));
        }
        Completion::Accepted => println!(
            "{result} sent for {} on {}/{}",
            h.instance_id, h.asg, h.name
        ),
    }
    Ok(0)
}
