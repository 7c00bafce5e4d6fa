//! `GET /api/export`, `POST /api/import` (admin).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiQuery, JsonBody};
use crate::transfer::{Document, ImportResult, Mode};

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    secrets: bool,
}

/// Every API-made schedule, window and host; TLS material only with `?secrets=true` (audited).
pub async fn export(State(state): State<AppState>, user: Admin, ApiQuery(q): ApiQuery<ExportQuery>) -> Result<Json<Document>, ApiError> {
    Ok(Json(state.transfer.export(q.secrets, user.username()).await?))
}

/// Largest import body: some 80,000 schedules.
pub const MAX_IMPORT: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
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
pub async fn import(
    State(state): State<AppState>,
    user: Admin,
    ApiQuery(q): ApiQuery<ImportQuery>,
    JsonBody(b): JsonBody<ImportBody>,
) -> Json<ImportResult> {
    Json(state.transfer.import(b.document, b.mode, q.dry_run, user.username()).await)
}
