//! The browser side of scan-to-login (D1) and app-mediated face checks (D2):
//! the QR code, the waiting page and its finish.
//!
//! The QR encodes `{issuer}/scan/t/{ticket}`. The ticket is bound to this
//! browser's binding cookie (only its hash is stored), so a ticket shown on
//! a phishing page can only ever finish the browser that created it. The
//! page waits with Server-Sent Events (`/scan/events`), falls back to
//! polling `/scan/status` without EventSource, and to a "continue" button
//! without JavaScript; once the app confirms, the page posts `/scan/complete`.
//! The face gates' pages (`/face`) show the same widget for a ticket linked
//! to the gate (`gate_qr`); completing it continues the gated step.
use crate::domain::assurance::Factor;
use crate::domain::assurance::face_gate;
use crate::domain::authn::return_path::ReturnPath;
use crate::domain::authn::scan::{self, NewTicket, Phase, Purpose, ScanTicket, TicketUser};
use crate::domain::authn::scan_waiters::Waiter;
use crate::domain::tokens::authorize::AuthRequest;
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::{CsrfForm, PageError};
use crate::kit::pages::page;
use crate::oidc::flow::see_other;
use crate::server::AppState;
use crate::store::entities::face_gate as gate_row;
use crate::web::auth::login::{SignedIn, finish as finish_sign_in, pending_for_page};
use crate::web::auth::step_up;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Deserialize, Default)]
pub struct ScanQuery {
    #[serde(default)]
    req: String,
    /// Show this (still live) ticket again instead of a new one: the no-JS
    /// "continue" button comes back here while the phone has not confirmed.
    #[serde(default)]
    t: String,
    /// Face check only: the local page to return to when done (see
    /// [`ReturnPath`]); anything else is ignored.
    #[serde(default)]
    next: String,
}

#[derive(Deserialize, Default)]
pub struct TicketQuery {
    #[serde(default)]
    t: String,
}

#[derive(Deserialize, Default)]
pub struct CompleteForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `&next=…` for a face check's own links, so the return path survives a
/// new QR or the no-JS "continue".
fn next_query(next: Option<&ReturnPath>) -> String {
    next.map(|n| format!("&next={}", url::form_urlencoded::byte_serialize(n.as_str().as_bytes()).collect::<String>()))
        .unwrap_or_default()
}

/// The QR code as inline SVG (qrcode crate; medium error correction so a
/// slightly blurred screen photo still reads).
fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
    // Inline in HTML: drop the XML declaration.
    svg.find("<svg").map(|i| svg[i..].to_string())
}

pub fn ticket_url(state: &AppState, ticket: &str) -> String {
    state.endpoint(&format!("/scan/t/{ticket}"))
}

/// The configured app link (`[portal] app_link`) at this ticket's URL.
fn app_link(state: &AppState, url: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    state.config.portal.app_link.replace("{url}", &encoded)
}

/// Template context of the QR widget (`_scan_qr.html`). A face gate's page
/// (`gate` = its purpose) says what the app is doing and what follows the
/// confirmation (a sign-in, an approval, a registration, a kin binding)
/// instead of the scan-login messages.
fn qr_context(state: &AppState, t: &ScanTicket, locale: &str, retry: &str, gate: Option<&str>) -> serde_json::Value {
    let url = ticket_url(state, &t.id);
    let now = state.clock.now();
    let phase = t.phase(now);
    let msg = |p: &str| {
        let key = match (gate, p) {
            (Some(purpose), "scanned" | "confirmed") => format!("gate_{purpose}_phase_{p}"),
            _ => format!("scan_phase_{p}"),
        };
        state.pages.text(locale, &key)
    };
    let msgs: serde_json::Map<String, serde_json::Value> =
        ["pending", "scanned", "confirmed", "denied", "expired", "used"]
            .iter()
            .map(|p| (p.to_string(), msg(p).into()))
            .collect();
    json!({
        "ticket": t.id,
        "url": url,
        "svg": qr_svg(&url).unwrap_or_default(),
        "expires_in": (t.expires_at - now).max(0),
        "phase": phase.as_str(),
        "message": msg(phase.as_str()),
        "msgs": msgs,
        "retry": retry,
        // On a phone the QR cannot be scanned by the same phone: the page
        // offers the app's link instead (CSS shows one or the other).
        "app_link": app_link(state, &url),
        "download": state.config.portal.app_download_url,
        "gate": gate,
    })
}

