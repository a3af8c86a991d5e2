//! What came back from one instance, and how to read `ecs-boot status --json` out of SSM's
//! inline output. Pure.

use serde::Serialize;
use serde_json::Value;

/// SSM keeps the first 24,000 characters of stdout inline (docs/aws-facts.md §6); the rest only in S3.
pub const INLINE_STDOUT_LIMIT: usize = 24_000;

/// The SSM side of one invocation, kept for the JSON document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invocation {
    pub command_id: String,
    pub status: String,
    pub status_details: String,
    pub response_code: i32,
    #[serde(skip)]
    pub stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(skip)]
    pub stdout_url: Option<String>,
}

/// How far we got with one instance.
#[derive(Debug, Clone)]
pub enum Reach {
    /// `ecs-boot status --json` printed a document (whatever its exit code).
    Report { doc: Value, ssm: Invocation },
    /// The command ran but printed nothing readable as a status document.
    Unreadable { problem: String, ssm: Invocation },
    /// Not an SSM managed node: no agent, no instance profile, or not running.
    NoSsm,
    /// Managed, but its SSM agent is not connected (`ConnectionLost`, `Inactive`).
    Offline {
        ping: String,
        last_ping: Option<String>,
    },
    /// SSM accepted the command but could not run it (undeliverable, delivery timed out,
    /// cancelled).
    Undelivered { ssm: Invocation },
    /// No terminal state before the deadline.
    TimedOut { last: String },
    /// An API call about this instance failed.
    ApiError { problem: String },
}

#[derive(Debug, Clone)]
pub struct InstanceResult {
    pub instance_id: String,
    pub reach: Reach,
}

/// Invocation statuses after which nothing changes (`GetCommandInvocation`'s Status).
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "Cancelled" | "TimedOut")
}

/// StatusDetails that mean the command never ran on the instance.
fn never_ran(details: &str) -> bool {
    matches!(
        details,
        "Undeliverable" | "DeliveryTimedOut" | "Terminated" | "InvalidPlatform" | "AccessDenied"
    )
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Report(Value),
    /// Cut at SSM's inline limit: the whole document is only in S3.
    Truncated,
    Unreadable(String),
}

/// The status document in `stdout`. Tolerant: a login banner or warning before the JSON line is
/// skipped, unknown fields are kept, and only `health` is required.
pub fn parse_report(stdout: &str) -> Parsed {
    let text = stdout.trim();
    let candidates = std::iter::once(text).chain(
        text.lines()
            .rev()
            .map(str::trim)
            .filter(|l| l.starts_with('{')),
    );
    for c in candidates {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(c)
            && v.get("health").is_some_and(Value::is_string)
        {
            return Parsed::Report(v);
        }
    }
    if stdout.chars().count() >= INLINE_STDOUT_LIMIT {
        return Parsed::Truncated;
    }
    if text.is_empty() {
        Parsed::Unreadable("no output".into())
    } else {
        Parsed::Unreadable(format!("not a status document: {}", first_line(text, 120)))
    }
}

/// The Reach of a terminal invocation whose output, if any, is final.
pub fn reach_of(ssm: Invocation) -> Reach {
    if never_ran(&ssm.status_details) || matches!(ssm.status.as_str(), "Cancelled") {
        return Reach::Undelivered { ssm };
    }
    if ssm.status == "TimedOut" && ssm.stdout.trim().is_empty() {
        return Reach::Undelivered { ssm };
    }
    match parse_report(&ssm.stdout) {
        Parsed::Report(doc) => {
            // The document is kept parsed; its text would double each instance's share of
            // memory (5,000 instances: ~8 MiB more) for nothing.
            let ssm = Invocation {
                stdout: String::new(),
                ..ssm
            };
            Reach::Report { doc, ssm }
        }
        Parsed::Truncated => Reach::Unreadable {
            problem: format!(
                "output truncated at {INLINE_STDOUT_LIMIT} characters; rerun with --output-s3-bucket"
            ),
            ssm,
        },
        Parsed::Unreadable(problem) => {
            let problem = match first_line(ssm.stderr.trim(), 160) {
                e if !e.is_empty() => format!("exit {}: {e}", ssm.response_code),
                _ => format!("exit {}: {problem}", ssm.response_code),
            };
            Reach::Unreadable { problem, ssm }
        }
    }
}

