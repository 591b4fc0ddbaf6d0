//! Human text for plugin pages (issue 19): times in the reader's language
//! and in China Standard Time, never Unix seconds. No date crate: the
//! calendar arithmetic is H. Hinnant's civil-from-days.
//!
//! The form of a date is a text of the SDK's locale files (`format_date`,
//! `format_datetime`, `format_clock`: strftime patterns with `%Y`, `%m`,
//! `%-m`, `%d`, `%-d`, `%b`, `%H`, `%M`, `%S`, `%%`), the same patterns the
//! provider's theme uses, so Tibetan reads `ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6`. In a
//! bilingual locale a date is a [`crate::bilingual::pair`]: for pages only.
use crate::bilingual::{companion, pair, sdk_text};

/// China Standard Time (UTC+8, no daylight saving), as portals show it.
pub const CST_OFFSET: i64 = 8 * 3600;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// (year, month, day) of a count of days since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A calendar time in China Standard Time.
#[derive(Clone, Copy)]
struct Civil {
    y: i64,
    m: u32,
    d: u32,
    secs: i64,
}

fn civil_of(ts: i64) -> Civil {
    let (y, m, d) = civil((ts + CST_OFFSET).div_euclid(86_400));
    Civil { y, m, d, secs: (ts + CST_OFFSET).rem_euclid(86_400) }
}

/// `pattern` filled in (the strftime subset above; anything else is kept).
fn fill(pattern: &str, c: Civil) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        let mut spec = chars.next();
        let unpadded = spec == Some('-');
        if unpadded {
            spec = chars.next();
        }
        let two = |n: i64| if unpadded { n.to_string() } else { format!("{n:02}") };
        match spec {
            Some('Y') => out.push_str(&format!("{:04}", c.y)),
            Some('m') => out.push_str(&two(c.m.into())),
            Some('d') => out.push_str(&two(c.d.into())),
            Some('b') => out.push_str(MONTHS[(c.m.clamp(1, 12) - 1) as usize]),
            Some('H') => out.push_str(&two(c.secs / 3600)),
            Some('M') => out.push_str(&two(c.secs % 3600 / 60)),
            Some('S') => out.push_str(&two(c.secs % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The locale's pattern `key` filled in; a pair with the companion's in a
/// bilingual locale.
fn localized(c: Civil, locale: &str, key: &str) -> String {
    let own = fill(sdk_text(locale, key), c);
    match companion(locale) {
        Some(other) => pair(&own, &fill(sdk_text(other, key), c)),
        None => own,
    }
}

/// The strftime pattern of a locale for `key` (`format_clock`, …), for a
/// script that formats times in the browser.
pub fn pattern(locale: &str, key: &str) -> &'static str {
    sdk_text(locale, key)
}

/// `2026年12月01日` (zh-CN), `01 Dec 2026` (en), `ཕྱི་ལོ་2026 ཟླ་12 ཚེས་1`
/// with the Chinese beside it (bo) of a Unix time.
pub fn date(ts: i64, locale: &str) -> String {
    localized(civil_of(ts), locale, "format_date")
}

/// `2026年12月01日 10:00`, `01 Dec 2026, 10:00` or the Tibetan form.
pub fn datetime(ts: i64, locale: &str) -> String {
    localized(civil_of(ts), locale, "format_datetime")
}

/// Like [`datetime`] but in the locale's own language only (never a pair):
/// for JSON, CSV and images.
pub fn datetime_plain(ts: i64, locale: &str) -> String {
    fill(sdk_text(locale, "format_datetime"), civil_of(ts))
}

/// A `YYYY-MM-DD` text (as certificates carry their validity) in the
/// reader's language; anything else comes back unchanged.
pub fn iso_date(s: &str, locale: &str) -> String {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = (s[..4].parse::<i64>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>());
        if let (Ok(y), Ok(m @ 1..=12), Ok(d @ 1..=31)) = (y, m, d) {
            return localized(Civil { y, m, d, secs: 0 }, locale, "format_date");
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates() {
        // 2026-12-06 08:00 UTC is 16:00 in Beijing.
        let ts = 1_796_544_000;
        assert_eq!(datetime(ts, "zh-CN"), "2026年12月06日 16:00");
        assert_eq!(datetime(ts, "en"), "06 Dec 2026, 16:00");
        assert_eq!(date(ts, "en"), "06 Dec 2026");
        assert_eq!(iso_date("2040-01-01", "zh-CN"), "2040年01月01日");
        assert_eq!(iso_date("2040-01-01", "en"), "01 Jan 2040");
        assert_eq!(iso_date("长期", "zh-CN"), "长期");
    }

    #[test]
    fn tibetan_dates_pair_tibetan_with_chinese() {
        let ts = 1_796_544_000;
        assert_eq!(date(ts, "bo"), pair("ཕྱི་ལོ་2026 ཟླ་12 ཚེས་6", "2026年12月06日"));
        assert_eq!(iso_date("2040-01-01", "bo"), pair("ཕྱི་ལོ་2040 ཟླ་1 ཚེས་1", "2040年01月01日"));
        assert_eq!(fill("%H:%M:%S %% %q", civil_of(ts + 5)), "16:00:05 % %q");
    }
}
