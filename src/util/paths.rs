//! Every host path ecs-boot reads or writes, under one `--root` prefix so tests and the simulated
//! instance run the real binary against a scratch directory.

use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/ecs-boot/config.toml";

#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `abs` (an absolute host path) under the root.
    pub fn host(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn ecs_config(&self) -> PathBuf {
        self.host("/etc/ecs/ecs.config")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.host("/var/lib/ecs-boot")
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    /// Lives on tmpfs (`/run`), so it exists only if *this* boot wrote a complete ecs.config.
    pub fn ready_marker(&self) -> PathBuf {
        self.host("/run/ecs-boot/ecs-config.sha256")
    }

    pub fn agent_data_dir(&self) -> PathBuf {
        self.host("/var/lib/ecs/data")
    }

    pub fn default_config(&self) -> PathBuf {
        self.host(DEFAULT_CONFIG)
    }
}

/// The directory holding `path`, for fsync after a rename.
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
