//! The trusted-only sections about what leaves the host for CloudWatch: `[metrics]` (what
//! ecs-boot publishes itself, and the namespace the CloudWatch agent's host metrics share) and
//! `[logs]` (the host logs the CloudWatch agent ships). Neither may come from a fragment
//! (config/trust.rs NEVER_OPEN): a tag that could rename the namespace could hide a fleet's
//! ABANDONs from its alarms, and one that could name the log group could send a node's logs into
//! someone else's.

use super::duration;
use serde::Deserialize;
use std::time::Duration;

/// The namespace unless `[metrics] namespace` says otherwise; the Terraform module's default too.
pub const DEFAULT_NAMESPACE: &str = "ECSBoot";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Publish boot, hook and drain metrics (PutMetricData) and host disk and memory (through
    /// the CloudWatch agent's config, when `[logs]` runs it).
    pub enabled: bool,
    /// CloudWatch namespace; the instance role may put metrics into this one only.
    pub namespace: String,
    /// Longest a publication may take: it runs before the ABANDON and the terminate hook's
    /// completion and must never hold them up for long.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: DEFAULT_NAMESPACE.into(),
            timeout: Duration::from_secs(3),
        }
    }
}

/// The most a publication may wait before the action it precedes goes ahead anyway.
pub const MAX_METRICS_TIMEOUT: Duration = Duration::from_secs(10);

impl MetricsSection {
    /// `(field, problem)` for the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        check_namespace(&self.namespace).map_err(|p| ("namespace", p))?;
        if self.timeout.is_zero() || self.timeout > MAX_METRICS_TIMEOUT {
            return Err((
                "timeout",
                format!(
                    "must be between 1s and {}s: metrics go out before the ABANDON",
                    MAX_METRICS_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// CloudWatch's rule: 1-255 characters of letters, digits and `. - _ / # : `, not starting with
/// `AWS/` (reserved for AWS services). A space is allowed by AWS but not here: the value is
/// also an IAM condition value and a Terraform input, where a space only invites mistakes.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if !ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_/#:".contains(c))
    {
        return Err("may hold only letters, digits and . - _ / # :".into());
    }
    if ns.starts_with("AWS/") {
        return Err("\"AWS/\" namespaces are reserved for AWS services".into());
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsSection {
    /// Ship the host's logs with the CloudWatch agent. Never essential: a logging failure is
    /// logged, the boot goes on.
    pub enabled: bool,
    /// The CloudWatch Logs group (the Terraform module's, written to config.d by its user data).
    /// Unset: the agent is not started, whatever `enabled` says.
    pub group: Option<String>,
}

impl Default for LogsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            group: None,
        }
    }
}

impl LogsSection {
    /// `(field, problem)` for the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(g) = &self.group {
            check_log_group(g).map_err(|p| ("group", p))?;
        }
        Ok(())
    }
}

/// CloudWatch Logs' rule: 1-512 characters of letters, digits and `_ - / . #`.
pub fn check_log_group(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 512 {
        return Err("must be 1 to 512 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
    {
        return Err("may hold only letters, digits and _ - / . #".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_cloudwatch_rules() {
        for ok in ["ECSBoot", "team/ecs-boot", "a.b_c:d#1"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "AWS/EC2", "has space", "é", &"x".repeat(256)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
        let slow = MetricsSection {
            timeout: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(slow.check().unwrap_err().0, "timeout");
    }

    #[test]
    fn log_groups_follow_cloudwatch_logs_rules() {
        assert!(check_log_group("/ecs-boot/web").is_ok());
        for bad in ["", "a b", "a*b", "${x}"] {
            assert!(check_log_group(bad).is_err(), "{bad}");
        }
    }
}
