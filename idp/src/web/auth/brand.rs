//! The app asking, on the pages of an authorization request (issues 15 and
//! 19): sign-in (password, SMS, scan), the second step and consent show
//! "<logo> <app name> asks …" from the registration's branding
//! (`domain::clients::branding`), the name in the page's language.
//!
//! A remote logo is https only (checked when it is saved) and shown as a
//! fixed-size `<img>` whose alt text is the app's name; the page that shows
//! it widens its CSP `img-src` to exactly that logo's origin. Every other
//! page keeps the provider's default policy.
use crate::domain::clients::Client;
use crate::server::AppState;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Serialize;

/// What the templates show (`_client_brand.html`).
#[derive(Debug, Clone, Serialize)]
pub struct Brand {
    pub client_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// The origin the page's CSP must allow for the logo.
    #[serde(skip)]
    pub origin: Option<String>,
}

impl Brand {
    pub fn of(client: &Client, locale: &str) -> Self {
        Brand {
            client_id: client.client_id.clone(),
            name: client.display_name(locale),
            logo: client.logo_uri.clone(),
            origin: client.logo_origin(),
        }
    }
}

/// The branding of the app `client_id` names; none without one (a sign-in
/// page opened on its own) or when the app is unknown.
pub async fn of_client(state: &AppState, client_id: Option<&str>, locale: &str) -> Option<Brand> {
    let id = client_id?;
    state.clients.find(id).await.ok().flatten().map(|c| Brand::of(&c, locale))
}

/// The branding of the pending authorization request `req_id` of this
/// browser, if any.
pub async fn of_request(
    state: &AppState,
    jar: &axum_extra::extract::CookieJar,
    req_id: &str,
    locale: &str,
) -> Option<Brand> {
    let req = crate::web::auth::login::load_request(state, jar, req_id).await.ok().flatten()?;
    of_client(state, Some(&req.client_id), locale).await
}

/// Puts the branding into a page's context (`brand`, and `client_name` for
/// the pages that still name the app in their own words).
pub fn insert(ctx: &mut tera::Context, brand: Option<&Brand>) {
    ctx.insert("brand", &brand);
    ctx.insert("client_name", &brand.map(|b| b.name.clone()));
}

/// The page's CSP, widened for a remote logo's origin.
pub fn with_csp(mut res: Response, brand: Option<&Brand>) -> Response {
    let Some(origin) = brand.and_then(|b| b.origin.as_deref()) else {
        return res;
    };
    let policy = crate::server::CSP.replacen("img-src 'self' data:", &format!("img-src 'self' data: {origin}"), 1);
    if let Ok(v) = HeaderValue::from_str(&policy) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}
