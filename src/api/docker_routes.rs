use axum::Json;
use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ClientAddr, Operator, Viewer};
use crate::actions::Trigger;
use crate::model::{Action, ActionResult, Container, Stack, TargetType};

fn require_engine(state: &AppState) -> Result<(), ApiError> {
    if state.view.docker_ok() { Ok(()) } else { Err(ApiError::docker_unavailable()) }
}

pub async fn containers(State(state): State<AppState>, _: Viewer) -> Result<Response, ApiError> {
    require_engine(&state)?;
    Ok(state.lists.respond("containers", state.view.generation(), || state.view.containers()))
}

pub async fn container(State(state): State<AppState>, _: Viewer, ApiPath(name): ApiPath<String>) -> Result<Json<Container>, ApiError> {
    require_engine(&state)?;
    state.view.container(&name).map(Json).ok_or_else(|| ApiError::not_found(format!("no container named '{name}'")))
}

pub async fn stacks(State(state): State<AppState>, _: Viewer) -> Result<Response, ApiError> {
    require_engine(&state)?;
    Ok(state.lists.respond("stacks", state.view.generation(), || state.view.stacks()))
}

pub async fn stack(State(state): State<AppState>, _: Viewer, ApiPath(name): ApiPath<String>) -> Result<Json<Stack>, ApiError> {
    require_engine(&state)?;
    state.view.stack(&name).map(Json).ok_or_else(|| ApiError::not_found(format!("no stack named '{name}'")))
}

async fn act(
    state: &AppState,
    user: &Operator,
    client: std::net::IpAddr,
    target_type: TargetType,
    name: &str,
    action: &str,
) -> Result<Json<ActionResult>, ApiError> {
    let action: Action = action.parse()?;
    let trigger = Trigger::Manual { actor: user.username().to_string(), client: Some(client) };
    Ok(Json(state.actions.run(target_type, name, action, &trigger).await?))
}

pub async fn container_action(
    State(state): State<AppState>,
    user: Operator,
    ClientAddr(client): ClientAddr,
    ApiPath((name, action)): ApiPath<(String, String)>,
) -> Result<Json<ActionResult>, ApiError> {
    act(&state, &user, client, TargetType::Container, &name, &action).await
}

pub async fn stack_action(
    State(state): State<AppState>,
    user: Operator,
    ClientAddr(client): ClientAddr,
    ApiPath((name, action)): ApiPath<(String, String)>,
) -> Result<Json<ActionResult>, ApiError> {
    act(&state, &user, client, TargetType::Stack, &name, &action).await
}
