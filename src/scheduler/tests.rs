use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Timelike;

use super::*;
use crate::actions::fake::{self, FakeEngine};
use crate::clock::FakeClock;
use crate::model::AuditFilter;
use crate::model::{Container, LABEL_PROJECT, LABEL_SERVICE};

struct Bench {
    _dir: tempfile::TempDir,
    clock: Arc<FakeClock>,
    engine: Arc<FakeEngine>,
    store: Arc<Store>,
    audit: Arc<Audit>,
    view: Arc<crate::docker::View>,
    scheduler: Arc<Scheduler>,
}

/// Stacks `a` and `b` with one running container each (`a-x-1`, `b-x-1`).
fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let clock = Arc::new(FakeClock::at("2026-01-01T00:00:00Z"));
    let containers = ["a", "b"]
        .map(|p| {
            let labels = BTreeMap::from([
                (LABEL_PROJECT.to_string(), p.to_string()),
                (LABEL_SERVICE.to_string(), "x".to_string()),
            ]);
            Container::new(
                format!("id-{p}"),
                &format!("{p}-x-1"),
                "i".into(),
                "running".into(),
                String::new(),
                labels,
                Default::default(),
            )
        })
        .to_vec();
    let audit = Arc::new(Audit::new(store.clone(), clock.clone()));
    let events = Events::default();
    let (engine, view, actions) = fake::actions_with_events(containers, audit.clone(), events.clone());
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        Arc::new(actions),
        audit.clone(),
        events,
        clock.clone(),
        chrono_tz::UTC,
    ));
    Bench { _dir: dir, clock, engine, store, audit, view, scheduler }
}

#[tokio::test]
async fn upcoming_caps_each_schedule_so_none_crowds_out_the_others() {
    let b = bench();
    let every_minute = b.scheduler.create(input("stack", "a", "restart", "* * * * *"), "t").await.unwrap();
    let nightly = b.scheduler.create(input("stack", "b", "stop", "0 23 * * *"), "t").await.unwrap();
    let until = Some("2026-01-03T00:00:00Z".parse().unwrap());
    let ids = |v: Vec<Upcoming>| v.iter().map(|u| u.schedule_id).collect::<Vec<_>>();

    let crowded = ids(b.scheduler.upcoming(100, until, None).await.unwrap());
    assert_eq!(crowded.len(), 100);
    assert!(!crowded.contains(&nightly.id), "100 minutes hold no 23:00");

    let capped = ids(b.scheduler.upcoming(100, until, Some(10)).await.unwrap());
    assert_eq!(capped.iter().filter(|id| **id == every_minute.id).count(), 10);
    assert_eq!(capped.iter().filter(|id| **id == nightly.id).count(), 2, "both nights before `until`");
}

fn input(target_type: &str, target: &str, action: &str, cron: &str) -> ScheduleInput {
    ScheduleInput {
        target_type: Some(target_type.into()),
        target_id: Some(target.into()),
        action: Some(action.into()),
        cron: Some(cron.into()),
        ..Default::default()
    }
}

impl Bench {
    fn acts(&self) -> Vec<(String, Action)> {
        self.engine.acts.lock().unwrap().clone()
    }

    fn audit(&self, action: &str) -> Vec<crate::model::AuditEntry> {
        let filter = AuditFilter { limit: 100, action: Some(action.into()), ..Default::default() };
        self.audit.flush();
        self.store.audit(&filter).unwrap()
    }

    /// Lets spawned fires run until `done` holds, for at most 10 s of wall
    /// time: each fire writes (and fsyncs) the store on a blocking thread,
    /// which a machine busy building and testing can hold up for seconds.
    async fn settle(&self, done: impl Fn(&Bench) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("fires did not settle within 10 s");
    }
}

