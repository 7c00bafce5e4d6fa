//! The order of a window pass across stacks: `docknap.depends_on` puts a
//! stack's dependencies first when windows bring stacks up, and last when
//! they take them down; a stack that others wait for is healthy and settled
//! before the pass moves on to them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::Compiled;
use crate::actions::order::{StackLabels, levels};
use crate::docker::Fleet;
use crate::docker::fleet::Snapshot;
use crate::model::{Desired, Target, TargetType};

/// `windows` reordered: ups by dependency level (dependencies first), downs
/// in reverse (dependents first); the rest keep their place.
pub fn pass_order(mut windows: Vec<Compiled>, now: DateTime<Utc>, snapshot: &Snapshot) -> Vec<Compiled> {
    let depth = depths(&windows, snapshot);
    windows.sort_by_key(|c| {
        let d = depth.get(&key(&c.window.fields.target())).copied().unwrap_or(0) as i64;
        if c.desired(now) == Desired::Up { d } else { -d }
    });
    windows
}

/// Does a stack that another window wants up now wait for `target`?
pub fn awaited_by_another(target: &Target, windows: &[Compiled], now: DateTime<Utc>, fleet: &Fleet) -> bool {
    target.target_type == TargetType::Stack
        && windows.iter().any(|c| {
            let other = c.window.fields.target();
            other.target_type == TargetType::Stack
                && other.host == target.host
                && other.target_id != target.target_id
                && c.window.fields.enabled
                && c.desired(now) == Desired::Up
                && labels(&other, fleet).is_some_and(|l| l.depends_on.contains(&target.target_id))
        })
}

fn key(t: &Target) -> (String, String) {
    (t.host.clone(), t.target_id.clone())
}

fn labels(t: &Target, fleet: &Fleet) -> Option<StackLabels> {
    StackLabels::of(&t.target_id, &fleet.members(t)?).ok()
}

/// Each windowed stack's dependency level among the windowed stacks of its host.
fn depths(windows: &[Compiled], snapshot: &Snapshot) -> HashMap<(String, String), usize> {
    let mut per_host: BTreeMap<String, BTreeMap<String, StackLabels>> = BTreeMap::new();
    for t in windows.iter().map(|c| c.window.fields.target()).filter(|t| t.target_type == TargetType::Stack) {
        if let Some(l) = snapshot.members(&t).and_then(|m| StackLabels::of(&t.target_id, m).ok()) {
            per_host.entry(t.host.clone()).or_default().insert(t.target_id.clone(), l);
        }
    }
    let mut out = HashMap::new();
    for (host, stacks) in per_host {
        let (order, _cycles) = levels(&stacks);
        for (n, level) in order.into_iter().enumerate() {
            out.extend(level.into_iter().map(|s| ((host.clone(), s), n)));
        }
    }
    out
}