/// A live ticket of this browser to show again, or a new one.
async fn ticket_for_page(
    state: &AppState,
    browser: &str,
    addr: SocketAddr,
    reuse: &str,
    new: NewTicket<'_>,
) -> Result<ScanTicket, crate::store::DbErr> {
    let now = state.clock.now();
    if !reuse.is_empty()
        && let Some(t) = scan::for_browser(&state.store, reuse, &cookies::browser_hash(browser)).await?
        && t.purpose == new.purpose
        && t.req.as_deref() == new.req.filter(|r| !r.is_empty())
        && t.gate_id.as_deref() == new.gate_id
        && matches!(t.phase(now), Phase::Pending | Phase::Scanned | Phase::Confirmed)
    {
        return Ok(t);
    }
    let ip = cookies::client_ip(Some(addr));
    scan::create(&state.store, NewTicket { browser_ip: &ip, ..new }, now).await
}

/// `GET /login/scan`: the sign-in page's "扫码登录" tab.
pub async fn show_login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ScanQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &q.req).await?;
    let (jar, browser) = cookies::browser(&state, jar);
    let new = NewTicket {
        purpose: Purpose::Login,
        browser_hash: &cookies::browser_hash(&browser),
        browser_ip: "",
        req: Some(&q.req),
        client_id: req.as_ref().map(|r| r.client_id.as_str()),
        subject_user_id: None,
        detail: None,
        gate_id: None,
    };
    let ticket = ticket_for_page(&state, &browser, addr, &q.t, new).await?;
    let brand = crate::web::auth::brand::of_client(&state, req.as_ref().map(|r| r.client_id.as_str()), locale).await;
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    crate::web::auth::brand::insert(&mut ctx, brand.as_ref());
    ctx.insert("username", "");
    ctx.insert("error", &Option::<String>::None);
    ctx.insert("need_captcha", &false);
    ctx.insert("upstreams", &crate::web::auth::upstream::buttons(&state, locale));
    ctx.insert("scan", &qr_context(&state, &ticket, locale, &format!("/login/scan?req={}", q.req), None));
    let res = no_store((jar, page(&state, StatusCode::OK, "login.html", locale, ctx)).into_response());
    Ok(crate::web::auth::brand::with_csp(res, brand.as_ref()))
}

/// `GET /scan/face`: step-up by a face check in the app (D2, B3). The
/// browser must be signed in; the app must be signed in as the same person.
pub async fn show_face(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ScanQuery>,
) -> Result<Response, PageError> {
    let (req, locale) = pending_for_page(&state, &jar, &headers, &q.req).await?;
    let Some(session) = current_session(&state, &jar).await? else {
        return Ok(cookies::sign_in_then(&state, jar, "/scan/face"));
    };
    let (jar, browser) = cookies::browser(&state, jar);
    let new = NewTicket {
        purpose: Purpose::Face,
        browser_hash: &cookies::browser_hash(&browser),
        browser_ip: "",
        req: Some(&q.req),
        client_id: req.as_ref().map(|r| r.client_id.as_str()),
        subject_user_id: Some(&session.user_id),
        detail: None,
        gate_id: None,
    };
    let ticket = ticket_for_page(&state, &browser, addr, &q.t, new).await?;
    let next = ReturnPath::parse(&q.next);
    let mut ctx = tera::Context::new();
    ctx.insert("req", &q.req);
    ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
    ctx.insert("next", &next.as_ref().map(ReturnPath::as_str));
    let retry = format!("/scan/face?req={}{}", q.req, next_query(next.as_ref()));
    ctx.insert("scan", &qr_context(&state, &ticket, locale, &retry, None));
    Ok(no_store((jar, page(&state, StatusCode::OK, "scan_face.html", locale, ctx)).into_response()))
}

