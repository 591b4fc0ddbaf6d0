//! Locale negotiation. Strings live in the theme's `locales/*.toml`, never
//! in code; zh-CN is the default, English is available.
pub const SUPPORTED: &[&str] = &["zh-CN", "en"];

/// Picks a supported locale: explicit `ui_locales` (OIDC) first, then the
/// language cookie, then `Accept-Language`, then the configured default.
pub fn negotiate(ui_locales: Option<&str>, cookie: Option<&str>, accept: Option<&str>, default: &str) -> &'static str {
    let candidates =
        ui_locales.into_iter().flat_map(|u| u.split(' ')).chain(cookie).chain(
            accept.into_iter().flat_map(|a| a.split(',')).map(|part| part.split(';').next().unwrap_or("").trim()),
        );
    for c in candidates {
        if let Some(found) = match_locale(c) {
            return found;
        }
    }
    match_locale(default).unwrap_or("zh-CN")
}

fn match_locale(tag: &str) -> Option<&'static str> {
    let lower = tag.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return None;
    }
    if lower == "zh" || lower.starts_with("zh-") {
        return Some("zh-CN");
    }
    if lower == "en" || lower.starts_with("en-") {
        return Some("en");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ui_locales_win_then_accept_language() {
        assert_eq!(negotiate(Some("fr en"), None, Some("zh-CN"), "zh-CN"), "en");
        assert_eq!(negotiate(None, None, Some("en-US,en;q=0.9"), "zh-CN"), "en");
        assert_eq!(negotiate(None, None, Some("de"), "zh-CN"), "zh-CN");
    }
}
