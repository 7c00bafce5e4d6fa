use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, JsonBody, Operator, Viewer};
use crate::model::{ActionResult, ScheduleView, Upcoming};
use crate::scheduler::ScheduleInput;

/// Path ids that are not numbers are unknown ids (404), not bad requests.
fn schedule_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(format!("no schedule with id '{raw}'")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    host: Option<String>,
    #[schema(value_type = Option<crate::model::TargetType>)]
    target_type: Option<String>,
    target_id: Option<String>,
    #[schema(value_type = Option<crate::model::Action>)]
    action: Option<String>,
    cron: Option<String>,
    at: Option<String>,
    timezone: Option<String>,
    enabled: Option<bool>,
    timeout: Option<String>,
    steps: Option<Vec<crate::scheduler::StepInput>>,
    #[schema(value_type = Option<crate::model::OnFailure>)]
    on_failure: Option<String>,
}

impl From<ScheduleBody> for ScheduleInput {
    fn from(b: ScheduleBody) -> Self {
        ScheduleInput {
            host: b.host,
            target_type: b.target_type,
            target_id: b.target_id,
            action: b.action,
            cron: b.cron,
            at: b.at,
            timezone: b.timezone,
            enabled: b.enabled,
            timeout: b.timeout,
            steps: b.steps,
            on_failure: b.on_failure,
        }
    }
}

#[utoipa::path(get, path = "/api/schedules", tag = "schedules", responses((status = 200, body = [ScheduleView]), (status = 304, description = "not modified")))]
pub async fn list(State(state): State<AppState>, _: Viewer) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let mut all = state.scheduler.list().await?;
    state.windows.annotate_schedules(&mut all);
    Ok(Json(all))
}

#[utoipa::path(get, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = ScheduleView)))]
pub async fn get(
    State(state): State<AppState>,
    _: Viewer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let one = state.scheduler.get(schedule_id(&id)?).await?;
    Ok(Json(state.windows.schedule_with_conflicts(one).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    dry_run: Option<bool>,
}

#[utoipa::path(post, path = "/api/schedules", tag = "schedules", params(DryRun), request_body = ScheduleBody, responses((status = 201, body = ScheduleView), (status = 200, description = "`dry_run=true`: what would be saved, with its conflicts", body = ScheduleView)))]
pub async fn create(
    State(state): State<AppState>,
    user: Operator,
    ApiQuery(q): ApiQuery<DryRun>,
    JsonBody(body): JsonBody<ScheduleBody>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    if q.dry_run == Some(true) {
        let candidate = state.scheduler.dry_run(None, body.into()).await?;
        return Ok((StatusCode::OK, Json(state.windows.schedule_with_conflicts(candidate).await?)));
    }
    let created = state.scheduler.create(body.into(), user.username()).await?;
    Ok((StatusCode::CREATED, Json(state.windows.schedule_with_conflicts(created).await?)))
}

#[utoipa::path(put, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path), DryRun), request_body = ScheduleBody, responses((status = 200, body = ScheduleView)))]
pub async fn update(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DryRun>,
    JsonBody(body): JsonBody<ScheduleBody>,
) -> Result<Json<ScheduleView>, ApiError> {
    let id = schedule_id(&id)?;
    let saved = if q.dry_run == Some(true) {
        state.scheduler.dry_run(Some(id), body.into()).await?
    } else {
        state.scheduler.update(id, body.into(), user.username()).await?
    };
    Ok(Json(state.windows.schedule_with_conflicts(saved).await?))
}

#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path)), responses((status = 204, description = "deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.delete(schedule_id(&id)?, user.username()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/schedules/{id}/run", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = ActionResult)))]
pub async fn run_now(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ActionResult>, ApiError> {
    Ok(Json(state.scheduler.run_now(schedule_id(&id)?, user.username()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpcomingQuery {
    limit: Option<usize>,
    until: Option<DateTime<Utc>>,
    per_schedule: Option<usize>,
}

#[utoipa::path(get, path = "/api/schedules/upcoming", tag = "schedules", params(UpcomingQuery), responses((status = 200, body = [Upcoming])))]
pub async fn upcoming(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<UpcomingQuery>,
) -> Result<Json<Vec<Upcoming>>, ApiError> {
    let per_schedule = q.per_schedule.map(|n| n.clamp(1, 1000));
    Ok(Json(state.scheduler.upcoming(q.limit.unwrap_or(20).clamp(1, 1000), q.until, per_schedule).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CronPreviewBody)]
pub struct PreviewBody {
    cron: String,
    timezone: Option<String>,
    count: Option<usize>,
    after: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CronPreview)]
pub struct PreviewOut {
    next: Vec<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/api/cron/preview", tag = "schedules", request_body = PreviewBody, responses((status = 200, body = PreviewOut)))]
pub async fn preview(
    State(state): State<AppState>,
    _: Viewer,
    JsonBody(b): JsonBody<PreviewBody>,
) -> Result<Json<PreviewOut>, ApiError> {
    let count = b.count.unwrap_or(5);
    if !(1..=crate::scheduler::MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request("invalid_count", "count must be 1 to 100"));
    }
    Ok(Json(PreviewOut { next: state.scheduler.preview(&b.cron, b.timezone.as_deref(), count, b.after)? }))
}
