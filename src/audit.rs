//! The audit log: who did what to which target, and whether it worked.
//! Append-only (a trigger in the store refuses updates); one tracing line per
//! entry. Never holds a password or token.

use std::sync::Arc;

use crate::clock::Clock;
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry};
use crate::store::Store;

pub struct Audit {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
}

impl Audit {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Audit {
        Audit { store, clock }
    }

    /// Writes the entry. A failed write is logged loudly but does not undo
    /// the action it describes (that already happened).
    pub fn record(&self, e: NewAuditEntry) -> Option<AuditEntry> {
        tracing::info!(
            actor = %e.actor, action = %e.action, target_type = e.target_type.as_deref(),
            target = e.target_id.as_deref(), ok = e.ok, client = e.client_addr.as_deref(), "{}", e.message
        );
        match self.store.append_audit(&e, self.clock.now()) {
            Ok(entry) => Some(entry),
            Err(err) => {
                tracing::error!(error = %err, "could not write the audit log");
                None
            }
        }
    }

    pub fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, crate::store::StoreError> {
        self.store.audit(filter)
    }
}
