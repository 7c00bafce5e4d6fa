//! Request extractors: who is calling (and may they), from where, and the
//! JSON body with the contract's error codes.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;
use crate::model::Role;

pub const COOKIE_NAME: &str = "docknap_session";

/// The minimum role a route group needs.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
    /// Open to a user who must set up two-factor sign-in and has not.
    const DURING_ENROLMENT: bool = false;
    /// Open to API keys (most routes); see [`NoKey`].
    const API_KEYS: bool = true;
}
pub struct ViewerRole;
/// Any signed-in user, including one who must first set up two-factor
/// sign-in: for the routes that get them there (me, logout, password, TOTP set-up).
pub struct EnrollingRole;
pub struct OperatorRole;
pub struct AdminRole;
impl MinRole for ViewerRole {
    const ROLE: Role = Role::Viewer;
}
impl MinRole for EnrollingRole {
    const ROLE: Role = Role::Viewer;
    const DURING_ENROLMENT: bool = true;
}
impl MinRole for OperatorRole {
    const ROLE: Role = Role::Operator;
}
impl MinRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// `R`, but for a login session only: an API key cannot make keys, change
/// a password, two-factor sign-in or users, or log out (a leaked key must
/// not become a password, a new key or a new user).
pub struct NoKey<R>(PhantomData<R>);
impl<R: MinRole> MinRole for NoKey<R> {
    const ROLE: Role = R::ROLE;
    const DURING_ENROLMENT: bool = R::DURING_ENROLMENT;
    const API_KEYS: bool = false;
}

/// An authenticated caller holding at least role `R`. Handlers take one of
/// the aliases below; none checks roles by hand.
pub struct Authed<R: MinRole>(pub Principal, PhantomData<R>);
pub type Viewer = Authed<ViewerRole>;
pub type Enrolling = Authed<EnrollingRole>;
pub type Operator = Authed<OperatorRole>;
pub type Admin = Authed<AdminRole>;
pub type ViewerSession = Authed<NoKey<ViewerRole>>;
pub type EnrollingSession = Authed<NoKey<EnrollingRole>>;
pub type AdminSession = Authed<NoKey<AdminRole>>;

impl<R: MinRole> Authed<R> {
    /// The audit actor: the username, or `USERNAME:KEYNAME` for an API key.
    pub fn username(&self) -> &str {
        &self.0.actor
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Did this request come from our own pages? The browser's `Sec-Fetch-Site`
/// says so directly (and survives proxies that rewrite `Host`); without it,
/// `Origin` is compared by host[:port] against `Host` (or the forwarded host
/// from a trusted proxy): the scheme is the proxy's business.
fn same_origin(parts: &Parts, state: &AppState) -> bool {
    let header_str = |h: &str| parts.headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = header_str("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else { return true };
    let Some(origin_host) = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, h)| h) else {
        return false;
    };
    let forwarded = if peer_is_trusted(parts, state) { header_str("x-forwarded-host") } else { None };
    [forwarded, header_str("host")].into_iter().flatten().any(|h| h.eq_ignore_ascii_case(origin_host))
}

fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn peer_is_trusted(parts: &Parts, state: &AppState) -> bool {
    state.is_trusted_proxy(peer(parts))
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port
/// (`192.0.2.1:5000`, `[2001:db8::1]:443`), as some proxies write it.
fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry.parse().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The client's address: the peer, or, behind trusted proxies, the nearest
/// untrusted address in `X-Forwarded-For` (addresses further left can be
/// forged). An entry that cannot be read ends the walk at the hop that
/// wrote it: skipping it would believe what the client wrote before it.
pub fn client_addr(parts: &Parts, state: &AppState) -> IpAddr {
    let mut client = peer(parts);
    let entries: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.into_iter().rev() {
        if !state.is_trusted_proxy(client) {
            break;
        }
        match forwarded_addr(entry) {
            Some(addr) => client = addr,
            None => break,
        }
    }
    client
}

/// Did the request reach the proxy over HTTPS (for `DOCKNAP_SECURE_COOKIE=auto`)?
pub fn is_https(parts: &Parts, state: &AppState) -> bool {
    peer_is_trusted(parts, state)
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Where people reach DockNap: `DOCKNAP_PUBLIC_URL`, else the request's
/// `Host` (or a trusted proxy's `X-Forwarded-Host` and `-Proto`).
pub fn public_base(parts: &Parts, state: &AppState) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    let header_str = |h: &str| parts.headers.get(h).and_then(|v| v.to_str().ok());
    let forwarded = peer_is_trusted(parts, state).then(|| header_str("x-forwarded-host")).flatten();
    let host = forwarded.and_then(|h| h.split(',').next()).or_else(|| header_str("host")).unwrap_or("localhost").trim();
    format!("{}://{host}", if is_https(parts, state) { "https" } else { "http" })
}

impl<R: MinRole> FromRequestParts<AppState> for Authed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, via_cookie) = match bearer_token(&parts.headers) {
            Some(t) => (t, false),
            None => (cookie_token(&parts.headers).ok_or_else(ApiError::unauthenticated)?, true),
        };
        // API keys travel in the Authorization header only, never as the session cookie.
        if via_cookie && token.starts_with(crate::auth::KEY_PREFIX) {
            return Err(ApiError::unauthenticated());
        }
        let principal = state.auth.authenticate(token)?;
        let mutating = matches!(parts.method, Method::POST | Method::PUT | Method::DELETE | Method::PATCH);
        if via_cookie && mutating && !same_origin(parts, state) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", "cross-origin request refused"));
        }
        if principal.user.role < R::ROLE {
            return Err(ApiError::forbidden(format!("this needs the {} role", R::ROLE.as_str())));
        }
        if principal.key.is_some() && !R::API_KEYS {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "api_key_not_allowed",
                "an API key cannot do this: sign in with your password",
            ));
        }
        if principal.must_enrol && !R::DURING_ENROLMENT {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "totp_enrolment_required",
                "set up two-factor sign-in first (POST /api/auth/totp/setup, then /api/auth/totp/enable)",
            ));
        }
        Ok(Authed(principal, PhantomData))
    }
}

pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts, state)))
    }
}

/// Path parameters. One that cannot be read (bad percent-encoding, an id
/// that is not a number) names nothing that exists: 404, in the JSON shape.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::not_found(format!("no such resource: {}", e.body_text()))),
        }
    }
}

/// Query parameters; bad ones are a 400 `invalid_query` in the JSON shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::bad_request("invalid_query", e.body_text())),
        }
    }
}

/// `application/json`, with or without parameters, or a `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A JSON body whose errors use the contract's codes: 413 too large,
/// `missing_field`, `invalid_json`; 408 `body_timeout` when the body did not
/// arrive within `DOCKNAP_BODY_TIMEOUT`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // Only JSON: a text/plain or form body is a "simple" request that any
        // web page can make a browser send here without a CORS preflight.
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if crate::http::BodyTimeout::is_cause_of(&e) {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", e.body_text())
            } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is too large (1 MiB; an import 16 MiB)",
                )
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            let msg = e.to_string();
            let field = |prefix: &str| msg.strip_prefix(prefix).and_then(|r| r.split('`').next()).map(str::to_string);
            if let Some(f) = field("missing field `") {
                ApiError::bad_request("missing_field", format!("missing field '{f}'"))
            } else if let Some(f) = field("unknown field `") {
                ApiError::bad_request("unknown_field", format!("unknown field '{f}'"))
            } else {
                ApiError::bad_request("invalid_json", format!("invalid JSON: {msg}"))
            }
        })
    }
}
