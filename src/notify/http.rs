//! The HTTP side of deliveries: one client (Mozilla's roots plus
//! `DOCKNAP_NOTIFY_CA_FILE`), a deadline per request, Standard Webhooks
//! signatures.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::services::HttpCall;

/// Answers are read only this far (errors and Slack's `{"ok": …}`).
const MAX_RESPONSE: usize = 64 * 1024;

/// What an endpoint answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds (the delta form; a date counts as 60 s).
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

/// The TLS settings of every notification endpoint (HTTP and SMTP).
pub fn tls_config(extra_ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_ca {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("DOCKNAP_NOTIFY_CA_FILE: {e}"))?;
            roots.add(cert).map_err(|e| format!("DOCKNAP_NOTIFY_CA_FILE: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

impl HttpClient {
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> HttpClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpClient { client: Client::builder(TokioExecutor::new()).build(https), timeout }
    }

    /// Sends one call; `Err` is a transport failure (no answer). The error
    /// never holds the URL: its path and query are where tokens live.
    pub async fn send(&self, call: &HttpCall, extra: &[(&'static str, String)]) -> Result<Answer, String> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&call.url)
            .header(header::CONTENT_TYPE, call.content_type)
            .header(header::USER_AGENT, concat!("DockNap/", env!("CARGO_PKG_VERSION")));
        for (k, v) in call.headers.iter().chain(extra) {
            req = req.header(*k, v);
        }
        let req = req
            .body(Body::from(call.body.clone()))
            .map_err(|_| "the channel URL is not a valid address".to_string())?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| describe(&e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().parse().unwrap_or(60));
            let body = http_body_util_limited(resp.into_body()).await;
            Ok(Answer { status, retry_after, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", self.timeout.as_secs())))
    }
}

/// The first [`MAX_RESPONSE`] bytes of a body (a failed read is an empty body:
/// the status already says what happened).
async fn http_body_util_limited(body: hyper::body::Incoming) -> Vec<u8> {
    axum::body::to_bytes(Body::new(body), MAX_RESPONSE).await.map(|b| b.to_vec()).unwrap_or_default()
}

/// A transport error without the URL (hyper-util's Display names only the
/// kind; its source chain names the cause, e.g. "Connection refused").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut out = if e.is_connect() { "cannot connect".to_string() } else { "the connection failed".to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out = format!("{out}: {s}");
        source = s.source();
    }
    out
}

/// Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
/// the key being the base64 after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = decode_secret(secret)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// A signing secret as Standard Webhooks writes it: `whsec_` and base64 of
/// 24 to 64 random bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").ok_or("a webhook secret starts with whsec_ (Standard Webhooks)")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "a webhook secret is whsec_ followed by base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err("a webhook secret holds 24 to 64 bytes".into());
    }
    Ok(key)
}

/// A new random secret, for channels created without one.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_must_be_whsec_base64_of_a_sensible_length() {
        assert!(decode_secret(&new_secret()).is_ok());
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret("whsec_not base64").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err());
    }
}