/// Whether what ListCommandInvocations showed of a terminal invocation is all there is to know:
/// a whole status document, or a command that never ran. Anything else (output cut at the list's
/// 2,500 characters, an error whose stderr explains it) is read again with GetCommandInvocation.
pub fn settled_by_list(listed: &Invocation) -> bool {
    never_ran(&listed.status_details)
        || listed.status == "Cancelled"
        || matches!(parse_report(&listed.stdout), Parsed::Report(_))
}

/// The S3 key of an invocation's stdout from its `StandardOutputUrl`, path- or virtual-hosted
/// style (`https://s3.REGION.amazonaws.com/BUCKET/KEY`, `https://BUCKET.s3.../KEY`).
pub fn s3_key(url: &str, bucket: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = rest.split_once('/')?;
    let key = if host.starts_with(&format!("{bucket}.")) {
        path
    } else {
        path.strip_prefix(bucket)?.strip_prefix('/')?
    };
    (!key.is_empty()).then(|| key.to_string())
}

pub fn first_line(s: &str, max: usize) -> String {
    truncate(s.lines().next().unwrap_or(""), max)
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(status: &str, details: &str, code: i32, stdout: &str) -> Invocation {
        Invocation {
            command_id: "c".into(),
            status: status.into(),
            status_details: details.into(),
            response_code: code,
            stdout: stdout.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_status_line_after_noise_parses_and_keeps_unknown_fields() {
        let out = "warning: locale\n{\"status_schema\":1,\"health\":\"failed\",\"new\":7}\n";
        match parse_report(out) {
            Parsed::Report(v) => assert_eq!(v["new"], 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_exit_with_a_document_is_still_a_report() {
        let r = reach_of(inv("Failed", "Failed", 1, r#"{"health":"failed"}"#));
        assert!(matches!(r, Reach::Report { .. }), "{r:?}");
    }

    #[test]
    fn missing_binary_is_unreadable_with_stderr() {
        let mut i = inv("Failed", "Failed", 127, "");
        i.stderr = "bash: ecs-boot: command not found\n".into();
        match reach_of(i) {
            Reach::Unreadable { problem, .. } => {
                assert_eq!(problem, "exit 127: bash: ecs-boot: command not found")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cut_output_is_reported_as_truncated() {
        let out = format!("{{\"health\":\"healthy\",\"x\":\"{}", "a".repeat(24_000));
        assert_eq!(parse_report(&out[..24_000]), Parsed::Truncated);
        assert!(matches!(
            reach_of(inv("Success", "Success", 0, &out[..24_000])),
            Reach::Unreadable { problem, .. } if problem.contains("--output-s3-bucket")
        ));
    }

    #[test]
    fn undeliverable_and_delivery_timeouts_never_ran() {
        for (s, d) in [
            ("Failed", "Undeliverable"),
            ("TimedOut", "DeliveryTimedOut"),
            ("Cancelled", "Cancelled"),
        ] {
            assert!(matches!(
                reach_of(inv(s, d, -1, "")),
                Reach::Undelivered { .. }
            ));
        }
    }

    #[test]
    fn s3_keys_from_both_url_styles() {
        let key = "p/cmd/i-1/awsrunShellScript/0.awsrunShellScript/stdout";
        assert_eq!(
            s3_key(
                &format!("https://s3.us-east-1.amazonaws.com/b-1/{key}"),
                "b-1"
            )
            .as_deref(),
            Some(key)
        );
        assert_eq!(
            s3_key(&format!("https://b-1.s3.amazonaws.com/{key}"), "b-1").as_deref(),
            Some(key)
        );
        assert_eq!(s3_key("https://s3.amazonaws.com/other/k", "b-1"), None);
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
