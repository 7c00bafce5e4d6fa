//! `GET /api/export`, `POST /api/import` (admin).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiQuery, JsonBody};
use crate::transfer::{Document, ImportResult, Mode};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    #[serde(default)]
    secrets: bool,
}

/// Every API-made schedule, window and host; TLS material only with `?secrets=true` (audited).
#[utoipa::path(get, path = "/api/export", tag = "backup", params(ExportQuery), responses((status = 200, body = Document)))]
pub async fn export(
    State(state): State<AppState>,
    user: Admin,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(state.transfer.export(q.secrets, user.username()).await?))
}

/// Largest import body: some 80,000 schedules.
pub const MAX_IMPORT: usize = 16 * 1024 * 1024;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    document: serde_json::Value,
    #[serde(default = "merge")]
    mode: Mode,
}

fn merge() -> Mode {
    Mode::Merge
}

/// All or nothing: any error, or `?dry_run=true`, changes nothing (`applied: false`).
#[utoipa::path(post, path = "/api/import", tag = "backup", params(ImportQuery), request_body = ImportBody, responses((status = 200, body = ImportResult)))]
pub async fn import(
    State(state): State<AppState>,
    user: Admin,
    ApiQuery(q): ApiQuery<ImportQuery>,
    JsonBody(b): JsonBody<ImportBody>,
) -> Json<ImportResult> {
    Json(state.transfer.import(b.document, b.mode, q.dry_run, user.username()).await)
}
