//! The console's app branding and client authentication forms (G1, issue
//! 15): an app's logo and localized display names, and how it
//! authenticates at the token endpoint — a secret, or `private_key_jwt`
//! with an inline JWK Set or a `jwks_uri` — so an operator can set up a
//! `private_key_jwt` app entirely in the browser — and its mutual-TLS
//! certificate (RFC 8705). Each form posts to its
//! own route and calls the same `domain::staff::apps` use case as the admin
//! API; the rules are `domain::clients::branding` and `clients::admin`.
use super::{Console, refused};
use crate::domain::clients::AuthMethod;
use crate::domain::clients::admin::{KeyAuth, MtlsSettings};
use crate::domain::clients::branding::Branding;
use crate::domain::clients::mtls;
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

#[derive(Deserialize)]
pub struct MtlsForm {
    #[serde(default)]
    csrf: String,
    /// Empty: keep the app's method (certificate-bound tokens only).
    #[serde(default)]
    method: String,
    /// One of `mtls::SETTINGS`.
    #[serde(default)]
    subject_kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    bound: Option<String>,
}
with_csrf!(BrandForm, AuthForm, MtlsForm);

impl MtlsForm {
    /// The settings the form stands for: the subject as typed (none typed
    /// clears it, which `tls_client_auth` refuses).
    /// A refusal is the locale key of what to fix.
    fn settings(&self) -> Result<MtlsSettings, &'static str> {
        let auth_method = match self.method.trim() {
            "" => None,
            m => Some(AuthMethod::parse(m).ok_or("admin_app_mtls_method")?),
        };
        let kind = mtls::SETTINGS.iter().find(|k| **k == self.subject_kind.trim()).ok_or("admin_app_mtls_subject")?;
        let value = self.subject.trim();
        let subject = (!value.is_empty()).then(|| (kind.to_string(), value.into())).into_iter().collect();
        Ok(MtlsSettings { auth_method, subject: Some(subject), bound: Some(self.bound.is_some()) })
    }
}

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
            "mtls": mtls_view(&app),
            "secret": secret,
            "done": done.map(|k| state.pages.text(c.locale, k)),
        }),
    );
    Ok(c.render(state, jar, "admin_app.html", ctx))
}

/// The mutual-TLS form as the app is: its certificate subject (kind and
/// value) and whether its tokens are certificate-bound.
fn mtls_view(app: &crate::domain::clients::Client) -> serde_json::Value {
    let current = mtls::SETTINGS.iter().find_map(|k| app.metadata.get(*k).and_then(|v| v.as_str()).map(|v| (*k, v)));
    let (kind, value) = current.unwrap_or((mtls::SUBJECT_DN, ""));
    serde_json::json!({
        "kinds": mtls::SETTINGS,
        "kind": kind,
        "subject": value,
        "bound": app.tls_client_certificate_bound_access_tokens,
        "method": if app.auth_method.is_mtls() { app.auth_method.as_str() } else { "" },
    })
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

/// `POST /admin/apps/{id}/mtls`: the certificate methods, the registered
/// certificate subject and certificate-bound tokens (RFC 8705). Sensitive
/// like the auth form: moving to a certificate ends the secret at once.
pub async fn app_mtls(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MtlsForm>,
) -> PageResult {
    if let Some(refusal) = c.stale(&state) {
        return Err(refusal);
    }
    let settings = f.settings().map_err(PageError::bad_request)?;
    apps::set_mtls(&state.clients, &c.staff, &id, &settings).await.map_err(refused)?;
    app_page(&state, &c, jar, &id, None, Some("admin_done_saved")).await
}
