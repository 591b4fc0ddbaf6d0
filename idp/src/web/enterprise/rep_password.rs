//! `/enterprise/password` (C1): the legal representative signed in as the
//! enterprise changes its password — the current one, the new one twice
//! (C1's rule). A wrong current password counts in the credit code's
//! sign-in throttle; a change ends his other sessions for the enterprise
//! and the grants issued to them (`onboarding::change_password`).
use crate::domain::delegation::enterprises::{EnterpriseError, check_enterprise_password};
use crate::domain::delegation::onboarding::{self, RepChange};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, EnterpriseSession, Locale, PageError};
use crate::server::AppState;
use crate::store::entities::enterprise;
use crate::web::enterprise::render;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

crate::with_csrf!(ChangeForm);

fn view(e: &enterprise::Model, info: Option<String>, error: Option<String>) -> serde_json::Value {
    json!({ "enterprise": { "name": e.name, "uscc": e.uscc }, "info": info, "error": error })
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { enterprise: e, .. }: EnterpriseSession,
) -> Response {
    render(&state, jar, StatusCode::OK, "enterprise_password.html", locale, view(&e, None, None))
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    EnterpriseSession { session, enterprise: e }: EnterpriseSession,
    CsrfForm(f): CsrfForm<ChangeForm>,
) -> Result<Response, PageError> {
    let fail = |jar: CookieJar, status: StatusCode, key: &str| {
        let v = view(&e, None, Some(state.pages.text(locale, key)));
        render(&state, jar, status, "enterprise_password.html", locale, v)
    };
    if f.current.is_empty() {
        return Ok(fail(jar, StatusCode::BAD_REQUEST, "agent_password_current_missing"));
    }
    if let Err(k) = check_enterprise_password(&f.password) {
        return Ok(fail(jar, StatusCode::BAD_REQUEST, k));
    }
    if f.password != f.password2 {
        return Ok(fail(jar, StatusCode::BAD_REQUEST, "register_password_mismatch"));
    }
    let ip = cookies::client_ip(Some(addr));
    let change = RepChange {
        enterprise_id: &e.id,
        user_id: &session.user_id,
        current: &f.current,
        new: &f.password,
        sid: &session.sid,
        ip: &ip,
        now: state.clock.now(),
    };
    let throttle = &state.config.login_throttle;
    let changed = match onboarding::change_password(&state.store, &state.passwords, &state, throttle, change).await {
        Err(EnterpriseError::Invalid(k)) => return Ok(fail(jar, StatusCode::BAD_REQUEST, k)),
        other => other?,
    };
    match changed {
        Ok(()) => {
            let v = view(&e, Some(state.pages.text(locale, "enterprise_password_changed")), None);
            Ok(render(&state, jar, StatusCode::OK, "enterprise_password.html", locale, v))
        }
        Err(k @ "enterprise_locked") => Ok(fail(jar, StatusCode::TOO_MANY_REQUESTS, k)),
        Err(k @ ("enterprise_password_current_wrong" | "enterprise_password_same")) => {
            Ok(fail(jar, StatusCode::BAD_REQUEST, k))
        }
        Err(k) => Ok(fail(jar, StatusCode::CONFLICT, k)),
    }
}
