//! Notifications: the events people are told of, the notice each one
//! carries, and how audit entries map to them. Pure data and rules; the
//! outbox is the store's, sending is `crate::notify`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditAction, InvalidValue, NewAuditEntry, vocabulary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "action.failed")]
    ActionFailed,
    #[serde(rename = "action.succeeded")]
    ActionSucceeded,
    #[serde(rename = "run.missed")]
    RunMissed,
    #[serde(rename = "window.changed")]
    WindowChanged,
    #[serde(rename = "host.unreachable")]
    HostUnreachable,
    #[serde(rename = "host.recovered")]
    HostRecovered,
    #[serde(rename = "container.unhealthy")]
    ContainerUnhealthy,
    #[serde(rename = "container.died")]
    ContainerDied,
}

vocabulary!(EventKind, NotifyEvent, {
    ActionFailed => "action.failed",
    ActionSucceeded => "action.succeeded",
    RunMissed => "run.missed",
    WindowChanged => "window.changed",
    HostUnreachable => "host.unreachable",
    HostRecovered => "host.recovered",
    ContainerUnhealthy => "container.unhealthy",
    ContainerDied => "container.died",
});

impl EventKind {
    /// What a channel created without `events` gets: trouble, not routine.
    pub fn defaults() -> Vec<EventKind> {
        EventKind::ALL
            .iter()
            .copied()
            .filter(|e| !matches!(e, EventKind::ActionSucceeded | EventKind::WindowChanged))
            .collect()
    }

    /// Is this bad news (shown as a failure on the dashboard and in colour)?
    pub fn is_trouble(self) -> bool {
        !matches!(self, EventKind::ActionSucceeded | EventKind::WindowChanged | EventKind::HostRecovered)
    }
}

/// One thing to tell: the webhook body of the contract, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub event: EventKind,
    pub at: DateTime<Utc>,
    pub host: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub ok: bool,
    pub message: String,
    pub details: serde_json::Value,
}

impl Notice {
    pub fn new(event: EventKind, at: DateTime<Utc>, ok: bool, message: impl Into<String>) -> Notice {
        Notice {
            event,
            at,
            host: None,
            target_type: None,
            target_id: None,
            action: None,
            ok,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Notices with the same key that arrive close together go out as one
    /// message per channel: a bulk action or a window pass failing on 30
    /// targets is one message, not 30. `None`: sent on its own at once.
    pub fn group_key(&self) -> Option<String> {
        match self.event {
            // Who acted and how: one bulk request, one window pass, one minute of schedules.
            EventKind::ActionFailed | EventKind::ActionSucceeded | EventKind::WindowChanged => {
                let trigger = self.details.get("trigger").and_then(|t| t.as_str()).unwrap_or("");
                let actor = self.details.get("actor").and_then(|t| t.as_str()).unwrap_or("");
                Some(format!("{}|{trigger}|{actor}|{}", self.event, self.action.as_deref().unwrap_or("")))
            }
            EventKind::RunMissed => Some(self.event.to_string()),
            // A crash loop is one message while it lasts.
            EventKind::ContainerDied | EventKind::ContainerUnhealthy => Some(format!(
                "{}|{}|{}",
                self.event,
                self.host.as_deref().unwrap_or(""),
                self.target_id.as_deref().unwrap_or("")
            )),
            EventKind::HostUnreachable | EventKind::HostRecovered => None,
        }
    }

    /// The notice an audit entry stands for, if any: actions (by a person,
    /// a schedule, a bulk request or a window), missed runs, windows that
    /// gave up.
    pub fn from_audit(e: &NewAuditEntry, at: DateTime<Utc>) -> Option<Notice> {
        let trigger = e.details.as_ref().and_then(|d| d.get("trigger")).and_then(|t| t.as_str()).map(str::to_string);
        let event = match e.action {
            AuditAction::Act(_) => match (e.ok, trigger.as_deref()) {
                (false, _) => EventKind::ActionFailed,
                (true, Some("window")) => EventKind::WindowChanged,
                (true, _) => EventKind::ActionSucceeded,
            },
            AuditAction::Missed => EventKind::RunMissed,
            AuditAction::WindowGaveUp => EventKind::ActionFailed,
            _ => return None,
        };
        let mut details = serde_json::Map::new();
        details.insert("actor".into(), e.actor.clone().into());
        if let Some(t) = trigger {
            details.insert("trigger".into(), t.into());
        }
        if let Some(d) = e.details.as_ref().and_then(|d| d.as_object()) {
            for key in ["schedule_id", "window_id", "due", "missed_total", "results"] {
                if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
                    details.insert(key.into(), v.clone());
                }
            }
        }
        let action = match e.action {
            AuditAction::Act(a) => Some(a.as_str().to_string()),
            _ => None,
        };
        Some(Notice {
            event,
            at,
            host: e.host.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            action,
            ok: e.ok,
            message: e.message.clone(),
            details: serde_json::Value::Object(details),
        })
    }

    /// "stack web on local" (or what there is of it).
    pub fn subject(&self) -> String {
        match (&self.target_type, &self.target_id, &self.host) {
            (Some(t), Some(id), Some(h)) => format!("{t} {id} on {h}"),
            (Some(t), Some(id), None) => format!("{t} {id}"),
            (_, _, Some(h)) => format!("host {h}"),
            _ => "DockNap".to_string(),
        }
    }
}

/// One message as sent: a single notice, or several grouped ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub notices: Vec<Notice>,
    /// Stable over retries: receivers may de-duplicate on it.
    pub id: String,
    /// `DOCKNAP_PUBLIC_URL`, for a link back.
    pub link: Option<String>,
    /// The Test button's message (its webhook `event` is `test`).
    pub test: bool,
}

