//! The console's pages: home, step-up, people, apps, reviews, staff roles
//! (audit and statistics are in `audit_pages`).
use super::queues::{Queue, QueueForm, StatusQuery, choice};
use super::{Console, refused};
use crate::domain::clients::admin::Settings;
use crate::domain::staff::people::{self, AccountAction};
use crate::domain::staff::{self, Granter, Role, apps, reviews};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError};
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

type PageResult = Result<Response, PageError>;

/// `/admin`: what this staff member may do.
pub async fn home(State(state): State<AppState>, c: Console, jar: CookieJar) -> PageResult {
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "proofing": c.proofing }));
    Ok(c.render(&state, jar, "admin_home.html", ctx))
}

// ---------------------------------------------------------------- people

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn people_search(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    let rows = people::search(&state.store, &c.staff, &q.q, state.clock.now()).await.map_err(refused)?;
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "q": q.q, "rows": rows, "searched": !q.q.trim().is_empty() }));
    Ok(c.render(&state, jar, "admin_people.html", ctx))
}

async fn person_page(
    state: &AppState,
    c: &Console,
    jar: CookieJar,
    id: &str,
    unmasked: Option<people::Unmasked>,
    done: Option<&str>,
) -> PageResult {
    let d = people::detail(&state.store, &c.staff, id, state.clock.now()).await.map_err(refused)?;
    let mut ctx = tera::Context::new();
    let manage = c.staff.can(staff::Permission::ManagePeople);
    ctx.insert(
        "adm",
        &serde_json::json!({ "d": d, "unmasked": unmasked, "manage": manage,
            "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_person.html", ctx))
}

pub async fn person_show(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    person_page(&state, &c, jar, &id, None, None).await
}

#[derive(Deserialize)]
pub struct PersonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    /// How the identity was checked before a factor reset.
    #[serde(default)]
    check: String,
}
with_csrf!(PersonForm);

pub async fn person_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<PersonForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let ip = cookies::client_ip(Some(addr));
    let now = state.clock.now();
    let action = match f.action.as_str() {
        "unmask" => {
            let u = people::unmask(&state.store, &c.staff, &id, &f.reason, Some(&ip), now).await.map_err(refused)?;
            return person_page(&state, &c, jar, &id, Some(u), None).await;
        }
        "reset_factors" => {
            people::reset_factors(&state.store, &state, &c.staff, &id, f.check.trim(), &f.reason, Some(&ip), now)
                .await
                .map_err(refused)?;
            return person_page(&state, &c, jar, &id, None, Some("admin_done_factors_reset")).await;
        }
        "suspend" => AccountAction::Suspend,
        "restore" => AccountAction::Restore,
        "sign_out" => AccountAction::SignOut,
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    let change = people::AccountChange { user_id: &id, action, reason: &f.reason, ip: Some(&ip) };
    people::act(&state.store, &state, &c.staff, change, now).await.map_err(refused)?;
    let done = match action {
        AccountAction::Suspend => "admin_done_suspended",
        AccountAction::Restore => "admin_done_restored",
        AccountAction::SignOut => "admin_done_signed_out",
    };
    person_page(&state, &c, jar, &id, None, Some(done)).await
}

// ---------------------------------------------------------------- apps

#[derive(Deserialize, Default)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    min_level: String,
    #[serde(default)]
    skip_consent: Option<String>,
    /// A plugin scope to grant or revoke (`allow_scope` / `deny_scope`).
    #[serde(default)]
    scope: String,
    /// A JWK Set for a `private_key_jwt` app (`jwks`).
    #[serde(default)]
    jwks: String,
}
with_csrf!(AppForm);

impl AppForm {
    fn settings(&self) -> Settings {
        let lines = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        Settings {
            name: self.name.trim().to_string(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            allowed_scopes: self
                .scopes
                .split([' ', ',', '\n', '\r'])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            min_level: self.min_level.trim().parse::<u8>().ok().filter(|l| *l > 0),
            skip_consent: self.skip_consent.is_some(),
        }
    }
}

pub async fn apps_list(State(state): State<AppState>, c: Console, jar: CookieJar) -> PageResult {
    let list = apps::list(&state.clients, &c.staff).await.map_err(refused)?;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "apps": list, "create": c.staff.can(staff::Permission::CreateApps),
            "scopes": crate::domain::clients::scopes::SUPPORTED.join(" ") }),
    );
    Ok(c.render(&state, jar, "admin_apps.html", ctx))
}

pub async fn apps_create(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<AppForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let created = apps::create(&state.store, &state.clients, &c.staff, &f.settings(), state.clock.now())
        .await
        .map_err(refused)?;
    super::apps::app_page(&state, &c, jar, &created.client.client_id, created.client_secret, None).await
}

pub async fn app_show(State(state): State<AppState>, c: Console, jar: CookieJar, Path(id): Path<String>) -> PageResult {
    super::apps::app_page(&state, &c, jar, &id, None, None).await
}

