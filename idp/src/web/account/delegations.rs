//! Personal-centre pages of the delegation model: person-to-person
//! authorisation (C6: "我授权的" / "授权我的", confirm, revoke), kin
//! relations (E2: bind, list, unbind) and agent registration (C2).
use crate::domain::assurance::face_gate::{GatePayload, KinGate};
use crate::domain::delegation::authorisations::{self, NewAuthorisation};
use crate::domain::delegation::{self, DelegationState, Kind, Party};
use crate::domain::{delegation::kin, delegation::kin_reports};
use crate::kit::cookies;
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::kit::pages::error_page;
use crate::server::AppState;
use crate::store::entities::{delegation as delegation_e, user};
use crate::web::enterprise::{notice_pair, to_face_check, view_page};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

fn row(state: &AppState, locale: &str, d: &delegation_e::Model, other: Option<&user::Model>, now: i64) -> Value {
    let st = delegation::effective_state(d, now).as_str();
    json!({
        "id": d.id,
        "other": other.and_then(|u| u.name.clone()).map(|n| kin::mask_name(&n)).unwrap_or_default(),
        // What was released, in words (never the scope names).
        "scopes": d.scopes.split(' ').filter(|s| !s.is_empty() && *s != "openid")
            .map(|s| state.pages.text(locale, &format!("scope_{s}"))).collect::<Vec<_>>(),
        "valid_from": d.valid_from,
        "valid_to": d.valid_to,
        "state": st,
        "state_text": state.pages.text(locale, &format!("delegation_state_{st}")),
    })
}

async fn authorisations_view(
    state: &AppState,
    jar: &CookieJar,
    u: &user::Model,
    locale: &str,
    notice: Option<(bool, String)>,
) -> Result<Value, String> {
    let now = state.clock.now();
    let browser = crate::web::auth::mfa::browser_of(state, jar);
    let reverified = crate::domain::authn::reverify::recently(&state.store, &u.id, &browser, now)
        .await
        .map_err(|e| e.to_string())?;
    let db = |e: crate::store::DbErr| e.to_string();
    let mut granted = Vec::new();
    for d in delegation::granted_by(&state.store, &u.id, Kind::Person).await.map_err(db)? {
        let other = state.users.find(&d.grantee_user_id).await.map_err(|e| e.to_string())?;
        granted.push(row(state, locale, &d, other.as_ref(), now));
    }
    let mut received = Vec::new();
    for d in delegation::received_by(&state.store, &u.id, Kind::Person).await.map_err(db)? {
        let other = match &d.principal_user_id {
            Some(p) => state.users.find(p).await.map_err(|e| e.to_string())?,
            None => None,
        };
        received.push(row(state, locale, &d, other.as_ref(), now));
    }
    let (info, error) = notice_pair(notice);
    // The items a citizen can release, as checkboxes named in words.
    let items: Vec<Value> = authorisations::GRANTABLE
        .iter()
        .map(|s| json!({ "name": s, "label": state.pages.text(locale, &format!("scope_{s}")) }))
        .collect();
    Ok(json!({ "granted": granted, "received": received, "info": info, "error": error,
        "today": delegation::today(now).to_string(), "reverified": reverified, "items": items }))
}

pub async fn authorisations_show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
) -> Response {
    let view = authorisations_view(&state, &jar, &u, locale, None).await;
    view_page(&state, jar, StatusCode::OK, "authorisations.html", locale, view)
}

#[derive(Deserialize, Default)]
pub struct AuthorisationForm {
    #[serde(default)]
    csrf: String,
    /// `grant`, `accept`, `decline` or `revoke`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    grantee: String,
    /// Space-separated scopes (the older form and scripts); the page sends
    /// one `share_<item>` checkbox per item instead.
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    share_profile: Option<String>,
    #[serde(default)]
    share_phone: Option<String>,
    #[serde(default)]
    share_email: Option<String>,
    #[serde(default)]
    share_address: Option<String>,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
}

crate::with_csrf!(AuthorisationForm, KinForm);

