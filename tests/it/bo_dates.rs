//! Tibetan pages beyond the texts (issue 19): dates in the Tibetan form
//! (`ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6`, the `format_datetime` of `bo.toml`) with the
//! Chinese beside them, English dates in English, and plugin pages as
//! bilingual as the provider's own (their locale files, dates and live
//! clock), reloading with a pause the citizen controls instead of a meta
//! refresh.
use crate::both;
use crate::factors::{get, password_sign_in};
use crate::health_code::{ZHANG_ID, citizen, page, signed_in};
use crate::plugin_kit::*;
use crate::support::*;
use chrono::{DateTime, FixedOffset};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn theme_text(locale: &str) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(root().join(format!("themes/default/locales/{locale}.toml"))).unwrap())
        .unwrap()
}

fn json_texts(path: &str) -> BTreeMap<String, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap();
    map.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect()
}

/// `ts` in China Standard Time in a locale file's strftime pattern.
fn formatted(ts: i64, pattern: &str) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).unwrap();
    DateTime::from_timestamp(ts, 0).unwrap().with_timezone(&cst).format(pattern).to_string()
}

/// How a bilingual page shows one text in Tibetan with the Chinese beside it.
fn bilingual(bo: &str, zh: &str) -> String {
    format!(
        "<span class=\"bi\"><span lang=\"bo\">{bo}</span> <span lang=\"zh-CN\" class=\"bi-beside\">{zh}</span></span>"
    )
}

async fn switch_to(app: &TestApp, b: &Browser, lang: &str) {
    let res = b.http.get(app.url(&format!("/lang?to={lang}&back=%2Faccount"))).send().await.unwrap();
    assert_eq!(res.status(), 303);
}

/// The sign-in history in Tibetan shows the time of the sign-in in the
/// Tibetan form with the Chinese beside it; in English, in English.
async fn tibetan_and_english_dates(backend: Backend) {
    let app = spawn(backend).await;
    app.user("bo_dates").await;
    let before = app.state.clock.now();
    let b = password_sign_in(&app, "bo_dates").await;
    switch_to(&app, &b, "bo").await;
    let (status, html) = get(&b, app.url("/account/history")).await;
    let after = app.state.clock.now();
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"bo\">") && html.contains("data-action=\"sign_in\""), "{html}");
    let (bo, zh, en) = (theme_text("bo"), theme_text("zh-CN"), theme_text("en"));
    let pattern = |t: &toml::Table| t["format_datetime"].as_str().unwrap().to_string();
    assert!(pattern(&bo).starts_with("ཕྱི་ལོ་%Y ཟླ་"), "the Tibetan form in bo.toml");
    // The minute of the sign-in (it may have turned between the two reads).
    let shown = |ts: i64| bilingual(&formatted(ts, &pattern(&bo)), &formatted(ts, &pattern(&zh)));
    assert!(html.contains(&shown(before)) || html.contains(&shown(after)), "{} in {html}", shown(before));
    assert!(!html.contains(['\u{F8F0}', '\u{F8F1}', '\u{F8F2}']), "no marks left");

    switch_to(&app, &b, "en").await;
    let (_, html) = get(&b, app.url("/account/history")).await;
    let english = |ts: i64| formatted(ts, &pattern(&en));
    assert!(html.contains(&english(before)) || html.contains(&english(after)), "{} in {html}", english(before));
    assert!(!html.contains('年') && !html.contains("ཕྱི་ལོ་"), "an English date is English");
}
both!(tibetan_and_english_dates_both, super::tibetan_and_english_dates);

/// A plugin page in Tibetan: the plugin's own texts with the Chinese beside
/// them (title, headings, buttons), Tibetan only in attributes and in the
/// drawn card, dates and the live clock in both forms, and the reload
/// control instead of a meta refresh.
async fn plugin_pages_are_bilingual(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;
    switch_to(&app, &b, "bo").await;
    let (status, html) = page(&b, &app, "/").await;
    assert_eq!(status, 200, "{html}");
    let bo = json_texts("plugins/health-code/locales/bo.json");
    let zh = json_texts("plugins/health-code/locales/zh-CN.json");
    assert!(html.contains("<html lang=\"bo\">"));
    assert!(html.contains(&format!("<h1>{}</h1>", bilingual(&bo["code_title"], &zh["code_title"]))), "{html}");
    assert!(html.contains(&bilingual(&bo["renew"], &zh["renew"])), "the renew button in both: {html}");
    assert!(html.contains(&format!("<title>{} / {}", bo["code_title"], zh["code_title"])), "plain in the title");
    let svg = html.split("class=\"health-card\"").nth(1).unwrap().split("</svg>").next().unwrap().to_string();
    assert!(!svg.contains("<span") && svg.contains(&bo["type_personal"]), "the card in Tibetan only: {svg}");
    assert!(!html.contains(['\u{F8F0}', '\u{F8F1}', '\u{F8F2}']), "no marks left");

    // The clock ticks in both forms (the SDK's locale files hold them).
    let sdk_bo = json_texts("plugins/sdk/locales/bo.json");
    let sdk_zh = json_texts("plugins/sdk/locales/zh-CN.json");
    assert!(html.contains(&format!("<span lang=\"bo\" data-format=\"{}\">", sdk_bo["format_clock"])), "{html}");
    assert!(html.contains(&format!("<span lang=\"zh-CN\" data-format=\"{}\">", sdk_zh["format_clock"])), "{html}");
    // "Valid until" in the Tibetan form beside the Chinese.
    let valid = html.split("<p class=\"valid\">").nth(1).unwrap().split("</p>").next().unwrap();
    assert!(valid.contains("<span lang=\"bo\">ཕྱི་ལོ་") && valid.contains("年"), "{valid}");

    // A reload the citizen can pause (WCAG 2.2.1), in both languages.
    assert!(!html.contains("http-equiv"), "no meta refresh");
    let reload = html.split("id=\"auto-reload\"").nth(1).unwrap().split("</div>").next().unwrap();
    assert!(reload.contains("data-reload-toggle") && reload.contains("data-reload-left"), "{reload}");
    assert!(reload.contains(&bilingual(&sdk_bo["reload_pause"], &sdk_zh["reload_pause"])), "{reload}");
    let script = api().get(app.url("/static/portal.js")).send().await.unwrap().text().await.unwrap();
    assert!(script.contains("[data-reload]") && script.contains("data-format"), "the theme's script runs both");

    // In Chinese and English the same page is in one language.
    switch_to(&app, &b, "en").await;
    let (_, html) = page(&b, &app, "/").await;
    let en = json_texts("plugins/health-code/locales/en.json");
    assert!(html.contains(&format!("<h1>{}</h1>", en["code_title"])) && !html.contains("class=\"bi\""));
    let sdk_en = json_texts("plugins/sdk/locales/en.json");
    assert!(html.contains(&sdk_en["reload_pause"]) && !html.contains('年'), "English dates: {html}");
}
both!(plugin_pages_are_bilingual_both, super::plugin_pages_are_bilingual);
