//! End-to-end tests: the built binary, over HTTP, against the real Docker
//! Engine. One test binary (one link) for all of them.

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
mod oidc;
mod windows;
mod hosts;
mod audit_integrity;
mod labels;
mod transfer;
mod limits;
mod transport;
mod wire;