/// The QR widget of a face gate's page (C1 first enterprise sign-in, C2
/// agent registration, C3 approval, E2 kin binding): a ticket linked to the
/// gate, which only the app of the person the gate waits for can take.
/// Returns the widget's context and what the app is shown (`detail`).
pub(crate) async fn gate_qr(
    state: &AppState,
    browser: &str,
    addr: SocketAddr,
    gate: &gate_row::Model,
    reuse: &str,
    locale: &str,
) -> Result<(serde_json::Value, serde_json::Value), crate::store::DbErr> {
    let request = face_gate::ticket_request(&state.store, gate).await?;
    let detail = request.detail.to_string();
    let new = NewTicket {
        purpose: request.purpose,
        browser_hash: &cookies::browser_hash(browser),
        browser_ip: "",
        req: None,
        client_id: None,
        subject_user_id: request.subject_user_id.as_deref(),
        detail: Some(&detail),
        gate_id: Some(&gate.id),
    };
    let ticket = ticket_for_page(state, browser, addr, reuse, new).await?;
    let retry = format!("/face?gate={}", gate.id);
    Ok((qr_context(state, &ticket, locale, &retry, Some(&gate.purpose)), request.detail))
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /scan/t/{id}`: what a phone camera or ordinary browser shows when it
/// opens the QR link itself — "scan this with the app" — never the ticket.
pub async fn landing(State(state): State<AppState>, headers: HeaderMap, Path(_id): Path<String>) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    page(&state, StatusCode::OK, "scan_landing.html", locale, tera::Context::new())
}

/// The ticket of this browser, for the waiting endpoints.
async fn own_ticket(state: &AppState, jar: &CookieJar, id: &str) -> Result<Option<(ScanTicket, String)>, Response> {
    let Some(browser) = cookies::get(state, jar, cookies::BROWSER) else {
        return Ok(None);
    };
    let hash = cookies::browser_hash(&browser);
    match scan::for_browser(&state.store, id, &hash).await {
        Ok(t) => Ok(t.map(|t| (t, hash))),
        Err(e) => {
            tracing::error!("scan status: {e}");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// `GET /scan/status?t=`: polling fallback, `{"status": "scanned"}`.
pub async fn status(State(state): State<AppState>, jar: CookieJar, Query(q): Query<TicketQuery>) -> Response {
    let phase = match own_ticket(&state, &jar, &q.t).await {
        Ok(Some((t, _))) => t.phase(state.clock.now()),
        Ok(None) => return (StatusCode::NOT_FOUND, axum::Json(json!({ "status": "unknown" }))).into_response(),
        Err(res) => return res,
    };
    no_store(axum::Json(json!({ "status": phase.as_str() })).into_response())
}

/// A comment line every 20 s keeps proxies and browsers from closing a
/// quiet event stream.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// What a waiting browser's stream keeps between two events (it is held
/// for minutes, 10,000 at a time: issue 16): its ticket's waiter, the
/// browser it belongs to, the last phase told and its one timer's two
/// deadlines. No database read while nothing happens.
struct Watch {
    state: AppState,
    browser_hash: String,
    waiter: Waiter,
    last: Option<Phase>,
    /// Read the ticket again before waiting (at first, after a wake-up, at expiry).
    reread: bool,
    /// When the ticket expires (one second late, so its phase says so).
    expires: Instant,
    /// When the stream, quiet until then, sends a keep-alive comment.
    quiet_until: Instant,
}

/// The next event for the browser: its ticket's phase when that changed —
/// after a wake-up (this node's API, the cross-node check) or the ticket's
/// expiry — or a keep-alive comment; `None` after a final phase.
async fn next_event(w: &mut Watch) -> Option<Event> {
    loop {
        if w.last.is_some_and(Phase::is_final) {
            return None;
        }
        if w.reread {
            let now = w.state.clock.now();
            let ticket = {
                // A wake-up of thousands (a resync) reads a few tickets at a
                // time; boxed, the lookup's state exists only while it runs.
                let _turn = w.waiter.turn().await;
                Box::pin(scan::for_browser(&w.state.store, w.waiter.ticket(), &w.browser_hash)).await
            };
            let (phase, expires_at) = match ticket {
                Ok(Some(t)) => (t.phase(now), t.expires_at),
                Ok(None) => return None,
                Err(e) => {
                    // Storage trouble: tell nothing, try again a little later.
                    tracing::warn!("scan wait: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            w.reread = false;
            w.expires = Instant::now() + Duration::from_secs((expires_at - now).max(0) as u64 + 1);
            if Some(phase) != w.last {
                w.last = Some(phase);
                w.quiet_until = Instant::now() + KEEP_ALIVE;
                return Some(Event::default().event("status").data(json!({ "status": phase.as_str() }).to_string()));
            }
        }
        tokio::select! {
            _ = w.waiter.changed() => w.reread = true,
            _ = tokio::time::sleep_until(w.expires.min(w.quiet_until)) => {
                if Instant::now() >= w.expires {
                    w.reread = true;
                } else {
                    w.quiet_until = Instant::now() + KEEP_ALIVE;
                    return Some(Event::DEFAULT_KEEP_ALIVE);
                }
            }
        }
    }
}

/// `GET /scan/events?t=`: Server-Sent Events, one `status` event per change,
/// ending after a final one. The wait holds no thread and polls nothing;
/// while it lasts the stream is carried off its HTTP connection
/// (`server::http1`): a waiting browser costs about 2 KiB of heap.
pub async fn events(State(state): State<AppState>, jar: CookieJar, Query(q): Query<TicketQuery>) -> Response {
    let (ticket, browser_hash) = match own_ticket(&state, &jar, &q.t).await {
        Ok(Some(v)) => v,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(res) => return res,
    };
    // Subscribed before the stream's first read, so no change is missed.
    let waiter = state.scan_waiters.subscribe(&ticket.id);
    let now = Instant::now();
    let watch =
        Watch { state, browser_hash, waiter, last: None, reread: true, expires: now, quiet_until: now + KEEP_ALIVE };
    let stream = futures_util::stream::unfold(watch, |mut w| async move {
        let event = next_event(&mut w).await?;
        Some((Ok::<_, Infallible>(event), w))
    });
    no_store(Sse::new(stream).into_response())
}

crate::with_csrf!(CompleteForm);

/// `POST /scan/complete`: the confirmed ticket finishes here, once, and
/// only in the browser that created it.
pub async fn finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<CompleteForm>,
) -> Result<Response, PageError> {
    let locale = cookies::locale(&state, &headers, None);
    let browser = cookies::get(&state, &jar, cookies::BROWSER).ok_or(PageError::forbidden("error_csrf"))?;
    let hash = cookies::browser_hash(&browser);
    let now = state.clock.now();
    let Some(ticket) = scan::consume(&state.store, &f.t, &hash, now).await? else {
        return not_finished(&state, &f.t, &hash, ReturnPath::parse(&f.next)).await;
    };
    state.scan_waiters.wake(&ticket.id);
    // A gate's ticket: the app opened the gate; the step that waited in it
    // continues (once: the gate is taken like the ticket).
    if let Some(gate) = &ticket.gate_id {
        return Ok(crate::web::enterprise::continue_gate(&state, jar, locale, gate, &hash).await);
    }
    let req_id = ticket.req.clone().unwrap_or_default();
    let (req, _locale) = pending_for_page(&state, &jar, &headers, &req_id).await?;
    match ticket.purpose {
        Purpose::Login => sign_in_with_ticket(&state, jar, &req_id, req, &ticket).await,
        Purpose::Face => {
            let next = ReturnPath::parse(&f.next);
            add_face_factor_to_browser_session(&state, jar, &req_id, &ticket, next.as_ref()).await
        }
        Purpose::Approval | Purpose::Backchannel => Err(PageError::bad_request("scan_error_invalid")),
    }
}

/// Why a ticket could not be finished: not yet confirmed (back to the same
/// QR, the no-JS path), or a themed error page.
async fn not_finished(state: &AppState, id: &str, hash: &str, next: Option<ReturnPath>) -> Result<Response, PageError> {
    let Some(t) = scan::for_browser(&state.store, id, hash).await? else {
        return Err(PageError::bad_request("scan_error_invalid"));
    };
    let key = match t.phase(state.clock.now()) {
        Phase::Pending | Phase::Scanned | Phase::Confirmed => {
            let req = t.req.as_deref().unwrap_or_default();
            let back = match (t.purpose, &t.gate_id) {
                (_, Some(gate)) => format!("/face?gate={gate}&t={}", t.id),
                (Purpose::Face, None) => format!("/scan/face?req={req}&t={}{}", t.id, next_query(next.as_ref())),
                _ => format!("/login/scan?req={req}&t={}", t.id),
            };
            return Ok(see_other(&state.endpoint(&back)));
        }
        Phase::Denied => "scan_error_denied",
        Phase::Expired => "scan_error_expired",
        Phase::Used => "scan_error_used",
    };
    Err(PageError::bad_request(key))
}

/// D1: the browser is signed in as the app's user. The one place scan
/// sign-in calls `login::complete`; RFC 8176 `mca` (multiple-channel).
/// The ticket also carries what the assurance rules need to raise the
/// level: the app session's `app_acr` / `app_amr` and `face_passed`.
async fn sign_in_with_ticket(
    state: &AppState,
    jar: CookieJar,
    req_id: &str,
    req: Option<AuthRequest>,
    ticket: &ScanTicket,
) -> Result<Response, PageError> {
    let user_id = match scan::signed_in_user(&state.users, ticket).await? {
        TicketUser::Active(id) => id,
        TicketUser::Nobody => return Err(PageError::bad_request("scan_error_invalid")),
        TicketUser::Inactive => return Err(PageError::forbidden("scan_error_invalid")),
    };
    // A face check the app ran through the verifier moments ago (the API
    // refuses `face_verified` otherwise) is a second, fresh factor.
    let extra: &[Factor] = if ticket.face_passed { &[Factor::Face] } else { &[] };
    finish_sign_in(state, jar, req_id, req, SignedIn::new(&user_id, Factor::Scan).with_factors(extra)).await
}

/// D2: the app verified the face of the person signed in here; the browser
/// session gains the `face` factor (a fresh cookie: the level changed).
async fn add_face_factor_to_browser_session(
    state: &AppState,
    jar: CookieJar,
    req_id: &str,
    ticket: &ScanTicket,
    next: Option<&ReturnPath>,
) -> Result<Response, PageError> {
    let refused = || PageError::forbidden("scan_error_account");
    let session = current_session(state, &jar).await?.ok_or_else(refused)?;
    let same = ticket.subject_user_id.as_deref() == Some(session.user_id.as_str())
        && ticket.app_user_id.as_deref() == Some(session.user_id.as_str());
    if !same || !ticket.face_passed {
        return Err(refused());
    }
    let jar = step_up::record_factor(state, jar, &session, Factor::Face).await?.ok_or_else(refused)?;
    Ok(step_up::finish_to(state, jar, req_id, next))
}
