//! Bilingual pages (issue 19): in a locale whose SDK locale file names a
//! companion (`"lang_beside": "zh-CN"` in `locales/bo.json`), a page shows
//! every text in both languages, like the provider's own pages. A plugin
//! writes each such text as one [`pair`] (its [`crate::i18n::Texts`] and
//! [`crate::human`] dates already do); the host replaces every pair once the
//! page is rendered, by where it stands: both languages side by side in
//! text, the plugin's own language alone in an attribute or an SVG
//! (idp/src/kit/bilingual.rs).
//!
//! The marks are private-use characters that HTML escaping leaves alone;
//! they are part of the contract between the SDK and the host.
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// Opens a pair: `OPEN own SEP companion CLOSE`.
pub const OPEN: char = '\u{F8F0}';
/// Separates the two languages of a pair.
pub const SEP: char = '\u{F8F1}';
/// Closes a pair.
pub const CLOSE: char = '\u{F8F2}';

/// One text in both languages (plain when they are equal or the companion
/// is missing).
pub fn pair(own: &str, companion: &str) -> String {
    if own == companion || companion.is_empty() {
        return own.to_string();
    }
    let clean = |s: &str| s.replace([OPEN, SEP, CLOSE], "");
    format!("{OPEN}{}{SEP}{}{CLOSE}", clean(own), clean(companion))
}

/// The SDK's own locale files: the form of dates and which locale is
/// bilingual with which.
const LOCALES: &[(&str, &str)] = &[
    ("zh-CN", include_str!("../locales/zh-CN.json")),
    ("en", include_str!("../locales/en.json")),
    ("bo", include_str!("../locales/bo.json")),
];

static TABLES: LazyLock<Vec<(&'static str, Map<String, Value>)>> = LazyLock::new(|| {
    LOCALES.iter().map(|(l, s)| (*l, serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default())).collect()
});

/// A text of the SDK's locale files (zh-CN for an unknown locale or key).
pub(crate) fn sdk_text(locale: &str, key: &str) -> &'static str {
    let find = |l: &str| TABLES.iter().find(|(n, _)| *n == l).and_then(|(_, t)| t.get(key)).and_then(Value::as_str);
    find(locale).or_else(|| find("zh-CN")).unwrap_or_default()
}

/// A text of the SDK's locale files for a page: both languages in a
/// bilingual locale.
pub(crate) fn sdk_label(locale: &str, key: &str) -> String {
    match companion(locale) {
        Some(other) => pair(sdk_text(locale, key), sdk_text(other, key)),
        None => sdk_text(locale, key).to_string(),
    }
}

/// The language shown beside `locale` on pages (`bo` → `zh-CN`), if any.
pub fn companion(locale: &str) -> Option<&'static str> {
    if !TABLES.iter().any(|(n, _)| *n == locale) {
        return None;
    }
    let beside = sdk_text(locale, "lang_beside");
    TABLES.iter().map(|(n, _)| *n).find(|n| *n == beside && *n != locale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tibetan_has_chinese_beside_it() {
        assert_eq!(companion("bo"), Some("zh-CN"));
        assert_eq!(companion("zh-CN"), None);
        assert_eq!(companion("en"), None);
        assert_eq!(companion("fr"), None);
        assert_eq!(pair("a", "b"), "\u{F8F0}a\u{F8F1}b\u{F8F2}");
        assert_eq!(pair("a", "a"), "a");
    }
}
