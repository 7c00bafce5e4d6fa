//! Export and import between real servers (and their SQLite files):
//! a round trip gives the same objects, a dry run and a failing import
//! change nothing, replace deletes what the document does not name, and
//! TLS material leaves only with `?secrets=true`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

/// The objects as an export lists them (comparable across servers).
async fn exported(s: &Server, t: &str) -> Value {
    let (st, doc) = s.get("/api/export", t).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    doc
}

async fn import(s: &Server, t: &str, document: &Value, mode: &str, dry_run: bool) -> Value {
    let (st, v) =
        s.post(&format!("/api/import?dry_run={dry_run}"), t, json!({"document": document, "mode": mode})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn names(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}: {}", i["kind"].as_str().unwrap(), i["name"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_imported_on_a_fresh_server_gives_the_same_objects_and_dry_runs_and_failures_change_nothing() {
    let a = Server::start_with(&[NO_ENGINE]);
    let ta = a.admin_token().await;
    for body in [
        json!({"target_type": "stack", "target_id": "shop", "action": "stop", "cron": "0 23 * * *", "timezone": "Europe/Paris"}),
        json!({"target_type": "stack", "target_id": "shop", "action": "start", "cron": "0 7 * * 1-5"}),
        json!({"target_type": "container", "target_id": "solo", "action": "restart", "cron": "*/5 * * * *", "enabled": false}),
    ] {
        assert_eq!(a.post("/api/schedules", &ta, body).await.0, StatusCode::CREATED);
    }
    let (st, v) = a
        .post("/api/windows", &ta, json!({"target_type": "stack", "target_id": "lab", "spec": "Mon-Fri 08:00-18:00", "grace": "5m", "down_action": "pause"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = a.post("/api/hosts", &ta, json!({"name": "nas", "url": "tcp://127.0.0.1:1"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let doc = exported(&a, &ta).await;
    assert_eq!(
        (doc["version"].as_u64(), doc["schedules"].as_array().unwrap().len(), doc["windows"].as_array().unwrap().len()),
        (Some(2), 3, 1)
    );
    assert_eq!(doc["hosts"], json!([{"name": "nas", "url": "tcp://127.0.0.1:1", "group": null, "tls": null}]));

    let b = Server::start_with(&[NO_ENGINE]);
    let tb = b.admin_token().await;
    let before = exported(&b, &tb).await;

    // Dry run: the diff, nothing changed.
    let dry = import(&b, &tb, &doc, "merge", true).await;
    assert_eq!(
        (dry["applied"].as_bool(), names(&dry, "created").len(), dry["errors"].as_array().unwrap().len()),
        (Some(false), 5, 0),
        "{dry}"
    );
    assert_eq!(exported(&b, &tb).await, before, "a dry run changes nothing");

    // A failing import (one bad object among good ones): nothing changes.
    let mut bad = doc.clone();
    bad["schedules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"target_type": "stack", "target_id": "x", "action": "stop", "cron": "61 * * * *"}));
    let failed = import(&b, &tb, &bad, "merge", false).await;
    assert_eq!(failed["applied"], false);
    assert!(failed["errors"][0]["message"].as_str().unwrap().contains("61"), "{failed}");
    assert_eq!(exported(&b, &tb).await, before, "a failing import changes nothing");
    // Schedules naming a host neither known nor imported: refused too.
    let mut orphan = doc.clone();
    orphan["hosts"] = json!([]);
    orphan["schedules"][0]["host"] = json!("nas");
    let failed = import(&b, &tb, &orphan, "merge", false).await;
    assert_eq!(
        (failed["applied"].as_bool(), failed["errors"][0]["kind"].as_str()),
        (Some(false), Some("schedule")),
        "{failed}"
    );
    assert_eq!(exported(&b, &tb).await, before);

    // Applied: the same objects, and the running server uses them.
    let done = import(&b, &tb, &doc, "merge", false).await;
    assert_eq!((done["applied"].as_bool(), names(&done, "created").len()), (Some(true), 5), "{done}");
    assert_eq!(exported(&b, &tb).await, doc, "the same objects on the fresh server");
    let (_, windows) = b.get("/api/windows", &tb).await;
    assert_eq!(windows[0]["spec"], "Mon-Fri 08:00-18:00", "the windows service sees the imported window");
    let (_, hosts) = b.get("/api/hosts", &tb).await;
    assert!(hosts.as_array().unwrap().iter().any(|h| h["name"] == "nas"), "the imported host is connected: {hosts}");
    let (_, upcoming) = b.get("/api/schedules/upcoming?limit=5", &tb).await;
    assert!(!upcoming.as_array().unwrap().is_empty(), "the scheduler plans the imported schedules");

    // Again: all unchanged. Replace with a smaller document deletes the rest.
    let again = import(&b, &tb, &doc, "merge", false).await;
    assert_eq!((names(&again, "unchanged").len(), names(&again, "created").len()), (5, 0), "{again}");
    let mut smaller = doc.clone();
    smaller["schedules"].as_array_mut().unwrap().truncate(1);
    smaller["schedules"][0]["enabled"] = json!(false);
    smaller["windows"] = json!([]);
    smaller["hosts"] = json!([]);
    let replaced = import(&b, &tb, &smaller, "replace", false).await;
    assert_eq!(
        names(&replaced, "updated"),
        vec!["schedule: stop stack shop on local at '0 23 * * *'".to_string()],
        "{replaced}"
    );
    assert_eq!(names(&replaced, "deleted").len(), 4, "{replaced}");
    let now = exported(&b, &tb).await;
    assert_eq!(
        (now["schedules"].as_array().unwrap().len(), now["windows"].clone(), now["hosts"].clone()),
        (1, json!([]), json!([]))
    );
    let (_, audit) = b.get("/api/audit?action=import", &tb).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 5, "every real import is audited, dry runs are not");
}

/// A CA and client certificate from examples/tls/make-certs.sh.
fn pki() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = std::process::Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tls/make-certs.sh"))
        .arg(&certs)
        .arg("127.0.0.1")
        .env("KEY_BITS", "2048")
        .output()
        .expect("bash");
    assert!(out.status.success(), "make-certs.sh: {}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| std::fs::read_to_string(certs.join(name)).unwrap();
    json!({"ca": read("ca.pem"), "cert": read("cert.pem"), "key": read("key.pem")})
}

#[tokio::test(flavor = "multi_thread")]
async fn host_tls_material_is_exported_only_with_secrets_and_a_redacted_one_keeps_the_existing() {
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    let pki = pki();
    let (st, v) = s.post("/api/hosts", &t, json!({"name": "tls1", "url": "tcp://127.0.0.1:2376", "tls": pki})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let key = pki["key"].as_str().unwrap();

    let plain = exported(&s, &t).await;
    assert_eq!(plain["hosts"][0]["tls"], "redacted");
    assert!(!plain.to_string().contains(key.lines().nth(1).unwrap()), "no key material without ?secrets=true");
    let (st, full) = s.get("/api/export?secrets=true", &t).await;
    assert_eq!((st, full["hosts"][0]["tls"]["key"].as_str()), (StatusCode::OK, Some(key)));
    let (_, audit) = s.get("/api/audit?action=export", &t).await;
    let e = &audit["entries"][0];
    assert_eq!((e["details"]["secrets"].as_bool(), e["actor"].as_str()), (Some(true), Some("admin")), "{e}");
    assert!(!audit.to_string().contains(key.lines().nth(1).unwrap()), "never in the audit");

    // Redacted: the existing host's material is kept; on a server without it, an error.
    let kept = import(&s, &t, &plain, "merge", false).await;
    assert_eq!(
        (kept["applied"].as_bool(), names(&kept, "unchanged")),
        (Some(true), vec!["host: tls1".to_string()]),
        "{kept}"
    );
    let fresh = Server::start_with(&[NO_ENGINE]);
    let tf = fresh.admin_token().await;
    let missing = import(&fresh, &tf, &plain, "merge", false).await;
    assert_eq!(missing["applied"], false);
    assert!(missing["errors"][0]["message"].as_str().unwrap().contains("TLS material"), "{missing}");
    let with = import(&fresh, &tf, &full, "merge", false).await;
    assert_eq!(with["applied"], true, "{with}");
}

#[tokio::test]
async fn an_import_larger_than_other_bodies_is_accepted_up_to_its_own_limit() {
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    let schedules: Vec<Value> = (0..8000)
        .map(|i| json!({"host": "local", "target_type": "stack", "target_id": format!("stack-number-{i}"), "action": "stop", "cron": "0 3 * * *", "timezone": "UTC", "enabled": true}))
        .collect();
    let doc = json!({"version": 2, "schedules": schedules});
    assert!(doc.to_string().len() > 1024 * 1024, "over the usual 1 MiB");
    let dry = import(&s, &t, &doc, "merge", true).await;
    assert_eq!((dry["applied"].as_bool(), names(&dry, "created").len()), (Some(false), 8000));
    let (st, v) = s.post("/api/schedules", &t, json!({"target_type": "stack", "target_id": "x".repeat(2 * 1024 * 1024), "action": "stop", "cron": "0 3 * * *"})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")),
        "other routes keep 1 MiB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_and_jobs_travel_in_an_export_and_a_channel_url_only_with_secrets() {
    let a = Server::start_with(&[NO_ENGINE]);
    let ta = a.admin_token().await;
    let url = "generic+https://hooks.example.com/docknap/7f3c9a1e";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (st, v) = a
        .post(
            "/api/notifications",
            &ta,
            json!({"name": "ops", "url": url, "secret": secret, "events": ["action.failed"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let at = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    for body in [
        json!({"target_type": "stack", "target_id": "shop", "action": "stop", "at": at}),
        json!({"target_type": "container", "target_id": "backup", "action": "run", "cron": "0 2 * * *", "timeout": "30m"}),
        json!({"target_type": "sequence", "cron": "0 3 * * *", "on_failure": "continue",
               "steps": [{"target_type": "stack", "target_id": "shop", "action": "stop"}, {"target_type": "stack", "target_id": "shop", "action": "start"}]}),
    ] {
        let (st, v) = a.post("/api/schedules", &ta, body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }

    // Without ?secrets: the channel is there, its URL and secret are not.
    let plain = exported(&a, &ta).await;
    assert_eq!(
        plain["notifications"],
        json!([{"name": "ops", "url": "redacted", "secret": "redacted", "events": ["action.failed"], "enabled": true}])
    );
    assert!(!plain.to_string().contains("7f3c9a1e") && !plain.to_string().contains(secret), "{plain}");

    // A fresh server cannot complete a redacted channel; nothing is applied.
    let b = Server::start_with(&[NO_ENGINE]);
    let tb = b.admin_token().await;
    let r = import(&b, &tb, &plain, "merge", false).await;
    assert_eq!(r["applied"], false, "{r}");
    assert!(r["errors"].to_string().contains("export with ?secrets=true"), "{r}");
    assert_eq!(b.get("/api/schedules", &tb).await.1, json!([]), "all or nothing");

    // With secrets it round-trips: the same channel, schedules and sequence.
    let (st, full) = a.get("/api/export?secrets=true", &ta).await;
    assert_eq!(st, StatusCode::OK);
    let r = import(&b, &tb, &full, "merge", false).await;
    assert_eq!(r["applied"], true, "{r}");
    assert_eq!(exported(&b, &tb).await, plain, "the same objects on the new server");
    let (_, channels) = b.get("/api/notifications", &tb).await;
    assert_eq!(
        (channels[0]["name"].as_str(), channels[0]["has_secret"].as_bool()),
        (Some("ops"), Some(true)),
        "{channels}"
    );

    // A redacted document now keeps what is there: nothing changes.
    let r = import(&b, &tb, &plain, "merge", false).await;
    assert_eq!((r["applied"].as_bool(), r["updated"].as_array().map(Vec::len)), (Some(true), Some(0)), "{r}");
}
