use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{
    Admin, AdminSession, ApiPath, COOKIE_NAME, ClientAddr, Enrolling, EnrollingSession, JsonBody, ViewerSession,
    is_https,
};
use crate::auth::{SessionUser, TotpSetup, UserEdit};
use crate::config::SecureCookie;
use crate::model::{Role, User};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    username: String,
    password: String,
    /// A two-factor code or a recovery code, for users who have it on.
    totp: Option<String>,
}

/// `; Secure`, or nothing, per `DOCKNAP_SECURE_COOKIE`.
pub(super) fn secure_attr(state: &AppState, parts: &Parts) -> &'static str {
    let secure = match state.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => is_https(parts, state),
    };
    if secure { "; Secure" } else { "" }
}

pub(super) fn session_cookie(state: &AppState, parts: &Parts, value: &str, max_age: u64) -> HeaderValue {
    let cookie = format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        secure_attr(state, parts)
    );
    HeaderValue::from_str(&cookie).expect("token characters are cookie-safe")
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()), request_body = LoginBody,
    responses((status = 200, description = "signed in; also sets the `docknap_session` cookie", body = crate::auth::Session),
        (status = 401, description = "`invalid_credentials`, `totp_required` or `invalid_totp`", body = super::openapi::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    parts: Parts,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let session = state.auth.login(body.username, body.password, body.totp, client).await?;
    let cookie = session_cookie(&state, &parts, &session.token, state.auth.ttl().as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Json(session)).into_response())
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 204, description = "the token is revoked; the cookie is cleared")))]
pub async fn logout(
    State(state): State<AppState>,
    user: EnrollingSession,
    ClientAddr(client): ClientAddr,
    parts: Parts,
) -> Result<Response, ApiError> {
    state.auth.logout(&user.0, client).await?;
    let cookie = session_cookie(&state, &parts, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The caller, and the zone new schedules get when they name none (an
/// addition to the contract's shape, for the UI's schedule editor).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    user: SessionUser,
    default_timezone: &'static str,
    totp_enabled: bool,
    /// `DOCKNAP_REQUIRE_2FA` applies and two-factor sign-in is not set up:
    /// every route but these answers 403 `totp_enrolment_required`.
    totp_required_setup: bool,
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = Me)))]
pub async fn me(State(state): State<AppState>, user: Enrolling) -> Result<Json<Me>, ApiError> {
    let totp_enabled = state.auth.totp_enabled(user.0.user.id).await?;
    Ok(Json(Me {
        user: (&user.0.user).into(),
        default_timezone: state.scheduler.default_timezone(),
        totp_enabled,
        totp_required_setup: user.0.must_enrol,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = PasswordBody, responses((status = 204, description = "changed; the user's other tokens are revoked")))]
pub async fn change_password(
    State(state): State<AppState>,
    user: EnrollingSession,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.change_own_password(user.0, body.current_password, body.new_password, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UserOut {
    id: i64,
    username: String,
    role: Role,
    created_at: chrono::DateTime<chrono::Utc>,
    totp_enabled: bool,
}

impl UserOut {
    fn new(u: User, totp_enabled: bool) -> Self {
        UserOut { id: u.id, username: u.username, role: u.role, created_at: u.created_at, totp_enabled }
    }
}

#[utoipa::path(get, path = "/api/users", tag = "users", responses((status = 200, body = [UserOut])))]
pub async fn list_users(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<UserOut>>, ApiError> {
    Ok(Json(state.auth.list_users().await?.into_iter().map(|(u, on)| UserOut::new(u, on)).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewUserBody {
    username: String,
    password: String,
    #[schema(value_type = Role)]
    role: String,
}

#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUserBody, responses((status = 201, body = UserOut)))]
pub async fn create_user(
    State(state): State<AppState>,
    admin: AdminSession,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let role: Role = body.role.parse()?;
    let user = state.auth.create_user(admin.username(), body.username, body.password, role).await?;
    Ok((StatusCode::CREATED, Json(UserOut::new(user, false))))
}

/// Misspelled fields are refused: a typo must not pass as "no change".
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    password: Option<String>,
    #[serde(default)]
    reset_totp: bool,
}

#[utoipa::path(put, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UpdateUserBody, responses((status = 200, description = "changed; that user's tokens are revoked", body = UserOut)))]
pub async fn update_user(
    State(state): State<AppState>,
    admin: AdminSession,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<UpdateUserBody>,
) -> Result<Json<UserOut>, ApiError> {
    let role: Option<Role> = body.role.as_deref().map(str::parse).transpose()?;
    let edit = UserEdit { role, password: body.password, reset_totp: body.reset_totp };
    let done = state.auth.update_user(admin.username(), id, edit).await?;
    let totp_enabled = state.auth.totp_enabled(id).await?;
    Ok(Json(UserOut::new(done.user, totp_enabled)))
}

#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 204, description = "deleted; that user's tokens are revoked")))]
pub async fn delete_user(
    State(state): State<AppState>,
    admin: AdminSession,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_user(admin.username(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/totp/setup", tag = "auth", responses((status = 200, body = TotpSetup)))]
pub async fn totp_setup(State(state): State<AppState>, user: EnrollingSession) -> Result<Json<TotpSetup>, ApiError> {
    Ok(Json(state.auth.totp_setup(&user.0).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpEnableBody {
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

#[utoipa::path(post, path = "/api/auth/totp/enable", tag = "auth", request_body = TotpEnableBody, responses((status = 200, body = RecoveryCodes)))]
pub async fn totp_enable(
    State(state): State<AppState>,
    user: EnrollingSession,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<TotpEnableBody>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = state.auth.totp_enable(&user.0, &body.code, client).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpDisableBody {
    password: String,
    code: String,
}

#[utoipa::path(post, path = "/api/auth/totp/disable", tag = "auth", request_body = TotpDisableBody, responses((status = 204, description = "two-factor sign-in is off")))]
pub async fn totp_disable(
    State(state): State<AppState>,
    user: ViewerSession,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<TotpDisableBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.totp_disable(user.0, body.password, body.code, client).await?;
    Ok(StatusCode::NO_CONTENT)
}
