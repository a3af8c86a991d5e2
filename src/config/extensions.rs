//! The operator's own steps in the instance's life: `[[bootstrap]]` containers, run to completion
//! before the ECS agent may start, and `[hooks]` commands at lifecycle steps. Both run as root on
//! the host, so both come from the trusted channel only: `hooks` can never be opened to a
//! fragment, `bootstrap` only by `[trust] fragment_keys`, and `privileged` never from a fragment.

use super::{ContainerSpec, PullPolicy, duration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A one-shot container: created, started, waited for (up to `timeout`), its exit code and last
/// log lines kept, removed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub command: Vec<String>,
    /// Values are never logged or recorded (they may hold tokens).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `host:container[:options]`; `rshared` lets mounts made inside reach the host.
    #[serde(default)]
    pub binds: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default = "default_bootstrap_timeout", with = "duration")]
    pub timeout: Duration,
    /// A failure (non-zero exit, timeout, no image) fails the boot: ABANDON.
    #[serde(default = "yes")]
    pub essential: bool,
    #[serde(default)]
    pub pull: PullPolicy,
}

fn default_bootstrap_timeout() -> Duration {
    Duration::from_secs(300)
}
fn yes() -> bool {
    true
}

impl BootstrapSpec {
    /// The same container as a `[[container]]` spec, to reuse its validation, pull and create
    /// request: host network, never restarted.
    pub fn as_container(&self) -> ContainerSpec {
        ContainerSpec {
            name: self.name.clone(),
            image: self.image.clone(),
            entrypoint: self.entrypoint.clone(),
            command: self.command.clone(),
            env: self.env.clone(),
            binds: self.binds.clone(),
            network_mode: "host".into(),
            pid_mode: None,
            privileged: self.privileged,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            user: None,
            restart: "no".into(),
            memory_mib: None,
            log_driver: None,
            log_options: BTreeMap::new(),
            labels: BTreeMap::new(),
            essential: self.essential,
            pull: self.pull,
            min_uptime: Duration::ZERO,
        }
    }

    /// Returns the offending field and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.as_container().validate()?;
        if self.timeout.is_zero() {
            return Err(("timeout", "must be longer than 0s".into()));
        }
        Ok(())
    }
}

/// One operator command at a lifecycle step: an argv list (no shell unless the operator runs
/// one), killed with its whole process group at `timeout`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookCommand {
    pub command: Vec<String>,
    #[serde(default = "default_hook_timeout", with = "duration")]
    pub timeout: Duration,
    /// `pre_drain` only: a failure stops the drain (the agent exits non-zero, systemd restarts
    /// it, and the hook runs again with the next attempt number) instead of being reported.
    #[serde(default)]
    pub required: bool,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksSection {
    /// After the launch lifecycle action is completed: the instance takes tasks.
    pub in_service: Option<HookCommand>,
    /// At the start of a drain, before DRAINING (deregister from a load balancer, flush a cache).
    pub pre_drain: Option<HookCommand>,
    /// When the drain ended, before the terminate action is completed.
    pub post_drain: Option<HookCommand>,
    /// When the boot failed, before the launch action is abandoned.
    pub on_failure: Option<HookCommand>,
}

impl HooksSection {
    pub fn each(&self) -> [(&'static str, Option<&HookCommand>); 4] {
        [
            ("in_service", self.in_service.as_ref()),
            ("pre_drain", self.pre_drain.as_ref()),
            ("post_drain", self.post_drain.as_ref()),
            ("on_failure", self.on_failure.as_ref()),
        ]
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        for (step, hook) in self.each() {
            let Some(h) = hook else { continue };
            let key = |f: &str| format!("hooks.{step}.{f}");
            match h.command.first() {
                None => return Err((key("command"), "must name a program".into())),
                Some(p) if !p.starts_with('/') => {
                    // No PATH search: the environment is clean, and the program is the AMI's.
                    return Err((key("command"), format!("{p:?} must be an absolute path")));
                }
                _ => {}
            }
            if h.command.iter().any(|a| a.contains('\0')) {
                return Err((key("command"), "arguments may not contain NUL".into()));
            }
            if h.timeout.is_zero() {
                return Err((key("timeout"), "must be longer than 0s".into()));
            }
            if h.required && step != "pre_drain" {
                return Err((key("required"), "only pre_drain can be required".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    const BOOTSTRAP: &str = "[[bootstrap]]\nname = \"mount-volumes\"\nimage = \"busybox:1\"\ncommand = [\"sh\", \"-c\", \"mount ...\"]\nbinds = [\"/mnt:/mnt:rshared\"]\nprivileged = true\ntimeout = \"2m\"\n";

    #[test]
    fn bootstrap_entries_parse_with_defaults() {
        let c = Config::parse(BOOTSTRAP, "t").unwrap();
        let b = &c.bootstrap[0];
        assert!(b.essential && b.privileged);
        assert_eq!(b.timeout, Duration::from_secs(120));
        assert_eq!(b.as_container().restart, "no");
        let c = Config::parse("[[bootstrap]]\nname = \"a\"\nimage = \"x\"\n", "t").unwrap();
        assert_eq!(c.bootstrap[0].timeout, Duration::from_secs(300));
        assert!(!c.bootstrap[0].privileged);
    }

    #[test]
    fn bootstrap_errors_name_the_index_and_field() {
        for (doc, key) in [
            (
                "[[bootstrap]]\nname = \"-x\"\nimage = \"x\"\n",
                "bootstrap[0].name",
            ),
            (
                "[[bootstrap]]\nname = \"a\"\nimage = \"x\"\nbinds = [\"nope\"]\n",
                "bootstrap[0].binds",
            ),
            (
                "[[bootstrap]]\nname = \"a\"\nimage = \"x\"\ntimeout = \"0s\"\n",
                "bootstrap[0].timeout",
            ),
            (
                "[[bootstrap]]\nname = \"a\"\nimage = \"x\"\n[[bootstrap]]\nname = \"a\"\nimage = \"y\"\n",
                "bootstrap[1].name",
            ),
        ] {
            let err = Config::parse(doc, "c.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{doc}: {err}");
        }
    }

    #[test]
    fn hooks_are_absolute_argv_lists_with_timeouts() {
        let c = Config::parse(
            "[hooks.pre_drain]\ncommand = [\"/usr/local/bin/deregister\", \"--alb\"]\ntimeout = \"30s\"\nrequired = true\n[hooks.on_failure]\ncommand = [\"/bin/true\"]\n",
            "t",
        )
        .unwrap();
        let pre = c.hooks.pre_drain.unwrap();
        assert!(pre.required);
        assert_eq!(pre.timeout, Duration::from_secs(30));
        assert_eq!(c.hooks.on_failure.unwrap().timeout, Duration::from_secs(60));
        for (doc, key) in [
            (
                "[hooks.in_service]\ncommand = []\n",
                "hooks.in_service.command",
            ),
            (
                "[hooks.in_service]\ncommand = [\"curl\"]\n",
                "hooks.in_service.command",
            ),
            (
                "[hooks.post_drain]\ncommand = [\"/bin/x\"]\nrequired = true\n",
                "hooks.post_drain.required",
            ),
            (
                "[hooks.post_drain]\ncommand = [\"/bin/x\"]\ntimeout = \"0s\"\n",
                "hooks.post_drain.timeout",
            ),
            (
                "[hooks]\npre_stop = { command = [\"/bin/x\"] }\n",
                "pre_stop",
            ),
        ] {
            let err = Config::parse(doc, "c.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{doc}: {err}");
        }
    }
}
