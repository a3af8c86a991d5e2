//! Answers read with a running size cap: a body is read chunk by chunk and refused as soon as it
//! passes the cap, so an oversized answer costs at most the cap (plus one chunk) of memory, with
//! or without a Content-Length. Every source reads its answers through here.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::OnceLock;
use thiserror::Error;

/// An answer larger than its cap; carries the cap only (never any of the answer).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("answer larger than the {} limit", human(*.limit))]
pub struct TooLarge {
    pub limit: usize,
}

/// `64 KiB`, `4 MiB`, or bytes.
pub fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b}-byte"),
    }
}

/// Why a capped read failed.
#[derive(Debug, Error)]
pub enum ReadError<E: std::error::Error + 'static> {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("reading the answer: {0}")]
    Body(#[source] E),
}

/// Collects chunks until the end, refusing the body once it passes `limit`.
pub struct Collector {
    limit: usize,
    body: Vec<u8>,
}

impl Collector {
    /// `declared` is the Content-Length, if any: refused before a byte is read when over.
    pub fn new(limit: usize, declared: Option<u64>) -> Result<Collector, TooLarge> {
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(TooLarge { limit });
        }
        Ok(Collector {
            limit,
            body: Vec::new(),
        })
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        if self.body.len().saturating_add(chunk.len()) > self.limit {
            return Err(TooLarge { limit: self.limit });
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        self.body
    }
}

/// A reqwest answer's body, at most `limit` bytes.
pub async fn read_reqwest(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError<reqwest::Error>> {
    let mut body = Collector::new(limit, resp.content_length())?;
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Body)? {
        body.push(&chunk)?;
    }
    Ok(body.finish())
}

/// An S3 object's body, at most `limit` bytes, whatever Content-Length said (or did not say).
pub async fn read_byte_stream(
    mut stream: aws_sdk_s3::primitives::ByteStream,
    limit: usize,
) -> Result<Vec<u8>, ReadError<aws_sdk_s3::primitives::ByteStreamError>> {
    let mut body = Collector::new(limit, None)?;
    while let Some(chunk) = stream.next().await {
        body.push(&chunk.map_err(ReadError::Body)?)?;
    }
    Ok(body.finish())
}

/// An HTTP client for aws-config's IMDS client, whose answers it caps at `limit` bytes. The IMDS
/// client reads each answer whole into memory before it parses it and offers no hook to bound
/// that, but it takes its HTTP client from `ProviderConfig`: this one hands it bodies that fail
/// once they pass the cap. Plain HTTP and never a proxy: IMDS is link-local.
#[derive(Debug)]
pub struct CappedHttpClient {
    limit: usize,
    connector: OnceLock<SharedHttpConnector>,
}

impl CappedHttpClient {
    pub fn shared(limit: usize) -> SharedHttpClient {
        SharedHttpClient::new(CappedHttpClient {
            limit,
            connector: OnceLock::new(),
        })
    }
}

impl HttpClient for CappedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The IMDS client always asks with the same settings (its builder's timeouts): one
        // connector, one connection pool.
        self.connector
            .get_or_init(|| {
                let mut inner = aws_smithy_http_client::Connector::builder()
                    .connector_settings(settings.clone());
                inner.set_sleep_impl(components.sleep_impl());
                SharedHttpConnector::new(CappedConnector {
                    inner: SharedHttpConnector::new(inner.build_http()),
                    limit: self.limit,
                })
            })
            .clone()
    }
}

#[derive(Debug)]
struct CappedConnector {
    inner: SharedHttpConnector,
    limit: usize,
}

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let answer = self.inner.call(request);
        let limit = self.limit;
        HttpConnectorFuture::new(async move {
            let response = answer.await?;
            Ok(response
                .map(move |body| SdkBody::from_body_1_x(http_body_util::Limited::new(body, limit))))
        })
    }
}

/// Whether `e` or one of its sources is a capped body passing its limit.
pub fn is_over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() || err.is::<TooLarge>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A one-page HTTP/1.1 server on 127.0.0.1 for tests of capped readers: every request gets
/// `body`, with a Content-Length or chunked (none), plus IMDS's token answer for `PUT`.
#[cfg(test)]
pub mod test_server {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers every GET with `total` bytes, chunked, and then never ends the body: a client that
    /// reads everything before looking at the size waits for its timeout instead.
    pub async fn serve_unending(total: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                    if sock.write_all(head).await.is_err() {
                        return;
                    }
                    let chunk = [b'x'; 8192];
                    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                    frame.extend_from_slice(&chunk);
                    frame.extend(b"\r\n");
                    for _ in 0..total / chunk.len() {
                        if sock.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    std::future::pending::<()>().await;
                });
            }
        });
        url
    }

    pub async fn serve(body: Vec<u8>, content_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = std::sync::Arc::new(body);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if sock.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let text = String::from_utf8_lossy(&head);
                        let answer: &[u8] = if text.starts_with("PUT") {
                            b"token"
                        } else {
                            &body
                        };
                        let mut out =
                            b"HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
                                .to_vec();
                        if content_length || text.starts_with("PUT") {
                            out.extend(format!("content-length: {}\r\n\r\n", answer.len()).bytes());
                            out.extend_from_slice(answer);
                            if sock.write_all(&out).await.is_err() {
                                return;
                            }
                        } else {
                            out.extend(b"transfer-encoding: chunked\r\n\r\n");
                            if sock.write_all(&out).await.is_err() {
                                return;
                            }
                            for chunk in answer.chunks(8192) {
                                let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                                c.extend_from_slice(chunk);
                                c.extend(b"\r\n");
                                if sock.write_all(&c).await.is_err() {
                                    return;
                                }
                            }
                            if sock.write_all(b"0\r\n\r\n").await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_refuses_past_the_limit_without_keeping_more() {
        assert_eq!(
            Collector::new(4, Some(5)).err(),
            Some(TooLarge { limit: 4 }),
            "a declared length over the cap is refused before reading"
        );
        let mut c = Collector::new(4, None).unwrap();
        c.push(b"ab").unwrap();
        c.push(b"cd").unwrap();
        assert_eq!(c.push(b"e"), Err(TooLarge { limit: 4 }));
        assert_eq!(c.finish(), b"abcd");
    }

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(
            TooLarge { limit: 64 << 10 }.to_string(),
            "answer larger than the 64 KiB limit"
        );
        assert_eq!(human(4 << 20), "4 MiB");
        assert_eq!(human(1000), "1000-byte");
    }
}
