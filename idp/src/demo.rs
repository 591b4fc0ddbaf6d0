//! The demo: a seeded user and clients, and a small relying party served at
//! `/demo` that signs in against this provider with the `openidconnect`
//! crate (a client nobody here wrote): code + PKCE, ID token verified
//! against the JWKS, then userinfo.
use crate::config::Config;
use crate::domain::clients::{AuthMethod, NewClient};
use crate::domain::identity::users::NewUser;
use crate::kit::cookies;
use crate::kit::pages::{error_page, page};
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

pub const DEMO_RP_ID: &str = "demo-rp";
pub const DEMO_PUBLIC_ID: &str = "demo-public";
pub const DEMO_USER: &str = "demo_user";
/// The reference citizen app (`citizen-app` binary): a public client
/// permitted the administrator-granted `scan_login` scope (D1).
pub const DEMO_CITIZEN_APP_ID: &str = "citizen-app";
/// The demo enterprise (C1–C4): its representative and an approved agent,
/// each with a sandbox real-name identity whose face check passes.
pub const DEMO_USCC: &str = "91440300708461136T";
pub const DEMO_REPRESENTATIVE: &str = "demo_rep";
pub const DEMO_AGENT: &str = "demo_agent";
const DEMO_REP_IDENTITY: (&str, &str, &str) = ("陈一", "110101196606060097", "2013-01-01");
const DEMO_AGENT_IDENTITY: (&str, &str, &str) = ("李秀", "11010519491231002X", "2010-01-01");

#[derive(Serialize, Deserialize)]
struct DemoFile {
    client_id: String,
    client_secret: String,
}

/// The demo relying party's credentials and its in-flight sign-ins.
pub struct DemoRp {
    client_id: String,
    client_secret: String,
    pending: Mutex<HashMap<String, (String, String)>>,
}

fn demo_file(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("demo-rp.json")
}

impl DemoRp {
    pub async fn load(_db: &crate::store::Store, config: &Config) -> anyhow::Result<Option<Self>> {
        let path = demo_file(config);
        if !path.exists() {
            return Ok(None);
        }
        let f: DemoFile = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        Ok(Some(Self { client_id: f.client_id, client_secret: f.client_secret, pending: Mutex::new(HashMap::new()) }))
    }
}

/// Plugins `serve --demo` loads when they were built next to the running
/// binary (`cargo build -p idp -p idp-plugin-health-code -p
/// idp-plugin-e-certificate`) and `plugins.dir` is not set.
pub const DEMO_PLUGINS: &[&str] = &["idp_plugin_health_code", "idp_plugin_e_certificate"];

/// What [`demo_plugins`] set up: the folder, the plugins in it, and the
/// admin token for their admin pages when one was generated (shown once).
pub struct DemoPlugins {
    pub dir: std::path::PathBuf,
    pub names: Vec<String>,
    pub admin_token: Option<String>,
}

/// Copies the [`DEMO_PLUGINS`] libraries found in `exe_dir` into
/// `data_dir/demo-plugins` (only those: the build folder also holds test
/// plugins that must not load) and points `config.plugins` there; with no
/// admin token configured one is generated. Each copy is written beside
/// and renamed into place, so a demo still running keeps the library it
/// mapped. Nothing found: the config is left as it is.
pub fn demo_plugins(config: &mut Config, exe_dir: &std::path::Path) -> anyhow::Result<Option<DemoPlugins>> {
    if config.plugins.dir.is_some() {
        return Ok(None);
    }
    let dir = config.data_dir.join("demo-plugins");
    let mut names = Vec::new();
    for name in DEMO_PLUGINS {
        let file = format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let built = exe_dir.join(&file);
        if !built.is_file() {
            continue;
        }
        std::fs::create_dir_all(&dir)?;
        let part = dir.join(format!("{file}.part"));
        std::fs::copy(&built, &part)?;
        std::fs::rename(&part, dir.join(&file))?;
        names.push(name.replace("idp_plugin_", "").replace('_', "-"));
    }
    if names.is_empty() {
        return Ok(None);
    }
    let admin_token = match config.plugins.admin_token_sha256 {
        Some(_) => None,
        None => {
            let token = crate::crypto::random_token(24);
            config.plugins.admin_token_sha256 =
                Some(crate::plugins::loader::hex(&<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())));
            Some(token)
        }
    };
    config.plugins.dir = Some(dir.clone());
    Ok(Some(DemoPlugins { dir, names, admin_token }))
}

