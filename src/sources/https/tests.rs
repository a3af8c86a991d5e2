//! The scheme split and the trust store, against local servers (plain HTTP and TLS on 127.0.0.1).

use super::*;
use crate::sources::capped::test_server;
use aws_config::{BehaviorVersion, Region};

/// The SDK's configuration for a local server at `url` over `client`, with static test
/// credentials (also src/sources/aws.rs's tests).
pub(crate) async fn sdk_at(url: &str, client: SharedHttpClient) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(client)
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

/// An S3 client at `url` over `client`.
async fn s3_at(url: &str, client: SharedHttpClient) -> aws_sdk_s3::Client {
    let sdk = sdk_at(url, client).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn get(s3: &aws_sdk_s3::Client) -> Result<Vec<u8>, String> {
    let out = s3
        .get_object()
        .bucket("b-1")
        .key("creds.json")
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    let body = out.body.collect().await.map_err(|e| e.to_string())?;
    Ok(body.into_bytes().to_vec())
}

/// Self-signed for 127.0.0.1 (not a CA, valid until 2126): a certificate no trust store has.
const UNTRUSTED_CERT: &str = "\
    -----BEGIN CERTIFICATE-----\n\
    MIIBlDCCATugAwIBAgIUQrX17gHIdurD+G9p5AY+ejXZQ+cwCgYIKoZIzj0EAwIw\n\
    GDEWMBQGA1UEAwwNZWNzLWJvb3QgdGVzdDAgFw0yNjExMzAyMDQyMzZaGA8yMTI2\n\
    MTEwNjIwNDIzNlowGDEWMBQGA1UEAwwNZWNzLWJvb3QgdGVzdDBZMBMGByqGSM49\n\
    AgEGCCqGSM49AwEHA0IABFE/Aq8ewqxCUcpsGmPjYgzK3IJT+qoSWOJJMRDTyrkk\n\
    3Fmh2Y5EYNBzEQK57km59Nrw9d8GBGKjFjmmsSyawMmjYTBfMB0GA1UdDgQWBBQO\n\
    XqiaUhdUId88DDcbT/U6fP/+ZTAfBgNVHSMEGDAWgBQOXqiaUhdUId88DDcbT/U6\n\
    fP/+ZTAPBgNVHREECDAGhwR/AAABMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwID\n\
    RwAwRAIgVWrf50tdrxpZ21EcSurx+4K2lvLRBM79l3REK58ScVQCIAX/cqbxWefh\n\
    7SOc7s0W1rLGWrAq9SNseNrlJCiMBCoe\n\
    -----END CERTIFICATE-----";
const UNTRUSTED_KEY: &str = "\
    -----BEGIN PRIVATE KEY-----\n\
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfJ6QH6W39JGIBeku\n\
    N0LGGb7U+LiJevmoHAZceTA6LiGhRANCAARRPwKvHsKsQlHKbBpj42IMytyCU/qq\n\
    EljiSTEQ08q5JNxZodmORGDQcxECue5JufTa8PXfBgRioxY5prEsmsDJ\n\
    -----END PRIVATE KEY-----";

/// A TLS server on 127.0.0.1 with `UNTRUSTED_CERT` that answers every request `{}`; counts
/// connections accepted and handshakes completed.
async fn serve_untrusted_tls() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(UNTRUSTED_CERT.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(UNTRUSTED_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (accepted, handshakes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counts = (accepted.clone(), handshakes.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, handshakes) = (acceptor.clone(), handshakes.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                handshakes.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, counts.0, counts.1)
}

#[tokio::test]
async fn http_endpoints_never_set_up_tls_and_https_sets_it_up_on_first_use() {
    let built = Arc::new(AtomicUsize::new(0));
    let client = SharedHttpClient::new(ByScheme::new(built.clone()));
    let plain = s3_at(
        &test_server::serve(b"{}".to_vec(), true).await,
        client.clone(),
    )
    .await;
    assert_eq!(
        built.load(Ordering::SeqCst),
        0,
        "creating a client built TLS"
    );
    assert_eq!(get(&plain).await.unwrap(), b"{}");
    assert_eq!(get(&plain).await.unwrap(), b"{}");
    assert_eq!(
        built.load(Ordering::SeqCst),
        0,
        "an http:// request built TLS"
    );

    let (url, accepted, _) = serve_untrusted_tls().await;
    let tls = s3_at(&url, client).await;
    assert_eq!(
        built.load(Ordering::SeqCst),
        0,
        "creating a client built TLS"
    );
    assert!(get(&tls).await.is_err());
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "never reached the server"
    );
    assert_eq!(
        built.load(Ordering::SeqCst),
        1,
        "one TLS connector per settings"
    );
}

#[tokio::test]
async fn the_https_client_refuses_a_certificate_no_trusted_root_signed() {
    let (url, accepted, handshakes) = serve_untrusted_tls().await;
    let err = get(&s3_at(&url, https_client()).await)
        .await
        .expect_err("an object served over TLS with an untrusted certificate was accepted");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "never reached the server"
    );
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        0,
        "a handshake completed"
    );
}
