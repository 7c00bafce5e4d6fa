//! The in-memory view of every container, kept current by discovery, so that
//! reads never hit the engine. Changes are published as events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::DockerError;
use crate::events::{Event, Events, Incident};
use crate::model::{Container, Stack};

/// One host's containers.
pub struct View {
    host: String,
    containers: RwLock<BTreeMap<String, Container>>,
    docker_ok: AtomicBool,
    /// Set once the first attempt to reach the engine has finished.
    attempted: AtomicBool,
    /// Bumped on every change, so a serialised list can be reused until then.
    generation: std::sync::atomic::AtomicU64,
    /// The engine's version once connected; why it is not, when it is not.
    engine: RwLock<(Option<String>, Option<String>)>,
    /// Bumped each time the engine is found unreachable: calls under way
    /// to it give up then, instead of at their own (long) timeouts.
    lost: tokio::sync::watch::Sender<u64>,
    events: Events,
}

impl View {
    pub fn new(host: &str, events: Events) -> View {
        View {
            host: host.to_string(),
            containers: RwLock::default(),
            docker_ok: AtomicBool::new(false),
            attempted: AtomicBool::new(false),
            generation: Default::default(),
            engine: RwLock::default(),
            lost: tokio::sync::watch::Sender::new(0),
            events,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Passes an engine event on to the in-process subscribers (auto-heal).
    pub fn engine_event(&self, id: &str, action: &str) {
        self.events.engine_event(crate::events::EngineEvent {
            host: self.host.clone(),
            id: id.to_string(),
            action: action.to_string(),
        });
    }

    /// The engine's version, and the last connection error while unreachable.
    pub fn engine_state(&self) -> (Option<String>, Option<String>) {
        self.engine.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Connected to an engine of this version.
    pub fn connected(&self, version: &str) {
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = (Some(version.to_string()), None);
        self.set_docker_ok(true);
    }

    /// Not reachable, and why (shown on the hosts page; never holds secrets:
    /// TLS material is not part of an engine error).
    pub fn unreachable(&self, error: String) {
        self.engine.write().unwrap_or_else(|e| e.into_inner()).1 = Some(error);
        self.set_docker_ok(false);
    }

    pub fn docker_ok(&self) -> bool {
        self.docker_ok.load(Ordering::Acquire)
    }

    /// `ok`, `unreachable`, or `connecting` until the first attempt finished.
    pub fn docker_status(&self) -> &'static str {
        match (self.attempted.load(Ordering::Acquire), self.docker_ok()) {
            (false, _) => "connecting",
            (true, true) => "ok",
            (true, false) => "unreachable",
        }
    }

    /// Trouble to tell people of (see [`Incident`]).
    pub fn incident(&self, i: Incident) {
        self.events.incident(i);
    }

    pub fn set_docker_ok(&self, ok: bool) {
        let first = !self.attempted.swap(true, Ordering::AcqRel);
        let changed = self.docker_ok.swap(ok, Ordering::AcqRel) != ok;
        if changed || (first && !ok) {
            let host = self.host.clone();
            self.events.incident(if ok {
                Incident::HostUp { host }
            } else {
                Incident::HostDown { host, error: self.engine_state().1 }
            });
        }
        if changed {
            if !ok {
                self.lost.send_modify(|n| *n += 1);
            }
            self.events
                .publish(Event::Docker { host: self.host.clone(), status: if ok { "ok" } else { "unreachable" } });
        }
    }

    /// Runs `call` unless the engine is found unreachable first (a host that
    /// stopped answering must not hold an action for the call's timeout).
    pub async fn unless_lost<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, DockerError>>,
    ) -> Result<T, DockerError> {
        let mut lost = self.lost.subscribe();
        lost.mark_unchanged();
        // Checked after subscribing: a loss from here on is seen either way.
        if !self.docker_ok() {
            return Err(DockerError::Unavailable("the engine is unreachable".into()));
        }
        tokio::select! {
            r = call => r,
            _ = lost.changed() => Err(DockerError::Unavailable("the engine stopped answering during the call".into())),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Container>> {
        self.containers.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every container, sorted by name.
    pub fn containers(&self) -> Vec<Container> {
        let mut v: Vec<Container> = self.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn container_count(&self) -> usize {
        self.read().len()
    }

    /// By name, or by full or unambiguous short id.
    pub fn container(&self, key: &str) -> Option<Container> {
        let map = self.read();
        if let Some(c) = map.values().find(|c| c.name == key) {
            return Some(c.clone());
        }
        if key.len() >= 4 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = map.range(key.to_string()..).take_while(|(id, _)| id.starts_with(key));
            if let (Some((_, c)), None) = (hits.next(), hits.next()) {
                return Some(c.clone());
            }
        }
        None
    }

    pub fn stacks(&self) -> Vec<Stack> {
        let mut groups: BTreeMap<String, Vec<Container>> = BTreeMap::new();
        for c in self.read().values() {
            if let Some(s) = c.member_of() {
                groups.entry(s.to_string()).or_default().push(c.clone());
            }
        }
        groups.iter().map(|(name, cs)| Stack::build(&self.host, name, cs.clone())).collect()
    }

    pub fn stack(&self, name: &str) -> Option<Stack> {
        let cs: Vec<Container> = self.read().values().filter(|c| c.member_of() == Some(name)).cloned().collect();
        (!cs.is_empty()).then(|| Stack::build(&self.host, name, cs))
    }

    /// Replaces everything (after a full list), publishing what changed.
    pub fn replace_all(&self, all: Vec<Container>) {
        let new: BTreeMap<String, Container> = all.into_iter().map(|c| (c.id.clone(), self.own(c))).collect();
        let old = std::mem::replace(&mut *self.containers.write().unwrap_or_else(|e| e.into_inner()), new.clone());
        let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let changed: Vec<(Option<&Container>, Option<&Container>)> =
            ids.into_iter().map(|id| (old.get(id), new.get(id))).filter(|(a, b)| a != b).collect();
        self.publish_changes(&changed);
    }

    /// Sets one container's new state (`None`: it is gone).
    pub fn update(&self, id: &str, now: Option<Container>) {
        self.update_many(&[id.to_string()], now.into_iter().collect());
    }

    /// Sets the new state of the containers `ids`: those in `found` are
    /// replaced, the others are gone.
    pub fn update_many(&self, ids: &[String], found: Vec<Container>) {
        let mut found: BTreeMap<String, Container> = found.into_iter().map(|c| (c.id.clone(), self.own(c))).collect();
        let changes: Vec<(Option<Container>, Option<Container>)> = {
            let mut map = self.containers.write().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter_map(|id| {
                    let now = found.remove(id);
                    let old = match &now {
                        Some(c) => map.insert(id.clone(), c.clone()),
                        None => map.remove(id),
                    };
                    (old != now).then_some((old, now))
                })
                .collect()
        };
        let refs: Vec<(Option<&Container>, Option<&Container>)> =
            changes.iter().map(|(a, b)| (a.as_ref(), b.as_ref())).collect();
        self.publish_changes(&refs);
    }

    fn own(&self, mut c: Container) -> Container {
        if c.host != self.host {
            c.host.clone_from(&self.host);
        }
        c
    }

    /// Changes whenever any container changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn publish_changes(&self, changed: &[(Option<&Container>, Option<&Container>)]) {
        if !changed.is_empty() {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        let mut stacks = BTreeSet::new();
        for (old, new) in changed {
            let any = new.or(*old).expect("a change has a side");
            let (id, name) = (any.id.clone(), any.name.clone());
            self.events.publish(Event::Container { host: self.host.clone(), id, name, container: new.cloned() });
            stacks.extend(old.and_then(|c| c.member_of()).map(str::to_string));
            stacks.extend(new.and_then(|c| c.member_of()).map(str::to_string));
        }
        for name in stacks {
            let stack = self.stack(&name);
            self.events.publish(Event::Stack { host: self.host.clone(), name, stack });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StackStatus;

    fn c(id: &str, stack: Option<&str>, state: &str) -> Container {
        let mut labels = BTreeMap::new();
        if let Some(s) = stack {
            labels.insert(crate::model::LABEL_PROJECT.to_string(), s.to_string());
            labels.insert(crate::model::LABEL_SERVICE.to_string(), format!("svc-{id}"));
        }
        Container::new(
            id.into(),
            &format!("/n-{id}"),
            "img".into(),
            state.into(),
            String::new(),
            labels,
            Default::default(),
        )
    }

    #[test]
    fn stack_status_rules() {
        use StackStatus::*;
        let st = |states: &[&str]| {
            let cs: Vec<_> = states.iter().enumerate().map(|(i, s)| c(&i.to_string(), Some("s"), s)).collect();
            StackStatus::of(&cs)
        };
        assert_eq!(st(&["running", "running"]), Running);
        assert_eq!(st(&["exited", "created"]), Stopped);
        assert_eq!(st(&["paused", "paused"]), Paused);
        assert_eq!(st(&["running", "exited"]), Partial);
        assert_eq!(st(&["paused", "exited"]), Partial);
        assert_eq!(st(&["running", "paused"]), Partial);
        assert_eq!(st(&["restarting", "running"]), Partial);
        assert_eq!(st(&["dead"]), Stopped);
    }

    #[test]
    fn grouping_lookup_and_events() {
        let events = Events::default();
        let mut rx = events.subscribe();
        let v = View::new("local", events);
        v.replace_all(vec![
            c("aaaa1", Some("web"), "running"),
            c("bbbb2", Some("web"), "exited"),
            c("cccc3", None, "running"),
        ]);
        let stacks = v.stacks();
        assert_eq!(stacks.len(), 1);
        assert_eq!(stacks[0].status, StackStatus::Partial);
        assert_eq!(stacks[0].services, vec!["svc-aaaa1", "svc-bbbb2"]);
        assert_eq!(v.container("n-cccc3").unwrap().id, "cccc3");
        assert_eq!(v.container("bbbb").unwrap().id, "bbbb2");
        assert!(v.container("nope").is_none());
        while rx.try_recv().is_ok() {}

        v.update("bbbb2", Some(c("bbbb2", Some("web"), "running")));
        let names: Vec<&str> = std::iter::from_fn(|| rx.try_recv().ok()).map(|e| e.name()).collect();
        assert_eq!(names, ["container", "stack"]);
        assert_eq!(v.stack("web").unwrap().status, StackStatus::Running);

        v.update("bbbb2", Some(c("bbbb2", Some("web"), "running")));
        assert!(rx.try_recv().is_err(), "no change, no event");
        v.update("aaaa1", None);
        v.update("bbbb2", None);
        assert!(v.stack("web").is_none());
    }

    #[test]
    fn compose_run_containers_are_listed_but_not_stack_members() {
        let v = View::new("local", Events::default());
        let mut one_off = c("dddd4", Some("web"), "exited");
        one_off.labels.insert(crate::model::LABEL_ONEOFF.to_string(), "True".to_string());
        v.replace_all(vec![c("aaaa1", Some("web"), "running"), one_off]);
        let web = v.stack("web").unwrap();
        assert_eq!((web.status, web.containers.len()), (StackStatus::Running, 1));
        assert_eq!(v.container("dddd4").unwrap().stack.as_deref(), Some("web"), "still shows its project");
    }
}
