//! From containers' labels to the schedules and windows they define (pure).
//!
//! Labels on a compose service's containers define objects for the whole
//! stack; on a standalone container, for that container. A value that does
//! not parse makes an object with `error` set, stored disabled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::{
    Action, Container, DownAction, Enforce, LabelOrigin, OnFailure, ScheduleFields, TargetType, WindowFields,
};
use crate::scheduler::cron::{CronExpr, parse_timezone};
use crate::window::spec::WindowSpec;
use crate::window::{DEFAULT_GRACE_SECONDS, parse_grace};

pub const SCHEDULE_PREFIX: &str = "docknap.schedule.";
pub const WINDOW: &str = "docknap.window";

/// What the labels of one host's containers define.
#[derive(Debug, Default, PartialEq)]
pub struct Defined {
    pub schedules: Vec<(ScheduleFields, LabelOrigin)>,
    pub windows: Vec<(WindowFields, LabelOrigin)>,
}

/// One target's label values: key → value → the services (or container)
/// that give it.
type Values = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// `now`: a one-time schedule whose instant has passed is defined disabled
/// (it has had its turn, as the scheduler leaves it).
pub fn defined(host: &str, containers: &[Container], default_tz: Tz, now: DateTime<Utc>) -> Defined {
    // (target type, target id) → values of its docknap.schedule.* / docknap.window* labels.
    let mut targets: BTreeMap<(TargetType, String), Values> = BTreeMap::new();
    // While `compose up` re-creates a service, its old container (old labels)
    // and the new one exist side by side: the newest speaks for the service.
    let mut newest: BTreeMap<(&str, &str), chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for c in containers {
        if let (Some(stack), Some(service)) = (c.member_of(), c.service.as_deref()) {
            let t = newest.entry((stack, service)).or_insert(c.created);
            *t = (*t).max(c.created);
        }
    }
    for c in containers {
        // `docker compose run` containers carry their service's labels but are not the service.
        let one_off = c.stack.is_some() && c.member_of().is_none();
        let superseded = match (c.member_of(), c.service.as_deref()) {
            (Some(stack), Some(service)) => newest.get(&(stack, service)).is_some_and(|t| *t > c.created),
            _ => false,
        };
        if one_off || superseded {
            continue;
        }
        let (target, from) = match c.member_of() {
            Some(stack) => {
                ((TargetType::Stack, stack.to_string()), c.service.clone().unwrap_or_else(|| c.name.clone()))
            }
            None => ((TargetType::Container, c.name.clone()), c.name.clone()),
        };
        for (k, v) in &c.labels {
            if k.starts_with(SCHEDULE_PREFIX) || k == WINDOW || k.starts_with("docknap.window.") {
                let by = targets
                    .entry(target.clone())
                    .or_default()
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default();
                if !by.contains(&from) {
                    by.push(from.clone());
                }
            }
        }
    }
    let mut out = Defined::default();
    for ((target_type, target_id), values) in targets {
        let base = format!("{host}/{target_type}:{target_id}");
        // Schedules by name.
        let mut names: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        let mut window: Vec<(&str, &str)> = Vec::new();
        for key in values.keys() {
            if let Some(rest) = key.strip_prefix(SCHEDULE_PREFIX) {
                let (name, field) = rest.rsplit_once('.').unwrap_or((rest, ""));
                names.entry(name).or_default().push((key, field));
            } else {
                window.push((key, key.strip_prefix(WINDOW).unwrap_or("").trim_start_matches('.')));
            }
        }
        let ctx = Ctx { host, target_type, target_id: &target_id, values: &values, default_tz, now };
        for (name, keys) in names {
            out.schedules.push(ctx.schedule(&format!("{base}/schedule:{name}"), name, &keys));
        }
        if !window.is_empty() {
            out.windows.push(ctx.window(&format!("{base}/window"), &window));
        }
    }
    out
}

