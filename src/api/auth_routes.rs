use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiPath, COOKIE_NAME, ClientAddr, JsonBody, Viewer, is_https};
use crate::auth::{SessionUser, hash_password, validate_password, validate_username};
use crate::model::{NewAuditEntry, Role, User};
use crate::config::SecureCookie;

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
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
    let cookie = format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}", secure_attr(state, parts));
    HeaderValue::from_str(&cookie).expect("token characters are cookie-safe")
}

/// Runs bcrypt work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking auth task panicked")
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    parts: Parts,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let session = state.auth.login(body.username, body.password, client).await?;
    let cookie = session_cookie(&state, &parts, &session.token, state.auth.ttl().as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Json(session)).into_response())
}

pub async fn logout(State(state): State<AppState>, user: Viewer, ClientAddr(client): ClientAddr, parts: Parts) -> Result<Response, ApiError> {
    state.auth.logout(&user.0, client).await?;
    let cookie = session_cookie(&state, &parts, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The caller, and the zone new schedules get when they name none (an
/// addition to the contract's shape, for the UI's schedule editor).
#[derive(Serialize)]
pub struct Me {
    #[serde(flatten)]
    user: SessionUser,
    default_timezone: &'static str,
}

pub async fn me(State(state): State<AppState>, user: Viewer) -> Json<Me> {
    Json(Me { user: (&user.0.user).into(), default_timezone: state.scheduler.default_timezone() })
}

#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    user: Viewer,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.change_own_password(user.0, body.current_password, body.new_password, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize)]
pub struct UserOut {
    id: i64,
    username: String,
    role: Role,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut { id: u.id, username: u.username, role: u.role, created_at: u.created_at }
    }
}

pub async fn list_users(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<UserOut>>, ApiError> {
    Ok(Json(state.auth.store().run(|s| s.users()).await?.into_iter().map(UserOut::from).collect()))
}

#[derive(Deserialize)]
pub struct NewUserBody {
    username: String,
    password: String,
    role: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    validate_username(&body.username)?;
    validate_password(&body.password)?;
    let role: Role = body.role.parse()?;
    let password = body.password;
    let hash = blocking(move || hash_password(&password)).await?;
    let username = body.username;
    let user = state.auth.store().run(move |s| s.create_user(&username, &hash, role, chrono::Utc::now())).await?;
    state.audit.record(
        NewAuditEntry::new(admin.username(), "user_create", true, format!("created user '{}' as {}", user.username, role.as_str()))
            .target("user", &user.username),
    );
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Deserialize)]
pub struct UpdateUserBody {
    role: Option<String>,
    password: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<UpdateUserBody>,
) -> Result<Json<UserOut>, ApiError> {
    let role: Option<Role> = body.role.as_deref().map(str::parse).transpose()?;
    if let Some(p) = &body.password {
        validate_password(p)?;
    }
    let hash = match body.password {
        Some(p) => Some(blocking(move || hash_password(&p)).await?),
        None => None,
    };
    let new_hash = hash.clone();
    let result =
        state.auth.store().run(move |s| s.update_user(id, role, new_hash.as_deref(), None, chrono::Utc::now())).await;
    let what = [role.map(|r| format!("role set to {}", r.as_str())), hash.as_ref().map(|_| "password reset".to_string())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    audit_user_change(&state, admin.username(), "user_update", id, &result, &what);
    Ok(Json(result?.into()))
}

pub async fn delete_user(State(state): State<AppState>, admin: Admin, ApiPath(id): ApiPath<i64>) -> Result<StatusCode, ApiError> {
    let result = state.auth.store().run(move |s| s.delete_user(id)).await;
    audit_user_change(&state, admin.username(), "user_delete", id, &result, "deleted");
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// Audits an admin's change to a user, refused or done.
fn audit_user_change(
    state: &AppState,
    actor: &str,
    action: &str,
    id: i64,
    result: &Result<User, crate::store::StoreError>,
    what: &str,
) {
    let (target, ok, message) = match result {
        Ok(u) => (u.username.clone(), true, format!("user '{}': {what}", u.username)),
        Err(e) => (id.to_string(), false, format!("refused: {e}")),
    };
    state.audit.record(NewAuditEntry::new(actor, action, ok, message).target("user", &target));
}
