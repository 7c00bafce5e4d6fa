//! Docker engines DockNap manages: `local` (from `DOCKER_HOST`) and the
//! hosts of `DOCKNAP_HOSTS` and the API.

use serde::{Deserialize, Serialize};

use super::{InvalidValue, vocabulary};

/// Where a host was declared: `DOCKNAP_HOSTS`/`DOCKER_HOST` (read-only in
/// the API) or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostSource {
    Env,
    Api,
}

vocabulary!(HostSource, HostSource, { Env => "env", Api => "api" });

/// PEM strings for mutual TLS to a `tcp://` engine: the CA that signed the
/// engine's certificate (nothing else is trusted), and our client
/// certificate and key. Write-only: never serialised, never logged.
#[derive(Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct TlsMaterial {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial(redacted)")
    }
}

/// A host as declared: how to reach it. The engine connection, its status
/// and its containers live with the host registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    pub name: String,
    pub url: String,
    pub group: Option<String>,
    pub source: HostSource,
    pub tls: Option<TlsMaterial>,
}

/// `[a-z0-9][a-z0-9-]{0,62}`: host names go into URLs (`?host=`) and labels.
pub fn validate_host_name(name: &str) -> Result<(), InvalidValue> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok { Ok(()) } else { Err(InvalidValue::HostName(name.to_string())) }
}

/// Groups follow the host-name rule: they are filtered on in URLs too.
pub fn validate_group(group: &str) -> Result<(), InvalidValue> {
    validate_host_name(group).map_err(|_| InvalidValue::Group(group.to_string()))
}

/// `unix:///path`, or `tcp://host:port`; TLS material only with `tcp://`.
pub fn validate_host_url(url: &str, tls: bool) -> Result<(), InvalidValue> {
    let bad = |why: &str| Err(InvalidValue::HostUrl(format!("{url}: {why}")));
    if let Some(path) = url.strip_prefix("unix://") {
        if tls {
            return bad("TLS needs a tcp:// URL");
        }
        if !path.starts_with('/') {
            return bad("a unix socket path must be absolute (unix:///var/run/docker.sock)");
        }
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("tcp://") else {
        return bad("the URL must start with unix:// or tcp://");
    };
    let authority = rest.trim_end_matches('/');
    let Some((host, port)) = authority.rsplit_once(':') else {
        return bad("a tcp:// URL needs a port (tcp://10.0.0.5:2376)");
    };
    if host.is_empty() || authority.contains('/') || authority.contains('@') {
        return bad("expected tcp://host:port");
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return bad("the port must be a number from 1 to 65535");
    }
    Ok(())
}

/// `name=url,name=url` (`DOCKNAP_HOSTS`); a name may carry a group as
/// `name@group=url`.
pub fn parse_host_list(s: &str) -> Result<Vec<HostConfig>, InvalidValue> {
    let mut hosts: Vec<HostConfig> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, url)) = item.split_once('=') else {
            return Err(InvalidValue::HostUrl(format!("'{item}': expected name=url")));
        };
        let (name, group) = match key.trim().split_once('@') {
            Some((n, g)) => (n, Some(g.to_string())),
            None => (key.trim(), None),
        };
        validate_host_name(name)?;
        if let Some(g) = &group {
            validate_group(g)?;
        }
        validate_host_url(url.trim(), false)?;
        if name == super::LOCAL_HOST || hosts.iter().any(|h| h.name == name) {
            return Err(InvalidValue::HostName(format!("{name} (declared twice; 'local' is DOCKER_HOST)")));
        }
        hosts.push(HostConfig {
            name: name.to_string(),
            url: url.trim().to_string(),
            group,
            source: HostSource::Env,
            tls: None,
        });
    }
    Ok(hosts)
}

/// `ok`, `unreachable`, or `connecting` until the first attempt finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Connecting,
    Ok,
    Unreachable,
}

vocabulary!(HostStatus, HostStatus, { Connecting => "connecting", Ok => "ok", Unreachable => "unreachable" });

/// A host as the API shows it (the contract's shape). No TLS material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct HostView {
    pub name: String,
    pub url: String,
    #[schema(required = true)]
    pub group: Option<String>,
    pub source: HostSource,
    pub tls: bool,
    pub status: HostStatus,
    #[schema(required = true)]
    pub version: Option<String>,
    pub containers: usize,
    pub swarm_manager: bool,
    #[schema(required = true)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        for ok in ["a", "nas", "pi-2", "0", &"a".repeat(63)] {
            validate_host_name(ok).unwrap();
        }
        for bad in ["", "-a", "Nas", "a_b", "a.b", &"a".repeat(64), "héte"] {
            assert!(validate_host_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_unix_or_tcp_with_a_port() {
        validate_host_url("unix:///var/run/docker.sock", false).unwrap();
        validate_host_url("tcp://10.0.0.5:2376", true).unwrap();
        validate_host_url("tcp://proxy:2375", false).unwrap();
        for (bad, tls) in [
            ("http://x:1", false),
            ("tcp://x", false),
            ("tcp://x:0", false),
            ("tcp://x:99999", false),
            ("tcp://:2375", false),
            ("unix://relative.sock", false),
            ("unix:///var/run/docker.sock", true),
        ] {
            let e = validate_host_url(bad, tls).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn host_list_parses_names_groups_and_refuses_duplicates() {
        let hosts = parse_host_list("nas=tcp://10.0.0.5:2375, pi@lab=unix:///run/pi.sock,").unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!((hosts[0].name.as_str(), hosts[0].group.as_deref()), ("nas", None));
        assert_eq!((hosts[1].name.as_str(), hosts[1].group.as_deref()), ("pi", Some("lab")));
        assert!(parse_host_list("a=tcp://x:1,a=tcp://y:1").is_err());
        assert!(parse_host_list("local=tcp://x:1").is_err());
        assert!(parse_host_list("nas").is_err());
        assert!(parse_host_list("Nas=tcp://x:1").is_err());
    }

    #[test]
    fn tls_material_never_prints() {
        let t = TlsMaterial { ca: "CA".into(), cert: "CERT".into(), key: "SECRET".into() };
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
