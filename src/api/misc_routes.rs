use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiQuery, Viewer};
use crate::model::{AuditEntry, AuditFilter};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    docker: &'static str,
    version: &'static str,
    /// Each engine's status by host name.
    hosts: std::collections::BTreeMap<String, crate::model::HostStatus>,
}

#[utoipa::path(get, path = "/healthz", tag = "meta", security(()), responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let hosts = state.fleet.statuses();
    let docker = hosts.get(crate::model::LOCAL_HOST).map_or("unreachable", |s| s.as_str());
    Json(Health { status: "ok", docker, version: env!("CARGO_PKG_VERSION"), hosts })
}

/// `GET /metrics` (src/metrics.rs): any signed-in role or API key, unless
/// `DOCKNAP_METRICS=public` (or `off`: 404).
pub async fn metrics(
    State(state): State<AppState>,
    mut parts: axum::http::request::Parts,
) -> Result<axum::response::Response, ApiError> {
    use crate::config::MetricsAccess;
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    match state.metrics_access {
        MetricsAccess::Off => return Err(ApiError::not_found("metrics are turned off (DOCKNAP_METRICS=off)")),
        MetricsAccess::Auth => drop(Viewer::from_request_parts(&mut parts, &state).await?),
        MetricsAccess::Public => {}
    }
    let views = crate::metrics::Views { fleet: &state.fleet, windows: &state.windows, now: state.auth.now() };
    let body = crate::metrics::global().render(&views);
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

pub async fn api_not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}

/// Live events. The stream ends when the server shuts down or the caller's
/// session ends (revoked, expired, user deleted): a revoked token must not go
/// on watching the host. Open streams are capped per user and in total (429
/// `too_many_streams`); a slot frees when its stream ends. A client that
/// falls 1024 events behind gets `resync`; one that stops reading is dropped
/// after the write timeout (src/http.rs).
#[utoipa::path(get, path = "/api/events", tag = "docker",
    responses((status = 200, description = "server-sent events: container, stack and window changes, schedule runs (`event:` names the kind, `data:` is JSON); `resync` when the client fell behind", content_type = "text/event-stream", body = String)))]
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let slot = state.streams.acquire(viewer.0.user.id)?;
    let mut shutdown = state.shutdown.clone();
    let session_ended = state.auth.clone().session_ended(viewer.0);
    let stream = BroadcastStream::new(state.events.subscribe())
        .map(move |item| {
            // Held for the stream's life: dropping the stream frees the slot.
            let _slot = &slot;
            Ok(match item {
                Ok(ev) => SseEvent::default().event(ev.name()).data(ev.data()),
                // Fell behind: the client must re-fetch state.
                Err(BroadcastStreamRecvError::Lagged(_)) => SseEvent::default().event("resync").data("{}"),
            })
        })
        .take_until(async move {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => {}
                () = session_ended => {}
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    limit: Option<i64>,
    before: Option<i64>,
    actor: Option<String>,
    host: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    action: Option<String>,
    ok: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    #[schema(required = true)]
    next_before: Option<i64>,
}

/// The hash chain checked from the start (or the last retention checkpoint).
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", responses((status = 200, body = crate::store::audit_chain::Verification)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<crate::store::audit_chain::Verification>, ApiError> {
    Ok(Json(state.audit.verify().await?))
}

/// Newest first; `next_before` pages on.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn audit(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = AuditFilter {
        limit,
        before: q.before,
        actor: q.actor,
        host: q.host,
        target_type: q.target_type,
        target_id: q.target_id,
        action: q.action,
        ok: q.ok,
    };
    let entries = state.audit.list(filter).await?;
    let next_before = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(AuditPage { entries, next_before }))
}
