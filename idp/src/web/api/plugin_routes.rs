//! `/plugins/<name>/…`: the routes a plugin's manifest declares. The host
//! authenticates before the plugin sees anything — the SSO session (and a
//! CSRF check on POST) for user pages, an access token carrying the route's
//! scopes plus a still-valid permission for APIs, the admin token for admin
//! routes — then wraps pages in the theme.
use crate::domain::assurance::Factor;
use crate::kit::cookies;
use crate::kit::extract::PageError;
use crate::kit::pages::{error_page, page};
use crate::oidc::flow::see_other;
use crate::oidc::userinfo::bearer_token;
use crate::plugins::{Access, CallScope, Plugin, PluginError, Request, Response as PluginResponse, RouteAuth};
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Incoming {
    method: Method,
    headers: HeaderMap,
    jar: CookieJar,
    query: Option<String>,
    body: Bytes,
}

pub async fn root(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    dispatch(state, name, "/".into(), Incoming { method, headers, jar, query, body }).await
}

pub async fn nested(
    State(state): State<AppState>,
    Path((name, rest)): Path<(String, String)>,
    method: Method,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    dispatch(state, name, format!("/{rest}"), Incoming { method, headers, jar, query, body }).await
}

fn api_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (status, Json(json!({ "error": code, "error_description": description }))).into_response();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        let challenge = format!("Bearer realm=\"idp\", error=\"{code}\"");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    res
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

async fn dispatch(state: AppState, name: String, path: String, inc: Incoming) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &inc.headers, None);
    let not_found = || PageError::Refused(StatusCode::NOT_FOUND, "plugin_not_found");
    let plugin = state.plugins.find(&name).cloned().ok_or_else(not_found)?;
    let route = plugin.route(inc.method.as_str(), &path).cloned().ok_or_else(not_found)?;
    if !state.plugins.enabled(&name).await.map_err(PageError::unavailable)? {
        return Err(not_found());
    }
    let is_form = inc
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut req = Request {
        method: inc.method.to_string(),
        path,
        base: format!("/plugins/{name}"),
        query: pairs(inc.query.as_deref().unwrap_or("").as_bytes()),
        locale: locale.to_string(),
        ..Default::default()
    };
    if is_form {
        req.form = pairs(&inc.body);
    } else {
        req.body = String::from_utf8_lossy(&inc.body).into_owned();
    }
    Ok(match route.auth {
        RouteAuth::User => user_route(&state, &plugin, req, inc.jar).await?,
        RouteAuth::Api => api_route(&state, &plugin, req, &route.scopes, &inc.headers).await,
        RouteAuth::Admin => admin_route(&state, &plugin, req, &inc.headers, inc.jar).await,
    })
}

/// Pages for the signed-in user; the user is the subject and the plugin
/// may read the profile fields its manifest declares.
async fn user_route(
    state: &AppState,
    plugin: &Arc<Plugin>,
    mut req: Request,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let locale = req.locale.clone();
    // C1: plugin user pages are personal — never for a session acting for
    // an enterprise (the plugin would see the person as its subject).
    let session = match crate::kit::personal::session(state, &jar, &locale).await? {
        Some(s) => s,
        // Sign in first, then come back to this page.
        None if req.method == "GET" => {
            let mut back = format!("{}{}", req.base, req.path);
            if !req.query.is_empty() {
                back.push('?');
                back.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&req.query).finish());
            }
            return Ok(cookies::sign_in_then(state, jar, &back));
        }
        None => return Err(PageError::Refused(StatusCode::UNAUTHORIZED, "plugin_sign_in")),
    };
    if req.method == "POST" && !cookies::csrf_ok(state, &jar, req.form("csrf").unwrap_or("")) {
        return Err(PageError::forbidden("error_csrf"));
    }
    let (jar, browser) = cookies::browser(state, jar);
    req.csrf = Some(cookies::csrf_token(state, &browser));
    // Plugins see the `sub` apps see; the call scope keeps the account.
    req.subject = Some(crate::domain::tokens::subjects::of_account(&state.store, &session.user_id).await?);
    let face_at = session.factors.iter().filter(|e| e.factor == Factor::Face).map(|e| e.at).max();
    let call = CallScope {
        plugin: plugin.name().into(),
        subject: session.user_id,
        access: Access::Fields(plugin.manifest.profile_fields.clone()),
        face_at,
        sector: None,
    };
    let res = state.plugins.handle(plugin, &req, Some(call)).await;
    Ok((jar, render(state, &locale, res, true)).into_response())
}