pub async fn app_submit(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<AppForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    match f.action.as_str() {
        "rotate" => {
            let secret = apps::rotate_secret(&state.clients, &c.staff, &id).await.map_err(refused)?;
            super::apps::app_page(&state, &c, jar, &id, Some(secret), Some("admin_done_rotated")).await
        }
        "save" => {
            apps::update(&state.clients, &c.staff, &id, &f.settings()).await.map_err(refused)?;
            super::apps::app_page(&state, &c, jar, &id, None, Some("admin_done_saved")).await
        }
        "disable" | "enable" => {
            let disable = f.action == "disable";
            apps::set_disabled(&state.clients, &c.staff, &id, disable).await.map_err(refused)?;
            let done = if disable { "admin_done_app_disabled" } else { "admin_done_app_enabled" };
            super::apps::app_page(&state, &c, jar, &id, None, Some(done)).await
        }
        "allow_scope" | "deny_scope" => {
            let allow = f.action == "allow_scope";
            let known = state.plugins.scope_names();
            let now = state.clock.now();
            apps::plugin_scope(&state.store, &state.clients, &c.staff, &id, f.scope.trim(), allow, &known, now)
                .await
                .map_err(refused)?;
            let done = if allow { "admin_done_scope_allowed" } else { "admin_done_scope_denied" };
            super::apps::app_page(&state, &c, jar, &id, None, Some(done)).await
        }
        "jwks" => {
            apps::set_jwks(&state.clients, &c.staff, &id, &f.jwks).await.map_err(refused)?;
            super::apps::app_page(&state, &c, jar, &id, None, Some("admin_done_saved")).await
        }
        _ => Err(PageError::bad_request("error_bad_form")),
    }
}

// ---------------------------------------------------------------- reviews

/// `/admin/appeals`: appeals with their due times (A8).
pub async fn appeals(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Query(q): Query<StatusQuery>,
) -> PageResult {
    Queue::Appeals.page(&state, &c, jar, &q.status, None).await
}

pub async fn appeal_decide(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<QueueForm>,
) -> PageResult {
    let approve = choice(&f.action, "approve", "reject").map_err(|e| *e)?;
    let key = if approve { "sms_appeal_approved" } else { "sms_appeal_rejected" };
    let template = state.pages.text(&state.config.default_locale, key);
    let (db, sms, now) = (&state.store, &state.sms_codes, state.clock.now());
    let call = reviews::decide_appeal(db, sms, &c.staff, &id, approve, &f.reason, &template, now);
    let done = if approve { "admin_done_approved" } else { "admin_done_rejected" };
    Queue::Appeals.decide(&state, &c, jar, call, done).await
}

// ---------------------------------------------------------------- staff

pub async fn staff_list(State(state): State<AppState>, c: Console, jar: CookieJar) -> PageResult {
    c.staff.require(staff::Permission::GrantRoles).map_err(refused)?;
    staff_page(&state, &c, jar, None).await
}

async fn staff_page(state: &AppState, c: &Console, jar: CookieJar, done: Option<&str>) -> PageResult {
    let rows = staff::list(&state.store).await?;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({ "rows": rows, "roles": Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "done": done.map(|k| state.pages.text(c.locale, k)) }),
    );
    Ok(c.render(state, jar, "admin_staff.html", ctx))
}

#[derive(Deserialize)]
pub struct StaffForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    app: String,
}
with_csrf!(StaffForm);

pub async fn staff_submit(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<StaffForm>,
) -> PageResult {
    c.staff.require(staff::Permission::GrantRoles).map_err(refused)?;
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let role = Role::parse(&f.role).ok_or(PageError::bad_request("error_bad_form"))?;
    let app = Some(f.app.as_str()).filter(|a| !a.trim().is_empty());
    let now = state.clock.now();
    let by = Granter::Staff(&c.staff);
    let done = match f.action.as_str() {
        "grant" => {
            staff::grant(&state.store, &state.users, by, &f.login, role, app, now).await.map_err(refused)?;
            "admin_done_granted"
        }
        "revoke" => {
            staff::revoke(&state.store, &state.users, by, &f.login, role, app, now).await.map_err(refused)?;
            "admin_done_revoked"
        }
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    staff_page(&state, &c, jar, Some(done)).await
}

// ---------------------------------------------------------------- plugins

async fn plugins_page(state: &AppState, c: &Console, jar: CookieJar, done: Option<&str>) -> PageResult {
    c.staff.require(staff::Permission::ManagePlugins).map_err(refused)?;
    let report = state.plugins.report().await?;
    let rows: Vec<serde_json::Value> = report
        .iter()
        .map(|p| {
            // The admin pages a staff member can open (GET admin routes;
            // the `.json` ones are data for scripts, not pages).
            let pages: Vec<String> = p
                .routes
                .iter()
                .filter(|r| r.method == "GET" && matches!(r.auth, crate::plugins::RouteAuth::Admin))
                .filter(|r| !r.path.ends_with(".json"))
                .map(|r| format!("/plugins/{}{}", p.name, r.path))
                .collect();
            serde_json::json!({ "name": p.name, "version": p.version, "enabled": p.enabled, "healthy": p.healthy,
                "faults": p.faults, "last_error": p.last_error,
                "scopes": p.scopes.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), "pages": pages })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "plugins": rows, "done": done.map(|k| state.pages.text(c.locale, k)) }));
    Ok(c.render(state, jar, "admin_plugins.html", ctx))
}

/// `/admin/plugins`: loaded plugins with health, scopes and admin pages.
pub async fn plugins_list(State(state): State<AppState>, c: Console, jar: CookieJar) -> PageResult {
    plugins_page(&state, &c, jar, None).await
}

#[derive(Deserialize)]
pub struct PluginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
}
with_csrf!(PluginForm);

/// Enables or disables a plugin (platform admins), audited with their id.
pub async fn plugin_submit(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<PluginForm>,
) -> PageResult {
    c.staff.require(staff::Permission::ManagePlugins).map_err(refused)?;
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let enabled = match f.action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(PageError::bad_request("error_bad_form")),
    };
    let loaded = state.plugins.find(&name).is_some();
    staff::plugins::set_enabled(&state.store, &c.staff, &name, loaded, enabled, state.clock.now())
        .await
        .map_err(refused)?;
    let done = if enabled { "admin_done_plugin_enabled" } else { "admin_done_plugin_disabled" };
    plugins_page(&state, &c, jar, Some(done)).await
}
