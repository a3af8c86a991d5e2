//! `ecs-boot status [--json] [--watch] [--check-render]`: the command around status.rs.

use crate::config::Config;
use crate::lifecycle::boot::{self, ConnectAws, Known};
use crate::sources::ecs_agent::Introspection;
use crate::sources::imds::Imds;
use crate::status::report::{self, Report};
use crate::util::atomic_file::sha256_hex;
use crate::util::paths::Paths;
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Args)]
pub struct StatusArgs {
    /// One line of JSON (schema in the README) instead of the table
    #[arg(long)]
    pub json: bool,
    /// Refresh every second until the boot (or drain) ends
    #[arg(long)]
    pub watch: bool,
    /// Also render ecs.config from the live sources (IMDS, S3/SSM) and compare it with the file
    #[arg(long)]
    pub check_render: bool,
    /// First record this instance's evidence to the `[recorder] location` (exit 1 if it failed)
    #[arg(long)]
    pub upload: bool,
}

pub async fn run(args: StatusArgs, config: &Config, paths: &Paths) -> i32 {
    let intro = Introspection::new(&config.ecs_agent.introspection_url);
    if args.upload && !crate::evidence::upload::now(config, paths).await {
        return 1;
    }
    loop {
        let mut report = report::collect_live(paths, &intro).await;
        if args.check_render {
            report.render_drift = render_drift(config, paths).await;
        }
        if args.watch && std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print_report(&report, args.json);
        if !args.watch || report.health != crate::status::health::Health::InProgress {
            return report.exit_code();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!("{}", report::render_json(report));
    } else {
        print!("{}", report::render_table(report));
    }
}

/// A fresh render through the same code path as `run`, compared with the file on disk.
async fn render_drift(config: &Config, paths: &Paths) -> Option<String> {
    let imds = Imds::new(config.imds.timeout);
    match boot::prepare(
        config,
        paths,
        &imds,
        &ConnectAws,
        None,
        &mut Known::default(),
    )
    .await
    {
        Err(e) => Some(format!("cannot render from the live sources: {e}")),
        Ok(p) => {
            let on_disk = std::fs::read(paths.ecs_config()).unwrap_or_default();
            (sha256_hex(p.rendered.text.as_bytes()) != sha256_hex(&on_disk))
                .then(|| "a fresh render from the live sources differs from ecs.config on disk (tags, credentials or config changed since boot): `systemctl reload ecs-boot` applies it".to_string())
        }
    }
}
