//! Two-factor sign-in (TOTP) on top of the password: set-up, confirmation,
//! the check at login, and turning it off. Codes and secrets are never
//! logged or audited.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::{Attempt, Auth, AuthError, PASSWORD_MAX, Principal, totp, verify_password};
use crate::model::{NewAuditEntry, User};

/// The issuer authenticator apps show next to the account.
const ISSUER: &str = "DockNap";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    pub otpauth_url: String,
}

impl Auth {
    fn audit_totp(
        &self,
        user: &User,
        action: crate::model::AuditAction,
        ok: bool,
        message: impl Into<String>,
        client: Option<IpAddr>,
    ) {
        let mut e = NewAuditEntry::new(&user.username, action, ok, message).target("user", &user.username);
        if let Some(c) = client {
            e = e.client(c);
        }
        self.audit.record(e);
    }

    /// A TOTP code (six digits) or a recovery code, used once. Without one
    /// the attempt does not count as a failure; a wrong one does (the
    /// attempt is dropped unsucceeded).
    pub(super) fn check_second_factor(
        &self,
        attempt: Attempt,
        user: &User,
        code: Option<&str>,
        client: IpAddr,
    ) -> Result<Attempt, AuthError> {
        let Some(row) = self.store.totp(user.id)?.filter(|t| t.enabled) else { return Ok(attempt) };
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            attempt.succeeded();
            return Err(AuthError::TotpRequired);
        };
        let secret = self.secrets.open(user.id, &row.secret_enc)?;
        let now = self.clock.now().timestamp();
        if let Some(step) = totp::matching_step(&secret, code, now, row.last_step) {
            // Conditional: of two logins racing with one code, one wins.
            if self.store.totp_use_step(user.id, step)? {
                return Ok(attempt);
            }
        } else if let Some(hash) = totp::recovery_hash(code) {
            if let Some(left) = self.store.recovery_code_use(user.id, &hash, self.clock.now())? {
                self.audit_totp(
                    user,
                    crate::model::AuditAction::TotpRecoveryCode,
                    true,
                    format!("signed in with a recovery code; {left} left"),
                    Some(client),
                );
                return Ok(attempt);
            }
        }
        self.audit.record(
            NewAuditEntry::new(
                &user.username,
                crate::model::AuditAction::Login,
                false,
                "wrong or already used two-factor code",
            )
            .target("user", &user.username)
            .client(client),
        );
        Err(AuthError::WrongTotp)
    }

    pub async fn totp_enabled(&self, user_id: i64) -> Result<bool, AuthError> {
        Ok(self.store.run(move |s| s.totp_enabled(user_id)).await?)
    }

    /// A new secret for `p`, not in force until [`Auth::totp_enable`]
    /// confirms it; replaces an unconfirmed one.
    pub async fn totp_setup(&self, p: &Principal) -> Result<TotpSetup, AuthError> {
        let secret = totp::new_secret();
        let sealed = self.secrets.seal(p.user.id, &secret);
        let (id, now) = (p.user.id, self.clock.now());
        self.store.run(move |s| s.totp_begin(id, &sealed, now)).await?;
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            otpauth_url: totp::otpauth_url(ISSUER, &p.user.username, &secret),
        })
    }

    /// Turns two-factor sign-in on with a code from the new secret; returns
    /// the recovery codes, shown this once (only their hashes are kept).
    pub async fn totp_enable(&self, p: &Principal, code: &str, client: IpAddr) -> Result<Vec<String>, AuthError> {
        let id = p.user.id;
        let Some(row) = self.store.run(move |s| s.totp(id)).await?.filter(|t| !t.enabled) else {
            return Err(AuthError::Invalid(
                "totp_not_set_up",
                "start the set-up first (POST /api/auth/totp/setup)".into(),
            ));
        };
        let secret = self.secrets.open(id, &row.secret_enc)?;
        let Some(step) = totp::matching_step(&secret, code.trim(), self.clock.now().timestamp(), None) else {
            return Err(AuthError::Invalid(
                "invalid_totp",
                "the code is wrong: check the device's clock and try the next code".into(),
            ));
        };
        let codes = totp::new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|(_, h)| h.clone()).collect();
        if !self.store.run(move |s| s.totp_enable(id, step, &hashes)).await? {
            return Err(AuthError::Invalid(
                "totp_not_set_up",
                "start the set-up first (POST /api/auth/totp/setup)".into(),
            ));
        }
        self.audit_totp(
            &p.user,
            crate::model::AuditAction::TotpEnable,
            true,
            "two-factor sign-in turned on; 10 recovery codes issued",
            Some(client),
        );
        Ok(codes.into_iter().map(|(c, _)| c).collect())
    }

    /// Turns two-factor sign-in off; needs the password and a current code
    /// (or a recovery code). Guesses count against the login limits.
    pub async fn totp_disable(
        self: &Arc<Self>,
        p: Principal,
        password: String,
        code: String,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let attempt = self.limiter.admit(&p.user.username, client).await.map_err(|b| AuthError::RateLimited(b.wait))?;
        self.on_blocking_thread(move |auth| {
            let hash = auth.store.password_hash(p.user.id)?;
            if password.chars().count() > PASSWORD_MAX || !verify_password(&password, &hash) {
                auth.audit_totp(
                    &p.user,
                    crate::model::AuditAction::TotpDisable,
                    false,
                    "current password is wrong",
                    Some(client),
                );
                return Err(AuthError::WrongCurrentPassword);
            }
            if !auth.store.totp_enabled(p.user.id)? {
                attempt.succeeded();
                return Err(AuthError::Invalid("totp_not_enabled", "two-factor sign-in is not on".into()));
            }
            let attempt = auth.check_second_factor(attempt, &p.user, Some(&code), client)?;
            attempt.succeeded();
            auth.store.totp_remove(p.user.id)?;
            auth.audit_totp(
                &p.user,
                crate::model::AuditAction::TotpDisable,
                true,
                "two-factor sign-in turned off",
                Some(client),
            );
            Ok(())
        })
        .await
    }
}
