//! The HTTP client under every SDK client and aws-config's credential providers.
//!
//! The SDK's default client (hyper 1, rustls, the system's trust store, proxies from
//! `HTTPS_PROXY` / `NO_PROXY`), with two changes:
//!
//! - **ring** as rustls' crypto instead of aws-lc, a much larger C library (sizes in
//!   bench/results/README.md). The cost: no post-quantum key exchange (aws-lc's
//!   X25519MLKEM768), named in the README.
//! - **TLS is set up when the first `https://` request is made**, not when a client is created.
//!   The SDK's own client builds a TLS connector — which parses the whole system CA bundle — to
//!   validate every client at creation (each SDK client and the STS client of aws-config's
//!   web-identity provider): most of the instructions of a boot's config phase (callgrind, in
//!   bench/results/profile-boot.md). Here a client's creation builds nothing; an `http://`
//!   endpoint (an emulator, a VPC proxy) never loads the trust store at all; the first `https://`
//!   request builds the TLS connector once per connector settings, as the SDK's client caches it.

use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The client every `Aws` is loaded with.
pub fn https_client() -> SharedHttpClient {
    SharedHttpClient::new(ByScheme::new(Arc::default()))
}

/// Plain HTTP for `http://` endpoints, rustls for `https://` ones, each built on first use.
#[derive(Debug, Clone)]
struct ByScheme {
    plain: SharedHttpClient,
    tls: SharedHttpClient,
}

impl ByScheme {
    /// `tls_built` counts TLS connectors built (each loads the trust store): for tests.
    fn new(tls_built: Arc<AtomicUsize>) -> Self {
        let plain = Builder::new().build_with_connector_fn(|settings, components| {
            connector(ConnectorBuilder::default(), settings, components).build_http()
        });
        let tls = Builder::new().build_with_connector_fn(move |settings, components| {
            tls_built.fetch_add(1, Ordering::Relaxed);
            let with_tls = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ));
            connector(with_tls, settings, components).build()
        });
        ByScheme { plain, tls }
    }
}

/// Proxies from the environment, the SDK's timeouts and its sleep, on either kind of connector.
fn connector<T>(
    builder: ConnectorBuilder<T>,
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> ConnectorBuilder<T> {
    let mut builder = builder.proxy_config(ProxyConfig::from_env());
    builder.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        builder.set_sleep_impl(components.sleep_impl());
    }
    builder
}

impl HttpClient for ByScheme {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SchemeConnector {
            client: self.clone(),
            settings: settings.clone(),
            components: components.clone(),
        })
    }
    // `validate_base_client_config` keeps its default (nothing): building a connector there is
    // what made every client creation load the trust store.
}

/// One request's connector: which client serves it is decided by the request's scheme.
#[derive(Debug)]
struct SchemeConnector {
    client: ByScheme,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
}

impl HttpConnector for SchemeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = if request.uri().starts_with("http://") {
            &self.client.plain
        } else {
            &self.client.tls
        };
        client
            .http_connector(&self.settings, &self.components)
            .call(request)
    }
}

#[cfg(test)]
pub(crate) mod tests;
