//! Plugins for tests: builds the plugin crates as cdylibs once per test
//! run (with the same cargo and target folder, so a fresh
//! `cargo test --workspace` works), copies the chosen libraries into a
//! per-test plugin folder and starts the real server with it.
use crate::support::*;
use idp::config::Config;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const EXAMPLE: &str = "idp_plugin_example";
pub const ECERT: &str = "idp_plugin_e_certificate";
pub const HEALTH: &str = "idp_plugin_health_code";
pub const PANICKY: &str = "idp_plugin_test_panicky";
pub const BAD_ABI: &str = "idp_plugin_test_bad_abi";
pub const COLLIDE_CORE: &str = "idp_plugin_test_collide_core";
pub const COLLIDE_PLUGIN: &str = "idp_plugin_test_collide_plugin";
pub const KV_PROBE: &str = "idp_plugin_test_kv_probe";
pub const APPOINT: &str = "idp_plugin_appointments";
pub const ADMIN_TOKEN: &str = "plugin-admin-secret-for-tests";

const PACKAGES: &[&str] = &[
    "idp-plugin-example",
    "idp-plugin-e-certificate",
    "idp-plugin-health-code",
    "idp-plugin-test-panicky",
    "idp-plugin-test-bad-abi",
    "idp-plugin-test-collide-core",
    "idp-plugin-test-collide-plugin",
    "idp-plugin-test-kv-probe",
    "idp-plugin-appointments",
];

/// The folder holding the built libraries (`target/debug`).
pub fn artifacts() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        // target/<profile>/deps/it-… → target/<profile>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let target = profile_dir.parent().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.arg("build").current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).env("CARGO_TARGET_DIR", target);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().expect("run cargo build for the plugins");
        assert!(status.success(), "building the plugin crates failed");
        profile_dir
    })
}

