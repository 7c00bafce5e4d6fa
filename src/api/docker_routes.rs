use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, ClientAddr, Operator, Viewer};
use crate::actions::{ActionError, Trigger};
use crate::docker::Host;
use crate::model::{Action, ActionResult, Container, LOCAL_HOST, Service, Stack, Target, TargetType};

/// `?host=NAME`: a filter on lists, the host of a single object (default `local`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    host: Option<String>,
}

impl HostQuery {
    fn name(&self) -> &str {
        self.host.as_deref().unwrap_or(LOCAL_HOST)
    }
}

fn host(state: &AppState, name: &str) -> Result<std::sync::Arc<Host>, ApiError> {
    state.fleet.get(name).ok_or_else(|| ActionError::UnknownHost(name.to_string()).into())
}

/// A list answers while any selected host's engine does; each object
/// carries its host, whose status `/api/hosts` gives (an unreachable one's
/// last known containers are still listed). 503 when none answers, as v1.
fn require_engine(state: &AppState, q: &HostQuery) -> Result<(), ApiError> {
    let hosts = match &q.host {
        Some(name) => vec![host(state, name)?],
        None => state.fleet.all(),
    };
    if hosts.iter().any(|h| h.view.docker_ok()) { Ok(()) } else { Err(ApiError::docker_unavailable(q.host.as_deref())) }
}

/// The one host a single-object route reads, connected.
fn connected(state: &AppState, q: &HostQuery) -> Result<std::sync::Arc<Host>, ApiError> {
    let h = host(state, q.name())?;
    if h.view.docker_ok() { Ok(h) } else { Err(ApiError::docker_unavailable(Some(q.name()))) }
}

/// Every container; `?host=` one host's. `ETag`/`If-None-Match` give 304 when unchanged.
#[utoipa::path(get, path = "/api/containers", tag = "docker", params(HostQuery), responses((status = 200, body = [Container]), (status = 304, description = "not modified")))]
pub async fn containers(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostQuery>,
) -> Result<Response, ApiError> {
    require_engine(&state, &q)?;
    let key = format!("containers?{}", q.host.as_deref().unwrap_or(""));
    Ok(state.lists.respond(&key, state.fleet.generation(), || state.fleet.containers(q.host.as_deref())))
}

#[utoipa::path(get, path = "/api/containers/{name}", tag = "docker", params(("name" = String, Path, description = "name or id"), HostQuery), responses((status = 200, body = Container)))]
pub async fn container(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostQuery>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Container>, ApiError> {
    let h = connected(&state, &q)?;
    h.view
        .container(&name)
        .map(Json)
        .ok_or_else(|| ActionError::NotFound(Target::new(q.name(), TargetType::Container, &name)).into())
}

#[utoipa::path(get, path = "/api/stacks", tag = "docker", params(HostQuery), responses((status = 200, body = [Stack]), (status = 304, description = "not modified")))]
pub async fn stacks(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostQuery>,
) -> Result<Response, ApiError> {
    require_engine(&state, &q)?;
    let key = format!("stacks?{}", q.host.as_deref().unwrap_or(""));
    Ok(state.lists.respond(&key, state.fleet.generation(), || state.fleet.stacks(q.host.as_deref())))
}

#[utoipa::path(get, path = "/api/stacks/{name}", tag = "docker", params(("name" = String, Path), HostQuery), responses((status = 200, body = Stack)))]
pub async fn stack(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostQuery>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Stack>, ApiError> {
    let h = connected(&state, &q)?;
    h.view
        .stack(&name)
        .map(Json)
        .ok_or_else(|| ActionError::NotFound(Target::new(q.name(), TargetType::Stack, &name)).into())
}

/// Swarm services of every manager host, or of `?host=`.
#[utoipa::path(get, path = "/api/services", tag = "docker", params(HostQuery), responses((status = 200, body = [Service])))]
pub async fn services(
    State(state): State<AppState>,
    _: Viewer,
    ApiQuery(q): ApiQuery<HostQuery>,
) -> Result<Json<Vec<Service>>, ApiError> {
    if let Some(name) = &q.host {
        host(&state, name)?;
    }
    Ok(Json(state.actions.services(q.host.as_deref()).await))
}

/// `?host=`, `?force=true` (past `docknap.protect=true`) and, for `run`,
/// `?timeout=30m` (default 1 h).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    host: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn act(
    state: &AppState,
    user: &Operator,
    client: std::net::IpAddr,
    target: Target,
    action: &str,
    timeout: Option<&str>,
    force: bool,
) -> Result<Json<ActionResult>, ApiError> {
    let action: Action = action.parse()?;
    let timeout = timeout.map(crate::actions::parse_run_timeout).transpose()?;
    let trigger = Trigger::Manual { actor: user.username().to_string(), client: Some(client), force };
    Ok(Json(state.actions.run_job(&target, action, &trigger, timeout).await?))
}

/// `POST /api/{containers,stacks,services,swarm-stacks}/{name}/{action}?host=`.
macro_rules! action_route {
    ($name:ident, $target_type:expr, $path:literal) => {
        #[utoipa::path(post, path = $path, tag = "docker",
                            params(("name" = String, Path), ("action" = crate::model::Action, Path), ActionQuery),
                            responses((status = 200, body = ActionResult)))]
        pub async fn $name(
            State(state): State<AppState>,
            user: Operator,
            ClientAddr(client): ClientAddr,
            ApiQuery(q): ApiQuery<ActionQuery>,
            ApiPath((name, action)): ApiPath<(String, String)>,
        ) -> Result<Json<ActionResult>, ApiError> {
            let host = q.host.as_deref().unwrap_or(LOCAL_HOST);
            act(&state, &user, client, Target::new(host, $target_type, &name), &action, q.timeout.as_deref(), q.force)
                .await
        }
    };
}

action_route!(container_action, TargetType::Container, "/api/containers/{name}/{action}");
action_route!(stack_action, TargetType::Stack, "/api/stacks/{name}/{action}");
action_route!(service_action, TargetType::Service, "/api/services/{name}/{action}");
action_route!(swarm_stack_action, TargetType::SwarmStack, "/api/swarm-stacks/{name}/{action}");
