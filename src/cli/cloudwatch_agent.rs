//! `ecs-boot cloudwatch-agent`: the CloudWatch agent's config from the trusted config's `[logs]`
//! and `[metrics]` (src/metrics/agent_config.rs). Run by ecs-boot-cloudwatch-agent.service as
//! its ExecCondition after cloud-init has written config.d: exit 0 with the file written, the
//! unit then starts the agent; exit 1 (logged) when turned off or when the config is broken, the
//! unit is then skipped. Host logs are never essential: nothing else waits on this.

use crate::config::Config;
use crate::metrics::agent_config;
use crate::util::paths::Paths;
use std::path::Path;

pub fn run(config_path: &Path, paths: &Paths) -> i32 {
    let path = paths.host(agent_config::CONFIG_FILE);
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecs-boot cloudwatch-agent: not started: {e}");
            let _ = std::fs::remove_file(&path);
            return 1;
        }
    };
    let Some(doc) = agent_config::render(&config) else {
        let why = agent_config::why_off(&config).unwrap_or("nothing to ship");
        eprintln!(
            "ecs-boot cloudwatch-agent: not started: {why} ({})",
            config.origin
        );
        let _ = std::fs::remove_file(&path);
        return 1;
    };
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match crate::util::atomic_file::write_atomic(&path, text.as_bytes()) {
        Ok(_) => {
            println!("{}: CloudWatch agent config written", path.display());
            0
        }
        Err(e) => {
            eprintln!(
                "ecs-boot cloudwatch-agent: cannot write {}: {e}",
                path.display()
            );
            1
        }
    }
}
