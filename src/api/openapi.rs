//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every `/api`
//! route and `/healthz`, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema` derives. Public: it describes the
//! API and holds no data or secrets.
//!
//! A new route needs its `#[utoipa::path(...)]` on the handler and one line
//! in `paths(...)` below; the errors every route shares (the contract's
//! `{"error": {"code", "message"}}`) and operation ids are added here, not
//! per handler. A unit test fails when a route registered in `mod.rs` is
//! missing from the document.

use axum::http::{Method, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Components, ContentBuilder, OpenApi as Doc, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    auth_routes, docker_routes, host_routes, insight_routes, misc_routes, notify_routes, oidc_routes, schedule_routes,
    token_routes, transfer_routes, window_routes,
};

/// The contract's error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A snake_case code, e.g. `invalid_cron`, `not_found`, `docker_unavailable`.
    code: String,
    /// A human sentence.
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "DockNap API", description = "Schedules and sleep windows for Docker containers, compose stacks and Swarm services. Errors are `{\"error\": {\"code\", \"message\"}}`; times are RFC 3339 in UTC."),
    paths(
        misc_routes::healthz,
        openapi_json,
        auth_routes::login,
        auth_routes::logout,
        auth_routes::me,
        oidc_routes::providers,
        oidc_routes::login,
        oidc_routes::callback,
        auth_routes::change_password,
        auth_routes::totp_setup,
        auth_routes::totp_enable,
        auth_routes::totp_disable,
        auth_routes::list_users,
        auth_routes::create_user,
        auth_routes::update_user,
        auth_routes::delete_user,
        token_routes::list,
        token_routes::create,
        token_routes::delete,
        notify_routes::list,
        notify_routes::create,
        notify_routes::failures,
        notify_routes::get,
        notify_routes::update,
        notify_routes::delete,
        notify_routes::test,
        notify_routes::deliveries,
        transfer_routes::export,
        transfer_routes::import,
        docker_routes::containers,
        docker_routes::container,
        insight_routes::container_logs,
        insight_routes::container_stats,
        docker_routes::container_action,
        docker_routes::stacks,
        docker_routes::stack,
        insight_routes::stack_logs,
        insight_routes::stack_stats,
        docker_routes::stack_action,
        docker_routes::services,
        docker_routes::service_action,
        docker_routes::swarm_stack_action,
        host_routes::list,
        host_routes::create,
        host_routes::get,
        host_routes::update,
        host_routes::delete,
        misc_routes::events,
        schedule_routes::list,
        schedule_routes::create,
        schedule_routes::upcoming,
        schedule_routes::get,
        schedule_routes::update,
        schedule_routes::delete,
        schedule_routes::run_now,
        schedule_routes::preview,
        window_routes::list,
        window_routes::create,
        window_routes::preview,
        window_routes::get,
        window_routes::update,
        window_routes::delete,
        window_routes::set_override,
        window_routes::clear_override,
        window_routes::bulk,
        misc_routes::audit,
        misc_routes::verify_audit,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Shared)
)]
pub struct ApiDoc;

/// Security schemes, the shared error responses and unique operation ids.
struct Shared;

/// Status, component name and when it applies.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "invalid input; `code` names the problem (`invalid_json`, `missing_field`, `invalid_cron`...)",
    ),
    ("401", "Unauthenticated", "not signed in, or the token, key or session is unknown, revoked or expired"),
    (
        "403",
        "Forbidden",
        "signed in without the role this needs, an API key on a session-only route, or a cookie request from a foreign origin",
    ),
    ("404", "NotFound", "unknown id or name, or an unknown host"),
    ("409", "Conflict", "conflict: last admin, self-protection, a busy schedule, a window clash, a host in use..."),
    ("408", "BodyTimeout", "the request body did not arrive in time"),
    ("413", "PayloadTooLarge", "body over 1 MiB"),
    (
        "415",
        "UnsupportedMediaType",
        "a body that is not `Content-Type: application/json` (refused: a web page could send it cross-site without a preflight)",
    ),
    ("429", "TooManyRequests", "rate limited (`Retry-After` says for how long) or too many open event streams"),
    ("500", "Internal", "an internal error (the cause is in the server log)"),
    ("502", "BadGateway", "the Docker Engine answered with an error"),
    ("503", "Unavailable", "the Docker Engine is unreachable, or the data directory refuses writes"),
];

impl Modify for Shared {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a login token (POST /api/auth/login) or an API key (`dnp_...`, POST /api/tokens)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(super::extract::COOKIE_NAME))),
        );
        for (_, name, description) in ERRORS {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let response =
                ResponseBuilder::new().description(*description).content("application/json", content).build();
            components.responses.insert((*name).to_string(), RefOr::T(response));
        }
        doc.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("cookie", Vec::<String>::new()),
        ]);
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, op) in ops {
                if let Some(op) = op {
                    shared_errors(op, &method);
                    op.operation_id = Some(operation_id(&method, path));
                }
            }
        }
    }
}

