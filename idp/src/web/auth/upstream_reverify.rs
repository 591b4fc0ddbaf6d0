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
use crate::domain::authn::reverify::{self, UpstreamOutcome, UpstreamProof};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::pages::{error_page, unavailable};
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::web::auth::upstream::{Answer, redirect, verified_answer};
use axum::Form;
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

/// The "verify with X" button (signed in, CSRF-checked, account linked at X).
pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<StartForm>,
) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let Some(up) = state.config.upstreams.get(&name) else {
        return error_page(&state, StatusCode::NOT_FOUND, locale, "upstream_unknown");
    };
    // C1: re-verification is for the person's own session only.
    let session = match crate::kit::personal::session(&state, &jar, locale).await {
        Ok(Some(s)) => s,
        Ok(None) => return cookies::sign_in_then(&state, jar, crate::web::account::security::PATH),
        Err(page) => return page,
    };
    if !cookies::csrf_ok(&state, &jar, &f.csrf) {
        return error_page(&state, StatusCode::FORBIDDEN, locale, "error_csrf");
    }
    let linked = async {
        let u = state.users.find(&session.user_id).await?.filter(|u| !u.disabled);
        let links = brokering::links_for_user(&state.store, &session.user_id).await?;
        Ok::<_, crate::domain::error::DomainError>(u.map(|u| (u, links.iter().any(|l| l.upstream == name))))
    };
    match linked.await {
        Ok(Some((u, _))) if u.phone.is_some() => {
            return error_page(&state, StatusCode::BAD_REQUEST, locale, "security_reverify");
        }
        Ok(Some((_, true))) => {}
        Ok(Some((_, false))) => {
            return error_page(&state, StatusCode::BAD_REQUEST, locale, "upstream_reverify_unlinked");
        }
        Ok(None) => return see_other(&state.endpoint("/login")),
        Err(e) => return unavailable(&state, locale, e),
    }
    let purpose =
        Purpose::Reverify(Reverify { user_id: session.user_id, sid: session.sid, return_to: return_to(&f.return_to) });
    redirect(&state, jar, (&name, up), locale, Some(locale), purpose).await
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
) -> Response {
    let user = async {
        let Some(s) = current_session(state, &jar).await? else { return Ok(None) };
        if s.sid != asked.sid || s.user_id != asked.user_id {
            return Ok(None);
        }
        Ok::<_, crate::domain::error::DomainError>(state.users.find(&s.user_id).await?.filter(|u| !u.disabled))
    };
    let u = match user.await {
        Ok(Some(u)) => u,
        Ok(None) => return error_page(state, StatusCode::BAD_REQUEST, locale, "upstream_reverify_session"),
        Err(e) => return unavailable(state, locale, e),
    };
    let (name, max_age) = (answer.name, answer.up.reverify_max_age);
    let identity = match verified_answer(state, locale, answer, false).await {
        Ok(i) => i,
        Err(page) => return page,
    };
    let proof = UpstreamProof {
        upstream: name,
        issuer: &identity.issuer,
        subject: &identity.subject,
        auth_time: identity.auth_time,
        issued_at: identity.issued_at,
        max_age,
    };
    let now = state.clock.now();
    match reverify::at_upstream(&state.store, &u, &proof).await {
        Ok(UpstreamOutcome::Verified) => {
            crate::web::account::security::reverified(state, locale, &u.id, browser_hash, &asked.return_to, now).await
        }
        Ok(UpstreamOutcome::OtherAccount) => {
            tracing::info!("upstream {name}: re-verification by an upstream account not linked to {}", u.id);
            error_page(state, StatusCode::FORBIDDEN, locale, "upstream_reverify_other_account")
        }
        Ok(UpstreamOutcome::NotFresh) => {
            tracing::info!(
                "upstream {name}: auth_time {:?} not fresh (iat {})",
                identity.auth_time,
                identity.issued_at
            );
            error_page(state, StatusCode::BAD_REQUEST, locale, "upstream_reverify_not_fresh")
        }
        Ok(UpstreamOutcome::UseSms) => error_page(state, StatusCode::BAD_REQUEST, locale, "security_reverify"),
        Err(e) => unavailable(state, locale, e),
    }
}
