//! `ecs-boot containers ...`: reconcile or stop the system containers on their own, without the
//! rest of the boot (for operators after a config change, and for the integration tests).

use crate::config::Config;
use crate::error::Result;
use crate::sources::aws::Aws;
use crate::status::state::ContainerRecord;
use crate::util::paths::Paths;
use clap::{Args, Subcommand};
use std::fmt::Write as _;

#[derive(Args)]
pub struct ContainersArgs {
    #[command(subcommand)]
    pub command: ContainersCommand,
}

#[derive(Subcommand)]
pub enum ContainersCommand {
    /// Bring the system containers to the configured state; exit 1 if an essential one cannot run
    Reconcile(ReconcileArgs),
    /// Stop the system containers gracefully (what the end of a drain does)
    Stop(ScopeArgs),
}

#[derive(Args)]
pub struct ScopeArgs {
    /// Value of the io.ecs-boot.managed label this run owns (tests; two agents on one engine)
    #[arg(long, hide = true, default_value = crate::containers::DEFAULT_SCOPE)]
    pub scope: String,
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// Registry credentials for pulls (s3://bucket/key or ssm:/name) [default: [ecs] registry_auth]
    #[arg(long, value_name = "LOCATION")]
    pub registry_auth: Option<String>,
    /// One line of JSON (the records as in `status --json`) instead of the table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

impl ContainersArgs {
    pub async fn run(self, config: Config, paths: &Paths) -> Result<crate::cli::ExitCode> {
        match self.command {
            ContainersCommand::Reconcile(args) => args.run(config, paths).await,
            ContainersCommand::Stop(args) => {
                let scope = crate::containers::Scope::new(paths, args.scope);
                crate::containers::stop_all_in(&config, &scope).await?;
                Ok(0)
            }
        }
    }
}

impl ReconcileArgs {
    async fn run(self, config: Config, paths: &Paths) -> Result<crate::cli::ExitCode> {
        let aws = Aws::load(&region().await).await;
        let location = self
            .registry_auth
            .clone()
            .or_else(|| config.ecs.registry_auth.clone());
        let auth = match &location {
            Some(raw) => Some(
                crate::lifecycle::boot::fetch_registry_auth(
                    &aws,
                    raw,
                    "--registry-auth".into(),
                    None,
                )
                .await?,
            ),
            None => None,
        };
        let scope = crate::containers::Scope::new(paths, self.scope.scope);
        let report =
            crate::containers::reconcile_report(&config, auth.as_ref(), &aws, &scope).await;
        if self.json {
            println!(
                "{}",
                serde_json::to_string(&report.records).expect("records serialize")
            );
        } else {
            print!("{}", render_table(&report.records));
        }
        match report.error() {
            Some(e) => {
                eprintln!("ecs-boot: {e}");
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

/// `AWS_REGION`, else the instance's (only ECR pulls use AWS, and they name their region).
async fn region() -> String {
    if let Ok(r) = std::env::var("AWS_REGION")
        && !r.is_empty()
    {
        return r;
    }
    let imds = crate::sources::imds::Imds::new(std::time::Duration::from_secs(3));
    match imds.identity().await {
        Ok(id) => id.region,
        Err(_) => "us-east-1".into(),
    }
}

/// The table `containers reconcile` prints, one line per container.
pub fn render_table(records: &[ContainerRecord]) -> String {
    let mut o = String::from(
        "CONTAINER        ACTION     STATE      RESTARTS  ID            IMAGE / ERROR\n",
    );
    use crate::util::escape::for_terminal as esc;
    for r in records {
        // The engine's answers (state, error messages) are outside input: escaped for the terminal.
        let id: String = r.id.chars().take(12).collect();
        let _ = writeln!(
            o,
            "{:<16} {:<10} {:<10} {:>8}  {:<13} {}{}",
            esc(&r.name),
            esc(&r.action),
            esc(&r.state),
            r.restart_count,
            esc(&id),
            esc(&r.image),
            r.last_error
                .as_ref()
                .map(|e| format!("  error: {}", esc(e)))
                .unwrap_or_default()
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_errors_beside_the_container() {
        let t = render_table(&[ContainerRecord {
            name: "cw".into(),
            id: "0123456789abcdef".into(),
            image: "img:1".into(),
            state: "running".into(),
            action: "created".into(),
            last_error: Some("boom".into()),
            ..Default::default()
        }]);
        assert!(t.contains("cw "), "{t}");
        assert!(t.contains("0123456789ab "), "{t}");
        assert!(!t.contains("0123456789abc"), "{t}");
        assert!(t.contains("error: boom"), "{t}");
    }
}