pub async fn authorisations_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<AuthorisationForm>,
) -> Result<Response, PageError> {
    let ip = cookies::client_ip(Some(addr));
    let ip = Some(ip.as_str());
    let now = state.clock.now();
    let changed = |ok: bool, yes: &'static str| if ok { (true, yes) } else { (false, "agents_changed_meanwhile") };
    let outcome: Result<(bool, &str), crate::store::DbErr> = match f.action.as_str() {
        "grant" => {
            let ticked = [
                ("profile", &f.share_profile),
                ("phone", &f.share_phone),
                ("email", &f.share_email),
                ("address", &f.share_address),
            ];
            let chosen: Vec<&str> = ticked.iter().filter(|(_, v)| v.is_some()).map(|(s, _)| *s).collect();
            let scopes = if chosen.is_empty() { f.scopes.clone() } else { chosen.join(" ") };
            let new = NewAuthorisation {
                principal: &u,
                grantee: &f.grantee,
                scopes: &scopes,
                valid_from: &f.valid_from,
                valid_to: &f.valid_to,
                browser: &crate::web::auth::mfa::browser_of(&state, &jar),
                ip,
            };
            authorisations::create(&state.store, new, now).await.map(|r| match r {
                Ok(_) => (true, "authorise_created"),
                Err(k) => (false, k),
            })
        }
        "accept" => delegation::activate(&state.store, &f.id, &Party::Grantee(&u.id), ip, now)
            .await
            .map(|ok| changed(ok, "authorise_accepted")),
        "decline" => delegation::reject(&state.store, &f.id, &Party::Grantee(&u.id), "declined", ip, now)
            .await
            .map(|ok| changed(ok, "authorise_declined")),
        "revoke" => delegation::revoke_and_notify(&state.store, &state, &f.id, &Party::Principal(&u.id), ip, now)
            .await
            .map(|ok| changed(ok, "authorise_revoked")),
        _ => Ok((false, "agents_changed_meanwhile")),
    };
    let (ok, key) = outcome?;
    let status = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let mut view = authorisations_view(&state, &jar, &u, locale, Some((ok, state.pages.text(locale, key)))).await;
    // A refused new authorisation comes back with what was typed and ticked.
    if let (false, "grant", Ok(Value::Object(m))) = (ok, f.action.as_str(), &mut view) {
        let chosen = crate::domain::clients::scopes::ScopeSet::parse(&f.scopes);
        let ticked = |s: &str, v: &Option<String>| v.is_some() || chosen.contains(s);
        m.insert(
            "f".into(),
            json!({ "grantee": f.grantee, "valid_from": f.valid_from, "valid_to": f.valid_to,
                "profile": ticked("profile", &f.share_profile), "phone": ticked("phone", &f.share_phone),
                "email": ticked("email", &f.share_email), "address": ticked("address", &f.share_address) }),
        );
    }
    Ok(view_page(&state, jar, status, "authorisations.html", locale, view))
}

async fn kin_view(
    state: &AppState,
    u: &user::Model,
    locale: &str,
    notice: Option<(bool, String)>,
) -> Result<Value, String> {
    let now = state.clock.now();
    let relation = |d: &delegation_e::Model| {
        state.pages.text(locale, &format!("kin_relation_{}", d.relation.as_deref().unwrap_or("other")))
    };
    let list = delegation::granted_by(&state.store, &u.id, Kind::Kin).await.map_err(|e| e.to_string())?;
    let relatives: Vec<Value> = list
        .iter()
        .filter(|d| DelegationState::of(d) == Some(DelegationState::Active))
        .map(|d| {
            json!({
                "id": d.id,
                "name": kin::mask_name(d.relative_name.as_deref().unwrap_or_default()),
                "id_masked": crate::domain::authn::flows::mask_id_number(d.relative_id_number.as_deref().unwrap_or_default()),
                "relation": relation(d),
                "can_unbind": now - d.created_at >= kin::UNBIND_AFTER,
            })
        })
        .collect();
    // Other people's bindings of my relatives, and bindings of me: what I
    // may report.
    let mut reportable = Vec::new();
    for d in kin_reports::reportable_by(&state.store, u).await.map_err(|e| e.to_string())? {
        let binder = state.users.find(&d.grantee_user_id).await.map_err(|e| e.to_string())?;
        reportable.push(json!({
            "id": d.id,
            "name": kin::mask_name(d.relative_name.as_deref().unwrap_or_default()),
            "binder": binder.and_then(|b| b.name).map(|n| kin::mask_name(&n)).unwrap_or_default(),
            "relation": relation(&d),
        }));
    }
    let (info, error) = notice_pair(notice);
    Ok(json!({ "relatives": relatives, "reportable": reportable, "info": info, "error": error }))
}