impl Message {
    pub fn event(&self) -> EventKind {
        self.notices[0].event
    }

    /// A one-line title: "DockNap: stop failed: stack web on local", or for
    /// a group "DockNap: 30 × action.failed (stop)".
    pub fn title(&self) -> String {
        let first = &self.notices[0];
        if self.test {
            return "DockNap: test notification".to_string();
        }
        if self.notices.len() > 1 {
            let action = first.action.as_deref().map(|a| format!(" ({a})")).unwrap_or_default();
            return format!("DockNap: {} × {}{action}", self.notices.len(), first.event);
        }
        let what = match (first.event, first.action.as_deref()) {
            (EventKind::ActionFailed, Some(a)) => format!("{a} failed"),
            (EventKind::ActionSucceeded, Some(a)) => format!("{a} done"),
            (EventKind::WindowChanged, Some(a)) => format!("window: {a}"),
            (e, _) => e.to_string(),
        };
        format!("DockNap: {what}: {}", first.subject())
    }

    /// The plain-text body: one line per notice (at most [`MAX_LINES`]),
    /// then the link.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in self.notices.iter().take(MAX_LINES) {
            if self.notices.len() > 1 {
                out.push_str(&format!("• {}: {}\n", n.subject(), cut_line(&n.message, MAX_LINE)));
            } else {
                out.push_str(&cut_line(&n.message, MAX_LINE * 4));
                out.push('\n');
            }
        }
        if self.notices.len() > MAX_LINES {
            out.push_str(&format!("… and {} more\n", self.notices.len() - MAX_LINES));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("{link}/audit\n"));
        }
        out.trim_end().to_string()
    }

    /// The contract's webhook body. A group is one object: the first
    /// notice's event and action, a count in the message, and every notice
    /// under `details.notices`.
    pub fn webhook_body(&self) -> serde_json::Value {
        let mut body = if self.notices.len() == 1 {
            serde_json::to_value(&self.notices[0]).expect("a notice serialises")
        } else {
            let first = &self.notices[0];
            let same_host = self.notices.iter().all(|n| n.host == first.host);
            serde_json::json!({
                "event": first.event,
                "at": self.notices.iter().map(|n| n.at).max(),
                "host": if same_host { first.host.clone() } else { None },
                "target_type": null,
                "target_id": null,
                "action": first.action,
                "ok": self.notices.iter().all(|n| n.ok),
                "message": format!("{} notices: {}", self.notices.len(), self.title()),
                "details": { "count": self.notices.len(), "notices": self.notices },
            })
        };
        if self.test {
            body["event"] = "test".into();
        }
        if let (Some(link), Some(obj)) = (&self.link, body.as_object_mut()) {
            if let Some(d) = obj.get_mut("details") {
                if d.is_null() {
                    *d = serde_json::json!({});
                }
                if let Some(d) = d.as_object_mut() {
                    d.insert("url".into(), format!("{link}/audit").into());
                }
            }
        }
        body
    }
}

/// A notification channel. `url` and `secret` are secrets: never
/// serialised, never in `Debug`; the API shows [`Channel::redacted_url`].
#[derive(Clone, PartialEq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// Signs webhook deliveries (Standard Webhooks `whsec_…`).
    pub secret: Option<String>,
    pub events: Vec<EventKind>,
    pub enabled: bool,
    pub source: super::HostSource,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({}, {}, {})", self.id, self.name, redact_url(&self.url))
    }
}

impl Channel {
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// What a person gives to create or replace a channel.
#[derive(Clone)]
pub struct ChannelInput {
    pub name: String,
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<EventKind>,
    pub enabled: bool,
}

/// `scheme://host` of a channel URL, nothing else: tokens, passwords,
/// paths and queries are where services keep their secrets. Discord and
/// Telegram keep a token where the host would be, so theirs is cut too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(invalid URL)".to_string() };
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme.as_str() {
        // discord://token@id, slack://A/B/C, telegram://token@telegram, pushover://:token@user: no host to show.
        "discord" | "slack" | "pushover" | "telegram" => format!("{scheme}://"),
        _ => format!("{scheme}://{host}"),
    }
}

/// One delivery of a channel: a message, its attempts and their outcome
/// (`ok` is `None` while attempts remain).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// An event name, or `test` for the Test button's delivery.
    pub event: String,
    pub at: DateTime<Utc>,
    pub ok: Option<bool>,
    pub attempts: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Notices in it (more than one when grouped).
    pub count: i64,
    pub channel_id: i64,
}

