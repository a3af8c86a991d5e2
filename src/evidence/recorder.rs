//! The flight recorder: before an ABANDON, at a drain deadline and on `ecs-boot status --upload`,
//! the instance's evidence goes to `<[recorder] location><instance-id>/<timestamp>/`, so it
//! outlives the instance Auto Scaling is about to replace.
//!
//! Bounded: each file is capped (collect.rs) and the whole recording, collection and upload, has
//! `[recorder] timeout` (5 s by default, at most 30 s); what has not gone up by then is given up
//! and recorded as such. A recording never fails the action it precedes.

use crate::config::Config;
use crate::config::evidence::split_location;
use crate::evidence::collect::{self, Artifact};
use crate::sources::aws::{Aws, describe};
use crate::status::state::EvidenceRecord;
use crate::util::paths::Paths;
use futures_util::future::join_all;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use time::OffsetDateTime;
use time::macros::format_description;

/// What asked for a recording; its name is in the record and in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Abandon,
    DrainDeadline,
    Operator,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Abandon => "abandon",
            Trigger::DrainDeadline => "drain-deadline",
            Trigger::Operator => "operator",
        }
    }
}

/// Where one recording goes.
pub struct Target {
    pub bucket: String,
    /// `<prefix><instance-id>/<timestamp>/`
    pub key_prefix: String,
}

impl Target {
    pub fn new(location: &str, instance_id: &str, at: OffsetDateTime) -> Result<Target, String> {
        let (bucket, prefix) = split_location(location)?;
        let stamp = at
            .format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(|e| e.to_string())?;
        Ok(Target {
            bucket,
            key_prefix: format!("{prefix}{}/{stamp}/", key_segment(instance_id)),
        })
    }

    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key_prefix)
    }
}

/// An instance id as one key segment: anything but `[A-Za-z0-9-]` would let an odd identity
/// document write outside its folder.
fn key_segment(instance_id: &str) -> String {
    let ok = !instance_id.is_empty()
        && instance_id.len() <= 64
        && instance_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        instance_id.to_string()
    } else {
        "unknown-instance".into()
    }
}

/// Everything a recording needs; `config` is the trusted one (`[recorder]` is never opened to a
/// fragment), with the identity's placeholders substituted.
pub struct Recording<'a> {
    pub config: &'a Config,
    pub paths: &'a Paths,
    pub aws: &'a Aws,
    pub instance_id: &'a str,
    pub container_scope: &'a crate::containers::Scope,
}

impl Recording<'_> {
    /// Records, if `[recorder] location` is set; never longer than `[recorder] timeout`.
    /// Returns what happened (also written to `evidence.json` beside the state file).
    pub async fn record(&self, trigger: Trigger) -> Option<EvidenceRecord> {
        let location = self.config.recorder.location.as_deref()?;
        let at = OffsetDateTime::now_utc();
        let target = match Target::new(location, self.instance_id, at) {
            Ok(t) => t,
            Err(e) => {
                return Some(self.finish(EvidenceRecord {
                    trigger: trigger.as_str().into(),
                    location: location.into(),
                    at,
                    files: 0,
                    bytes: 0,
                    error: Some(format!("[recorder] location: {e}")),
                }));
            }
        };
        tracing::info!(trigger = trigger.as_str(), location = %target.location(), "recording evidence");
        let files = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let limit = self.config.recorder.timeout;
        let work = async {
            let proxies: Vec<&str> = [
                &self.config.proxy.http_proxy,
                &self.config.proxy.https_proxy,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
            let artifacts = collect::collect(self.paths, self.container_scope, &proxies).await;
            let total = artifacts.len();
            let errors = upload(self.aws, &target, artifacts, &files, &bytes).await;
            (total, errors)
        };
        let error = match tokio::time::timeout(limit, work).await {
            Ok((_, errors)) if errors.is_empty() => None,
            Ok((total, errors)) => Some(format!(
                "{} of {total} files not uploaded: {}",
                errors.len(),
                errors.join("; ")
            )),
            Err(_) => Some(format!(
                "gave up after [recorder] timeout = {}s with {} files uploaded",
                limit.as_secs(),
                files.load(Ordering::SeqCst)
            )),
        };
        let record = EvidenceRecord {
            trigger: trigger.as_str().into(),
            location: target.location(),
            at,
            files: files.load(Ordering::SeqCst),
            bytes: bytes.load(Ordering::SeqCst),
            error,
        };
        Some(self.finish(record))
    }

    fn finish(&self, mut record: EvidenceRecord) -> EvidenceRecord {
        match &record.error {
            Some(e) => {
                tracing::warn!(location = %record.location, error = %e, "evidence recording incomplete")
            }
            None => {
                tracing::info!(location = %record.location, files = record.files, bytes = record.bytes, "evidence recorded")
            }
        }
        if let Some(e) = &mut record.error {
            crate::status::bounds::cap_text(e, crate::status::bounds::WARNING);
        }
        crate::evidence::save(self.paths, &record);
        record
    }
}

/// Puts every artifact under the target, side by side; the errors, one per file that failed.
async fn upload(
    aws: &Aws,
    target: &Target,
    artifacts: Vec<Artifact>,
    files: &AtomicUsize,
    bytes: &AtomicU64,
) -> Vec<String> {
    let s3 = aws.s3();
    let puts = artifacts.into_iter().map(|a| {
        let s3 = s3.clone();
        let key = format!("{}{}", target.key_prefix, a.name);
        async move {
            let len = a.body.len() as u64;
            let res = s3
                .put_object()
                .bucket(&target.bucket)
                .key(&key)
                .content_type("text/plain; charset=utf-8")
                .body(a.body.into_bytes().into())
                .send()
                .await;
            match res {
                Ok(_) => {
                    files.fetch_add(1, Ordering::SeqCst);
                    bytes.fetch_add(len, Ordering::SeqCst);
                    None
                }
                Err(e) => Some(format!("{}: {}", a.name, describe(&e))),
            }
        }
    });
    join_all(puts).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_instance_then_timestamp_under_the_prefix() {
        let at = time::macros::datetime!(2026-11-30 14:05:09 UTC);
        let t = Target::new("s3://ev-1/boots/", "i-0abc", at).unwrap();
        assert_eq!(t.bucket, "ev-1");
        assert_eq!(t.key_prefix, "boots/i-0abc/20261130T140509Z/");
        assert_eq!(t.location(), "s3://ev-1/boots/i-0abc/20261130T140509Z/");
        let odd = Target::new("s3://ev-1/", "../../x", at).unwrap();
        assert_eq!(odd.key_prefix, "unknown-instance/20261130T140509Z/");
    }
}
