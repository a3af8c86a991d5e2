//! ecs-boot: brings an ECS container instance from power-on to in service, and out again without
//! losing a task. `main` parses the command line and reports errors; the work is in the modules.

mod agent_env;
mod agent_vars;
mod aws;
mod boot;
mod cli;
mod config;
mod containers;
mod drain;
mod ecs_agent;
mod ecs_config;
mod error;
mod fleet;
mod gate;
mod imds;
mod lifecycle;
mod location;
mod logging;
mod notify;
mod ops;
mod paths;
mod registry_auth;
mod retry;
mod run;
mod state;
mod status;
mod tags;
mod version;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    logging::init();
    match cli.run().await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            tracing::error!(error = %e, hint = %e.hint(), "ecs-boot failed");
            eprintln!("ecs-boot: {}", run::describe(&e));
            std::process::exit(1);
        }
    }
}
