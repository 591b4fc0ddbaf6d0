//! Devices and live sessions (issue 19): every browser the person is
//! signed in on, when it signed in and was last seen; sign out one, or all
//! but this one. Apps of an ended session are told (back-channel logout).
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
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    /// `one` (with `sid`) or `others`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    sid: String,
}
crate::with_csrf!(EndForm);

pub async fn show(
    State(state): State<AppState>,
    Locale(locale): Locale,
    me: SignedIn,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let devices = console::devices(&state.store, &me.user.id, &me.session.sid, now).await?;
    let rows: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "n": i + 1,
                "sid": d.sid,
                "current": d.current,
                "remember": d.remember,
                "signed_in": human::datetime(d.created_at, locale),
                "last_seen": human::datetime(d.last_seen, locale),
            })
        })
        .collect();
    let (jar, browser) = cookies::browser(&state, jar);
    let mut ctx = tera::Context::new();
    ctx.insert("devices", &rows);
    ctx.insert("others", &(devices.len() > 1));
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    Ok((jar, page(&state, StatusCode::OK, "sessions.html", locale, ctx)).into_response())
}

pub async fn end(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<EndForm>,
) -> Result<Response, PageError> {
    let ip = cookies::client_ip(Some(addr));
    let now = state.clock.now();
    let user_id = &me.user.id;
    let ended = match f.action.as_str() {
        "others" => console::end_other_sessions(&state.store, user_id, &me.session.sid, &ip, now).await?,
        _ => console::end_session(&state.store, user_id, &f.sid, &ip, now).await?,
    };
    for sid in &ended {
        crate::oidc::logout::notify_clients(&state, user_id, sid).await;
    }
    let to = if ended.contains(&me.session.sid) { "/login" } else { "/account/sessions" };
    Ok(see_other(&format!("{}{to}", state.config.issuer)))
}
