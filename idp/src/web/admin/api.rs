//! The admin JSON API under `/admin/api/v1` (issue 15), described by the
//! OpenAPI 3.1 document at `/admin/api/openapi.json` (`openapi.json` next
//! to this file).
//!
//! Authentication: the console's own staff session — the provider's
//! session cookie (`HttpOnly`, `SameSite=Lax`) of an account with a staff
//! role, past the console's gate (proofing L3, a passkey or authenticator
//! code within the L3 max age). Bearer tokens are not accepted: no access
//! token of this provider carries staff authority, so a leaked app token
//! can never reach the API.
//!
//! CSRF: every state-changing call (`POST`) must carry the header
//! `X-CSRF-Token` with the console's CSRF token for this browser (from
//! `GET /admin/api/v1/session`) and a JSON body (`Content-Type:
//! application/json`). A cross-site form can set neither, and a cross-site
//! script cannot send the header without a CORS preflight, which the
//! provider never grants. Sensitive calls (suspend, restore, sign out,
//! rotate a secret) need the strong factor within
//! `staff::SENSITIVE_MAX_AGE`, else `401 {"error":"step_up_required"}`.
//!
//! Each handler calls the same `domain::staff` use case as the console
//! page and the CLI; the role check and the audit record live there.
use super::{Console, audit_pages};
use crate::domain::clients::admin::Settings;
use crate::domain::staff::people::{self, AccountAction};
use crate::domain::staff::{
    self as staff_core, Granter, Permission, Role, StaffError, apps, audit_view, reviews, stats,
};
use crate::kit::cookies;
use crate::kit::extract::PageError;
use crate::server::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

/// The OpenAPI document, served as is.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Declares the API's routes once: the router and [`ROUTES`] (method,
/// path), which the OpenAPI test compares with the document.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:expr),* $(,)?) => {
        /// Every (method, path) the API router serves.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// The API's router (merged into the provider's).
        pub fn router() -> Router<AppState> {
            let mut r = Router::new().route("/admin/api/openapi.json", get(openapi));
            $(r = r.route($path, $method($handler));)*
            r
        }
    };
}

/// Route handlers that differ only in the last argument of one shared
/// handler: each `name => value` becomes a handler taking the same
/// extractors and calling `shared(extractors…, value)`.
macro_rules! variants {
    ($shared:ident $args:tt { $($name:ident => $value:expr),* $(,)? }) => {
        $(variants!(@one $shared $args $name $value);)*
    };
    (@one $shared:ident ($($arg:ident: $ty:ty),* $(,)?) $name:ident $value:expr) => {
        async fn $name($($arg: $ty),*) -> ApiResult {
            $shared($($arg),*, $value).await
        }
    };
}

api_routes! {
    get "/admin/api/v1/session" => session,
    get "/admin/api/v1/apps" => apps_list,
    post "/admin/api/v1/apps" => apps_create,
    get "/admin/api/v1/apps/{id}" => app_get,
    post "/admin/api/v1/apps/{id}" => app_update,
    post "/admin/api/v1/apps/{id}/disable" => app_disable,
    post "/admin/api/v1/apps/{id}/enable" => app_enable,
    post "/admin/api/v1/apps/{id}/rotate-secret" => app_rotate,
    post "/admin/api/v1/apps/{id}/branding" => app_branding,
    post "/admin/api/v1/apps/{id}/auth" => app_auth,
    post "/admin/api/v1/apps/{id}/mtls" => app_mtls,
    get "/admin/api/v1/people" => people_search,
    get "/admin/api/v1/people/{id}" => person_get,
    post "/admin/api/v1/people/{id}/suspend" => person_suspend,
    post "/admin/api/v1/people/{id}/restore" => person_restore,
    post "/admin/api/v1/people/{id}/sign-out" => person_sign_out,
    get "/admin/api/v1/appeals" => appeals_list,
    post "/admin/api/v1/appeals/{id}/decide" => appeal_decide,
    get "/admin/api/v1/audit" => audit_search,
    post "/admin/api/v1/audit/verify" => audit_verify,
    get "/admin/api/v1/stats" => stats_get,
    get "/admin/api/v1/staff" => staff_list,
    post "/admin/api/v1/staff/grant" => staff_grant,
    post "/admin/api/v1/staff/revoke" => staff_revoke,
}

