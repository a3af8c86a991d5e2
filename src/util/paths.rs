//! Every host path ecs-boot reads or writes, under one `--root` prefix so tests and the simulated
//! instance run the real binary against a scratch directory: files, the Docker socket, procfs and
//! the journal alike (ecs-init does the same with its host prefix).

use std::path::{Component, Path, PathBuf};

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

    /// The Docker engine's socket, used unless `DOCKER_HOST` names another engine.
    pub fn docker_socket(&self) -> PathBuf {
        self.host("/var/run/docker.sock")
    }

    /// A file of the host's procfs: `proc("uptime")`, `proc("1234/cmdline")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.host("/proc").join(rel.trim_start_matches('/'))
    }

    /// What to pass to `journalctl --root`: nothing for the host's own `/` (journalctl's
    /// default, which also reads the volatile /run/log/journal), else the root itself.
    pub fn journal_root(&self) -> Option<&Path> {
        let is_host = self.root.has_root()
            && self
                .root
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::CurDir));
        (!is_host).then_some(self.root.as_path())
    }
}

/// The directory holding `path`, for fsync after a rename.
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_interfaces_live_under_the_root_too() {
        let p = Paths::new("/srv/instance");
        assert_eq!(
            p.docker_socket(),
            Path::new("/srv/instance/var/run/docker.sock")
        );
        assert_eq!(p.proc("uptime"), Path::new("/srv/instance/proc/uptime"));
        assert_eq!(
            p.proc("/42/cmdline"),
            Path::new("/srv/instance/proc/42/cmdline")
        );
        assert_eq!(p.journal_root(), Some(Path::new("/srv/instance")));
    }

    #[test]
    fn the_host_root_is_the_host() {
        for root in ["/", "//", "/."] {
            let p = Paths::new(root);
            assert_eq!(
                p.docker_socket(),
                Path::new("/var/run/docker.sock"),
                "{root}"
            );
            assert_eq!(p.proc("1/cmdline"), Path::new("/proc/1/cmdline"), "{root}");
            assert_eq!(p.journal_root(), None, "{root}");
        }
        // A relative root is a directory like any other, never the host.
        assert_eq!(
            Paths::new("scratch").journal_root(),
            Some(Path::new("scratch"))
        );
    }
}
