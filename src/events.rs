//! The live event hub behind `GET /api/events`: state changes of containers,
//! stacks, the engine and schedules, fanned out to every subscriber.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::docker::{Container, Stack};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Container { id: String, name: String, container: Option<Container> },
    Stack { name: String, stack: Option<Stack> },
    Docker { status: &'static str },
    Schedule { id: i64, schedule: Option<serde_json::Value> },
    ScheduleRun {
        schedule_id: i64,
        target_type: String,
        target_id: String,
        action: String,
        at: chrono::DateTime<chrono::Utc>,
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
            Event::Schedule { .. } => "schedule",
            Event::ScheduleRun { .. } => "schedule_run",
        }
    }
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        // A slow client that falls 1024 events behind is told to resync.
        Events { tx: broadcast::channel(1024).0 }
    }
}

impl Events {
    pub fn publish(&self, e: Event) {
        // No subscriber is not an error.
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