/// An API failure: a status and a stable error code (a locale key where
/// the core named one).
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StaffError> for ApiError {
    fn from(e: StaffError) -> Self {
        match e {
            StaffError::Forbidden => ApiError(StatusCode::FORBIDDEN, "forbidden".into()),
            StaffError::NotFound => ApiError(StatusCode::NOT_FOUND, "not_found".into()),
            StaffError::Invalid(key) => ApiError(StatusCode::BAD_REQUEST, key.into()),
            StaffError::Db(e) => PageError::from(e).into(),
            StaffError::Domain(e) => PageError::from(e).into(),
        }
    }
}

impl From<crate::store::DbErr> for ApiError {
    fn from(e: crate::store::DbErr) -> Self {
        PageError::from(e).into()
    }
}

/// The console gate's and the page kit's refusals as JSON: a refusal
/// keeps its status and locale key; a failed dependency (logged where it
/// was turned into the `PageError`) is `503 temporarily_unavailable`.
impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Refused(status, key) => ApiError(status, key.into()),
            PageError::Respond(r) => {
                let to = r.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
                let code = if to.contains("/admin/step-up") { "step_up_required" } else { "login_required" };
                ApiError(StatusCode::UNAUTHORIZED, code.into())
            }
            PageError::Unavailable => ApiError(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable".into()),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response())
}

/// A staff member past the console's gate, for the API: refusals are JSON
/// (401 to sign in or step up, 403 when the account is not staff).
pub struct ApiStaff(pub Console);

impl FromRequestParts<AppState> for ApiStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ApiStaff(Console::from_request_parts(parts, state).await?))
    }
}

/// A staff member making a change: the CSRF header checked, and for a
/// sensitive change the strong factor fresh.
fn changing(state: &AppState, headers: &HeaderMap, c: &Console, sensitive: bool) -> Result<(), ApiError> {
    let jar = CookieJar::from_headers(headers);
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if token.is_empty() || !cookies::csrf_ok(state, &jar, token) {
        return Err(ApiError(StatusCode::FORBIDDEN, "csrf".into()));
    }
    if sensitive && c.stale(state).is_some() {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "step_up_required".into()));
    }
    Ok(())
}

/// A JSON body, refused with `400 invalid_request` when it is not JSON.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_request".into()))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Who is signed in, their roles and the CSRF token for changes. A fresh
/// browser id cookie is set when the browser had none.
async fn session(State(state): State<AppState>, ApiStaff(c): ApiStaff, jar: CookieJar) -> ApiResult {
    let (jar, browser) = cookies::browser(&state, jar);
    let s = &c.staff;
    let v = json!({
        "user_id": s.user_id, "username": s.username,
        "roles": s.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "apps": s.apps,
        "csrf": cookies::csrf_token(&state, &browser),
    });
    Ok((jar, [(header::CACHE_CONTROL, "no-store")], Json(v)).into_response())
}

// ---------------------------------------------------------------- apps

#[derive(Deserialize)]
pub struct AppBody {
    name: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_scopes: String,
    #[serde(default)]
    min_level: Option<u8>,
    #[serde(default)]
    skip_consent: bool,
}

impl AppBody {
    fn settings(self) -> Settings {
        Settings {
            name: self.name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            allowed_scopes: self.allowed_scopes,
            min_level: self.min_level,
            skip_consent: self.skip_consent,
        }
    }
}

async fn apps_list(State(state): State<AppState>, ApiStaff(c): ApiStaff) -> ApiResult {
    ok(json!({ "apps": apps::list(&state.clients, &c.staff).await? }))
}

async fn apps_create(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    b: Result<Json<AppBody>, JsonRejection>,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    let s = body(b)?.settings();
    let created = apps::create(&state.store, &state.clients, &c.staff, &s, state.clock.now()).await?;
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(created)).into_response())
}

async fn app_get(State(state): State<AppState>, ApiStaff(c): ApiStaff, Path(id): Path<String>) -> ApiResult {
    ok(apps::show(&state.clients, &c.staff, &id).await?)
}

async fn app_update(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<AppBody>, JsonRejection>,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    apps::update(&state.clients, &c.staff, &id, &body(b)?.settings()).await?;
    ok(apps::show(&state.clients, &c.staff, &id).await?)
}

