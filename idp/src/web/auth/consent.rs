//! The consent page: which app, which scopes, allow or deny ("authorize and
//! sign in will read your identity", A3).
use crate::domain::error::OAuthError;
use crate::domain::tokens::authorize::{ConsentOutcome, decide_consent};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::{error_redirect, see_other};
use crate::server::AppState;
use crate::web::auth::login::signed_in_request;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct ConsentQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// What each scope of a space-separated list lets the app do, in the
/// user's language (consent page, device grant page): plugin scopes are
/// described by their plugin, the others by `scope_<name>`.
pub fn scope_words(state: &AppState, scope: &str, locale: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            state
                .plugins
                .scope_description(s, locale)
                .unwrap_or_else(|| state.pages.text(locale, &format!("scope_{s}")))
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let (req, session, browser) = signed_in_request(&state, &jar, locale, &q.req).await?;
    let locale = cookies::locale(&state, &headers, req.ui_locales.as_deref());
    let client = match state.clients.find(&req.client_id).await {
        Ok(Some(c)) => c,
        _ => return Err(PageError::bad_request("error_unknown_client")),
    };
    let user = state.users.find(&session.user_id).await.ok().flatten();
    let scopes = scope_words(&state, &req.scope, locale);
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    let brand = crate::web::auth::brand::Brand::of(&client, locale);
    crate::web::auth::brand::insert(&mut ctx, Some(&brand));
    ctx.insert("brand_verb", "consent_asks");
    ctx.insert("scopes", &scopes);
    // Each claim asked for individually is named for consent (OIDC Core
    // §5.5), in the user's language; only releasable ones reach here.
    let claims: Vec<serde_json::Value> = req
        .consent_claims()
        .iter()
        .map(|c| serde_json::json!({ "name": c, "label": state.pages.text(locale, &format!("claim_{c}")) }))
        .collect();
    ctx.insert("claims", &claims);
    ctx.insert("username", &user.map(|u| u.username).unwrap_or_default());
    // A person acting for an enterprise (C1) consents in its name: the page
    // says which enterprise and in which role.
    let acting = match crate::domain::delegation::acting::personal(&state.store, session.clone()).await? {
        Ok(_) => None,
        Err(a) => crate::domain::delegation::enterprises::find(&state.store, &a.enterprise_id).await?.map(|e| {
            let role = if a.delegation_id.is_some() { "agent" } else { "representative" };
            serde_json::json!({ "name": e.name, "role": role })
        }),
    };
    ctx.insert("acting", &acting);
    ctx.insert("terms_links", &true);
    Ok(crate::web::auth::brand::with_csp(page(&state, StatusCode::OK, "consent.html", locale, ctx), Some(&brand)))
}

crate::with_csrf!(ConsentForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<ConsentForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let (req, session, _) = signed_in_request(&state, &jar, locale, &f.req).await?;
    let ip = cookies::client_ip(Some(addr));
    let allow = f.decision == "allow";
    let now = state.clock.now();
    let url = match decide_consent(&state.store, &f.req, req, &session.user_id, allow, Some(&ip), now).await? {
        ConsentOutcome::Allowed => format!("{}/authorize/resume?req={}", state.config.issuer, f.req),
        ConsentOutcome::Denied(req) => {
            let e = OAuthError::new("access_denied", "the user denied the request");
            error_redirect(&state, &req.redirect_uri, req.state.as_deref(), &e)
        }
    };
    Ok(see_other(&url))
}
