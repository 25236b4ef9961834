//! `/api/auth/*` and `/api/csrf-token`.

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::login::{self, LoginError};
use crate::auth::sessions::{self, SessionError, TokenPair};
use crate::auth::tokens::{ACCESS_TTL, REFRESH_TTL};
use crate::auth::{authenticate, cookies, csrf, password_reset, passwords};
use crate::directory::admins::{self, NewAdmin};
use crate::directory::churches::{self, RegisterError, Registration};
use crate::error::{ApiError, During};
use crate::http::HttpResult;
use crate::http::request::{Fields, json};
use crate::http::response;

/// Refresh cookies only travel to the auth routes.
const REFRESH_PATH: &str = "/api/auth";

fn with_cookies(mut response: Response<Body>, cookies: &[String]) -> Response<Body> {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn token_cookies(req: &Request, tokens: &TokenPair) -> Vec<String> {
    let https = cookies::is_https(req.headers());
    vec![
        cookies::set(
            cookies::ACCESS,
            &tokens.access_token,
            "/",
            ACCESS_TTL.num_seconds(),
            https,
        ),
        cookies::set(
            cookies::REFRESH,
            &tokens.refresh_token,
            REFRESH_PATH,
            REFRESH_TTL.num_seconds(),
            https,
        ),
    ]
}

fn cleared_cookies(req: &Request) -> Vec<String> {
    let https = cookies::is_https(req.headers());
    vec![
        cookies::set(cookies::ACCESS, "", "/", 0, https),
        cookies::set(cookies::REFRESH, "", REFRESH_PATH, 0, https),
    ]
}

fn session_error(e: SessionError) -> ApiError {
    match e {
        SessionError::BadToken(_) => ApiError::Unauthorized {
            code: "refresh_invalid",
        },
        SessionError::Ended => ApiError::Unauthorized {
            code: "session_revoked",
        },
        SessionError::Reused => ApiError::Unauthorized {
            code: "refresh_reused",
        },
        other => ApiError::internal_at("rotate the session", other),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    email: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    church_name: Option<String>,
}

/// `POST /api/auth/register`
pub async fn register(app: &App, req: Request) -> HttpResult {
    let body: RegisterBody = json(&req)?;
    let mut fields = Fields::default();
    let email = fields.email("email", body.email.as_deref());
    let password = match body.password.as_deref() {
        None => {
            fields.error("password", "required", "password is required");
            None
        }
        Some(p) => match passwords::strong_enough(p) {
            Ok(()) => Some(p.to_owned()),
            Err(why) => {
                fields.error("password", "weak_password", why);
                None
            }
        },
    };
    let first_name = fields.text("firstName", body.first_name.as_deref(), 1, 100);
    let last_name = fields.text("lastName", body.last_name.as_deref(), 1, 100);
    let church_name = fields.text("churchName", body.church_name.as_deref(), 1, 200);
    fields.finish()?;
    let (Some(email), Some(password), Some(first_name), Some(last_name), Some(church_name)) =
        (email, password, first_name, last_name, church_name)
    else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };

    let password_hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .during("hash the password")?
        .during("hash the password")?;
    let now = app.clock.now();
    let registration = Registration {
        church_name,
        admin: NewAdmin {
            email,
            password_hash,
            first_name,
            last_name,
        },
    };
    let (church, admin) = churches::register(app.table.as_ref(), registration, now)
        .await
        .map_err(|e| match e {
            RegisterError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists".into(),
            },
            RegisterError::Table(e) => ApiError::internal_at("register the church", e),
        })?;
    let tokens = sessions::start(
        app.table.as_ref(),
        app.tokens()?.as_ref(),
        admin.view.id,
        church.id,
        admin.view.role,
        now,
    )
    .await
    .during("start the session")?;
    let data = json!({ "admin": admin.view, "church": church, "accessToken": tokens.access_token, "refreshToken": tokens.refresh_token });
    Ok(with_cookies(
        response::wrapped(StatusCode::CREATED, &data)?,
        &token_cookies(&req, &tokens),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

fn client_ip(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".into())
}

/// `POST /api/auth/login`
pub async fn login(app: &App, req: Request) -> HttpResult {
    let body: LoginBody = json(&req)?;
    let mut fields = Fields::default();
    let email = fields.email("email", body.email.as_deref());
    let password = fields.text("password", body.password.as_deref(), 1, 256);
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    let now = app.clock.now();
    let table = app.table.as_ref();
    let admin = login::check(table, &email, password, &client_ip(&req), now)
        .await
        .map_err(|e| match e {
            LoginError::Throttled { retry_after_secs } => {
                ApiError::TooManyRequests { retry_after_secs }
            }
            LoginError::InvalidCredentials => ApiError::Unauthorized {
                code: "invalid_credentials",
            },
            other => ApiError::internal_at("check the login", other),
        })?;
    let church = churches::view(table, admin.church_id)
        .await
        .during("read the admin's church")?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("admin without a church")))?;
    admins::touch_login(table, admin.church_id, admin.view.id, now)
        .await
        .during("record the login")?;
    let tokens = sessions::start(
        table,
        app.tokens()?.as_ref(),
        admin.view.id,
        church.id,
        admin.view.role,
        now,
    )
    .await
    .during("start the session")?;
    let body = json!({
        "success": true,
        "mfaRequired": false,
        "data": { "admin": admin.view, "church": church, "accessToken": tokens.access_token, "refreshToken": tokens.refresh_token },
    });
    Ok(with_cookies(
        response::json(StatusCode::OK, &body)?,
        &token_cookies(&req, &tokens),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: Option<Value>,
}

/// `POST /api/auth/refresh`: the refresh cookie (or, for older frontends, the body).
pub async fn refresh(app: &App, req: Request) -> HttpResult {
    let from_body = json::<RefreshBody>(&req)
        .ok()
        .and_then(|b| b.refresh_token)
        .and_then(|t| t.as_str().map(str::to_owned));
    let cookie = cookies::get(req.headers(), cookies::REFRESH);
    // A token in the body was read by the page itself (no forgery can know
    // it); only the cookie is sent by the browser on its own.
    if cookie.is_some() {
        csrf::check_refresh_cookie(&app.config, req.headers())?;
    }
    let Some(token) = cookie.or(from_body) else {
        return Err(ApiError::Unauthorized {
            code: "unauthenticated",
        });
    };
    match sessions::rotate(
        app.table.as_ref(),
        app.tokens()?.as_ref(),
        &token,
        app.clock.now(),
    )
    .await
    {
        Ok(tokens) => {
            let data =
                json!({ "accessToken": tokens.access_token, "refreshToken": tokens.refresh_token });
            Ok(with_cookies(
                response::wrapped(StatusCode::OK, &data)?,
                &token_cookies(&req, &tokens),
            ))
        }
        Err(e) => {
            let error = session_error(e);
            let request_id = crate::http::pipeline::request_id(&req);
            Ok(with_cookies(
                crate::http::pipeline::render(&error, &request_id),
                &cleared_cookies(&req),
            ))
        }
    }
}

/// `POST /api/auth/logout`: ends the session the tokens name; always clears cookies.
pub async fn logout(app: &App, req: Request) -> HttpResult {
    // A bearer token is never attached by the browser on its own; cookies are.
    let cookied = [cookies::ACCESS, cookies::REFRESH]
        .iter()
        .any(|name| cookies::get(req.headers(), name).is_some());
    if cookied && !req.headers().contains_key(header::AUTHORIZATION) {
        csrf::check_refresh_cookie(&app.config, req.headers())?;
    }
    let signer = app.tokens()?;
    let now = app.clock.now();
    let access = authenticate(app, &req)
        .await
        .ok()
        .map(|c| (c.admin_id, c.session_id));
    let refresh = cookies::get(req.headers(), cookies::REFRESH)
        .and_then(|t| {
            signer
                .verify(&t, crate::auth::tokens::TokenKind::Refresh, now)
                .ok()
        })
        .map(|c| (c.sub, c.sid));
    if let Some((admin, sid)) = access.or(refresh) {
        sessions::end(app.table.as_ref(), admin, &sid)
            .await
            .during("end the session")?;
    }
    Ok(with_cookies(
        response::json(StatusCode::OK, &json!({ "success": true }))?,
        &cleared_cookies(&req),
    ))
}

/// `GET /api/auth/me`
pub async fn me(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let table = app.table.as_ref();
    let (admin, church) = tokio::try_join!(
        admins::get(table, caller.church_id, caller.admin_id),
        churches::view(table, caller.church_id)
    )
    .during("read the admin and church")?;
    let (Some(admin), Some(church)) = (admin, church) else {
        return Err(ApiError::Unauthorized {
            code: "session_revoked",
        });
    };
    let mut data = serde_json::to_value(&admin.view).during("encode the admin")?;
    data["church"] = json!(church);
    response::wrapped(StatusCode::OK, &data)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WelcomeBody {
    user_role: Option<String>,
}

/// `POST /api/auth/complete-welcome`
pub async fn complete_welcome(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let body: WelcomeBody = json(&req)?;
    let mut fields = Fields::default();
    let user_role = fields.text("userRole", body.user_role.as_deref(), 1, 50);
    fields.finish()?;
    let user_role = user_role.unwrap_or_default();
    let admin = admins::complete_welcome(
        app.table.as_ref(),
        caller.church_id,
        caller.admin_id,
        &user_role,
    )
    .await
    .during("complete the welcome")?
    .ok_or(ApiError::Unauthorized {
        code: "session_revoked",
    })?;
    response::wrapped(StatusCode::OK, &admin)
}

/// `GET /api/csrf-token`: a fresh token, in the body and as the matching cookie.
pub async fn csrf_token(_app: &App, req: Request) -> HttpResult {
    let token = csrf::new_token();
    let https = cookies::is_https(req.headers());
    let cookie = cookies::set(cookies::CSRF, &token, "/", 24 * 60 * 60, https);
    Ok(with_cookies(
        response::json(StatusCode::OK, &json!({ "csrfToken": token }))?,
        &[cookie],
    ))
}

#[derive(Deserialize)]
struct ResetBody {
    email: Option<String>,
}

/// `POST /api/auth/password-reset` — 202 whether or not the email exists.
pub async fn password_reset(app: &App, req: Request) -> HttpResult {
    let body: ResetBody = json(&req)?;
    let mut fields = Fields::default();
    let email = fields.email("email", body.email.as_deref());
    fields.finish()?;
    if let Some(email) = email {
        password_reset::request(
            app.table.as_ref(),
            app.events.as_ref(),
            &email,
            app.clock.now(),
        )
        .await?;
    }
    response::json(
        StatusCode::ACCEPTED,
        &json!({ "success": true, "message": "If the address has an account, a reset link is on its way." }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetConfirmBody {
    token: Option<String>,
    new_password: Option<String>,
}

/// `POST /api/auth/password-reset/confirm` — a token works once; every session ends.
pub async fn password_reset_confirm(app: &App, req: Request) -> HttpResult {
    let body: ResetConfirmBody = json(&req)?;
    let mut fields = Fields::default();
    let token = fields.text("token", body.token.as_deref(), 1, 200);
    let password = match body.new_password.as_deref() {
        None => {
            fields.error("newPassword", "required", "newPassword is required");
            None
        }
        Some(p) => passwords::strong_enough(p)
            .map(|()| p.to_owned())
            .map_err(|why| fields.error("newPassword", "weak_password", why))
            .ok(),
    };
    fields.finish()?;
    let (Some(token), Some(password)) = (token, password) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    password_reset::confirm(app.table.as_ref(), &token, password, app.clock.now()).await?;
    response::json(StatusCode::OK, &json!({ "success": true }))
}