async fn set_disabled(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    disabled: bool,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    apps::set_disabled(&state.clients, &c.staff, &id, disabled).await?;
    ok(json!({ "client_id": id, "disabled": disabled }))
}

variants!(set_disabled(state: State<AppState>, c: ApiStaff, headers: HeaderMap, id: Path<String>) {
    app_disable => true,
    app_enable => false,
});

/// A new secret, shown once; the old one stays valid for the grace period.
async fn app_rotate(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    changing(&state, &headers, &c, true)?;
    // Refuse before rotating what the caller may not touch.
    let secret = apps::rotate_secret(&state.clients, &c.staff, &id).await?;
    ok(json!({ "client_id": id, "client_secret": secret }))
}

#[derive(Deserialize)]
pub struct BrandingBody {
    #[serde(default)]
    logo_uri: Option<String>,
    #[serde(default)]
    display_names: std::collections::BTreeMap<String, String>,
}

/// The logo and display names on sign-in and consent (the same rule as
/// the console's form, the CLI and dynamic registration).
async fn app_branding(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<BrandingBody>, JsonRejection>,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    let b = body(b)?;
    let branding = crate::domain::clients::branding::Branding {
        logo_uri: b.logo_uri.filter(|l| !l.trim().is_empty()),
        names: b.display_names,
    };
    apps::set_branding(&state.clients, &c.staff, &id, &branding).await?;
    ok(apps::show(&state.clients, &c.staff, &id).await?)
}

#[derive(Deserialize)]
pub struct AuthBody {
    token_endpoint_auth_method: String,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// How the app authenticates at the token endpoint; a new secret, when one
/// is issued, is answered once as `client_secret`.
async fn app_auth(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<AuthBody>, JsonRejection>,
) -> ApiResult {
    // Like a rotation: it can end the secret at once.
    changing(&state, &headers, &c, true)?;
    let b = body(b)?;
    let method = crate::domain::clients::AuthMethod::parse(&b.token_endpoint_auth_method)
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "admin_app_auth_rule".into()))?;
    let a = crate::domain::clients::admin::KeyAuth {
        method,
        jwks: b.jwks.filter(|j| !j.is_null()).map(|j| j.to_string()),
        jwks_uri: b.jwks_uri,
    };
    let secret = apps::set_auth(&state.clients, &c.staff, &id, &a).await?;
    let app = apps::show(&state.clients, &c.staff, &id).await?;
    let mut v = serde_json::to_value(&app).map_err(PageError::unavailable)?;
    if let (Some(s), Some(o)) = (secret, v.as_object_mut()) {
        o.insert("client_secret".into(), s.into());
    }
    ok(v)
}

#[derive(Deserialize)]
pub struct MtlsBody {
    /// `tls_client_auth` or `self_signed_tls_client_auth`; absent keeps it.
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    /// The `tls_client_auth_*` subject (RFC 8705 §2.1.2), replacing the
    /// registered one; absent keeps it.
    #[serde(default)]
    subject: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    tls_client_certificate_bound_access_tokens: Option<bool>,
}

/// How the app uses mutual TLS (the same rules as the console's form and
/// `idp client update`).
async fn app_mtls(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<MtlsBody>, JsonRejection>,
) -> ApiResult {
    // Like the auth method: it can end the secret at once.
    changing(&state, &headers, &c, true)?;
    let b = body(b)?;
    let auth_method = match b.token_endpoint_auth_method.as_deref() {
        None => None,
        Some(m) => Some(
            crate::domain::clients::AuthMethod::parse(m)
                .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "admin_app_mtls_method".into()))?,
        ),
    };
    let s = crate::domain::clients::admin::MtlsSettings {
        auth_method,
        subject: b.subject,
        bound: b.tls_client_certificate_bound_access_tokens,
    };
    apps::set_mtls(&state.clients, &c.staff, &id, &s).await?;
    ok(apps::show(&state.clients, &c.staff, &id).await?)
}

// ---------------------------------------------------------------- people

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn people_search(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    Query(q): Query<SearchQuery>,
) -> ApiResult {
    ok(json!({ "people": people::search(&state.store, &c.staff, &q.q, state.clock.now()).await? }))
}

async fn person_get(State(state): State<AppState>, ApiStaff(c): ApiStaff, Path(id): Path<String>) -> ApiResult {
    ok(people::detail(&state.store, &c.staff, &id, state.clock.now()).await?)
}

