//! Configuration: every option is an environment variable (see the README
//! table), parsed and validated here, once, at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use ipnet::IpNet;

/// A configuration problem: names the variable so the one-line start-up
/// error tells the operator exactly what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookie {
    Always,
    Never,
    /// Set `Secure` when the request arrived over HTTPS (per a trusted proxy's
    /// `X-Forwarded-Proto`).
    Auto,
}

/// Who may read `GET /metrics` (`DOCKNAP_METRICS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsAccess {
    /// A login token or API key of any role (the default).
    #[default]
    Auth,
    /// Anyone who reaches the port: for a scraper on a private network.
    Public,
    /// No `/metrics` route at all.
    Off,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub docker_host: String,
    /// More engines (`DOCKNAP_HOSTS`), besides `local`.
    pub hosts: Vec<crate::model::HostConfig>,
    pub admin_username: String,
    pub admin_password: Option<String>,
    /// Who must use two-factor sign-in (`DOCKNAP_REQUIRE_2FA`).
    pub require_2fa: crate::auth::Require2fa,
    /// The rules for new passwords (`DOCKNAP_PASSWORD_MIN_LENGTH`).
    pub password_policy: crate::auth::PasswordPolicy,
    pub default_tz: Tz,
    pub token_ttl: Duration,
    /// Audit entries older than this are pruned behind a checkpoint; `None` keeps all.
    pub audit_retention: Option<Duration>,
    pub secure_cookie: SecureCookie,
    pub metrics: MetricsAccess,
    pub trusted_proxies: Vec<IpNet>,
    /// `DOCKNAP_LOG`: a level, and levels per target (`info,docknap=debug`).
    pub log: tracing_subscriber::filter::Targets,
    pub limits: Limits,
    /// How long the Docker events stream may stay quiet before the container
    /// list is compared with the view (`DOCKNAP_ENGINE_RECHECK`): the bound on
    /// noticing a stream that went silent without closing.
    pub engine_recheck: Duration,
    /// Where people reach DockNap (`DOCKNAP_PUBLIC_URL`), without a trailing
    /// slash; `None`: taken from each request.
    pub public_url: Option<String>,
    /// Single sign-on (`DOCKNAP_OIDC_*`); `None` when `DOCKNAP_OIDC_ISSUER` is unset.
    pub oidc: Option<OidcConfig>,
    /// `DOCKNAP_NOTIFY_URLS` (or `_FILE`), `DOCKNAP_NOTIFY_CA_FILE`, and the
    /// tests-only `DOCKNAP_NOTIFY_TEST_BASE_URL`.
    pub notify: NotifySettings,
}

/// Notification settings; the URLs are secrets (`Debug` shows only their count).
#[derive(Clone, Default)]
pub struct NotifySettings {
    pub urls: Vec<String>,
    pub ca_pem: Option<String>,
    pub test_base: Option<String>,
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotifySettings({} URLs)", self.urls.len())
    }
}

/// `DOCKNAP_NOTIFY_URLS` (or the file `DOCKNAP_NOTIFY_URLS_FILE` names):
/// channel URLs separated by spaces or new lines (a comma can be part of a
/// URL: `to=a@x,b@y`). Checked by the notifier at start-up.
fn notify_settings(get: &impl Fn(&str) -> Option<String>) -> Result<NotifySettings, ConfigError> {
    let urls = secret(get, "DOCKNAP_NOTIFY_URLS", "DOCKNAP_NOTIFY_URLS_FILE")?
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let ca_pem = match get("DOCKNAP_NOTIFY_CA_FILE").filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(path) => {
            let pem = std::fs::read_to_string(path.trim())
                .map_err(|e| err("DOCKNAP_NOTIFY_CA_FILE", format!("cannot read '{path}': {e}")))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(err("DOCKNAP_NOTIFY_CA_FILE", format!("'{path}' holds no PEM certificate")));
            }
            Some(pem)
        }
    };
    let test_base = get("DOCKNAP_NOTIFY_TEST_BASE_URL")
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .filter(|v| !v.is_empty());
    if let Some(b) = &test_base {
        if !oidc_url_allowed(b) || !b.starts_with("http://") {
            return Err(err(
                "DOCKNAP_NOTIFY_TEST_BASE_URL",
                format!("'{b}' must be an http:// loopback address (it is for tests only)"),
            ));
        }
    }
    Ok(NotifySettings { urls, ca_pem, test_base })
}

