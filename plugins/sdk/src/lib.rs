//! SDK for idp plugins: implement [`Plugin`], call [`declare_plugin!`] and
//! build the crate as a `cdylib`. The macro exports the one C entry point,
//! turns JSON into the types below and catches every panic at the boundary,
//! so a bug in a plugin becomes an error for one request, not a crash of the
//! provider (plugins/README.md).
//!
//! Build plugins with the default `panic = "unwind"`: with `panic = "abort"`
//! a panic ends the whole process and nothing on the host side can stop it.
pub mod abi;
pub mod bilingual;
#[doc(hidden)]
pub mod export;
mod host;
pub mod human;
pub mod i18n;
pub mod ui;

pub use host::{Host, KvPage, Level, Order, Verified};
pub use serde_json::{Map, Value, json};

use serde::{Deserialize, Serialize};

/// A text in the provider's two languages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Localized {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

impl Localized {
    pub fn new(zh_cn: &str, en: &str) -> Self {
        Self { zh_cn: zh_cn.into(), en: en.into() }
    }
    pub fn get(&self, locale: &str) -> &str {
        if locale == "en" { &self.en } else { &self.zh_cn }
    }
}

/// An OAuth scope the plugin adds and the claims it releases when granted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScopeSpec {
    pub name: String,
    /// Shown on the consent page in the user's language.
    pub description: Localized,
    #[serde(default)]
    pub claims: Vec<String>,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RouteAuth {
    /// A signed-in user (the provider's SSO session); pages are themed and
    /// POSTs are CSRF-checked by the host.
    User,
    /// A relying app with an access token carrying every scope in `scopes`.
    Api,
    /// The provider's administrator (admin bearer token).
    Admin,
}

/// A route under `/plugins/<name>`; `path` is matched exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub auth: RouteAuth,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl RouteSpec {
    pub fn new(method: &str, path: &str, auth: RouteAuth) -> Self {
        Self { method: method.into(), path: path.into(), auth, scopes: Vec::new() }
    }
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// What a plugin is and offers; read by the host before `init`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Lower-case letters, digits and `-`; also the URL segment.
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: Localized,
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Profile fields the plugin reads for the signed-in user on `user`
    /// routes (e.g. `name`, `id_number`); shown by `idp plugin list`.
    #[serde(default)]
    pub profile_fields: Vec<String>,
}

/// Claims for `subject` with the plugin's scopes granted to `client_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimsRequest {
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// An HTTP request to one of the plugin's routes, already authenticated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    /// Path inside the plugin, e.g. `/cert`.
    pub path: String,
    /// Absolute path prefix of the plugin's routes, e.g. `/plugins/example`.
    pub base: String,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Fields of an `application/x-www-form-urlencoded` body.
    #[serde(default)]
    pub form: Vec<(String, String)>,
    /// Any other body, as text (e.g. JSON for API routes).
    #[serde(default)]
    pub body: String,
    /// One of the offered locales: `zh-CN`, `en` or `bo`.
    pub locale: String,
    /// The user (user routes, or the token's subject on API routes).
    #[serde(default)]
    pub subject: Option<String>,
    /// The calling relying app (API routes).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The calling relying app's display name, as registered (API routes):
    /// what to show a person about the app, never its client id.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Scopes of the access token (API routes).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Token to embed as a hidden `csrf` field in forms that POST back.
    #[serde(default)]
    pub csrf: Option<String>,
    /// Who is calling an admin route, for the plugin's own records of who
    /// changed what: `staff:<username>` for a staff member in the console,
    /// `admin-token` for the shared admin bearer token; `None` elsewhere.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Request {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn form(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// A hidden input carrying the CSRF token, for forms.
    pub fn csrf_field(&self) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape_html(self.csrf.as_deref().unwrap_or("")))
    }
}