#[tokio::test]
async fn a_fire_planned_before_a_delete_or_disable_never_acts() {
    let b = bench();
    let deleted = b.scheduler.create(input("stack", "a", "stop", "* * * * * *"), "t").await.unwrap();
    let disabled = b.scheduler.create(input("container", "a-x-1", "stop", "* * * * * *"), "t").await.unwrap();
    let kept = b.scheduler.create(input("stack", "b", "stop", "* * * * * *"), "t").await.unwrap();
    b.clock.set("2026-01-01T00:00:01.500Z");

    // All three fires are planned (spawned) before the changes land: the
    // fires wait for the engine, which comes back only after the changes.
    b.view.set_docker_ok(false);
    b.scheduler.tick().await.unwrap();
    b.scheduler.delete(deleted.id, "t").await.unwrap();
    let off = ScheduleInput { enabled: Some(false), ..Default::default() };
    b.scheduler.update(disabled.id, off, "t").await.unwrap();
    b.view.set_docker_ok(true);

    b.settle(|b| b.store.schedule(kept.id).unwrap().last_run.is_some()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts(), [("id-b".to_string(), Action::Stop)]);
    assert!(b.store.schedule(disabled.id).unwrap().last_run.is_none());
    let runs = b.audit("stop");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].details.as_ref().unwrap()["schedule_id"], kept.id);
}

#[tokio::test]
async fn an_edit_that_keeps_the_timing_does_not_skip_a_due_fire() {
    let b = bench();
    let kept = b.scheduler.create(input("stack", "a", "stop", "0 * * * * *"), "t").await.unwrap();
    let retimed = b.scheduler.create(input("stack", "b", "stop", "0 * * * * *"), "t").await.unwrap();
    // The minute has struck, and the edits land before the tick sees it.
    b.clock.set("2026-01-01T00:01:00.001Z");
    let same = ScheduleInput { enabled: Some(true), target_id: Some("a".into()), ..Default::default() };
    b.scheduler.update(kept.id, same, "t").await.unwrap();
    let other = ScheduleInput { cron: Some("30 * * * * *".into()), ..Default::default() };
    b.scheduler.update(retimed.id, other, "t").await.unwrap();
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.store.schedule(kept.id).unwrap().last_run.is_some()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts(), [("id-a".to_string(), Action::Stop)], "the new timing starts afresh");
}

#[tokio::test]
async fn a_gap_is_audited_as_missed_and_only_a_recent_fire_runs_once_late() {
    let b = bench();
    let every10s = b.scheduler.create(input("container", "a-x-1", "restart", "*/10 * * * * *"), "t").await.unwrap();
    let hourly = b.scheduler.create(input("container", "b-x-1", "restart", "0 0 * * * *"), "t").await.unwrap();

    // Down (or suspended) for five minutes: 30 fires of every10s were due.
    b.clock.set("2026-01-01T00:05:03Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.store.schedule(every10s.id).unwrap().last_run.is_some()).await;
    assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)], "one late run, no burst");
    let run = b.store.schedule(every10s.id).unwrap().last_run.unwrap();
    assert_eq!((run.at, run.ok), ("2026-01-01T00:05:00Z".parse().unwrap(), true));
    let missed = b.audit("missed");
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].details.as_ref().unwrap()["missed_total"], 29);

    // The clock jumps 80 minutes: hourly's 01:00 fire is 20 minutes late,
    // beyond the catch-up window, so it is only audited.
    b.engine.acts.lock().unwrap().clear();
    b.clock.set("2026-01-01T01:20:00Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.store.schedule(every10s.id).unwrap().last_run.unwrap().at.minute() == 20).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)]);
    assert!(b.store.schedule(hourly.id).unwrap().last_run.is_none());
    let missed = b.audit("missed");
    assert_eq!(missed.len(), 3, "{missed:?}");
    assert!(missed.iter().any(|e| e.details.as_ref().unwrap()["schedule_id"] == hourly.id));

    // Nothing is due again in the same instant: no second run.
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts().len(), 1);
}

#[tokio::test]
async fn a_run_cut_off_by_the_previous_process_is_audited_as_missed_once_and_not_repeated() {
    let b = bench();
    let s = b.scheduler.create(input("stack", "a", "stop", "0 * * * *"), "t").await.unwrap();
    // What a process killed during the 00:00 run left behind.
    let due = "2026-01-01T00:00:00Z".parse().unwrap();
    b.store.set_checked_until(s.id, due, Some(due)).unwrap();
    b.scheduler.tick().await.unwrap();
    b.scheduler.tick().await.unwrap();
    let missed = b.audit("missed");
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].message.contains("DockNap stopped before this run finished"), "{}", missed[0].message);
    assert_eq!(b.store.schedule(s.id).unwrap().running_due, None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(b.acts().is_empty(), "not repeated");
}