/// An OpenID Connect provider (authorization code flow with PKCE).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Exactly as the provider writes it in its tokens' `iss`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The claim holding the user's groups (`DOCKNAP_OIDC_ROLES_CLAIM`).
    pub roles_claim: String,
    pub admin_groups: Vec<String>,
    pub operator_groups: Vec<String>,
    pub viewer_groups: Vec<String>,
    pub scopes: String,
    /// Shown on the login page's button.
    pub name: String,
    /// Extra trusted CA certificates (PEM), for a provider behind a private CA.
    pub ca_pem: Option<String>,
}

/// Bounds on what one client can hold: time to send a request head and a
/// body, idle keep-alive time, time a response write may block, and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From accept (or from the first byte after an idle keep-alive) to the
    /// end of the request head.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the request body.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// A response the client's socket has not accepted a byte of for this
    /// long (a client that stopped reading) ends its connection.
    pub write_timeout: Duration,
    /// Open connections at once; when all are taken, new ones wait in the
    /// listen backlog until one closes.
    pub max_connections: usize,
    /// Open `/api/events` streams, in total and per user.
    pub max_streams: usize,
    pub max_streams_per_user: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_streams: 256,
            max_streams_per_user: 16,
        }
    }
}

/// The largest count any limit accepts.
const MAX_COUNT: usize = 1_000_000;

pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parses configuration from any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());

        let listen = var("DOCKNAP_LISTEN").unwrap_or_else(|| "0.0.0.0:8080".into());
        let listen = listen
            .parse()
            .map_err(|_| err("DOCKNAP_LISTEN", format!("'{listen}' is not an address like 0.0.0.0:8080")))?;

        let data_dir = PathBuf::from(var("DOCKNAP_DATA_DIR").unwrap_or_else(|| "./data".into()));

        let docker_host = var("DOCKER_HOST").unwrap_or_else(|| DEFAULT_DOCKER_HOST.into());
        if !(docker_host.starts_with("unix://") || docker_host.starts_with("tcp://")) {
            return Err(err("DOCKER_HOST", format!("'{docker_host}' must start with unix:// or tcp://")));
        }

        let hosts = crate::model::parse_host_list(&var("DOCKNAP_HOSTS").unwrap_or_default())
            .map_err(|e| err("DOCKNAP_HOSTS", e.to_string()))?;

        let audit_retention = match var("DOCKNAP_AUDIT_RETENTION") {
            None => None,
            Some(r) => {
                let d = humantime::parse_duration(&r)
                    .map_err(|_| err("DOCKNAP_AUDIT_RETENTION", format!("'{r}' is not a duration like 365d or 90d")))?;
                if d < Duration::from_secs(86400) {
                    return Err(err("DOCKNAP_AUDIT_RETENTION", format!("'{r}' must be at least 1d")));
                }
                Some(d)
            }
        };

        let admin_username = var("DOCKNAP_ADMIN_USERNAME").unwrap_or_else(|| "admin".into());
        crate::auth::validate_username(&admin_username).map_err(|e| err("DOCKNAP_ADMIN_USERNAME", e.to_string()))?;

        let admin_password = secret(&get, "DOCKNAP_ADMIN_PASSWORD", "DOCKNAP_ADMIN_PASSWORD_FILE")?;
        if let Some(p) = &admin_password {
            crate::auth::validate_password(p).map_err(|e| err("DOCKNAP_ADMIN_PASSWORD", e.to_string()))?;
        }

        let require_2fa = match var("DOCKNAP_REQUIRE_2FA").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("none") => crate::auth::Require2fa::None,
            Some("admin") => crate::auth::Require2fa::Admin,
            Some("all") => crate::auth::Require2fa::All,
            Some(other) => return Err(err("DOCKNAP_REQUIRE_2FA", format!("'{other}' must be none, admin or all"))),
        };

        let min_length = match var("DOCKNAP_PASSWORD_MIN_LENGTH") {
            None => crate::auth::DEFAULT_MIN_LENGTH,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (crate::auth::LOWEST_MIN_LENGTH..=128).contains(&n) => n,
                _ => {
                    let lowest = crate::auth::LOWEST_MIN_LENGTH;
                    return Err(err(
                        "DOCKNAP_PASSWORD_MIN_LENGTH",
                        format!("'{v}' must be a whole number from {lowest} to 128"),
                    ));
                }
            },
        };
        let password_policy = crate::auth::PasswordPolicy { min_length };

        let (tz_var, tz_name) = match var("DOCKNAP_TZ") {
            Some(v) => ("DOCKNAP_TZ", v),
            None => ("TZ", var("TZ").unwrap_or_else(|| "UTC".into())),
        };
        // `TZ=:/etc/localtime` style values are libc-isms; only IANA names are meaningful here.
        let default_tz: Tz = tz_name
            .trim_start_matches(':')
            .parse()
            .map_err(|_| err(tz_var, format!("unknown time zone '{tz_name}' (use an IANA name like Europe/Berlin)")))?;

        let ttl = var("DOCKNAP_TOKEN_TTL").unwrap_or_else(|| "12h".into());
        let token_ttl = humantime::parse_duration(&ttl)
            .map_err(|_| err("DOCKNAP_TOKEN_TTL", format!("'{ttl}' is not a duration like 12h or 30m")))?;
        if token_ttl < Duration::from_secs(60) || token_ttl > Duration::from_secs(366 * 86400) {
            return Err(err("DOCKNAP_TOKEN_TTL", format!("'{ttl}' must be between 1m and 366d")));
        }

        let secure_cookie = match var("DOCKNAP_SECURE_COOKIE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => SecureCookie::Auto,
            Some("true") => SecureCookie::Always,
            Some("false") => SecureCookie::Never,
            Some(other) => return Err(err("DOCKNAP_SECURE_COOKIE", format!("'{other}' must be true, false or auto"))),
        };
        let metrics = match var("DOCKNAP_METRICS").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auth") => MetricsAccess::Auth,
            Some("public") => MetricsAccess::Public,
            Some("off") => MetricsAccess::Off,
            Some(other) => return Err(err("DOCKNAP_METRICS", format!("'{other}' must be auth, public or off"))),
        };

        let trusted_proxies = var("DOCKNAP_TRUSTED_PROXIES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<IpNet>()
                            .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                            .map_err(|_| err("DOCKNAP_TRUSTED_PROXIES", format!("'{s}' is not a CIDR like 10.0.0.0/8")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let recheck = var("DOCKNAP_ENGINE_RECHECK").unwrap_or_else(|| "60s".into());
        let engine_recheck = humantime::parse_duration(&recheck)
            .map_err(|_| err("DOCKNAP_ENGINE_RECHECK", format!("'{recheck}' is not a duration like 60s or 5m")))?;
        if engine_recheck < Duration::from_secs(1) || engine_recheck > Duration::from_secs(3600) {
            return Err(err("DOCKNAP_ENGINE_RECHECK", format!("'{recheck}' must be between 1s and 1h")));
        }

        let public_url = var("DOCKNAP_PUBLIC_URL")
            .map(|u| {
                let u = u.trim().trim_end_matches('/').to_string();
                match u.parse::<axum::http::Uri>() {
                    Ok(uri)
                        if matches!(uri.scheme_str(), Some("http" | "https"))
                            && uri.host().is_some()
                            && uri.query().is_none() =>
                    {
                        Ok(u)
                    }
                    _ => Err(err(
                        "DOCKNAP_PUBLIC_URL",
                        format!("'{u}' is not an address like https://docknap.example.com"),
                    )),
                }
            })
            .transpose()?;
        let oidc = oidc_config(&get)?;
        let notify = notify_settings(&get)?;

        let log = var("DOCKNAP_LOG").unwrap_or_else(|| "info".into());
        let log = log.parse::<tracing_subscriber::filter::Targets>().map_err(|e| {
            err("DOCKNAP_LOG", format!("'{log}' is not a log filter (LEVEL or TARGET=LEVEL, by commas): {e}"))
        })?;

        let d = Limits::default();
        let limits = Limits {
            header_timeout: timeout(&var, "DOCKNAP_HEADER_TIMEOUT", d.header_timeout)?,
            body_timeout: timeout(&var, "DOCKNAP_BODY_TIMEOUT", d.body_timeout)?,
            idle_timeout: timeout(&var, "DOCKNAP_IDLE_TIMEOUT", d.idle_timeout)?,
            write_timeout: timeout(&var, "DOCKNAP_WRITE_TIMEOUT", d.write_timeout)?,
            max_connections: count(&var, "DOCKNAP_MAX_CONNECTIONS", d.max_connections)?,
            max_streams: count(&var, "DOCKNAP_MAX_STREAMS", d.max_streams)?,
            max_streams_per_user: count(&var, "DOCKNAP_MAX_STREAMS_PER_USER", d.max_streams_per_user)?,
        };

        Ok(Config {
            listen,
            data_dir,
            docker_host,
            hosts,
            admin_username,
            admin_password,
            require_2fa,
            password_policy,
            default_tz,
            token_ttl,
            audit_retention,
            secure_cookie,
            metrics,
            trusted_proxies,
            log,
            limits,
            engine_recheck,
            public_url,
            oidc,
            notify,
        })
    }
}

/// May DockNap talk to this URL of the provider? `https://`, or `http://` to
/// a loopback address only (a provider on the same machine, and tests):
/// codes and tokens never cross a network in the clear.
pub fn oidc_url_allowed(url: &str) -> bool {
    let Ok(uri) = url.parse::<axum::http::Uri>() else { return false };
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback()),
        _ => false,
    }
}