struct Ctx<'a> {
    host: &'a str,
    target_type: TargetType,
    target_id: &'a str,
    values: &'a Values,
    default_tz: Tz,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// The services (or container) giving any of `keys`, for `origin`.
    fn origin(&self, keys: &[(&str, &str)]) -> String {
        let mut from: Vec<&str> =
            keys.iter().flat_map(|(k, _)| self.values[*k].values().flatten().map(String::as_str)).collect();
        from.sort_unstable();
        from.dedup();
        from.join(", ")
    }

    /// The one value of a label, or why there is none.
    fn value(&self, key: &str) -> Result<Option<&str>, String> {
        let Some(by) = self.values.get(key) else { return Ok(None) };
        if by.len() > 1 {
            let who: Vec<String> = by.iter().map(|(v, s)| format!("{} says '{v}'", s.join(", "))).collect();
            return Err(format!("{key} differs between services: {}", who.join("; ")));
        }
        Ok(by.keys().next().map(|v| v.trim()))
    }

    fn schedule(&self, key: &str, name: &str, keys: &[(&str, &str)]) -> (ScheduleFields, LabelOrigin) {
        let label = |k: &str| format!("{SCHEDULE_PREFIX}{name}.{k}");
        let mut fields = ScheduleFields {
            host: self.host.to_string(),
            target_type: self.target_type,
            target_id: self.target_id.to_string(),
            action: Action::Stop,
            cron: None,
            at: None,
            timezone: self.default_tz.name().to_string(),
            enabled: true,
            run_timeout: None,
            steps: Vec::new(),
            on_failure: OnFailure::Stop,
        };
        let error = (|| -> Result<(), String> {
            valid_name(name)?;
            if let Some((k, _)) = keys.iter().find(|(_, f)| !["cron", "action", "timezone", "at"].contains(f)) {
                return Err(format!("unknown label {k} (a schedule takes .cron or .at, .action, .timezone)"));
            }
            if let Some(tz) = self.value(&label("timezone"))? {
                // Kept as written when wrong: the object shows what the label says.
                fields.timezone = tz.to_string();
                fields.timezone =
                    parse_timezone(tz).map_err(|e| format!("{}: {e}", label("timezone")))?.name().to_string();
            }
            match (self.value(&label("cron"))?, self.value(&label("at"))?) {
                (Some(_), Some(_)) => return Err(format!("give {} or {}, not both", label("cron"), label("at"))),
                (None, None) => return Err(format!("{} (or .at) is missing", label("cron"))),
                (Some(cron), None) => {
                    fields.cron = Some(cron.to_string());
                    fields.cron = Some(
                        CronExpr::parse(cron).map_err(|e| format!("{}: {e}", label("cron")))?.as_str().to_string(),
                    );
                }
                (None, Some(at)) => {
                    let t = DateTime::parse_from_rfc3339(at).map_err(|_| {
                        format!("{}: '{at}' is not an RFC 3339 time such as 2026-12-24T18:00:00+01:00", label("at"))
                    })?;
                    fields.at = Some(t.with_timezone(&Utc));
                }
            }
            let action = self.value(&label("action"))?.ok_or_else(|| format!("{} is missing", label("action")))?;
            fields.action = action.parse().map_err(|e| format!("{}: {e}", label("action")))?;
            if fields.action == Action::Run && self.target_type != TargetType::Container {
                return Err(format!(
                    "{}: run is for a standalone container, not a {}",
                    label("action"),
                    self.target_type
                ));
            }
            Ok(())
        })()
        .err();
        // A one-time schedule whose instant has passed has had its turn.
        fields.enabled = error.is_none() && fields.at.is_none_or(|at| at > self.now);
        if fields.cron.is_none() && fields.at.is_none() {
            // Stored (disabled, with its error) as a cron schedule that never parses.
            fields.cron = Some(String::new());
        }
        (fields, LabelOrigin { key: key.to_string(), origin: self.origin(keys), error })
    }

    fn window(&self, key: &str, keys: &[(&str, &str)]) -> (WindowFields, LabelOrigin) {
        let label = |k: &str| format!("{WINDOW}.{k}");
        let mut fields = WindowFields {
            host: self.host.to_string(),
            target_type: self.target_type,
            target_id: self.target_id.to_string(),
            spec: String::new(),
            timezone: self.default_tz.name().to_string(),
            down_action: DownAction::Stop,
            enforce: Enforce::Both,
            grace_seconds: DEFAULT_GRACE_SECONDS,
            enabled: true,
        };
        let error = (|| -> Result<(), String> {
            if let Some((k, _)) = keys.iter().find(|(_, f)| !["", "timezone", "down_action", "grace"].contains(f)) {
                return Err(format!(
                    "unknown label {k} (a window takes docknap.window and .timezone, .down_action, .grace)"
                ));
            }
            let spec =
                self.value(WINDOW)?.ok_or_else(|| format!("{WINDOW} is missing (its options are set without it)"))?;
            fields.spec = spec.to_string();
            if let Some(tz) = self.value(&label("timezone"))? {
                fields.timezone = tz.to_string();
                fields.timezone =
                    parse_timezone(tz).map_err(|e| format!("{}: {e}", label("timezone")))?.name().to_string();
            }
            if let Some(a) = self.value(&label("down_action"))? {
                fields.down_action = a.parse().map_err(|e| format!("{}: {e}", label("down_action")))?;
            }
            if let Some(g) = self.value(&label("grace"))? {
                fields.grace_seconds = parse_grace(g).map_err(|e| format!("{}: {e}", label("grace")))?;
            }
            fields.spec = WindowSpec::parse(spec).map_err(|e| format!("{WINDOW}: {e}"))?.as_str().to_string();
            Ok(())
        })()
        .err();
        fields.enabled = error.is_none();
        (fields, LabelOrigin { key: key.to_string(), origin: self.origin(keys), error })
    }
}

