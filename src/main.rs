//! `ecs-boot`, the agent on the instance: parses the command line and reports errors; the work is
//! in the library (src/lib.rs).

// The lifecycle loop's future nests every stage's work; computing its layout needs more than the
// default query depth in release builds.
#![recursion_limit = "256"]

use clap::Parser;
use ecs_boot::{cli, lifecycle, util};

fn main() {
    let cli = cli::Cli::parse();
    util::proxy::keep_local_endpoints_direct();
    util::logging::init();
    let runtime = util::runtime::single_threaded("ecs-boot");
    match runtime.block_on(cli.run()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            tracing::error!(error = %e, hint = %e.hint(), "ecs-boot failed");
            eprintln!("ecs-boot: {}", lifecycle::run::describe(&e));
            std::process::exit(1);
        }
    }
}
