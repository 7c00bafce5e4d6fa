//! bcrypt (cost 12) over a SHA-256 pre-hash: bcrypt reads only 72 bytes, and
//! passwords may have 256 characters, so every byte must count (the
//! bcrypt-sha256 construction: base64 of SHA-256, 44 bytes, fed to bcrypt).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::AuthError;

pub const COST: u32 = 12;

fn prehash(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    bcrypt::hash(prehash(password), COST).map_err(|e| AuthError::Hash(e.to_string()))
}

/// False for a wrong password and for a malformed hash alike.
pub fn verify_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(prehash(password), hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_passwords_differ_past_72_bytes() {
        let a = "x".repeat(100) + "a";
        let b = "x".repeat(100) + "b";
        let h = hash_password(&a).unwrap();
        assert!(h.starts_with("$2b$12$"));
        assert!(verify_password(&a, &h));
        assert!(!verify_password(&b, &h));
    }

    #[test]
    fn garbage_hash_is_a_mismatch_not_a_panic() {
        assert!(!verify_password("whatever", "not-a-hash"));
    }
}
