//! Rules for new passwords: a minimum length (`DOCKNAP_PASSWORD_MIN_LENGTH`)
//! and not one of the commonest passwords. Existing passwords are never
//! re-checked: logins only verify the hash.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::{AuthError, PASSWORD_MAX};

/// The passwords of 8 or more characters from zxcvbn's frequency list
/// (@zxcvbn-ts/language-common 4.1.3, MIT; lower-cased, most common first).
const COMMON: &str = include_str!("common-passwords.txt");

pub const DEFAULT_MIN_LENGTH: usize = 12;
/// The lowest minimum an operator may configure.
pub const LOWEST_MIN_LENGTH: usize = 8;

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: DEFAULT_MIN_LENGTH }
    }
}

impl PasswordPolicy {
    /// Is `p` acceptable as a new password? The error says why not.
    pub fn check(&self, p: &str) -> Result<(), AuthError> {
        let n = p.chars().count();
        let invalid = |m: String| Err(AuthError::Invalid("invalid_password", m));
        if n < self.min_length {
            return invalid(format!("a new password needs at least {} characters, this one has {n}", self.min_length));
        }
        if n > PASSWORD_MAX {
            return invalid(format!("a password has at most {PASSWORD_MAX} characters, this one has {n}"));
        }
        if common().contains(p.to_lowercase().as_str()) {
            return invalid("this password is on a list of commonly used passwords; choose another".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(), AuthError>) -> String {
        match r {
            Err(AuthError::Invalid("invalid_password", m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn length_and_common_list() {
        let p = PasswordPolicy::default();
        assert!(message(p.check("short-pass1")).contains("at least 12"));
        assert!(message(p.check(&"x".repeat(257))).contains("at most 256"));
        assert!(p.check("correct horse battery").is_ok());
        for common in ["password1234", "PASSWORD1234", "qwertyuiop123", "1qaz2wsx3edc"] {
            assert!(message(p.check(common)).contains("commonly used"), "{common}");
        }
        let lax = PasswordPolicy { min_length: 8 };
        assert!(lax.check("tr0ub4dor").is_ok());
        assert!(message(lax.check("password")).contains("commonly used"));
        assert!(common().len() > 10_000);
    }
}