/// Schedule names as they appear in label keys: letters, digits, `-`, `_`.
fn valid_name(name: &str) -> Result<(), String> {
    let ok =
        !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a schedule name (letters, digits, - and _, as in docknap.schedule.nightly.cron)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, stack: Option<&str>, service: &str, labels: &[(&str, &str)]) -> Container {
        let mut l: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(s) = stack {
            l.insert(crate::model::LABEL_PROJECT.into(), s.into());
            l.insert(crate::model::LABEL_SERVICE.into(), service.into());
        }
        Container::new(format!("id-{name}"), name, "img".into(), "running".into(), String::new(), l, Default::default())
    }

    #[test]
    fn labels_of_a_service_define_objects_of_its_stack_and_of_a_standalone_container_for_it() {
        let all = [
            c(
                "shop-web-1",
                Some("shop"),
                "web",
                &[("docknap.schedule.night.cron", "0 23 * * *"), ("docknap.schedule.night.action", "stop")],
            ),
            c(
                "shop-db-1",
                Some("shop"),
                "db",
                &[("docknap.window", "Mon-Fri 08:00-18:00"), ("docknap.window.grace", "0")],
            ),
            c("solo", None, "", &[("docknap.window", "always"), ("docknap.window.down_action", "pause")]),
            c("other", None, "", &[("docknap.exclude", "true")]),
        ];
        let d = defined("local", &all, chrono_tz::UTC, Utc::now());
        assert_eq!(d.schedules.len(), 1);
        let (f, l) = &d.schedules[0];
        assert_eq!(
            (f.target_type, f.target_id.as_str(), f.action, f.cron.as_deref().unwrap(), f.enabled),
            (TargetType::Stack, "shop", Action::Stop, "0 23 * * *", true)
        );
        assert_eq!(
            (l.key.as_str(), l.origin.as_str(), l.error.as_ref()),
            ("local/stack:shop/schedule:night", "web", None)
        );
        assert_eq!(d.windows.len(), 2);
        let (w, l) = &d.windows[0];
        assert_eq!((w.target_id.as_str(), w.grace_seconds, w.enabled, l.origin.as_str()), ("shop", 0, true, "db"));
        let (w, l) = &d.windows[1];
        assert_eq!(
            (w.target_type, w.target_id.as_str(), w.down_action, l.key.as_str()),
            (TargetType::Container, "solo", DownAction::Pause, "local/container:solo/window")
        );
    }

    #[test]
    fn a_bad_value_is_an_error_on_the_object_which_is_disabled() {
        let err = |labels: &[(&str, &str)]| {
            let d = defined("local", &[c("x", None, "", labels)], chrono_tz::UTC, Utc::now());
            let (enabled, error) = match (d.schedules.first(), d.windows.first()) {
                (Some((f, l)), _) => (f.enabled, l.error.clone()),
                (_, Some((f, l))) => (f.enabled, l.error.clone()),
                _ => panic!("no object"),
            };
            assert!(!enabled);
            error.unwrap()
        };
        assert!(
            err(&[("docknap.schedule.a.cron", "61 * * * *"), ("docknap.schedule.a.action", "stop")])
                .starts_with("docknap.schedule.a.cron:")
        );
        assert!(
            err(&[("docknap.schedule.a.cron", "0 1 * * *"), ("docknap.schedule.a.action", "explode")])
                .contains("explode")
        );
        assert!(err(&[("docknap.schedule.a.cron", "0 1 * * *")]).contains("docknap.schedule.a.action is missing"));
        assert!(err(&[("docknap.schedule.a.at", "soon"), ("docknap.schedule.a.action", "stop")]).contains("RFC 3339"));
        assert!(
            err(&[
                ("docknap.schedule.a.at", "2030-01-01T00:00:00Z"),
                ("docknap.schedule.a.cron", "0 1 * * *"),
                ("docknap.schedule.a.action", "stop")
            ])
            .contains("not both")
        );
        assert!(err(&[("docknap.schedule.a.crn", "0 1 * * *")]).contains("unknown label docknap.schedule.a.crn"));
        assert!(err(&[("docknap.window", "Mon 9-17")]).starts_with("docknap.window:"));
        assert!(
            err(&[("docknap.window", "always"), ("docknap.window.timezone", "Mars/Base")])
                .starts_with("docknap.window.timezone:")
        );
        assert!(err(&[("docknap.window.grace", "5m")]).contains("docknap.window is missing"));
    }

    #[test]
    fn services_that_disagree_make_an_error_and_one_off_containers_are_not_the_service() {
        let all = [
            c("p-a-1", Some("p"), "a", &[("docknap.window", "always")]),
            c("p-b-1", Some("p"), "b", &[("docknap.window", "never")]),
        ];
        let d = defined("local", &all, chrono_tz::UTC, Utc::now());
        let (_, l) = &d.windows[0];
        assert_eq!(l.origin, "a, b");
        assert!(l.error.as_ref().unwrap().contains("differs between services"), "{l:?}");

        let mut run = c("p-a-run-1", Some("p"), "a", &[("docknap.window", "never")]);
        run.labels.insert(crate::model::LABEL_ONEOFF.into(), "True".into());
        let d = defined("local", &[all[0].clone(), run], chrono_tz::UTC, Utc::now());
        assert_eq!(d.windows.len(), 1);
        assert!(d.windows[0].1.error.is_none());

        // A service being re-created: the newer container's labels win.
        let mut new = c("p-a-1", Some("p"), "a", &[("docknap.window", "never")]);
        new.id = "id-new".into();
        new.created = all[0].created + chrono::Duration::seconds(1);
        let d = defined("local", &[all[0].clone(), new], chrono_tz::UTC, Utc::now());
        assert_eq!((d.windows[0].0.spec.as_str(), d.windows[0].1.error.as_ref()), ("never", None));
    }

    #[test]
    fn a_one_time_label_schedule_is_enabled_until_its_instant() {
        let labels = [("docknap.schedule.once.at", "2030-01-01T00:00:00Z"), ("docknap.schedule.once.action", "stop")];
        let one = c("x", None, "", &labels);
        let before: DateTime<Utc> = "2029-12-31T00:00:00Z".parse().unwrap();
        let d = defined("local", std::slice::from_ref(&one), chrono_tz::UTC, before);
        let (f, l) = &d.schedules[0];
        assert_eq!(
            (f.cron.as_deref(), f.at, f.enabled, l.error.as_deref()),
            (None, Some("2030-01-01T00:00:00Z".parse().unwrap()), true, None)
        );
        let after: DateTime<Utc> = "2030-01-02T00:00:00Z".parse().unwrap();
        assert!(!defined("local", &[one], chrono_tz::UTC, after).schedules[0].0.enabled, "had its turn");
    }

    #[test]
    fn a_broken_label_schedule_is_still_storable_with_cron_or_at() {
        for labels in [
            &[("docknap.schedule.x.action", "stop")][..],
            &[("docknap.schedule.x.cron", "0 1 * * *"), ("docknap.schedule.x.at", "2030-01-01T00:00:00Z")][..],
        ] {
            let c = c("x", None, "", labels);
            let d = defined("local", &[c], chrono_tz::UTC, Utc::now());
            let (f, l) = &d.schedules[0];
            assert!(l.error.is_some() && !f.enabled);
            assert!(f.cron.is_some() != f.at.is_some(), "the table's CHECK holds: {f:?}");
        }
    }
}
