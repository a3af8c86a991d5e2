//! The trusted-only sections about evidence: `[recorder]` (where a failed boot's evidence goes).
//! None of them may come from a fragment (config/trust.rs NEVER_OPEN): a tag that could name the
//! recorder's location could have a node's logs written into someone else's bucket.

use super::duration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderSection {
    /// `s3://bucket/prefix/`: evidence goes under `<location><instance-id>/<timestamp>/`.
    /// Unset (the default): nothing is recorded.
    pub location: Option<String>,
    /// Longest a recording may take, collection and upload together: it runs before the ABANDON
    /// and must never hold it up for long.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for RecorderSection {
    fn default() -> Self {
        Self {
            location: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The most a recording may wait before the action it precedes goes ahead anyway.
pub const MAX_RECORDER_TIMEOUT: Duration = Duration::from_secs(30);

impl RecorderSection {
    /// `(field, problem)` for the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(loc) = &self.location {
            let (bucket, prefix) = split_location(loc).map_err(|p| ("location", p))?;
            crate::sources::location::Location::parse(&format!("s3://{bucket}/{prefix}x"))
                .map_err(|e| ("location", e.to_string()))?;
        }
        if self.timeout.is_zero() || self.timeout > MAX_RECORDER_TIMEOUT {
            return Err((
                "timeout",
                format!(
                    "must be between 1s and {}s: the recording runs before the ABANDON",
                    MAX_RECORDER_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// `s3://bucket/prefix/` as (bucket, prefix); the prefix is empty or ends in `/`.
pub fn split_location(location: &str) -> Result<(String, String), String> {
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| "must be an s3://bucket/prefix/ location".to_string())?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("names no bucket (s3://bucket/prefix/)".into());
    }
    if !prefix.is_empty() && !prefix.ends_with('/') {
        return Err("the prefix must end in '/'".into());
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_bucket_and_slash_terminated_prefix() {
        assert_eq!(
            split_location("s3://b-1/evidence/").unwrap(),
            ("b-1".into(), "evidence/".into())
        );
        assert_eq!(
            split_location("s3://b-1/").unwrap(),
            ("b-1".into(), "".into())
        );
        assert!(split_location("s3://b-1/evidence").is_err());
        assert!(split_location("ssm:/x/").is_err());
        assert!(split_location("s3:///x/").is_err());
        let bad = RecorderSection {
            location: Some("s3://b-1/a/../b/".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let slow = RecorderSection {
            timeout: Duration::from_secs(300),
            ..Default::default()
        };
        assert_eq!(slow.check().unwrap_err().0, "timeout");
    }
}
