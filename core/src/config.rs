//! Typed configuration: one TOML file plus `IDP_*` environment overrides.
//! Unknown keys are rejected with their name and the keys that are allowed.
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public issuer URL, e.g. `https://id.example.gov.cn` (no trailing slash).
    pub issuer: String,
    /// Socket address to listen on.
    pub listen: String,
    /// Directory for the SQLite file and the generated master key.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default is a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// 64 hex characters (32 bytes) encrypting signing keys at rest. When
    /// absent, one is generated into `data_dir/master.key` (mode 0600).
    pub master_key: Option<String>,
    /// Folder whose templates/locales/static override the built-in theme.
    pub theme_dir: Option<PathBuf>,
    /// Locale used when the browser asks for none we have (one of
    /// `i18n.locales`; `i18n.default` replaces it when set).
    pub default_locale: String,
    /// Prefix of `acr` values; the level number is appended.
    pub acr_prefix: String,
    pub tokens: TokenConfig,
    pub session: SessionConfig,
    pub login_throttle: ThrottleConfig,
    /// Per-level max ages of the factors that count towards L2–L4.
    pub assurance: crate::domain::assurance::AssuranceConfig,
    pub plugins: PluginsConfig,
    pub sms: crate::ports::sms::SmsConfig,
    pub mail: crate::ports::mail::MailConfig,
    /// The identity verifier (real-name, face, bank card, in-person).
    pub verifier: crate::ports::verifier::VerifierConfig,
    /// Upstream OpenID Providers for third-party login (A3 identity
    /// brokering), keyed by a short lower-case name used in URLs, e.g.
    /// `[upstreams.gov]` or `IDP_UPSTREAMS__GOV__CLIENT_ID`.
    pub upstreams: std::collections::BTreeMap<String, UpstreamConfig>,
    /// Reverse proxies / load balancers (addresses or CIDR blocks) whose
    /// `X-Forwarded-For` names the client; empty means the socket peer is
    /// the client. A list, or comma-separated in env.
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
    /// `CIDR,region` lines naming where addresses are, shown to the scan
    /// app as the waiting browser's rough location.
    pub ip_regions_file: Option<PathBuf>,
    /// Lets a server with an `https` issuer start on the development
    /// adapters (SMS and mail dev sinks, the sandbox verifier). Off: an
    /// https issuer means real citizens, and a sandbox verifier would pass
    /// anyone's real-name check while codes went to a local table.
    pub allow_insecure_dev: bool,
    /// `text` (default, for people) or `json` (one object per line, for log
    /// collectors), each line carrying the request's id.
    pub log_format: LogFormat,
    /// On SIGTERM / SIGINT: how many seconds in-flight requests get to finish
    /// before the server stops anyway (event streams are closed at once).
    pub shutdown_grace_secs: u64,
    /// PAR, DPoP and the FAPI 2.0 profile for every client (issue 17).
    pub protocol: ProtocolConfig,
    /// Testing only: write each graphic captcha's answer to the message
    /// table (as the dev SMS gateway always does), so a test can drive the
    /// register page against a real SMS vendor's fake. Never in production:
    /// an https issuer refuses it unless `allow_insecure_dev`.
    pub captcha_record_answers: bool,
    /// `[i18n]`: the languages the pages offer, and the default.
    pub i18n: I18nConfig,
    /// The built-in theme: `default` (red portal) or `gov` (plain); a
    /// `theme_dir` overrides files on top of it, and whatever neither has
    /// comes from `default`.
    pub theme: String,
    /// Public holidays (`YYYY-MM-DD`, China Standard Time dates) that are
    /// not working days for the appeal review promise (A8: one working
    /// day; weekends are always skipped). A list, or comma-separated in env.
    #[serde(deserialize_with = "list_or_csv")]
    pub appeal_holidays: Vec<String>,
    /// The citizen portal (issue 19): the government app's link and
    /// download page, the agreement and privacy policy documents.
    pub portal: PortalConfig,
}

/// Locales the provider ships texts for (theme and plugins).
pub const KNOWN_LOCALES: &[&str] = &["zh-CN", "en", "bo"];
/// Built-in themes.
pub const KNOWN_THEMES: &[&str] = &["default", "gov"];

