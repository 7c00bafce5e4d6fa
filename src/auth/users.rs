//! User administration as a domain service: the HTTP handlers call these,
//! never the store. New passwords pass the policy; every change is audited
//! with what it did; a change that changes nothing revokes nothing.

use std::sync::Arc;

use super::{Auth, AuthError, hash_password, validate_username};
use crate::model::{NewAuditEntry, Role, User};
use crate::store::{StoreError, UserChange, UserUpdate};

/// An admin's change to a user (`PUT /api/users/{id}`).
#[derive(Debug, Default)]
pub struct UserEdit {
    pub role: Option<Role>,
    pub password: Option<String>,
    pub reset_totp: bool,
}

impl Auth {
    /// Every user, and whether each has two-factor sign-in on.
    pub async fn list_users(&self) -> Result<Vec<(User, bool)>, AuthError> {
        let (users, totp) = self.store.run(|s| Ok((s.users()?, s.totp_users()?))).await?;
        Ok(users
            .into_iter()
            .map(|u| {
                let on = totp.contains(&u.id);
                (u, on)
            })
            .collect())
    }

    pub async fn create_user(
        self: &Arc<Self>,
        actor: &str,
        username: String,
        password: String,
        role: Role,
    ) -> Result<User, AuthError> {
        validate_username(&username)?;
        self.options.password_policy.check(&password)?;
        let now = self.clock.now();
        let user = self
            .on_blocking_thread(move |auth| {
                let hash = hash_password(&password)?;
                Ok::<_, AuthError>(auth.store.create_user(&username, &hash, role, now)?)
            })
            .await?;
        self.audit.record(
            NewAuditEntry::new(
                actor,
                crate::model::AuditAction::UserCreate,
                true,
                format!("created user '{}' as {}", user.username, role.as_str()),
            )
            .target("user", &user.username),
        );
        Ok(user)
    }

    /// Applies an admin's change. An empty one is refused; one that changes
    /// nothing (the role the user has) is done without revoking sessions or
    /// an audit line; a real one signs the user out everywhere.
    pub async fn update_user(self: &Arc<Self>, actor: &str, id: i64, edit: UserEdit) -> Result<UserUpdate, AuthError> {
        if edit.role.is_none() && edit.password.is_none() && !edit.reset_totp {
            return Err(AuthError::Invalid(
                "empty_change",
                "name at least one of role, password, reset_totp: true".into(),
            ));
        }
        if let Some(p) = &edit.password {
            self.options.password_policy.check(p)?;
        }
        let now = self.clock.now();
        let result = self
            .on_blocking_thread(move |auth| {
                let hash = edit.password.as_deref().map(hash_password).transpose()?;
                let change = UserChange {
                    role: edit.role,
                    password_hash: hash.as_deref(),
                    reset_totp: edit.reset_totp,
                    keep_token: None,
                };
                Ok::<_, AuthError>(auth.store.update_user(id, &change, now)?)
            })
            .await;
        match &result {
            Ok(done) if done.changed() => {
                let mut what = Vec::new();
                if let Some(old) = done.previous_role {
                    what.push(format!("role {} → {}", old.as_str(), done.user.role.as_str()));
                }
                if done.keys_capped > 0 {
                    what.push(format!("{} API key(s) lowered to {}", done.keys_capped, done.user.role.as_str()));
                }
                if done.password_changed {
                    what.push("password reset".into());
                }
                if done.totp_reset {
                    what.push("two-factor sign-in reset".into());
                }
                let message = format!("user '{}': {}; signed out everywhere", done.user.username, what.join(", "));
                self.audit.record(
                    NewAuditEntry::new(actor, crate::model::AuditAction::UserUpdate, true, message)
                        .target("user", &done.user.username),
                );
            }
            Ok(_) => {}
            Err(AuthError::Store(e)) => self.audit_refusal(actor, crate::model::AuditAction::UserUpdate, id, e),
            Err(_) => {}
        }
        result
    }

    pub async fn delete_user(&self, actor: &str, id: i64) -> Result<User, AuthError> {
        let result = self.store.run(move |s| s.delete_user(id)).await;
        match &result {
            Ok(u) => self.audit.record(
                NewAuditEntry::new(
                    actor,
                    crate::model::AuditAction::UserDelete,
                    true,
                    format!("user '{}' deleted", u.username),
                )
                .target("user", &u.username),
            ),
            Err(e) => self.audit_refusal(actor, crate::model::AuditAction::UserDelete, id, e),
        }
        Ok(result?)
    }

    fn audit_refusal(&self, actor: &str, action: crate::model::AuditAction, id: i64, e: &StoreError) {
        self.audit
            .record(NewAuditEntry::new(actor, action, false, format!("refused: {e}")).target("user", &id.to_string()));
    }
}
