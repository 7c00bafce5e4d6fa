//! Swarm services over bollard: list them with their task counts, scale a
//! replicated one, force a rolling update. Updates are read-modify-write of
//! the whole spec at the version read, as the engine requires.

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{Service as EngineService, ServiceSpec};
use bollard::query_parameters::{ListServicesOptionsBuilder, UpdateServiceOptionsBuilder};

use super::SwarmService;
use crate::model::{LABEL_STACK_NAMESPACE, ServiceMode};

/// All services, or `None` when this engine is not a Swarm manager (not in
/// a swarm, or a worker): such an engine answers the list with a 503.
pub async fn services(docker: &Docker) -> Result<Option<Vec<SwarmService>>, BollardError> {
    // status=true adds RunningTasks/DesiredTasks (API 1.41), saving a task list per service.
    let opts = ListServicesOptionsBuilder::new().status(true).build();
    match docker.list_services(Some(opts)).await {
        Ok(list) => Ok(Some(list.into_iter().filter_map(from_engine).collect())),
        Err(BollardError::DockerResponseServerError { status_code: 503, message })
            if message.contains("not a swarm manager") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Job-mode services (run to completion) are left out: there is nothing
/// running to start or stop on a schedule.
fn from_engine(s: EngineService) -> Option<SwarmService> {
    let spec = s.spec?;
    let mode = spec.mode.unwrap_or_default();
    let status = s.service_status.unwrap_or_default();
    let (mode, desired) = if let Some(r) = mode.replicated {
        (ServiceMode::Replicated, r.replicas.unwrap_or(1).max(0) as u64)
    } else if mode.global.is_some() {
        (ServiceMode::Global, status.desired_tasks.unwrap_or(0))
    } else {
        return None;
    };
    let stack = spec.labels.unwrap_or_default().remove(LABEL_STACK_NAMESPACE);
    Some(SwarmService { id: s.id?, name: spec.name?, stack, mode, running: status.running_tasks.unwrap_or(0), desired })
}

/// Sets a replicated service's replica count.
pub async fn scale(docker: &Docker, id: &str, replicas: u64) -> Result<(), BollardError> {
    update(docker, id, |spec| {
        let Some(r) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) else {
            return Err(refused(409, "a global service has no replica count to scale"));
        };
        r.replicas = Some(i64::try_from(replicas).map_err(|_| refused(400, "replica count out of range"))?);
        Ok(())
    })
    .await
}

/// Replaces every task (a rolling update, by the service's update config)
/// without changing the spec otherwise: bumps `ForceUpdate`.
pub async fn force_update(docker: &Docker, id: &str) -> Result<(), BollardError> {
    update(docker, id, |spec| {
        let task = spec.task_template.get_or_insert_with(Default::default);
        task.force_update = Some(task.force_update.unwrap_or(0).wrapping_add(1));
        Ok(())
    })
    .await
}

/// Reads the service, changes its spec with `change`, and sends the whole
/// spec back at the version read. Another writer in between makes the
/// engine refuse with "update out of sequence": then once more from a fresh read.
async fn update(
    docker: &Docker,
    id: &str,
    change: impl Fn(&mut ServiceSpec) -> Result<(), BollardError>,
) -> Result<(), BollardError> {
    let mut retried = false;
    loop {
        let service = docker.inspect_service(id, None).await?;
        let index = service.version.and_then(|v| v.index).ok_or_else(|| refused(500, "the service has no version"))?;
        // bollard types the version as i32; a raft index past it would be sent wrong.
        let version =
            i32::try_from(index).map_err(|_| refused(500, "the service version is beyond what bollard can send"))?;
        let mut spec = service.spec.ok_or_else(|| refused(500, "the service has no spec"))?;
        change(&mut spec)?;
        let opts = UpdateServiceOptionsBuilder::new().version(version).build();
        match docker.update_service(id, spec, opts, None).await {
            Ok(_) => return Ok(()),
            Err(e) if !retried && out_of_sequence(&e) => retried = true,
            Err(e) => return Err(e),
        }
    }
}

fn out_of_sequence(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { message, .. } if message.contains("update out of sequence"))
}

