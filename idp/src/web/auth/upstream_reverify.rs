//! Re-verification at the linked upstream provider (A3/A5): an
//! account made through third-party login may have no phone, no password
//! and no factor, so before it can manage factors it proves itself by
//! signing in again at its upstream (`prompt=login`, `max_age=0`). The
//! authorization goes through the same state handling as third-party
//! sign-in (`upstream::redirect`, `brokering::take_start`), with the purpose
//! `reverify` bound to this account and session; its callback only ever
//! opens the re-verified flow — it never signs in, links or registers.
use crate::domain::authn::brokering::{self, Purpose, Reverify};
use crate::domain::authn::return_path::ReturnPath;
use crate::domain::authn::reverify::{self, UpstreamOutcome, UpstreamProof, UpstreamStart};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::{CsrfForm, PageError};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::web::auth::upstream::{Answer, redirect, verified_answer};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct ReverifyChoice {
    name: String,
    label: String,
}

/// "使用 X 验证" for each configured upstream this account is linked at.
pub async fn choices(state: &AppState, user_id: &str, locale: &str) -> Vec<ReverifyChoice> {
    let links = match brokering::links_for_user(&state.store, user_id).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("linked upstreams: {e}");
            return Vec::new();
        }
    };
    let template = state.pages.text(locale, "upstream_reverify_with");
    links
        .into_iter()
        .filter_map(|l| {
            let up = state.config.upstreams.get(&l.upstream)?;
            Some(ReverifyChoice { label: template.replace("{name}", up.display_name(locale)), name: l.upstream })
        })
        .collect()
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
}

/// Only the person's own `/account…` pages: the flow id is appended to it.
fn return_to(raw: &str) -> String {
    ReturnPath::parse(raw)
        .filter(|p| p.as_str().starts_with("/account"))
        .map_or_else(|| crate::web::account::security::PATH.to_string(), |p| p.as_str().to_string())
}

crate::with_csrf!(StartForm);

/// The "verify with X" button (signed in, CSRF-checked, account linked at X).
pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<StartForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let Some(up) = state.config.upstreams.get(&name) else {
        return Err(PageError::Refused(StatusCode::NOT_FOUND, "upstream_unknown"));
    };
    // C1: re-verification is for the person's own session only.
    let Some(session) = crate::kit::personal::session(&state, &jar, locale).await? else {
        return Ok(cookies::sign_in_then(&state, jar, crate::web::account::security::PATH));
    };
    match reverify::upstream_start(&state.store, &state.users, &session.user_id, &name).await? {
        UpstreamStart::Allowed => {}
        UpstreamStart::UseSms => return Err(PageError::bad_request("security_reverify")),
        UpstreamStart::Unlinked => return Err(PageError::bad_request("upstream_reverify_unlinked")),
        UpstreamStart::NoAccount => return Ok(see_other(&state.endpoint("/login"))),
    }
    let purpose =
        Purpose::Reverify(Reverify { user_id: session.user_id, sid: session.sid, return_to: return_to(&f.return_to) });
    redirect(&state, jar, (&name, up), Some(locale), purpose).await
}

/// The callback of a re-verification: counts only in the session that
/// asked, for the upstream account linked to it, after a fresh sign-in.
pub(crate) async fn finish(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    answer: Answer<'_>,
    asked: &Reverify,
    browser_hash: &str,
) -> Result<Response, PageError> {
    let session = current_session(state, &jar).await?;
    let Some(u) = reverify::upstream_asker(&state.users, session.as_ref(), &asked.sid, &asked.user_id).await? else {
        return Err(PageError::bad_request("upstream_reverify_session"));
    };
    let (name, max_age) = (answer.name, answer.up.reverify_max_age);
    let identity = verified_answer(state, answer, false).await?;
    let proof = UpstreamProof {
        upstream: name,
        issuer: &identity.issuer,
        subject: &identity.subject,
        auth_time: identity.auth_time,
        issued_at: identity.issued_at,
        max_age,
    };
    let now = state.clock.now();
    match reverify::at_upstream(&state.store, &u, &proof).await? {
        UpstreamOutcome::Verified => {
            Ok(crate::web::account::security::reverified(state, locale, &u.id, browser_hash, &asked.return_to, now)
                .await)
        }
        UpstreamOutcome::OtherAccount => {
            tracing::info!("upstream {name}: re-verification by an upstream account not linked to {}", u.id);
            Err(PageError::forbidden("upstream_reverify_other_account"))
        }
        UpstreamOutcome::NotFresh => {
            tracing::info!(
                "upstream {name}: auth_time {:?} not fresh (iat {})",
                identity.auth_time,
                identity.issued_at
            );
            Err(PageError::bad_request("upstream_reverify_not_fresh"))
        }
        UpstreamOutcome::UseSms => Err(PageError::bad_request("security_reverify")),
    }
}
