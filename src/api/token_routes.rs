//! API keys (`/api/tokens`): made by a signed-in user for themself.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, JsonBody, Viewer, ViewerSession};
use crate::auth::{CreatedKey, KeyRequest};
use crate::model::{ApiKey, Role};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// The caller's keys; `?all=true`: everyone's (admins).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", params(ListQuery), responses((status = 200, body = [ApiKey])))]
pub async fn list(
    State(state): State<AppState>,
    user: Viewer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(state.auth.api_keys(&user.0, q.all).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TokenBody)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// Only a login session makes keys: a key cannot make another.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateBody, responses((status = 201, description = "the key; `token` is shown this once", body = CreatedKey)))]
pub async fn create(
    State(state): State<AppState>,
    user: ViewerSession,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let role: Option<Role> = body.role.as_deref().map(str::parse).transpose()?;
    let req = KeyRequest { name: body.name, role, expires_at: body.expires_at };
    Ok((StatusCode::CREATED, Json(state.auth.create_api_key(&user.0, req).await?)))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), responses((status = 204, description = "revoked")))]
pub async fn delete(
    State(state): State<AppState>,
    user: Viewer,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_api_key(&user.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
