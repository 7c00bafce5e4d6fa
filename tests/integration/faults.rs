//! Storage faults while running: a data directory on a full disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

/// A small tmpfs of the test's own, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount a tmpfs (the tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes until the disk refuses more.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(tmp.path(), "8m");
    let mut s = Server::configure(tmp.path().join("data"), &[NO_ENGINE]);
    s.spawn();
    let t = s.admin_token().await;
    let body =
        |n: usize| json!({"target_type": "stack", "target_id": format!("s{n}"), "action": "stop", "cron": "0 3 * * *"});
    let (st, _) = s.post("/api/schedules", &t, body(0)).await;
    assert_eq!(st, StatusCode::CREATED);

    let filler = disk.fill();
    // The WAL may still hold room from earlier writes: keep writing until the disk is felt.
    let mut refused = None;
    for n in 1..200 {
        let (st, v) = s.post("/api/schedules", &t, body(n)).await;
        if st != StatusCode::CREATED {
            refused = Some((st, v));
            break;
        }
    }
    let (st, v) = refused.expect("a full disk refuses writes");
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
        "{v}"
    );
    assert!(s.log_text().contains("a write to the data directory failed"), "one log line says why");

    // Reads go on; what must be audited meanwhile waits in memory.
    let (st, listed) = s.get("/api/schedules", &t).await;
    assert_eq!(st, StatusCode::OK, "{listed}");
    let before = api_made(&listed).len();
    let (st, _) = s
        .call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": "wrong-password-1"})))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/healthz", &t).await.0, StatusCode::NOT_FOUND, "the server still routes");

    // Space comes back: writes work again without a restart, the queued audit entry lands.
    std::fs::remove_file(filler).unwrap();
    let (st, v) = s.post("/api/schedules", &t, body(999)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(api_made(&s.get("/api/schedules", &t).await.1).len(), before + 1);
    s.wait_for("the queued audit entry", Duration::from_secs(40), || async {
        let (_, page) = s.get("/api/audit?action=login&ok=false", &t).await;
        (page["entries"].as_array().is_some_and(|e| !e.is_empty())).then_some(())
    })
    .await;
    let check = s.get("/api/audit?limit=500", &t).await.1;
    assert!(check["entries"].as_array().unwrap().len() >= 3, "{check}");
    s.kill();

    // Nothing corrupted: the database opens and passes SQLite's own check.
    let db = rusqlite::Connection::open(tmp.path().join("data/docknap.db")).unwrap();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    drop(db);
    s.spawn();
    let t = s.admin_token().await;
    assert_eq!(api_made(&s.get("/api/schedules", &t).await.1).len(), before + 1);
}