/// Lines of a grouped message before "… and N more".
pub const MAX_LINES: usize = 20;
/// Characters of one notice's line in a grouped message (an action's
/// message can be 4,096): the services' own limits hold a whole group.
const MAX_LINE: usize = 300;

fn cut_line(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Parses an `events` list from the API: known names, no duplicates kept.
pub fn parse_events(list: &[String]) -> Result<Vec<EventKind>, InvalidValue> {
    let mut out = Vec::new();
    for s in list {
        let e: EventKind = s.parse()?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn redacted_urls_keep_the_scheme_and_host_and_nothing_secret() {
        assert_eq!(redact_url("ntfy://user:pw@ntfy.example.com/topic?x=1"), "ntfy://ntfy.example.com");
        assert_eq!(redact_url("smtp://u:p@mail.example.com:587/?to=a@b"), "smtp://mail.example.com:587");
        assert_eq!(redact_url("discord://tok@12345"), "discord://");
        assert_eq!(redact_url("generic+https://hooks.example.com/secret/path"), "generic+https://hooks.example.com");
        assert_eq!(redact_url("nonsense"), "(invalid URL)");
    }

    #[test]
    fn the_default_set_is_everything_but_successes_and_window_changes() {
        let d: Vec<&str> = EventKind::defaults().iter().map(|e| e.as_str()).collect();
        assert_eq!(
            d,
            [
                "action.failed",
                "run.missed",
                "host.unreachable",
                "host.recovered",
                "container.unhealthy",
                "container.died"
            ]
        );
    }

    #[test]
    fn audit_entries_map_to_events_by_action_outcome_and_trigger() {
        let t = crate::model::Target::new("local", crate::model::TargetType::Stack, "web");
        use crate::model::{Action, AuditAction};
        let e = |action: AuditAction, ok: bool, trigger: &str| {
            NewAuditEntry::new("bob", action, ok, "m").on(&t).details(serde_json::json!({ "trigger": trigger }))
        };
        let kind = |x: NewAuditEntry| Notice::from_audit(&x, at()).map(|n| n.event);
        assert_eq!(kind(e(Action::Stop.into(), false, "manual")), Some(EventKind::ActionFailed));
        assert_eq!(kind(e(Action::Stop.into(), true, "scheduled")), Some(EventKind::ActionSucceeded));
        assert_eq!(kind(e(Action::Start.into(), true, "window")), Some(EventKind::WindowChanged));
        assert_eq!(kind(e(AuditAction::Missed, false, "scheduled")), Some(EventKind::RunMissed));
        assert_eq!(kind(e(Action::Run.into(), false, "scheduled")), Some(EventKind::ActionFailed), "a failed job");
        assert_eq!(kind(e(AuditAction::Login, false, "")), None);
        let n = Notice::from_audit(&e(Action::Stop.into(), false, "manual"), at()).unwrap();
        assert_eq!(
            (n.host.as_deref(), n.target_id.as_deref(), n.action.as_deref()),
            (Some("local"), Some("web"), Some("stop"))
        );
    }

    #[test]
    fn one_bulk_requests_failures_share_a_group_key_and_another_actors_do_not() {
        let n = |actor: &str, target: &str| {
            let t = crate::model::Target::new("local", crate::model::TargetType::Container, target);
            let e = NewAuditEntry::new(actor, crate::model::Action::Stop, false, "m")
                .on(&t)
                .details(serde_json::json!({ "trigger": "manual" }));
            Notice::from_audit(&e, at()).unwrap().group_key()
        };
        assert_eq!(n("bob", "a"), n("bob", "b"));
        assert_ne!(n("bob", "a"), n("ann", "a"));
    }

    #[test]
    fn a_grouped_message_is_one_webhook_body_holding_every_notice() {
        let notices: Vec<Notice> = (0..30)
            .map(|i| {
                let mut n = Notice::new(EventKind::ActionFailed, at(), false, format!("failed {i}"));
                n.target_id = Some(format!("c{i}"));
                n.target_type = Some("container".into());
                n.host = Some("local".into());
                n.action = Some("stop".into());
                n
            })
            .collect();
        let m = Message { notices, id: "d1".into(), link: Some("https://d.example.com".into()), test: false };
        let body = m.webhook_body();
        assert_eq!(body["details"]["count"], 30);
        assert_eq!(body["details"]["notices"].as_array().unwrap().len(), 30);
        assert_eq!(body["event"], "action.failed");
        assert_eq!(body["details"]["url"], "https://d.example.com/audit");
        assert_eq!(m.title(), "DockNap: 30 × action.failed (stop)");
        assert!(m.text().contains("… and 10 more"), "{}", m.text());
        let mut long = m.clone();
        long.notices.iter_mut().for_each(|n| n.message = "x".repeat(4096));
        assert!(long.text().chars().count() < 20 * 400, "a group of long messages stays short");
    }
}
