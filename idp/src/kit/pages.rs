//! Themed pages. The built-in themes are compiled into the binary: `default`
//! has every template, locale and static file; another theme (`gov`)
//! overrides a few of them and falls back to `default` for the rest. A theme
//! folder (`theme_dir`) may override any file on top of the chosen theme.
//!
//! A locale whose file names a companion (`lang_beside`, e.g. Tibetan with
//! Chinese) is bilingual: see [`bilingual`].
use crate::kit::bilingual;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../themes/default/templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = builtin!(
    "base.html",
    "_sms_code.html",
    "_captcha.html",
    "_client_brand.html",
    "login.html",
    "consent.html",
    "select_account.html",
    "error.html",
    "logout.html",
    "logged_out.html",
    "demo.html",
    "home.html",
    "plugin_page.html",
    "register.html",
    "sms_login.html",
    "forgot.html",
    "account.html",
    "appeal.html",
    "upstream_link.html",
    "security.html",
    "mfa_totp.html",
    "mfa_passkey.html",
    "step_up.html",
    "step_up_factor.html",
    "register_real_name.html",
    "enterprise_login.html",
    "face_gate.html",
    "enterprise_agents.html",
    "enterprise_change.html",
    "agent_register.html",
    "agent_reset.html",
    "agent_password.html",
    "authorisations.html",
    "kin.html",
    "identity.html",
    "_scan_qr.html",
    "scan_face.html",
    "scan_landing.html",
    "_admin_nav.html",
    "admin_home.html",
    "admin_step_up.html",
    "admin_people.html",
    "admin_person.html",
    "admin_apps.html",
    "admin_app.html",
    "admin_audit.html",
    "admin_stats.html",
    "admin_appeals.html",
    "admin_staff.html",
    "admin_plugins.html",
    "apps.html",
    "sessions.html",
    "device.html",
    "history.html",
    "_brand.html",
    "_footer.html",
    "appeal_status.html",
    "admin_appeal.html",
    "enterprise_register.html",
    "enterprise_password.html",
    "admin_changes.html",
    "admin_kin_reports.html",
    "admin_feedback.html",
    "admin_faq.html",
    "admin_enterprises.html",
    "faq.html",
    "feedback.html",
    "my_feedback.html",
    "_macros.html",
    "legal.html",
);

pub(crate) const LOCALES: &[(&str, &str)] = &[
    ("zh-CN", include_str!("../../../themes/default/locales/zh-CN.toml")),
    ("en", include_str!("../../../themes/default/locales/en.toml")),
    ("bo", include_str!("../../../themes/default/locales/bo.toml")),
];

const STATIC: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../../themes/default/static/style.css")),
    ("scan.js", "text/javascript; charset=utf-8", include_str!("../../../themes/default/static/scan.js")),
    // Same-origin script (the CSP allows no inline script) for the WebAuthn browser calls.
    ("webauthn.js", "text/javascript; charset=utf-8", include_str!("../../../themes/default/static/webauthn.js")),
    ("portal.js", "text/javascript; charset=utf-8", include_str!("../../../themes/default/static/portal.js")),
    // What a theme other than the default changes (colours, fonts).
    ("theme.css", "text/css; charset=utf-8", include_str!("../../../themes/default/static/theme.css")),
];

/// A built-in theme other than `default`: the few templates and static
/// files it overrides (everything else comes from `default`).
struct Theme {
    name: &'static str,
    templates: &'static [(&'static str, &'static str)],
    statics: &'static [(&'static str, &'static str)],
}

const THEMES: &[Theme] = &[Theme {
    name: "gov",
    templates: &[
        ("_brand.html", include_str!("../../../themes/gov/templates/_brand.html")),
        ("_footer.html", include_str!("../../../themes/gov/templates/_footer.html")),
    ],
    statics: &[("theme.css", include_str!("../../../themes/gov/static/theme.css"))],
}];

/// One entry of the language switch: the locale and its own name.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Language {
    pub code: String,
    /// The primary subtag, for element ids (`lang-zh`, `lang-en`, `lang-bo`).
    pub id: String,
    /// The language's name in itself (中文, English, བོད་ཡིག).
    pub name: String,
}