pub fn lib_file(crate_name: &str) -> String {
    format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// Copies a built plugin into `dir` (a copy, not a link: each server in
/// this process must load its own instance), optionally renamed.
pub fn install(dir: &Path, crate_name: &str, as_name: Option<&str>) -> PathBuf {
    let file = as_name.map(String::from).unwrap_or_else(|| lib_file(crate_name));
    let to = dir.join(file);
    std::fs::copy(artifacts().join(lib_file(crate_name)), &to).unwrap();
    to
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A server whose plugin folder holds `plugins`; `tweak` adjusts the
/// config (settings, timeouts, pins) after the folder is set.
pub async fn spawn_plugins(backend: Backend, plugins: &[&str], tweak: impl FnOnce(&mut Config, &Path)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    for p in plugins {
        install(&plugin_dir, p, None);
    }
    let mut config = config_for(&backend, port, &dir).await;
    config.plugins.dir = Some(plugin_dir.clone());
    config.plugins.admin_token_sha256 = Some(sha256_hex(ADMIN_TOKEN.as_bytes()));
    tweak(&mut config, &plugin_dir);
    // The health code asks for a fresh face check by default (003 §2.1.4);
    // tests that do not set `face_max_age` show codes without one.
    if let toml::Value::Table(t) =
        config.plugins.settings.entry("health-code".into()).or_insert_with(|| toml::Value::Table(Default::default()))
    {
        t.entry("face_max_age").or_insert(toml::Value::Integer(0));
    }
    spawn_with(config, listener, dir).await
}

/// Lets `client` request `scope` (what `idp client allow-scope` does).
pub async fn permit(app: &TestApp, client: &TestClient, scope: &str) {
    idp::domain::plugins::plugin_access::allow(&app.state.store, &client.id, scope, app.state.clock.now())
        .await
        .unwrap();
}

/// Follows the sign-in until the consent page; returns its HTML and URL.
pub async fn until_consent(app: &TestApp, b: &Browser, start: &str, user: &str) -> (String, String) {
    let mut url = start.to_string();
    for _ in 0..10 {
        let res = b.http.get(&url).send().await.unwrap();
        if let Some(next) = location(&res) {
            assert!(next.starts_with(&app.base), "left the provider before consent: {next}");
            url = next;
            continue;
        }
        let body = res.text().await.unwrap();
        if url.contains("/consent") {
            return (body, url);
        }
        assert!(url.contains("/login"), "unexpected page {url}: {body}");
        let form = [
            ("req", hidden(&body, "req").unwrap()),
            ("csrf", hidden(&body, "csrf").unwrap()),
            ("username", user.to_string()),
            ("password", PASSWORD.to_string()),
        ];
        let res = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
        url = location(&res).expect("login redirects");
    }
    panic!("no consent page");
}

/// Answers the consent page; returns where the browser is sent.
pub async fn decide(app: &TestApp, b: &Browser, consent_html: &str, decision: &str) -> String {
    let form = [
        ("req", hidden(consent_html, "req").unwrap()),
        ("csrf", hidden(consent_html, "csrf").unwrap()),
        ("decision", decision.to_string()),
    ];
    let res = b.http.post(app.url("/consent")).form(&form).send().await.unwrap();
    let mut url = location(&res).unwrap();
    // Resume until the client is reached.
    while url.starts_with(&app.base) {
        let res = b.http.get(&url).send().await.unwrap();
        url = location(&res).unwrap();
    }
    url
}

/// Signs in with `scope`, consents, redeems: the token response.
pub async fn tokens_for(app: &TestApp, client: &TestClient, user: &str, scope: &str) -> (serde_json::Value, Browser) {
    let b = Browser::new();
    let end = b.run(app, &auth_url(app, client, &[("scope", scope)]), user, PASSWORD).await;
    let res = redeem(app, client, &end.code(), None).await;
    assert_eq!(res.status(), 200);
    (json(res).await, b)
}

pub async fn userinfo(app: &TestApp, access_token: &str) -> reqwest::Response {
    api().get(app.url("/userinfo")).bearer_auth(access_token).send().await.unwrap()
}

/// A client_credentials token request for `scope`.
pub async fn client_token(app: &TestApp, client: &TestClient, scope: &str) -> reqwest::Response {
    api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

/// Writes rows into `plugin`'s storage in SQL, 500 an insert — data as an
/// older plugin version or years of use left it.
pub async fn insert_kv(app: &TestApp, plugin: &str, rows: Vec<(String, String)>) {
    use idp::store::entities::plugin_kv;
    use sea_orm::{EntityTrait, Set};
    for chunk in rows.chunks(500) {
        let models = chunk.iter().map(|(k, v)| plugin_kv::ActiveModel {
            plugin: Set(plugin.into()),
            key: Set(k.clone()),
            value: Set(v.clone()),
            expires_at: Set(None),
            updated_at: Set(0),
        });
        plugin_kv::Entity::insert_many(models).exec_without_returning(&app.state.store).await.unwrap();
    }
}

/// The live value of one of `plugin`'s keys, read in SQL.
pub async fn kv_value(app: &TestApp, plugin: &str, key: &str) -> Option<String> {
    use idp::store::entities::plugin_kv;
    use sea_orm::EntityTrait;
    plugin_kv::Entity::find_by_id((plugin.to_owned(), key.to_owned()))
        .one(&app.state.store)
        .await
        .unwrap()
        .map(|r| r.value)
}

/// Overwrites one of `plugin`'s keys in SQL.
pub async fn set_kv(app: &TestApp, plugin: &str, key: &str, value: &str) {
    use idp::store::entities::plugin_kv;
    use sea_orm::{ActiveModelTrait, Set};
    let row = plugin_kv::ActiveModel {
        plugin: Set(plugin.into()),
        key: Set(key.into()),
        value: Set(value.into()),
        expires_at: Set(None),
        updated_at: Set(0),
    };
    row.update(&app.state.store).await.unwrap();
}
