//! The audit log's hash chain and the online backup, against the real binary
//! and its SQLite file: `docknap backup` while writes go on, restored by
//! stop-copy-start; an entry edited behind DockNap's back is found by
//! `GET /api/audit/verify` and by `docknap audit-verify`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

fn docknap(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_docknap"))
        .args(args)
        .env_clear()
        .env("DOCKNAP_DATA_DIR", data_dir)
        .output()
        .expect("docknap")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_writes_is_intact_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    s.spawn();
    let t = s.admin_token().await;

    // About 50 writes a second (a schedule and its audit entry each) while the backup runs.
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let writer = {
        let (stop, written, http, base, t) = (stop.clone(), written.clone(), s.http.clone(), s.base.clone(), t.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = written.load(Ordering::Relaxed);
                let body = json!({"target_type": "stack", "target_id": format!("b{n}"), "action": "stop", "cron": "0 3 * * *"});
                let r = http.post(format!("{base}/api/schedules")).bearer_auth(&t).json(&body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let copy = tmp.path().join("backup.db");
    let began = Instant::now();
    let out = docknap(&s.data_dir, &["backup", copy.to_str().unwrap()]);
    let took = began.elapsed();
    let at_backup = written.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!(
        "backup under {} writes/s took {} ms: {}",
        50,
        took.as_millis(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let again = docknap(&s.data_dir, &["backup", copy.to_str().unwrap()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"), "never overwrites");

    let db = rusqlite::Connection::open(&copy).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let in_copy: i64 = db.query_row("SELECT count(*) FROM schedules", [], |r| r.get(0)).unwrap();
    let in_copy = in_copy as usize;
    assert!(
        in_copy + 2 >= at_backup && in_copy > 0,
        "{in_copy} schedules in the copy, {at_backup} written when it began"
    );
    drop(db);

    // Restore: stop, put the copy in place (no stale WAL beside it), start.
    s.terminate();
    let live = s.data_dir.join("docknap.db");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", live.display()));
    }
    std::fs::copy(&copy, &live).unwrap();
    s.spawn();
    let t = s.admin_token().await;
    let (st, list) = s.get("/api/schedules", &t).await;
    assert_eq!((st, list.as_array().unwrap().len()), (StatusCode::OK, in_copy));
    let (_, v) = s.get("/api/audit/verify", &t).await;
    assert_eq!(v["ok"], true, "the restored audit chain verifies: {v}");
}

#[tokio::test]
async fn an_edited_audit_entry_is_found_online_and_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    s.spawn();
    let t = s.admin_token().await;
    for i in 0..5 {
        let body = json!({"target_type": "stack", "target_id": format!("v{i}"), "action": "stop", "cron": "0 3 * * *"});
        assert_eq!(s.post("/api/schedules", &t, body).await.0, StatusCode::CREATED);
    }
    let (st, v) = s.get("/api/audit/verify", &t).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert!(v["checked"].as_u64() >= Some(6) && v["head"].as_str().is_some_and(|h| h.len() == 64), "{v}");
    let (_, page) = s.get("/api/audit?limit=1", &t).await;
    assert_eq!(page["entries"][0]["hash"], v["head"], "entries carry their hash");
    let out = docknap(&s.data_dir, &["audit-verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Someone with the database file rewrites history.
    s.terminate();
    let db = rusqlite::Connection::open(s.data_dir.join("docknap.db")).unwrap();
    let victim: i64 = db
        .query_row("SELECT id FROM audit WHERE action = 'schedule_create' ORDER BY id LIMIT 1 OFFSET 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute_batch(&format!(
        "DROP TRIGGER audit_append_only_update; UPDATE audit SET actor = 'nobody' WHERE id = {victim};"
    ))
    .unwrap();
    drop(db);
    let out = docknap(&s.data_dir, &["audit-verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("entry {victim}")), "{said}");

    s.spawn();
    let t = s.admin_token().await;
    let (_, v) = s.call(Method::GET, "/api/audit/verify", Some(&t), None).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad_id"].as_i64()), (Some(false), Some(victim)), "{v}");
}