/// `[i18n]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct I18nConfig {
    /// Languages offered, in the order of the language switch, e.g.
    /// `["zh-CN", "en", "bo"]` (or comma-separated in env). Each must be one
    /// of [`KNOWN_LOCALES`].
    #[serde(deserialize_with = "list_or_csv")]
    pub locales: Vec<String>,
    /// The default language; when set it replaces the top-level
    /// `default_locale`. Must be one of `locales`.
    pub default: Option<String>,
}

impl Default for I18nConfig {
    fn default() -> Self {
        Self { locales: KNOWN_LOCALES.iter().map(|s| s.to_string()).collect(), default: None }
    }
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Global protocol switches; each is also a per-client setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    /// Every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// Every client follows the FAPI 2.0 Security Profile.
    pub fapi2: bool,
    /// DPoP proofs must carry a nonce this server issued (RFC 9449 §8).
    pub use_dpop_nonce: bool,
    /// How far a DPoP proof's `iat` may be from now, in seconds.
    pub dpop_iat_window: i64,
    /// Lifetime of a pushed request's `request_uri`, in seconds.
    pub par_ttl: i64,
    /// The default `subject_type` of clients that name none: `public` or
    /// `pairwise` (OIDC Core §8; pairwise reaches clients with one sector).
    pub subject_type: String,
    /// Dynamic client registration (RFC 7591 / 7592), `[protocol.registration]`.
    pub registration: RegistrationPolicy,
    /// Mutual TLS (RFC 8705) behind a TLS-terminating proxy: the request
    /// header in which the proxy passes the client certificate, URL-encoded
    /// PEM (nginx `$ssl_client_escaped_cert`), e.g. `X-Client-Cert`. Believed
    /// only from `trusted_proxies`; none = no mutual TLS.
    pub mtls_cert_header: Option<String>,
}

/// What dynamic client registration (RFC 7591) may register: off by
/// default; when on, a client registers with an initial access token an
/// administrator issued (`idp client initial-token`), within these limits.
/// Plugin scopes are never registrable: they need an administrator's grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationPolicy {
    /// Whether `/oauth/register` exists (and discovery names it).
    pub enabled: bool,
    /// Redirect URIs must use https; with hosts listed here, also be on
    /// one of them (exact host names).
    pub redirect_hosts: Vec<String>,
    /// Also allow `http://127.0.0.1` / `[::1]` redirect URIs (native apps, RFC 8252).
    pub allow_loopback: bool,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_methods: Vec<String>,
    /// The scopes a registered client may ask for (built-in scopes only).
    pub scopes: Vec<String>,
    /// Signing algorithms a client may choose for ID tokens, userinfo,
    /// introspection responses, request objects and client assertions.
    pub signing_algs: Vec<String>,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self {
            enabled: false,
            redirect_hosts: Vec::new(),
            allow_loopback: false,
            grant_types: list(&["authorization_code", "refresh_token"]),
            response_types: list(&["code"]),
            token_endpoint_auth_methods: list(&["private_key_jwt", "client_secret_basic", "client_secret_post"]),
            scopes: list(&["openid", "profile", "email", "phone", "address", "offline_access"]),
            signing_algs: list(&["ES256", "PS256", "RS256"]),
        }
    }
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            require_pushed_authorization_requests: false,
            fapi2: false,
            use_dpop_nonce: false,
            dpop_iat_window: 60,
            par_ttl: 60,
            subject_type: "public".into(),
            registration: RegistrationPolicy::default(),
            mtls_cert_header: None,
        }
    }
}

