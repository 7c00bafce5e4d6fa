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

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
}

pub async fn list(State(state): State<AppState>, user: Viewer, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(state.auth.api_keys(&user.0, q.all).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    role: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// Only a login session makes keys: a key cannot make another.
pub async fn create(
    State(state): State<AppState>,
    user: ViewerSession,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let role: Option<Role> = body.role.as_deref().map(str::parse).transpose()?;
    let req = KeyRequest { name: body.name, role, expires_at: body.expires_at };
    Ok((StatusCode::CREATED, Json(state.auth.create_api_key(&user.0, req).await?)))
}

pub async fn delete(State(state): State<AppState>, user: Viewer, ApiPath(id): ApiPath<i64>) -> Result<StatusCode, ApiError> {
    state.auth.delete_api_key(&user.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
