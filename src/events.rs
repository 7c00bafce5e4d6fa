//! The live event hub behind `GET /api/events`: state changes of containers,
//! stacks, the engine and schedules, fanned out to every subscriber.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::{Action, Container, HostView, ScheduleView, Service, Stack, TargetType, WindowView};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Container {
        host: String,
        id: String,
        name: String,
        container: Option<Container>,
    },
    Stack {
        host: String,
        name: String,
        stack: Option<Stack>,
    },
    /// A host's engine became reachable or unreachable.
    Docker {
        host: String,
        status: &'static str,
    },
    /// A host was added, changed (`host` set) or removed (`None`).
    Host {
        name: String,
        host: Option<HostView>,
    },
    Service {
        host: String,
        name: String,
        service: Option<Service>,
    },
    Schedule {
        id: i64,
        schedule: Option<ScheduleView>,
    },
    Window {
        id: i64,
        window: Option<WindowView>,
    },
    ScheduleRun {
        schedule_id: i64,
        host: String,
        target_type: TargetType,
        target_id: String,
        action: Action,
        at: chrono::DateTime<chrono::Utc>,
        ok: bool,
        message: String,
    },
    /// A step of a sequence finished (step counts from 1 of `steps`).
    SequenceStep {
        schedule_id: i64,
        step: usize,
        steps: usize,
        ok: bool,
        message: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Container { .. } => "container",
            Event::Stack { .. } => "stack",
            Event::Docker { .. } => "docker",
            Event::Host { .. } => "host",
            Event::Service { .. } => "service",
            Event::Schedule { .. } => "schedule",
            Event::Window { .. } => "window",
            Event::ScheduleRun { .. } => "schedule_run",
            Event::SequenceStep { .. } => "sequence_step",
        }
    }
}

/// An event as subscribers get it: serialised once when published, not once
/// per connected client.
#[derive(Debug, Clone)]
pub struct Published {
    name: &'static str,
    data: Arc<str>,
}

impl Published {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The event as JSON.
    pub fn data(&self) -> &str {
        &self.data
    }
}

/// A container event from a host's engine, as discovery received it, for the
/// services inside DockNap that act on them (auto-heal).
#[derive(Debug, Clone)]
pub struct EngineEvent {
    pub host: String,
    pub id: String,
    /// Docker's action: `die`, `health_status: unhealthy`, ...
    pub action: String,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Published>,
    incidents: broadcast::Sender<Incident>,
    engine: broadcast::Sender<EngineEvent>,
}

impl Default for Events {
    fn default() -> Self {
        // A slow client that falls 1024 events behind is told to resync.
        Events {
            tx: broadcast::channel(1024).0,
            incidents: broadcast::channel(256).0,
            engine: broadcast::channel(1024).0,
        }
    }
}

/// Trouble on an engine that people are told of (notifications): not
/// part of the `/api/events` stream, which carries state, not news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incident {
    /// The host's engine stopped answering (or never answered since start-up).
    HostDown {
        host: String,
        error: Option<String>,
    },
    HostUp {
        host: String,
    },
    /// Exited non-zero with no stop or kill asked of the engine before it.
    ContainerDied {
        host: String,
        name: String,
        exit_code: i64,
    },
    ContainerUnhealthy {
        host: String,
        name: String,
    },
}

impl Events {
    pub fn publish(&self, e: Event) {
        // No subscriber is not an error, and then there is nothing to serialise.
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(&e) {
            Ok(json) => {
                let _ = self.tx.send(Published { name: e.name(), data: json.into() });
            }
            Err(err) => tracing::error!(error = %err, event = e.name(), "could not serialise an event"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }

    pub fn incident(&self, i: Incident) {
        let _ = self.incidents.send(i);
    }

    pub fn incidents(&self) -> broadcast::Receiver<Incident> {
        self.incidents.subscribe()
    }

    /// Hands an engine event to the in-process subscribers (none: dropped).
    pub fn engine_event(&self, e: EngineEvent) {
        let _ = self.engine.send(e);
    }

    pub fn subscribe_engine(&self) -> broadcast::Receiver<EngineEvent> {
        self.engine.subscribe()
    }
}
