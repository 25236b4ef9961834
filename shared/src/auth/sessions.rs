//! Sessions: one per login, holding the id of the only refresh token that
//! may be used next. Refreshing rotates it; presenting an older one means
//! the token was stolen or replayed, so every session of the admin ends —
//! except within [`REUSE_GRACE`] of its rotation: several tabs of one
//! browser refresh at once with the same cookie, and all but the first
//! would otherwise end the family. Those get the same successor.
//!
//! Every decision is one conditional write (rotate: "jti is the one used";
//! replay: "previousJti is the one used and the grace has not ended"), so
//! no read can go stale between deciding and answering.

use chrono::{DateTime, Utc};

use super::model::{Next, Session};
use super::tokens::{Claims, Role, TokenError, TokenKind, TokenSigner};
use crate::domain::{AdminId, ChurchId};
use crate::keys;
use crate::ports::table::{Cond, Query, SortCond, Table, TableError, query_all};
use crate::store::{Entities, from_item};

/// How long a rotated refresh token still answers (with its successor).
pub const REUSE_GRACE: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("refresh token is invalid: {0}")]
    BadToken(#[from] TokenError),
    #[error("session has ended")]
    Ended,
    #[error("refresh token was already used; every session of the admin is revoked")]
    Reused,
    #[error("could not sign a token")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Table(#[from] TableError),
}

fn pair(
    signer: &TokenSigner,
    admin: AdminId,
    church: ChurchId,
    role: Role,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<(TokenPair, Claims), SessionError> {
    let (access_token, _) = signer.issue(TokenKind::Access, admin, church, role, sid, now)?;
    let (refresh_token, refresh) =
        signer.issue(TokenKind::Refresh, admin, church, role, sid, now)?;
    Ok((
        TokenPair {
            access_token,
            refresh_token,
        },
        refresh,
    ))
}

/// Starts a session (login, registration) and returns its first tokens.
pub async fn start(
    table: &dyn Table,
    signer: &TokenSigner,
    admin: AdminId,
    church: ChurchId,
    role: Role,
    now: DateTime<Utc>,
) -> Result<TokenPair, SessionError> {
    let sid = ulid::Ulid::new().to_string();
    let (tokens, refresh) = pair(signer, admin, church, role, &sid, now)?;
    let session = Session::new(
        admin,
        &sid,
        church,
        role,
        refresh.jti,
        now.to_rfc3339(),
        refresh.exp,
    );
    table.save(&session, Some(Cond::NotExists)).await?;
    Ok(tokens)
}

/// Trades a refresh token for a new pair; a token works once (or again
/// within its grace window, for the same successor).
pub async fn rotate(
    table: &dyn Table,
    signer: &TokenSigner,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<TokenPair, SessionError> {
    let claims = signer.verify(refresh_token, TokenKind::Refresh, now)?;
    // A removed admin's sessions end even if revoking them failed after the
    // delete: the admin record is the authority, not the session items.
    if table
        .get(&keys::admin(claims.church, claims.sub))
        .await?
        .is_none()
    {
        revoke_all(table, claims.sub).await?;
        return Err(SessionError::Ended);
    }
    let (tokens, next) = pair(
        signer,
        claims.sub,
        claims.church,
        claims.role,
        &claims.sid,
        now,
    )?;
    let stored = Next {
        jti: next.jti,
        iat: next.iat,
        exp: next.exp,
    };
    let grace_until = (now + REUSE_GRACE).timestamp();
    let (update, expected) = Session::rotate(&claims.jti, &stored, grace_until, &now.to_rfc3339());
    match table.update(&key(&claims), update, Some(expected)).await {
        Ok(_) => Ok(tokens),
        Err(TableError::ConditionFailed) => replay(table, signer, &claims, now).await,
        Err(e) => Err(e.into()),
    }
}

/// `claims`' token was already rotated: within the grace window, answer its
/// successor again (and a fresh access token); otherwise it is a reuse.
async fn replay(
    table: &dyn Table,
    signer: &TokenSigner,
    claims: &Claims,
    now: DateTime<Utc>,
) -> Result<TokenPair, SessionError> {
    let key = key(claims);
    let (update, within_grace) = Session::replay(&claims.jti, now.timestamp());
    match table.update(&key, update, Some(within_grace)).await {
        Ok(item) => {
            let session: Session = from_item(item)?;
            let issued_at = session.issued_at.ok_or(SessionError::Ended)?;
            let successor = Claims {
                jti: session.jti,
                iat: issued_at,
                exp: session.ttl,
                ..claims.clone()
            };
            let (access_token, _) = signer.issue(
                TokenKind::Access,
                claims.sub,
                claims.church,
                claims.role,
                &claims.sid,
                now,
            )?;
            Ok(TokenPair {
                access_token,
                refresh_token: signer.sign(&successor)?,
            })
        }
        Err(TableError::ConditionFailed) => {
            // Past the grace, or a token older than the last rotation: a
            // replay by someone else. The family (and every other) ends.
            if table.get(&key).await?.is_some() {
                revoke_all(table, claims.sub).await?;
                Err(SessionError::Reused)
            } else {
                Err(SessionError::Ended)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The session item a token names.
pub fn key(claims: &Claims) -> crate::ports::table::Key {
    keys::session(claims.sub, &claims.sid)
}

/// Whether the session a token names is still open (logout and reuse end it).
pub async fn is_open(table: &dyn Table, claims: &Claims) -> Result<bool, TableError> {
    Ok(table
        .get(&keys::session(claims.sub, &claims.sid))
        .await?
        .is_some())
}

pub async fn end(table: &dyn Table, admin: AdminId, sid: &str) -> Result<(), TableError> {
    table
        .delete(&keys::session(admin, sid), None)
        .await
        .map(drop)
}

pub async fn revoke_all(table: &dyn Table, admin: AdminId) -> Result<(), TableError> {
    let query = Query::partition(keys::sessions(admin))
        .sort(SortCond::BeginsWith(keys::SESSION_PREFIX.into()));
    for item in query_all(table, query).await? {
        table
            .delete(&crate::ports::table::Key::of(&item)?, None)
            .await?;
    }
    Ok(())
}
