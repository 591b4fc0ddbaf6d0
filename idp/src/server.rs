//! Application state, router and the serve loop.
use crate::config::Config;
use crate::crypto::keys::{KeyRing, KeyVault};
use crate::crypto::password::PasswordService;
use crate::crypto::{SecretHasher, derive_key};
use crate::domain::clients::ClientService;
use crate::domain::identity::users::UserService;
use crate::domain::tokens::TokenIssuer;
use crate::kit::pages::Pages;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{any, get, post};
use std::ops::Deref;
use std::sync::Arc;

mod http1;
mod memory;

pub struct Inner {
    pub config: Config,
    pub store: crate::store::Store,
    pub keys: KeyRing,
    pub hasher: SecretHasher,
    pub passwords: PasswordService,
    pub clients: ClientService,
    pub users: UserService,
    pub tokens: TokenIssuer,
    pub pages: Pages,
    pub discovery: String,
    pub csrf_key: [u8; 32],
    pub http: reqwest::Client,
    pub demo: Option<crate::demo::DemoRp>,
    pub plugins: crate::plugins::Registry,
    pub clock: crate::clock::Clock,
    pub sms_codes: crate::domain::authn::sms_codes::SmsCodes,
    pub captcha: crate::domain::authn::captcha::CaptchaService,
    pub mail: crate::ports::mail::MailGateway,
    /// Strong factors: authenticator apps + recovery codes, passkeys.
    pub totp: crate::domain::authn::factors::TotpService,
    pub passkeys: crate::domain::authn::passkeys::PasskeyService,
    pub verifier: crate::ports::verifier::Verifier,
    /// Browsers on this node waiting for a scan ticket to change (D1).
    pub scan_waiters: Arc<crate::domain::authn::scan_waiters::ScanWaiters>,
    /// The (session, app) pairs this node already recorded for logout.
    pub session_clients: crate::domain::authn::sessions::RecordedClients,
    /// Notices from the other nodes on the same PostgreSQL (issue 16).
    pub bus: crate::store::bus::Bus,
    /// CIBA requests (`/bc-authorize`, the CIBA grant, ping notifications).
    pub ciba: crate::domain::tokens::ciba::CibaService,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::net`]).
    pub proxies: crate::net::TrustedProxies,
    /// Address ranges → region names for the scan app.
    pub regions: crate::net::RegionTable,
    /// Cancelled on SIGTERM / SIGINT: the listener stops, event streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }
}

/// Reads the master key from config, or from `data_dir/master.key`,
/// generating that file (mode 0600) on first start.
pub fn master_key(config: &Config) -> anyhow::Result<[u8; 32]> {
    let hex = match &config.master_key {
        Some(k) => k.clone(),
        None => crate::crypto::read_or_create_secret(&config.data_dir.join("master.key"), || {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })?,
    };
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        anyhow::bail!("master key must be 64 hex characters");
    }
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk)?;
        out[i] = u8::from_str_radix(s, 16)?;
    }
    Ok(out)
}

/// Opens the database (migrating unless told not to) and builds the state.
pub async fn build_state(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let master = master_key(&config)?;
    let db = crate::store::connect(&config.database_url()).await?;
    if migrate {
        crate::store::migrate(&db).await?;
    }
    // The one clock every time-limited rule reads (tests advance it).
    let clock = crate::clock::Clock::default();
    let keys = KeyRing::new(KeyVault::new(&master), clock.clone());
    keys.ensure_keys(&db).await?;
    keys.reload(&db, config.tokens.retired_key_publish).await?;
    let hasher = SecretHasher::new(&master);
    let passwords = PasswordService::new()?;
    let pages = Pages::load(&config.theme, config.theme_dir.as_deref(), &config.i18n.locales)?;
    let tokens = TokenIssuer {
        issuer: config.issuer.clone(),
        keys: keys.clone(),
        cfg: config.tokens.clone(),
        clock: clock.clone(),
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let users = UserService::new(db.clone(), passwords.clone(), clock.clone());
    let services = crate::plugins::Services {
        issuer: config.issuer.clone(),
        db: db.clone(),
        keys: keys.clone(),
        users: users.clone(),
        http: http.clone(),
        clock: clock.clone(),
    };
    let plugins = crate::plugins::Registry::load(&config.plugins, services).await;
    let discovery =
        crate::oidc::discovery::with_plugins(crate::oidc::discovery::document(&config), &plugins).to_string();
    let demo = crate::demo::DemoRp::load(&db, &config).await?;
    let gateway = crate::ports::sms::SmsGateway::from_config(&config.sms, db.clone())?;
    let captcha = crate::domain::authn::captcha::CaptchaService::new(
        db.clone(),
        hasher.clone(),
        clock.clone(),
        gateway.is_dev() || config.captcha_record_answers,
    );
    let sms_codes = crate::domain::authn::sms_codes::SmsCodes::new(db.clone(), hasher.clone(), gateway, clock.clone());
    let mail = crate::ports::mail::MailGateway::from_config(&config.mail, db.clone())?;
    let totp = crate::domain::authn::factors::TotpService::new(db.clone(), &master, hasher.clone(), &config.issuer);
    let passkeys = crate::domain::authn::passkeys::PasskeyService::new(db.clone(), hasher.clone(), &config.issuer);
    let verifier = crate::ports::verifier::Verifier::from_config(&config.verifier, &config.data_dir, clock.clone())?;
    let proxies = crate::net::TrustedProxies::parse(&config.trusted_proxies).map_err(anyhow::Error::msg)?;
    let regions = match &config.ip_regions_file {
        Some(path) => crate::net::RegionTable::load(path).map_err(anyhow::Error::msg)?,
        None => crate::net::RegionTable::default(),
    };
    let bus = crate::store::bus::Bus::new(db.clone());
    let mut clients = ClientService::new(db.clone(), hasher.clone(), clock.clone()).with_protocol(&config.protocol);
    if bus.cross_node() {
        clients = clients.following_bus();
    }
    // The console signs staff in as a first-party client of this provider.
    if let Err(e) = crate::domain::staff::console_sign_in::ensure_client(&clients, &config.issuer).await {
        tracing::warn!("the console's client could not be set up: {e}");
    }
    let ciba = crate::domain::tokens::ciba::CibaService::new(db.clone(), hasher.clone(), &master);
    Ok(AppState(Arc::new(Inner {
        clients,
        bus,
        users,
        plugins,
        csrf_key: derive_key(&master, b"idp csrf v1"),
        config,
        store: db,
        keys,
        hasher,
        passwords,
        tokens,
        pages,
        discovery,
        http,
        demo,
        clock,
        sms_codes,
        captcha,
        mail,
        totp,
        passkeys,
        verifier,
        scan_waiters: Arc::default(),
        session_clients: Default::default(),
        ciba,
        proxies,
        regions,
        shutdown: tokio_util::sync::CancellationToken::new(),
    })))
}

pub fn router(state: AppState) -> Router {
    use crate::{oidc, web};
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery::handler))
        .route("/jwks", get(oidc::discovery::jwks))
        .route("/authorize", get(oidc::authorize::get_handler).post(oidc::authorize::post_handler))
        .route("/authorize/resume", get(oidc::authorize::resume))
        .route("/token", post(oidc::token::handler))
        .route("/userinfo", get(oidc::userinfo::handler).post(oidc::userinfo::handler))
        .route("/revoke", post(oidc::revoke::handler))
        .route("/introspect", post(oidc::introspect::handler))
        .route("/par", post(oidc::par::handler))
        .route("/device_authorization", post(oidc::device::handler))
        .route("/oauth/register", post(oidc::register::create))
        .route(
            "/oauth/register/{client_id}",
            get(oidc::register::read).put(oidc::register::update).delete(oidc::register::delete),
        )
        .route("/bc-authorize", post(oidc::ciba::handler))
        .route("/logout", get(oidc::logout::handler).post(oidc::logout::handler))
        .route("/login", get(web::auth::login::show).post(web::auth::login::submit))
        .route("/login/sms", get(web::auth::sms_login::show).post(web::auth::sms_login::submit))
        .route("/login/passkey/begin", post(web::auth::mfa::login_begin))
        .route("/login/passkey", post(web::auth::mfa::login_submit))
        .route("/mfa/totp", get(web::auth::mfa::totp_show).post(web::auth::mfa::totp_submit))
        .route("/mfa/passkey", get(web::auth::mfa::passkey_show).post(web::auth::mfa::passkey_submit))
        .route("/mfa/passkey/begin", post(web::auth::mfa::passkey_begin))
        .route("/login/upstream/{name}", get(web::auth::upstream::start))
        .route("/login/upstream/{name}/callback", get(web::auth::upstream::callback))
        .route("/login/scan", get(web::auth::scan::show_login))
        .route("/scan/face", get(web::auth::scan::show_face))
        .route("/scan/t/{id}", get(web::auth::scan::landing))
        .route("/scan/events", get(web::auth::scan::events))
        .route("/scan/status", get(web::auth::scan::status))
        .route("/scan/complete", post(web::auth::scan::finish))
        .route("/api/scan/tickets/{id}", get(web::api::scan_api::read))
        .route("/api/scan/tickets/{id}/confirm", post(web::api::scan_api::confirm))
        .route("/api/scan/tickets/{id}/deny", post(web::api::scan_api::deny))
        .route("/api/scan/requests", get(web::api::scan_api::waiting))
        .route("/api/miniprogram/{upstream}/login", post(oidc::mini_program::login))
        .route("/sms/receipts/{vendor}", post(web::api::sms_receipts::receive))
        .route("/login/link", get(web::auth::upstream::link_show).post(web::auth::upstream::link_submit))
        .route("/login/link/register", get(web::auth::upstream::link_register))
        .route("/register", get(web::auth::register::show).post(web::auth::register::submit))
        .route("/login/enterprise", get(web::enterprise::login_show).post(web::enterprise::login_submit))
        .route(
            "/register/agent",
            get(web::enterprise::agent_register::show).post(web::enterprise::agent_register::submit),
        )
        .route(
            "/login/enterprise/forgot",
            get(web::enterprise::agent_reset::show).post(web::enterprise::agent_reset::submit),
        )
        .route(
            "/enterprise/agent/password",
            get(web::enterprise::agent_password::show).post(web::enterprise::agent_password::submit),
        )
        .route("/face", get(web::enterprise::face_show).post(web::enterprise::face_continue))
        .route("/enterprise/agents", get(web::enterprise::agents_show))
        .route("/enterprise/agents/approve", post(web::enterprise::agent_approve))
        .route("/enterprise/agents/reject", post(web::enterprise::agent_reject))
        .route("/enterprise/agents/revoke", post(web::enterprise::agent_revoke))
        .route("/enterprise/agents/require-password", post(web::enterprise::agent_require_password))
        .route("/enterprise/agents/add", post(web::enterprise::agent_add))
        .route("/enterprise/change", get(web::enterprise::change_show).post(web::enterprise::change_submit))
        .route("/enterprise/register", get(web::enterprise::register::show).post(web::enterprise::register::submit))
        .route(
            "/enterprise/register/password",
            get(web::enterprise::register::password_show).post(web::enterprise::register::password_submit),
        )
        .route(
            "/enterprise/password",
            get(web::enterprise::rep_password::show).post(web::enterprise::rep_password::submit),
        )
        .route(
            "/account/authorisations",
            get(web::account::delegations::authorisations_show).post(web::account::delegations::authorisations_submit),
        )
        .route("/account/kin", get(web::account::delegations::kin_show).post(web::account::delegations::kin_submit))
        .route("/register/real-name", get(web::auth::register::real_name_offer))
        .route("/forgot", get(web::auth::forgot::show).post(web::auth::forgot::submit))
        .route("/account", get(web::account::home))
        .route(
            "/appeal",
            // Evidence images (A8) make the form larger than any other.
            get(web::account::appeal::show)
                .post(web::account::appeal::submit)
                .layer(axum::extract::DefaultBodyLimit::max(web::account::appeal::BODY_LIMIT)),
        )
        .route("/appeal/status", get(web::account::appeal::status))
        .route("/account/profile", get(web::account::profile_show).post(web::account::profile_submit))
        .route("/account/password", get(web::account::password_show).post(web::account::password_submit))
        .route("/account/delete", get(web::account::delete_show).post(web::account::delete_submit))
        .route("/account/upstreams/unlink", post(web::auth::upstream::unlink))
        .route("/account/security/upstream/{name}", post(web::auth::upstream_reverify::start))
        .route("/account/security", get(web::account::security::show).post(web::account::security::submit))
        .route("/account/security/passkey/begin", post(web::account::security::passkey_begin))
        .route("/account/security/passkey", post(web::account::security::passkey_submit))
        .route("/account/phone", get(web::account::phone_show).post(web::account::phone_submit))
        .route("/account/email", get(web::account::email_show).post(web::account::email_submit))
        .route("/identity", get(web::account::identity::show))
        .route("/identity/verify", get(web::account::identity::verify_show).post(web::account::identity::verify_submit))
        .route(
            "/identity/bank-card",
            get(web::account::identity::bank_card_show).post(web::account::identity::bank_card_submit),
        )
        .route("/identity/face", get(web::account::identity::face_show).post(web::account::identity::face_submit))
        .route(
            "/identity/in-person",
            get(web::account::identity::in_person_show).post(web::account::identity::in_person_submit),
        )
        .route("/identity/takeover/bank-card", get(web::account::takeover::show).post(web::account::takeover::submit))
        .route("/identity/unbind", get(web::account::identity::unbind_show).post(web::account::identity::unbind_submit))
        .route("/admin/in-person", get(web::api::face::admin_show).post(web::api::face::admin_submit))
        .route("/admin", get(web::admin::home))
        .route("/admin/step-up", get(web::admin::step_up_show).post(web::admin::step_up_submit))
        .route("/admin/people", get(web::admin::people_search))
        .route("/admin/people/{id}", get(web::admin::person_show).post(web::admin::person_submit))
        .route("/admin/apps", get(web::admin::apps_list).post(web::admin::apps_create))
        .route("/admin/apps/{id}", get(web::admin::app_show).post(web::admin::app_submit))
        .route("/admin/apps/{id}/branding", post(web::admin::app_branding))
        .route("/admin/apps/{id}/auth", post(web::admin::app_auth))
        .route("/admin/apps/{id}/mtls", post(web::admin::app_mtls))
        .route("/admin/audit", get(web::admin::audit))
        .route("/admin/stats", get(web::admin::stats))
        .route("/admin/appeals", get(web::admin::appeals))
        .route("/admin/appeals/{id}", get(web::admin::appeal_show).post(web::admin::appeal_decide))
        .route("/admin/appeals/{id}/evidence/{evidence}", get(web::admin::appeal_evidence))
        .route("/admin/staff", get(web::admin::staff_list).post(web::admin::staff_submit))
        .route("/admin/plugins", get(web::admin::plugins_list))
        .route("/admin/plugins/{name}", post(web::admin::plugin_submit))
        .route("/admin/audit/export", post(web::admin::audit_export))
        .route("/admin/audit/verify", post(web::admin::audit_verify))
        .route("/admin/stats.csv", get(web::admin::stats_csv))
        .merge(web::admin::api::router())
        .route("/admin/callback", get(web::admin::callback))
        .route("/admin/logout", post(web::admin::logout))
        .route("/admin/changes", get(web::admin::changes))
        .route("/admin/changes/{id}", post(web::admin::change_decide))
        .route("/admin/kin-reports", get(web::admin::kin_reports))
        .route("/admin/kin-reports/{id}", post(web::admin::kin_report_decide))
        .route("/admin/feedback", get(web::admin::feedback))
        .route("/admin/feedback/{id}", post(web::admin::feedback_answer))
        .route("/admin/faq", get(web::admin::faq).post(web::admin::faq_submit))
        .route("/admin/enterprises", get(web::admin::enterprises))
        .route("/faq", get(web::help::faq))
        .route("/feedback", get(web::help::feedback_show).post(web::help::feedback_submit))
        .route("/account/feedback", get(web::help::mine))
        .route(
            "/api/identity/face",
            // A face image is larger than any form: its own body limit.
            post(web::api::face::api_face).layer(axum::extract::DefaultBodyLimit::max(3 * 1024 * 1024)),
        )
        .route("/forgot/verify", get(web::auth::forgot::show_verify).post(web::auth::forgot::verify))
        .route("/forgot/password", get(web::auth::forgot::show_password).post(web::auth::forgot::password))
        .route("/forgot/done", get(web::auth::forgot::show_done))
        .route("/consent", get(web::auth::consent::show).post(web::auth::consent::submit))
        .route("/device", get(web::auth::device::show).post(web::auth::device::submit))
        .route("/step-up", get(web::auth::step_up::show))
        .route("/step-up/skip", post(web::auth::step_up::skip))
        .route("/step-up/factor", get(web::auth::step_up_factor::show).post(web::auth::step_up_factor::submit))
        .route("/step-up/factor/send", post(web::auth::step_up_factor::send))
        .route("/login/sms/send", post(web::auth::sms_login::send))
        .route("/register/send", post(web::auth::register::send))
        .route("/forgot/send", post(web::auth::forgot::send))
        .route("/captcha", get(web::auth::sms_form::fresh_captcha))
        .route("/select-account", get(web::auth::select_account::show).post(web::auth::select_account::submit))
        .route("/static/{file}", get(web::pages::static_file))
        .route("/demo", get(crate::demo::start))
        .route("/demo/callback", get(crate::demo::callback))
        .route("/plugins/{name}", any(web::api::plugin_routes::root))
        .route("/plugins/{name}/", any(web::api::plugin_routes::root))
        .route("/plugins/{name}/{*rest}", any(web::api::plugin_routes::nested))
        // `/health` is kept for existing probes; it is liveness only.
        .route("/health", get(|| async { "ok" }))
        .route("/healthz", get(web::api::health::live))
        .route("/readyz", get(web::api::health::ready))
        .route("/metrics", get(crate::kit::metrics::render))
        .route("/", get(web::pages::home))
        .route("/lang", get(crate::kit::frame::switch_language))
        .route("/account/apps", get(web::account::apps::show).post(web::account::apps::revoke))
        .route("/account/sessions", get(web::account::devices::show).post(web::account::devices::end))
        .route("/account/history", get(web::account::history::show))
        .route("/legal/{doc}", get(web::legal::show))
        .fallback(crate::kit::extract::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::kit::extract::render_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::kit::frame::frame))
        .layer(axum::middleware::map_response_with_state(state.clone(), security_headers))
        .route_layer(axum::middleware::from_fn(crate::kit::metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), client_address))
        .route_layer(axum::middleware::from_fn(record_route))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_context))
        .with_state(state)
}

/// The id of one request (`X-Request-Id`): the caller's when it sent a
/// well-formed one (a proxy's, so its logs and ours join), a fresh random
/// one otherwise. Handlers find it in the request's extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

const REQUEST_ID: &str = "x-request-id";

impl RequestId {
    /// The caller's id when it is 1–128 characters of a safe set (no spaces,
    /// quotes or control characters can reach a log line), else `None`.
    pub fn accept(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
        ok.then(|| Self(value.to_string()))
    }

    pub fn generate() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }
}

/// Outermost layer: gives the request its id (echoed in the response), runs
/// it inside a `request` span (id, method, route template — never the raw
/// path or query, which can hold codes and ticket ids) and, on shutdown,
/// ends event streams so the drain is not held open by waiting browsers.
async fn request_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use futures_util::StreamExt;
    use tracing::Instrument;
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::accept)
        .unwrap_or_else(RequestId::generate);
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        method = %req.method(),
        route = tracing::field::Empty,
    );
    let header_value = HeaderValue::from_str(&id.0).ok();
    let scoped = id.0.clone();
    req.extensions_mut().insert(id);
    let started = std::time::Instant::now();
    // Outgoing calls made while serving it carry the same id.
    let mut res = crate::net::REQUEST_ID.scope(scoped, next.run(req).instrument(span.clone())).await;
    span.in_scope(|| {
        tracing::debug!(
            target: "idp::access",
            status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request done"
        )
    });
    if let Some(v) = header_value {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    if http1::is_event_stream(&res) {
        let (parts, body) = res.into_parts();
        let until = state.shutdown.clone().cancelled_owned();
        let body = axum::body::Body::from_stream(body.into_data_stream().take_until(until));
        res = axum::response::Response::from_parts(parts, body);
    }
    res
}

/// Names the matched route (`/scan/t/{id}`, not the id) in the request span.
async fn record_route(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if let Some(route) = req.extensions().get::<axum::extract::MatchedPath>() {
        tracing::Span::current().record("route", route.as_str());
    }
    next.run(req).await
}

/// Puts the client's address where every handler reads it (`ConnectInfo`):
/// behind a trusted proxy, the forwarded client (see [`crate::net`]), so
/// rate limits, scan tickets and logs name the citizen, not the proxy. The
/// client certificate header (RFC 8705) of any other peer is dropped here.
async fn client_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    // RFC 8705 behind a proxy: the client certificate header only from a trusted proxy.
    crate::oidc::mtls::strip_untrusted(&state, peer, req.headers_mut());
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().copied() {
        let forwarded: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let client = state.proxies.client(peer.ip(), &forwarded);
        if client != peer.ip() {
            req.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::new(client, peer.port())));
        }
    }
    next.run(req).await
}

/// The provider's Content-Security-Policy. A page may send its own (a
/// branded sign-in page widens `img-src` to its app's logo origin).
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'";

/// Headers every response carries: no framing (clickjacking), no sniffing,
/// no referrer leaks of codes or states.
async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut res: axum::response::Response,
) -> axum::response::Response {
    let h = res.headers_mut();
    if state.config.secure_cookies() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    res
}

/// Runs the server until ctrl-c / SIGTERM, with background upkeep: key
/// reload (rotation on another node) and purge of expired rows.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_until(state, listener, shutdown_signal()).await
}

/// Sets the allocator up for a long-running server (see [`memory`]). The
/// binary calls it before its runtime starts, so that every thread shares
/// the arenas from its first allocation; [`serve_until`] calls it again
/// for servers started otherwise (tests).
pub fn configure_allocator() {
    memory::configure();
}

/// Runs the server until `signal` completes, then shuts down gracefully: the
/// listener closes at once, event streams end, in-flight requests get
/// `shutdown_grace_secs` to finish, background upkeep stops and the
/// database pool is closed. Connections are HTTP/1.1, and a waiting
/// browser's event stream leaves its connection (see [`http1`]).
pub async fn serve_until(
    state: AppState,
    listener: tokio::net::TcpListener,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    configure_allocator();
    crate::kit::metrics::install();
    let upkeep = state.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            if let Err(e) = upkeep.keys.reload(&upkeep.store, upkeep.config.tokens.retired_key_publish).await {
                tracing::warn!("key reload failed: {e}");
            }
            if let Err(e) = crate::store::purge_expired(&upkeep.store, upkeep.clock.now()).await {
                tracing::warn!("purge failed: {e}");
            }
            // A8: reviewers are reminded once of each overdue appeal.
            if let Err(e) =
                crate::domain::identity::appeals::remind_overdue(&upkeep.store, &upkeep, upkeep.clock.now()).await
            {
                tracing::warn!("overdue appeal reminder failed: {e}");
            }
        }
    });
    // Other nodes' changes (PostgreSQL): caches forget, scan waiters wake,
    // at once. SQLite has one node; its scan waiters also check the file
    // for another process's decisions (D1).
    let mut followers = vec![
        tokio::spawn(state.clients.clone().follow(state.bus.subscribe())),
        tokio::spawn(state.scan_waiters.clone().follow(state.bus.subscribe())),
        tokio::spawn(state.bus.clone().listen()),
        tokio::spawn(memory::trim_periodically()),
    ];
    if !state.bus.cross_node() {
        let waiters = state.scan_waiters.clone();
        followers.push(tokio::spawn(waiters.watch_other_nodes(state.store.clone(), state.clock.clone())));
    }
    let token = state.shutdown.clone();
    let trigger = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = signal => {
                tracing::info!("shutting down: no new connections, draining requests");
                trigger.cancel();
            }
            _ = trigger.cancelled() => {}
        }
    });
    let grace = std::time::Duration::from_secs(state.config.shutdown_grace_secs);
    let store = state.store.clone();
    let server = http1::serve_connections(listener, router(state), token.clone());
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = server => {}
        _ = deadline => {
            tracing::warn!("shutdown: requests still running after {}s, stopping anyway", grace.as_secs());
        }
    }
    upkeep.abort();
    for task in followers {
        task.abort();
    }
    if let Err(e) = store.close().await {
        tracing::warn!("closing the database pool failed: {e}");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
