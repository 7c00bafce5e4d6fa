use super::deps::*;
use super::*;
use crate::clock::SystemClock;
use crate::model::{LABEL_DEPENDS_ON, LABEL_PROJECT, LABEL_SERVICE};

fn c(service: &str, depends_on: Option<&str>) -> Container {
    let mut labels = BTreeMap::from([
        (LABEL_PROJECT.to_string(), "p".to_string()),
        (LABEL_SERVICE.to_string(), service.to_string()),
    ]);
    if let Some(d) = depends_on {
        labels.insert(LABEL_DEPENDS_ON.to_string(), d.to_string());
    }
    Container::new(
        format!("id-{service}"),
        &format!("p-{service}-1"),
        "i".into(),
        "exited".into(),
        String::new(),
        labels,
        Default::default(),
    )
}

fn audit(store: Arc<crate::store::Store>) -> Arc<Audit> {
    Arc::new(Audit::new(store, Arc::new(SystemClock)))
}

fn names(levels: &[Vec<Member>]) -> Vec<Vec<&str>> {
    levels.iter().map(|l| l.iter().map(|m| m.service.as_str()).collect()).collect()
}

#[test]
fn levels_follow_depends_on() {
    let cs = vec![
        c("web", Some("api:service_started:false,cache:service_started:false")),
        c("api", Some("db:service_healthy:false")),
        c("db", None),
        c("cache", None),
        c("worker", Some("db:service_started:true,elsewhere:service_started:false")),
    ];
    let levels = dependency_levels(&cs);
    assert_eq!(names(&levels), vec![vec!["db", "cache"], vec!["api", "worker"], vec!["web"]]);
    let db = &levels[0][0];
    assert_eq!(db.awaited, Condition::Healthy);
    assert_eq!(levels[1][0].waits_for, vec!["db"]);
}

#[test]
fn no_label_means_one_parallel_level_and_cycles_terminate() {
    assert_eq!(dependency_levels(&[c("a", None), c("b", None)]).len(), 1);
    let cyc = dependency_levels(&[c("a", Some("b:service_started:false")), c("b", Some("a:service_started:false"))]);
    assert_eq!(names(&cyc), vec![vec!["a", "b"]]);
}

#[test]
fn plans_do_what_the_user_meant() {
    use Action::*;
    assert_eq!(plan(Start, "running".into()), &[Start], "the engine answers 304; the listed state may lag");
    assert_eq!(plan(Start, "paused".into()), &[Unpause]);
    assert_eq!(plan(Start, "exited".into()), &[Start]);
    assert_eq!(plan(Stop, "paused".into()), &[Unpause, Stop]);
    assert_eq!(plan(Stop, "exited".into()), &[] as &[Action]);
    assert_eq!(plan(Pause, "paused".into()), &[] as &[Action]);
    assert_eq!(plan(Unpause, "running".into()), &[] as &[Action]);
    assert_eq!(plan(Restart, "paused".into()), &[Unpause, Restart]);
}

#[test]
fn finds_own_container_id_in_mountinfo() {
    let id = "a".repeat(64);
    let line =
        format!("612 600 0:30 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw");
    assert_eq!(find_container_id(&format!("1 2 3 / / rw\n{line}\n")), Some(id));
    assert_eq!(find_container_id("1 2 3 / / rw - overlay overlay rw\n"), None);
}

#[tokio::test]
async fn dependencies_stuck_starting_fail_after_one_bounded_wait_per_level() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
    let containers =
        vec![c("db", None), c("cache", None), c("app", Some("db:service_healthy:false,cache:service_healthy:false"))];
    let (engine, _, actions) = fake::actions(containers, audit(store));
    engine
        .health
        .lock()
        .unwrap()
        .extend([("id-db".to_string(), Health::Starting), ("id-cache".to_string(), Health::Starting)]);
    let actions = Arc::new(actions.with_health_timeout(Duration::from_millis(400)));

    let begun = Instant::now();
    let trigger = Trigger::Manual { actor: "t".into(), client: None, force: false };
    let r = actions.run(&Target::local(TargetType::Stack, "p"), Action::Start, &trigger).await.unwrap();
    assert!(begun.elapsed() < Duration::from_millis(750), "the two waits overlap: {:?}", begun.elapsed());
    assert!(!r.ok);
    let error = |name: &str| r.results.iter().find(|x| x.container == name).and_then(|x| x.error.clone()).unwrap();
    assert_eq!(error("p-db-1"), "did not become healthy within 400ms");
    assert_eq!(error("p-app-1"), "not started: dependency 'db' is not healthy");
    let started: Vec<String> = engine.acts.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(started.len(), 2, "app was never started: {started:?}");
    assert!(actions.locks.lock().unwrap().is_empty(), "the target lock is forgotten");
}

