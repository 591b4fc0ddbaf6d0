//! `/device` (RFC 8628 §3.3): the signed-in citizen enters the code shown
//! on the TV or kiosk, sees which app asks for what, and allows or denies.
use crate::domain::assurance;
use crate::domain::tokens::device::{self, Approver};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::kit::pages::page;
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct CodeQuery {
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    /// `allow` or `deny`; absent: only look the code up.
    #[serde(default)]
    decision: String,
}
crate::with_csrf!(DecideForm);

async fn render(
    state: &AppState,
    locale: &'static str,
    jar: CookieJar,
    user_code: &str,
    outcome: Option<&str>,
) -> Result<Response, PageError> {
    let mut ctx = tera::Context::new();
    let now = state.clock.now();
    let found = if user_code.is_empty() { None } else { device::pending(&state.store, user_code, now).await? };
    if let Some(row) = &found {
        let client = state.clients.find(&row.client_id).await?;
        ctx.insert("app_name", &client.map(|c| c.name).unwrap_or_default());
        // In words, as on the consent page: citizens never see scope names.
        ctx.insert("scopes", &super::consent::scope_words(state, &row.scope, locale));
    }
    ctx.insert("user_code", user_code);
    ctx.insert("found", &found.is_some());
    ctx.insert("unknown", &(!user_code.is_empty() && found.is_none() && outcome.is_none()));
    ctx.insert("outcome", &outcome.unwrap_or_default());
    let (jar, browser) = cookies::browser(state, jar);
    ctx.insert("csrf", &cookies::csrf_token(state, &browser));
    Ok((jar, page(state, StatusCode::OK, "device.html", locale, ctx)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Locale(locale): Locale,
    _me: SignedIn,
    jar: CookieJar,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    render(&state, locale, jar, &q.user_code, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    Locale(locale): Locale,
    me: SignedIn,
    jar: CookieJar,
    CsrfForm(f): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    let approve = match f.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return render(&state, locale, jar, &f.user_code, None).await,
    };
    let now = state.clock.now();
    let proofing = assurance::proofing_level(&state.store, &me.user.id).await?;
    let standing = crate::domain::tokens::authorize::Standing {
        proofing,
        factors: me.session.factors.as_slice(),
        now,
        cfg: &state.config.assurance,
    };
    let who = Approver {
        user_id: &me.user.id,
        sid: &me.session.sid,
        auth_time: me.session.auth_time,
        acr: assurance::acr(&state.config.acr_prefix, standing.level()),
        amr: me.session.amr(),
    };
    let outcome = match device::decide(&state.store, &f.user_code, who, approve, now).await? {
        true if approve => "approved",
        true => "denied",
        false => "expired",
    };
    render(&state, locale, jar, "", Some(outcome)).await
}
