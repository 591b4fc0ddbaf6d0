//! `/enterprise/agent/password` (C2): the agent signed in for an enterprise
//! changes the password of that enterprise login — current password, the
//! new one twice (C2's rule). A wrong current password counts against the
//! sign-in throttle; a change ends the agent's other sessions for the
//! enterprise and every refresh token issued under the delegation, with
//! back-channel logout to their apps, and tells his phone.
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::delegation::agent_password::{self, Change};
use crate::domain::delegation::enterprises::{EnterpriseError, check_enterprise_password};
use crate::domain::{delegation::acting, delegation::enterprises};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::pages::{error_page, unavailable};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::store::entities::{enterprise, user};
use crate::web::enterprise::{notify_ended, render};
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
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

/// The session of an agent acting for an enterprise: the session, its
/// delegation id, the enterprise and the agent's account.
struct AgentSession {
    session: SessionInfo,
    delegation_id: String,
    enterprise: enterprise::Model,
    agent: user::Model,
}

async fn agent_session(state: &AppState, jar: &CookieJar, locale: &str) -> Result<AgentSession, Response> {
    let session = match current_session(state, jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(see_other(&state.endpoint("/login/enterprise"))),
        Err(e) => return Err(unavailable(state, locale, e)),
    };
    let acting = match acting::of_session(&state.store, &session.sid).await {
        Ok(a) => a,
        Err(e) => return Err(unavailable(state, locale, e)),
    };
    let Some((eid, delegation_id)) = acting.and_then(|a| a.delegation_id.map(|d| (a.enterprise_id, d))) else {
        return Err(error_page(state, StatusCode::FORBIDDEN, locale, "agent_password_not_agent"));
    };
    let (e, u) = match (enterprises::find(&state.store, &eid).await, state.users.find(&session.user_id).await) {
        (Ok(Some(e)), Ok(Some(u))) if !u.disabled => (e, u),
        (Ok(_), Ok(_)) => return Err(error_page(state, StatusCode::FORBIDDEN, locale, "agent_password_not_agent")),
        (Err(e), _) => return Err(unavailable(state, locale, e)),
        (_, Err(e)) => return Err(unavailable(state, locale, e.to_string())),
    };
    Ok(AgentSession { session, delegation_id, enterprise: e, agent: u })
}

fn view(e: &enterprise::Model, info: Option<String>, error: Option<String>) -> serde_json::Value {
    json!({ "enterprise": { "name": e.name, "uscc": e.uscc }, "info": info, "error": error })
}

pub async fn show(State(state): State<AppState>, jar: CookieJar, headers: HeaderMap) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let a = match agent_session(&state, &jar, locale).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    render(&state, jar, StatusCode::OK, "agent_password.html", locale, view(&a.enterprise, None, None))
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(f): Form<ChangeForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let a = match agent_session(&state, &jar, locale).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let fail = |jar: CookieJar, status: StatusCode, key: &str| {
        let v = view(&a.enterprise, None, Some(state.pages.text(locale, key)));
        render(&state, jar, status, "agent_password.html", locale, v)
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return fail(jar, StatusCode::FORBIDDEN, "error_csrf");
    }
    if f.current.is_empty() {
        return fail(jar, StatusCode::BAD_REQUEST, "agent_password_current_missing");
    }
    if let Err(k) = check_enterprise_password(&f.password) {
        return fail(jar, StatusCode::BAD_REQUEST, k);
    }
    if f.password != f.password2 {
        return fail(jar, StatusCode::BAD_REQUEST, "register_password_mismatch");
    }
    // The current password is a sign-in secret: guesses here count in the
    // enterprise sign-in throttle under the keys sign-in uses (the agent of
    // this enterprise, his citizen account, and the IP).
    let ip = cookies::client_ip(Some(addr));
    let keys = enterprises::agent_keys(&a.enterprise.uscc, &a.agent);
    let reservation = match crate::web::enterprise::attempt_keys(&state, &keys, &ip).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail(jar, StatusCode::TOO_MANY_REQUESTS, "enterprise_locked"),
        Err(e) => return unavailable(&state, locale, e),
    };
    let now = state.clock.now();
    let change = Change {
        delegation_id: &a.delegation_id,
        agent: &a.agent,
        current: &f.current,
        new: &f.password,
        sid: &a.session.sid,
        ip: Some(&ip),
        now,
    };
    let ended = match agent_password::change(&state.store, &state.passwords, change).await {
        Ok(Ok(ended)) => ended,
        // A wrong guess keeps its throttle slot.
        Ok(Err(k @ "agent_password_current_wrong")) => return fail(jar, StatusCode::BAD_REQUEST, k),
        Ok(Err(k)) => {
            if let Err(e) = crate::web::enterprise::release(&state, reservation).await {
                return unavailable(&state, locale, e);
            }
            return fail(jar, StatusCode::CONFLICT, k);
        }
        Err(EnterpriseError::Invalid(k)) => return fail(jar, StatusCode::BAD_REQUEST, k),
        Err(e) => return unavailable(&state, locale, e),
    };
    if let Err(e) = crate::web::enterprise::release(&state, reservation).await {
        return unavailable(&state, locale, e);
    }
    notify_ended(&state, ended).await;
    if let Some(phone) = &a.agent.phone {
        crate::web::account::notify(&state, phone, "sms_agent_password_changed", now).await;
    }
    let v = view(&a.enterprise, Some(state.pages.text(locale, "agent_password_changed")), None);
    render(&state, jar, StatusCode::OK, "agent_password.html", locale, v)
}
