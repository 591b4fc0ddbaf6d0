//! Locale negotiation. Strings live in the theme's `locales/*.toml`, never
//! in code. Which languages are offered, and the default, is configuration
//! (`[i18n] locales`, `[i18n] default`); the provider ships zh-CN (the
//! default), English and Tibetan (`bo`, shown together with Chinese).
pub use crate::config::KNOWN_LOCALES;

/// Picks an offered locale: explicit `ui_locales` (OIDC) first, then the
/// language cookie, then `Accept-Language`, then the configured default.
pub fn negotiate(
    ui_locales: Option<&str>,
    cookie: Option<&str>,
    accept: Option<&str>,
    default: &str,
    offered: &[String],
) -> &'static str {
    let candidates =
        ui_locales.into_iter().flat_map(|u| u.split(' ')).chain(cookie).chain(
            accept.into_iter().flat_map(|a| a.split(',')).map(|part| part.split(';').next().unwrap_or("").trim()),
        );
    let is_offered = |l: &&'static str| offered.iter().any(|o| o == l);
    for c in candidates {
        if let Some(found) = match_locale(c).filter(is_offered) {
            return found;
        }
    }
    match_locale(default).filter(is_offered).or_else(|| offered.iter().find_map(|o| match_locale(o))).unwrap_or("zh-CN")
}

/// The shipped locale a language tag names: the same tag, or the same
/// primary language (`zh-Hans-CN` → `zh-CN`, `en-GB` → `en`, `bo-CN` → `bo`).
pub fn match_locale(tag: &str) -> Option<&'static str> {
    let lower = tag.trim().to_ascii_lowercase();
    let primary = lower.split(['-', '_']).next().unwrap_or("");
    if primary.is_empty() {
        return None;
    }
    KNOWN_LOCALES
        .iter()
        .find(|k| k.to_ascii_lowercase() == lower)
        .or_else(|| KNOWN_LOCALES.iter().find(|k| k.split('-').next().is_some_and(|p| p.eq_ignore_ascii_case(primary))))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        KNOWN_LOCALES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ui_locales_win_then_accept_language() {
        assert_eq!(negotiate(Some("fr en"), None, Some("zh-CN"), "zh-CN", &all()), "en");
        assert_eq!(negotiate(None, None, Some("en-US,en;q=0.9"), "zh-CN", &all()), "en");
        assert_eq!(negotiate(None, None, Some("de"), "zh-CN", &all()), "zh-CN");
        assert_eq!(negotiate(None, None, Some("bo-CN,zh;q=0.8"), "zh-CN", &all()), "bo");
        assert_eq!(negotiate(None, Some("bo"), Some("en"), "zh-CN", &all()), "bo");
    }

    #[test]
    fn only_offered_locales_are_chosen() {
        let offered = vec!["zh-CN".to_string(), "bo".to_string()];
        assert_eq!(negotiate(Some("en"), None, None, "bo", &offered), "bo");
        assert_eq!(negotiate(None, Some("en"), Some("zh-TW"), "bo", &offered), "zh-CN");
        // A default that is not offered never wins; the first offered does.
        assert_eq!(negotiate(None, None, None, "en", &offered), "zh-CN");
    }
}
