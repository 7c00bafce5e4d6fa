//! A compose stack's `depends_on` graph, as levels to act on in order.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Container, LABEL_DEPENDS_ON};

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) container: Container,
    pub(super) service: String,
    /// Services this one depends on (in this stack).
    pub(super) deps: Vec<String>,
    /// Services that must be ready (healthy, or finished with 0) before
    /// this one starts.
    pub(super) waits_for: Vec<String>,
    /// What some other service waits for this one to become.
    pub(super) awaited: Condition,
}

/// A compose `depends_on` condition, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    /// Why a service that failed this condition holds its dependents back.
    pub(super) fn unmet(self) -> &'static str {
        match self {
            Condition::Started => "did not start",
            Condition::Healthy => "is not healthy",
            Condition::CompletedSuccessfully => "did not complete successfully",
        }
    }
}

/// `db:service_healthy:false,cache:service_started:true` → [(db, Healthy), …]
pub(super) fn parse_depends_on(label: &str) -> Vec<(String, Condition)> {
    label
        .split(',')
        .filter_map(|dep| {
            let mut parts = dep.trim().split(':');
            let name = parts.next().filter(|n| !n.is_empty())?;
            let condition = match parts.next() {
                Some("service_healthy") => Condition::Healthy,
                Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                _ => Condition::Started,
            };
            Some((name.to_string(), condition))
        })
        .collect()
}

/// Groups a stack's containers into levels: each level depends only on
/// earlier ones. Dependencies outside the stack are ignored; a cycle (which
/// compose refuses anyway) lands in one final level rather than hanging.
pub(super) fn dependency_levels(containers: &[Container]) -> Vec<Vec<Member>> {
    let service_of = |c: &Container| c.service.clone().unwrap_or_else(|| c.name.clone());
    let services: BTreeSet<String> = containers.iter().map(service_of).collect();
    let mut deps: BTreeMap<String, Vec<(String, Condition)>> = BTreeMap::new();
    for c in containers {
        let d = c.labels.get(LABEL_DEPENDS_ON).map(|l| parse_depends_on(l)).unwrap_or_default();
        deps.entry(service_of(c)).or_default().extend(d.into_iter().filter(|(s, _)| services.contains(s)));
    }
    let mut awaited: BTreeMap<&String, Condition> = BTreeMap::new();
    for (s, condition) in deps.values().flatten() {
        let a = awaited.entry(s).or_insert(Condition::Started);
        *a = (*a).max(*condition);
    }

    let mut level_of: BTreeMap<&String, usize> = BTreeMap::new();
    let mut remaining: BTreeSet<&String> = services.iter().collect();
    let mut level = 0;
    while !remaining.is_empty() {
        let ready: Vec<&String> = remaining
            .iter()
            .copied()
            .filter(|s| deps[*s].iter().all(|(d, _)| level_of.get(d).is_some_and(|l| *l < level)))
            .collect();
        let ready = if ready.is_empty() { remaining.iter().copied().collect() } else { ready };
        for s in ready {
            level_of.insert(s, level);
            remaining.remove(s);
        }
        level += 1;
    }

    let mut levels: Vec<Vec<Member>> = vec![Vec::new(); level];
    for c in containers {
        let service = service_of(c);
        let member = Member {
            container: c.clone(),
            deps: deps[&service].iter().map(|(s, _)| s.clone()).collect(),
            waits_for: deps[&service].iter().filter(|(_, c)| *c > Condition::Started).map(|(s, _)| s.clone()).collect(),
            awaited: awaited.get(&service).copied().unwrap_or(Condition::Started),
            service: service.clone(),
        };
        levels[level_of[&service]].push(member);
    }
    levels
}

/// DockNap's own container id, when it runs in one: Docker bind-mounts
/// /etc/hostname and friends from /var/lib/docker/containers/<id>/, which
/// shows in our mount table whatever the cgroup layout.
pub fn detect_self_container_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find_container_id(&mountinfo)
}

pub(super) fn find_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let rest = &line[line.find("/containers/")? + "/containers/".len()..];
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (id.len() == 64 && rest[64..].starts_with('/')).then_some(id)
    })
}