/// One upstream OpenID Provider (national platform, Alipay, WeChat, Baidu …).
/// Its redirect URI at this provider is `{issuer}/login/upstream/{name}/callback`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The protocol: `oidc` (default), `wechat`, `alipay` or `baidu`
    /// (docs/brokering.md, "Vendors").
    #[serde(default = "default_upstream_kind")]
    pub kind: String,
    /// Button text in Chinese ("使用 {display_name} 登录").
    pub display_name: String,
    /// Button text in English; the Chinese name when absent.
    #[serde(default)]
    pub display_name_en: Option<String>,
    /// The upstream issuer; its discovery document is fetched from it
    /// (`oidc` only).
    #[serde(default)]
    pub issuer: String,
    /// OIDC client id; WeChat AppID, Alipay app_id, Baidu API Key.
    pub client_id: String,
    /// OIDC client secret; WeChat AppSecret, Baidu Secret Key; for Alipay
    /// the app private key (PEM or bare base64, PKCS#8 or PKCS#1).
    pub client_secret: String,
    /// Alipay's public key (PEM or bare base64), verifying its answers.
    #[serde(default)]
    pub alipay_public_key: Option<String>,
    /// Vendor kinds: the authorization page, instead of the vendor's own.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Vendor kinds: the API base (WeChat `https://api.weixin.qq.com`,
    /// Alipay's gateway URL, Baidu `https://openapi.baidu.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// A list, or one string separated by spaces or commas (as in OAuth).
    #[serde(default = "default_upstream_scopes", deserialize_with = "scope_list")]
    pub scopes: Vec<String>,
    /// Whether a verified `phone_number` from this upstream may link to the
    /// local account holding that phone without asking. Off by default:
    /// only turn it on for upstreams that really verify phones.
    #[serde(default)]
    pub trust_phone: bool,
    /// A1 "mini-program" sign-in: when the trusted, verified phone belongs to
    /// no local account, create one on the spot (no extra step). Needs
    /// `trust_phone`.
    #[serde(default)]
    pub auto_register: bool,
    /// Re-verification at this upstream counts only when its ID
    /// token says the person signed in there at most this many seconds
    /// before the token was issued (both by the upstream's clock).
    #[serde(default = "default_reverify_max_age")]
    pub reverify_max_age: i64,
    /// Mini-program login (`POST /api/miniprogram/{name}/login`): the
    /// client id of the public client its tokens are issued to. Absent: no
    /// mini-program login through this upstream.
    #[serde(default)]
    pub mini_program_client: Option<String>,
}

fn default_upstream_kind() -> String {
    "oidc".into()
}

fn default_reverify_max_age() -> i64 {
    5 * 60
}

fn scope_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(list_or_csv(d)?.iter().flat_map(|s| s.split_whitespace()).map(String::from).collect())
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "phone".into()]
}

/// Without the client secret, so a logged config cannot leak it.
impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("kind", &self.kind)
            .field("display_name", &self.display_name)
            .field("display_name_en", &self.display_name_en)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("alipay_public_key", &self.alipay_public_key.as_ref().map(|_| "<set>"))
            .field("authorize_url", &self.authorize_url)
            .field("api_url", &self.api_url)
            .field("scopes", &self.scopes)
            .field("trust_phone", &self.trust_phone)
            .field("auto_register", &self.auto_register)
            .field("reverify_max_age", &self.reverify_max_age)
            .field("mini_program_client", &self.mini_program_client)
            .finish()
    }
}

impl UpstreamConfig {
    pub fn display_name(&self, locale: &str) -> &str {
        match (&self.display_name_en, locale) {
            (Some(en), "en") => en,
            _ => &self.display_name,
        }
    }
}

/// Plugins loaded at start (plugins/README.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Folder of plugin libraries (`*.so`); none means no plugins.
    pub dir: Option<PathBuf>,
    /// Optional pins: file name → lower-case hex SHA-256 of the file.
    pub sha256: std::collections::BTreeMap<String, String>,
    /// Plugins that fail open: when one faults, tokens are issued without
    /// its claims instead of failing (a list, or comma-separated in env).
    #[serde(deserialize_with = "list_or_csv")]
    pub optional: Vec<String>,
    /// Time limit of one call into a plugin.
    pub call_timeout_ms: i64,
    /// Calls in flight per plugin; a hung plugin cannot use up the threads.
    pub max_concurrent_calls: i64,
    /// Consecutive faults after which a plugin is marked unhealthy.
    pub unhealthy_after: i64,
    /// Seconds an unhealthy plugin rests before it is tried again.
    pub retry_after: i64,
    /// Hex SHA-256 of the bearer token that opens plugin admin routes;
    /// without it admin routes are closed.
    pub admin_token_sha256: Option<String>,
    /// Per-plugin settings, passed to the plugin's `init` as JSON.
    pub settings: std::collections::BTreeMap<String, toml::Value>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sha256: Default::default(),
            optional: Vec::new(),
            call_timeout_ms: 2000,
            max_concurrent_calls: 16,
            unhealthy_after: 3,
            retry_after: 60,
            admin_token_sha256: None,
            settings: Default::default(),
        }
    }
}

