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
        let jwk = cached
            .as_ref()
            .and_then(|(set, _)| pick(set))
            .ok_or_else(|| OidcError::IdToken("signed by a key the provider does not publish".into()))?;
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
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| refused(e.to_string()))?.claims;
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

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "docknap".into(),
            client_secret: "s".into(),
            roles_claim: "groups".into(),
            admin_groups: vec!["a".into()],
            operator_groups: vec![],
            viewer_groups: vec![],
            scopes: "openid".into(),
            name: "x".into(),
            ca_pem: None,
        }
    }

    #[tokio::test]
    async fn only_a_token_of_this_provider_for_this_client_and_flow_passes() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        // Primed: no request is made for a known key, or within a minute of the last fetch.
        let keys = Keys(tokio::sync::Mutex::new(Some((Arc::new(JwkSet { keys: vec![jwk] }), Instant::now()))));
        let client = ProviderClient::new(None).unwrap();
        let c = config();
        let now = Utc::now();
        let claims = |change: &dyn Fn(&mut Map<String, Value>)| {
            let mut m =
                json!({"iss": c.issuer, "aud": c.client_id, "sub": "u1", "exp": now.timestamp() + 300, "nonce": "n1"})
                    .as_object()
                    .unwrap()
                    .clone();
            change(&mut m);
            m
        };
        let sign = |m: &Map<String, Value>, kid: &str| {
            let mut h = Header::new(Algorithm::ES256);
            h.kid = Some(kid.into());
            jsonwebtoken::encode(&h, m, &key).unwrap()
        };
        let good = sign(&claims(&|_| {}), "k1");
        assert_eq!(keys.verify(&client, "https://keys.invalid/", &c, &good, "n1", now).await.unwrap()["sub"], "u1");

        let set = |k: &'static str, v: Value| move |m: &mut Map<String, Value>| drop(m.insert(k.into(), v.clone()));
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let parts: Vec<&str> = good.split('.').collect();
        let forged_payload = sign(&claims(&set("sub", json!("admin"))), "k1");
        let refused = [
            ("audience", sign(&claims(&set("aud", json!("other-client"))), "k1")),
            ("issuer", sign(&claims(&set("iss", json!("https://evil.example.com"))), "k1")),
            ("expired", sign(&claims(&set("exp", json!(now.timestamp() - 61))), "k1")),
            ("nonce", sign(&claims(&set("nonce", json!("n2"))), "k1")),
            ("no subject", sign(&claims(&|m| drop(m.remove("sub"))), "k1")),
            ("unknown key", sign(&claims(&|_| {}), "k2")),
            (
                "HS256 with the secret",
                jsonwebtoken::encode(&hs, &claims(&|_| {}), &EncodingKey::from_secret(b"s")).unwrap(),
            ),
            ("tampered", format!("{}.{}.{}", parts[0], forged_payload.split('.').nth(1).unwrap(), parts[2])),
        ];
        for (what, token) in refused {
            let r = keys.verify(&client, "https://keys.invalid/", &c, &token, "n1", now).await;
            assert!(matches!(r, Err(OidcError::IdToken(_))), "{what}: {r:?}");
        }
        let later = now + chrono::Duration::seconds(300 + 59);
        assert!(
            keys.verify(&client, "https://keys.invalid/", &c, &good, "n1", later).await.is_ok(),
            "within the leeway"
        );
    }
}
