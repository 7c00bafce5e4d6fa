//! Mutual TLS to a `tcp://` engine, with the PEM material held in memory.
//!
//! bollard's own `ssl` feature reads the material from files and trusts the
//! system's roots; here nothing touches the disk and the only trust anchor is
//! the CA given with the host: an engine's API is root on its machine, so a
//! certificate some public CA issued for that name proves nothing.

use std::error::Error as StdError;
use std::sync::Arc;

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{AlertDescription, CertificateError, ClientConfig, InconsistentKeys, RootCertStore};

use crate::model::TlsMaterial;

/// What is wrong with the TLS material, naming the field (never its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("tls.ca: not a PEM certificate")]
    Ca,
    #[error("tls.cert: not a PEM certificate")]
    Cert,
    #[error("tls.key: not a PEM private key")]
    Key,
    #[error("tls.key: not a supported private key (RSA, ECDSA or Ed25519)")]
    KeyType,
    #[error("tls.cert and tls.key do not match")]
    KeyMismatch,
    #[error("TLS needs a tcp://host:port URL, not {0}")]
    Url(String),
}

/// A parsed TLS setup for one engine: where to dial and how to check it.
/// Cheap to turn into a client, so a client dropped after a connection error
/// is rebuilt without parsing the PEM again.
pub struct TlsClient {
    /// `host:port` from the URL; the host is the name (or IP) the engine's certificate must carry.
    authority: String,
    config: ClientConfig,
}

impl TlsClient {
    pub fn new(url: &str, m: &TlsMaterial) -> Result<TlsClient, TlsError> {
        let authority = url
            .strip_prefix("tcp://")
            .map(|a| a.trim_end_matches('/'))
            // A port of its own: https:// would otherwise mean 443, not Docker's 2376.
            .filter(|a| {
                !a.contains('/') && a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            })
            .ok_or_else(|| TlsError::Url(url.to_string()))?;
        Ok(TlsClient { authority: authority.to_string(), config: client_config(m)? })
    }

    /// A bollard client over HTTPS with this configuration.
    pub fn docker(&self, timeout: u64) -> Docker {
        let mut http = HttpConnector::new();
        // The connector gets `https://` URIs; TLS on top is hyper-rustls's job.
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.config.clone())
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        // As bollard's own clients: no idle pool, so a dropped client leaves no connection behind.
        let client = Arc::new(Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(https));
        let host = self.authority.clone();
        let transport = move |req: BollardRequest| {
            let client = Arc::clone(&client);
            let host = host.clone();
            async move {
                client
                    .request(req)
                    .await
                    .map_err(|e| bollard::errors::Error::from(std::io::Error::other(describe(&e, &host))))
            }
        };
        Docker::connect_with_custom_transport(
            transport,
            Some(format!("https://{}", self.authority)),
            timeout,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a custom transport cannot fail to connect")
    }
}

fn client_config(m: &TlsMaterial) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certificates(&m.ca).ok_or(TlsError::Ca)? {
        roots.add(ca).map_err(|_| TlsError::Ca)?;
    }
    let chain = certificates(&m.cert).ok_or(TlsError::Cert)?;
    let key = PrivateKeyDer::from_pem_slice(m.key.as_bytes()).map_err(|_| TlsError::Key)?;
    let key = certified_key(chain, key, &provider)?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))))
}

/// The certificates in a PEM bundle; `None` when there is none or one is broken.
fn certificates(pem: &str) -> Option<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().ok()?;
    (!certs.is_empty()).then_some(certs)
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let key = provider.key_provider.load_private_key(key).map_err(|_| TlsError::KeyType)?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        // Unknown: the key type cannot say; the engine's handshake will.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(TlsError::KeyMismatch),
        Err(_) => Err(TlsError::Cert),
    }
}

/// A connection error as one line: the whole cause chain (hyper's own top
/// level only says "client error (Connect)"), led by what a TLS failure
/// means for the material.
fn describe(e: &(dyn StdError + 'static), host: &str) -> String {
    let mut chain = Vec::new();
    let mut tls = None;
    let mut cur = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        tls = tls.or_else(|| rustls_error(err).cloned());
        cur = err.source();
    }
    chain.dedup();
    let chain = chain.join(": ");
    match tls.and_then(|t| meaning(&t, host)).or_else(|| hung_up_after_handshake(e).then(|| HUNG_UP.to_string())) {
        Some(m) => format!("{m} ({chain})"),
        None => chain,
    }
}

