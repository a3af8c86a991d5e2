//! IMDSv2 through aws-config's client (token fetch, TTL header, refresh, 401 re-auth, and the
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` override). We add retries for 429 and connect timeouts,
//! read 404 as "absent", and cap every answer at `MAX_ANSWER` (the client itself would read any
//! size into memory).

use aws_config::imds::client::Client;
use aws_config::imds::client::error::ImdsError;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, SharedRetryClassifier,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("IMDS {path}: {message}")]
pub struct ImdsFailure {
    pub path: String,
    pub message: String,
    /// The HTTP status, when IMDS answered.
    pub status: Option<u16>,
}

/// The instance identity document: one call gives id, region, AZ and type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub instance_id: String,
    pub region: String,
    /// For `${account_id}` in the trusted config layers.
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default)]
    pub instance_type: String,
}

/// `spot/instance-action`: a stop, hibernate or terminate is scheduled at `time`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SpotAction {
    pub action: String,
    pub time: String,
}

/// The largest answer read from IMDS. The biggest one ecs-boot asks for is the identity document
/// (about 500 bytes); tag values are at most 256 characters, the tag list at most 50 user tags.
pub const MAX_ANSWER: usize = 64 << 10;

/// More keys than EC2 allows an instance (50 user tags, plus `aws:` ones) means a broken answer.
pub const MAX_TAGS: usize = 128;

#[derive(Clone)]
pub struct Imds {
    /// Replaced when IMDS rejects the cached session token (see `get_opt`).
    client: Arc<Mutex<Client>>,
    timeout: Duration,
    /// Set by tests; else the SDK's resolution (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, ...).
    endpoint: Option<String>,
}

/// The SDK's classifier plus 429 (IMDS throttles per instance) and connect timeouts (IMDS can be
/// slow to come up early in boot).
#[derive(Debug)]
struct RetryThrottlingToo;

impl ClassifyRetry for RetryThrottlingToo {
    fn name(&self) -> &'static str {
        "ecs-boot IMDS retry classifier"
    }

    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(429) => RetryAction::throttling_error(),
            // Retrying with the same cached token cannot help: `Imds::get_opt` starts over.
            Some(401) => RetryAction::NoActionIndicated,
            Some(s) if s >= 500 => RetryAction::server_error(),
            Some(_) => RetryAction::NoActionIndicated,
            None => RetryAction::transient_error(),
        }
    }
}

impl Imds {
    pub fn new(timeout: Duration) -> Imds {
        Imds {
            client: Arc::new(Mutex::new(Self::build(timeout, None))),
            timeout,
            endpoint: None,
        }
    }

    #[cfg(test)]
    fn with_endpoint(endpoint: &str, timeout: Duration) -> Imds {
        Imds {
            client: Arc::new(Mutex::new(Self::build(timeout, Some(endpoint)))),
            timeout,
            endpoint: Some(endpoint.to_string()),
        }
    }

    fn build(timeout: Duration, endpoint: Option<&str>) -> Client {
        let capped = aws_config::provider_config::ProviderConfig::default()
            .with_http_client(crate::sources::capped::CappedHttpClient::shared(MAX_ANSWER));
        let builder = Client::builder()
            .configure(&capped)
            .max_attempts(5)
            .connect_timeout(Duration::from_secs(1))
            .read_timeout(Duration::from_secs(2))
            .operation_timeout(timeout)
            .retry_classifier(SharedRetryClassifier::new(RetryThrottlingToo));
        match endpoint.map(|e| builder.clone().endpoint(e)) {
            Some(Ok(b)) => b.build(),
            _ => builder.build(),
        }
    }

    /// GETs `path`; `Ok(None)` when IMDS says 404.
    pub async fn get_opt(&self, path: &str) -> Result<Option<String>, ImdsFailure> {
        let client = self.client.lock().expect("imds client lock").clone();
        let mut result = client.get(path).await;
        if let Err(ImdsError::ErrorResponse(r)) = &result
            && r.response().status().as_u16() == 401
        {
            // The SDK keeps a cached token until its TTL runs out, even after IMDS rejected it
            // (IMDS restarted, tokens revoked), so its own 401 retries reuse the dead token. A
            // fresh client fetches a fresh token.
            tracing::info!(path, "IMDS rejected the session token; fetching a new one");
            let fresh = Self::build(self.timeout, self.endpoint.as_deref());
            *self.client.lock().expect("imds client lock") = fresh.clone();
            result = fresh.get(path).await;
        }
        match result {
            Ok(v) => Ok(Some(v.as_ref().to_string())),
            Err(ImdsError::ErrorResponse(e)) if e.response().status().as_u16() == 404 => Ok(None),
            Err(e) => {
                let status = match &e {
                    ImdsError::ErrorResponse(r) => Some(r.response().status().as_u16()),
                    _ => None,
                };
                Err(ImdsFailure {
                    path: path.to_string(),
                    message: describe(&e),
                    status,
                })
            }
        }
    }

    pub async fn get(&self, path: &str) -> Result<String, ImdsFailure> {
        self.get_opt(path).await?.ok_or_else(|| ImdsFailure {
            path: path.into(),
            message: "not found (404)".into(),
            status: Some(404),
        })
    }

    pub async fn identity(&self) -> Result<Identity, ImdsFailure> {
        parse_identity(&self.get(IDENTITY_PATH).await?)
    }

    /// All instance tags; `None` when tags in instance metadata are disabled (404 on the list).
    pub async fn tags(&self) -> Result<Option<BTreeMap<String, String>>, ImdsFailure> {
        let Some(list) = self.get_opt(TAGS_PATH).await? else {
            return Ok(None);
        };
        // Read the values side by side: an ASG instance has a handful of tags, well within
        // IMDS's connection limit, and a boot should not wait for them one round trip at a time.
        let keys: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if keys.len() > MAX_TAGS {
            return Err(ImdsFailure {
                path: TAGS_PATH.into(),
                message: format!(
                    "{} tag keys, more than the {MAX_TAGS} an instance can have",
                    keys.len()
                ),
                status: None,
            });
        }
        let reads = keys.into_iter().map(|key| async move {
            let value = self
                .get_opt(&format!("/latest/meta-data/tags/instance/{key}"))
                .await?;
            Ok::<_, ImdsFailure>(value.map(|v| (key.to_string(), v)))
        });
        // A tag removed between the list and the read is simply gone.
        let tags = futures_util::future::try_join_all(reads).await?;
        Ok(Some(tags.into_iter().flatten().collect()))
    }

    /// `autoscaling/target-lifecycle-state`; `None` until the instance transitions toward a state.
    pub async fn target_lifecycle_state(&self) -> Result<Option<String>, ImdsFailure> {
        Ok(self
            .get_opt("/latest/meta-data/autoscaling/target-lifecycle-state")
            .await?
            .map(|s| s.trim().to_string()))
    }

    /// `instance-life-cycle`, the purchasing option: `on-demand`, `spot`, ...; `None` if IMDS has
    /// no answer (404). Only a spot instance can get a spot interruption notice.
    pub async fn instance_life_cycle(&self) -> Result<Option<String>, ImdsFailure> {
        Ok(self
            .get_opt("/latest/meta-data/instance-life-cycle")
            .await?
            .map(|s| s.trim().to_string()))
    }

    pub async fn spot_action(&self) -> Result<Option<SpotAction>, ImdsFailure> {
        let Some(body) = self.get_opt(SPOT_PATH).await? else {
            return Ok(None);
        };
        parse_spot_action(&body).map(Some)
    }

    pub async fn rebalance_recommended(&self) -> Result<bool, ImdsFailure> {
        Ok(self
            .get_opt("/latest/meta-data/events/recommendations/rebalance")
            .await?
            .is_some())
    }
}

const IDENTITY_PATH: &str = "/latest/dynamic/instance-identity/document";
const TAGS_PATH: &str = "/latest/meta-data/tags/instance";
const SPOT_PATH: &str = "/latest/meta-data/spot/instance-action";

/// The identity document IMDS answered; the error names the path.
pub fn parse_identity(doc: &str) -> Result<Identity, ImdsFailure> {
    let fail = |message: String| ImdsFailure {
        path: IDENTITY_PATH.into(),
        message,
        status: None,
    };
    let id: Identity = serde_json::from_str(doc)
        .map_err(|e| fail(format!("not an identity document ({})", json_problem(&e))))?;
    // These values are substituted into the trusted config layers: hold them to their shapes.
    let shaped = |v: &str, max: usize, ok: fn(char) -> bool| {
        !v.is_empty() && v.len() <= max && v.chars().all(ok)
    };
    if !shaped(&id.instance_id, 32, |c| {
        c.is_ascii_alphanumeric() || c == '-'
    }) || !id.instance_id.starts_with("i-")
    {
        return Err(fail("instanceId is not an instance id".into()));
    }
    if !shaped(&id.region, 32, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    }) {
        return Err(fail("region is not a region name".into()));
    }
    if !id.account_id.is_empty() && !shaped(&id.account_id, 12, |c| c.is_ascii_digit()) {
        return Err(fail("accountId is not an account id".into()));
    }
    Ok(id)
}

/// serde_json's message without the values it may quote: the kind of problem and where.
pub fn json_problem(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected fields or types",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

/// The spot instance action IMDS answered; the error names the path.
pub fn parse_spot_action(body: &str) -> Result<SpotAction, ImdsFailure> {
    serde_json::from_str(body).map_err(|e| ImdsFailure {
        path: SPOT_PATH.into(),
        message: format!("not a spot instance action ({})", json_problem(&e)),
        status: None,
    })
}

/// One line naming the HTTP status where there is one; the SDK's Display chains sources.
fn describe(e: &ImdsError) -> String {
    if crate::sources::capped::is_over_limit(e) {
        return crate::sources::capped::TooLarge { limit: MAX_ANSWER }.to_string();
    }
    match e {
        ImdsError::ErrorResponse(r) => format!("HTTP {}", r.response().status().as_u16()),
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::capped::test_server;

    fn identity_padded_to(len: usize) -> Vec<u8> {
        let head = r#"{"instanceId":"i-1","region":"us-east-1","pad":""#;
        let mut doc = head.as_bytes().to_vec();
        doc.resize(len.saturating_sub(2).max(head.len()), b'x');
        doc.extend(b"\"}");
        doc
    }

    #[tokio::test]
    async fn answers_over_the_cap_are_refused_with_or_without_a_length() {
        for content_length in [true, false] {
            let url = test_server::serve(identity_padded_to(MAX_ANSWER + 1), content_length).await;
            let imds = Imds::with_endpoint(&url, Duration::from_secs(5));
            let err = imds.identity().await.unwrap_err().to_string();
            assert!(
                err.contains(IDENTITY_PATH) && err.contains("64 KiB limit"),
                "content_length={content_length}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn answers_within_the_cap_are_read() {
        let url = test_server::serve(identity_padded_to(MAX_ANSWER), false).await;
        let imds = Imds::with_endpoint(&url, Duration::from_secs(5));
        assert_eq!(imds.identity().await.unwrap().instance_id, "i-1");
    }

    #[tokio::test]
    async fn a_tag_list_longer_than_ec2_allows_is_refused() {
        let list: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}")).collect();
        let url = test_server::serve(list.join("\n").into_bytes(), true).await;
        let imds = Imds::with_endpoint(&url, Duration::from_secs(5));
        let err = imds.tags().await.unwrap_err().to_string();
        assert!(
            err.contains(TAGS_PATH) && err.contains("129 tag keys"),
            "{err}"
        );
    }
}
