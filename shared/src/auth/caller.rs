//! Authenticates a request: a bearer token (preferred) or the `accessToken`
//! cookie, a signature and expiry check, an open session, and — for a
//! cookie-authenticated state change — CSRF.

use lambda_http::Request;

use super::tokens::{Claims, Role, TokenError, TokenKind};
use super::{cookies, csrf, rate, sessions};
use crate::app::App;
use crate::domain::{AdminId, ChurchId};
use crate::error::{ApiError, During};

/// The verified caller. Its church id is the only one a request may touch.
#[derive(Debug, Clone)]
pub struct Caller {
    pub church_id: ChurchId,
    pub admin_id: AdminId,
    pub role: Role,
    pub session_id: String,
}

impl Caller {
    /// Only the registrant may manage co-admins, billing and the sending number.
    pub fn require_primary(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Primary => Ok(()),
            Role::CoAdmin => Err(ApiError::Forbidden {
                code: "primary_admin_only",
                message: "only the primary admin may do this".into(),
            }),
        }
    }
}

fn unauthorized(code: &'static str) -> ApiError {
    ApiError::Unauthorized { code }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A JWT's three parts. The frontend sends `Bearer cookie-based` while its
/// `accessToken` cookie holds the token: that is no token, and the cookie
/// is read instead (CSRF and all).
fn token_shaped(token: &str) -> bool {
    token.split('.').count() == 3
}

pub async fn authenticate(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let cookie = cookies::get(req.headers(), cookies::ACCESS);
    let (token, via_cookie) = match (bearer(req), cookie) {
        (Some(token), _) if token_shaped(token) => (token.to_owned(), false),
        (_, Some(cookie)) => (cookie, true),
        (Some(_), None) => return Err(unauthorized("token_invalid")),
        (None, None) => return Err(unauthorized("unauthenticated")),
    };
    let claims: Claims = app
        .tokens()?
        .verify(&token, TokenKind::Access, app.clock.now())
        .map_err(|e| match e {
            TokenError::Expired => unauthorized("token_expired"),
            TokenError::Invalid | TokenError::WrongKind => unauthorized("token_invalid"),
        })?;
    // The session and the church's plan in one round trip.
    let table = app.table.as_ref();
    let wanted = [
        sessions::key(&claims),
        crate::keys::church_profile(claims.church),
    ];
    let mut found = table
        .get_many(&wanted)
        .await
        .during("read the session and the church's profile")?
        .into_iter();
    let (session, profile) = (found.next().flatten(), found.next().flatten());
    let profile = profile
        .map(crate::store::from_item::<crate::directory::model::ChurchProfile>)
        .transpose()
        .during("read the church's plan")?;
    if session.is_none() {
        return Err(unauthorized("session_revoked"));
    }
    if via_cookie && csrf::changes_state(req.method()) {
        csrf::check(&app.config, req.headers())?;
    }
    if let Some(retry_after_secs) =
        rate::over_limit(table, claims.church, profile.as_ref(), app.clock.now())
            .await
            .during("count the church's requests this minute")?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    tracing::Span::current().record("church_id", tracing::field::display(claims.church));
    Ok(Caller {
        church_id: claims.church,
        admin_id: claims.sub,
        role: claims.role,
        session_id: claims.sid,
    })
}
