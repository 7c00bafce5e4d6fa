//! DockNap: schedules for Docker containers and compose stacks, with a web UI.

pub mod actions;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod autoheal;
pub mod clock;
pub mod config;
pub mod docker;
pub mod events;
pub mod hosts;
pub mod http;
pub mod labels;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod oidc;
pub mod scheduler;
pub mod store;
pub mod transfer;
pub mod ui;
pub mod window;
pub mod wire;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
