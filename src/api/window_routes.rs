//! Windows and bulk actions: thin handlers over [`crate::window::Windows`] and [`crate::actions::Actions`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, ClientAddr, JsonBody, Operator, Viewer};
use crate::actions::{ActionError, Together, Trigger};
use crate::model::{Action, Desired, LOCAL_HOST, Target, TargetType, WindowView};
use crate::window::WindowInput;

/// Targets of one bulk request acted on at the same time.
const BULK_MAX_TARGETS: usize = 500;

fn window_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(format!("no window with id '{raw}'")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    host: Option<String>,
    #[schema(value_type = Option<crate::model::TargetType>)]
    target_type: Option<String>,
    target_id: Option<String>,
    spec: Option<String>,
    timezone: Option<String>,
    #[schema(value_type = Option<crate::model::DownAction>)]
    down_action: Option<String>,
    #[schema(value_type = Option<crate::model::Enforce>)]
    enforce: Option<String>,
    grace: Option<String>,
    enabled: Option<bool>,
}

impl From<WindowBody> for WindowInput {
    fn from(b: WindowBody) -> Self {
        WindowInput {
            host: b.host,
            target_type: b.target_type,
            target_id: b.target_id,
            spec: b.spec,
            timezone: b.timezone,
            down_action: b.down_action,
            enforce: b.enforce,
            grace: b.grace,
            enabled: b.enabled,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    dry_run: Option<bool>,
}

#[utoipa::path(get, path = "/api/windows", tag = "windows", responses((status = 200, body = [WindowView]), (status = 304, description = "not modified")))]
pub async fn list(State(state): State<AppState>, _: Viewer) -> Result<Json<Vec<WindowView>>, ApiError> {
    Ok(Json(state.windows.list().await?))
}

#[utoipa::path(get, path = "/api/windows/{id}", tag = "windows", params(("id" = String, Path)), responses((status = 200, body = WindowView)))]
pub async fn get(
    State(state): State<AppState>,
    _: Viewer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WindowView>, ApiError> {
    Ok(Json(state.windows.get(window_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/windows", tag = "windows", params(DryRun), request_body = WindowBody, responses((status = 201, body = WindowView), (status = 200, description = "`dry_run=true`: what would be saved", body = WindowView)))]
pub async fn create(
    State(state): State<AppState>,
    user: Operator,
    ApiQuery(q): ApiQuery<DryRun>,
    JsonBody(body): JsonBody<WindowBody>,
) -> Result<Response, ApiError> {
    if q.dry_run == Some(true) {
        return Ok(Json(state.windows.dry_run(None, body.into()).await?).into_response());
    }
    Ok((StatusCode::CREATED, Json(state.windows.create(body.into(), user.username()).await?)).into_response())
}

#[utoipa::path(put, path = "/api/windows/{id}", tag = "windows", params(("id" = String, Path), DryRun), request_body = WindowBody, responses((status = 200, body = WindowView)))]
pub async fn update(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DryRun>,
    JsonBody(body): JsonBody<WindowBody>,
) -> Result<Json<WindowView>, ApiError> {
    let id = window_id(&id)?;
    if q.dry_run == Some(true) {
        return Ok(Json(state.windows.dry_run(Some(id), body.into()).await?));
    }
    Ok(Json(state.windows.update(id, body.into(), user.username()).await?))
}

#[utoipa::path(delete, path = "/api/windows/{id}", tag = "windows", params(("id" = String, Path)), responses((status = 204, description = "deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.windows.delete(window_id(&id)?, user.username()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    #[schema(value_type = Desired)]
    desired: String,
    until: Option<DateTime<Utc>>,
    reason: Option<String>,
}

#[utoipa::path(post, path = "/api/windows/{id}/override", tag = "windows", params(("id" = String, Path)), request_body = OverrideBody, responses((status = 200, body = WindowView)))]
pub async fn set_override(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
    JsonBody(b): JsonBody<OverrideBody>,
) -> Result<Json<WindowView>, ApiError> {
    let id = window_id(&id)?;
    Ok(Json(state.windows.set_override(id, &b.desired, b.until, b.reason, user.username()).await?))
}

#[utoipa::path(delete, path = "/api/windows/{id}/override", tag = "windows", params(("id" = String, Path)), responses((status = 200, body = WindowView)))]
pub async fn clear_override(
    State(state): State<AppState>,
    user: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WindowView>, ApiError> {
    Ok(Json(state.windows.clear_override(window_id(&id)?, user.username()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = WindowPreviewBody)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    spec: String,
    timezone: Option<String>,
    #[serde(default)]
    at: Vec<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
    count: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StateAt {
    at: DateTime<Utc>,
    desired: Desired,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WindowPreview)]
pub struct PreviewOut {
    states: Vec<StateAt>,
    transitions: Vec<StateAt>,
}

#[utoipa::path(post, path = "/api/windows/preview", tag = "windows", request_body = PreviewBody, responses((status = 200, body = PreviewOut)))]
pub async fn preview(
    State(state): State<AppState>,
    _: Viewer,
    JsonBody(b): JsonBody<PreviewBody>,
) -> Result<Json<PreviewOut>, ApiError> {
    let count = b.count.unwrap_or(5);
    if !(1..=crate::window::MAX_PREVIEW).contains(&count) || b.at.len() > crate::window::MAX_PREVIEW {
        return Err(ApiError::bad_request("invalid_count", "count and the number of `at` times must be 1 to 100"));
    }
    let (states, transitions) = state.windows.preview(&b.spec, b.timezone.as_deref(), &b.at, b.after, count)?;
    let out = |v: Vec<(DateTime<Utc>, Desired)>| v.into_iter().map(|(at, desired)| StateAt { at, desired }).collect();
    Ok(Json(PreviewOut { states: out(states), transitions: out(transitions) }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTarget {
    #[schema(value_type = crate::model::TargetType)]
    target_type: String,
    target_id: String,
    host: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    #[schema(value_type = Action)]
    action: String,
    #[serde(default)]
    targets: Vec<BulkTarget>,
    /// Every stack of every host in this group, besides `targets`.
    group: Option<String>,
}

/// One target's outcome: the action result, or why it could not run.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    host: String,
    target_type: String,
    target_id: String,
    action: Action,
    ok: bool,
    results: Vec<crate::model::ContainerResult>,
    #[schema(required = true)]
    error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkOut {
    results: Vec<BulkResult>,
}

#[derive(Deserialize)]
pub struct ForceQuery {
    /// Overrides `docknap.protect=true`.
    #[serde(default)]
    force: bool,
}

/// Without `?force=true`, a bulk stop/pause/restart that would reach a
/// `docknap.protect=true` container runs nothing: 409 naming them all, each
/// refused target audited.
fn refuse_protected(
    state: &AppState,
    targets: &[BulkTarget],
    action: Action,
    trigger: &Trigger,
) -> Result<(), ApiError> {
    let mut all = Vec::new();
    for t in targets {
        let Ok(target_type) = t.target_type.parse::<TargetType>() else { continue };
        let target = Target::new(t.host.as_deref().unwrap_or(LOCAL_HOST), target_type, &t.target_id);
        let members: Vec<_> =
            state.fleet.members(&target).unwrap_or_default().into_iter().filter(|c| !c.is_excluded()).collect();
        let names = crate::actions::protected_among(&members, action);
        if !names.is_empty() {
            all.extend(names.iter().cloned());
            state.actions.refuse(trigger, &target, action, &ActionError::Protected { action, names });
        }
    }
    if all.is_empty() { Ok(()) } else { Err(ActionError::Protected { action, names: all }.into()) }
}

/// Every target in parallel (bounded), each stack in its own order, each
/// audited; `docknap.exclude=true` containers are left out.
#[utoipa::path(post, path = "/api/bulk", tag = "docker", request_body = BulkBody, responses((status = 200, body = BulkOut)))]
pub async fn bulk(
    State(state): State<AppState>,
    user: Operator,
    ClientAddr(client): ClientAddr,
    ApiQuery(q): ApiQuery<ForceQuery>,
    JsonBody(b): JsonBody<BulkBody>,
) -> Result<Json<BulkOut>, ApiError> {
    let action: Action = b.action.parse()?;
    let mut targets = b.targets;
    if targets.len() > BULK_MAX_TARGETS {
        return Err(ApiError::bad_request("invalid_target", format!("give at most {BULK_MAX_TARGETS} targets")));
    }
    if let Some(group) = &b.group {
        targets.extend(state.fleet.group_stacks(group).into_iter().map(|s| BulkTarget {
            target_type: s.target_type.to_string(),
            target_id: s.target_id,
            host: Some(s.host),
        }));
    }
    // A target named twice (or also in the group) is acted on once: one
    // result per distinct target.
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| {
        seen.insert((
            t.host.clone().unwrap_or_else(|| LOCAL_HOST.to_string()),
            t.target_type.clone(),
            t.target_id.clone(),
        ))
    });
    if targets.is_empty() {
        return Err(ApiError::bad_request("invalid_target", "give targets, or a group with stacks"));
    }
    let trigger = Trigger::Manual { actor: user.username().to_string(), client: Some(client), force: q.force };
    if !q.force {
        refuse_protected(&state, &targets, action, &trigger)?;
    }
    // Targets whose type does not parse fail alone; the rest go together.
    let parsed: Vec<(BulkTarget, Result<Target, String>)> = targets
        .into_iter()
        .map(|t| {
            let host = t.host.clone().unwrap_or_else(|| LOCAL_HOST.to_string());
            let target = t
                .target_type
                .parse::<TargetType>()
                .map(|tt| Target::new(&host, tt, &t.target_id))
                .map_err(|e| e.to_string());
            (t, target)
        })
        .collect();
    let together: Vec<Together> = parsed
        .iter()
        .filter_map(|(_, t)| t.as_ref().ok())
        .map(|t| Together::excluding_labelled(&state.actions, t.clone()))
        .collect();
    let mut outcomes = state.actions.run_together(together, action, &trigger).await.into_iter();
    let results = parsed
        .into_iter()
        .map(|(t, target)| {
            let outcome = match target {
                Ok(_) => outcomes.next().expect("one outcome per target").map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let (ok, results, error) = match outcome {
                Ok(r) => (r.ok, r.results, None),
                Err(e) => (false, Vec::new(), Some(e)),
            };
            let host = t.host.unwrap_or_else(|| LOCAL_HOST.to_string());
            BulkResult { host, target_type: t.target_type, target_id: t.target_id, action, ok, results, error }
        })
        .collect();
    Ok(Json(BulkOut { results }))
}