pub async fn kin_show(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
) -> Response {
    let view = kin_view(&state, &u, locale, None).await;
    view_page(&state, jar, StatusCode::OK, "kin.html", locale, view)
}

#[derive(Deserialize, Default)]
pub struct KinForm {
    #[serde(default)]
    csrf: String,
    /// `bind` (the form), `commit` (the commitment page), `unbind` or
    /// `report`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    relation: String,
    /// The relative's ID card validity (the identity page's fields).
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
    #[serde(default)]
    long_term: Option<String>,
    /// The relative's document type (A2; empty = resident ID card) and,
    /// for a type whose number carries none, the birth date.
    #[serde(default)]
    doc_type: String,
    #[serde(default)]
    birth_date: String,
    /// The commitment page: "I accept" ticked, and the text's version.
    #[serde(default)]
    accept: Option<String>,
    #[serde(default)]
    version: String,
    /// A report's reason.
    #[serde(default)]
    reason: String,
}

/// Kin notices go by SMS in the deployment's default language.
fn notice_text(state: &AppState) -> impl Fn(&str) -> String + Send + Sync + '_ {
    move |key: &str| state.pages.text(&state.config.default_locale, key)
}

pub async fn kin_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Locale(locale): Locale,
    SignedIn { user: u, .. }: SignedIn,
    CsrfForm(f): CsrfForm<KinForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let outcome: Result<Result<&str, kin::KinRefusal>, kin::KinError> = match f.action.as_str() {
        "unbind" => {
            kin::unbind(&state.store, &u.id, &f.id, now).await.map(|r| r.map(|()| "kin_unbound")).map_err(Into::into)
        }
        "report" => kin_reports::report(&state.store, &u, &f.id, &f.reason, now)
            .await
            .map(|r| r.map(|_| "kin_reported"))
            .map_err(Into::into),
        action => {
            let commitment = match action {
                "commit" => match kin::Commitment::accept(f.accept.is_some(), &f.version, now) {
                    Ok(c) => Some(c),
                    Err(refusal) => return Ok(kin_result(&state, jar, locale, &u, Err(refusal)).await),
                },
                _ => None,
            };
            let input = kin::BindInput {
                name: f.name,
                id_number: f.id_number,
                relation: f.relation,
                card: kin::CardTerm { valid_from: f.valid_from, valid_to: f.valid_to, long_term: f.long_term },
                document: kin::KinDocument { doc_type: f.doc_type, birth_date: f.birth_date },
                commitment,
                face_checked: false,
            };
            let text = notice_text(&state);
            let notices = kin::Notices { sms: state.sms_codes.gateway(), text: &text };
            match kin::bind_relative(&state.store, &state.verifier, &notices, &u, input, now).await {
                Ok(Ok(kin::BindStep::Commitment(req))) => {
                    return Ok(commitment_page(&state, jar, locale, &u, &req).await);
                }
                // The relative's face check through the app, unless aged 0–6.
                Ok(Ok(kin::BindStep::Face(req, c))) => {
                    let card = kin::CardTerm::of(&req.validity);
                    let payload = GatePayload::KinBind(KinGate {
                        user: u.id.clone(),
                        name: req.name.clone(),
                        id_number: req.id_number.as_str().into(),
                        relation: req.relation.clone(),
                        valid_from: card.valid_from,
                        valid_to: card.valid_to,
                        commitment_version: c.version().into(),
                        commitment_at: c.accepted_at(),
                        doc_type: req.id_number.kind().as_str().into(),
                        birth_date: req.birth_date.to_string(),
                    });
                    return Ok(to_face_check(&state, jar, locale, &payload, req.id_number.as_str(), now).await);
                }
                Ok(Ok(kin::BindStep::Bound(_))) => Ok(Ok("kin_bound")),
                Ok(Err(refusal)) => Ok(Err(refusal)),
                Err(e) => Err(e),
            }
        }
    };
    Ok(kin_result(&state, jar, locale, &u, outcome.map_err(PageError::unavailable)?).await)
}

