//! `/api/notifications` (admin): channels, their test and their deliveries.
//! Channel URLs and secrets go in and never come out (scheme and host only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiPath, ApiQuery, JsonBody};
use crate::model::Delivery;
use crate::notify::{ChannelRequest, ChannelView, TestResult};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    name: Option<String>,
    url: Option<String>,
    /// `null` removes it; left out keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    secret: Option<Option<String>>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl From<ChannelBody> for ChannelRequest {
    fn from(b: ChannelBody) -> Self {
        ChannelRequest { name: b.name, url: b.url, secret: b.secret, events: b.events, enabled: b.enabled }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/notifications", tag = "notifications", responses((status = 200, body = [ChannelView])))]
pub async fn list(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(state.notifier.list().await?))
}

#[utoipa::path(get, path = "/api/notifications/{id}", tag = "notifications", params(("id" = i64, Path)), responses((status = 200, body = ChannelView)))]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(state.notifier.get(id).await?))
}

#[utoipa::path(post, path = "/api/notifications", tag = "notifications", request_body = ChannelBody, responses((status = 201, body = ChannelView)))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.notifier.create(admin.username(), body.into()).await?)))
}

#[utoipa::path(put, path = "/api/notifications/{id}", tag = "notifications", params(("id" = i64, Path)), request_body = ChannelBody, responses((status = 200, body = ChannelView)))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(state.notifier.update(admin.username(), id, body.into()).await?))
}

#[utoipa::path(delete, path = "/api/notifications/{id}", tag = "notifications", params(("id" = i64, Path)), responses((status = 204, description = "deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.notifier.delete(admin.username(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One real delivery attempt now; its result, never the endpoint's body.
#[utoipa::path(post, path = "/api/notifications/{id}/test", tag = "notifications", params(("id" = i64, Path)), responses((status = 200, body = TestResult)))]
pub async fn test(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(state.notifier.test(admin.username(), id).await?))
}

#[utoipa::path(get, path = "/api/notifications/{id}/deliveries", tag = "notifications", params(("id" = i64, Path), LimitQuery), responses((status = 200, body = [Delivery])))]
pub async fn deliveries(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    Ok(Json(state.notifier.deliveries(id, q.limit.unwrap_or(50).clamp(1, 500)).await?))
}

/// The latest failed deliveries of every channel (the dashboard's warning).
#[utoipa::path(get, path = "/api/notifications/failures", tag = "notifications", params(LimitQuery), responses((status = 200, body = [Delivery])))]
pub async fn failures(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    Ok(Json(state.notifier.failures(q.limit.unwrap_or(20).clamp(1, 500)).await?))
}