pub struct Seeded {
    pub username: String,
    pub password: String,
    pub public_client: String,
    pub citizen_app: String,
}

/// Creates the demo user and clients once. Returns the user's password the
/// one time it is created (it is never stored in clear).
pub async fn seed(state: &AppState) -> anyhow::Result<Option<Seeded>> {
    seed_citizen_app(state).await?;
    if state.clients.find(DEMO_RP_ID).await?.is_some() {
        return Ok(None);
    }
    let issuer = &state.config.issuer;
    let rp = state
        .clients
        .create(NewClient {
            name: "示例应用 Demo RP".into(),
            client_id: Some(DEMO_RP_ID.into()),
            auth_method: Some(AuthMethod::ClientSecretBasic),
            redirect_uris: vec![format!("{issuer}/demo/callback")],
            post_logout_redirect_uris: vec![format!("{issuer}/demo")],
            ..Default::default()
        })
        .await?;
    state
        .clients
        .create(NewClient {
            name: "示例移动应用 Demo public client".into(),
            client_id: Some(DEMO_PUBLIC_ID.into()),
            public: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into(), "cn.gov.idp.demo:/callback".into()],
            ..Default::default()
        })
        .await?;
    let password = format!("Demo-{}", crate::crypto::random_token(9));
    if state.users.find_by_login(DEMO_USER).await?.is_none() {
        state
            .users
            .create(NewUser {
                username: DEMO_USER.into(),
                password: password.clone(),
                phone: Some("13800000000".into()),
                email: Some("demo@example.org".into()),
                name: Some("张三".into()),
                id_number: None,
            })
            .await?;
    }
    let file = DemoFile { client_id: DEMO_RP_ID.into(), client_secret: rp.client_secret.unwrap_or_default() };
    std::fs::create_dir_all(&state.config.data_dir)?;
    std::fs::write(demo_file(&state.config), serde_json::to_string(&file)?)?;
    Ok(Some(Seeded {
        username: DEMO_USER.into(),
        password,
        public_client: DEMO_PUBLIC_ID.into(),
        citizen_app: DEMO_CITIZEN_APP_ID.into(),
    }))
}

/// The citizen app client, also added to a demo seeded before it existed.
/// Its `scan_login` permission is what an administrator would give with
/// `idp client allow-scope citizen-app scan_login`.
async fn seed_citizen_app(state: &AppState) -> anyhow::Result<()> {
    if state.clients.find(DEMO_CITIZEN_APP_ID).await?.is_some() {
        return Ok(());
    }
    state
        .clients
        .create(NewClient {
            name: "政务 App（参考实现）Citizen app".into(),
            client_id: Some(DEMO_CITIZEN_APP_ID.into()),
            public: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            skip_consent: true,
            ..Default::default()
        })
        .await?;
    let now = state.clock.now();
    crate::domain::plugins::plugin_access::allow(
        &state.store,
        DEMO_CITIZEN_APP_ID,
        crate::domain::clients::scopes::SCAN_LOGIN,
        now,
    )
    .await?;
    Ok(())
}

fn http() -> Result<reqwest::Client, reqwest::Error> {
    // No redirects: the openidconnect docs warn they enable SSRF.
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()
}

type DemoClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

async fn discover(state: &AppState, rp: &DemoRp) -> anyhow::Result<(DemoClient, reqwest::Client)> {
    let http = http()?;
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(state.config.issuer.clone())?, &http).await?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(rp.client_id.clone()),
        Some(ClientSecret::new(rp.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(format!("{}/demo/callback", state.config.issuer))?);
    Ok((client, http))
}

pub async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let Some(rp) = state.demo.as_ref() else {
        return error_page(&state, StatusCode::NOT_FOUND, locale, "demo_disabled");
    };
    let (client, _) = match discover(&state, rp).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("demo discovery failed: {e:#}");
            return error_page(&state, StatusCode::BAD_GATEWAY, locale, "demo_failed");
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("phone".into()))
        .set_pkce_challenge(challenge)
        .url();
    if let Ok(mut p) = rp.pending.lock() {
        if p.len() > 10_000 {
            p.clear();
        }
        p.insert(csrf.secret().clone(), (verifier.secret().clone(), nonce.secret().clone()));
    }
    crate::oidc::flow::see_other(url.as_str())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

