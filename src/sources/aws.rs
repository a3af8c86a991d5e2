//! AWS SDK clients. Endpoints come only from the SDK's standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary runs against AWS and against emulators.

use crate::sources::capped;
use crate::sources::https::https_client;
use crate::sources::location::Location;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;
use thiserror::Error;

#[derive(Clone)]
pub struct Aws {
    sdk: SdkConfig,
}

#[derive(Debug, Error)]
#[error("{location}: {problem}")]
pub struct FetchError {
    pub location: String,
    pub problem: String,
    /// The request never left: no credentials could be loaded (no instance role), so the
    /// object's permissions are not the cause.
    pub no_credentials: bool,
}

/// What `describe` says when the SDK could load no credentials. The chain's own message nests
/// every provider's debug output; on an instance the two that count are these.
const NO_CREDENTIALS: &str =
    "no AWS credentials: none in the environment, and IMDS gave no instance role's credentials";

/// Whether `e` failed before sending because no credentials could be loaded.
pub fn credentials_missing(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// A fetched object or parameter. `secure` says whether SSM stored it encrypted.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub secure: bool,
}

/// An SDK error as one line: the service's code and message when it answered, else the chain of
/// causes (connection refused, timeout, ...). Neither carries request payloads.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    if credentials_missing(e) {
        return NO_CREDENTIALS.to_string();
    }
    match e.as_service_error() {
        Some(se) => match (se.code(), se.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => DisplayErrorContext(e).to_string(),
        },
        None => DisplayErrorContext(e).to_string(),
    }
}

/// The service error code, if the service answered.
pub fn error_code<E: ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
}

/// The codes AWS's protocols answer a call refused by a rate limit with (smithy's throttling
/// classifier knows the same): such a call was never considered, so sending it again is safe.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Whether the service refused the call for its rate limit.
pub fn throttled<E: ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    error_code(e).is_some_and(|c| THROTTLING_CODES.contains(&c.as_str()))
}

/// Where an instance's agent takes credentials from: the environment (a test, an emulator, an
/// override in a systemd drop-in), then the instance role through IMDS — the two `describe`
/// names when neither has any. Not the SDK's default chain: its profile files, SSO, web-identity
/// and container providers are for other hosts, a profile file dropped on the instance must not
/// choose the agent's identity, and building the web-identity provider's STS client was 10 % of
/// the config phase's instructions (bench/results/profile-boot.md). Operator commands run
/// off-instance keep the default chain (`load_default`).
fn instance_credentials(http: SharedHttpClient) -> CredentialsProviderChain {
    let imds = ProviderConfig::default().with_http_client(http);
    CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Ec2InstanceMetadata",
        ImdsCredentialsProvider::builder().configure(&imds).build(),
    )
}