/// APIs for relying apps: a live access token with every scope the route
/// names, from a client still permitted those scopes (checked per call).
async fn api_route(
    state: &AppState,
    plugin: &Arc<Plugin>,
    mut req: Request,
    needed: &[String],
    headers: &HeaderMap,
) -> Response {
    // RFC 9449: a DPoP-bound token needs its proof here too.
    let path = format!("{}{}", req.base, req.path);
    let token = match crate::oidc::dpop::resource_token(state, headers, &req.method, &path).await {
        Ok(t) => t,
        Err(res) => return res,
    };
    let Some(token) = token else {
        return api_error(StatusCode::UNAUTHORIZED, "invalid_token", "an access token is required");
    };
    let claims = match state.tokens.check_access_token(&state.store, token, state.clock.now()).await {
        Ok(Some(c)) => c,
        Ok(None) => return api_error(StatusCode::UNAUTHORIZED, "invalid_token", "the access token is not valid"),
        Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    };
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let scope = crate::domain::clients::scopes::ScopeSet::parse(&text("scope"));
    if !needed.iter().all(|s| scope.contains(s)) {
        return api_error(StatusCode::FORBIDDEN, "insufficient_scope", &format!("needs scope {}", needed.join(" ")));
    }
    let client_id = text("client_id");
    match state.plugins.client_may(plugin, &client_id, needed).await {
        Ok(true) => {}
        Ok(false) => {
            return api_error(StatusCode::FORBIDDEN, "insufficient_scope", "this client is no longer permitted");
        }
        Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    }
    // A user token speaks for its subject; a client_credentials token for
    // the client alone.
    // A token acting for someone (C4) keeps the principal as its subject,
    // which names no account: the actor's profile is never released.
    let account =
        match crate::domain::tokens::subjects::account_of_token(&state.store, &claims, state.clock.now()).await {
            Ok(_) if claims.contains_key("act") => claims.contains_key("gid").then(|| text("sub")),
            Ok(a) => a,
            Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
        };
    // The app's own subjects: a pairwise app's plugin answers name the
    // person by the `sub` its token carries, never the public one.
    let (sector, client_name) = match state.clients.find(&client_id).await {
        Ok(c) => (
            c.as_ref().and_then(|c| c.pairwise_sector().map(str::to_string)),
            c.map(|c| c.name).filter(|n| !n.trim().is_empty()),
        ),
        Err(_) => return api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "retry later"),
    };
    let call = account.map(|subject| CallScope {
        plugin: plugin.name().into(),
        subject,
        access: Access::Scopes(scope.clone()),
        face_at: None,
        sector,
    });
    req.subject = call.as_ref().map(|_| text("sub"));
    req.client_id = Some(client_id);
    req.client_name = client_name;
    req.scopes = scope.iter().map(String::from).collect();
    let locale = req.locale.clone();
    render(state, &locale, state.plugins.handle(plugin, &req, call).await, false)
}

/// Admin routes: `Authorization: Bearer <token>` whose SHA-256 is
/// `plugins.admin_token_sha256`; closed when that is not configured. The
/// token names no person, so the plugin records `admin-token` as the operator.
async fn admin_route(
    state: &AppState,
    plugin: &Arc<Plugin>,
    mut req: Request,
    headers: &HeaderMap,
    jar: CookieJar,
) -> Response {
    use subtle::ConstantTimeEq;
    // Without a bearer token, a browser signed in as a platform admin
    // (the console's gate) opens the admin pages.
    if bearer_token(headers).is_none() && crate::web::admin::has_session(state, &jar) {
        return staff_admin_route(state, plugin, req, headers, jar).await;
    }
    let Some(expected) = state.config.plugins.admin_token_sha256.as_deref() else {
        return api_error(StatusCode::FORBIDDEN, "access_denied", "plugin administration is not configured");
    };
    let presented = bearer_token(headers).unwrap_or_default();
    let digest = crate::plugins::loader::hex(&<sha2::Sha256 as sha2::Digest>::digest(presented.as_bytes()));
    if presented.is_empty() || !bool::from(digest.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes())) {
        return api_error(StatusCode::UNAUTHORIZED, "invalid_token", "the admin token is not valid");
    }
    req.operator = Some("admin-token".into());
    let locale = req.locale.clone();
    render(state, &locale, state.plugins.handle(plugin, &req, None).await, false)
}