/// `[portal]`: what the portal links to. Documents are read per locale
/// from a file or given inline (a plain text with `#` headings and `-`
/// lists); a locale left out falls back to the theme's shipped text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Opens the government app on a phone at a scan ticket or face gate:
    /// a custom scheme or a universal link; `{url}` becomes the QR's URL
    /// (percent-encoded).
    pub app_link: String,
    /// Where to get the app (shown beside the QR code).
    pub app_download_url: String,
    /// 《用户服务协议》, `/legal/terms`: per locale (e.g. `[portal.terms.zh-CN]`).
    pub terms: std::collections::BTreeMap<String, DocumentSource>,
    /// 《隐私政策》, `/legal/privacy`.
    pub privacy: std::collections::BTreeMap<String, DocumentSource>,
}

/// One locale of a document: `file` (read at each request, so an edit needs
/// no restart) or inline `text`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentSource {
    pub file: Option<PathBuf>,
    pub text: Option<String>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            // The reference app's scheme (idp/src/bin/citizen-app.rs).
            app_link: "idp-citizen://scan?url={url}".into(),
            app_download_url: "/legal/app".into(),
            terms: Default::default(),
            privacy: Default::default(),
        }
    }
}

fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Form::deserialize(d)? {
        Form::List(l) => l,
        Form::Csv(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub code_ttl: i64,
    /// How long a retired signing key stays in the JWKS.
    pub retired_key_publish: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout: i64,
    pub absolute_timeout: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins per account before it is locked for `lock_seconds`.
    pub account_failures: i64,
    /// Failed logins per client IP within `lock_seconds`.
    pub ip_failures: i64,
    pub lock_seconds: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            master_key: None,
            theme_dir: None,
            default_locale: "zh-CN".into(),
            acr_prefix: "urn:idp:loa:".into(),
            tokens: TokenConfig::default(),
            protocol: ProtocolConfig::default(),
            session: SessionConfig::default(),
            login_throttle: ThrottleConfig::default(),
            assurance: Default::default(),
            plugins: PluginsConfig::default(),
            sms: Default::default(),
            mail: Default::default(),
            verifier: Default::default(),
            upstreams: Default::default(),
            trusted_proxies: Vec::new(),
            ip_regions_file: None,
            allow_insecure_dev: false,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 20,
            captcha_record_answers: false,
            i18n: I18nConfig::default(),
            theme: "default".into(),
            appeal_holidays: Vec::new(),
            portal: PortalConfig::default(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 600,
            id_token_ttl: 600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            retired_key_publish: 24 * 3600,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_timeout: 2 * 3600, absolute_timeout: 12 * 3600 }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { account_failures: 5, ip_failures: 50, lock_seconds: 900 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("config file is not valid TOML: {0}")]
    Toml(String),
    #[error("config key `{path}`: {message}")]
    Key { path: String, message: String },
}

/// Environment variables that configure the process but are not config keys.
const NON_CONFIG_ENV: &[&str] = &["IDP_CONFIG", "IDP_LOG", "IDP_NEW_PASSWORD"];

impl Config {
    /// Loads the optional TOML file, applies `IDP_*` overrides (nested keys
    /// with `__`, e.g. `IDP_TOKENS__ACCESS_TOKEN_TTL`), then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.display().to_string(), e))?
            }
            None => String::new(),
        };
        Self::from_toml(&text, env)
    }

    /// The config a TOML text (empty = all defaults) and `IDP_*` overrides give.
    pub fn from_toml(text: &str, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut root = text.parse::<toml::Table>().map_err(|e| ConfigError::Toml(e.to_string()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("IDP_") else {
                continue;
            };
            if NON_CONFIG_ENV.contains(&name.as_str()) || rest.starts_with("TEST_") || rest.is_empty() {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            insert_path(&mut root, &path, env_value(value));
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(root))
            .map_err(|e| ConfigError::Key { path: e.path().to_string(), message: e.inner().to_string() })?;
        if let Some(default) = config.i18n.default.clone() {
            config.default_locale = default;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |path: &str, message: String| ConfigError::Key { path: path.into(), message };
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| bad("issuer", format!("not a URL ({e}); expected e.g. https://id.example.org")))?;
        if !matches!(issuer.scheme(), "http" | "https") {
            return Err(bad("issuer", "must use https (or http for local testing)".into()));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() || self.issuer.ends_with('/') {
            return Err(bad("issuer", "must have no query, fragment or trailing slash".into()));
        }
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| bad("listen", format!("`{}` is not an address like 127.0.0.1:8080", self.listen)))?;
        crate::net::TrustedProxies::parse(&self.trusted_proxies).map_err(|e| bad("trusted_proxies", e))?;
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(bad("database_url", "allowed: sqlite://PATH or postgres://USER@HOST/DB".into()));
        }
        if let Some(key) = &self.master_key
            && (key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(bad("master_key", "must be 64 hexadecimal characters (32 bytes)".into()));
        }
        let known = KNOWN_LOCALES.join(", ");
        if self.i18n.locales.is_empty() {
            return Err(bad("i18n.locales", format!("list at least one of: {known}")));
        }
        for (i, l) in self.i18n.locales.iter().enumerate() {
            if !KNOWN_LOCALES.contains(&l.as_str()) {
                return Err(bad("i18n.locales", format!("`{l}` is not a shipped locale; allowed: {known}")));
            }
            if self.i18n.locales[..i].contains(l) {
                return Err(bad("i18n.locales", format!("`{l}` is listed twice")));
            }
        }
        if !self.i18n.locales.contains(&self.default_locale) {
            let offered = self.i18n.locales.join(", ");
            let path = if self.i18n.default.is_some() { "i18n.default" } else { "default_locale" };
            return Err(bad(path, format!("`{}` is not offered; allowed: {offered}", self.default_locale)));
        }
        if !KNOWN_THEMES.contains(&self.theme.as_str()) {
            return Err(bad("theme", format!("allowed: {}", KNOWN_THEMES.join(", "))));
        }
        for (doc, sources) in [("terms", &self.portal.terms), ("privacy", &self.portal.privacy)] {
            for (lang, src) in sources {
                if src.file.is_some() == src.text.is_some() {
                    return Err(bad(&format!("portal.{doc}.{lang}"), "exactly one of `file` or `text`".into()));
                }
            }
        }
        let positive = [
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.id_token_ttl", self.tokens.id_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("tokens.code_ttl", self.tokens.code_ttl),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.absolute_timeout", self.session.absolute_timeout),
            ("login_throttle.account_failures", self.login_throttle.account_failures),
            ("login_throttle.ip_failures", self.login_throttle.ip_failures),
            ("login_throttle.lock_seconds", self.login_throttle.lock_seconds),
            ("plugins.call_timeout_ms", self.plugins.call_timeout_ms),
            ("plugins.max_concurrent_calls", self.plugins.max_concurrent_calls),
            ("plugins.unhealthy_after", self.plugins.unhealthy_after),
            ("plugins.retry_after", self.plugins.retry_after),
        ];
        for (path, value) in positive {
            if value <= 0 {
                return Err(bad(path, "must be a positive number of seconds/attempts".into()));
            }
        }
        let ages = [
            ("assurance.l2_max_age", self.assurance.l2_max_age),
            ("assurance.l3_max_age", self.assurance.l3_max_age),
            ("assurance.l4_max_age", self.assurance.l4_max_age),
        ];
        for (path, value) in ages {
            if value < 0 {
                return Err(bad(path, "must be 0 (as long as the session) or a positive number of seconds".into()));
            }
        }
        let hex64 = |v: &str| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit());
        for (file, pin) in &self.plugins.sha256 {
            if !hex64(pin) {
                return Err(bad(&format!("plugins.sha256.{file}"), "must be 64 hexadecimal characters".into()));
            }
        }
        if let Some(d) = &self.plugins.admin_token_sha256
            && !hex64(d)
        {
            return Err(bad("plugins.admin_token_sha256", "must be 64 hexadecimal characters (SHA-256)".into()));
        }
        if self.plugins.call_timeout_ms > 60_000 {
            return Err(bad("plugins.call_timeout_ms", "at most 60000 ms".into()));
        }
        if let Some((key, message)) = self.sms.problem() {
            return Err(bad(key, message));
        }
        match self.mail.gateway.as_str() {
            "dev" => {}
            "smtp" if self.mail.smtp_host.is_some() => {}
            "smtp" => return Err(bad("mail.smtp_host", "required when mail.gateway = \"smtp\"".into())),
            other => return Err(bad("mail.gateway", format!("`{other}`: allowed dev, smtp"))),
        }
        if let Some((key, message)) = self.verifier.problem() {
            return Err(bad(key, message));
        }
        for (name, up) in &self.upstreams {
            validate_upstream(name, up)
                .map_err(|(field, message)| bad(&format!("upstreams.{name}.{field}"), message))?;
        }
        if let Some(message) = self.insecure_dev_adapters() {
            return Err(bad("allow_insecure_dev", message));
        }
        if self.tokens.code_ttl > 600 {
            return Err(bad("tokens.code_ttl", "at most 600 seconds (RFC 6749 §4.1.2)".into()));
        }
        if !(1..=600).contains(&self.protocol.par_ttl) {
            return Err(bad("protocol.par_ttl", "between 1 and 600 seconds (RFC 9126 §2.2)".into()));
        }
        if let Some(h) = &self.protocol.mtls_cert_header
            && !is_header_name(h)
        {
            return Err(bad("protocol.mtls_cert_header", format!("`{h}` is not a header name like X-Client-Cert")));
        }
        if self.protocol.mtls_cert_header.is_some() && self.trusted_proxies.is_empty() {
            return Err(bad(
                "protocol.mtls_cert_header",
                "needs trusted_proxies: the certificate header is believed only from them".into(),
            ));
        }
        if !(1..=300).contains(&self.protocol.dpop_iat_window) {
            return Err(bad("protocol.dpop_iat_window", "between 1 and 300 seconds".into()));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("idp.db").display()),
        }
    }

    /// The production guard: an https issuer on development adapters,
    /// explained, unless the operator opted in with `allow_insecure_dev`.
    pub fn insecure_dev_adapters(&self) -> Option<String> {
        if !self.issuer.starts_with("https://") || self.allow_insecure_dev {
            return None;
        }
        let mut dev = Vec::new();
        if self.sms.gateway == "dev" {
            dev.push("sms.gateway = \"dev\" (SMS codes go to a local table, not to phones)");
        }
        if self.mail.gateway == "dev" {
            dev.push("mail.gateway = \"dev\" (mail goes to a local table)");
        }
        if self.captcha_record_answers {
            dev.push("captcha_record_answers = true (captcha answers are written to a local table)");
        }
        if self.verifier.kind == "sandbox" {
            dev.push("verifier.kind = \"sandbox\" (fictitious identities: real-name, face and in-person checks are simulated)");
        }
        (!dev.is_empty()).then(|| {
            format!(
                "the issuer is https (a deployment real people use) but these are development adapters: {}. \
                 Configure the real gateways and verifier, or set allow_insecure_dev = true (IDP_ALLOW_INSECURE_DEV=true) \
                 for a staging system that must run on them",
                dev.join("; ")
            )
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Tokens and secrets travel to this address: TLS everywhere except a
/// provider on this machine (tests, local development).
fn secure_url(field: &'static str, value: &str) -> Result<url::Url, (&'static str, String)> {
    let u = url::Url::parse(value)
        .map_err(|e| (field, format!("not a URL ({e}); expected e.g. https://id.upstream.example")))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
        return Err((field, "must use https (http only on a loopback address)".into()));
    }
    Ok(u)
}

/// Names go into URL paths and env variable names (which are lower-cased).
/// A header name: RFC 9110 token characters only.
fn is_header_name(h: &str) -> bool {
    !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_upstream(name: &str, up: &UpstreamConfig) -> Result<(), (&'static str, String)> {
    let name_ok = (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !name_ok {
        return Err(("name", "must be 1–32 of a-z, 0-9, _ and start with a letter".into()));
    }
    if up.display_name.trim().is_empty() {
        return Err(("display_name", "must not be empty".into()));
    }
    if up.auto_register && !up.trust_phone {
        return Err((
            "auto_register",
            "needs trust_phone = true: accounts are created only for verified phones".into(),
        ));
    }
    if !(0..=3600).contains(&up.reverify_max_age) {
        return Err(("reverify_max_age", "must be 0–3600 seconds (a re-verification is a fresh sign-in)".into()));
    }
    if up.client_id.trim().is_empty() {
        return Err(("client_id", "must not be empty".into()));
    }
    if up.client_secret.is_empty() {
        return Err(("client_secret", "must not be empty".into()));
    }
    match up.kind.as_str() {
        "oidc" => {
            let issuer = secure_url("issuer", &up.issuer)?;
            if issuer.query().is_some() || issuer.fragment().is_some() {
                return Err(("issuer", "must have no query or fragment".into()));
            }
            if !up.scopes.iter().any(|s| s == "openid") {
                return Err(("scopes", "must include openid".into()));
            }
        }
        "wechat" | "alipay" | "baidu" => {
            if let Some(u) = &up.authorize_url {
                secure_url("authorize_url", u)?;
            }
            if let Some(u) = &up.api_url {
                secure_url("api_url", u)?;
            }
        }
        other => return Err(("kind", format!("`{other}`: allowed oidc, wechat, alipay, baidu"))),
    }
    if up.kind == "alipay" {
        crate::ports::upstream::alipay::private_key(&up.client_secret)
            .map_err(|e| ("client_secret", format!("the Alipay app private key: {e}")))?;
        let Some(key) = &up.alipay_public_key else {
            return Err(("alipay_public_key", "required with kind = \"alipay\" (answers are verified)".into()));
        };
        crate::ports::upstream::alipay::public_key(key).map_err(|e| ("alipay_public_key", e))?;
    }
    if let Some(bad) = up.scopes.iter().find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_graphic() && c != '"')) {
        return Err(("scopes", format!("`{bad}` is not a scope token")));
    }
    Ok(())
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = table.entry(head.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn env_overrides_nested_keys() {
        let c = Config::load_from(
            None,
            &env(&[
                ("IDP_ISSUER", "https://id.example.org"),
                ("IDP_TOKENS__ACCESS_TOKEN_TTL", "60"),
                ("IDP_ALLOW_INSECURE_DEV", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.issuer, "https://id.example.org");
        assert_eq!(c.tokens.access_token_ttl, 60);
    }

    #[test]
    fn https_issuer_refuses_development_adapters_unless_opted_in() {
        let err = Config::load_from(None, &env(&[("IDP_ISSUER", "https://id.example.org")])).unwrap_err().to_string();
        assert!(err.contains("allow_insecure_dev"), "{err}");
        for adapter in ["sms.gateway", "mail.gateway", "verifier.kind"] {
            assert!(err.contains(adapter), "{adapter} not named in: {err}");
        }
        // Real adapters configured: no opt-in needed.
        let real = env(&[
            ("IDP_ISSUER", "https://id.example.org"),
            ("IDP_SMS__GATEWAY", "http"),
            ("IDP_SMS__URL", "https://sms.example.org/send"),
            ("IDP_MAIL__GATEWAY", "smtp"),
            ("IDP_MAIL__SMTP_HOST", "smtp.example.org"),
            ("IDP_VERIFIER__KIND", "http"),
            ("IDP_VERIFIER__URL", "https://verify.example.org"),
            ("IDP_VERIFIER__KEY", "a-shared-signing-secret"),
        ]);
        assert!(Config::load_from(None, &real).is_ok());
        // Only the one dev adapter left is named.
        let mut one = real.clone();
        one.retain(|(k, _)| !k.starts_with("IDP_VERIFIER"));
        let err = Config::load_from(None, &one).unwrap_err().to_string();
        assert!(err.contains("verifier.kind") && !err.contains("sms.gateway"), "{err}");
        // An http issuer (local development) needs no opt-in.
        assert!(Config::load_from(None, &env(&[("IDP_ISSUER", "http://localhost:8080")])).is_ok());
        let opted = env(&[("IDP_ISSUER", "https://id.example.org"), ("IDP_ALLOW_INSECURE_DEV", "true")]);
        assert!(Config::load_from(None, &opted).is_ok());
    }

    #[test]
    fn unknown_key_is_named_with_allowed_keys() {
        let err = Config::load_from(None, &env(&[("IDP_ISUER", "x")])).unwrap_err().to_string();
        assert!(err.contains("isuer"), "{err}");
        assert!(err.contains("issuer"), "{err}");
    }

    #[test]
    fn plugin_section_from_env() {
        let c = Config::load_from(
            None,
            &env(&[
                ("IDP_PLUGINS__DIR", "/opt/idp/plugins"),
                ("IDP_PLUGINS__OPTIONAL", "example, e-certificate"),
                ("IDP_PLUGINS__CALL_TIMEOUT_MS", "500"),
            ]),
        )
        .unwrap();
        assert_eq!(c.plugins.dir.as_deref(), Some(Path::new("/opt/idp/plugins")));
        assert_eq!(c.plugins.optional, vec!["example".to_string(), "e-certificate".to_string()]);
        assert_eq!(c.plugins.call_timeout_ms, 500);
        let err = Config::load_from(None, &env(&[("IDP_PLUGINS__DIRR", "x")])).unwrap_err().to_string();
        assert!(err.contains("dirr"), "{err}");
        let err = Config::load_from(None, &env(&[("IDP_PLUGINS__ADMIN_TOKEN_SHA256", "abc")])).unwrap_err().to_string();
        assert!(err.contains("admin_token_sha256"), "{err}");
    }

    #[test]
    fn upstreams_from_env_with_defaults_and_checks() {
        let base = [
            ("IDP_UPSTREAMS__GOV__DISPLAY_NAME", "国家平台"),
            ("IDP_UPSTREAMS__GOV__ISSUER", "https://gov.example.org"),
            ("IDP_UPSTREAMS__GOV__CLIENT_ID", "idp"),
            ("IDP_UPSTREAMS__GOV__CLIENT_SECRET", "s3cret"),
        ];
        let c = Config::load_from(None, &env(&base)).unwrap();
        let up = &c.upstreams["gov"];
        assert_eq!(up.scopes, vec!["openid", "profile", "phone"]);
        assert!(!up.trust_phone);
        assert_eq!(up.display_name("en"), "国家平台");
        assert!(!format!("{c:?}").contains("s3cret"), "the client secret stays out of logs");
        let with = |k: &'static str, v: &'static str| {
            let mut e = base.to_vec();
            e.push((k, v));
            Config::load_from(None, &env(&e)).unwrap_err().to_string()
        };
        let err = with("IDP_UPSTREAMS__GOV__ISSUER", "http://gov.example.org");
        assert!(err.contains("upstreams.gov.issuer") && err.contains("https"), "{err}");
        let err = with("IDP_UPSTREAMS__GOV__SCOPES", "profile phone");
        assert!(err.contains("upstreams.gov.scopes"), "{err}");
        let err = with("IDP_UPSTREAMS__GOV__TRUST_EMAIL", "true");
        assert!(err.contains("trust_email"), "{err}");
        let err = Config::load_from(None, &env(&[("IDP_UPSTREAMS__GOV__ISSUER", "https://x.org")])).unwrap_err();
        assert!(err.to_string().contains("upstreams.gov"), "{err}");
        let c = Config::load_from(
            None,
            &env(&[base[0], ("IDP_UPSTREAMS__GOV__ISSUER", "http://127.0.0.2:9"), base[2], base[3]]),
        );
        assert!(c.is_ok());
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::load_from(None, &env(&[("IDP_LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::load_from(None, &env(&[("IDP_ISSUER", "https://x.org/")])).unwrap_err().to_string();
        assert!(err.contains("trailing slash"), "{err}");
    }
}
