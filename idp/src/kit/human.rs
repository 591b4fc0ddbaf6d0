//! Human text for citizens (issue 19): dates in the page's language, in
//! China Standard Time, never Unix seconds.
use chrono::{DateTime, FixedOffset};

/// China Standard Time (UTC+8), the time citizens read on every portal.
fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

/// `2026年12月06日 16:00` (zh-CN) or `06 Dec 2026, 16:00` (en).
pub fn datetime(ts: i64, locale: &str) -> String {
    let Some(d) = DateTime::from_timestamp(ts, 0) else { return String::new() };
    let d = d.with_timezone(&cst());
    if locale == "en" { d.format("%d %b %Y, %H:%M").to_string() } else { d.format("%Y年%m月%d日 %H:%M").to_string() }
}

/// `2026年12月06日` or `06 Dec 2026`.
pub fn date(ts: i64, locale: &str) -> String {
    let Some(d) = DateTime::from_timestamp(ts, 0) else { return String::new() };
    let d = d.with_timezone(&cst());
    if locale == "en" { d.format("%d %b %Y").to_string() } else { d.format("%Y年%m月%d日").to_string() }
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
    }
}