/// A plugin admin route opened from the console: past the console's gate,
/// a platform admin; a POST carries the page's CSRF token and a fresh
/// strong factor. Each call is audited with the staff member's id
/// (`plugin_admin_call`); the plugin's pages get a CSRF token for forms
/// and the staff member's username as the operator it records.
async fn staff_admin_route(
    state: &AppState,
    plugin: &Arc<Plugin>,
    mut req: Request,
    headers: &HeaderMap,
    jar: CookieJar,
) -> Response {
    use crate::domain::staff::Permission;
    let locale = req.locale.clone();
    let console = match crate::web::admin::console_from(state, headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = console.staff.require(Permission::ManagePlugins) {
        return crate::web::admin::refused(e).into_response();
    }
    if req.method != "GET" {
        if !cookies::csrf_ok(state, &jar, req.form("csrf").unwrap_or("")) {
            return error_page(state, StatusCode::FORBIDDEN, &locale, "error_csrf");
        }
        if let Some(refusal) = console.stale(state) {
            return refusal.into_response();
        }
    }
    let path = format!("{}{}", req.base, req.path);
    let now = state.clock.now();
    if let Err(e) =
        crate::domain::staff::plugins::admin_call(&state.store, &console.staff, plugin.name(), &req.method, &path, now)
            .await
    {
        return crate::web::admin::refused(e).into_response();
    }
    tracing::info!("plugin {} admin {} {} by staff:{}", plugin.name(), req.method, path, console.staff.user_id);
    let (jar, browser) = cookies::browser(state, jar);
    req.csrf = Some(cookies::csrf_token(state, &browser));
    req.operator = Some(format!("staff:{}", console.staff.username));
    (jar, render(state, &locale, state.plugins.handle(plugin, &req, None).await, true)).into_response()
}

/// Bytes from a plugin, only of a type a browser will not run as a page.
fn binary(state: &AppState, locale: &str, status: u16, content_type: &str, b64: &str, name: Option<&str>) -> Response {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64);
    let (Ok(bytes), true) = (bytes, idp_plugin_sdk::BINARY_TYPES.contains(&content_type)) else {
        tracing::error!("plugin binary response refused (type {content_type:?} or bad encoding)");
        return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, locale, "plugin_failed");
    };
    let mut res = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Only a plain file name: no quotes, separators or control characters.
    let safe = name.filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
    if let Some(v) = safe.and_then(|n| HeaderValue::from_str(&format!("attachment; filename=\"{n}\"")).ok()) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

fn render(state: &AppState, locale: &str, res: Result<PluginResponse, PluginError>, pages: bool) -> Response {
    let mut out = match res {
        Ok(PluginResponse::Page { status, title, html }) => {
            let mut ctx = tera::Context::new();
            ctx.insert("title", &title);
            ctx.insert("html", &html);
            page(state, StatusCode::from_u16(status).unwrap_or(StatusCode::OK), "plugin_page.html", locale, ctx)
        }
        Ok(PluginResponse::Json { status, body }) => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(body)).into_response()
        }
        // Only paths on this provider: a plugin cannot make us an open redirector.
        Ok(PluginResponse::Redirect { location }) if location.starts_with('/') && !location.starts_with("//") => {
            see_other(&format!("{}{location}", state.config.issuer))
        }
        Ok(PluginResponse::Binary { status, content_type, base64, filename }) => {
            binary(state, locale, status, &content_type, &base64, filename.as_deref())
        }
        Ok(PluginResponse::Redirect { .. }) => {
            tracing::error!("plugin redirect to a foreign location refused");
            error_page(state, StatusCode::INTERNAL_SERVER_ERROR, locale, "plugin_failed")
        }
        Err(e) => {
            let (status, code, key) = match e {
                PluginError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "plugin_failed"),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "plugin_unavailable"),
            };
            tracing::warn!("plugin request failed: {e}");
            if pages {
                error_page(state, status, locale, key)
            } else {
                api_error(status, code, &state.pages.text(locale, key))
            }
        }
    };
    out.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}
