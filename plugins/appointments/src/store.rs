//! Services, time slots and bookings in the host's key-value store.
//!
//! Keys:
//! - `svc/<service>` — a service (admin-defined);
//! - `slot/<service>/<slot>` — a time slot; the slot id is its start time,
//!   fixed width, so a service's slots list in time order;
//! - `taken/<service>/<slot>` — the number of live bookings, an atomic
//!   counter (`kv_incr`): a booking takes a place by incrementing and gives
//!   it back if the new value passes the capacity, so of two bookings
//!   racing for the last place exactly one gets a value within it;
//! - `held/<service>/<slot>/<person>` — one booking per person and slot
//!   (`kv_put_if` absent);
//! - `bk/<code>` — the booking; `mine/<sub>/<code>` — the user's index.
//!
//! State changes of a booking (cancel, check-in) are compare-and-swap on
//! its row, so a cancel and a scan racing cannot both win.
use idp_plugin_sdk::{Host, Localized};
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: Localized,
    #[serde(default)]
    pub place: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Slot {
    pub service: String,
    pub id: String,
    pub start: i64,
    pub end: i64,
    pub capacity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Booking {
    pub code: String,
    pub sub: String,
    pub service: String,
    pub slot: String,
    pub start: i64,
    pub end: i64,
    /// Masked name of the person the booking is for.
    pub holder: String,
    /// The kin relation when booked for a relative.
    #[serde(default)]
    pub relation_id: Option<String>,
    /// `booked`, `cancelled` or `checked_in`.
    pub status: String,
    pub created_at: i64,
    #[serde(default)]
    pub changed_at: Option<i64>,
    /// The scanning app's client id at check-in.
    #[serde(default)]
    pub checked_in_by: Option<String>,
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn get<T: for<'de> Deserialize<'de>>(host: &Host, key: &str) -> Result<Option<T>, String> {
    match host.kv_get(key)? {
        Some(raw) => serde_json::from_str(&raw).map(Some).map_err(|e| format!("{key} is corrupt: {e}")),
        None => Ok(None),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

pub fn put_service(host: &Host, s: &Service) -> Result<(), String> {
    host.kv_put(&format!("svc/{}", s.id), &to_json(s)?, None)
}

pub fn service(host: &Host, id: &str) -> Result<Option<Service>, String> {
    if !valid_id(id) {
        return Ok(None);
    }
    get(host, &format!("svc/{id}"))
}

/// Every service (a small set an administrator maintains).
pub fn services(host: &Host) -> Result<Vec<Service>, String> {
    Ok(host.kv_list("svc/")?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
}

pub fn slot_id(start: i64) -> String {
    format!("{start:011}")
}

pub fn put_slot(host: &Host, s: &Slot) -> Result<(), String> {
    host.kv_put(&format!("slot/{}/{}", s.service, s.id), &to_json(s)?, None)
}

pub fn slot(host: &Host, service: &str, id: &str) -> Result<Option<Slot>, String> {
    if !valid_id(service) || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    get(host, &format!("slot/{service}/{id}"))
}

/// A service's slots in time order.
pub fn slots(host: &Host, service: &str) -> Result<Vec<Slot>, String> {
    Ok(host
        .kv_list(&format!("slot/{service}/"))?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v).ok())
        .collect())
}

/// Places taken in a slot.
pub fn taken(host: &Host, s: &Slot) -> Result<i64, String> {
    Ok(host.kv_get(&format!("taken/{}/{}", s.service, s.id))?.and_then(|v| v.parse().ok()).unwrap_or(0).max(0))
}

/// Why a booking was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Full,
    AlreadyBooked,
}

/// A fresh booking code: a sequence number (distinct on every node) and
/// a process-random part, so codes are unique and not guessable in order.
fn new_code(host: &Host) -> Result<String, String> {
    let seq = host.kv_incr("seq", 1, None)?;
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(seq);
    h.write_i64(host.now());
    Ok(format!("{seq:06}{:06X}", h.finish() & 0xFF_FFFF))
}

/// Takes one place in `slot` for `person` (the user or a relation id):
/// at most one booking per person and slot, never more than the capacity.
pub fn book(host: &Host, slot: &Slot, mut booking: Booking, person: &str) -> Result<Result<Booking, Refused>, String> {
    let held = format!("held/{}/{}/{person}", slot.service, slot.id);
    let code = new_code(host)?;
    if !host.kv_put_if(&held, None, &code, None)? {
        return Ok(Err(Refused::AlreadyBooked));
    }
    let counter = format!("taken/{}/{}", slot.service, slot.id);
    if host.kv_incr(&counter, 1, None)? > slot.capacity {
        host.kv_incr(&counter, -1, None)?;
        host.kv_delete(&held)?;
        return Ok(Err(Refused::Full));
    }
    booking.code = code.clone();
    host.kv_put(&format!("bk/{code}"), &to_json(&booking)?, None)?;
    host.kv_put(&format!("mine/{}/{code}", booking.sub), "", None)?;
    Ok(Ok(booking))
}

pub fn booking(host: &Host, code: &str) -> Result<Option<Booking>, String> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    get(host, &format!("bk/{code}"))
}

/// The user's bookings, newest first.
pub fn bookings_of(host: &Host, sub: &str) -> Result<Vec<Booking>, String> {
    let mut out = Vec::new();
    for (key, _) in host.kv_list(&format!("mine/{sub}/"))? {
        if let Some(code) = key.rsplit('/').next()
            && let Some(b) = booking(host, code)?
        {
            out.push(b);
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    Ok(out)
}

/// Moves a booking from `booked` to `to` if it is still booked (one
/// compare-and-swap on its row). Returns the updated booking, or None
/// when it was no longer booked.
pub fn transition(host: &Host, code: &str, to: &str, by: Option<&str>) -> Result<Option<Booking>, String> {
    let key = format!("bk/{code}");
    let Some(raw) = host.kv_get(&key)? else { return Ok(None) };
    let mut b: Booking = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
    if b.status != "booked" {
        return Ok(None);
    }
    b.status = to.into();
    b.changed_at = Some(host.now());
    b.checked_in_by = by.map(String::from);
    if !host.kv_put_if(&key, Some(&raw), &to_json(&b)?, None)? {
        return Ok(None);
    }
    if to == "cancelled" {
        // Give the place back and free the person's hold on the slot.
        host.kv_incr(&format!("taken/{}/{}", b.service, b.slot), -1, None)?;
        let person = b.relation_id.clone().unwrap_or_else(|| b.sub.clone());
        host.kv_delete(&format!("held/{}/{}/{person}", b.service, b.slot))?;
    }
    Ok(Some(b))
}

/// `YYYY-MM-DD HH:MM` at `offset` minutes east of UTC.
pub fn format_time(unix: i64, offset_minutes: i64) -> String {
    let t = unix + offset_minutes * 60;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats_beijing_time() {
        assert_eq!(format_time(0, 480), "1970-01-01 08:00");
        assert_eq!(format_time(1_700_000_000, 480), "2023-11-15 06:13");
        assert_eq!(format_time(951_782_400, 0), "2000-02-29 00:00");
    }
    #[test]
    fn ids_and_names() {
        assert!(valid_id("passport-1") && !valid_id("A") && !valid_id("a/b") && !valid_id(""));
        assert_eq!(mask_name("张三丰"), "张**");
    }
}
