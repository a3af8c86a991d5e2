//! The agent's command line: data, not control flow. Each subcommand is a struct with `run`.
//! Operator-only commands that span instances live in the `ecs-boot-fleet` binary instead.

pub mod cloudwatch_agent;
pub mod containers;
pub mod docker_proxy;
pub mod ops;
pub mod preflight;
pub mod status;

use crate::config::Config;
use crate::util::paths::Paths;
use crate::{ecs_config, lifecycle::boot, status::gate, util::version};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ecs-boot", version = version::LONG, about = "Brings an ECS container instance from power-on to in service, and out again without losing a task")]
pub struct Cli {
    /// Config file [default: <root>/etc/ecs-boot/config.toml; a missing file means defaults]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix for every host path ecs-boot reads or writes (tests, chroots)
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the agent (what systemd starts at boot)
    Run(RunArgs),
    /// Print the ecs.config `run` would write, from the same live sources; secrets masked
    Render(RenderArgs),
    /// Validate a config file offline
    CheckConfig(CheckConfigArgs),
    /// Show phases, timings, results and errors of this instance's boot
    Status(crate::cli::status::StatusArgs),
    /// Exit 0 only if this boot wrote a complete ecs.config (ExecStartPre of ecs.service)
    Gate,
    /// Ask the running agent to drain this instance now (as for a scale-in)
    Drain(crate::cli::ops::DrainArgs),
    /// Return a drained instance (drained without a termination) to service
    Undrain,
    /// Complete or abandon this instance's lifecycle action by hand
    Hook(crate::cli::ops::HookArgs),
    /// Reconcile or stop the system containers ([[container]]) on their own
    Containers(crate::cli::containers::ContainersArgs),
    /// List the tags this AMI's trust rules would refuse (given tags, or a group's, live)
    Preflight(crate::cli::preflight::PreflightArgs),
    /// Write the Docker engine's proxy settings from [proxy] (ecs-boot-docker-proxy.service)
    #[command(hide = true)]
    DockerProxy,
    /// Write the CloudWatch agent's config from [logs] and [metrics]; exit 1 when it is off
    /// (ecs-boot-cloudwatch-agent.service)
    #[command(hide = true)]
    CloudwatchAgent,
    /// Print shell completions
    Completions(CompletionsArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// Label value that marks system containers as this agent's (tests sharing one engine)
    #[arg(long, hide = true, default_value = crate::containers::DEFAULT_SCOPE)]
    pub container_scope: String,
}

#[derive(Args)]
pub struct RenderArgs {
    /// Print secret values instead of their fingerprints
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Args)]
pub struct CheckConfigArgs {
    /// The file to check [default: --config]
    pub file: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// What `main` should exit with: 0, or the status code a command chose.
pub type ExitCode = i32;

impl Cli {
    fn paths(&self) -> Paths {
        Paths::new(&self.root)
    }

    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| self.paths().default_config())
    }

    pub async fn run(self) -> crate::error::Result<ExitCode> {
        let paths = self.paths();
        let config_path = self.config_path();
        match self.command {
            Command::Run(args) => {
                let mut agent = crate::lifecycle::run::Agent::new(
                    Config::load(&config_path)?,
                    config_path,
                    paths,
                );
                agent.container_scope.label = args.container_scope;
                // Boxed: the agent's future is deep (every stage's work inlined), and its layout
                // would otherwise nest into every command's future.
                Box::pin(agent.run()).await?;
                Ok(0)
            }
            Command::Render(args) => {
                let config = Config::load(&config_path)?;
                let imds = crate::sources::imds::Imds::new(config.imds.timeout);
                let prepared = boot::prepare(
                    &config,
                    &paths,
                    &imds,
                    &boot::ConnectAws,
                    None,
                    &mut boot::Known::default(),
                )
                .await?;
                let text = &prepared.rendered.text;
                if args.show_secrets {
                    print!("{text}");
                } else {
                    print!("{}", ecs_config::mask(text, &prepared.env));
                }
                Ok(0)
            }
            Command::CheckConfig(args) => {
                let path = args.file.clone().unwrap_or(config_path);
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    crate::config::ConfigError::Read {
                        path: path.clone(),
                        source,
                    }
                })?;
                let config = Config::parse(&text, &path.display().to_string())?;
                println!(
                    "{}: ok ({} system containers)",
                    path.display(),
                    config.containers.len()
                );
                Ok(0)
            }
            Command::Status(args) => {
                // status must answer even when the config is broken: fall back to defaults.
                let config = Config::load(&config_path).unwrap_or_default();
                Ok(crate::cli::status::run(args, &config, &paths).await)
            }
            Command::Gate => match gate::check(&paths) {
                Ok(msg) => {
                    eprintln!("ecs-boot gate: {msg}");
                    Ok(0)
                }
                Err(msg) => {
                    eprintln!("ecs-boot gate: refusing to start the ECS agent: {msg}");
                    Ok(1)
                }
            },
            Command::Drain(args) => crate::cli::ops::drain(&paths, args).await,
            Command::Undrain => crate::cli::ops::undrain(&paths).await,
            Command::Hook(args) => crate::cli::ops::hook(&Config::load(&config_path)?, args).await,
            Command::Containers(args) => args.run(Config::load(&config_path)?, &paths).await,
            Command::Preflight(args) => args.run(&Config::load(&config_path)?).await,
            Command::DockerProxy => {
                crate::cli::docker_proxy::run(&Config::load(&config_path)?, &paths)
            }
            Command::CloudwatchAgent => Ok(crate::cli::cloudwatch_agent::run(&config_path, &paths)),
            Command::Completions(args) => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(args.shell, &mut cmd, "ecs-boot", &mut std::io::stdout());
                Ok(0)
            }
        }
    }
}