/// Every route's possible errors. A public route (`security: [{}]`) has no 401/403.
fn shared_errors(op: &mut Operation, method: &Method) {
    let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    for (status, name, _) in ERRORS {
        let skip = (public && matches!(*status, "401" | "403"))
            || (*method == Method::GET && *status == "409")
            || (op.request_body.is_none() && matches!(*status, "408" | "413" | "415"));
        if !skip && !op.responses.responses.contains_key(*status) {
            op.responses
                .responses
                .insert((*status).to_string(), RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
        }
    }
}

/// `PUT /api/schedules/{id}` → `put_schedules_id`: unique, stable, readable.
fn operation_id(method: &Method, path: &str) -> String {
    let rest = path.strip_prefix("/api").unwrap_or(path);
    let words: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(['{', '}']).replace(['-', '.'], "_"))
        .collect();
    format!("{}_{}", method.as_str().to_lowercase(), words.join("_"))
}

/// The document as the routes and types define it (utoipa), built once.
#[cfg(test)]
fn document() -> &'static Doc {
    static DOC: std::sync::OnceLock<Doc> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// What the server answers: docs/openapi.json, which a unit test keeps
/// byte for byte equal to [`document`] (`make test` fails on any drift).
/// Serving the committed bytes keeps utoipa's schema builders, code for
/// every route and type, out of the binary.
const DOCUMENT: &str = include_str!("../../docs/openapi.json");

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "this document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(METHOD, /api/path)` of every route registered in `mod.rs`, read
    /// from its source: the router itself cannot list them.
    fn registered() -> Vec<(String, String)> {
        let src = include_str!("mod.rs");
        let mut out = Vec::new();
        for chunk in src.split(".route(").skip(1) {
            let path = chunk.trim_start().trim_start_matches('"').split('"').next().unwrap().to_string();
            // The call's arguments: up to its closing parenthesis.
            let mut depth = 1;
            let end = chunk
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
            let args = &chunk[..end];
            for m in ["get", "post", "put", "delete"] {
                let found = args.match_indices(&format!("{m}(")).any(|(i, _)| {
                    let before = args[..i].chars().last().unwrap_or(' ');
                    !(before.is_alphanumeric() || before == '_' || before == ':')
                });
                if found {
                    let full = if path.starts_with("/healthz") || path.starts_with("/metrics") {
                        path.clone()
                    } else {
                        format!("/api{path}")
                    };
                    out.push((m.to_uppercase(), full));
                }
            }
        }
        out
    }

    #[test]
    fn every_registered_route_is_in_the_document_and_nothing_else() {
        let doc = document();
        let mut documented = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)] {
                if op.is_some() {
                    documented.push((m.to_string(), path.clone()));
                }
            }
        }
        let mut routes = registered();
        // `/metrics` is Prometheus text, described in docs/METRICS.md, not in the API document.
        routes.retain(|(_, p)| p != "/metrics");
        assert!(routes.len() > 50, "the route reader found {} routes", routes.len());
        routes.sort();
        documented.sort();
        let missing: Vec<_> = routes.iter().filter(|r| !documented.contains(r)).collect();
        let extra: Vec<_> = documented.iter().filter(|r| !routes.contains(r)).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document (add #[utoipa::path] and a line in openapi.rs): {missing:?}"
        );
        assert!(extra.is_empty(), "documented routes that are not registered: {extra:?}");
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_has_the_shared_errors() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.post, &item.put, &item.delete].into_iter().flatten() {
                assert!(ids.insert(op.operation_id.clone().unwrap()), "{:?}", op.operation_id);
                for status in ["400", "404", "429", "503"] {
                    assert!(op.responses.responses.contains_key(status), "{:?} {status}", op.operation_id);
                }
            }
        }
    }

    /// docs/openapi.json is what the server serves now: the UI's types
    /// (web/src/lib/api-schema.ts) and docs/API.md are generated from it
    /// (scripts/api/generate.sh; scripts/api/check.sh in `make test`).
    /// `DOCKNAP_WRITE_OPENAPI=1 cargo test --lib openapi` rewrites it.
    #[test]
    fn the_committed_document_is_the_servers() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let now = serde_json::to_string_pretty(document()).unwrap() + "\n";
        if std::env::var_os("DOCKNAP_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == now, "docs/openapi.json is stale: run scripts/api/generate.sh and commit the result");
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let json = serde_json::to_value(document()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            json["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["text/event-stream"]
        );
    }
}