pub async fn callback(State(state): State<AppState>, headers: HeaderMap, Query(cb): Query<Callback>) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let Some(rp) = state.demo.as_ref() else {
        return error_page(&state, StatusCode::NOT_FOUND, locale, "demo_disabled");
    };
    match finish(&state, rp, cb).await {
        Ok(ctx) => page(&state, StatusCode::OK, "demo.html", locale, ctx),
        Err(e) => {
            let mut ctx = tera::Context::new();
            ctx.insert("error", &format!("{e:#}"));
            page(&state, StatusCode::BAD_REQUEST, "demo.html", locale, ctx)
        }
    }
    .into_response()
}

async fn finish(state: &AppState, rp: &DemoRp, cb: Callback) -> anyhow::Result<tera::Context> {
    if let Some(e) = cb.error {
        anyhow::bail!("authorization error: {e}");
    }
    // RFC 9207: the response must come from the issuer we sent the user to.
    if cb.iss.as_deref() != Some(state.config.issuer.as_str()) {
        anyhow::bail!("iss in the authorization response does not match");
    }
    let csrf = cb.state.ok_or_else(|| anyhow::anyhow!("missing state"))?;
    let (verifier, nonce) = rp
        .pending
        .lock()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?
        .remove(&csrf)
        .ok_or_else(|| anyhow::anyhow!("unknown or reused state"))?;
    let code = cb.code.ok_or_else(|| anyhow::anyhow!("missing code"))?;
    let (client, http) = discover(state, rp).await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await?;
    let id_token = token.id_token().ok_or_else(|| anyhow::anyhow!("no ID token"))?;
    // Expiry on the provider's clock, which stamped the token.
    let now = state.clock.now();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
        .set_time_fn(move || chrono::DateTime::from_timestamp(now, 0).unwrap_or_default());
    let claims = id_token.claims(&verifier, &Nonce::new(nonce))?;
    let userinfo: CoreUserInfoClaims =
        client.user_info(token.access_token().clone(), Some(claims.subject().clone()))?.request_async(&http).await?;
    let mut ctx = tera::Context::new();
    // Claims the typed ID token model does not know: who acts for whom
    // (RFC 8693 `act`, C4). The token was verified just above.
    if let Some(acting) = acting_claims(&id_token.to_string()) {
        ctx.insert("acting", &serde_json::to_string_pretty(&acting)?);
    }
    ctx.insert("claims", &serde_json::to_string_pretty(claims)?);
    ctx.insert("userinfo", &serde_json::to_string_pretty(&userinfo)?);
    ctx.insert("id_token", &id_token.to_string());
    Ok(ctx)
}

/// `act` and `legal_person` / `delegation` of a (verified) ID token.
fn acting_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = crate::crypto::b64url_decode(jwt.split('.').nth(1)?)?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&payload).ok()?;
    let act = claims.get("act")?.clone();
    let mut out = serde_json::json!({ "sub": claims.get("sub"), "act": act });
    for k in ["legal_person", "delegation"] {
        if let Some(v) = claims.get(k) {
            out[k] = v.clone();
        }
    }
    Some(out)
}

/// What `seed_enterprise` created, printed once like the demo user.
pub struct SeededEnterprise {
    pub uscc: String,
    pub name: String,
    pub password: String,
    pub representative: (String, String),
    pub agent: (String, String),
}

/// A demo account holding a sandbox identity (long-term resident ID), as
/// if it had passed the real-name step; `None` when the verifier refuses
/// (a non-sandbox verifier does not know the fictitious people).
async fn demo_person(state: &AppState, username: &str, who: (&str, &str, &str)) -> anyhow::Result<Option<String>> {
    use crate::domain::identity::documents::{Document, DocumentForm};
    use crate::domain::identity::{self, BindOutcome};
    let password = format!("Demo-{}", crate::crypto::random_token(9));
    let user = state
        .users
        .create(NewUser {
            username: username.into(),
            password: password.clone(),
            phone: None,
            email: None,
            name: Some(who.0.into()),
            id_number: None,
        })
        .await?;
    let form = DocumentForm {
        doc_type: "resident_id".into(),
        name: who.0.into(),
        number: who.1.into(),
        valid_from: who.2.into(),
        valid_to: String::new(),
        long_term: Some("on".into()),
    };
    let now = state.clock.now();
    let today = chrono::DateTime::from_timestamp(now + 8 * 3600, 0).map(|d| d.date_naive()).unwrap_or_default();
    let doc = Document::parse(&form, today).map_err(|e| anyhow::anyhow!("demo identity: {}", e.key()))?;
    match identity::verify_document(&state.store, &state.verifier, &user.sub, &doc, now).await? {
        BindOutcome::Done { .. } => Ok(Some(password)),
        other => {
            tracing::warn!("demo enterprise skipped: the verifier did not confirm {username}'s identity ({other:?})");
            Ok(None)
        }
    }
}

