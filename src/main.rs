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
mod launch;
mod lifecycle;
mod location;
mod logging;
mod notify;
mod ops;
mod paths;
#[cfg(test)]
mod proptests;
mod proxy;
mod registry_auth;
mod retry;
mod run;
mod state;
mod status;
mod status_cmd;
mod tags;
mod version;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    proxy::keep_local_endpoints_direct();
    logging::init();
    // One thread: the agent mostly waits, and a small idle footprint matters on every instance.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ecs-boot: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            tracing::error!(error = %e, hint = %e.hint(), "ecs-boot failed");
            eprintln!("ecs-boot: {}", run::describe(&e));
            std::process::exit(1);
        }
    }
}
