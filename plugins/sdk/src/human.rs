//! Human text for plugin pages (issue 19): times in the reader's language
//! and in China Standard Time, never Unix seconds. No date crate: the
//! calendar arithmetic is H. Hinnant's civil-from-days.

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

fn ymd(y: i64, m: u32, d: u32, locale: &str) -> String {
    if locale == "en" {
        format!("{d:02} {} {y:04}", MONTHS[(m.clamp(1, 12) - 1) as usize])
    } else {
        format!("{y:04}年{m:02}月{d:02}日")
    }
}

/// `2026年12月01日` (zh-CN) or `01 Dec 2026` (en) of a Unix time.
pub fn date(ts: i64, locale: &str) -> String {
    let (y, m, d) = civil((ts + CST_OFFSET).div_euclid(86_400));
    ymd(y, m, d, locale)
}

/// `2026年12月01日 10:00` or `01 Dec 2026, 10:00` of a Unix time.
pub fn datetime(ts: i64, locale: &str) -> String {
    let secs = (ts + CST_OFFSET).rem_euclid(86_400);
    let hm = format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60);
    if locale == "en" { format!("{}, {hm}", date(ts, locale)) } else { format!("{} {hm}", date(ts, locale)) }
}

/// A `YYYY-MM-DD` text (as certificates carry their validity) in the
/// reader's language; anything else comes back unchanged.
pub fn iso_date(s: &str, locale: &str) -> String {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = (s[..4].parse::<i64>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>());
        if let (Ok(y), Ok(m @ 1..=12), Ok(d @ 1..=31)) = (y, m, d) {
            return ymd(y, m, d, locale);
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
}
