//! Agent registration (C2): enterprise information (region,
//! credit code), the agent's information (document, name, number, validity,
//! gender, ethnicity, phone + SMS code) and the legal representative's (name,
//! ID number, phone); then the agent's scan + face check in the app; the
//! result is a pending agent delegation the representative approves (C3).
//! A person no account holds yet gets his citizen account then, made of
//! what the form gave (`enterprises::register_agent`): the face check is of
//! him, through whichever signed-in app scanned the gate's code.
//!
//! The password set here (the manual's step 4, "设置密码", C2's rule) is the
//! one the agent types at this enterprise's login as "我是代理人": only its
//! argon2id hash travels in the gate payload (never shown to the app) and is
//! stored on the pending agent delegation.
use crate::domain::assurance::face_gate::{GatePayload, RegisterGate};
use crate::domain::delegation::enterprises::{self, check_enterprise_password};
use crate::domain::identity::documents::{Document, DocumentForm, DocumentNumber};
use crate::domain::identity::profile::ETHNIC_GROUPS;
use crate::domain::identity::users::PhoneNumber;
use crate::kit::cookies;
use crate::kit::extract::{Locale, PageError};
use crate::ports::sms::SmsPurpose;
use crate::server::AppState;
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use crate::web::enterprise::render;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct AgentForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    name: String,
    /// The agent's document type (A2); empty = guessed from the number.
    #[serde(default)]
    doc_type: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    id_valid_from: String,
    #[serde(default)]
    id_valid_to: String,
    /// The document is valid long-term (长期有效): no end date.
    #[serde(default)]
    long_term: Option<String>,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    ethnicity: String,
    #[serde(default)]
    phone: String,
    #[serde(default, skip_serializing)]
    captcha_id: String,
    #[serde(default, skip_serializing)]
    captcha: String,
    #[serde(default, skip_serializing)]
    sms_code: String,
    #[serde(default)]
    rep_name: String,
    #[serde(default)]
    rep_id_number: String,
    #[serde(default)]
    rep_phone: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default, skip_serializing)]
    password2: String,
    #[serde(default, skip_serializing)]
    agree: Option<String>,
    #[serde(default, skip_serializing)]
    action: String,
}

async fn show_form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    locale: &str,
    f: &AgentForm,
    notice: Option<Notice>,
) -> Response {
    let (info, error) = match notice {
        Some(Notice::Info(m)) => (Some(m), None),
        Some(Notice::Error(m)) => (None, Some(m)),
        None => (None, None),
    };
    let captcha = state.captcha.create().await.ok();
    let v = json!({ "f": f, "info": info, "error": error, "ethnic_groups": &ETHNIC_GROUPS[..],
        "captcha_id": captcha.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
        "captcha_image": captcha.map(|c| c.image).unwrap_or_default() });
    render(state, jar, status, "agent_register.html", locale, v)
}

