//! The operator console at `/admin` (issue 15). Every page goes through
//! [`Console`]: a signed-in personal session of an account holding a staff
//! role, at L3 with a fresh strong factor (passkey or authenticator app) —
//! else the browser is sent to sign in, or to the console's step-up page.
//! Sensitive actions ask for the strong factor again within
//! `staff::SENSITIVE_MAX_AGE`. Each handler calls one `domain::staff` use
//! case, which checks the role and audits with the staff member as actor.
mod appeal_detail;
mod pages;

pub use appeal_detail::{appeal_evidence, appeal_show};
pub use pages::*;
pub mod api;
mod audit_pages;
pub use audit_pages::*;

use crate::domain::assurance;
use crate::domain::authn::sessions::SessionInfo;
use crate::domain::staff::{self, Gate, Staff, StaffError};
use crate::kit::cookies;
use crate::kit::extract::{PageError, SignedIn};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

/// A staff member in the console, past the gate.
pub struct Console {
    pub staff: Staff,
    pub session: SessionInfo,
    pub proofing: u8,
    pub locale: &'static str,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let locale = cookies::locale(state, &parts.headers, None);
        let Some(staff) = staff::load(&state.store, &signed_in.user.id).await? else {
            return Err(PageError::forbidden("admin_not_staff"));
        };
        let proofing = assurance::proofing_level(&state.store, &staff.user_id).await?;
        let cfg = &state.config.assurance;
        match staff::gate(proofing, &signed_in.session, state.clock.now(), cfg, cfg.l3_max_age) {
            Gate::Open => Ok(Console { staff, session: signed_in.session, proofing, locale }),
            Gate::Proofing => Err(PageError::forbidden("admin_needs_l3")),
            Gate::StrongFactor => Err(PageError::Respond(see_other(&state.endpoint("/admin/step-up")))),
        }
    }
}

/// Whether the browser carries a personal session cookie (then a plugin
/// admin route without a bearer token goes through the console's gate).
pub fn has_session(state: &AppState, jar: &CookieJar) -> bool {
    cookies::get(state, jar, cookies::SESSION).is_some()
}

/// The console's gate for a request outside the `/admin` routes (a plugin
/// admin page opened from the console).
pub async fn console_from(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Console, PageError> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    Console::from_request_parts(&mut parts, state).await
}

impl Console {
    /// For a sensitive action: `Some` refusal unless the strong factor is
    /// this fresh (then the browser goes to step up first).
    pub fn stale(&self, state: &AppState) -> Option<PageError> {
        let now = state.clock.now();
        match staff::gate(self.proofing, &self.session, now, &state.config.assurance, staff::SENSITIVE_MAX_AGE) {
            Gate::Open => None,
            Gate::Proofing => Some(PageError::forbidden("admin_needs_l3")),
            Gate::StrongFactor => Some(PageError::Respond(see_other(&state.endpoint("/admin/step-up?fresh=1")))),
        }
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
            }),
        );
        (jar, page(state, status, name, self.locale, ctx.clone())).into_response()
    }
}

/// A refused console action as a page.
pub fn refused(e: StaffError) -> PageError {
    match e {
        StaffError::Forbidden => PageError::forbidden("admin_forbidden"),
        StaffError::NotFound => PageError::not_found(),
        StaffError::Invalid(key) => PageError::bad_request(key),
        StaffError::Db(e) => PageError::unavailable(e),
        StaffError::Domain(e) => PageError::unavailable(e),
    }
}
