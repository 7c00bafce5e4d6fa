//! `/api/hosts`: reading is for every role; adding, changing and removing
//! hosts is for admins. TLS material goes in and never comes out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiPath, JsonBody, Viewer};
use crate::hosts::HostInput;
use crate::model::HostView;

#[utoipa::path(get, path = "/api/hosts", tag = "hosts", responses((status = 200, body = [HostView])))]
pub async fn list(State(state): State<AppState>, _: Viewer) -> Json<Vec<HostView>> {
    Json(state.hosts.list())
}

#[utoipa::path(get, path = "/api/hosts/{name}", tag = "hosts", params(("name" = String, Path)), responses((status = 200, body = HostView)))]
pub async fn get(
    State(state): State<AppState>,
    _: Viewer,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<HostView>, ApiError> {
    Ok(Json(state.hosts.get(&name)?))
}

#[utoipa::path(post, path = "/api/hosts", tag = "hosts", request_body = HostInput, responses((status = 201, body = HostView)))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(input): JsonBody<HostInput>,
) -> Result<(StatusCode, Json<HostView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.hosts.create(input, admin.username()).await?)))
}

#[utoipa::path(put, path = "/api/hosts/{name}", tag = "hosts", params(("name" = String, Path)), request_body = HostInput, responses((status = 200, body = HostView)))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(name): ApiPath<String>,
    JsonBody(input): JsonBody<HostInput>,
) -> Result<Json<HostView>, ApiError> {
    Ok(Json(state.hosts.update(&name, input, admin.username()).await?))
}

#[utoipa::path(delete, path = "/api/hosts/{name}", tag = "hosts", params(("name" = String, Path)), responses((status = 204, description = "removed")))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.hosts.delete(&name, admin.username()).await?;
    Ok(StatusCode::NO_CONTENT)
}
