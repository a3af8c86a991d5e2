//! The essential system containers after launch, as state.json records them: what ecs-boot last
//! set `ecs-boot.ready` to, which containers are dead for good, and the running count of such
//! deaths (`essential_failures`, published as the metric `EssentialContainerFailures`). Written by
//! src/lifecycle/health.rs; shown by `ecs-boot status`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EssentialHealth {
    /// The value of `ecs-boot.ready` ECS accepted last (PutAttributes).
    pub ready: bool,
    /// How many times, since the boot, an essential system container died for good (exited
    /// and not restarted within `[health] restart_grace`, restarting in a loop, or removed).
    /// Only ever grows; the metric EssentialContainerFailures is its increase.
    pub essential_failures: u64,
    /// Essential containers dead for good now (a restarted one stays until it has run for the
    /// grace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<FailingContainer>,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    /// Why `ready` may not be what the containers say: the last PutAttributes failure, until
    /// one succeeds (it is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_error: Option<String>,
    /// Why the Docker events watch is not subscribed, while it is not (it retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailingContainer {
    pub name: String,
    pub cause: String,
}

impl EssentialHealth {
    pub fn new(ready: bool) -> EssentialHealth {
        EssentialHealth {
            ready,
            essential_failures: 0,
            failing: Vec::new(),
            changed_at: OffsetDateTime::now_utc(),
            attribute_error: None,
            watch_error: None,
        }
    }

    /// One line for the status table.
    pub fn line(&self) -> String {
        use crate::util::escape::for_terminal as esc;
        let mut out = format!(
            "readiness  {}={}  essential failures {}",
            crate::ecs_config::attribute::READY,
            self.ready,
            self.essential_failures
        );
        for f in &self.failing {
            out.push_str(&format!("\n  DEAD {}: {}", esc(&f.name), esc(&f.cause)));
        }
        if let Some(e) = &self.attribute_error {
            out.push_str(&format!(
                "\n  cannot set the attribute (retrying): {}",
                esc(e)
            ));
        }
        if let Some(e) = &self.watch_error {
            out.push_str(&format!(
                "\n  not watching Docker events (retrying): {}",
                esc(e)
            ));
        }
        out
    }

    /// Size caps (status/bounds.rs): names and causes are ours, errors come from outside.
    pub fn bound(&mut self, text: usize, list: usize) {
        self.failing.truncate(list);
        for f in &mut self.failing {
            crate::status::bounds::cap_text(&mut f.name, text);
            crate::status::bounds::cap_text(&mut f.cause, text);
        }
        for e in [&mut self.attribute_error, &mut self.watch_error]
            .into_iter()
            .flatten()
        {
            crate::status::bounds::cap_text(e, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_dead_container_escaped() {
        let mut h = EssentialHealth::new(false);
        h.essential_failures = 2;
        h.failing.push(FailingContainer {
            name: "logs".into(),
            cause: "exited with code 1\u{1b}[2J".into(),
        });
        h.attribute_error = Some("AccessDenied".into());
        let line = h.line();
        assert!(line.starts_with("readiness  ecs-boot.ready=false  essential failures 2"));
        assert!(line.contains("DEAD logs: exited with code 1"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert!(line.contains("retrying): AccessDenied"));
        let mut long = h.clone();
        long.attribute_error = Some("x".repeat(10_000));
        long.bound(512, 32);
        assert!(long.attribute_error.unwrap().len() < 600);
    }
}