/// A route's answer. `Page` is wrapped in the provider's theme: the portal
/// frame around a `<div class="plugin">` holding `html`, styled by the
/// theme (see [`ui`] for the components it styles, [`human`] for dates).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Response {
    Page {
        status: u16,
        title: String,
        html: String,
    },
    Json {
        status: u16,
        body: Value,
    },
    /// 303 to a path under the plugin's base (or any absolute path).
    Redirect {
        location: String,
    },
    /// Bytes (e.g. a PNG), base64 in the envelope. The host serves only
    /// the content types in [`BINARY_TYPES`]; with `filename` as a download.
    Binary {
        status: u16,
        content_type: String,
        base64: String,
        #[serde(default)]
        filename: Option<String>,
    },
}

/// Content types a plugin may answer with as [`Response::Binary`] — none
/// that a browser would run as a document.
pub const BINARY_TYPES: &[&str] = &["image/png", "application/pdf", "text/csv"];

impl Response {
    pub fn page(title: impl Into<String>, html: impl Into<String>) -> Self {
        Response::Page { status: 200, title: title.into(), html: html.into() }
    }
    pub fn json(status: u16, body: Value) -> Self {
        Response::Json { status, body }
    }
    pub fn redirect(location: impl Into<String>) -> Self {
        Response::Redirect { location: location.into() }
    }
    /// Binary bytes; `filename` makes the browser download them.
    pub fn binary(content_type: &str, bytes: &[u8], filename: Option<&str>) -> Self {
        use base64::Engine;
        Response::Binary {
            status: 200,
            content_type: content_type.into(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            filename: filename.map(String::from),
        }
    }
    pub fn not_found() -> Self {
        Response::json(404, json!({ "error": "not_found" }))
    }
}

/// What a plugin implements. Every method runs on a blocking thread of the
/// host with a time limit; keep them synchronous and quick.
pub trait Plugin: Sized + Send + Sync + 'static {
    fn manifest() -> Manifest;
    /// Called once at load with the `[plugins.settings.<name>]` table.
    fn init(host: Host, settings: Value) -> Result<Self, String>;
    /// Claims to add to the ID token and userinfo for the granted scopes.
    fn claims(&self, _req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        Ok(Map::new())
    }
    fn handle(&self, _req: &Request) -> Result<Response, String> {
        Ok(Response::not_found())
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Exports `idp_plugin_v1` for a type implementing [`Plugin`]. Every export
/// catches panics and reports them as errors with `panic: true`.
#[macro_export]
macro_rules! declare_plugin {
    ($ty:ty) => {
        static __IDP_PLUGIN_INSTANCE: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();

        unsafe extern "C" fn __idp_plugin_manifest(_input: *const u8, _len: usize) -> $crate::abi::Buffer {
            $crate::export::manifest::<$ty>()
        }
        unsafe extern "C" fn __idp_plugin_init(
            host: *const $crate::abi::HostTable,
            input: *const u8,
            len: usize,
        ) -> $crate::abi::Buffer {
            unsafe { $crate::export::init::<$ty>(&__IDP_PLUGIN_INSTANCE, host, input, len) }
        }
        unsafe extern "C" fn __idp_plugin_claims(input: *const u8, len: usize) -> $crate::abi::Buffer {
            unsafe { $crate::export::claims::<$ty>(&__IDP_PLUGIN_INSTANCE, input, len) }
        }
        unsafe extern "C" fn __idp_plugin_handle(input: *const u8, len: usize) -> $crate::abi::Buffer {
            unsafe { $crate::export::handle::<$ty>(&__IDP_PLUGIN_INSTANCE, input, len) }
        }

        static __IDP_PLUGIN_TABLE: $crate::abi::PluginTable = $crate::abi::PluginTable {
            abi_version: $crate::abi::ABI_VERSION,
            table_size: ::std::mem::size_of::<$crate::abi::PluginTable>() as u32,
            manifest: __idp_plugin_manifest,
            init: __idp_plugin_init,
            claims: __idp_plugin_claims,
            handle: __idp_plugin_handle,
            free: $crate::export::free,
        };

        /// The plugin's one entry point (see `idp_plugin_sdk::abi`).
        #[unsafe(no_mangle)]
        pub extern "C" fn idp_plugin_v1() -> *const $crate::abi::PluginTable {
            &__IDP_PLUGIN_TABLE
        }
    };
}
