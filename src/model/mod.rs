//! Domain types at the bottom of the crate: plain data, no I/O and no
//! `crate::` imports. The store, the engine access and the services above
//! them all speak these types, so none of them imports another for its
//! vocabulary (the order is model ← clock ← store ← audit ← auth/events ←
//! docker ← actions ← scheduler/windows ← api ← app).

mod api_key;
mod audit;
mod container;
mod host;
mod insight;
mod notify;
mod schedule;
mod service;
mod target;
mod user;
mod window;

pub use api_key::ApiKey;
pub use audit::{AuditAction, AuditEntry, AuditFilter, NewAuditEntry};
pub use container::{
    Container, ContainerHealth, ContainerState, LABEL_DEPENDS_ON, LABEL_EXCLUDE, LABEL_ONEOFF, LABEL_PROJECT,
    LABEL_PROTECT, LABEL_SERVICE, LABELS_AUTOHEAL, Stack, StackStatus,
};
pub use host::{
    HostConfig, HostSource, HostStatus, HostView, TlsMaterial, parse_host_list, validate_group, validate_host_name,
    validate_host_url,
};
pub use insight::{LogLine, LogQuery, LogStream, Stats};
pub use notify::{Channel, ChannelInput, Delivery, EventKind, Message, Notice, parse_events, redact_url};
pub use schedule::{LastRun, OnFailure, Schedule, ScheduleFields, ScheduleView, Step, Upcoming};
pub use service::{LABEL_STACK_NAMESPACE, Service, ServiceMode};
pub use target::{ALL_HOSTS, Action, ActionResult, ContainerResult, LOCAL_HOST, RunOutcome, Target, TargetType};
pub use user::{Role, User};
pub use window::{
    Conflict, Desired, DownAction, Enforce, LabelOrigin, Override, Source, Window, WindowFields, WindowState,
    WindowView, format_grace,
};

/// A value outside a closed vocabulary (an action, a target type, a role).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("action must be start, stop, restart, pause, unpause or run, not '{0}'")]
    Action(String),
    #[error("target_type must be stack, container, service, swarm_stack, group or sequence, not '{0}'")]
    TargetType(String),
    #[error("role must be admin, operator or viewer, not '{0}'")]
    Role(String),
    #[error("desired must be up or down, not '{0}'")]
    Desired(String),
    #[error("down_action must be stop or pause, not '{0}'")]
    DownAction(String),
    #[error("enforce must be both or down_only, not '{0}'")]
    Enforce(String),
    #[error("source must be api or label, not '{0}'")]
    Source(String),
    #[error(
        "host name must be 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit, not '{0}'"
    )]
    HostName(String),
    #[error("group must be 1 to 63 lowercase letters, digits and dashes, not '{0}'")]
    Group(String),
    #[error("invalid host URL {0}")]
    HostUrl(String),
    #[error("host source must be env or api, not '{0}'")]
    HostSource(String),
    #[error("host status must be connecting, ok or unreachable, not '{0}'")]
    HostStatus(String),
    #[error("on_failure must be stop or continue, not '{0}'")]
    OnFailure(String),
    #[error("service mode must be replicated or global, not '{0}'")]
    ServiceMode(String),
    #[error(
        "unknown notification event '{0}' (known: action.failed, action.succeeded, run.missed, window.changed, host.unreachable, host.recovered, container.unhealthy, container.died)"
    )]
    NotifyEvent(String),
    #[error("unknown audit action '{0}'")]
    AuditAction(String),
}

/// `Display` and `FromStr` for a closed vocabulary, from one table of
/// (variant, wire name) pairs, so the strings the API, the store and the
/// audit log use are written once.
macro_rules! vocabulary {
    ($ty:ident, $err:ident, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::model::InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::model::InvalidValue::$err(s.to_string())),
                }
            }
        }
    };
}
pub(crate) use vocabulary;
