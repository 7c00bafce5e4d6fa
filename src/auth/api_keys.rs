//! API keys: long-lived bearer tokens (`dnp_…`) a user makes for scripts.
//! A key is 256 random bits, kept only as its SHA-256 (a slow hash protects
//! guessable passwords; a random key has nothing to guess). Each use is
//! noted in memory and written in batches (`last_used_at`), so a request
//! costs no write.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Auth, AuthError, Principal, token};
use crate::model::{ApiKey, NewAuditEntry, Role};
use crate::store::NewApiKey;

/// Every key starts with this, so a key is told from a login token at a glance.
pub const KEY_PREFIX: &str = "dnp_";
/// Characters of the key after [`KEY_PREFIX`] kept in the clear, to tell keys apart.
const SHOWN_CHARS: usize = 8;
/// 32 random bytes in unpadded base64url.
const SECRET_CHARS: usize = 43;
pub const KEY_NAME_MAX: usize = 64;

/// A key just made: the only time its secret is seen.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub token: String,
}

/// `POST /api/tokens`.
#[derive(Debug)]
pub struct KeyRequest {
    pub name: String,
    pub role: Option<Role>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Uses not yet written, by key id.
#[derive(Default)]
pub(super) struct KeyUses {
    uses: Mutex<HashMap<i64, DateTime<Utc>>>,
    /// Told when the first use after a flush is noted: the flusher sleeps until then.
    first: tokio::sync::Notify,
}

impl KeyUses {
    fn note(&self, id: i64, at: DateTime<Utc>) {
        let mut uses = crate::store::lock(&self.uses);
        if uses.is_empty() {
            self.first.notify_one();
        }
        let last = uses.entry(id).or_insert(at);
        *last = (*last).max(at);
    }

    fn pending(&self, id: i64) -> Option<DateTime<Utc>> {
        crate::store::lock(&self.uses).get(&id).copied()
    }

    fn take(&self) -> Vec<(i64, DateTime<Utc>)> {
        crate::store::lock(&self.uses).drain().collect()
    }

    fn put_back(&self, uses: Vec<(i64, DateTime<Utc>)>) {
        for (id, at) in uses {
            self.note(id, at);
        }
    }
}

/// `dnp_` and 43 base64url characters: the only shape a key can have.
fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|s| {
        s.len() == SECRET_CHARS && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// 1 to 64 letters, digits, '.', '_' or '-': no ':' (it separates the
/// owner from the key in the audit actor) and no spaces.
pub fn validate_key_name(name: &str) -> Result<(), AuthError> {
    let ok = (1..=KEY_NAME_MAX).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid("invalid_name", "a key name has 1 to 64 letters, digits, '.', '_' or '-'".into()))
    }
}

