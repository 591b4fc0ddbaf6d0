//! Health codes (健康码 / 一码通) as an idp plugin — E1–E6
//! (docs/requirements.md). The personal code (E1) is a QR of a payload signed
//! with the provider's key carrying a short-lived code id; its colour comes
//! from status records that an authorised data source pushes, by
//! configurable rules. Guardians switch to their bound relatives' codes and
//! see their nucleic-acid results (E2; the kin rules live in the provider,
//! read through the host's `relations` callback); offline codes last 7 days
//! by their signed payload; enterprise codes for the legal persons a user
//! represents or acts for (E3). Only scanning apps permitted the scan scope
//! verify codes (E4); every show and scan is logged. Administration (E5) and
//! the residential community on the code profile (E6).
mod access;
mod admin;
mod admin_categories;
mod admin_styles;
mod api;
mod backfill;
mod charts;
mod codes;
mod community;
mod events;
mod issuers;
mod logs;
mod pages;
mod paging;
mod png;
mod status;
mod styles;
mod util;

use idp_plugin_sdk::i18n::Texts;
use idp_plugin_sdk::{
    Host, Level, Localized, Manifest, Plugin, Request, Response, RouteAuth, RouteSpec, ScopeSpec, Value, declare_plugin,
};

pub const SCOPE_CODE: &str = "health_code";
pub const SCOPE_SCAN: &str = "health_code.scan";
pub const SCOPE_STATUS: &str = "health_code.status";
pub const SCOPE_LAB: &str = "health_code.lab";

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ZH: &str = include_str!("../locales/zh-CN.json");
const EN: &str = include_str!("../locales/en.json");
const BO: &str = include_str!("../locales/bo.json");
const COMMUNITIES: &str = include_str!("../fixtures/communities.json");

/// `[plugins.settings.health-code]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds a code id lasts (E1: 10 minutes).
    pub rotate_seconds: i64,
    /// Days an offline code is valid (E2: 7).
    pub offline_days: i64,
    /// Showing the code needs a face check at most this many seconds old;
    /// 0 = no face check (003 §2.1.4 makes it configurable).
    pub face_max_age: i64,
    pub rules: Vec<status::Rule>,
    /// Residential communities offered by the search (E6).
    pub communities: Vec<String>,
    /// Rows on one screen of the admin log and code lists.
    pub log_page_size: usize,
    /// Rows a filtered screen examines at most before it offers "older".
    pub log_scan_rows: usize,
}

impl Settings {
    fn from_value(v: &Value) -> Result<Self, String> {
        let int = |k: &str, d: i64| v.get(k).and_then(Value::as_i64).unwrap_or(d);
        let rules = match v.get("rules") {
            Some(r) => status::parse_rules(r)?,
            None => status::default_rules(),
        };
        let communities = match v.get("communities") {
            Some(c) => serde_json::from_value(c.clone()).map_err(|e| format!("communities: {e}"))?,
            None => serde_json::from_str(COMMUNITIES).map_err(|e| format!("communities fixture: {e}"))?,
        };
        Ok(Settings {
            rotate_seconds: int("rotate_seconds", 600).clamp(30, 3600),
            offline_days: int("offline_days", 7).clamp(1, 7),
            face_max_age: int("face_max_age", 600).max(0),
            rules,
            communities,
            log_page_size: int("log_page_size", 50).clamp(1, 500) as usize,
            log_scan_rows: int("log_scan_rows", 5000).clamp(10, 50_000) as usize,
        })
    }
}

pub struct HealthCode {
    host: Host,
    texts: Texts,
    settings: Settings,
    /// This instance, as the owner of the backfill's lease.
    instance: String,
    /// The `issued/` backfill is known complete (no more checks).
    backfilled: AtomicBool,
}

impl HealthCode {
    /// Continues the `issued/` backfill for up to `budget` unless it is
    /// known complete; a failure is logged, not fatal (the list still
    /// shows what is indexed, and the next call resumes).
    fn backfill(&self, budget: Duration) {
        if self.backfilled.load(Ordering::Relaxed) {
            return;
        }
        match backfill::run(&self.host, &self.instance, budget) {
            Ok(done) => self.backfilled.store(done, Ordering::Relaxed),
            Err(e) => self.host.log(Level::Warn, &format!("issued index backfill: {e}")),
        }
    }
}

fn texts() -> Texts {
    Texts::new(ZH, EN).with("bo", BO)
}

