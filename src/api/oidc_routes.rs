//! Single sign-on routes: which sign-in methods exist, and the two ends of
//! the OpenID Connect flow. Both ends are browser navigations, so they
//! answer with redirects (errors to `/login?error=CODE`), not JSON.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth_routes::{secure_attr, session_cookie};
use super::error::{ApiError, oidc_error_code};
use super::extract::{ClientAddr, public_base};
use crate::oidc::OidcError;

/// Holds a flow's `state` in the browser that started it. `Lax`: the
/// provider's redirect back is a cross-site navigation.
const STATE_COOKIE: &str = "docknap_oidc_state";
const CALLBACK: &str = "/api/auth/oidc/callback";

#[derive(Serialize, utoipa::ToSchema)]
pub struct Providers {
    password: bool,
    #[schema(required = true)]
    oidc: Option<OidcProvider>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OidcProvider {
    name: String,
    login_url: &'static str,
}

#[utoipa::path(get, path = "/api/auth/providers", tag = "auth", security(()), responses((status = 200, body = Providers)))]
pub async fn providers(State(state): State<AppState>) -> Json<Providers> {
    let oidc =
        state.oidc.as_ref().map(|o| OidcProvider { name: o.name().to_string(), login_url: "/api/auth/oidc/login" });
    Json(Providers { password: true, oidc })
}

fn redirect(location: &str, cookies: &[HeaderValue]) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).expect("our locations are header-safe"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        headers.append(header::SET_COOKIE, c.clone());
    }
    (StatusCode::FOUND, headers).into_response()
}

fn state_cookie(state: &AppState, parts: &Parts, value: &str, max_age: u64) -> HeaderValue {
    let cookie = format!(
        "{STATE_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/api/auth/oidc; Max-Age={max_age}{}",
        secure_attr(state, parts)
    );
    HeaderValue::from_str(&cookie).expect("state characters are cookie-safe")
}

fn to_login_page(e: &OidcError) -> Response {
    tracing::warn!(error = %e, "single sign-on failed");
    redirect(&format!("/login?error={}", oidc_error_code(e)), &[])
}

#[utoipa::path(get, path = "/api/auth/oidc/login", tag = "auth", security(()), responses((status = 302, description = "to the provider (or `/login?error=CODE`)"), (status = 404, description = "single sign-on is not configured", body = super::openapi::ErrorBody)))]
pub async fn login(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(|| ApiError::not_found("single sign-on is not configured"))?;
    let redirect_uri = format!("{}{CALLBACK}", public_base(&parts, &state));
    Ok(match oidc.begin(redirect_uri).await {
        Ok(begin) => redirect(&begin.location, &[state_cookie(&state, &parts, &begin.state, 600)]),
        Err(e) => to_login_page(&e),
    })
}

/// All optional: a malformed callback is a refused sign-in, not a JSON error.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

#[utoipa::path(get, path = "/api/auth/oidc/callback", tag = "auth", security(()), params(CallbackQuery), responses((status = 302, description = "signed in (to `/`, with the session cookie) or refused (to `/login?error=CODE`)"), (status = 404, description = "single sign-on is not configured", body = super::openapi::ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    parts: Parts,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(|| ApiError::not_found("single sign-on is not configured"))?;
    let q = query.map(|Query(q)| q).unwrap_or(CallbackQuery { code: None, state: None, error: None });
    let result = match (q.error, q.code, q.state) {
        // The provider's own error code: a short token, cut to be safe in the log.
        (Some(error), ..) => Err(OidcError::Denied(error.chars().take(64).collect())),
        (None, Some(code), Some(flow)) => oidc.complete(&flow, cookie_value(&parts, STATE_COOKIE), &code, client).await,
        _ => Err(OidcError::State),
    };
    let clear_state = state_cookie(&state, &parts, "", 0);
    Ok(match result {
        Ok(session) => {
            let cookie = session_cookie(&state, &parts, &session.token, state.auth.ttl().as_secs());
            redirect("/", &[cookie, clear_state])
        }
        Err(e) => {
            let mut resp = to_login_page(&e);
            resp.headers_mut().append(header::SET_COOKIE, clear_state);
            resp
        }
    })
}
