//! 我的应用 / My apps (issue 19): the apps the person authorised, what each
//! may read (the scopes in words), since when — and revoke.
use crate::domain::authn::console;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::kit::human;
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}
crate::with_csrf!(RevokeForm);

pub async fn show(
    State(state): State<AppState>,
    Locale(locale): Locale,
    me: SignedIn,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let apps = console::authorised_apps(&state.store, &me.user.id).await?;
    let text = |key: String| state.pages.text(locale, &key);
    let mut rows = Vec::new();
    for a in apps {
        let name = match state.clients.find(&a.client_id).await? {
            Some(c) => c.name,
            None => continue,
        };
        let releases: Vec<String> = a
            .scopes
            .iter()
            .map(|s| text(format!("scope_{s}")))
            .chain(a.claims.iter().map(|c| text(format!("claim_{c}"))))
            .collect();
        rows.push(json!({
            "client_id": a.client_id,
            "name": name,
            "releases": releases,
            "granted": human::datetime(a.granted_at, locale),
        }));
    }
    let (jar, browser) = cookies::browser(&state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("apps", &rows);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    Ok((jar, page(&state, StatusCode::OK, "apps.html", locale, ctx)).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<RevokeForm>,
) -> Result<Response, PageError> {
    let ip = cookies::client_ip(Some(addr));
    console::revoke_app(&state.store, &me.user.id, &f.client_id, &ip, state.clock.now()).await?;
    Ok(see_other(&format!("{}/account/apps", state.config.issuer)))
}