impl Auth {
    /// Makes a key for the caller (a login session: the extractor refuses keys).
    pub async fn create_api_key(&self, p: &Principal, req: KeyRequest) -> Result<CreatedKey, AuthError> {
        validate_key_name(&req.name)?;
        let role = req.role.unwrap_or(p.user.role);
        if role > p.user.role {
            return Err(AuthError::Invalid(
                "invalid_role",
                format!("a key's role is at most yours ({}), not {}", p.user.role.as_str(), role.as_str()),
            ));
        }
        let now = self.clock.now().trunc_subsecs(3);
        if req.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Invalid("invalid_expiry", "expires_at must be in the future".into()));
        }
        let token = format!("{KEY_PREFIX}{}", token::random_string(32));
        debug_assert!(well_formed(&token));
        let prefix = token[..KEY_PREFIX.len() + SHOWN_CHARS].to_string();
        let new = NewApiKey {
            user_id: p.user.id,
            name: &req.name,
            role,
            prefix: &prefix,
            hash: &hash_key(&token),
            expires_at: req.expires_at,
        };
        let key = self.store.create_api_key(&new, now)?;
        tracing::info!(key = %key.actor(), role = role.as_str(), "API key created");
        self.audit.record(
            NewAuditEntry::new(
                &p.actor,
                crate::model::AuditAction::ApiKeyCreate,
                true,
                format!("API key '{}' created", key.actor()),
            )
            .target("api_key", &key.actor())
            .details(serde_json::json!({ "id": key.id, "role": role, "prefix": prefix, "expires_at": key.expires_at })),
        );
        Ok(CreatedKey { key, token })
    }

    /// The caller's keys, or with `all` (admins only) everyone's, with uses
    /// not yet written counted in.
    pub async fn api_keys(&self, p: &Principal, all: bool) -> Result<Vec<ApiKey>, AuthError> {
        if all && p.user.role < Role::Admin {
            return Err(AuthError::Forbidden("only admins can list everyone's keys".into()));
        }
        let owner = (!all).then_some(p.user.id);
        let mut keys = self.store.run(move |s| s.api_keys(owner)).await?;
        for k in &mut keys {
            k.last_used_at = k.last_used_at.max(self.key_uses.pending(k.id));
        }
        Ok(keys)
    }

    /// Deletes one of the caller's keys (admins: anyone's); at once, open
    /// event streams included. Another user's key is "not found" to a non-admin.
    pub async fn delete_api_key(&self, p: &Principal, id: i64) -> Result<(), AuthError> {
        let key = self.store.run(move |s| s.api_key(id)).await?;
        if key.user_id != p.user.id && p.user.role < Role::Admin {
            return Err(crate::store::StoreError::NotFound.into());
        }
        self.store.run(move |s| s.delete_api_key(id)).await?;
        tracing::info!(key = %key.actor(), "API key revoked");
        self.audit.record(
            NewAuditEntry::new(
                &p.actor,
                crate::model::AuditAction::ApiKeyDelete,
                true,
                format!("API key '{}' revoked", key.actor()),
            )
            .target("api_key", &key.actor())
            .details(serde_json::json!({ "id": key.id })),
        );
        Ok(())
    }

    /// Resolves a `dnp_` key: live, not expired, with the lower of its role
    /// and its owner's.
    pub(super) fn authenticate_key(&self, key: &str) -> Result<Principal, AuthError> {
        // Garbage never reaches the database.
        if !well_formed(key) {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.clock.now();
        let (key, owner) = self.store.api_key_by_hash(&hash_key(key))?.ok_or(AuthError::Unauthenticated)?;
        if key.expired(now) {
            return Err(AuthError::Unauthenticated);
        }
        // Milliseconds, as stored: the list shows the same time before and after the write.
        self.key_uses.note(key.id, now.trunc_subsecs(3));
        let must_enrol = self.options.require_2fa.applies_to(owner.role) && !self.store.totp_enabled(owner.id)?;
        let mut user = owner;
        user.role = user.role.min(key.role);
        Ok(Principal {
            actor: key.actor(),
            user,
            jti: String::new(),
            expires_at: key.expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
            must_enrol,
            key: Some(key.id),
        })
    }

    /// Is this key still alive (not revoked, expired, or its owner gone)?
    pub(super) fn key_alive(&self, id: i64, user_id: i64) -> bool {
        matches!(self.store.api_key(id), Ok(k) if k.user_id == user_id && !k.expired(self.clock.now()))
    }

    /// Resolves once a key use waits to be written.
    pub async fn key_used(&self) {
        self.key_uses.first.notified().await
    }

    /// Writes the uses noted since the last call (a few seconds after the
    /// first of them, and at shutdown). On failure they are kept for the next call.
    pub fn flush_key_uses(&self) {
        let uses = self.key_uses.take();
        if uses.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_api_key_uses(&uses) {
            tracing::warn!(error = %e, "could not record API key uses; will retry");
            self.key_uses.put_back(uses);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_that_would_break_the_audit_actor_are_refused() {
        assert!(validate_key_name("deploy-bot.v2_x").is_ok());
        for bad in ["", "a:b", "with space", &"x".repeat(65)] {
            assert!(validate_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_shape_of_a_key_is_looked_up() {
        assert!(well_formed(&format!("{KEY_PREFIX}{}", token::random_string(32))));
        for bad in [
            "dnp_",
            "dnp_short",
            &format!("dnp_{}", "a".repeat(44)),
            &format!("dnp_{}!", "a".repeat(42)),
            &"a".repeat(47),
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn noted_uses_keep_the_latest_and_drain_once() {
        let uses = KeyUses::default();
        let t = |m: i64| DateTime::<Utc>::from_timestamp(m * 60, 0).unwrap();
        uses.note(1, t(5));
        uses.note(1, t(3));
        uses.note(2, t(1));
        assert_eq!(uses.pending(1), Some(t(5)));
        let mut taken = uses.take();
        taken.sort();
        assert_eq!(taken, [(1, t(5)), (2, t(1))]);
        assert!(uses.take().is_empty());
    }
}