impl Aws {
    /// `region` is the instance's, from its identity document, unless `AWS_REGION` overrides it.
    pub async fn load(region: &str) -> Aws {
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| region.to_string());
        // One client for the SDK and the IMDS credentials provider: one connector cache.
        let http = https_client();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .credentials_provider(instance_credentials(http))
            .region(Region::new(region))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(5)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(40))
                    .build(),
            )
            .load()
            .await;
        Aws { sdk }
    }

    /// For operator commands run off-instance (`fleet`): `region` if given, else the SDK's
    /// default chain (`AWS_REGION`, the profile). Needs no instance identity.
    pub async fn load_default(region: Option<&str>) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(5)
                    .with_initial_backoff(Duration::from_millis(200)),
            );
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        Aws {
            sdk: loader.load().await,
        }
    }

    /// The loaded configuration (credentials, region), for the one call made without an SDK
    /// client (src/metrics/cloudwatch.rs).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.to_string())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk);
        // Emulators answer on one host: virtual-hosted style would ask for bucket.127.0.0.1.
        if std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        {
            b = b.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk)
    }

    /// SSM with one attempt per call: for a caller that paces and retries itself (the fleet
    /// collector slows down on each throttle, which the SDK's own retries would hide).
    pub fn ssm_retried_by_caller(&self) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdk)
    }

    /// Auto Scaling with one attempt per call, for the lifecycle action's calls: a completion is
    /// never resent blindly, and a throttled heartbeat or completion is retried by its caller,
    /// paced by the action's timeout (hook/). The SDK's five quick attempts per call would
    /// multiply a scale-in storm's load on the account's rate limit fivefold.
    pub fn autoscaling_retried_by_caller(&self) -> aws_sdk_autoscaling::Client {
        let conf = aws_sdk_autoscaling::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_autoscaling::Client::from_conf(conf)
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// ECS with one attempt per call, for the drain's DRAINING: its caller retries a throttled
    /// call until the drain deadline, and reads the status before resending anything else.
    pub fn ecs_retried_by_caller(&self) -> aws_sdk_ecs::Client {
        let conf = aws_sdk_ecs::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_ecs::Client::from_conf(conf)
    }

    /// Only the operator's `ecs-boot-fleet rollout` calls EC2 (src/fleet/rollout).
    #[cfg(feature = "rollout")]
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.sdk)
    }

    /// Fetches an S3 object or an SSM parameter (decrypted), refusing anything over `max_bytes`.
    pub async fn fetch(
        &self,
        location: &Location,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let fail = |problem: String| FetchError {
            location: location.to_string(),
            problem,
            no_credentials: false,
        };
        let sdk_fail = |e: &(dyn std::error::Error + 'static), problem: String| FetchError {
            no_credentials: credentials_missing(e),
            ..fail(problem)
        };
        let too_large = |n: usize| fail(format!("{n} bytes, over the {max_bytes}-byte limit"));
        match location {
            Location::S3 { bucket, key } => {
                let out = self
                    .s3()
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| sdk_fail(&e, describe(&e)))?;
                if let Some(len) = out.content_length()
                    && u64::try_from(len).unwrap_or(u64::MAX) > max_bytes as u64
                {
                    return Err(too_large(usize::try_from(len).unwrap_or(usize::MAX)));
                }
                // Read with a running cap: an object served without Content-Length (or with a
                // wrong one) must not be buffered whole first.
                let bytes = capped::read_byte_stream(out.body, max_bytes)
                    .await
                    .map_err(|e| match e {
                        capped::ReadError::TooLarge(_) => {
                            fail(format!("more than the {max_bytes}-byte limit"))
                        }
                        capped::ReadError::Body(e) => fail(format!("reading the body: {e}")),
                    })?;
                Ok(Fetched {
                    bytes,
                    secure: false,
                })
            }
            Location::Ssm { name } => {
                let out = self
                    .ssm()
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| sdk_fail(&e, describe(&e)))?;
                let p = out
                    .parameter()
                    .ok_or_else(|| fail("no parameter in the answer".into()))?;
                // The SDK has read the whole answer already; SSM bounds it (a parameter value is
                // at most 8 KiB), and the cap below still holds for an emulator that does not.
                let value = p.value().unwrap_or_default().as_bytes().to_vec();
                if value.len() > max_bytes {
                    return Err(too_large(value.len()));
                }
                let secure = matches!(
                    p.r#type(),
                    Some(aws_sdk_ssm::types::ParameterType::SecureString)
                );
                Ok(Fetched {
                    bytes: value,
                    secure,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::capped::test_server;

    async fn aws_at(url: &str) -> Aws {
        Aws {
            sdk: crate::sources::https::tests::sdk_at(url, https_client()).await,
        }
    }

    #[tokio::test]
    async fn an_s3_object_without_content_length_is_capped_while_it_streams() {
        let s3 = Location::parse("s3://b-1/creds.json").unwrap();
        for content_length in [true, false] {
            let url = test_server::serve(vec![b'x'; 100_000], content_length).await;
            let err = aws_at(&url)
                .await
                .fetch(&s3, 65_536)
                .await
                .err()
                .unwrap_or_else(|| panic!("content_length={content_length}: accepted"))
                .to_string();
            assert!(
                err.starts_with("s3://b-1/creds.json: ") && err.contains("65536-byte limit"),
                "{err}"
            );
        }
        // 64 MiB and no end: only a reader that stops at the cap answers before its timeout.
        let url = test_server::serve_unending(64 << 20).await;
        let err = aws_at(&url)
            .await
            .fetch(&s3, 65_536)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("65536-byte limit"), "{err}");
        let url = test_server::serve(b"{}".to_vec(), false).await;
        assert_eq!(
            aws_at(&url).await.fetch(&s3, 65_536).await.unwrap().bytes,
            b"{}"
        );
    }
}
