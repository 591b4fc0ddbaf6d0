//! Test harness: the real server on a free port with a fresh database
//! (SQLite file, or a new PostgreSQL database when IDP_TEST_POSTGRES_URL is
//! set), and a browser that follows the sign-in pages by hand.
use idp::config::Config;
use idp::domain::clients::{AuthMethod, NewClient};
use idp::domain::identity::users::NewUser;
use reqwest::redirect::Policy;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend when the environment provides a server.
    pub fn postgres() -> Option<Backend> {
        match std::env::var("IDP_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                eprintln!("IDP_TEST_POSTGRES_URL not set: PostgreSQL variant skipped");
                None
            }
        }
    }
}

/// Runs a test body once per backend as two test functions.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = $crate::support::Backend::postgres() {
                    $body(b).await
                }
            }
        }
    };
}

pub fn random_name(prefix: &str) -> String {
    format!("{prefix}{}", idp::crypto::random_token(9).to_lowercase().replace(['-', '_'], "x"))
}

pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(random_name("idp-test-"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_postgres(admin_url: &str) -> String {
    // scripts/test.sh gives each run its own prefix, so its clean-up drops
    // this run's databases and never those of a run going on beside it.
    let prefix = std::env::var("IDP_TEST_DB_PREFIX").unwrap_or_else(|_| "idp_t_".into());
    let name = random_name(&prefix);
    let admin = sea_orm::Database::connect(admin_url).await.expect("connect to IDP_TEST_POSTGRES_URL");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
    format!("{base}/{name}")
}

pub struct TestApp {
    pub base: String,
    pub state: idp::AppState,
    pub dir: std::path::PathBuf,
    pub database_url: String,
}

pub const PASSWORD: &str = "Correct-horse-9";

pub async fn config_for(backend: &Backend, port: u16, dir: &std::path::Path) -> Config {
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("idp.db").display()),
        Backend::Postgres(admin) => fresh_postgres(admin).await,
    };
    let env = vec![
        ("IDP_ISSUER".to_string(), format!("http://127.0.0.1:{port}")),
        ("IDP_LISTEN".to_string(), format!("127.0.0.1:{port}")),
        ("IDP_DATA_DIR".to_string(), dir.display().to_string()),
        ("IDP_DATABASE_URL".to_string(), database_url),
        ("IDP_MASTER_KEY".to_string(), "7f".repeat(32)),
    ];
    Config::load_from(None, &env).unwrap()
}

pub async fn spawn(backend: Backend) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let config = config_for(&backend, port, &dir).await;
    spawn_with(config, listener, dir).await
}

pub async fn spawn_with(config: Config, listener: tokio::net::TcpListener, dir: std::path::PathBuf) -> TestApp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("IDP_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let database_url = config.database_url();
    let state = idp::build_state(config, true).await.unwrap();
    let base = state.config.issuer.clone();
    tokio::spawn(idp::serve(state.clone(), listener));
    TestApp { base, state, dir, database_url }
}

pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn client(&self, tweak: impl FnOnce(&mut NewClient)) -> TestClient {
        let mut new = NewClient {
            name: "Test RP".into(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            post_logout_redirect_uris: vec!["http://127.0.0.1:9/out".into()],
            ..Default::default()
        };
        tweak(&mut new);
        let redirect_uri = new.redirect_uris.first().cloned().unwrap_or_default();
        let created = self.state.clients.create(new).await.unwrap();
        TestClient { id: created.client.client_id, secret: created.client_secret, redirect_uri }
    }

    pub async fn confidential(&self) -> TestClient {
        self.client(|_| {}).await
    }

    pub async fn public_client(&self) -> TestClient {
        self.client(|c| {
            c.public = true;
            c.auth_method = Some(AuthMethod::None);
        })
        .await
    }

    pub async fn user(&self, username: &str) -> String {
        self.state
            .users
            .create(NewUser {
                username: username.into(),
                password: PASSWORD.into(),
                email: Some(format!("{username}@example.org")),
                name: Some("王五".into()),
                phone: None,
                id_number: None,
            })
            .await
            .unwrap()
            .sub
    }
}

/// A browser: keeps cookies, never follows redirects by itself.
pub struct Browser {
    pub http: reqwest::Client,
}

pub fn api() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#x2F;", "/").replace("&amp;", "&"))
}

/// The `href` of the link with this id, unescaped.
pub fn link_href(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\" href=\""))?;
    let start = at + format!("id=\"{id}\" href=\"").len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#x2F;", "/").replace("&amp;", "&").replace("&#x3D;", "="))
}

pub fn location(res: &reqwest::Response) -> Option<String> {
    res.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from)
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// Where a flow ended: back at the client (with its query), or on a page.
#[derive(Debug)]
pub enum End {
    Client(String),
    Page(u16, String),
}