#[tokio::test]
async fn a_run_killed_after_its_audit_entry_is_not_also_missed() {
    let b = bench();
    let s = b.scheduler.create(input("stack", "a", "stop", "0 * * * *"), "t").await.unwrap();
    // Killed between the run's audit entry and the schedule's record of it.
    let due: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    b.store.set_checked_until(s.id, due, Some(due)).unwrap();
    let run = crate::model::NewAuditEntry::new(
        "scheduler",
        crate::model::Action::Stop,
        true,
        "stop stack a: 1 container(s) ok",
    )
    .target("stack", "a")
    .details(serde_json::json!({ "trigger": "scheduled", "schedule_id": s.id, "due": due }));
    b.store.append_audit(&run, due).unwrap();
    b.scheduler.tick().await.unwrap();
    assert!(b.audit("missed").is_empty(), "the run finished: {:?}", b.audit("missed"));
    assert_eq!(b.store.schedule(s.id).unwrap().running_due, None);
}

#[tokio::test]
async fn when_the_disk_refuses_writes_due_fires_still_run_and_only_once() {
    let b = bench();
    let s = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * * *"), "t").await.unwrap();
    // Stands in for a full disk: schedules can be read but not updated.
    let side = rusqlite::Connection::open(b._dir.path().join(crate::store::DB_FILE)).unwrap();
    side.execute_batch("CREATE TRIGGER full BEFORE UPDATE ON schedules BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .unwrap();
    b.clock.set("2026-01-01T00:00:01.100Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.audit("restart").len() == 1).await;
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(b.acts().len(), 1, "the fire ran once, remembered in memory");
    assert!(b.store.schedule(s.id).unwrap().last_run.is_none(), "its result could not be stored");
    side.execute_batch("DROP TRIGGER full").unwrap();
    b.clock.set("2026-01-01T00:00:02.100Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.store.schedule(s.id).unwrap().last_run.is_some()).await;
    assert_eq!(b.acts().len(), 2);
}

#[tokio::test]
async fn a_fire_while_the_previous_run_still_goes_is_skipped_not_queued() {
    let b = bench();
    *b.engine.delay.lock().unwrap() = Duration::from_millis(300);
    b.scheduler.create(input("container", "a-x-1", "restart", "* * * * * *"), "t").await.unwrap();
    b.clock.set("2026-01-01T00:00:01.100Z");
    b.scheduler.tick().await.unwrap();
    b.clock.set("2026-01-01T00:00:02.100Z");
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.scheduler.tick().await.unwrap();

    b.settle(|b| b.audit("restart").len() == 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.acts().len(), 1, "the second fire was not queued behind the first");
    let missed = b.audit("missed");
    assert_eq!(missed.len(), 1);
    assert!(missed[0].message.contains("previous run was still going"), "{}", missed[0].message);

    // Once the run is over, the next fire runs again.
    b.clock.set("2026-01-01T00:00:03.100Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.audit("restart").len() == 2).await;
}

#[tokio::test]
async fn the_wall_clock_stepped_forward_an_hour_audits_the_skipped_fires_and_runs_the_latest_once() {
    let b = bench();
    let every_minute = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * *"), "t").await.unwrap();
    let half_past = b.scheduler.create(input("container", "b-x-1", "restart", "30 * * * *"), "t").await.unwrap();
    b.clock.set("2026-01-01T00:00:30Z");
    b.scheduler.tick().await.unwrap();
    assert!(b.acts().is_empty());

    // NTP (or a person) steps the clock forward an hour while DockNap runs.
    b.clock.set("2026-01-01T01:00:30Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.store.schedule(every_minute.id).unwrap().last_run.is_some()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)], "one run, no burst of 60");
    let run = b.store.schedule(every_minute.id).unwrap().last_run.unwrap();
    assert_eq!(run.at, "2026-01-01T01:00:00Z".parse::<DateTime<Utc>>().unwrap(), "the latest fire, 30 s late");
    // 00:01 … 00:59 are missed; 00:30 of the other is 30 minutes late: missed, not run.
    let missed = b.audit("missed");
    let total = |id: i64| {
        missed
            .iter()
            .find(|e| e.details.as_ref().unwrap()["schedule_id"] == id)
            .map(|e| e.details.as_ref().unwrap()["missed_total"].clone())
    };
    assert_eq!(total(every_minute.id), Some(serde_json::json!(59)), "{missed:?}");
    assert_eq!(total(half_past.id), Some(serde_json::json!(1)), "{missed:?}");
    assert!(b.store.schedule(half_past.id).unwrap().last_run.is_none());

    // The same instant again, and the next minute: one run each, nothing replayed.
    b.scheduler.tick().await.unwrap();
    b.clock.set("2026-01-01T01:01:00.010Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| b.audit("restart").len() == 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts().len(), 2);
    assert_eq!(b.audit("missed").len(), 2, "no new missed entries");
}

#[tokio::test]
async fn the_wall_clock_stepped_back_an_hour_runs_no_fire_twice() {
    let b = bench();
    let s = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * *"), "t").await.unwrap();
    for at in ["2026-01-01T00:01:00.010Z", "2026-01-01T00:02:00.010Z"] {
        b.clock.set(at);
        b.scheduler.tick().await.unwrap();
        // Settled once the run is recorded, not merely audited: a tick while
        // it is still under way would skip the next fire as overlapping.
        let due: DateTime<Utc> = at.parse::<DateTime<Utc>>().unwrap().with_nanosecond(0).unwrap();
        b.settle(|b| b.store.schedule(s.id).unwrap().last_run.is_some_and(|r| r.at == due)).await;
    }

    // Stepped back an hour: 23:02 … 00:02 happen again on the wall clock.
    // Every wall-clock minute up to 00:02 has run once already.
    for at in [
        "2025-12-31T23:02:00.010Z",
        "2025-12-31T23:03:00.010Z",
        "2025-12-31T23:59:00.010Z",
        "2026-01-01T00:01:00.010Z",
        "2026-01-01T00:02:00.010Z",
    ] {
        b.clock.set(at);
        b.scheduler.tick().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(b.acts().len(), 2, "nothing ran twice");
    assert!(b.audit("missed").is_empty(), "and nothing is called missed: those minutes ran");

    // Past the furthest point reached before the step, runs go on, on time.
    b.clock.set("2026-01-01T00:03:00.010Z");
    b.scheduler.tick().await.unwrap();
    let at: DateTime<Utc> = "2026-01-01T00:03:00Z".parse().unwrap();
    // The action is audited a moment before the run is recorded.
    b.settle(|b| b.store.schedule(s.id).unwrap().last_run.is_some_and(|r| r.at == at)).await;
    assert_eq!(b.acts().len(), 3);
    assert!(b.audit("missed").is_empty());
}

fn once(target_type: &str, target: &str, action: &str, at: &str) -> ScheduleInput {
    ScheduleInput { cron: None, at: Some(at.into()), ..input(target_type, target, action, "") }
}

#[tokio::test]
async fn a_one_time_schedule_fires_once_then_is_disabled_with_no_next_run() {
    let b = bench();
    let s = b.scheduler.create(once("stack", "a", "stop", "2026-01-01T00:10:00Z"), "t").await.unwrap();
    assert_eq!((s.cron.as_deref(), s.next_run), (None, Some("2026-01-01T00:10:00Z".parse().unwrap())));
    b.clock.set("2026-01-01T00:05:00Z");
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(b.acts().is_empty(), "not yet");

    b.clock.set("2026-01-01T00:10:00.005Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| !b.store.schedule(s.id).unwrap().fields.enabled).await;
    assert_eq!(b.acts(), [("id-a".to_string(), Action::Stop)]);
    let after = b.scheduler.get(s.id).await.unwrap();
    assert_eq!((after.enabled, after.next_run), (false, None));
    b.clock.set("2026-01-02T00:10:00Z");
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts().len(), 1, "once");
}

#[tokio::test]
async fn a_one_time_schedule_missed_by_more_than_the_catch_up_window_is_audited_and_disabled() {
    let b = bench();
    let s = b.scheduler.create(once("stack", "a", "stop", "2026-01-01T00:10:00Z"), "t").await.unwrap();
    b.clock.set("2026-01-01T02:00:00Z");
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(b.acts().is_empty());
    assert_eq!(b.audit("missed").len(), 1);
    assert!(!b.store.schedule(s.id).unwrap().fields.enabled);
}

#[tokio::test]
async fn one_time_and_cron_are_exclusive_and_the_instant_must_be_ahead() {
    let b = bench();
    let both = ScheduleInput { at: Some("2026-01-02T00:00:00Z".into()), ..input("stack", "a", "stop", "0 1 * * *") };
    assert!(b.scheduler.create(both, "t").await.unwrap_err().to_string().contains("not both"));
    let past = once("stack", "a", "stop", "2025-12-31T00:00:00Z");
    assert!(b.scheduler.create(past, "t").await.unwrap_err().to_string().contains("in the past"));
    let garbage = once("stack", "a", "stop", "tomorrow");
    assert!(b.scheduler.create(garbage, "t").await.unwrap_err().to_string().contains("RFC 3339"));
    // Giving a cron to a one-time schedule makes it a cron schedule.
    let s = b.scheduler.create(once("stack", "a", "stop", "2026-01-02T00:00:00Z"), "t").await.unwrap();
    let cron = ScheduleInput { cron: Some("0 1 * * *".into()), ..Default::default() };
    let s = b.scheduler.update(s.id, cron, "t").await.unwrap();
    assert_eq!((s.cron.as_deref(), s.at), (Some("0 1 * * *"), None));
}

fn step(target_type: &str, target: &str, action: &str) -> StepInput {
    StepInput {
        host: None,
        target_type: Some(target_type.into()),
        target_id: Some(target.into()),
        action: Some(action.into()),
    }
}

fn sequence(steps: Vec<StepInput>, on_failure: &str) -> ScheduleInput {
    ScheduleInput {
        target_type: Some("sequence".into()),
        cron: Some("0 * * * *".into()),
        steps: Some(steps),
        on_failure: Some(on_failure.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_sequence_runs_its_steps_in_order_and_stops_at_a_failure_unless_told_to_continue() {
    let b = bench();
    let steps = || vec![step("stack", "a", "stop"), step("container", "b-x-1", "restart"), step("stack", "a", "start")];
    let stop = b.scheduler.create(sequence(steps(), "stop"), "t").await.unwrap();
    assert_eq!(
        (stop.target_type, stop.action, stop.host.as_str()),
        (TargetType::Sequence, Action::Run, crate::model::ALL_HOSTS)
    );
    let r = b.scheduler.run_now(stop.id, "t").await.unwrap();
    assert!(r.ok, "{}", r.summary());
    let order: Vec<(String, Action)> = b.acts();
    assert_eq!(
        order,
        [("id-a".into(), Action::Stop), ("id-b".into(), Action::Restart), ("id-a".into(), Action::Start)]
    );
    assert_eq!(r.steps.as_ref().unwrap().len(), 3);

    b.engine.acts.lock().unwrap().clear();
    b.engine.failing.lock().unwrap().insert("id-b".into());
    let r = b.scheduler.run_now(stop.id, "t").await.unwrap();
    assert!(!r.ok);
    let steps_ok: Vec<bool> = r.steps.as_ref().unwrap().iter().map(|s| s.ok).collect();
    assert_eq!(steps_ok, [true, false, false]);
    assert!(r.summary().contains("step 3 (start stack a): skipped"), "{}", r.summary());
    assert_eq!(b.acts().len(), 2, "the third step never ran: {:?}", b.acts());

    let go_on = b.scheduler.create(sequence(steps(), "continue"), "t").await.unwrap();
    b.engine.acts.lock().unwrap().clear();
    let r = b.scheduler.run_now(go_on.id, "t").await.unwrap();
    assert!(!r.ok);
    assert_eq!(b.acts().last(), Some(&("id-a".to_string(), Action::Start)), "the step after the failure ran");
    assert_eq!(b.audit("sequence").len(), 3, "one entry per sequence run");
}

#[tokio::test]
async fn a_sequence_does_not_overlap_itself() {
    let b = bench();
    *b.engine.delay.lock().unwrap() = Duration::from_millis(300);
    let s = b.scheduler.create(sequence(vec![step("stack", "a", "restart")], "stop"), "t").await.unwrap();
    let (first, second) = tokio::join!(b.scheduler.run_now(s.id, "t"), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.scheduler.run_now(s.id, "t").await
    });
    assert!(first.unwrap().ok);
    assert!(matches!(second, Err(ScheduleError::Busy(_))), "{second:?}");
    assert_eq!(b.audit("missed").len(), 1);
}

#[tokio::test]
async fn bad_sequences_and_runs_are_refused_with_the_step_named() {
    let b = bench();
    let err = |i: ScheduleInput| async { b.scheduler.create(i, "t").await.unwrap_err().to_string() };
    assert!(err(sequence(vec![], "stop")).await.contains("1 to 20 steps"));
    assert!(err(sequence(vec![step("stack", "a", "run")], "stop")).await.contains("step 1: run is for a container"));
    assert!(
        err(sequence(vec![step("stack", "a", "stop"), step("group", "lab", "stop")], "stop")).await.contains("step 2")
    );
    assert!(
        err(sequence(vec![step("stack", "a", "stop")], "sometimes"))
            .await
            .contains("on_failure must be stop or continue")
    );
    assert!(err(input("stack", "a", "run", "0 * * * *")).await.contains("run is for a container"));
    let with_steps =
        ScheduleInput { steps: Some(vec![step("stack", "a", "stop")]), ..input("stack", "a", "stop", "0 * * * *") };
    assert!(err(with_steps).await.contains("for target_type sequence"));
}

#[tokio::test]
async fn changes_after_the_first_tick_are_planned_and_the_tick_wakes_for_the_due_one_only() {
    let b = bench();
    let hourly = b.scheduler.create(input("stack", "a", "stop", "0 * * * *"), "t").await.unwrap();
    let earliest = b.scheduler.tick().await.unwrap();
    assert_eq!(earliest, Some("2026-01-01T01:00:00Z".parse().unwrap()));

    // Made, moved and removed after the store was read in full: each change
    // reaches the plan, and the next wake-up follows it.
    let quarter = b.scheduler.create(input("stack", "b", "stop", "15 * * * *"), "t").await.unwrap();
    assert_eq!(b.scheduler.tick().await.unwrap(), Some("2026-01-01T00:15:00Z".parse().unwrap()));
    let moved = ScheduleInput { cron: Some("45 * * * *".into()), ..Default::default() };
    b.scheduler.update(quarter.id, moved, "t").await.unwrap();
    assert_eq!(b.scheduler.tick().await.unwrap(), Some("2026-01-01T00:45:00Z".parse().unwrap()));
    let once = ScheduleInput { at: Some("2026-01-01T00:30:00Z".into()), ..input("container", "a-x-1", "restart", "") };
    let once = b.scheduler.create(ScheduleInput { cron: None, ..once }, "t").await.unwrap();
    assert_eq!(b.scheduler.tick().await.unwrap(), Some("2026-01-01T00:30:00Z".parse().unwrap()));

    b.clock.set("2026-01-01T00:15:00.100Z");
    b.scheduler.tick().await.unwrap();
    b.clock.set("2026-01-01T00:30:00.100Z");
    b.scheduler.tick().await.unwrap();
    b.settle(|b| !b.store.schedule(once.id).unwrap().fields.enabled).await;
    assert_eq!(b.acts(), vec![("id-a".to_string(), Action::Restart)], "not the moved 00:15 fire");

    b.scheduler.delete(quarter.id, "t").await.unwrap();
    assert_eq!(
        b.scheduler.tick().await.unwrap(),
        Some("2026-01-01T01:00:00Z".parse().unwrap()),
        "the retired one-time schedule and the deleted one are gone"
    );
    b.clock.set("2026-01-01T00:45:00.100Z");
    b.scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.acts().len(), 1, "the deleted schedule never fires");
    assert!(b.store.schedule(hourly.id).unwrap().last_run.is_none());
}
