//! HS256 JWTs signed with a random 256-bit secret kept in the data dir (0600).
//! The signature proves we issued the token; the `jti` row in the store
//! proves it is still alive.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (JWT requires a string).
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

pub fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "sub", "jti"].into_iter().map(String::from).collect();
        TokenKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    /// Reads the secret, or creates it on first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<TokenKeys> {
        Ok(Self::from_secret(&load_or_create_key(path)?))
    }

    /// Returns the token and its id.
    pub fn sign(&self, user_id: i64, now: DateTime<Utc>, expires: DateTime<Utc>) -> (String, String) {
        let jti = random_string(16);
        let claims =
            Claims { sub: user_id.to_string(), jti: jti.clone(), iat: now.timestamp(), exp: expires.timestamp() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        (token, jti)
    }

    /// Checks signature, algorithm (HS256 only: `none` and others are
    /// refused) and expiry against our clock.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        (claims.exp > now.timestamp()).then_some(claims)
    }
}

/// Reads a key file of at least 32 bytes, or creates one (mode 0600, never
/// world-readable even for an instant).
pub fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= 32 => return Ok(secret),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than 32 bytes; delete it to regenerate",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    // Written aside, then linked into place (which, unlike a rename,
    // never replaces a secret another process just made): a crash
    // mid-write leaves no short secret that would stop every later start.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // Left by a crash of an earlier process with our pid (often 1 in a container).
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(&secret)?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    match linked {
        // Another process made it meanwhile: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return std::fs::read(path),
        r => r?,
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(secret.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn sign_then_verify_and_refusals() {
        let keys = TokenKeys::from_secret(&[7u8; 32]);
        let now = Utc::now();
        let (t, jti) = keys.sign(3, now, now + chrono::Duration::minutes(5));
        let c = keys.verify(&t, now).expect("valid");
        assert_eq!((c.sub.as_str(), c.jti.as_str()), ("3", jti.as_str()));

        assert!(keys.verify(&t, now + chrono::Duration::minutes(6)).is_none(), "expired");
        assert!(TokenKeys::from_secret(&[8u8; 32]).verify(&t, now).is_none(), "other key");

        let mut parts: Vec<&str> = t.split('.').collect();
        let none_header = b64(r#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none_header;
        assert!(keys.verify(&format!("{}.{}.", parts[0], parts[1]), now).is_none(), "alg none");
        let hs512 = b64(r#"{"alg":"HS512","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{hs512}.{}.{}", parts[1], parts[2]), now).is_none(), "other alg");
        let forged = b64(&format!(r#"{{"sub":"1","jti":"{jti}","iat":0,"exp":9999999999}}"#));
        let t2: Vec<&str> = t.split('.').collect();
        assert!(keys.verify(&format!("{}.{forged}.{}", t2[0], t2[2]), now).is_none(), "tampered claims");
        assert!(keys.verify("garbage", now).is_none());
    }

    #[test]
    fn secret_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("jwt.secret");
        let a = TokenKeys::load_or_create(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let b = TokenKeys::load_or_create(&p).unwrap();
        let now = Utc::now();
        let (t, _) = a.sign(1, now, now + chrono::Duration::minutes(1));
        assert!(b.verify(&t, now).is_some());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["jwt.secret"], "no temporary file left behind");
    }
}
