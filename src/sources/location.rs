//! Where a remote object lives: `s3://bucket/key` or `ssm:/parameter/name`. Used for registry
//! credentials and config fragments; the location itself is not secret and appears in status.

use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, key: String },
    Ssm { name: String },
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{value:?} is not a location: use s3://bucket/key or ssm:/parameter/name ({problem})")]
pub struct LocationError {
    value: String,
    problem: &'static str,
}

impl Location {
    pub fn parse(s: &str) -> Result<Location, LocationError> {
        let err = |problem| LocationError {
            value: s.chars().take(200).collect(),
            problem,
        };
        if s.chars().any(|c| c.is_control() || c == ' ') {
            return Err(err("contains spaces or control characters"));
        }
        // Allowlists compare locations as strings: refuse every spelling that could name one
        // object two ways or climb out of a prefix before it is matched.
        if s.contains('%') {
            return Err(err("percent-escapes are not allowed"));
        }
        if s.contains('\\') || s.contains('?') || s.contains('#') {
            return Err(err("'\\', '?' and '#' are not allowed"));
        }
        let path = s
            .strip_prefix("s3://")
            .or_else(|| s.strip_prefix("ssm:"))
            .unwrap_or(s);
        if path.contains("arn:") {
            return Err(err(
                "ARNs are not allowed: name the bucket or parameter in this account",
            ));
        }
        let mut segments = path.split('/');
        if path.starts_with('/') {
            segments.next(); // an SSM path's leading slash
        }
        for seg in segments {
            if seg.is_empty() {
                return Err(err("empty path segment ('//' or a trailing '/')"));
            }
            if seg == "." || seg == ".." {
                return Err(err("'.' and '..' segments are not allowed"));
            }
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| err("no key after the bucket"))?;
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !bucket_ok {
                return Err(err(
                    "bucket names are 3-63 lowercase letters, digits, '.' or '-'",
                ));
            }
            if key.is_empty() {
                return Err(err("empty key"));
            }
            return Ok(Location::S3 {
                bucket: bucket.into(),
                key: key.into(),
            });
        }
        if let Some(name) = s.strip_prefix("ssm:") {
            let ok = !name.is_empty()
                && name.len() <= 2048
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
            if !ok {
                return Err(err(
                    "SSM parameter names are letters, digits, '_', '.', '-' and '/'",
                ));
            }
            return Ok(Location::Ssm { name: name.into() });
        }
        Err(err("unknown scheme"))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Location::Ssm { name } => write!(f, "ssm:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes() {
        assert_eq!(
            Location::parse("s3://creds-bucket/docker/hub.json").unwrap(),
            Location::S3 {
                bucket: "creds-bucket".into(),
                key: "docker/hub.json".into()
            }
        );
        assert_eq!(
            Location::parse("ssm:/ecs/registry").unwrap(),
            Location::Ssm {
                name: "/ecs/registry".into()
            }
        );
        assert_eq!(
            Location::parse("ssm:/ecs/registry").unwrap().to_string(),
            "ssm:/ecs/registry"
        );
    }

    #[test]
    fn rejects_what_is_not_a_location() {
        for bad in [
            "",
            "s3://",
            "s3://bucket",
            "s3://bucket/",
            "s3://Bad_Bucket/k",
            "https://x/y",
            "ssm:",
            "ssm:/a b",
            "s3://b/k\nECS_X=1",
            "s3://bucket/a/../b",
            "s3://bucket/a//b",
            "s3://bucket/a/%2e%2e/b",
            "s3://bucket/a/./b",
            "ssm:/a/../b",
            "ssm://a",
            "ssm:/a/",
            "ssm:arn:aws:ssm:us-east-1:111122223333:parameter/x",
            "s3://bucket/arn:aws:s3:::x",
            "s3://bucket/a?versionId=1",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?}");
        }
    }
}