#[tokio::test]
async fn a_dependent_that_fails_to_stop_keeps_its_dependencies_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
    let running = |mut c: Container| {
        c.state = "running".into();
        c
    };
    let containers = vec![
        running(c("db", None)),
        running(c("cache", None)),
        running(c("app", Some("db:service_started:false"))),
        running(c("web", Some("app:service_started:false,cache:service_started:false"))),
    ];
    let (engine, _, actions) = fake::actions(containers, audit(store));
    engine.failing.lock().unwrap().insert("id-app".into());
    let actions = Arc::new(actions);
    let trigger = Trigger::Manual { actor: "t".into(), client: None, force: false };
    let r = actions.run(&Target::local(TargetType::Stack, "p"), Action::Stop, &trigger).await.unwrap();
    let outcome = |name: &str| r.results.iter().find(|x| x.container == name).map(|x| (x.ok, x.error.clone())).unwrap();
    assert_eq!(outcome("p-web-1"), (true, None));
    assert_eq!(outcome("p-cache-1"), (true, None), "only what app depends on is held");
    assert!(!outcome("p-app-1").0);
    assert_eq!(outcome("p-db-1"), (false, Some("skipped: 'app', which depends on it, failed to stop".into())));
    let stopped: Vec<String> = engine.acts.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
    assert!(!stopped.contains(&"id-db".to_string()), "{stopped:?}");
}

#[tokio::test]
async fn shutdown_waits_for_actions_then_audits_the_ones_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
    let (engine, _, actions) = fake::actions(vec![c("quick", None), c("slow", None)], audit(store.clone()));
    let actions = Arc::new(actions);
    let trigger = Trigger::Scheduled { schedule_id: 7, due: chrono::Utc::now() };

    // Finishes within the grace: audited with its real result, nothing more.
    *engine.delay.lock().unwrap() = Duration::from_millis(100);
    let quick = tokio::spawn({
        let (actions, trigger) = (actions.clone(), trigger.clone());
        async move { actions.run(&Target::local(TargetType::Container, "p-quick-1"), Action::Start, &trigger).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    actions.finish_in_flight(tokio::time::Instant::now() + Duration::from_secs(2)).await;
    assert!(quick.await.unwrap().unwrap().ok);

    // Outlives the grace: audited as interrupted before the process ends.
    *engine.delay.lock().unwrap() = Duration::from_secs(30);
    let slow = tokio::spawn({
        let actions = actions.clone();
        async move { actions.run(&Target::local(TargetType::Container, "p-slow-1"), Action::Start, &trigger).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let begun = Instant::now();
    actions.finish_in_flight(tokio::time::Instant::now() + Duration::from_millis(200)).await;
    assert!(begun.elapsed() < Duration::from_secs(1));
    slow.abort();

    actions.audit.flush();
    let entries = store.audit(&crate::model::AuditFilter { limit: 10, ..Default::default() }).unwrap();
    let summary: Vec<(String, bool, String)> =
        entries.iter().map(|e| (e.target_id.clone().unwrap_or_default(), e.ok, e.message.clone())).collect();
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert_eq!(summary[0].0, "p-slow-1");
    assert!(!summary[0].1 && summary[0].2.starts_with("interrupted"), "{summary:?}");
    assert_eq!(entries[0].actor, "scheduler");
    assert_eq!((summary[1].0.as_str(), summary[1].1), ("p-quick-1", true));
}

#[test]
fn restart_merge_keeps_worst_outcome() {
    let ok = |n: &str| ContainerResult { container: n.into(), ok: true, error: None };
    let bad = |n: &str| ContainerResult { container: n.into(), ok: false, error: Some("x".into()) };
    let mut a = vec![ok("a"), bad("b")];
    merge_results(&mut a, vec![bad("a"), ok("b")]);
    assert_eq!(a, vec![bad("a"), bad("b")]);
}
