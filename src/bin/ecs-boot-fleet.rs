//! `ecs-boot-fleet`, the operator's tool for many instances at once (fleet status over SSM, AMI rollouts). It is
//! a separate binary so the agent every instance runs carries none of it; see src/fleet/.

use clap::{Parser, Subcommand};
use ecs_boot::{fleet, util};

#[derive(Parser)]
#[command(name = "ecs-boot-fleet", version = util::version::LONG, about = "Operator tools for a fleet of ecs-boot instances")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Collect `ecs-boot status --json` from many instances over SSM Run Command
    Status(fleet::FleetArgs),
    /// Roll a new AMI out to a group: numbered launch template version, instance refresh with
    /// checkpoints, each gated on the new instances' boot health; rolls back on a failed gate
    #[cfg(feature = "rollout")]
    Rollout(fleet::rollout::RolloutArgs),
    /// Print shell completions
    Completions { shell: clap_complete::Shell },
}

fn main() {
    let cli = Cli::parse();
    util::logging::init();
    let runtime = util::runtime::single_threaded("ecs-boot-fleet");
    let code = match cli.command {
        Command::Status(args) => runtime.block_on(fleet::run(args)),
        #[cfg(feature = "rollout")]
        Command::Rollout(args) => runtime.block_on(fleet::rollout::run(args)),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "ecs-boot-fleet", &mut std::io::stdout());
            Ok(0)
        }
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ecs-boot-fleet: {e}");
            std::process::exit(1);
        }
    }
}
