//! Human text for citizens (issue 19): dates in the page's language, in
//! China Standard Time, never Unix seconds.
//!
//! The form of a date is a locale text (`format_date`, `format_datetime`:
//! chrono strftime patterns in the theme's locale files), so Tibetan reads
//! `ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6` and English `06 Dec 2026`. In a bilingual locale
//! (`lang_beside`) a date is a [`bilingual::pair`] like every other text of
//! the page: the Tibetan form with the Chinese beside it.
use crate::kit::bilingual;
use chrono::{DateTime, FixedOffset};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::LazyLock;

/// China Standard Time (UTC+8), the time citizens read on every portal.
fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

/// A locale's date patterns and its companion language, if bilingual.
struct Forms {
    date: String,
    datetime: String,
    beside: Option<String>,
}

/// Read once from the built-in locale files (the same files the pages use).
static FORMS: LazyLock<HashMap<&'static str, Forms>> = LazyLock::new(|| {
    super::pages::LOCALES
        .iter()
        .map(|(lang, text)| {
            let table: toml::Table = toml::from_str(text).unwrap_or_default();
            let get = |k: &str| table.get(k).and_then(toml::Value::as_str).unwrap_or_default().to_string();
            let beside = Some(get("lang_beside")).filter(|b| !b.is_empty() && b.as_str() != *lang);
            (*lang, Forms { date: get("format_date"), datetime: get("format_datetime"), beside })
        })
        .collect()
});

fn forms(locale: &str) -> Option<&'static Forms> {
    FORMS.get(locale).or_else(|| FORMS.get("zh-CN"))
}

/// `ts` in `pattern`; a pattern chrono cannot read (or none) gives ISO 8601.
fn format(ts: i64, pattern: &str, with_time: bool) -> String {
    let Some(d) = DateTime::from_timestamp(ts, 0) else { return String::new() };
    let d = d.with_timezone(&cst());
    let mut out = String::new();
    if pattern.is_empty() || write!(out, "{}", d.format(pattern)).is_err() {
        out = d.format(if with_time { "%Y-%m-%d %H:%M" } else { "%Y-%m-%d" }).to_string();
    }
    out
}

fn localized(ts: i64, locale: &str, with_time: bool) -> String {
    let Some(f) = forms(locale) else { return format(ts, "", with_time) };
    let pattern = |f: &Forms| if with_time { f.datetime.clone() } else { f.date.clone() };
    let own = format(ts, &pattern(f), with_time);
    match f.beside.as_deref().and_then(forms) {
        Some(other) => bilingual::pair(&own, &format(ts, &pattern(other), with_time)),
        None => own,
    }
}

/// `2026年12月06日 16:00` (zh-CN), `06 Dec 2026, 16:00` (en),
/// `ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6 16:00` with the Chinese beside it (bo). For pages.
pub fn datetime(ts: i64, locale: &str) -> String {
    localized(ts, locale, true)
}

/// `2026年12月06日`, `06 Dec 2026`, `ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6` (with the Chinese). For pages.
pub fn date(ts: i64, locale: &str) -> String {
    localized(ts, locale, false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_dates() {
        // 2026-12-06 08:00 UTC is 16:00 in Beijing.
        let ts = 1_796_544_000;
        assert_eq!(super::datetime(ts, "zh-CN"), "2026年12月06日 16:00");
        assert_eq!(super::datetime(ts, "en"), "06 Dec 2026, 16:00");
        assert_eq!(super::date(ts, "en"), "06 Dec 2026");
        assert_eq!(super::date(ts, "fr"), "2026年12月06日", "an unknown locale reads as zh-CN");
    }

    #[test]
    fn tibetan_dates_are_tibetan_beside_chinese() {
        let ts = 1_796_544_000;
        let html = crate::kit::bilingual::render(&format!("<p>{}</p>", super::date(ts, "bo")), "bo", "zh-CN");
        assert!(html.contains("<span lang=\"bo\">ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6</span>"), "{html}");
        assert!(html.contains("class=\"bi-beside\">2026年12月06日</span>"), "{html}");
        let html = crate::kit::bilingual::render(&super::datetime(ts, "bo"), "bo", "zh-CN");
        assert!(html.contains("ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6 16:00"), "{html}");
    }

    #[test]
    fn a_broken_pattern_falls_back_to_iso() {
        assert_eq!(super::format(1_796_544_000, "%Q", true), "2026-12-06 16:00");
    }
}