pub async fn show(State(state): State<AppState>, jar: CookieJar, Locale(locale): Locale) -> Response {
    show_form(&state, jar, StatusCode::OK, locale, &AgentForm::default(), None).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    Form(f): Form<AgentForm>,
) -> Result<Response, PageError> {
    let text = |k: &str| state.pages.text(locale, k);
    let ip = cookies::client_ip(Some(addr));
    let code_req = CodeRequest::new(SmsPurpose::Register, &f.phone, &ip, &f.captcha_id, &f.captcha);
    if let Some((status, notice)) = sms_form::csrf_or_send(&state, &jar, locale, &f.csrf, &f.action, code_req).await {
        return Ok(show_form(&state, jar, status, locale, &f, Some(notice)).await);
    }
    let refuse = |status, n| show_form(&state, jar.clone(), status, locale, &f, n);
    let bad = |key: &str| Some(Notice::Error(text(key)));
    let uscc = match crate::domain::delegation::uscc::Uscc::parse(&f.uscc) {
        Ok(u) => u,
        Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, bad(e.message_key())).await),
    };
    let (Ok(id), Ok(phone), Ok(rep_id), Ok(rep_phone)) = (
        DocumentNumber::parse_any(Some(f.doc_type.as_str()), &f.id_number),
        PhoneNumber::parse(&f.phone),
        DocumentNumber::parse_any(None, &f.rep_id_number),
        PhoneNumber::parse(&f.rep_phone),
    ) else {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("agent_register_fields")).await);
    };
    if f.name.trim().is_empty() || f.rep_name.trim().is_empty() || f.region.trim().is_empty() {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("agent_register_fields")).await);
    }
    // C2: the document as the manual asks for it — its type, the name on
    // it, the validity (start, end or long-term) under the documents'
    // rules for that type; gender and ethnicity from their lists.
    let today = crate::domain::delegation::today(state.clock.now());
    let doc_form = DocumentForm {
        doc_type: id.kind().as_str().into(),
        name: f.name.clone(),
        number: id.as_str().into(),
        valid_from: f.id_valid_from.clone(),
        valid_to: f.id_valid_to.clone(),
        long_term: f.long_term.clone(),
    };
    let doc = match Document::parse(&doc_form, today) {
        Ok(doc) => doc,
        Err(e) => return Ok(refuse(StatusCode::BAD_REQUEST, bad(e.key())).await),
    };
    if !matches!(f.gender.as_str(), "male" | "female") {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("agent_register_gender_missing")).await);
    }
    if !ETHNIC_GROUPS.contains(&f.ethnicity.trim()) {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("agent_register_ethnicity_missing")).await);
    }
    if f.agree.is_none() {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("agent_register_agree_missing")).await);
    }
    if let Err(k) = check_enterprise_password(&f.password) {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad(k)).await);
    }
    if f.password != f.password2 {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("register_password_mismatch")).await);
    }
    let Some(e) = enterprises::find_by_uscc(&state.store, uscc.as_str()).await? else {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("enterprise_unknown")).await);
    };
    // C5: a representative that does not match the record → "法人信息不匹配".
    if !enterprises::representative_matches(&e, &f.rep_name, rep_id.as_str()) {
        return Ok(refuse(StatusCode::CONFLICT, bad("enterprise_representative_mismatch")).await);
    }
    if !state.sms_codes.verify(phone.as_str(), SmsPurpose::Register, &f.sms_code).await? {
        return Ok(refuse(StatusCode::BAD_REQUEST, bad("sms_code_wrong")).await);
    }
    // A person new to the platform gets an account with this phone: told
    // now (only after the phone's code) if another account has it.
    if let Some(k) = enterprises::agent_phone_refusal(&state.store, id.as_str(), &phone).await? {
        return Ok(refuse(StatusCode::CONFLICT, bad(k)).await);
    }
    // Only the hash of the agent password waits in the gate (never shown:
    // the app reads a masked detail, not the payload).
    let hash = state.passwords.hash(f.password.clone()).await?;
    let payload = GatePayload::RegisterAgent(RegisterGate {
        enterprise: e.id.clone(),
        name: f.name.trim().into(),
        id_number: id.as_str().into(),
        phone: phone.as_str().into(),
        agent_password_hash: hash,
        region: f.region.trim().into(),
        doc_type: id.kind().as_str().into(),
        valid_from: doc.validity.start.to_string(),
        valid_to: doc.validity.end.map(|d| d.to_string()).unwrap_or_default(),
        gender: f.gender.clone(),
        ethnicity: f.ethnicity.trim().into(),
        rep_phone: rep_phone.as_str().into(),
    });
    Ok(crate::web::enterprise::to_face_check(&state, jar, locale, &payload, id.as_str(), state.clock.now()).await)
}

/// After the agent's face check: the pending agent delegation of the account
/// holding his identity (whose own password stays his) — created now if
/// none does — with the agent password's hash.
pub async fn finish(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    payload: &RegisterGate,
    now: i64,
) -> Result<Response, PageError> {
    let p = payload;
    let details = enterprises::AgentDetails {
        name: p.name.clone(),
        region: p.region.clone(),
        doc_type: p.doc_type.clone(),
        valid_from: p.valid_from.clone(),
        valid_to: Some(p.valid_to.clone()).filter(|t| !t.is_empty()),
        gender: p.gender.clone(),
        ethnicity: p.ethnicity.clone(),
        phone: p.phone.clone(),
        rep_phone: p.rep_phone.clone(),
    };
    let hash = &p.agent_password_hash;
    let r = enterprises::register_agent(&state.store, &p.enterprise, &p.id_number, hash, &details, now).await?;
    let (status, info, error) = match r {
        Ok(_) => (StatusCode::OK, Some(state.pages.text(locale, "agent_register_done")), None),
        Err(k) => (StatusCode::CONFLICT, None, Some(state.pages.text(locale, k))),
    };
    let v = json!({ "f": {}, "done": true, "info": info, "error": error, "captcha_id": "", "captcha_image": "" });
    Ok(render(state, jar, status, "agent_register.html", locale, v))
}
