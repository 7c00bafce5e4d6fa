//! End-to-end tests: the built binary, over HTTP, against the real Docker
//! Engine. One test binary (one link) for all of them.

mod api_keys;
mod chaos;
mod engines;
mod harness;

mod audit_integrity;
mod clock_faults;
mod engine_faults;
mod faults;
mod foundation;
mod hosts;
mod image;
mod insight;
mod jobs;
mod labels;
mod lifecycle;
mod limits;
mod metrics;
mod notifications;
mod oidc;
mod order;
mod security;
mod swarm;
mod totp;
mod transfer;
mod transport;
mod windows;
mod wire;