fn oidc_config(get: &impl Fn(&str) -> Option<String>) -> Result<Option<OidcConfig>, ConfigError> {
    let var = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let Some(issuer) = var("DOCKNAP_OIDC_ISSUER") else { return Ok(None) };
    if !oidc_url_allowed(&issuer) {
        return Err(err(
            "DOCKNAP_OIDC_ISSUER",
            format!("'{issuer}' must be an https:// address (http:// only to a loopback address)"),
        ));
    }
    let client_id = var("DOCKNAP_OIDC_CLIENT_ID")
        .ok_or_else(|| err("DOCKNAP_OIDC_CLIENT_ID", "required with DOCKNAP_OIDC_ISSUER"))?;
    let client_secret =
        secret(get, "DOCKNAP_OIDC_CLIENT_SECRET", "DOCKNAP_OIDC_CLIENT_SECRET_FILE")?.ok_or_else(|| {
            err("DOCKNAP_OIDC_CLIENT_SECRET", "required with DOCKNAP_OIDC_ISSUER (or DOCKNAP_OIDC_CLIENT_SECRET_FILE)")
        })?;
    let groups = |k: &str| -> Vec<String> {
        var(k)
            .map(|v| v.split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    };
    let (admin_groups, operator_groups, viewer_groups) = (
        groups("DOCKNAP_OIDC_ADMIN_GROUPS"),
        groups("DOCKNAP_OIDC_OPERATOR_GROUPS"),
        groups("DOCKNAP_OIDC_VIEWER_GROUPS"),
    );
    if admin_groups.is_empty() && operator_groups.is_empty() && viewer_groups.is_empty() {
        return Err(err(
            "DOCKNAP_OIDC_ADMIN_GROUPS",
            "set at least one of DOCKNAP_OIDC_ADMIN_GROUPS, DOCKNAP_OIDC_OPERATOR_GROUPS, DOCKNAP_OIDC_VIEWER_GROUPS (nobody could sign in)",
        ));
    }
    let ca_pem = var("DOCKNAP_OIDC_CA_FILE")
        .map(|path| {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| err("DOCKNAP_OIDC_CA_FILE", format!("cannot read '{path}': {e}")))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(err("DOCKNAP_OIDC_CA_FILE", format!("'{path}' holds no PEM certificate")));
            }
            Ok(pem)
        })
        .transpose()?;
    let host = issuer.parse::<axum::http::Uri>().ok().and_then(|u| u.host().map(String::from)).unwrap_or_default();
    Ok(Some(OidcConfig {
        name: var("DOCKNAP_OIDC_NAME").unwrap_or(host),
        roles_claim: var("DOCKNAP_OIDC_ROLES_CLAIM").unwrap_or_else(|| "groups".into()),
        scopes: var("DOCKNAP_OIDC_SCOPES").unwrap_or_else(|| "openid profile email groups".into()),
        issuer,
        client_id,
        client_secret,
        admin_groups,
        operator_groups,
        viewer_groups,
        ca_pem,
    }))
}