#[derive(Deserialize, Default)]
pub struct ReasonBody {
    #[serde(default)]
    reason: String,
}

async fn person_act(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<ReasonBody>, JsonRejection>,
    action: AccountAction,
) -> ApiResult {
    changing(&state, &headers, &c, true)?;
    let reason = body(b)?.reason;
    let ip = cookies::client_ip(Some(addr));
    let change = people::AccountChange { user_id: &id, action, reason: &reason, ip: Some(&ip) };
    people::act(&state.store, &state, &c.staff, change, state.clock.now()).await?;
    ok(people::detail(&state.store, &c.staff, &id, state.clock.now()).await?)
}

variants!(person_act(
    state: State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    c: ApiStaff,
    headers: HeaderMap,
    id: Path<String>,
    b: Result<Json<ReasonBody>, JsonRejection>,
) {
    person_suspend => AccountAction::Suspend,
    person_restore => AccountAction::Restore,
    person_sign_out => AccountAction::SignOut,
});

// ---------------------------------------------------------------- appeals

#[derive(Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    status: String,
}

async fn appeals_list(State(state): State<AppState>, ApiStaff(c): ApiStaff, Query(q): Query<StatusQuery>) -> ApiResult {
    ok(json!({ "appeals": reviews::appeals(&state.store, &c.staff, &q.status, state.clock.now()).await? }))
}

#[derive(Deserialize)]
pub struct DecideBody {
    approve: bool,
    #[serde(default)]
    reason: String,
}

async fn appeal_decide(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<DecideBody>, JsonRejection>,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    let d = body(b)?;
    let key = if d.approve { "sms_appeal_approved" } else { "sms_appeal_rejected" };
    let template = state.pages.text(&state.config.default_locale, key);
    let now = state.clock.now();
    let decided =
        reviews::decide_appeal(&state.store, &state.sms_codes, &c.staff, &id, d.approve, &d.reason, &template, now)
            .await?;
    ok(json!({ "appeal": decided }))
}

// ---------------------------------------------------------------- audit, statistics

async fn audit_search(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    Query(q): Query<audit_pages::AuditQuery>,
) -> ApiResult {
    let page = audit_view::search(&state.store, &c.staff, &q.filter()).await?;
    ok(page)
}

async fn audit_verify(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
) -> ApiResult {
    changing(&state, &headers, &c, false)?;
    let ip = cookies::client_ip(Some(addr));
    ok(audit_view::verify(&state.store, &c.staff, Some(&ip), state.clock.now()).await?)
}

async fn stats_get(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    Query(q): Query<audit_pages::StatsQuery>,
) -> ApiResult {
    let (from, to) = q.range(state.clock.now())?;
    ok(stats::report(&state.store, &c.staff, from, to).await?)
}

// ---------------------------------------------------------------- staff roles

async fn staff_list(State(state): State<AppState>, ApiStaff(c): ApiStaff) -> ApiResult {
    c.staff.require(Permission::GrantRoles)?;
    ok(json!({ "staff": staff_core::list(&state.store).await? }))
}

#[derive(Deserialize)]
pub struct RoleBody {
    login: String,
    role: String,
    #[serde(default)]
    app: Option<String>,
}

async fn staff_role(
    State(state): State<AppState>,
    ApiStaff(c): ApiStaff,
    headers: HeaderMap,
    b: Result<Json<RoleBody>, JsonRejection>,
    grant: bool,
) -> ApiResult {
    changing(&state, &headers, &c, true)?;
    let b = body(b)?;
    let role = Role::parse(&b.role).ok_or(ApiError(StatusCode::BAD_REQUEST, "unknown_role".into()))?;
    let (store, users, by, now) = (&state.store, &state.users, Granter::Staff(&c.staff), state.clock.now());
    if grant {
        let id = staff_core::grant(store, users, by, &b.login, role, b.app.as_deref(), now).await?;
        ok(json!({ "user_id": id, "role": role.as_str(), "granted": true }))
    } else {
        let held = staff_core::revoke(store, users, by, &b.login, role, b.app.as_deref(), now).await?;
        ok(json!({ "role": role.as_str(), "revoked": held }))
    }
}

variants!(staff_role(state: State<AppState>, c: ApiStaff, headers: HeaderMap, b: Result<Json<RoleBody>, JsonRejection>) {
    staff_grant => true,
    staff_revoke => false,
});
