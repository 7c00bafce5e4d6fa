//! Order across stacks: `docknap.depends_on=db,cache` on a stack's
//! containers makes DockNap start `db` and `cache` first (running, healthy,
//! then `docknap.settle` more) whenever it starts them together, and stop
//! them last. Pure: the caller gives each stack's labels.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::Container;

pub const LABEL_STACK_DEPENDS_ON: &str = "docknap.depends_on";
pub const LABEL_SETTLE: &str = "docknap.settle";
/// The longest settle time a label may ask for.
const MAX_SETTLE: Duration = Duration::from_secs(600);

/// A stack's cross-stack labels, read from all its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackLabels {
    pub depends_on: BTreeSet<String>,
    /// Waited after this stack is up, before its dependents start.
    pub settle: Duration,
}

impl StackLabels {
    /// The union of the members' `docknap.depends_on` and the longest
    /// `docknap.settle`; a bad settle value is an error naming it.
    pub fn of(stack: &str, members: &[Container]) -> Result<StackLabels, String> {
        let mut out = StackLabels::default();
        for c in members {
            if let Some(list) = c.labels.get(LABEL_STACK_DEPENDS_ON) {
                out.depends_on
                    .extend(list.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != stack).map(String::from));
            }
            if let Some(v) = c.labels.get(LABEL_SETTLE) {
                let d = humantime::parse_duration(v.trim()).ok().filter(|d| *d <= MAX_SETTLE).ok_or_else(|| {
                    format!("{LABEL_SETTLE}={v} on {} is not a duration like 10s or 1m (at most 10m)", c.name)
                })?;
                out.settle = out.settle.max(d);
            }
        }
        Ok(out)
    }
}

/// The stacks in levels, dependencies first: each level depends only on
/// earlier ones (dependencies outside `stacks` are not waited for). Stacks
/// on a cycle are left out and returned with the cycle written out.
pub fn levels(stacks: &BTreeMap<String, StackLabels>) -> (Vec<Vec<String>>, BTreeMap<String, String>) {
    let within =
        |s: &String| -> BTreeSet<&String> { stacks[s].depends_on.iter().filter(|d| stacks.contains_key(*d)).collect() };
    let mut placed: BTreeSet<&String> = BTreeSet::new();
    let mut out = Vec::new();
    loop {
        let level: Vec<&String> =
            stacks.keys().filter(|s| !placed.contains(s) && within(s).iter().all(|d| placed.contains(d))).collect();
        if level.is_empty() {
            break;
        }
        placed.extend(level.iter().copied());
        out.push(level.into_iter().cloned().collect());
    }
    let mut cycles = BTreeMap::new();
    for s in stacks.keys().filter(|s| !placed.contains(s)) {
        let path = cycle_through(s, stacks, &placed);
        cycles.insert(s.clone(), format!("{LABEL_STACK_DEPENDS_ON} has a cycle: {path}; left alone"));
    }
    (out, cycles)
}

/// `a → b → a`, as far as it can be followed from `start` among the unplaced.
fn cycle_through(start: &String, stacks: &BTreeMap<String, StackLabels>, placed: &BTreeSet<&String>) -> String {
    let mut path = vec![start.clone()];
    let mut at = start;
    while let Some(next) = stacks[at].depends_on.iter().find(|d| stacks.contains_key(*d) && !placed.contains(d)) {
        if let Some(i) = path.iter().position(|p| p == next) {
            path.push(next.clone());
            let cycle = path[i..].join(" → ");
            return if i == 0 { cycle } else { format!("{} leads into {cycle}", path[..=i].join(" → ")) };
        }
        path.push(next.clone());
        at = next;
    }
    format!("{} (which depends on a stack on a cycle)", path.join(" → "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(deps: &[&str]) -> StackLabels {
        StackLabels { depends_on: deps.iter().map(|s| s.to_string()).collect(), settle: Duration::ZERO }
    }

    #[test]
    fn dependencies_come_first_and_outside_ones_are_ignored() {
        let stacks = BTreeMap::from([
            ("proxy".to_string(), labels(&["app"])),
            ("app".to_string(), labels(&["db", "elsewhere"])),
            ("db".to_string(), labels(&[])),
            ("tools".to_string(), labels(&[])),
        ]);
        let (levels, cycles) = levels(&stacks);
        assert_eq!(levels, [vec!["db", "tools"], vec!["app"], vec!["proxy"]]);
        assert!(cycles.is_empty());
    }

    #[test]
    fn a_cycle_is_reported_on_its_stacks_and_the_rest_still_run() {
        let stacks = BTreeMap::from([
            ("a".to_string(), labels(&["b"])),
            ("b".to_string(), labels(&["a"])),
            ("c".to_string(), labels(&["a"])),
            ("d".to_string(), labels(&[])),
        ]);
        let (levels, cycles) = levels(&stacks);
        assert_eq!(levels, [vec!["d"]]);
        assert_eq!(cycles["a"], "docknap.depends_on has a cycle: a → b → a; left alone");
        assert!(cycles["c"].contains("c → a leads into a → b → a"), "{}", cycles["c"]);
    }

    #[test]
    fn labels_are_read_from_every_member_with_the_longest_settle() {
        let c = |name: &str, l: &[(&str, &str)]| {
            let labels = l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Container::new(name.into(), name, "i".into(), "running".into(), String::new(), labels, Default::default())
        };
        let members = [
            c("app-web-1", &[(LABEL_STACK_DEPENDS_ON, "db, cache"), (LABEL_SETTLE, "5s")]),
            c("app-worker-1", &[(LABEL_STACK_DEPENDS_ON, "queue,app"), (LABEL_SETTLE, "1m")]),
        ];
        let l = StackLabels::of("app", &members).unwrap();
        assert_eq!(l.depends_on.iter().map(String::as_str).collect::<Vec<_>>(), ["cache", "db", "queue"], "not itself");
        assert_eq!(l.settle, Duration::from_secs(60));
        let bad = [c("x-1", &[(LABEL_SETTLE, "soon")])];
        assert!(StackLabels::of("x", &bad).unwrap_err().contains("docknap.settle=soon on x-1"));
    }
}