/// Creates the demo enterprise once: `demo_rep` is its legal
/// representative, `demo_agent` an approved agent. Both first sign-ins ask
/// for the face check through the citizen app, signed in as that person.
pub async fn seed_enterprise(state: &AppState) -> anyhow::Result<Option<SeededEnterprise>> {
    use crate::domain::{
        delegation, delegation::enterprises, delegation::uscc::Uscc, identity::users::IdNumber,
        identity::users::PhoneNumber,
    };
    if enterprises::find_by_uscc(&state.store, DEMO_USCC).await?.is_some()
        || state.users.find_by_login(DEMO_REPRESENTATIVE).await?.is_some()
    {
        return Ok(None);
    }
    let Some(rep_password) = demo_person(state, DEMO_REPRESENTATIVE, DEMO_REP_IDENTITY).await? else {
        return Ok(None);
    };
    let Some(agent_password) = demo_person(state, DEMO_AGENT, DEMO_AGENT_IDENTITY).await? else {
        return Ok(None);
    };
    // 12 characters, letters and a digit: the C2 password rule.
    let password = format!("Ent{}9", crate::crypto::random_token(6));
    let now = state.clock.now();
    let name = "示例科技有限公司";
    let e = enterprises::create(
        &state.store,
        &state.passwords,
        enterprises::NewEnterprise {
            uscc: Uscc::parse(DEMO_USCC).map_err(|e| anyhow::anyhow!("{e}"))?,
            name: name.into(),
            region: "540102".into(),
            representative_name: DEMO_REP_IDENTITY.0.into(),
            representative_id_number: IdNumber::parse(DEMO_REP_IDENTITY.1).map_err(|e| anyhow::anyhow!("{e}"))?.into(),
            representative_phone: PhoneNumber::parse("13900000009").map_err(|e| anyhow::anyhow!("{e}"))?,
            password: password.clone(),
        },
        "demo",
        now,
    )
    .await?;
    let Some(agent) = state.users.find_by_login(DEMO_AGENT).await? else {
        anyhow::bail!("the demo agent account vanished");
    };
    let d = match enterprises::add_agent(
        &state.store,
        &e.id,
        &agent.id,
        crate::domain::audit::Actor::Operator("demo"),
        now,
    )
    .await?
    {
        Ok(d) => d,
        Err(key) => anyhow::bail!("demo agent: {key}"),
    };
    delegation::activate(&state.store, &d.id, &delegation::Party::Enterprise(&e.id), None, now).await?;
    Ok(Some(SeededEnterprise {
        uscc: DEMO_USCC.into(),
        name: name.into(),
        password,
        representative: (DEMO_REPRESENTATIVE.into(), rep_password),
        agent: (DEMO_AGENT.into(), agent_password),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_loads_only_its_plugins_built_next_to_the_binary() {
        let root = std::env::temp_dir().join(format!("idp-demo-plugins-test-{}", std::process::id()));
        let exe_dir = root.join("bin");
        std::fs::create_dir_all(&exe_dir).unwrap();
        let lib = |n: &str| format!("{}{n}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        std::fs::write(exe_dir.join(lib("idp_plugin_health_code")), b"health").unwrap();
        std::fs::write(exe_dir.join(lib("idp_plugin_test_panicky")), b"test only").unwrap();
        let mut config = Config { data_dir: root.join("data"), ..Config::default() };

        let found = demo_plugins(&mut config, &exe_dir).unwrap().unwrap();
        assert_eq!(found.names, ["health-code"]);
        let dir = config.plugins.dir.clone().unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, [std::ffi::OsString::from(lib("idp_plugin_health_code"))], "no test plugin copied");
        let token = found.admin_token.unwrap();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes());
        assert_eq!(config.plugins.admin_token_sha256, Some(crate::plugins::loader::hex(&digest)));

        // A configured plugin folder is the operator's choice: left alone.
        assert!(demo_plugins(&mut config, &exe_dir).unwrap().is_none());
        // Nothing built: nothing changes.
        let mut bare = Config { data_dir: root.join("data2"), ..Config::default() };
        assert!(demo_plugins(&mut bare, &root.join("nowhere")).unwrap().is_none());
        assert!(bare.plugins.dir.is_none() && bare.plugins.admin_token_sha256.is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