impl End {
    pub fn params(&self) -> HashMap<String, String> {
        match self {
            End::Client(url) => query_of(url),
            End::Page(status, body) => panic!("expected a redirect to the client, got page {status}: {body}"),
        }
    }
    pub fn code(&self) -> String {
        let p = self.params();
        p.get("code").cloned().unwrap_or_else(|| panic!("no code in {p:?}"))
    }
}

impl Browser {
    pub fn new() -> Self {
        Self { http: reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap() }
    }

    /// Follows redirects on the provider, signing in as `user` and
    /// consenting when asked, until the browser is sent to the client.
    pub async fn run(&self, app: &TestApp, start: &str, user: &str, password: &str) -> End {
        let mut url = start.to_string();
        for _ in 0..12 {
            if !url.starts_with(&app.base) {
                return End::Client(url);
            }
            let res = self.http.get(&url).send().await.unwrap();
            if let Some(next) = location(&res) {
                url = next;
                continue;
            }
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            let path = url::Url::parse(&url).unwrap().path().to_string();
            if path == "/register/real-name" && status == 200 {
                // The offer after registering: "not now".
                url = app.url(&link_href(&body, "skip").expect("skip link"));
                continue;
            }
            let form: Vec<(&str, String)> = match path.as_str() {
                "/login" if status == 200 => vec![
                    ("req", hidden(&body, "req").unwrap()),
                    ("csrf", hidden(&body, "csrf").unwrap()),
                    ("username", user.to_string()),
                    ("password", password.to_string()),
                ],
                "/consent" if status == 200 => vec![
                    ("req", hidden(&body, "req").unwrap()),
                    ("csrf", hidden(&body, "csrf").unwrap()),
                    ("decision", "allow".into()),
                ],
                _ => return End::Page(status, body),
            };
            let res = self.http.post(app.url(&path)).form(&form).send().await.unwrap();
            match location(&res) {
                Some(next) => url = next,
                None => {
                    let status = res.status().as_u16();
                    return End::Page(status, res.text().await.unwrap());
                }
            }
        }
        panic!("too many redirects");
    }
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = idp::crypto::random_token(32);
    let challenge = idp::crypto::pkce_s256(&verifier);
    Pkce { verifier, challenge }
}

/// An authorization URL with sensible defaults; `extra` overrides.
pub fn auth_url(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client.id.clone()),
        ("redirect_uri".into(), client.redirect_uri.clone()),
        ("scope".into(), "openid profile email offline_access".into()),
        ("state".into(), "st-123".into()),
        ("nonce".into(), "n-456".into()),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// Redeems a code with client_secret_basic (or as a public client).
pub async fn redeem(app: &TestApp, client: &TestClient, code: &str, verifier: Option<&str>) -> reqwest::Response {
    redeem_request(app, client, code, verifier).send().await.unwrap()
}

pub fn redeem_request(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut form =
        vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri.as_str())];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    match &client.secret {
        Some(s) => api().post(app.url("/token")).basic_auth(&client.id, Some(s)).form(&form),
        None => {
            form.push(("client_id", client.id.as_str()));
            api().post(app.url("/token")).form(&form)
        }
    }
}

pub async fn json(res: reqwest::Response) -> serde_json::Value {
    res.json().await.unwrap()
}

/// Signs in and returns (code, browser) for a confidential client.
pub async fn sign_in(app: &TestApp, client: &TestClient, user: &str, extra: &[(&str, &str)]) -> (String, Browser) {
    let b = Browser::new();
    let end = b.run(app, &auth_url(app, client, extra), user, PASSWORD).await;
    (end.code(), b)
}

/// Decodes a JWT payload without verifying (tests verify separately).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&idp::crypto::b64url_decode(payload).unwrap()).unwrap()
}

/// The latest development-sink message on a channel (`sms`, `mail`,
/// `captcha`) for a recipient (a phone, an address, a captcha id).
pub async fn sink(app: &TestApp, channel: &str, recipient: &str) -> Option<String> {
    use idp::store::entities::dev_message;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    dev_message::Entity::find()
        .filter(dev_message::Column::Channel.eq(channel))
        .filter(dev_message::Column::Recipient.eq(recipient))
        .order_by_desc(dev_message::Column::CreatedAt)
        .order_by_desc(dev_message::Column::Id)
        .all(&app.state.store)
        .await
        .unwrap()
        .into_iter()
        .next()
        .map(|m| m.body)
}

/// The first six-digit run in a message: the code it carries.
pub fn six_digits(body: &str) -> String {
    let digits: Vec<char> = body.chars().collect();
    for w in digits.windows(6) {
        if w.iter().all(|c| c.is_ascii_digit()) {
            return w.iter().collect();
        }
    }
    panic!("no code in {body}")
}
