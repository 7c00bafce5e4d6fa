//! The audit log: who did what to which target, and whether it worked.
//! Append-only (a trigger in the store refuses updates); one tracing line per
//! entry. Never holds a password or token.
//!
//! Entries are written by one thread of their own, in batches: recording one
//! costs the caller a channel send, never an fsync on an async worker, and a
//! burst of 200 entries is one transaction. A write that fails (disk full,
//! read-only data directory) is kept and retried with backoff, in order, so
//! what happened while the disk was full is recorded once it can be.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry};
use crate::store::audit_chain::Verification;
use crate::store::{Store, StoreError};

/// Most entries written in one transaction.
const MAX_BATCH: usize = 512;
/// Entries kept while the disk refuses writes; past this the oldest are
/// dropped (and counted in the log) rather than growing without bound.
const MAX_PENDING: usize = 100_000;
const MIN_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

enum Message {
    Entry(Box<NewAuditEntry>, DateTime<Utc>),
    /// Answered once every entry sent before it is written (or failed).
    Flush(Sender<()>),
}

pub struct Audit {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    tx: Sender<Message>,
}

impl Audit {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Audit {
        let (tx, rx) = mpsc::channel();
        let writer = store.clone();
        std::thread::Builder::new()
            .name("docknap-audit".into())
            .spawn(move || write_loop(&writer, &rx))
            .expect("cannot start the audit writer thread");
        Audit { store, clock, tx }
    }

    /// The store it writes to (unit tests build other services on it).
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Queues the entry for writing, stamped now. A failed write is logged
    /// loudly and retried; it never undoes the action it describes.
    pub fn record(&self, e: NewAuditEntry) {
        tracing::info!(
            actor = %e.actor, action = %e.action, host = e.host.as_deref(), target_type = e.target_type.as_deref(),
            target = e.target_id.as_deref(), ok = e.ok, client = e.client_addr.as_deref(), "{}", e.message
        );
        // The writer lives as long as the process: a send cannot fail.
        let _ = self.tx.send(Message::Entry(Box::new(e), self.clock.now()));
    }

    /// Blocks until every entry recorded before this call is written (or its
    /// write failed). For shutdown, and for reads that must see them.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Checks the hash chain over everything recorded before the call.
    pub async fn verify(self: &Arc<Self>) -> Result<Verification, StoreError> {
        let this = self.clone();
        self.store
            .run(move |store| {
                this.flush();
                store.verify_audit()
            })
            .await
    }

    /// Drops entries older than `keep` behind a checkpoint (`DOCKNAP_AUDIT_RETENTION`).
    pub async fn prune(self: &Arc<Self>, keep: std::time::Duration) -> Result<u64, StoreError> {
        let (this, now) = (self.clone(), self.clock.now());
        let cutoff = now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        self.store
            .run(move |store| {
                this.flush();
                store.prune_audit(cutoff, now)
            })
            .await
    }

    /// A page of the log, including everything recorded before the call.
    pub async fn list(self: &Arc<Self>, filter: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let this = self.clone();
        self.store
            .run(move |store| {
                this.flush();
                store.audit(&filter)
            })
            .await
    }
}

fn write_loop(store: &Store, rx: &Receiver<Message>) {
    let mut pending: VecDeque<(NewAuditEntry, DateTime<Utc>)> = VecDeque::new();
    let mut waiting: Vec<Sender<()>> = Vec::new();
    let mut retry = MIN_RETRY;
    let mut dropped = 0usize;
    loop {
        // Wait for work; while writes fail, wake to retry them.
        let received = if pending.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(retry) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        // Whatever else is queued joins the same transaction.
        for m in received.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())).take(MAX_BATCH) {
            match m {
                Message::Entry(e, at) => pending.push_back((*e, at)),
                Message::Flush(done) => waiting.push(done),
            }
        }
        if pending.len() > MAX_PENDING {
            let excess = pending.len() - MAX_PENDING;
            pending.drain(..excess);
            dropped += excess;
        }
        while !pending.is_empty() {
            let n = pending.len().min(MAX_BATCH);
            let batch: Vec<_> = pending.range(..n).cloned().collect();
            match store.append_audit_batch(&batch) {
                Ok(()) => {
                    pending.drain(..n);
                    if retry > MIN_RETRY {
                        tracing::warn!(dropped, "the audit log is writable again; queued entries written");
                        retry = MIN_RETRY;
                        dropped = 0;
                    }
                }
                Err(e) => {
                    if retry == MIN_RETRY {
                        tracing::error!(error = %e, queued = pending.len(), "could not write the audit log; retrying");
                    }
                    retry = (retry * 2).min(MAX_RETRY);
                    break;
                }
            }
        }
        // A flush waits for the write, not for the disk to recover.
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    #[test]
    fn entries_refused_by_the_disk_are_written_in_order_once_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let audit = Audit::new(store.clone(), Arc::new(FakeClock::at("2026-01-01T00:00:00Z")));
        // Stands in for a full disk: every insert fails until the trigger goes.
        let side = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        side.execute_batch("CREATE TRIGGER full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
            .unwrap();
        for i in 0..3 {
            audit.record(NewAuditEntry::new("t", crate::model::AuditAction::Login, true, format!("entry {i}")));
        }
        audit.flush();
        let all = AuditFilter { limit: 10, ..Default::default() };
        assert!(store.audit(&all).unwrap().is_empty(), "nothing could be written");

        side.execute_batch("DROP TRIGGER full").unwrap();
        audit.record(NewAuditEntry::new("t", crate::model::AuditAction::Login, true, "entry 3"));
        audit.flush();
        let messages: Vec<String> = store.audit(&all).unwrap().into_iter().rev().map(|e| e.message).collect();
        assert_eq!(messages, ["entry 0", "entry 1", "entry 2", "entry 3"]);
    }
}
