//! Small pure helpers: calendar arithmetic (the plugin has no date crate),
//! distinct ids and masking of identities.
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Health codes are a Chinese service: dates and times shown and the daily
/// statistics use China Standard Time (UTC+8, no daylight saving).
pub const CST_OFFSET: i64 = 8 * 3600;

/// (year, month, day) of a count of days since 1970-01-01 (H. Hinnant's
/// civil-from-days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Start (Unix time) of the CST day `YYYY-MM-DD`; None unless it is a
/// real date (so `2026-02-30` is refused, not rolled over).
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let start = days_from_civil(y, m, d) * 86_400 - CST_OFFSET;
    (date(start) == format!("{y:04}-{m:02}-{d:02}")).then_some(start)
}

/// `YYYY-MM-DD` of a Unix time, in China Standard Time.
pub fn date(ts: i64) -> String {
    let (y, m, d) = civil((ts + CST_OFFSET).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time, in China Standard Time.
pub fn datetime(ts: i64) -> String {
    let secs = (ts + CST_OFFSET).rem_euclid(86_400);
    format!("{} {:02}:{:02}:{:02}", date(ts), secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Start (Unix time) of the CST day containing `ts`.
pub fn day_start(ts: i64) -> i64 {
    (ts + CST_OFFSET).div_euclid(86_400) * 86_400 - CST_OFFSET
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A kv key suffix sorting in the order a database counter handed out
/// `seq` (`kv_incr`), so records keep their order across nodes even within
/// one second; `s` sorts after the digits of keys from before counters.
pub fn seq_key(seq: i64) -> String {
    format!("s{seq:012}")
}

/// A distinct id, not a secret (codes are trusted for their signature, not
/// for their ids): process-random hasher keys, the time and a counter.
pub fn new_id(now: i64) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now);
    h.write_u64(n);
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(h.finish());
    format!("{:016x}{:016x}", h.finish(), h2.finish())
}

/// A stable decimal digest of `s` (FNV-1a), for code numbers.
pub fn digits(s: &str, n: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let full = format!("{h:020}");
    full[full.len().saturating_sub(n)..].to_string()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for a
/// value inside a query string.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Decodes unpadded base64url (RFC 4648 §5), as JWS segments are written.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// 张三 → 张*, as the manuals show names on codes.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// 110105194912310021 → 110***********0021 (first 3, last 4).
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars.iter().enumerate().map(|(i, c)| if i < 3 || i >= n - 4 { *c } else { '*' }).collect()
}

/// Whether every character of `needle` occurs in `hay` in order — the
/// fuzzy match of the community search (E6): "阳光园" finds "阳光花园".
pub fn fuzzy(hay: &str, needle: &str) -> bool {
    let mut it = hay.chars().flat_map(char::to_lowercase);
    needle.chars().flat_map(char::to_lowercase).filter(|c| !c.is_whitespace()).all(|n| it.any(|h| h == n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_and_masks() {
        // 2026-12-01 00:00 CST is 2026-11-30 16:00 UTC.
        assert_eq!(datetime(1_796_054_400), "2026-12-01 00:00:00");
        assert_eq!(datetime(1_796_054_400 - 1), "2026-11-30 23:59:59");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(datetime(86_400 - CST_OFFSET), "1970-01-02 00:00:00");
        assert_eq!(day_start(86_400 - CST_OFFSET + 5), 86_400 - CST_OFFSET);
        assert_eq!(parse_date("2026-12-01"), Some(1_796_054_400));
        assert_eq!(parse_date("2024-02-29").map(date).as_deref(), Some("2024-02-29"));
        assert_eq!((parse_date("2026-02-29"), parse_date("2026-13-01"), parse_date("2026-1-01")), (None, None, None));
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_key("11010519491231002X"), "110***********002X");
        assert!(fuzzy("阳光花园", "阳光园") && !fuzzy("阳光花园", "园光"));
        assert_eq!(digits("x", 6).len(), 6);
        assert_eq!(b64url_decode("eyJpc3MiOiJ4In0").as_deref(), Some(&b"{\"iss\":\"x\"}"[..]));
        assert_eq!(b64url_decode("a+b"), None);
        assert_eq!(url_encode("/plugins/health-code/?for=a b"), "%2Fplugins%2Fhealth-code%2F%3Ffor%3Da%20b");
    }
}