/// In TLS 1.3 the engine checks our certificate after our side of the
/// handshake is done; its refusal (an alert, then a close) can reach the
/// connection before the request does, and hyper then reports only that the
/// new connection closed before it was ready. Fresh connections only (no idle
/// pool), so the engine hung up on this one.
const HUNG_UP: &str = "TLS: the engine closed the connection right after the handshake; most likely it refused our client certificate (tls.cert is not signed by a CA it trusts)";

fn hung_up_after_handshake(mut err: &(dyn StdError + 'static)) -> bool {
    loop {
        if err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) {
            return true;
        }
        match err.source() {
            Some(next) => err = next,
            None => return false,
        }
    }
}

/// The rustls error in `err`, looking through io::Errors wrapping io::Errors
/// (their source() skips the error they wrap).
fn rustls_error<'a>(mut err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(e) = err.downcast_ref::<rustls::Error>() {
            return Some(e);
        }
        err = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

fn meaning(e: &rustls::Error, host: &str) -> Option<String> {
    use AlertDescription as A;
    Some(match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "TLS: the engine's certificate is not signed by the CA in tls.ca".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            let name = host.rsplit_once(':').map_or(host, |(name, _port)| name);
            format!("TLS: the engine's certificate is not valid for {name} (not among its subject alternative names)")
        }
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate,
        ) => "TLS: the engine refused our client certificate (tls.cert is not signed by a CA it trusts)".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    struct Pki {
        ca: String,
        cert: String,
        key: String,
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        Pki { ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() }
    }

    fn material(p: &Pki) -> TlsMaterial {
        TlsMaterial { ca: p.ca.clone(), cert: p.cert.clone(), key: p.key.clone() }
    }

    fn err(m: &TlsMaterial) -> String {
        match TlsClient::new("tcp://10.0.0.5:2376", m) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_material_makes_a_client() {
        let c = TlsClient::new("tcp://10.0.0.5:2376/", &material(&pki())).unwrap();
        assert_eq!(c.authority, "10.0.0.5:2376");
        assert_eq!(TlsClient::new("tcp://[fd00::5]:2376", &material(&pki())).unwrap().authority, "[fd00::5]:2376");
    }

    #[test]
    fn each_bad_part_is_named_and_never_echoed() {
        let p = pki();
        let other = pki();
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n";
        let cases = [
            (TlsMaterial { ca: "garbage".into(), ..material(&p) }, "tls.ca: not a PEM certificate"),
            (TlsMaterial { ca: p.key.clone(), ..material(&p) }, "tls.ca: not a PEM certificate"),
            (TlsMaterial { cert: String::new(), ..material(&p) }, "tls.cert: not a PEM certificate"),
            (TlsMaterial { key: p.cert.clone(), ..material(&p) }, "tls.key: not a PEM private key"),
            (
                TlsMaterial { key: secret.into(), ..material(&p) },
                "tls.key: not a supported private key (RSA, ECDSA or Ed25519)",
            ),
            (TlsMaterial { key: other.key.clone(), ..material(&p) }, "tls.cert and tls.key do not match"),
        ];
        for (m, want) in cases {
            let got = err(&m);
            assert_eq!(got, want);
            assert!(!got.contains("BEGIN") && !got.contains("c2VjcmV0"), "{got}");
        }
    }

    #[test]
    fn tls_needs_a_tcp_url() {
        let m = material(&pki());
        for url in [
            "unix:///var/run/docker.sock",
            "tcp://",
            "tcp://x",
            "tcp://:2376",
            "tcp://[::1]",
            "https://x:2376",
            "tcp://x:2376/path",
        ] {
            assert!(TlsClient::new(url, &m).is_err(), "{url}");
        }
    }

    #[test]
    fn handshake_failures_say_what_to_fix() {
        // As hyper-rustls hands them over: an io::Error in an io::Error.
        let io = |e: rustls::Error| std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        let unknown = io(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(
            describe(&unknown, "h:1").starts_with("TLS: the engine's certificate is not signed by the CA in tls.ca")
        );
        let name = io(rustls::Error::InvalidCertificate(CertificateError::NotValidForName));
        assert!(describe(&name, "localhost:2376").contains("not valid for localhost (not among"));
        let refused = io(rustls::Error::AlertReceived(AlertDescription::CertificateRequired));
        assert!(describe(&refused, "h:1").contains("refused our client certificate"));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(describe(&plain, "h:1"), plain.to_string());
    }
}
