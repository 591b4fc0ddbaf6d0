//! The console's app branding and client authentication forms (G1, issue
//! 15): an app's logo and localized display names, and how it
//! authenticates at the token endpoint — a secret, or `private_key_jwt`
//! with an inline JWK Set or a `jwks_uri` — so an operator can set up a
//! `private_key_jwt` app entirely in the browser. Each form posts to its
//! own route and calls the same `domain::staff::apps` use case as the admin
//! API; the rules are `domain::clients::branding` and `clients::admin`.
use super::{Console, refused};
use crate::domain::clients::AuthMethod;
use crate::domain::clients::admin::KeyAuth;
use crate::domain::clients::branding::Branding;
use crate::domain::staff::{self, apps};
use crate::kit::extract::{CsrfForm, PageError};
use crate::server::AppState;
use crate::with_csrf;
use axum::extract::{Path, State};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

type PageResult = Result<Response, PageError>;

/// The languages besides the default that get a display name field.
const NAME_LANGS: &[&str] = &["en", "bo"];

#[derive(Deserialize)]
pub struct BrandForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    logo_uri: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    name_bo: String,
}

#[derive(Deserialize)]
pub struct AuthForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    jwks: String,
    #[serde(default)]
    jwks_uri: String,
}
with_csrf!(BrandForm, AuthForm);

impl BrandForm {
    fn branding(&self) -> Branding {
        let mut b = Branding {
            logo_uri: Some(self.logo_uri.trim().to_string()).filter(|s| !s.is_empty()),
            ..Default::default()
        };
        for (lang, name) in NAME_LANGS.iter().zip([&self.name_en, &self.name_bo]) {
            if !name.trim().is_empty() {
                b.names.insert(lang.to_string(), name.trim().to_string());
            }
        }
        b
    }
}

/// The app's page (after a change: what was done, and a new secret when
/// one was issued, shown once).
pub(super) async fn app_page(
    state: &AppState,
    c: &Console,
    jar: CookieJar,
    id: &str,
    secret: Option<String>,
    done: Option<&str>,
) -> PageResult {
    let app = apps::show(&state.clients, &c.staff, id).await.map_err(refused)?;
    let permitted = crate::domain::plugins::plugin_access::permitted(&state.store, id).await?;
    let plugin_scopes: Vec<serde_json::Value> = state
        .plugins
        .scope_names()
        .into_iter()
        .map(|sc| serde_json::json!({ "granted": permitted.contains(&sc), "name": sc }))
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert(
        "adm",
        &serde_json::json!({
            "app": app,
            "redirect_uris": app.redirect_uris.join("\n"),
            "post_logout_redirect_uris": app.post_logout_redirect_uris.join("\n"),
            "min_level": app.min_level.map(|l| l.to_string()).unwrap_or_default(),
            "manage": c.staff.can(staff::Permission::ManageApp(id)),
            "plugin_scopes": plugin_scopes,
            "grace_until": app.old_secret_until.filter(|u| *u > state.clock.now()).and_then(|u| {
                chrono::DateTime::from_timestamp(u, 0).map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            }),
            "jwks": app.jwks.as_ref().filter(|_| app.jwks_uri.is_none())
                .and_then(|j| serde_json::to_string_pretty(j).ok()).unwrap_or_default(),
            "key_auth": matches!(app.auth_method, AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth),
            "secret": secret,
            "done": done.map(|k| state.pages.text(c.locale, k)),
        }),
    );
    Ok(c.render(state, jar, "admin_app.html", ctx))
}

/// `POST /admin/apps/{id}/branding`: logo and display names.
pub async fn app_branding(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<BrandForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    apps::set_branding(&state.clients, &c.staff, &id, &f.branding()).await.map_err(refused)?;
    app_page(&state, &c, jar, &id, None, Some("admin_done_saved")).await
}

/// `POST /admin/apps/{id}/auth`: the token endpoint authentication method
/// and, for `private_key_jwt`, the keys.
pub async fn app_auth(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<AuthForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let method = AuthMethod::parse(f.method.trim()).ok_or(PageError::bad_request("admin_app_auth_rule"))?;
    let a = KeyAuth { method, jwks: Some(f.jwks), jwks_uri: Some(f.jwks_uri) };
    let secret = apps::set_auth(&state.clients, &c.staff, &id, &a).await.map_err(refused)?;
    app_page(&state, &c, jar, &id, secret, Some("admin_done_saved")).await
}