pub struct Pages {
    tera: tera::Tera,
    /// Each locale's own texts (missing keys filled from zh-CN), for
    /// [`Pages::text`]: one language, never markup.
    locales: HashMap<String, Value>,
    /// What templates see as `t`: the same, except that a bilingual
    /// locale's texts carry both languages (see [`bilingual`]).
    page_texts: HashMap<String, Value>,
    /// Bilingual locales and their companion (`bo` → `zh-CN`).
    companions: HashMap<String, String>,
    /// The offered locales, in the switch's order.
    languages: Vec<Language>,
    statics: HashMap<String, (&'static str, String)>,
}

impl Pages {
    /// The pages of the built-in `theme` with `theme_dir`'s overrides, in
    /// the `offered` locales.
    pub fn load(theme: &str, theme_dir: Option<&std::path::Path>, offered: &[String]) -> anyhow::Result<Self> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html"]);
        let mut sources: Vec<(String, String)> =
            TEMPLATES.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
        let mut locales = HashMap::new();
        let mut statics = HashMap::new();
        for (name, mime, body) in STATIC {
            statics.insert(name.to_string(), (*mime, body.to_string()));
        }
        if theme != "default" {
            let Some(chosen) = THEMES.iter().find(|t| t.name == theme) else {
                anyhow::bail!("no built-in theme `{theme}`");
            };
            for (name, body) in chosen.templates {
                if let Some(entry) = sources.iter_mut().find(|(n, _)| n == name) {
                    entry.1 = body.to_string();
                }
            }
            for (name, body) in chosen.statics {
                if let Some(entry) = statics.get_mut(*name) {
                    entry.1 = body.to_string();
                }
            }
        }
        for (lang, text) in LOCALES {
            let mut table: Map<String, Value> = toml::from_str(text)?;
            if let Some(dir) = theme_dir {
                let path = dir.join("locales").join(format!("{lang}.toml"));
                if path.exists() {
                    let over: Map<String, Value> = toml::from_str(&std::fs::read_to_string(path)?)?;
                    table.extend(over);
                }
            }
            locales.insert(lang.to_string(), Value::Object(table));
        }
        if let Some(dir) = theme_dir {
            for entry in sources.iter_mut() {
                let path = dir.join("templates").join(&entry.0);
                if path.exists() {
                    entry.1 = std::fs::read_to_string(path)?;
                }
            }
            for (name, (_, body)) in statics.iter_mut() {
                let path = dir.join("static").join(name);
                if path.exists() {
                    *body = std::fs::read_to_string(path)?;
                }
            }
        }
        tera.add_raw_templates(sources)?;
        // A key a locale lacks shows in Chinese rather than as its name (the
        // i18n_keys test names every such key).
        let fallback = locales.get("zh-CN").cloned().unwrap_or(Value::Null);
        for (lang, table) in locales.iter_mut() {
            if let (Value::Object(own), Value::Object(zh)) = (table, &fallback)
                && lang != "zh-CN"
            {
                for (k, v) in zh {
                    own.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let mut languages = Vec::new();
        let mut companions = HashMap::new();
        let mut page_texts = HashMap::new();
        for code in offered {
            let Some(Value::Object(own)) = locales.get(code) else {
                anyhow::bail!("no locale file for `{code}`");
            };
            let own_text = |k: &str| own.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let id = code.split('-').next().unwrap_or(code).to_string();
            languages.push(Language { code: code.clone(), id, name: own_text("lang_name") });
            let beside = own_text("lang_beside");
            let texts = match locales.get(&beside) {
                Some(Value::Object(other)) if beside != *code => {
                    companions.insert(code.clone(), beside.clone());
                    Value::Object(bilingual::pair_all(own, other))
                }
                _ => Value::Object(own.clone()),
            };
            page_texts.insert(code.clone(), texts);
        }
        Ok(Self { tera, locales, page_texts, companions, languages, statics })
    }

    /// The offered locales, in the language switch's order.
    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    /// The strings of a locale, for handlers that need one (e.g. errors).
    pub fn text(&self, locale: &str, key: &str) -> String {
        self.locales.get(locale).and_then(|t| t.get(key)).and_then(Value::as_str).unwrap_or(key).to_string()
    }

    /// A text for a page: like [`Pages::text`], but in both languages in a
    /// bilingual locale (rendered by [`Pages::render`]). Never for SMS, mail
    /// or JSON.
    pub fn label(&self, locale: &str, key: &str) -> String {
        match self.companions.get(locale) {
            Some(companion) => bilingual::pair(&self.text(locale, key), &self.text(companion, key)),
            None => self.text(locale, key),
        }
    }

    pub fn render(&self, name: &str, locale: &str, mut ctx: tera::Context) -> Result<String, tera::Error> {
        ctx.insert("lang", locale);
        if !ctx.contains_key("viewer") {
            let mut viewer = crate::kit::frame::viewer();
            if name == "logged_out.html" {
                // Looked up before the sign-out ended the session.
                viewer = crate::kit::frame::Viewer { name: None, enterprise: None, ..viewer };
            }
            ctx.insert("viewer", &viewer);
        }
        if !ctx.contains_key("ethnic_groups") {
            // The one ethnicity list every form's select shows (`_macros.html`).
            ctx.insert("ethnic_groups", &crate::domain::identity::profile::ETHNIC_GROUPS[..]);
        }
        ctx.insert("t", self.page_texts.get(locale).or_else(|| self.locales.get(locale)).unwrap_or(&Value::Null));
        ctx.insert("languages", &self.languages);
        let html = self.tera.render(name, &ctx)?;
        Ok(match self.companions.get(locale) {
            Some(companion) => bilingual::render(&html, locale, companion),
            None => html,
        })
    }

    /// The page templates (not the layout, not `_partials`), for the test
    /// that renders every page in every locale.
    pub fn template_names(&self) -> Vec<&'static str> {
        TEMPLATES.iter().map(|(n, _)| *n).filter(|n| *n != "base.html" && !n.starts_with('_')).collect()
    }
}

/// Renders a page, falling back to a bare message if the template itself
/// fails (a broken override must not take sign-in down silently).
pub fn page(state: &AppState, status: StatusCode, name: &str, locale: &str, ctx: tera::Context) -> Response {
    match state.pages.render(name, locale, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("template {name} failed: {e:?}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// A themed error page with a message from the locale file.
pub fn error_page(state: &AppState, status: StatusCode, locale: &str, message_key: &str) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("message", &state.pages.label(locale, message_key));
    page(state, status, "error.html", locale, ctx)
}

pub async fn static_file(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    match state.pages.statics.get(&file) {
        Some((mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=3600")], body.clone())
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn home(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let locale = super::cookies::locale(&state, &headers, None);
    let mut ctx = tera::Context::new();
    ctx.insert("issuer", &state.config.issuer);
    ctx.insert("demo", &state.demo.is_some());
    page(&state, StatusCode::OK, "home.html", locale, ctx)
}

/// A storage or internal failure: logged, and shown as "try again later".
pub fn unavailable(state: &AppState, locale: &str, err: impl std::fmt::Display) -> Response {
    tracing::error!("request failed: {err}");
    error_page(state, StatusCode::SERVICE_UNAVAILABLE, locale, "error_unavailable")
}
