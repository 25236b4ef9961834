//! Access (15 min) and refresh (7 days) tokens: HS256 JWTs naming the
//! church, the admin, their role and the session they belong to.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{AdminId, ChurchId};

pub const ACCESS_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TTL: Duration = Duration::days(7);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Primary,
    CoAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "PRIMARY",
            Role::CoAdmin => "CO_ADMIN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: AdminId,
    pub church: ChurchId,
    pub role: Role,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
    /// Unique per token: a refresh token works once.
    pub jti: String,
    pub kind: TokenKind,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed or its signature does not match")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token is of the wrong kind")]
    WrongKind,
}

pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Other versions of the secret (being rotated in, or out): their
    /// tokens verify too, so a rotation logs no one out.
    accepted: Vec<DecodingKey>,
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            accepted: Vec::new(),
        }
    }

    /// Also verifies tokens signed with `others` (new ones are signed with the current secret).
    pub fn accepting<'a>(mut self, others: impl IntoIterator<Item = &'a [u8]>) -> Self {
        self.accepted = others.into_iter().map(DecodingKey::from_secret).collect();
        self
    }

    pub fn issue(
        &self,
        kind: TokenKind,
        admin: AdminId,
        church: ChurchId,
        role: Role,
        sid: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        let ttl = match kind {
            TokenKind::Access => ACCESS_TTL,
            TokenKind::Refresh => REFRESH_TTL,
        };
        let claims = Claims {
            sub: admin,
            church,
            role,
            sid: sid.to_owned(),
            jti: ulid::Ulid::new().to_string(),
            kind,
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        Ok((self.sign(&claims)?, claims))
    }

    /// Signs `claims` as they are. HS256 is deterministic, so the same claims
    /// give the same token: how a refresh replayed within its grace window
    /// answers the very successor the first refresh got.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Checks signature, algorithm, kind and expiry against `now` (the
    /// app's clock, so tests can pin it).
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp".to_owned()].into();
        let claims = std::iter::once(&self.decoding)
            .chain(&self.accepted)
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &validation).ok())
            .ok_or(TokenError::Invalid)?
            .claims;
        if claims.kind != kind {
            return Err(TokenError::WrongKind);
        }
        if claims.exp <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(signer: &TokenSigner, kind: TokenKind, now: DateTime<Utc>) -> String {
        signer
            .issue(
                kind,
                AdminId::generate(),
                ChurchId::generate(),
                Role::Primary,
                "s1",
                now,
            )
            .unwrap()
            .0
    }

    #[test]
    fn tokens_verify_until_they_expire() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let access = issue(&signer, TokenKind::Access, now);
        assert_eq!(
            signer.verify(&access, TokenKind::Access, now).unwrap().role,
            Role::Primary
        );
        assert_eq!(
            signer.verify(&access, TokenKind::Access, now + Duration::minutes(16)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            signer.verify(&access, TokenKind::Refresh, now),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn tampered_and_foreign_tokens_are_invalid() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let other = TokenSigner::new(b"another secret, also 32 bytes lo");
        let now = Utc::now();
        let token = issue(&signer, TokenKind::Access, now);
        assert_eq!(
            other.verify(&token, TokenKind::Access, now),
            Err(TokenError::Invalid)
        );
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert_eq!(
            signer.verify(&parts.join("."), TokenKind::Access, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify("garbage", TokenKind::Access, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn after_a_rotation_tokens_of_the_previous_secret_still_verify() {
        let old = b"the secret before rotation, 32b!";
        let new = b"the secret after the rotation 32";
        let now = Utc::now();
        let before = issue(&TokenSigner::new(old), TokenKind::Refresh, now);
        let rotated = TokenSigner::new(new).accepting([old.as_slice()]);
        assert!(rotated.verify(&before, TokenKind::Refresh, now).is_ok());
        let after = issue(&rotated, TokenKind::Access, now);
        assert!(
            TokenSigner::new(new)
                .verify(&after, TokenKind::Access, now)
                .is_ok(),
            "new tokens are signed with the current secret"
        );
        // Once the overlap ends (the previous version is gone), old tokens stop working.
        assert_eq!(
            TokenSigner::new(new).verify(&before, TokenKind::Refresh, now),
            Err(TokenError::Invalid)
        );
    }
}
