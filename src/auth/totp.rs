//! RFC 6238 time-based one-time passwords (HMAC-SHA1, 6 digits, 30 s steps,
//! one step of drift either way), the secrets' encryption at rest, and
//! recovery codes.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now that are accepted (clock drift, typing time).
pub const DRIFT_STEPS: i64 = 1;
pub const RECOVERY_CODES: usize = 10;
/// 160 bits, the size RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
pub const KEY_FILE: &str = "totp.key";

/// The code for one time step (RFC 4226's HOTP with the step as counter).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes(digest[offset..offset + 4].try_into().expect("4 bytes")) & 0x7fff_ffff;
    bin % 10u32.pow(DIGITS)
}

pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The step whose code `code` is, within the drift around `now`, and later
/// than `last_step` (a code is accepted once); `None` otherwise. Only
/// exactly six digits are a code.
pub fn matching_step(secret: &[u8], code: &str, unix_now: i64, last_step: Option<i64>) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step_of(unix_now);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS)
        .filter(|s| *s >= 0 && last_step.is_none_or(|last| *s > last))
        // Every candidate is computed, so the time taken does not say which matched.
        .fold(None, |found, s| if code_at(secret, s as u64) == wanted { Some(s) } else { found })
}

pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut s);
    s
}

pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI authenticator apps read from the QR code.
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// Ten random recovery codes, `xxxxx-xxxxx` in lower-case base32 (50 bits
/// each), and their hashes for the store.
pub fn new_recovery_codes() -> Vec<(String, String)> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 7];
            rand::rng().fill_bytes(&mut b);
            let s = data_encoding::BASE32_NOPAD.encode(&b)[..10].to_ascii_lowercase();
            let code = format!("{}-{}", &s[..5], &s[5..]);
            let hash = recovery_hash(&code).expect("a code we made is well formed");
            (code, hash)
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 (the codes are random, 50
/// bits: a slow hash adds nothing but a bcrypt round per code at login).
/// Case and the dash are optional when typed; `None` when it cannot be one.
pub fn recovery_hash(input: &str) -> Option<String> {
    let norm: String =
        input.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    if norm.len() != 10 || !norm.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
        return None;
    }
    Some(format!("{:x}", Sha256::digest(norm.as_bytes())))
}

#[derive(Debug, thiserror::Error)]
#[error("a stored two-factor secret cannot be decrypted (was {KEY_FILE} replaced?)")]
pub struct SealError;

/// Encrypts the secrets at rest (ChaCha20-Poly1305) with a key kept in the
/// data dir, apart from the database: a copy of the database alone does
/// not give the secrets away. Each sealed secret is bound to its user id.
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<SecretBox> {
        let key = super::token::load_or_create_key(&data_dir.join(KEY_FILE))?;
        Ok(SecretBox { cipher: <ChaCha20Poly1305 as KeyInit>::new_from_slice(&key[..32]).expect("32-byte key") })
    }

    /// base64 of nonce ‖ ciphertext.
    pub fn seal(&self, user_id: i64, secret: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = user_id.to_be_bytes();
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: secret, aad: &aad })
            .expect("encrypting a short secret cannot fail");
        base64::engine::general_purpose::STANDARD.encode([&nonce[..], &ct].concat())
    }

    pub fn open(&self, user_id: i64, sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| SealError)?;
        if raw.len() < 12 {
            return Err(SealError);
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        let aad = user_id.to_be_bytes();
        self.cipher.decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad }).map_err(|_| SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there: the last 6 are ours).
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, full) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            let code = code_at(secret, step_of(t) as u64);
            assert_eq!(format!("{code:06}"), full[2..], "t = {t}");
        }
    }

    #[test]
    fn drift_and_replay() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let at = |s: i64| format!("{:06}", code_at(secret, s as u64));
        let step = step_of(now);
        assert_eq!(matching_step(secret, &at(step), now, None), Some(step));
        assert_eq!(matching_step(secret, &at(step - 1), now, None), Some(step - 1));
        assert_eq!(matching_step(secret, &at(step + 1), now, None), Some(step + 1));
        assert_eq!(matching_step(secret, &at(step - 2), now, None), None, "two steps old");
        assert_eq!(matching_step(secret, &at(step), now, Some(step)), None, "used already");
        assert_eq!(matching_step(secret, &at(step - 1), now, Some(step)), None, "older than the last used");
        assert_eq!(matching_step(secret, &at(step + 1), now, Some(step)), Some(step + 1));
        for bad in ["", "12345", "1234567", "12345a", " 123456"] {
            assert_eq!(matching_step(secret, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_forgiving_when_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| &c.0).collect();
        assert_eq!(distinct.len(), 10);
        let (code, hash) = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(recovery_hash(&code.to_uppercase()).as_ref(), Some(hash));
        assert_eq!(recovery_hash(&code.replace('-', "")).as_ref(), Some(hash));
        assert_eq!(recovery_hash("123456"), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = b.seal(7, b"secret bytes");
        assert!(!sealed.contains("secret"));
        assert_eq!(SecretBox::load_or_create(dir.path()).unwrap().open(7, &sealed).unwrap(), b"secret bytes");
        assert!(b.open(8, &sealed).is_err(), "bound to the user");
        let other = tempfile::tempdir().unwrap();
        assert!(SecretBox::load_or_create(other.path()).unwrap().open(7, &sealed).is_err(), "another key");
    }

    #[test]
    fn otpauth_url_escapes_names() {
        let u = otpauth_url("DockNap", "ann@example.org", b"12345678901234567890");
        assert_eq!(
            u,
            "otpauth://totp/DockNap:ann%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=DockNap&algorithm=SHA1&digits=6&period=30"
        );
    }
}
