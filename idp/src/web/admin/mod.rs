//! The operator console at `/admin` (issue 15). The console is an OIDC
//! client of this provider (`staff::console_sign_in`): without a console
//! session every page sends the browser to `/authorize` (PKCE, state,
//! nonce, L3 by `acr_values` and the client's minimum, `max_age`), so the
//! provider's own sign-in and step-up enforce L3 with a strong factor;
//! `/admin/callback` redeems the code in-process, checks the ID token like
//! a relying party and sets the console's own short-lived cookie. Every
//! page then goes through [`Console`]: the console session, an account
//! holding a staff role at proofing L3, a passkey or authenticator-app use
//! within the L3 max age (else the console's step-up page). Sensitive
//! actions ask for the strong factor again within
//! `staff::SENSITIVE_MAX_AGE`. Each handler calls one `domain::staff` use
//! case, which checks the role and audits with the staff member as actor.
mod appeal_detail;
mod apps;
mod pages;
mod queues;
mod sign_in;

pub use appeal_detail::{appeal_evidence, appeal_show};
pub use apps::{app_auth, app_branding, app_mtls};
pub use pages::*;
pub mod api;
mod audit_pages;
pub use audit_pages::*;
pub use queues::*;
pub use sign_in::*;

use crate::domain::assurance;
use crate::domain::staff::console_sign_in::{self, ConsoleSession, Flow};
use crate::domain::staff::{self, Staff, StaffError};
use crate::kit::cookies;
use crate::kit::extract::PageError;
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

/// The console session cookie (`__Host-` prefixed under TLS).
pub const CONSOLE_COOKIE: &str = "idp_console";
/// The started console sign-in (state, nonce, PKCE verifier, page).
pub const FLOW_COOKIE: &str = "idp_console_flow";

/// A staff member in the console, past the gate.
pub struct Console {
    pub staff: Staff,
    pub session: ConsoleSession,
    pub proofing: u8,
    pub locale: &'static str,
}

/// Starts the console's OIDC sign-in: the flow cookie, then `/authorize`.
pub fn start_sign_in(state: &AppState, jar: CookieJar, next: &str) -> Response {
    let next = cookies::safe_local_path(next).filter(|p| p.starts_with("/admin") || p.starts_with("/plugins/"));
    let flow = Flow::start(next.unwrap_or("/admin"));
    let jar = jar.add(cookies::build(state, FLOW_COOKIE, flow.to_cookie(), Some(console_sign_in::FLOW_SECONDS)));
    let url = flow.authorize_url(&state.config.issuer, &state.config.acr_prefix, state.config.assurance.l3_max_age);
    (jar, see_other(&url)).into_response()
}

impl FromRequestParts<AppState> for Console {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let locale = cookies::locale(state, &parts.headers, None);
        let jar = CookieJar::from_headers(&parts.headers);
        let now = state.clock.now();
        let found = match cookies::get(state, &jar, CONSOLE_COOKIE) {
            Some(c) => console_sign_in::find(&state.store, &c, now).await?,
            None => None,
        };
        let Some(session) = found else {
            // Someone signed in to the provider who holds no staff role, or
            // whose proofing is below L3, is told so here: signing in again
            // would not help.
            if let Some(sso) = cookies::current_session(state, &jar).await? {
                if staff::load(&state.store, &sso.user_id).await?.is_none() {
                    return Err(PageError::forbidden("admin_not_staff"));
                }
                if assurance::proofing_level(&state.store, &sso.user_id).await? < console_sign_in::LEVEL {
                    return Err(PageError::forbidden("admin_needs_l3"));
                }
            }
            let get = parts.method == axum::http::Method::GET;
            let next = parts.uri.path_and_query().map(|p| p.as_str()).filter(|_| get).unwrap_or("/admin");
            return Err(PageError::Respond(start_sign_in(state, jar, next)));
        };
        let Some(staff) = staff::load(&state.store, &session.user_id).await? else {
            return Err(PageError::forbidden("admin_not_staff"));
        };
        let proofing = assurance::proofing_level(&state.store, &staff.user_id).await?;
        if proofing < console_sign_in::LEVEL {
            return Err(PageError::forbidden("admin_needs_l3"));
        }
        if now - session.strong_at > state.config.assurance.l3_max_age {
            return Err(PageError::Respond(see_other(&state.endpoint("/admin/step-up"))));
        }
        Ok(Console { staff, session, proofing, locale })
    }
}

/// Whether the browser carries a console or personal session cookie (then
/// a plugin admin route without a bearer token goes through the console's
/// gate).
pub fn has_session(state: &AppState, jar: &CookieJar) -> bool {
    cookies::get(state, jar, CONSOLE_COOKIE).is_some() || cookies::get(state, jar, cookies::SESSION).is_some()
}

/// The console's gate for a request outside the `/admin` routes (a plugin
/// admin page opened from the console).
pub async fn console_from(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Console, PageError> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    parts.uri = axum::http::Uri::from_static("/admin/plugins");
    Console::from_request_parts(&mut parts, state).await
}

impl Console {
    /// For a sensitive action: `Some` refusal unless the strong factor is
    /// this fresh (then the browser goes to step up first).
    pub fn stale(&self, state: &AppState) -> Option<PageError> {
        let fresh = state.clock.now() - self.session.strong_at <= staff::SENSITIVE_MAX_AGE;
        (!fresh).then(|| PageError::Respond(see_other(&state.endpoint("/admin/step-up?fresh=1"))))
    }

    /// Renders a console page with the navigation this staff member may
    /// use and a CSRF token for its forms.
    pub fn render(&self, state: &AppState, jar: CookieJar, name: &str, mut ctx: tera::Context) -> Response {
        self.render_status(state, jar, StatusCode::OK, name, &mut ctx)
    }

    pub fn render_status(
        &self,
        state: &AppState,
        jar: CookieJar,
        status: StatusCode,
        name: &str,
        ctx: &mut tera::Context,
    ) -> Response {
        use crate::domain::staff::Permission as P;
        let (jar, browser) = cookies::browser(state, jar);
        ctx.insert("csrf", &cookies::csrf_token(state, &browser));
        let s = &self.staff;
        ctx.insert(
            "nav",
            &serde_json::json!({
                "username": s.username,
                "roles": s.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "people": s.can(P::ViewPeople),
                "apps": s.can(P::ViewApps),
                "audit": s.can(P::ViewAudit),
                "reviews": s.can(P::Review),
                "staff": s.can(P::GrantRoles),
                "plugins": s.can(P::ManagePlugins),
                "counter": s.has(staff::Role::CounterOperator) || s.has(staff::Role::PlatformAdmin),
                "content": s.can(P::ManageContent),
            }),
        );
        (jar, page(state, status, name, self.locale, ctx.clone())).into_response()
    }
}

/// A refused console action as a page (the `From` impl in `kit::extract`,
/// so a handler can also just write `?`).
pub fn refused(e: StaffError) -> PageError {
    PageError::from(e)
}