/// A refusal of ours, shaped as the engine's own so it maps the same way.
fn refused(status_code: u16, message: &str) -> BollardError {
    BollardError::DockerResponseServerError { status_code, message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ServiceServiceStatus, ServiceSpecMode, ServiceSpecModeReplicated};
    use std::collections::HashMap;

    fn engine_service(mode: ServiceSpecMode, labels: &[(&str, &str)]) -> EngineService {
        EngineService {
            id: Some("abc".into()),
            spec: Some(ServiceSpec {
                name: Some("shop_web".into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                mode: Some(mode),
                ..Default::default()
            }),
            service_status: Some(ServiceServiceStatus {
                running_tasks: Some(1),
                desired_tasks: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn desired_is_the_spec_count_for_replicated_and_the_task_count_for_global() {
        let replicated =
            ServiceSpecMode { replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }), ..Default::default() };
        let s = from_engine(engine_service(replicated, &[(LABEL_STACK_NAMESPACE, "shop")])).unwrap();
        assert_eq!(
            s,
            SwarmService {
                id: "abc".into(),
                name: "shop_web".into(),
                stack: Some("shop".into()),
                mode: ServiceMode::Replicated,
                running: 1,
                desired: 0,
            }
        );
        let global = ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() };
        let s = from_engine(engine_service(global, &[])).unwrap();
        assert_eq!((s.mode, s.desired, s.stack), (ServiceMode::Global, 3, None));
        let job = ServiceSpecMode { global_job: Some(HashMap::new()), ..Default::default() };
        assert_eq!(from_engine(engine_service(job, &[])), None, "jobs are not listed");
    }

    #[test]
    fn only_a_version_conflict_is_retried() {
        assert!(out_of_sequence(&refused(500, "rpc error: code = Unknown desc = update out of sequence")));
        assert!(!out_of_sequence(&refused(500, "something else")));
    }

    /// An engine whose first update answers "update out of sequence", as
    /// when another writer got in between the read and the write.
    #[tokio::test]
    async fn an_update_sends_the_read_version_and_spec_and_retries_once_on_a_conflict() {
        use axum::extract::{Query, State};
        use axum::routing::{get, post};
        use serde_json::{Value, json};
        use std::sync::{Arc, Mutex};

        #[derive(Default)]
        struct Seen {
            reads: usize,
            updates: Vec<(u64, Value)>,
        }
        type Shared = State<Arc<Mutex<Seen>>>;
        async fn inspect(State(seen): Shared) -> axum::Json<Value> {
            let mut seen = seen.lock().unwrap();
            seen.reads += 1;
            axum::Json(json!({
                "ID": "abc",
                "Version": { "Index": 10 + seen.reads },
                "Spec": {
                    "Name": "web",
                    "Labels": { "com.docker.stack.namespace": "shop" },
                    "TaskTemplate": { "ContainerSpec": { "Image": "busybox" }, "ForceUpdate": 4 },
                    "Mode": { "Replicated": { "Replicas": 3 } }
                }
            }))
        }
        async fn update(
            State(seen): Shared,
            Query(q): Query<HashMap<String, String>>,
            body: axum::Json<Value>,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            let mut seen = seen.lock().unwrap();
            seen.updates.push((q["version"].parse().unwrap(), body.0));
            if seen.updates.len() == 1 {
                let message = json!({ "message": "rpc error: code = Unknown desc = update out of sequence" });
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(message)).into_response();
            }
            axum::Json(json!({ "Warnings": null })).into_response()
        }

        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let shared = Arc::new(Mutex::new(Seen::default()));
        let seen_now = |shared: &Arc<Mutex<Seen>>| std::mem::take(&mut *shared.lock().unwrap());
        let app = axum::Router::new()
            .route("/services/{id}", get(inspect))
            .route("/services/{id}/update", post(update))
            .with_state(shared.clone());
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let docker = Docker::connect_with_unix(sock.to_str().unwrap(), 10, bollard::API_DEFAULT_VERSION).unwrap();

        scale(&docker, "abc", 0).await.unwrap();
        let seen = seen_now(&shared);
        assert_eq!(seen.reads, 2, "read again after the conflict");
        let versions: Vec<u64> = seen.updates.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, [11, 12], "each write at the version just read");
        let spec = &seen.updates[1].1;
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 0);
        assert_eq!(spec["Labels"]["com.docker.stack.namespace"], "shop", "the whole spec goes back");
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], "busybox");

        force_update(&docker, "abc").await.unwrap();
        let spec = &seen_now(&shared).updates[1].1;
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 5);
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 3, "only the counter changes");
    }
}
