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
use crate::kit::extract::{CsrfForm, Locale, PageError};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::store::entities::{enterprise, user};
use crate::web::enterprise::render;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
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
pub struct AgentSession {
    session: SessionInfo,
    delegation_id: String,
    enterprise: enterprise::Model,
    agent: user::Model,
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = PageError;

    /// No session: the enterprise sign-in. A session not acting as an
    /// agent (or a suspended account): refused.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(session) = current_session(state, &jar).await? else {
            return Err(PageError::Respond(see_other(&state.endpoint("/login/enterprise"))));
        };
        let acting = acting::of_session(&state.store, &session.sid).await?;
        let Some((eid, delegation_id)) = acting.and_then(|a| a.delegation_id.map(|d| (a.enterprise_id, d))) else {
            return Err(PageError::forbidden("agent_password_not_agent"));
        };
        let e = enterprises::find(&state.store, &eid).await?;
        let u = state.users.find(&session.user_id).await?;
        match (e, u) {
            (Some(e), Some(u)) if !u.disabled => Ok(AgentSession { session, delegation_id, enterprise: e, agent: u }),
            _ => Err(PageError::forbidden("agent_password_not_agent")),
        }
    }
}

fn view(e: &enterprise::Model, info: Option<String>, error: Option<String>) -> serde_json::Value {
    json!({ "enterprise": { "name": e.name, "uscc": e.uscc }, "info": info, "error": error })
}

pub async fn show(State(state): State<AppState>, jar: CookieJar, Locale(locale): Locale, a: AgentSession) -> Response {
    render(&state, jar, StatusCode::OK, "agent_password.html", locale, view(&a.enterprise, None, None))
}

crate::with_csrf!(ChangeForm);

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    a: AgentSession,
    CsrfForm(f): CsrfForm<ChangeForm>,
) -> Result<Response, PageError> {
    let fail = |jar: CookieJar, status: StatusCode, key: &str| {
        let v = view(&a.enterprise, None, Some(state.pages.text(locale, key)));
        render(&state, jar, status, "agent_password.html", locale, v)
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
    let change = Change {
        delegation_id: &a.delegation_id,
        uscc: &a.enterprise.uscc,
        agent: &a.agent,
        current: &f.current,
        new: &f.password,
        sid: &a.session.sid,
        ip: &ip,
        now: state.clock.now(),
    };
    let throttle = &state.config.login_throttle;
    let changed = match agent_password::change(&state.store, &state.passwords, &state, throttle, change).await {
        Err(EnterpriseError::Invalid(k)) => return Ok(fail(jar, StatusCode::BAD_REQUEST, k)),
        other => other?,
    };
    match changed {
        Ok(()) => {
            let v = view(&a.enterprise, Some(state.pages.text(locale, "agent_password_changed")), None);
            Ok(render(&state, jar, StatusCode::OK, "agent_password.html", locale, v))
        }
        Err(k @ "enterprise_locked") => Ok(fail(jar, StatusCode::TOO_MANY_REQUESTS, k)),
        Err(k @ "agent_password_current_wrong") => Ok(fail(jar, StatusCode::BAD_REQUEST, k)),
        Err(k) => Ok(fail(jar, StatusCode::CONFLICT, k)),
    }
}
