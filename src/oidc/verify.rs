//! The ID token check: signature by the provider's key (found by `kid`),
//! asymmetric algorithms only, `iss`, `aud`, `exp` (against our clock, with
//! a little leeway for clock skew) and the flow's `nonce`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::OidcError;
use super::http::ProviderClient;
use crate::config::OidcConfig;

const LEEWAY_SECS: i64 = 60;
/// A token naming a key we do not hold makes us fetch the set again, at
/// most this often (a forged `kid` must not turn us into a request pump).
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// The provider's signing keys, kept between sign-ins.
#[derive(Default)]
pub struct Keys(tokio::sync::Mutex<Option<(Arc<JwkSet>, Instant)>>);

impl Keys {
    async fn key(&self, client: &ProviderClient, jwks_uri: &str, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let mut cached = self.0.lock().await;
        let pick = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            // No `kid`: only unambiguous with a single key.
            None => (set.keys.len() == 1).then(|| set.keys[0].clone()),
        };
        let stale = cached.as_ref().is_none_or(|(set, at)| pick(set).is_none() && at.elapsed() >= REFETCH_AFTER);
        if stale {
            let set: JwkSet = client.get_json(jwks_uri, None).await?;
            *cached = Some((Arc::new(set), Instant::now()));
        }
        let jwk = cached.as_ref().and_then(|(set, _)| pick(set)).ok_or_else(|| OidcError::IdToken("signed by a key the provider does not publish".into()))?;
        DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::IdToken(format!("the provider's key is unusable: {e}")))
    }

    /// The ID token's claims, once every check passed.
    pub async fn verify(
        &self,
        client: &ProviderClient,
        jwks_uri: &str,
        config: &OidcConfig,
        token: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, OidcError> {
        let refused = |m: String| OidcError::IdToken(m);
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(e.to_string()))?;
        use Algorithm::*;
        // Never HS* (the client secret would be the key) nor `none`.
        if !matches!(header.alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384) {
            return Err(refused(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let key = self.key(client, jwks_uri, header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&config.issuer]);
        v.set_audience(&[&config.client_id]);
        v.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
        // Expiry against our clock below, not the system's.
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| refused(e.to_string()))?.claims;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| refused("no expiry".into()))?;
        if exp + LEEWAY_SECS <= now.timestamp() {
            return Err(refused("expired".into()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(refused("the nonce is not this sign-in's".into()));
        }
        Ok(claims)
    }
}
