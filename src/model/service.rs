//! Swarm services and Swarm stacks (services sharing a
//! `com.docker.stack.namespace` label), on a host that is a Swarm manager.

use serde::Serialize;

use super::vocabulary;

pub const LABEL_STACK_NAMESPACE: &str = "com.docker.stack.namespace";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    Replicated,
    Global,
}

vocabulary!(ServiceMode, ServiceMode, { Replicated => "replicated", Global => "global" });

/// A Swarm service as the API shows it (the contract's shape).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Service {
    pub host: String,
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub stack: Option<String>,
    pub mode: ServiceMode,
    /// Tasks running now.
    pub replicas: u64,
    /// What the service spec asks for (0 after a DockNap stop).
    pub desired_replicas: u64,
    /// The count a DockNap stop remembered, to start back to.
    #[schema(required = true)]
    pub saved_replicas: Option<u64>,
}
