//! Start-up wiring: config → store → services → HTTP server, and an orderly
//! shutdown on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::actions::{Actions, detect_self_container_id};
use crate::api::{self, App};
use crate::audit::Audit;
use crate::auth::{Auth, AuthOptions};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::docker::fleet::Connect;
use crate::docker::{BollardEngine, Engine, Fleet};
use crate::events::Events;
use crate::hosts::Hosts;
use crate::model::{HostConfig, HostSource, LOCAL_HOST};
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::window::Windows;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DOCKNAP_DATA_DIR: {0}")]
    DataDir(String),
    #[error("DOCKNAP_DATA_DIR: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Checked only when it creates the first admin: a password set before
    /// the policy existed keeps working.
    #[error("DOCKNAP_ADMIN_PASSWORD: {0}")]
    AdminPassword(crate::auth::AuthError),
    #[error("DOCKNAP_HOSTS: {0}")]
    Hosts(String),
    #[error("{0}")]
    Oidc(String),
    /// Names its variable (`DOCKNAP_NOTIFY_URLS`, `DOCKNAP_NOTIFY_CA_FILE`).
    #[error("{0}")]
    Notify(String),
    #[error("DOCKNAP_LISTEN: cannot listen on {addr}: {error}")]
    Listen { addr: std::net::SocketAddr, error: std::io::Error },
}