/// The commitment (承诺书) for a verified relative: the kin page
/// with the text, its version and the form's fields to send back.
async fn commitment_page(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    u: &user::Model,
    req: &kin::KinRequest,
) -> Response {
    let card = kin::CardTerm::of(&req.validity);
    let view = kin_view(state, u, locale, None).await.map(|mut v| {
        v["commitment"] = json!({
            "version": kin::COMMITMENT_VERSION,
            "name": req.name,
            "name_masked": kin::mask_name(&req.name),
            "id_number": req.id_number.as_str(),
            "relation": req.relation,
            "relation_text": state.pages.text(locale, &format!("kin_relation_{}", req.relation)),
            "valid_from": card.valid_from,
            "valid_to": card.valid_to,
            "long_term": card.long_term.is_some(),
            "doc_type": req.id_number.kind().as_str(),
            "birth_date": req.birth_date.to_string(),
        });
        v
    });
    view_page(state, jar, StatusCode::OK, "kin.html", locale, view)
}

/// Finishes a kin binding or an agent registration whose face check passed.
pub async fn after_face(state: &AppState, jar: CookieJar, locale: &str, payload: GatePayload, now: i64) -> Response {
    match payload {
        GatePayload::KinBind(p) => {
            let Ok(Some(u)) = state.users.find(&p.user).await else {
                return error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired");
            };
            // The commitment was accepted before the gate opened; the gate's
            // payload is server-side, so its time and version stand.
            let commitment = match kin::Commitment::accept(true, &p.commitment_version, p.commitment_at) {
                Ok(c) => c,
                Err(refusal) => return kin_result(state, jar, locale, &u, Err(refusal)).await,
            };
            let long_term = p.valid_to.is_empty().then(|| "on".into());
            let input = kin::BindInput {
                name: p.name,
                id_number: p.id_number,
                relation: p.relation,
                card: kin::CardTerm { valid_from: p.valid_from, valid_to: p.valid_to, long_term },
                document: kin::KinDocument { doc_type: p.doc_type, birth_date: p.birth_date },
                commitment: Some(commitment),
                face_checked: true,
            };
            let text = notice_text(state);
            let notices = kin::Notices { sms: state.sms_codes.gateway(), text: &text };
            match kin::bind_relative(&state.store, &state.verifier, &notices, &u, input, now).await {
                Ok(Ok(kin::BindStep::Bound(_))) => kin_result(state, jar, locale, &u, Ok("kin_bound")).await,
                Ok(Ok(_)) => error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired"),
                Ok(Err(refusal)) => kin_result(state, jar, locale, &u, Err(refusal)).await,
                Err(e) => PageError::unavailable(e).into_response(),
            }
        }
        GatePayload::RegisterAgent(p) => {
            crate::web::enterprise::agent_register::finish(state, jar, locale, &p, now).await.into_response()
        }
        _ => error_page(state, StatusCode::BAD_REQUEST, locale, "error_request_expired"),
    }
}

/// The kin page after a bind or unbind: its success message, or the refusal.
async fn kin_result(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    u: &user::Model,
    r: Result<&str, kin::KinRefusal>,
) -> Response {
    let (ok, key) = match r {
        Ok(key) => (true, key),
        Err(refusal) => (false, refusal.message_key()),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let view = kin_view(state, u, locale, Some((ok, state.pages.text(locale, key)))).await;
    view_page(state, jar, status, "kin.html", locale, view)
}
