//! `/identity/takeover/bank-card` (B5, seed 002): an account whose
//! document passed the authority check but is bound to another account
//! takes the identity over by the bank card's four elements instead of a
//! face check — name, document number, debit card number and the phone the
//! bank has on file, proven by an SMS code sent to that phone. The page
//! reads the form and makes one core call
//! (`identity::take_over_by_bank_card`), which moves the identity exactly
//! as the face-check takeover does.
use crate::domain::identity::documents::{DocumentNumber, PersonName};
use crate::domain::identity::users::PhoneNumber;
use crate::domain::identity::{self, BindOutcome, Binder, CardTakeover};
use crate::kit::extract::{CsrfForm, Locale, PageError, SignedIn};
use crate::ports::sms::SmsPurpose;
use crate::ports::verifier::{BankCardCheck, BankCardNumber};
use crate::server::AppState;
use crate::web::account::identity::{View, finish, render, result_key, today};
use crate::web::auth::sms_form::{self, CodeRequest, Notice};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

const VIEW: &str = "takeover_card";

#[derive(Deserialize, Default)]
pub struct TakeoverQuery {
    #[serde(default)]
    req: String,
}

#[derive(Deserialize, Default)]
pub struct TakeoverForm {
    #[serde(default)]
    csrf: String,
    /// `send_code` (to the bank's phone) or `takeover`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    req: String,
    #[serde(default)]
    captcha_id: String,
    #[serde(default)]
    captcha: String,
    #[serde(default)]
    sms_code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    bank_phone: String,
}
crate::with_csrf!(TakeoverForm);

pub async fn show(
    State(state): State<AppState>,
    jar: axum_extra::extract::CookieJar,
    Locale(locale): Locale,
    me: SignedIn,
    Query(q): Query<TakeoverQuery>,
) -> Response {
    let v = View { view: VIEW, req: &q.req, ..Default::default() };
    render(&state, jar, StatusCode::OK, locale, &me.user, v).await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: axum_extra::extract::CookieJar,
    Locale(locale): Locale,
    SignedIn { session, user: u }: SignedIn,
    CsrfForm(f): CsrfForm<TakeoverForm>,
) -> Result<Response, PageError> {
    let ip = sms_form::ip_of(addr);
    let form = json!({"name": f.name, "number": f.number, "card_number": f.card_number, "bank_phone": f.bank_phone});
    let page = |status: StatusCode, notice: Option<Notice>| {
        let v = View { view: VIEW, req: &f.req, notice, form: form.clone(), ..Default::default() };
        render(&state, jar.clone(), status, locale, &u, v)
    };
    let err = |key: &str| Some(Notice::Error(state.pages.text(locale, key)));
    if f.action == "send_code" {
        let Ok(phone) = PhoneNumber::parse(&f.bank_phone) else {
            return Ok(page(StatusCode::BAD_REQUEST, err("register_phone_rule")).await);
        };
        let req = CodeRequest::new(SmsPurpose::Verify, phone.as_str(), &ip, &f.captcha_id, &f.captcha);
        let notice = sms_form::send_code(&state, locale, req).await;
        return Ok(page(notice.status(), Some(notice)).await);
    }
    let parsed = (
        PersonName::parse(&f.name).map_err(|e| e.key()),
        DocumentNumber::parse_any(None, &f.number).map_err(|e| e.key()),
        BankCardNumber::parse(&f.card_number).ok_or("identity_err_card"),
        PhoneNumber::parse(&f.bank_phone).map_err(|_| "register_phone_rule"),
    );
    let card = match parsed {
        (Ok(name), Ok(id_number), Ok(card), Ok(phone)) => BankCardCheck { name, id_number, card, phone },
        (a, b, c, d) => {
            let key = [a.err(), b.err(), c.err(), d.err()].into_iter().flatten().next().unwrap_or("error_unavailable");
            return Ok(page(StatusCode::BAD_REQUEST, err(key)).await);
        }
    };
    let now = state.clock.now();
    let binder = Binder { user: &u, keep_sid: Some(&session.sid), ip: Some(&ip), now };
    let result = identity::take_over_by_bank_card(
        &state.store,
        &state.verifier,
        &state,
        &state.sms_codes,
        &binder,
        &card,
        &f.sms_code,
        today(&state),
    )
    .await?;
    Ok(match result {
        CardTakeover::WrongCode => page(StatusCode::BAD_REQUEST, err("sms_code_wrong")).await,
        CardTakeover::Bound(BindOutcome::Done { level, .. }) => {
            finish(&state, jar.clone(), locale, &u, &f.req, level).await
        }
        CardTakeover::Bound(other) => {
            let status = if other == BindOutcome::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            page(status, err(result_key(&other))).await
        }
    })
}
