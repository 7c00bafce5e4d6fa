//! The HTTP edge: thin axum handlers over the domain services. Security
//! headers, the body limit and request ids apply to every response; JSON
//! above 1 KiB is gzipped for clients that accept it, and the list routes
//! carry ETags (src/wire.rs).

mod auth_routes;
mod docker_routes;
pub mod error;
pub mod extract;
mod host_routes;
mod insight_routes;
mod misc_routes;
mod notify_routes;
mod oidc_routes;
pub mod openapi;
mod schedule_routes;
pub mod streams;
mod token_routes;
mod transfer_routes;
mod window_routes;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::middleware::{from_fn, map_response};
use axum::routing::{delete, get, post, put};
use ipnet::IpNet;
use tokio::sync::watch;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::actions::Actions;
use crate::audit::Audit;
use crate::auth::Auth;
use crate::config::SecureCookie;
use crate::docker::Fleet;
use crate::events::Events;
use crate::hosts::Hosts;
use crate::scheduler::Scheduler;
use crate::window::Windows;

pub const MAX_BODY: usize = 1024 * 1024;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

pub struct App {
    pub auth: Arc<Auth>,
    pub audit: Arc<Audit>,
    pub hosts: Arc<Hosts>,
    pub fleet: Arc<Fleet>,
    pub actions: Arc<Actions>,
    pub scheduler: Arc<Scheduler>,
    pub windows: Arc<Windows>,
    pub notifier: Arc<crate::notify::Notifier>,
    /// Export and import.
    pub transfer: Arc<crate::transfer::Transfer>,
    pub events: Events,
    pub secure_cookie: SecureCookie,
    /// `DOCKNAP_METRICS`: who may read `/metrics`.
    pub metrics_access: crate::config::MetricsAccess,
    pub trusted_proxies: Vec<IpNet>,
    /// `DOCKNAP_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Caps on open `/api/events` streams.
    pub streams: Arc<streams::StreamSlots>,
    /// Turns true at shutdown, ending long-lived responses (SSE).
    pub shutdown: watch::Receiver<bool>,
    /// The container and stack lists, serialised once per view version.
    pub lists: crate::wire::ListCache,
}

pub type AppState = Arc<App>;

impl App {
    pub fn is_trusted_proxy(&self, addr: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&addr))
    }
}

pub fn router(state: AppState) -> Router {
    // The lists the UI refetches: an ETag of the JSON, 304 when unchanged.
    let etag = || from_fn(crate::wire::etag_layer);
    let api = Router::new()
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/auth/login", post(auth_routes::login))
        .route("/auth/logout", post(auth_routes::logout))
        .route("/auth/me", get(auth_routes::me))
        .route("/auth/providers", get(oidc_routes::providers))
        .route("/auth/oidc/login", get(oidc_routes::login))
        .route("/auth/oidc/callback", get(oidc_routes::callback))
        .route("/auth/password", put(auth_routes::change_password))
        .route("/auth/totp/setup", post(auth_routes::totp_setup))
        .route("/auth/totp/enable", post(auth_routes::totp_enable))
        .route("/auth/totp/disable", post(auth_routes::totp_disable))
        .route("/users", get(auth_routes::list_users).post(auth_routes::create_user))
        .route("/users/{id}", put(auth_routes::update_user).delete(auth_routes::delete_user))
        .route("/tokens", get(token_routes::list).post(token_routes::create))
        .route("/tokens/{id}", delete(token_routes::delete))
        .route("/containers", get(docker_routes::containers.layer(etag())))
        .route("/containers/{name}", get(docker_routes::container))
        .route("/containers/{name}/logs", get(insight_routes::container_logs))
        .route("/containers/{name}/stats", get(insight_routes::container_stats))
        .route("/containers/{name}/{action}", post(docker_routes::container_action))
        .route("/stacks", get(docker_routes::stacks.layer(etag())))
        .route("/stacks/{name}", get(docker_routes::stack))
        .route("/stacks/{name}/logs", get(insight_routes::stack_logs))
        .route("/stacks/{name}/stats", get(insight_routes::stack_stats))
        .route("/stacks/{name}/{action}", post(docker_routes::stack_action))
        .route("/services", get(docker_routes::services))
        .route("/services/{name}/{action}", post(docker_routes::service_action))
        .route("/swarm-stacks/{name}/{action}", post(docker_routes::swarm_stack_action))
        .route("/hosts", get(host_routes::list).post(host_routes::create))
        .route("/hosts/{name}", get(host_routes::get).put(host_routes::update).delete(host_routes::delete))
        .route("/events", get(misc_routes::events))
        .route("/schedules", get(schedule_routes::list.layer(etag())).post(schedule_routes::create))
        .route("/schedules/upcoming", get(schedule_routes::upcoming))
        .route(
            "/schedules/{id}",
            get(schedule_routes::get).put(schedule_routes::update).delete(schedule_routes::delete),
        )
        .route("/schedules/{id}/run", post(schedule_routes::run_now))
        .route("/cron/preview", post(schedule_routes::preview))
        .route("/windows", get(window_routes::list.layer(etag())).post(window_routes::create))
        .route("/windows/preview", post(window_routes::preview))
        .route("/windows/{id}", get(window_routes::get).put(window_routes::update).delete(window_routes::delete))
        .route("/windows/{id}/override", post(window_routes::set_override).delete(window_routes::clear_override))
        .route("/bulk", post(window_routes::bulk))
        .route("/notifications", get(notify_routes::list).post(notify_routes::create))
        .route("/notifications/failures", get(notify_routes::failures))
        .route("/notifications/{id}", get(notify_routes::get).put(notify_routes::update).delete(notify_routes::delete))
        .route("/notifications/{id}/test", post(notify_routes::test))
        .route("/notifications/{id}/deliveries", get(notify_routes::deliveries))
        .route("/audit", get(misc_routes::audit))
        .route("/audit/verify", get(misc_routes::verify_audit))
        .route("/export", get(transfer_routes::export))
        // An export of thousands of schedules is more than the usual 1 MiB.
        .route("/import", post(transfer_routes::import.layer(DefaultBodyLimit::max(transfer_routes::MAX_IMPORT))))
        .fallback(misc_routes::api_not_found)
        .method_not_allowed_fallback(misc_routes::method_not_allowed);

    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(misc_routes::healthz))
        .route("/metrics", get(misc_routes::metrics))
        .fallback(crate::ui::serve)
        // JSON only (never the event stream); the UI's files come precompressed.
        // gzip's fastest level: at 200 containers 14 % of the bytes, against
        // 12 % at the default level for about three times the CPU.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest).compress_when(crate::wire::compress_when()))
        .layer(map_response(crate::wire::tag_per_coding))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
