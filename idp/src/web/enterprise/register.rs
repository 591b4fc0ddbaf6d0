//! Enterprise registration from the web (seed 004 §2, issue 20):
//! `/enterprise/register` — the representative, signed in as the citizen
//! whose real-name identity the form names, gives the credit code, the
//! enterprise's name and region and his phone (SMS code behind the graphic
//! captcha); his face check through the app opens the gate; the enterprise
//! is created (`onboarding::register`, credit code unique); then
//! `/enterprise/register/password` sets its password, after which the
//! enterprise signs in at `/login/enterprise`.
use crate::domain::assurance::face_gate::{GatePayload, RegisterEnterpriseGate};
use crate::domain::delegation::enterprises::check_enterprise_password;
use crate::domain::delegation::onboarding::{self, RegistrationForm};
use crate::domain::identity::documents::ALL_TYPES;
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::oidc::flow::see_other;
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::store::entities::user;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use crate::web::enterprise::render;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct RegisterForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    rep_name: String,
    #[serde(default)]
    rep_doc_type: String,
    #[serde(default)]
    rep_number: String,
    #[serde(default)]
    rep_phone: String,
    #[serde(default, skip_serializing)]
    captcha_id: String,
    #[serde(default, skip_serializing)]
    captcha: String,
    #[serde(default, skip_serializing)]
    sms_code: String,
    #[serde(default, skip_serializing)]
    agree: Option<String>,
    /// `send_code` or `submit`.
    #[serde(default, skip_serializing)]
    action: String,
}

/// The document types of the select, with their locale keys.
fn doc_types() -> Vec<serde_json::Value> {
    ALL_TYPES.iter().map(|t| json!({ "value": t.as_str(), "key": t.label_key() })).collect()
}

/// The form (what was typed kept) with a notice and a fresh captcha.
async fn form_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &RegisterForm,
    notice: Option<Notice>,
) -> Response {
    let (info, error) = match notice {
        Some(Notice::Info(m)) => (Some(m), None),
        Some(Notice::Error(m)) => (None, Some(m)),
        None => (None, None),
    };
    let captcha = state.captcha.create().await.ok();
    let v = json!({ "step": "form", "f": f, "doc_types": doc_types(), "info": info, "error": error,
        "captcha_id": captcha.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
        "captcha_image": captcha.map(|c| c.image).unwrap_or_default() });
    render(state, jar, status, "enterprise_register.html", locale, v)
}

