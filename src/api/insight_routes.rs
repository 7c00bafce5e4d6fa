//! Logs and resource figures of containers and stacks. Logs are operator
//! reading (they often hold secrets); stats, viewer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, Operator, Viewer};
use crate::actions::ActionError;
use crate::docker::{DockerError, Host};
use crate::model::{Container, LOCAL_HOST, LogLine, LogQuery, Stats, Target, TargetType};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    host: Option<String>,
    tail: Option<usize>,
    /// RFC 3339, or a duration ago (`10m`, `2h`).
    since: Option<String>,
    follow: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Lines {
    lines: Vec<LogLine>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostParam {
    host: Option<String>,
}

#[utoipa::path(get, path = "/api/containers/{name}/logs", tag = "docker", params(("name" = String, Path), LogParams), responses((status = 200, description = "JSON lines, or with `follow=true` server-sent events: `line` (a JSON log line), `log_error`, `end`", content((Lines = "application/json"), (String = "text/event-stream")))))]
pub async fn container_logs(
    State(state): State<AppState>,
    who: Operator,
    ApiQuery(q): ApiQuery<LogParams>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let host = connected(&state, q.host.as_deref())?;
    let c = host.view.container(&name).ok_or_else(|| not_found(&host, TargetType::Container, &name))?;
    respond(&state, who, &host, vec![c], &q, false).await
}

/// The stack's containers' logs merged by time, each line naming its container.
#[utoipa::path(get, path = "/api/stacks/{name}/logs", tag = "docker", params(("name" = String, Path), LogParams), responses((status = 200, description = "JSON lines, or with `follow=true` server-sent events: `line` (a JSON log line), `log_error`, `end`", content((Lines = "application/json"), (String = "text/event-stream")))))]
pub async fn stack_logs(
    State(state): State<AppState>,
    who: Operator,
    ApiQuery(q): ApiQuery<LogParams>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let host = connected(&state, q.host.as_deref())?;
    let stack = host.view.stack(&name).ok_or_else(|| not_found(&host, TargetType::Stack, &name))?;
    respond(&state, who, &host, stack.containers, &q, true).await
}

#[utoipa::path(get, path = "/api/containers/{name}/stats", tag = "docker", params(("name" = String, Path), HostParam), responses((status = 200, body = Stats)))]
pub async fn container_stats(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostParam>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Stats>, ApiError> {
    let host = connected(&state, q.host.as_deref())?;
    let c = host.view.container(&name).ok_or_else(|| not_found(&host, TargetType::Container, &name))?;
    Ok(Json(host.stats.of_container(&host.engine, &c).await.map_err(engine_error)?))
}

#[utoipa::path(get, path = "/api/stacks/{name}/stats", tag = "docker", params(("name" = String, Path), HostParam), responses((status = 200, body = Stats)))]
pub async fn stack_stats(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostParam>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Stats>, ApiError> {
    let host = connected(&state, q.host.as_deref())?;
    let stack = host.view.stack(&name).ok_or_else(|| not_found(&host, TargetType::Stack, &name))?;
    Ok(Json(host.stats.of_stack(&host.engine, &stack.containers).await.map_err(engine_error)?))
}

fn connected(state: &AppState, name: Option<&str>) -> Result<Arc<Host>, ApiError> {
    let name = name.unwrap_or(LOCAL_HOST);
    let host = state.fleet.get(name).ok_or_else(|| ActionError::UnknownHost(name.to_string()))?;
    if host.view.docker_ok() { Ok(host) } else { Err(ApiError::docker_unavailable(Some(name))) }
}

fn not_found(host: &Host, target_type: TargetType, name: &str) -> ApiError {
    ActionError::NotFound(Target::new(host.name(), target_type, name)).into()
}

fn engine_error(e: DockerError) -> ApiError {
    match e {
        DockerError::Unavailable(_) => ApiError::docker_unavailable(None),
        DockerError::NotFound => ApiError::not_found("no such container (it was just removed)"),
        e => ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "docker_error", e.to_string()),
    }
}

/// The lines as JSON, or with `follow=true` an event stream: the tail, then
/// each new line as one `line` event, `log_error` if the engine fails, and
/// `end` when every log ended. `merged`: lines name their container.
async fn respond(
    state: &AppState,
    who: Operator,
    host: &Host,
    members: Vec<Container>,
    q: &LogParams,
    merged: bool,
) -> Result<Response, ApiError> {
    let query = LogQuery::from_params(q.tail, q.since.as_deref(), q.follow.unwrap_or(false), chrono::Utc::now())
        .map_err(|m| ApiError::bad_request("invalid_query", m))?;
    let streams: Vec<BoxStream<'static, Result<LogLine, DockerError>>> = members
        .into_iter()
        .map(|c| {
            let name = c.name.clone();
            host.engine
                .logs(&c.id, &query)
                .map_ok(move |mut l| {
                    if merged {
                        l.container = Some(name.clone());
                    }
                    l
                })
                .boxed()
        })
        .collect();
    if !query.follow {
        let mut lines = Vec::new();
        for s in streams {
            lines.extend(s.try_collect::<Vec<_>>().await.map_err(engine_error)?);
        }
        lines.sort_by_key(|l| l.at);
        let skip = lines.len().saturating_sub(query.tail);
        return Ok(Json(Lines { lines: lines.split_off(skip) }).into_response());
    }
    let slot = state.streams.acquire(who.0.user.id)?;
    let mut shutdown = state.shutdown.clone();
    let session_ended = state.auth.clone().session_ended(who.0);
    let events = stream::select_all(streams)
        .map(move |item| {
            // Held for the stream's life: dropping the stream frees the slot.
            let _slot = &slot;
            Ok::<_, Infallible>(match item {
                Ok(line) => SseEvent::default().event("line").json_data(&line).unwrap_or_default(),
                Err(e) => SseEvent::default().event("log_error").data(e.to_string()),
            })
        })
        // The containers stopped (their logs ended): said, so a browser's
        // EventSource does not reconnect and replay the tail.
        .chain(stream::once(async { Ok(SseEvent::default().event("end").data("{}")) }))
        .take_until(async move {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => {}
                () = session_ended => {}
            }
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
        .into_response())
}
