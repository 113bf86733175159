//! Access tokens (HS256 JWTs naming tenant, user and session) and opaque refresh tokens
//! (random, stored only as a SHA-256 hash).

use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Session (token family) id.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    /// Always `access`: a token made for another purpose is refused.
    pub typ: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is exact: a short-lived token should not live a minute longer.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match decode::<AccessClaims>(token, &self.decoding, &validation) {
            Ok(data) if data.claims.typ == "access" => Ok(data.claims),
            Ok(_) => Err(TokenError::Invalid),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// A new refresh token: `<tenant id>.<256 random bits, base64url>`. The tenant id is not
/// secret; it tells the server where to look the token up.
pub fn new_refresh_token(tenant_id: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{tenant_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The tenant a refresh token belongs to, when it is well-formed.
pub fn refresh_token_tenant(token: &str) -> Option<&str> {
    let (tenant, secret) = token.split_once('.')?;
    (uuid::Uuid::parse_str(tenant).is_ok() && secret.len() >= 40).then_some(tenant)
}

/// What is stored instead of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            sub: "u".into(),
            tid: "t".into(),
            sid: "s".into(),
            iat: 0,
            exp,
            typ: "access".into(),
        }
    }

    #[test]
    fn tokens_signed_with_another_key_are_invalid() {
        let a = TokenKeys::new(b"key-a-key-a-key-a-key-a-key-a-00");
        let b = TokenKeys::new(b"key-b-key-b-key-b-key-b-key-b-00");
        let far = chrono::Utc::now().timestamp() as u64 + 600;
        let token = a.issue(&claims(far)).unwrap();
        assert_eq!(a.verify(&token).unwrap(), claims(far));
        assert_eq!(b.verify(&token), Err(TokenError::Invalid));
        assert_eq!(a.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_tokens_are_reported_as_expired() {
        let keys = TokenKeys::new(b"key-a-key-a-key-a-key-a-key-a-00");
        let past = chrono::Utc::now().timestamp() as u64 - 1;
        let token = keys.issue(&claims(past)).unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn refresh_tokens_are_random_and_name_their_tenant() {
        let tenant = uuid::Uuid::now_v7().to_string();
        let a = new_refresh_token(&tenant);
        let b = new_refresh_token(&tenant);
        assert_ne!(a, b);
        assert_eq!(refresh_token_tenant(&a), Some(tenant.as_str()));
        assert_eq!(refresh_token_tenant("nonsense"), None);
        assert_ne!(hash_refresh_token(&a), a);
        assert_eq!(hash_refresh_token(&a).len(), 64);
    }
}
