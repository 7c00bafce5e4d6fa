//! The HTTP client for the provider: discovery, keys, token and userinfo
//! requests. Trusts Mozilla's roots (compiled in: a scratch image has no
//! system store) plus `DOCKNAP_OIDC_CA_FILE`; every request has a deadline,
//! so a provider that hangs fails its sign-in instead of holding it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::de::DeserializeOwned;

use super::OidcError;
use crate::config::oidc_url_allowed;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents, key sets and token responses are small.
const MAX_RESPONSE: usize = 1024 * 1024;

pub struct ProviderClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl ProviderClient {
    pub fn new(extra_ca: Option<&str>) -> Result<ProviderClient, String> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(pem) = extra_ca {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("DOCKNAP_OIDC_CA_FILE: {e}"))?;
                roots.add(cert).map_err(|e| format!("DOCKNAP_OIDC_CA_FILE: {e}"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        // http:// is let through only for loopback URLs ([`oidc_url_allowed`], checked per request).
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(ProviderClient { client: Client::builder(TokioExecutor::new()).build(https) })
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &str, bearer: Option<&str>) -> Result<T, OidcError> {
        let mut req = Request::builder().method(Method::GET).uri(url).header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(url, req.body(Body::empty())).await
    }

    /// A form POST with HTTP Basic client authentication (`client_secret_basic`).
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        basic: (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<T, OidcError> {
        use base64::Engine;
        // RFC 6749 2.3.1: both halves are form-encoded before joining.
        let enc = |s: &str| serde_urlencoded::to_string([("", s)]).expect("strings encode")[1..].to_string();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(basic.0), enc(basic.1)));
        let body = serde_urlencoded::to_string(form).expect("strings encode");
        let req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Basic {credentials}"))
            .body(Body::from(body));
        self.send(url, req).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: &str,
        req: Result<Request<Body>, axum::http::Error>,
    ) -> Result<T, OidcError> {
        if !oidc_url_allowed(url) {
            return Err(OidcError::Provider(format!("refusing {url}: not https:// (http:// only to loopback)")));
        }
        let req = req.map_err(|e| OidcError::Provider(format!("bad URL {url}: {e}")))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| OidcError::Unreachable(format!("{url}: {e}")))?;
            let status = resp.status();
            let body = axum::body::to_bytes(Body::new(resp.into_body()), MAX_RESPONSE)
                .await
                .map_err(|e| OidcError::Unreachable(format!("{url}: {e}")))?;
            Ok::<_, OidcError>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| OidcError::Unreachable(format!("{url}: no answer within {} s", TIMEOUT.as_secs())))??;
        if status != StatusCode::OK {
            // The provider's error code only: its body may echo what we sent.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_default();
            return Err(OidcError::Provider(format!("{url} answered {status} {code}")));
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Provider(format!("{url} answered unreadable JSON: {e}")))
    }
}