/// The form with the representative's own identity and phone filled in.
async fn prefilled(state: &AppState, u: &user::Model) -> RegisterForm {
    let id = crate::domain::identity::current(&state.store, &u.id).await.ok().flatten();
    RegisterForm {
        rep_name: id.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
        rep_doc_type: id.as_ref().map(|i| i.doc_type.clone()).unwrap_or_default(),
        rep_number: id.map(|i| i.doc_number).unwrap_or_default(),
        rep_phone: u.phone.clone().unwrap_or_default(),
        ..Default::default()
    }
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
) -> Response {
    let f = prefilled(&state, &u).await;
    form_page(&state, jar, StatusCode::OK, locale, &f, None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    Form(f): Form<RegisterForm>,
) -> Result<Response, PageError> {
    let ip = cookies::client_ip(Some(addr));
    let code_req = CodeRequest::new(SmsPurpose::Register, &f.rep_phone, &ip, &f.captcha_id, &f.captcha);
    if let Some((status, notice)) = sms_form::csrf_or_send(&state, &jar, locale, &f.csrf, &f.action, code_req).await {
        return Ok(form_page(&state, jar, status, locale, &f, Some(notice)).await);
    }
    let refuse = |status, key: &str| {
        let notice = Some(Notice::Error(state.pages.text(locale, key)));
        form_page(&state, jar.clone(), status, locale, &f, notice)
    };
    let form = RegistrationForm {
        uscc: &f.uscc,
        name: &f.name,
        region: &f.region,
        rep_name: &f.rep_name,
        rep_doc_type: &f.rep_doc_type,
        rep_number: &f.rep_number,
        rep_phone: &f.rep_phone,
    };
    let reg = match onboarding::parse(&form) {
        Ok(r) => r,
        Err(key) => return Ok(refuse(StatusCode::BAD_REQUEST, key).await),
    };
    if f.agree.is_none() {
        return Ok(refuse(StatusCode::BAD_REQUEST, "agent_register_agree_missing").await);
    }
    let now = state.clock.now();
    let today = crate::domain::delegation::today(now);
    if let Err(key) = onboarding::check_applicant(&state.store, &u.id, &reg, today).await? {
        return Ok(refuse(StatusCode::CONFLICT, key).await);
    }
    if !state.sms_codes.verify(reg.rep_phone.as_str(), SmsPurpose::Register, &f.sms_code).await? {
        return Ok(refuse(StatusCode::BAD_REQUEST, "sms_code_wrong").await);
    }
    let payload = GatePayload::RegisterEnterprise(onboarding::gate_of(&u.id, &reg));
    Ok(crate::web::enterprise::to_face_check(&state, jar, locale, &payload, reg.rep_number.as_str(), now).await)
}

/// After the representative's face check: the enterprise is created and
/// he goes on to set its password; a credit code registered meanwhile (a
/// racing registration won) shows the form again with the message.
pub async fn after_face(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    p: &RegisterEnterpriseGate,
    now: i64,
) -> Result<Response, PageError> {
    match onboarding::register(&state.store, p, now).await? {
        Ok(e) => Ok(see_other(&state.endpoint(&format!("/enterprise/register/password?e={}", e.id)))),
        Err(key) => {
            let f = RegisterForm {
                uscc: p.uscc.clone(),
                name: p.name.clone(),
                region: p.region.clone(),
                rep_name: p.rep_name.clone(),
                rep_doc_type: p.rep_doc_type.clone(),
                rep_number: p.rep_number.clone(),
                rep_phone: p.rep_phone.clone(),
                ..Default::default()
            };
            let notice = Some(Notice::Error(state.pages.text(locale, key)));
            Ok(form_page(state, jar, StatusCode::CONFLICT, locale, &f, notice).await)
        }
    }
}

#[derive(Deserialize, Default)]
pub struct EnterpriseQuery {
    #[serde(default)]
    e: String,
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    e: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

crate::with_csrf!(PasswordForm);

fn password_view(
    e: &crate::store::entities::enterprise::Model,
    done: bool,
    error: Option<String>,
) -> serde_json::Value {
    json!({ "step": if done { "done" } else { "password" }, "enterprise": { "id": e.id, "name": e.name, "uscc": e.uscc },
        "error": error, "info": null })
}

/// Step 3: the representative who registered the enterprise sets its
/// password (only while it is unset).
pub async fn password_show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    Query(q): Query<EnterpriseQuery>,
) -> Result<Response, PageError> {
    let e = onboarding::awaiting_password(&state.store, &q.e, &u.id)
        .await?
        .ok_or(PageError::Refused(StatusCode::CONFLICT, "enterprise_password_already_set"))?;
    Ok(render(&state, jar, StatusCode::OK, "enterprise_register.html", locale, password_view(&e, false, None)))
}

pub async fn password_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let e = onboarding::awaiting_password(&state.store, &f.e, &u.id)
        .await?
        .ok_or(PageError::Refused(StatusCode::CONFLICT, "enterprise_password_already_set"))?;
    let fail = |jar, key: &str| {
        let v = password_view(&e, false, Some(state.pages.text(locale, key)));
        render(&state, jar, StatusCode::BAD_REQUEST, "enterprise_register.html", locale, v)
    };
    if let Err(key) = check_enterprise_password(&f.password) {
        return Ok(fail(jar, key));
    }
    if f.password != f.password2 {
        return Ok(fail(jar, "register_password_mismatch"));
    }
    let now = state.clock.now();
    let set = match onboarding::set_first_password(&state.store, &state.passwords, &e.id, &u.id, &f.password, now).await
    {
        Err(crate::domain::delegation::enterprises::EnterpriseError::Invalid(key)) => return Ok(fail(jar, key)),
        other => other?,
    };
    set.map_err(|key| PageError::Refused(StatusCode::CONFLICT, key))?;
    Ok(render(&state, jar, StatusCode::OK, "enterprise_register.html", locale, password_view(&e, true, None)))
}