/// A duration from 1 s to 1 h.
fn timeout(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = var(name) else { return Ok(default) };
    let d = humantime::parse_duration(v.trim())
        .map_err(|_| err(name, format!("'{v}' is not a duration like 10s or 1m")))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        return Err(err(name, format!("'{v}' must be between 1s and 1h")));
    }
    Ok(d)
}

/// A whole number from 1 to [`MAX_COUNT`].
fn count(var: &impl Fn(&str) -> Option<String>, name: &'static str, default: usize) -> Result<usize, ConfigError> {
    let Some(v) = var(name) else { return Ok(default) };
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(err(name, format!("'{v}' must be a whole number from 1 to {MAX_COUNT}"))),
    }
}

/// A secret from `VAR`, or from the file named by `VAR_FILE` (Docker secrets).
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<String>, ConfigError> {
    match (get(var).filter(|v| !v.is_empty()), get(file_var).filter(|v| !v.is_empty())) {
        (Some(_), Some(_)) => Err(err(var, format!("set either {var} or {file_var}, not both"))),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| err(file_var, format!("cannot read '{path}': {e}"))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.token_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.default_tz, chrono_tz::UTC);
        assert_eq!(c.admin_username, "admin");
        assert_eq!(c.secure_cookie, SecureCookie::Auto);
        assert_eq!(c.metrics, MetricsAccess::Auth);
        assert!(c.admin_password.is_none());
        assert_eq!(c.engine_recheck, Duration::from_secs(60));
        assert!(c.hosts.is_empty());
        assert_eq!(c.audit_retention, None);
        assert_eq!(
            parse(&[("DOCKNAP_AUDIT_RETENTION", "365d")]).unwrap().audit_retention,
            Some(Duration::from_secs(365 * 86400))
        );
        assert!(
            parse(&[("DOCKNAP_AUDIT_RETENTION", "1h")])
                .unwrap_err()
                .to_string()
                .starts_with("DOCKNAP_AUDIT_RETENTION: ")
        );
        assert_eq!(c.require_2fa, crate::auth::Require2fa::None);
        assert_eq!(c.password_policy.min_length, 12);
        assert_eq!(parse(&[("DOCKNAP_REQUIRE_2FA", "Admin")]).unwrap().require_2fa, crate::auth::Require2fa::Admin);
        assert_eq!(parse(&[("DOCKNAP_PASSWORD_MIN_LENGTH", "16")]).unwrap().password_policy.min_length, 16);
        let two = parse(&[("DOCKNAP_HOSTS", "nas=tcp://10.0.0.5:2375,pi@lab=unix:///run/pi.sock")]).unwrap().hosts;
        assert_eq!(two.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["nas", "pi"]);
        let e = parse(&[("DOCKNAP_HOSTS", "nas=http://x")]).unwrap_err().to_string();
        assert!(e.starts_with("DOCKNAP_HOSTS: ") && e.contains("unix:// or tcp://"), "{e}");
        assert_eq!(parse(&[("DOCKNAP_ENGINE_RECHECK", "5s")]).unwrap().engine_recheck, Duration::from_secs(5));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.body_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.limits.write_timeout, Duration::from_secs(30));
        assert_eq!((c.limits.max_connections, c.limits.max_streams, c.limits.max_streams_per_user), (1024, 256, 16));
    }

    #[test]
    fn limits_parse() {
        let c = parse(&[
            ("DOCKNAP_HEADER_TIMEOUT", "1s"),
            ("DOCKNAP_BODY_TIMEOUT", "2m"),
            ("DOCKNAP_IDLE_TIMEOUT", "1h"),
            ("DOCKNAP_WRITE_TIMEOUT", "45s"),
            ("DOCKNAP_MAX_CONNECTIONS", "10"),
            ("DOCKNAP_MAX_STREAMS", " 5 "),
            ("DOCKNAP_MAX_STREAMS_PER_USER", "1"),
        ])
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                header_timeout: Duration::from_secs(1),
                body_timeout: Duration::from_secs(120),
                idle_timeout: Duration::from_secs(3600),
                write_timeout: Duration::from_secs(45),
                max_connections: 10,
                max_streams: 5,
                max_streams_per_user: 1,
            }
        );
    }

    #[test]
    fn bad_limits_name_their_variable() {
        for var in ["DOCKNAP_HEADER_TIMEOUT", "DOCKNAP_BODY_TIMEOUT", "DOCKNAP_IDLE_TIMEOUT", "DOCKNAP_WRITE_TIMEOUT"] {
            for value in ["soon", "10", "500ms", "2h", "-1s"] {
                let e = parse(&[(var, value)]).unwrap_err();
                assert_eq!(e.var, var, "{value}");
                assert!(e.to_string().starts_with(var), "{e}");
            }
        }
        for var in ["DOCKNAP_MAX_CONNECTIONS", "DOCKNAP_MAX_STREAMS", "DOCKNAP_MAX_STREAMS_PER_USER"] {
            for value in ["0", "-3", "many", "1.5", "1000001"] {
                let e = parse(&[(var, value)]).unwrap_err();
                assert_eq!(e.var, var, "{value}");
                assert!(e.to_string().starts_with(var), "{e}");
            }
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("DOCKNAP_TOKEN_TTL", "forever"),
            ("DOCKNAP_TZ", "Mars/Olympus"),
            ("DOCKNAP_LISTEN", "nope"),
            ("DOCKNAP_SECURE_COOKIE", "maybe"),
            ("DOCKNAP_METRICS", "open"),
            ("DOCKNAP_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("DOCKER_HOST", "ftp://x"),
            ("DOCKNAP_ADMIN_PASSWORD", "short"),
            ("DOCKNAP_ENGINE_RECHECK", "soon"),
            ("DOCKNAP_ENGINE_RECHECK", "100ms"),
            ("DOCKNAP_ENGINE_RECHECK", "2h"),
            ("DOCKNAP_REQUIRE_2FA", "some"),
            ("DOCKNAP_PASSWORD_MIN_LENGTH", "6"),
            ("DOCKNAP_PASSWORD_MIN_LENGTH", "twelve"),
        ] {
            let e = parse(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    #[test]
    fn oidc_and_public_url() {
        let base = [
            ("DOCKNAP_OIDC_ISSUER", "https://auth.example.com"),
            ("DOCKNAP_OIDC_CLIENT_ID", "docknap"),
            ("DOCKNAP_OIDC_CLIENT_SECRET", "s3cret"),
            ("DOCKNAP_OIDC_VIEWER_GROUPS", " staff, ops ,"),
        ];
        let o = parse(&base).unwrap().oidc.unwrap();
        assert_eq!((o.name.as_str(), o.roles_claim.as_str()), ("auth.example.com", "groups"));
        assert_eq!(o.viewer_groups, ["staff", "ops"]);
        assert!(parse(&[]).unwrap().oidc.is_none());
        let with = |k: &'static str, v: &'static str| {
            let mut vars: Vec<_> = base.iter().filter(|(b, _)| *b != k).copied().collect();
            vars.push((k, v));
            parse(&vars)
        };
        assert!(with("DOCKNAP_OIDC_ISSUER", "http://127.0.0.1:9000").is_ok(), "http to loopback");
        for (k, v) in [
            ("DOCKNAP_OIDC_ISSUER", "http://auth.example.com"),
            ("DOCKNAP_OIDC_ISSUER", "ftp://x"),
            ("DOCKNAP_OIDC_CLIENT_ID", ""),
            ("DOCKNAP_OIDC_CLIENT_SECRET", ""),
            ("DOCKNAP_OIDC_VIEWER_GROUPS", ","),
            ("DOCKNAP_OIDC_CA_FILE", "/nonexistent/ca.pem"),
        ] {
            let e = with(k, v).unwrap_err();
            assert!(e.var.starts_with("DOCKNAP_OIDC_"), "{k}={v}: {e}");
        }
        assert_eq!(
            parse(&[("DOCKNAP_PUBLIC_URL", "https://d.example.com/")]).unwrap().public_url.as_deref(),
            Some("https://d.example.com")
        );
        assert_eq!(parse(&[("DOCKNAP_PUBLIC_URL", "d.example.com")]).unwrap_err().var, "DOCKNAP_PUBLIC_URL");
    }

    #[test]
    fn tz_falls_back_to_tz_then_utc() {
        assert_eq!(parse(&[("TZ", "Europe/Berlin")]).unwrap().default_tz, chrono_tz::Europe::Berlin);
        assert_eq!(
            parse(&[("TZ", "Europe/Berlin"), ("DOCKNAP_TZ", "Asia/Tokyo")]).unwrap().default_tz,
            chrono_tz::Asia::Tokyo
        );
        assert_eq!(parse(&[("TZ", "Nowhere/Land")]).unwrap_err().var, "TZ");
    }

    #[test]
    fn password_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "correct horse battery\n").unwrap();
        let c = parse(&[("DOCKNAP_ADMIN_PASSWORD_FILE", f.to_str().unwrap())]).unwrap();
        assert_eq!(c.admin_password.as_deref(), Some("correct horse battery"));
    }

    #[test]
    fn trusted_proxies_accept_cidrs_and_plain_addresses() {
        let c = parse(&[("DOCKNAP_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn notify_urls_split_on_spaces_and_lines_come_from_a_file_and_the_test_base_is_loopback_only() {
        let c =
            parse(&[("DOCKNAP_NOTIFY_URLS", "ntfy://ntfy.sh/a smtp://h/?from=a@b&to=c@d,e@f\n generic+https://x/y")])
                .unwrap();
        assert_eq!(c.notify.urls, ["ntfy://ntfy.sh/a", "smtp://h/?from=a@b&to=c@d,e@f", "generic+https://x/y"]);
        assert_eq!(format!("{:?}", c.notify), "NotifySettings(3 URLs)", "Debug shows no URL");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("urls");
        std::fs::write(&f, "discord://t@1\n").unwrap();
        assert_eq!(parse(&[("DOCKNAP_NOTIFY_URLS_FILE", f.to_str().unwrap())]).unwrap().notify.urls, ["discord://t@1"]);
        let e = parse(&[("DOCKNAP_NOTIFY_URLS", "a"), ("DOCKNAP_NOTIFY_URLS_FILE", "/x")]).unwrap_err();
        assert_eq!(e.var, "DOCKNAP_NOTIFY_URLS");
        assert!(parse(&[("DOCKNAP_NOTIFY_TEST_BASE_URL", "http://127.0.0.1:9")]).is_ok());
        let e = parse(&[("DOCKNAP_NOTIFY_TEST_BASE_URL", "https://discord.example.com")]).unwrap_err();
        assert_eq!(e.var, "DOCKNAP_NOTIFY_TEST_BASE_URL");
        assert_eq!(
            parse(&[("DOCKNAP_NOTIFY_CA_FILE", "/nonexistent/ca.pem")]).unwrap_err().var,
            "DOCKNAP_NOTIFY_CA_FILE"
        );
    }
}
