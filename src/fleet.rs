//! `ecs-boot fleet status`: every instance's `ecs-boot status --json` over SSM Run Command
//! (being written: see issue 6).

use clap::Args;

#[derive(Args)]
pub struct FleetArgs {}

pub async fn run(_args: FleetArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::Other(
        "fleet status is not available in this build".into(),
    ))
}
