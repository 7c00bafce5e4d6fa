//! The one place where domain errors become HTTP status codes and the
//! contract's `{"error": {"code", "message"}}` body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::actions::{ActionError, ServiceActionError};
use crate::auth::AuthError;
use crate::hosts::HostError;
use crate::model::InvalidValue;
use crate::notify::NotifyError;
use crate::oidc::OidcError;
use crate::scheduler::ScheduleError;
use crate::scheduler::cron::CronError;
use crate::store::StoreError;
use crate::window::WindowError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthenticated() -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first (Bearer token or session cookie)")
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 503 for one host's engine (`None`: every host's).
    pub fn docker_unavailable(host: Option<&str>) -> ApiError {
        let message = match host {
            Some(h) if h != crate::model::LOCAL_HOST => format!("the Docker Engine of host '{h}' is unreachable"),
            _ => "the Docker Engine is unreachable".to_string(),
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "docker_unavailable", message)
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        // The cause goes to the log, not to the client.
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            e if e.is_storage_fault() => {
                tracing::error!(error = %e, "a write to the data directory failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the data directory refuses writes (disk full or read-only); nothing was changed",
                )
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            AuthError::WrongCurrentPassword => {
                ApiError::new(StatusCode::FORBIDDEN, "invalid_credentials", e.to_string())
            }
            AuthError::Unauthenticated => ApiError::unauthenticated(),
            AuthError::RateLimited(wait) => ApiError {
                retry_after: Some(wait.as_secs().max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            },
            AuthError::Invalid(code, m) => ApiError::bad_request(code, m),
            AuthError::InvalidValue(e) => e.into(),
            AuthError::Store(e) => e.into(),
            AuthError::Hash(_) | AuthError::Seal(_) => ApiError::internal(e),
            AuthError::TotpRequired => ApiError::new(StatusCode::UNAUTHORIZED, "totp_required", e.to_string()),
            AuthError::WrongTotp => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_totp", e.to_string()),
            AuthError::Forbidden(m) => ApiError::forbidden(m),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let m = e.to_string();
        match e {
            ActionError::Invalid(e) => e.into(),
            ActionError::InvalidTarget(_) => ApiError::bad_request("invalid_target", m),
            ActionError::NotFound(_) => ApiError::not_found(m),
            ActionError::SelfProtection(_) => ApiError::new(StatusCode::CONFLICT, "self_protection", m),
            ActionError::Protected { .. } => ApiError::new(StatusCode::CONFLICT, "protected", m),
            ActionError::DockerUnavailable(host) => ApiError::docker_unavailable(Some(&host)),
            ActionError::UnknownHost(_) => ApiError::bad_request("invalid_host", m),
            ActionError::Swarm(e) => match e {
                ServiceActionError::InvalidAction(_) => ApiError::bad_request("invalid_action", m),
                ServiceActionError::Unsupported(_) => ApiError::new(StatusCode::CONFLICT, "unsupported", m),
                ServiceActionError::NoService(_) | ServiceActionError::NoStack(_) | ServiceActionError::NotAManager => {
                    ApiError::not_found(m)
                }
                ServiceActionError::Docker(crate::docker::DockerError::Unavailable(_)) => {
                    ApiError::docker_unavailable(None)
                }
                ServiceActionError::Docker(e) => ApiError::new(StatusCode::BAD_GATEWAY, "docker_error", e.to_string()),
            },
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        let m = e.to_string();
        match e {
            HostError::Invalid(e) => e.into(),
            HostError::MissingField(_) => ApiError::bad_request("missing_field", m),
            HostError::Tls(_) => ApiError::bad_request("invalid_tls", m),
            HostError::NotFound(_) => ApiError::not_found(m),
            HostError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            HostError::ReadOnly(..) => ApiError::new(StatusCode::CONFLICT, "read_only", m),
            HostError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", m),
            HostError::Store(e) => e.into(),
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        let code = match e {
            InvalidValue::Action(_) | InvalidValue::AuditAction(_) => "invalid_action",
            InvalidValue::TargetType(_) => "invalid_target",
            InvalidValue::Role(_) => "invalid_role",
            InvalidValue::Desired(_)
            | InvalidValue::DownAction(_)
            | InvalidValue::Enforce(_)
            | InvalidValue::Source(_) => "invalid_window",
            InvalidValue::HostName(_)
            | InvalidValue::Group(_)
            | InvalidValue::HostSource(_)
            | InvalidValue::HostStatus(_) => "invalid_host",
            InvalidValue::HostUrl(_) => "invalid_url",
            InvalidValue::ServiceMode(_) => "invalid_target",
            InvalidValue::OnFailure(_) => "invalid_schedule",
            InvalidValue::NotifyEvent(_) => "invalid_event",
        };
        ApiError::bad_request(code, e.to_string())
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        let m = e.to_string();
        match e {
            NotifyError::Invalid(code, _) => ApiError::bad_request(code, m),
            NotifyError::MissingField(_) => ApiError::bad_request("missing_field", m),
            NotifyError::NotFound(_) => ApiError::not_found(m),
            NotifyError::ReadOnly(_) => ApiError::new(StatusCode::CONFLICT, "read_only", m),
            NotifyError::Value(e) => e.into(),
            NotifyError::Store(e) => e.into(),
        }
    }
}

impl From<CronError> for ApiError {
    fn from(e: CronError) -> Self {
        let code = match e {
            CronError::InvalidCron(_) => "invalid_cron",
            CronError::InvalidTimezone(_) => "invalid_timezone",
        };
        ApiError::bad_request(code, e.to_string())
    }
}

impl From<WindowError> for ApiError {
    fn from(e: WindowError) -> Self {
        let m = e.to_string();
        match e {
            WindowError::Spec(_) | WindowError::Invalid(_) => ApiError::bad_request("invalid_window", m),
            WindowError::Value(e) => e.into(),
            WindowError::Zone(e) => e.into(),
            WindowError::Target(e) => e.into(),
            WindowError::MissingField(_) => ApiError::bad_request("missing_field", m),
            WindowError::NotFound(_) => ApiError::not_found(m),
            WindowError::ReadOnly(..) => ApiError::new(StatusCode::CONFLICT, "read_only", m),
            WindowError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "window_conflict", m),
            WindowError::Store(e) => e.into(),
            WindowError::Schedule(e) => e.into(),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Cron(e) => e.into(),
            ScheduleError::MissingField(_) => ApiError::bad_request("missing_field", e.to_string()),
            ScheduleError::Invalid(_) => ApiError::bad_request("invalid_schedule", e.to_string()),
            ScheduleError::Busy(_) => ApiError::new(StatusCode::CONFLICT, "busy", e.to_string()),
            ScheduleError::Action(e) => e.into(),
            ScheduleError::NotFound(_) => ApiError::not_found(e.to_string()),
            ScheduleError::ReadOnly(..) => ApiError::new(StatusCode::CONFLICT, "read_only", e.to_string()),
            ScheduleError::Store(e) => e.into(),
        }
    }
}

/// A failed single sign-on ends on the login page (`/login?error=CODE`),
/// not in JSON: the browser navigated to the callback. The cause goes to
/// the log.
pub fn oidc_error_code(e: &OidcError) -> &'static str {
    match e {
        OidcError::State => "oidc_state",
        OidcError::Denied(_) => "oidc_denied",
        OidcError::Unreachable(_) => "provider_unavailable",
        OidcError::Provider(_) | OidcError::IdToken(_) => "oidc_failed",
        OidcError::NoRole => "no_role",
        OidcError::Store(StoreError::Conflict(_)) => "oidc_conflict",
        OidcError::Store(_) | OidcError::Auth(_) => "oidc_failed",
    }
}