/// How long in-flight requests (e.g. a stack stop) get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Creates the data directory and proves it writable, so a bad mount fails
/// at start with one clear line instead of at the first login.
pub fn prepare_data_dir(dir: &std::path::Path) -> Result<(), StartError> {
    let fail = |e: std::io::Error| StartError::DataDir(format!("{} is not writable: {e}", dir.display()));
    // Private when we create it: the database holds password hashes.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(fail)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

pub async fn serve(config: Config) -> Result<(), StartError> {
    let started = std::time::Instant::now();
    // Before the port opens: a SIGTERM as soon as we answer must mean an
    // orderly stop, not the default action (death mid-bootstrap).
    let shutdown = shutdown_signal();
    prepare_data_dir(&config.data_dir)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = Arc::new(Audit::new(store.clone(), clock.clone()));
    if let Some(p) = config.admin_password.as_deref().filter(|_| store.user_count().is_ok_and(|n| n == 0)) {
        config.password_policy.check(p).map_err(StartError::AdminPassword)?;
    }
    let options =
        AuthOptions { ttl: config.token_ttl, require_2fa: config.require_2fa, password_policy: config.password_policy };
    let auth = Arc::new(
        Auth::new(store.clone(), audit.clone(), clock.clone(), &config.data_dir, options)
            .map_err(|e| StartError::DataDir(format!("cannot set up the token and two-factor keys: {e}")))?,
    );
    auth.bootstrap_admin_in_background(config.admin_username.clone(), config.admin_password.clone()).await;

    let events = Events::default();
    // Before any host connects: an engine unreachable from the start is news too.
    let incidents = events.incidents();
    // Before any host's discovery starts, so no health change is missed.
    let health_events = events.subscribe_engine();
    let connect: Connect = Arc::new(|h: &HostConfig| {
        let engine = BollardEngine::connect(&h.url, h.tls.as_ref()).map_err(|e| e.to_string())?;
        Ok(Arc::new(engine) as Arc<dyn Engine>)
    });
    let fleet = Arc::new(Fleet::new(connect, events.clone(), config.engine_recheck));
    let local = HostConfig {
        name: LOCAL_HOST.to_string(),
        url: config.docker_host.clone(),
        group: None,
        source: HostSource::Env,
        tls: None,
    };
    let declared = std::iter::once(local).chain(config.hosts.iter().cloned()).collect();
    let hosts = Arc::new(
        Hosts::start(store.clone(), fleet.clone(), audit.clone(), clock.clone(), declared)
            .map_err(StartError::Hosts)?,
    );
    let actions = Arc::new(Actions::new(fleet.clone(), store.clone(), audit.clone(), detect_self_container_id()));
    let in_flight = actions.clone();
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        actions.clone(),
        audit.clone(),
        events.clone(),
        clock.clone(),
        config.default_tz,
    ));

    let windows = Windows::new(
        store.clone(),
        actions.clone(),
        scheduler.clone(),
        audit.clone(),
        events.clone(),
        clock.clone(),
        config.default_tz,
    )?;

    let oidc = match config.oidc.clone() {
        Some(c) => Some(Arc::new(
            crate::oidc::Oidc::new(c, auth.clone(), store.clone(), audit.clone()).map_err(StartError::Oidc)?,
        )),
        None => None,
    };

    let notifier = crate::notify::Notifier::new(
        store.clone(),
        audit.clone(),
        clock.clone(),
        crate::notify::NotifyConfig {
            env_urls: config.notify.urls.clone(),
            ca_pem: config.notify.ca_pem.clone(),
            public_url: config.public_url.clone(),
            test_base: config.notify.test_base.clone(),
        },
    )
    .map_err(StartError::Notify)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let listener =
        TcpListener::bind(config.listen).await.map_err(|error| StartError::Listen { addr: config.listen, error })?;

    let scheduler_task = tokio::spawn(scheduler.clone().run(stop_rx.clone()));
    let pruner = tokio::spawn(prune_periodically(auth.clone(), stop_rx.clone()));
    let key_uses = tokio::spawn(flush_key_uses_periodically(auth.clone(), stop_rx.clone()));
    let auth_at_exit = auth.clone();
    let audit_pruner = tokio::spawn(prune_audit_daily(audit.clone(), config.audit_retention, stop_rx.clone()));
    let reconciler = tokio::spawn(windows.clone().run(stop_rx.clone()));
    let sender = tokio::spawn(notifier.clone().run(stop_rx.clone()));
    let incidents = tokio::spawn(notifier.clone().watch(incidents, stop_rx.clone()));
    let autoheal = tokio::spawn(crate::autoheal::run(actions.clone(), health_events, stop_rx.clone()));
    let labels = Arc::new(crate::labels::Labels::new(
        store.clone(),
        fleet.clone(),
        scheduler.clone(),
        windows.clone(),
        config.default_tz,
    ));
    let labels = tokio::spawn(labels.run(events.clone(), stop_rx.clone()));

    let transfer = Arc::new(crate::transfer::Transfer::new(
        store.clone(),
        scheduler.clone(),
        windows.clone(),
        hosts.clone(),
        notifier.clone(),
        audit.clone(),
        clock.clone(),
    ));
    let app = Arc::new(App {
        auth,
        audit,
        hosts,
        fleet: fleet.clone(),
        actions,
        scheduler,
        windows,
        notifier,
        transfer,
        events,
        secure_cookie: config.secure_cookie,
        metrics_access: config.metrics,
        trusted_proxies: config.trusted_proxies.clone(),
        public_url: config.public_url.clone(),
        oidc,
        streams: api::streams::StreamSlots::new(config.limits.max_streams, config.limits.max_streams_per_user),
        shutdown: stop_rx.clone(),
        lists: Default::default(),
    });
    let router = api::router(app);
    tracing::info!(
        listen = %config.listen, data_dir = %config.data_dir.display(), docker_host = %config.docker_host,
        startup_ms = started.elapsed().as_millis() as u64, "DockNap {} serving", crate::VERSION
    );

    let server = tokio::spawn(crate::http::serve(listener, router, config.limits.clone(), stop_rx.clone()));

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline, server).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time; exiting anyway");
    }
    // Scheduled runs are not requests: wait for them too, and audit any cut off.
    in_flight.finish_in_flight(deadline).await;
    let audit = in_flight.audit().clone();
    let _ = tokio::task::spawn_blocking(move || audit.flush()).await;
    let _ = tokio::task::spawn_blocking(move || auth_at_exit.flush_key_uses()).await;
    for task in [scheduler_task, pruner, key_uses, audit_pruner, reconciler, sender, incidents, autoheal, labels] {
        task.abort();
    }
    // Each host's discovery ends with its host.
    drop(fleet);
    // The store closes (and checkpoints its WAL) when the last handle drops.
    Ok(())
}

async fn prune_periodically(auth: Arc<Auth>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let auth = auth.clone();
                let _ = tokio::task::spawn_blocking(move || auth.prune()).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// API keys' `last_used_at`: noted in memory per request, written a few
/// seconds after the first unwritten use, with every use since, in one
/// transaction (and once more at shutdown). No key use, no wake-up.
async fn flush_key_uses_periodically(auth: Arc<Auth>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = auth.key_used() => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(KEY_USES_BATCH) => {}
            _ = stop.changed() => return,
        }
        let auth = auth.clone();
        let _ = tokio::task::spawn_blocking(move || auth.flush_key_uses()).await;
    }
}

const KEY_USES_BATCH: Duration = Duration::from_secs(5);

/// `DOCKNAP_AUDIT_RETENTION`: at start, then once a day.
async fn prune_audit_daily(audit: Arc<Audit>, keep: Option<Duration>, mut stop: watch::Receiver<bool>) {
    let Some(keep) = keep else { return };
    let mut tick = tokio::time::interval(Duration::from_secs(86400));
    loop {
        tokio::select! {
            _ = tick.tick() => match audit.prune(keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "old audit entries pruned behind a checkpoint"),
                Err(e) => tracing::warn!(error = %e, "could not prune the audit log; will retry tomorrow"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now; the future ends at the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
