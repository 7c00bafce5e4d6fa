//! End-to-end tests: the built binary, over HTTP, against the real Docker
//! Engine. One test binary (one link) for all of them.

mod api_keys;
mod chaos;
mod engines;
mod harness;

mod clock_faults;
mod engine_faults;
mod faults;
mod foundation;
mod image;
mod security;
mod swarm;
mod totp;
mod lifecycle;
mod metrics;
mod oidc;
mod windows;
mod hosts;
mod insight;
mod jobs;
mod order;
mod audit_integrity;
mod labels;
mod transfer;
mod limits;
mod notifications;
mod transport;
mod wire;
