//! The one CloudWatch call ecs-boot makes, PutMetricData, signed (SigV4) with the SDK's
//! credentials and sent through the SDK's HTTP client (rustls over ring as in
//! src/sources/aws.rs, proxies from the environment as
//! the SDK's default client reads them). The endpoint follows the SDK's variables:
//! `AWS_ENDPOINT_URL_CLOUDWATCH`, else `AWS_ENDPOINT_URL`, else the regional endpoint.

use super::{Datum, Sink, query};
use crate::sources::aws::Aws;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_http_client::{Connector, proxy::ProxyConfig, tls};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

/// An error answer is a small XML document; more is not read.
const ANSWER_CAP: usize = 16 << 10;

pub struct CloudWatch {
    aws: Aws,
    region: String,
    endpoint: String,
    connector: Connector,
}

impl CloudWatch {
    pub fn new(aws: &Aws) -> CloudWatch {
        let region = aws.region().unwrap_or_else(|| "us-east-1".into());
        let endpoint = endpoint(
            std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH").ok(),
            std::env::var("AWS_ENDPOINT_URL").ok(),
            &region,
        );
        let connector = Connector::builder()
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build();
        CloudWatch {
            aws: aws.clone(),
            region,
            endpoint,
            connector,
        }
    }

    async fn send(&self, namespace: &str, data: &[Datum]) -> Result<(), String> {
        let body = query::put_metric_data(namespace, data, time::OffsetDateTime::now_utc());
        let provider = self
            .aws
            .sdk()
            .credentials_provider()
            .ok_or("no AWS credentials provider")?;
        let creds =
            aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider)
                .await
                .map_err(|e| format!("credentials: {e}"))?;
        let identity: Identity = creds.into();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.endpoint)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header(
                "user-agent",
                format!("ecs-boot/{}", crate::util::version::VERSION),
            )
            .body(body.clone())
            .map_err(|e| format!("the request: {e}"))?;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("monitoring")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request = request.map(SdkBody::from);
        let request = aws_smithy_runtime_api::client::orchestrator::HttpRequest::try_from(request)
            .map_err(|e| format!("the request: {e}"))?;
        let response = self
            .connector
            .call(request)
            .await
            .map_err(|e| format!("{}: {}", self.endpoint, chain(&e)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let answer = http_body_util::Limited::new(response.into_body(), ANSWER_CAP)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Err(format!("HTTP {status}: {}", error_code(&answer)))
    }
}

impl Sink for CloudWatch {
    fn put<'a>(
        &'a self,
        namespace: &'a str,
        data: &'a [Datum],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.send(namespace, data))
    }
}

/// The endpoint the SDK would use for CloudWatch.
fn endpoint(service: Option<String>, global: Option<String>, region: &str) -> String {
    let chosen = service
        .filter(|u| !u.is_empty())
        .or(global.filter(|u| !u.is_empty()));
    match chosen {
        Some(u) => format!("{}/", u.trim_end_matches('/')),
        None if region.starts_with("cn-") => {
            format!("https://monitoring.{region}.amazonaws.com.cn/")
        }
        None => format!("https://monitoring.{region}.amazonaws.com/"),
    }
}

/// `Code: Message` from a Query error answer (`<Error><Code>..</Code><Message>..</Message>`),
/// each cut short; the answer itself is never quoted whole.
fn error_code(answer: &str) -> String {
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let start = answer.find(&open)? + open.len();
        let len = answer[start..].find(&format!("</{tag}>"))?;
        Some(
            answer[start..start + len]
                .chars()
                .take(200)
                .collect::<String>(),
        )
    };
    match (field("Code"), field("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => "no error code in the answer".into(),
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_follows_the_sdk_variables() {
        assert_eq!(
            endpoint(Some("http://127.0.0.1:5000".into()), None, "eu-west-1"),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint(None, Some("http://127.0.0.1:9/".into()), "eu-west-1"),
            "http://127.0.0.1:9/"
        );
        assert_eq!(
            endpoint(None, None, "eu-west-1"),
            "https://monitoring.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint(None, None, "cn-north-1"),
            "https://monitoring.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn errors_give_code_and_message_only() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
        assert_eq!(error_code(xml), "AccessDenied: not allowed");
        assert_eq!(
            error_code("<html>secret</html>"),
            "no error code in the answer"
        );
    }
}
