//! Structured logs: to journald when systemd started us (fields such as PHASE and INSTANCE_ID
//! become journal fields), to stderr otherwise.
//!
//! `ECS_BOOT_LOG` is a list of `level` and `target=level` directives (`debug`,
//! `info,aws_smithy_runtime=trace`), read with `Targets` rather than `EnvFilter`: EnvFilter's
//! span and field directives need a regex engine in the binary, and nothing here uses them.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Used when `ECS_BOOT_LOG` is unset, empty or not a list of directives.
const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn";

pub fn init() {
    let filter = filter(std::env::var("ECS_BOOT_LOG").ok().as_deref());
    // systemd sets JOURNAL_STREAM when stdout/stderr go to the journal.
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(journald) = tracing_journald::layer()
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(journald.with_syslog_identifier("ecs-boot".into()))
            .init();
        return;
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .init();
}

fn filter(spec: Option<&str>) -> Targets {
    spec.map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| DEFAULT_FILTER.parse().expect("the default filter parses"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn a_level_alone_sets_every_target() {
        let f = filter(Some("debug"));
        assert!(f.would_enable("aws_config::imds", &Level::DEBUG));
        assert!(!f.would_enable("ecs_boot", &Level::TRACE));
    }

    #[test]
    fn targets_take_their_own_level_over_the_default() {
        let f = filter(Some("info,aws_smithy_runtime=trace"));
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::TRACE));
        assert!(!f.would_enable("ecs_boot::boot", &Level::DEBUG));
        assert!(f.would_enable("ecs_boot::boot", &Level::INFO));
    }

    #[test]
    fn unset_empty_or_unparsable_falls_back_to_the_default() {
        for spec in [
            None,
            Some(""),
            Some("  "),
            Some("info,[span{x=1}]=debug"),
            Some("ecs_boot=loud"),
        ] {
            let f = filter(spec);
            assert!(f.would_enable("ecs_boot", &Level::INFO), "{spec:?}");
            assert!(!f.would_enable("ecs_boot", &Level::DEBUG), "{spec:?}");
            assert!(
                !f.would_enable("aws_config::imds", &Level::INFO),
                "{spec:?}"
            );
            assert!(f.would_enable("aws_config::imds", &Level::WARN), "{spec:?}");
        }
    }
}