fn localized(t: &Texts, key: &str) -> Localized {
    Localized::new(t.get("zh-CN", key), t.get("en", key))
}

impl Plugin for HealthCode {
    fn manifest() -> Manifest {
        let t = texts();
        let user = |m: &str, p: &str| RouteSpec::new(m, p, RouteAuth::User);
        let admin = |m: &str, p: &str| RouteSpec::new(m, p, RouteAuth::Admin);
        let scope =
            |name: &str, key: &str| ScopeSpec { name: name.into(), description: localized(&t, key), claims: vec![] };
        Manifest {
            name: "health-code".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: localized(&t, "plugin_name"),
            scopes: vec![
                scope(SCOPE_CODE, "scope_code"),
                scope(SCOPE_SCAN, "scope_scan"),
                scope(SCOPE_STATUS, "scope_status"),
                scope(SCOPE_LAB, "scope_lab"),
            ],
            routes: vec![
                user("GET", "/"),
                user("POST", "/refresh"),
                user("GET", "/offline"),
                user("GET", "/offline.png"),
                user("GET", "/history"),
                user("GET", "/tests"),
                user("GET", "/authorisations"),
                user("GET", "/profile"),
                user("POST", "/profile"),
                RouteSpec::new("GET", "/api/code", RouteAuth::Api).with_scopes(&[SCOPE_CODE]),
                RouteSpec::new("POST", "/api/scan", RouteAuth::Api).with_scopes(&[SCOPE_SCAN]),
                RouteSpec::new("POST", "/api/status", RouteAuth::Api).with_scopes(&[SCOPE_STATUS]),
                RouteSpec::new("POST", "/api/lab-results", RouteAuth::Api).with_scopes(&[SCOPE_LAB]),
                admin("GET", "/admin"),
                admin("GET", "/admin/codes"),
                admin("GET", "/admin/codes.json"),
                admin("GET", "/admin/styles"),
                admin("GET", "/admin/styles.json"),
                admin("POST", "/admin/styles"),
                admin("POST", "/admin/styles/edit"),
                admin("POST", "/admin/styles/delete"),
                admin("GET", "/admin/categories"),
                admin("POST", "/admin/categories"),
                admin("GET", "/admin/categories.json"),
                admin("POST", "/admin/categories/delete"),
                admin("GET", "/admin/communities.json"),
                admin("POST", "/admin/communities"),
                admin("GET", "/admin/rules"),
                admin("POST", "/admin/rules"),
                admin("GET", "/admin/stats"),
                admin("GET", "/admin/stats.json"),
                admin("GET", "/admin/logs"),
                admin("GET", "/admin/logs.json"),
                admin("GET", "/admin/issuers"),
                admin("GET", "/admin/issuers.json"),
                admin("POST", "/admin/issuers"),
            ],
            // The personal code is the person's by ID number; the name is
            // shown masked. (API calls see the standard claims of the
            // token's scopes: `/api/code` needs `profile` for the name and
            // the provider's ID-number scope for the number.)
            profile_fields: vec!["name".into(), "id_number".into()],
        }
    }

    fn init(host: Host, settings: Value) -> Result<Self, String> {
        let settings = Settings::from_value(&settings)?;
        let p = HealthCode {
            host,
            texts: texts(),
            settings,
            instance: util::new_id(host.now()),
            backfilled: AtomicBool::new(false),
        };
        // Most of it at start (init may take seconds); the admin code list
        // finishes what a large store leaves, a little on each call.
        p.backfill(Duration::from_secs(3));
        Ok(p)
    }

    fn handle(&self, req: &Request) -> Result<Response, String> {
        let path = req.path.as_str();
        if path.starts_with("/api/") {
            return api::handle(self, req);
        }
        if path == "/admin" || path.starts_with("/admin/") {
            return admin::handle(self, req);
        }
        pages::handle(self, req)
    }
}

declare_plugin!(HealthCode);

#[cfg(test)]
mod tests {
    #[test]
    fn locales_have_the_same_keys_and_settings_parse() {
        assert!(super::texts().missing().is_empty(), "{:?}", super::texts().missing());
        let s = super::Settings::from_value(&idp_plugin_sdk::json!({})).unwrap();
        assert_eq!(
            (s.rotate_seconds, s.offline_days, s.face_max_age),
            (600, 7, 600),
            "the face check before the code is on by default (003 §2.1.4)"
        );
        assert!(s.communities.len() > 5);
    }
}
