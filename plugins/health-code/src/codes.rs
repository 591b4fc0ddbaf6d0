//! Codes (E1–E3): a holder (a person by ID number, or an enterprise by
//! credit code) gets one code record, numbered by its category's rule; the
//! QR carries a signed payload with a short-lived code id that changes
//! every `rotate_seconds` by the provider's clock and on demand. The
//! offline code carries its generation time and validity in the payload.
use crate::paging::{self, Screen};
use crate::util;
use idp_plugin_sdk::{Host, Value, json};
use serde::{Deserialize, Serialize};

pub const TYPES: &[&str] = &["personal", "kin", "enterprise"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub hid: String,
    /// `personal` or `enterprise`.
    pub kind: String,
    /// ID number or credit code.
    pub key: String,
    pub masked_name: String,
    pub number: String,
    pub issued_at: i64,
}

/// Category and numbering rule of a code type (E5): codes get
/// `prefix + issue date + digits` — the digits a digest of the holder id,
/// so numbering needs no shared counter that two nodes could race on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub code_type: String,
    pub name: String,
    pub prefix: String,
    pub digits: usize,
}

/// Why a category was refused. One rule for the JSON API and the
/// console's form; each refusal but a malformed body names its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryRefusal {
    /// Not the shape of a category: a field missing or of the wrong type.
    Malformed(String),
    CodeType,
    Name,
    Prefix,
    Digits,
}

impl CategoryRefusal {
    /// The API's `error_description`, as scripts have always read it.
    pub fn description(&self) -> String {
        match self {
            CategoryRefusal::Malformed(e) => e.clone(),
            _ => "code_type, name (≤40), prefix (1-6 letters/digits) and digits (4-16) are required".into(),
        }
    }

    /// The form field at fault, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CategoryRefusal::Malformed(_) => None,
            CategoryRefusal::CodeType => Some("code_type"),
            CategoryRefusal::Name => Some("name"),
            CategoryRefusal::Prefix => Some("prefix"),
            CategoryRefusal::Digits => Some("digits"),
        }
    }
}

impl Category {
    /// A category as an administrator sent it (E5 numbering rule): a known
    /// code type, a name of at most 40 characters, a prefix of 1–6 letters
    /// or digits and 4–16 digits.
    pub fn parse(body: Value) -> Result<Category, CategoryRefusal> {
        let c: Category = serde_json::from_value(body).map_err(|e| CategoryRefusal::Malformed(e.to_string()))?;
        if !TYPES.contains(&c.code_type.as_str()) {
            return Err(CategoryRefusal::CodeType);
        }
        if c.name.chars().count() > 40 {
            return Err(CategoryRefusal::Name);
        }
        if c.prefix.is_empty() || c.prefix.len() > 6 || !c.prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CategoryRefusal::Prefix);
        }
        if !(4..=16).contains(&c.digits) {
            return Err(CategoryRefusal::Digits);
        }
        Ok(c)
    }
}

pub fn category(host: &Host, kind: &str) -> Result<Category, String> {
    category_of(host, kind).map(|(c, _)| c)
}

/// The category of a code type and whether an administrator set it
/// (`false`: the built-in one).
pub fn category_of(host: &Host, kind: &str) -> Result<(Category, bool), String> {
    if let Some(raw) = host.kv_get(&format!("category/{kind}"))? {
        return Ok((serde_json::from_str(&raw).map_err(|e| e.to_string())?, true));
    }
    let prefix = if kind == "enterprise" { "QY" } else { "GR" };
    Ok((Category { code_type: kind.into(), name: kind.into(), prefix: prefix.into(), digits: 8 }, false))
}

pub fn set_category(host: &Host, c: &Category) -> Result<(), String> {
    host.kv_put(&format!("category/{}", c.code_type), &serde_json::to_string(c).map_err(|e| e.to_string())?, None)
}

/// Back to the built-in category and numbering of a type; whether it had
/// one of its own.
pub fn reset_category(host: &Host, kind: &str) -> Result<bool, String> {
    Ok(TYPES.contains(&kind) && host.kv_delete(&format!("category/{kind}"))?)
}

fn load(host: &Host, hid: &str) -> Result<Option<Holder>, String> {
    match host.kv_get(&format!("holder/{hid}"))? {
        Some(raw) => Ok(serde_json::from_str(&raw).ok()),
        None => Ok(None),
    }
}

/// The holder's code record, issued on first use. The record is written
/// first, then claimed by an insert-if-absent of the index entry, so of two
/// first shows racing (on any node) exactly one issues: the other drops its
/// record and shows the winner's.
pub fn holder(host: &Host, kind: &str, key: &str, masked_name: &str) -> Result<(Holder, bool), String> {
    let index = format!("by/{kind}/{key}");
    if let Some(hid) = host.kv_get(&index)?
        && let Some(h) = load(host, &hid)?
    {
        return Ok((h, false));
    }
    let now = host.now();
    let hid = util::new_id(now);
    let cat = category(host, kind)?;
    let number =
        format!("{}{}{}", cat.prefix, util::date(now).replace('-', ""), util::digits(&hid, cat.digits.clamp(4, 16)));
    let h = Holder {
        hid: hid.clone(),
        kind: kind.into(),
        key: key.into(),
        masked_name: masked_name.into(),
        number,
        issued_at: now,
    };
    let record = format!("holder/{hid}");
    let raw = serde_json::to_string(&h).map_err(|e| e.to_string())?;
    host.kv_put(&record, &raw, None)?;
    if host.kv_put_if(&index, None, &hid, None)? {
        index_issued(host, &h, &raw)?;
        return Ok((h, true));
    }
    host.kv_delete(&record)?;
    let winner = match host.kv_get(&index)? {
        Some(hid) => load(host, &hid)?,
        None => None,
    };
    winner.map(|w| (w, false)).ok_or_else(|| "code record unavailable".into())
}

/// Remembers which account holds a personal code, so apps permitted the
/// code scope can fetch it for that account's token (the token's claims
/// carry no ID number).
pub fn link_account(host: &Host, sub: &str, h: &Holder) -> Result<(), String> {
    let key = format!("account/{sub}");
    if host.kv_get(&key)?.as_deref() != Some(h.hid.as_str()) {
        host.kv_put(&key, &h.hid, None)?;
    }
    Ok(())
}

pub fn of_account(host: &Host, sub: &str) -> Result<Option<Holder>, String> {
    match host.kv_get(&format!("account/{sub}"))? {
        Some(hid) => load(host, &hid),
        None => Ok(None),
    }
}

/// Issued code records by issue time, `issued/<time:012>-<hid>` → the
/// record (written once, by the first show that won), for the admin list.
const ISSUED: &str = "issued/";

fn issued_key(h: &Holder) -> String {
    format!("{ISSUED}{:012}-{}", h.issued_at, h.hid)
}

/// Adds a record to the `issued/` index unless it is there (the first
/// show and the backfill may both get here; the entry is the same).
pub fn index_issued(host: &Host, h: &Holder, raw: &str) -> Result<(), String> {
    host.kv_put_if(&issued_key(h), None, raw, None).map(|_| ())
}

/// Whether `h` is the record its holder's index entry names — the one
/// that won its first show, not a loser's leftover.
pub fn holds_index(host: &Host, h: &Holder) -> Result<bool, String> {
    Ok(host.kv_get(&format!("by/{}/{}", h.kind, h.key))?.as_deref() == Some(h.hid.as_str()))
}

/// One screen of code records newest first, before `cursor`, that `keep`
/// accepts (see [`paging::screen`]).
pub fn screen(
    host: &Host,
    cursor: Option<&str>,
    size: usize,
    budget: usize,
    keep: impl Fn(&Holder) -> bool,
) -> Result<Screen<Holder>, String> {
    let cursor = cursor.filter(|c| c.starts_with(ISSUED)).map(String::from);
    paging::screen(host, ISSUED, cursor, None, size, budget, |_, raw| {
        serde_json::from_str::<Holder>(raw).ok().filter(|h| keep(h))
    })
}

/// The record of an ID number or credit code, by its index entry.
pub fn by_key(host: &Host, kind: &str, key: &str) -> Result<Option<Holder>, String> {
    match host.kv_get(&format!("by/{kind}/{key}"))? {
        Some(hid) => load(host, &hid),
        None => Ok(None),
    }
}

pub fn find_holder(host: &Host, hid: &str) -> Result<Option<Holder>, String> {
    load(host, hid)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeId {
    cid: String,
    since: i64,
}

/// The current code id and when it took effect; a new one once the window
/// passed or when `renew` (on demand). The new id replaces exactly the
/// value read (compare-and-swap), so of two shows at a rotation — or two
/// renewals — one wins and both show the winner's id: no QR already shown
/// is superseded by a renewal that lost.
fn code_id(host: &Host, hid: &str, window: i64, renew: bool) -> Result<CodeId, String> {
    let now = host.now();
    let key = format!("cid/{hid}");
    let seen = host.kv_get(&key)?;
    if !renew
        && let Some(raw) = &seen
        && let Ok(c) = serde_json::from_str::<CodeId>(raw)
        && now < c.since + window
    {
        return Ok(c);
    }
    let c = CodeId { cid: util::new_id(now), since: now };
    let raw = serde_json::to_string(&c).map_err(|e| e.to_string())?;
    if host.kv_put_if(&key, seen.as_deref(), &raw, Some(window + 60))? {
        return Ok(c);
    }
    host.kv_get(&key)?
        .and_then(|raw| serde_json::from_str::<CodeId>(&raw).ok())
        .ok_or_else(|| "code id unavailable".into())
}

/// A signed online payload for the QR; its expiry is the window's end.
pub fn online_payload(
    host: &Host,
    h: &Holder,
    shown_as: &str,
    window: i64,
    renew: bool,
) -> Result<(String, i64), String> {
    let c = code_id(host, &h.hid, window, renew)?;
    let until = c.since + window;
    let claims = json!({ "hc": "online", "hid": h.hid, "cid": c.cid, "t": shown_as });
    Ok((host.sign(&claims, (until - host.now()).max(1))?, until))
}

/// A signed offline payload: generation time and validity inside it.
pub fn offline_payload(host: &Host, h: &Holder, shown_as: &str, days: i64) -> Result<(String, i64, i64), String> {
    let gen_at = host.now();
    let until = gen_at + days * 86_400;
    let claims = json!({ "hc": "offline", "hid": h.hid, "gen": gen_at, "until": until, "t": shown_as });
    Ok((host.sign(&claims, days * 86_400)?, gen_at, until))
}

/// Whether a verified payload is still current: the online code id must be
/// the holder's present one (not rotated, not renewed); an offline code
/// must be within its own validity.
pub fn current(
    host: &Host,
    claims: &serde_json::Map<String, Value>,
    window: i64,
) -> Result<Result<i64, &'static str>, String> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let now = host.now();
    match s("hc") {
        "online" => {
            let Some(raw) = host.kv_get(&format!("cid/{}", s("hid")))? else {
                return Ok(Err("superseded"));
            };
            let c: CodeId = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
            if c.cid != s("cid") {
                return Ok(Err("superseded"));
            }
            if now >= c.since + window {
                return Ok(Err("expired"));
            }
            Ok(Ok(c.since + window))
        }
        "offline" => {
            let until = claims.get("until").and_then(Value::as_i64).unwrap_or(0);
            if now >= until {
                return Ok(Err("expired"));
            }
            Ok(Ok(until))
        }
        _ => Ok(Err("invalid")),
    }
}

/// The payload as an inline SVG QR in `dark` (inline: the CSP forbids
/// `data:` only for scripts, but inline SVG needs no request at all).
pub fn qr_svg(data: &str, dark: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| format!("QR: {e}"))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(260, 260)
        .dark_color(qrcode::render::svg::Color(dark))
        .build();
    let svg = match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    };
    // Scale to the card (its viewBox keeps it square) instead of a fixed
    // size wider than a phone.
    Ok(match (svg.find(" width=\""), svg.find(" viewBox=")) {
        (Some(w), Some(v)) if w < v => format!("{} width=\"100%\"{}", &svg[..w], &svg[v..]),
        _ => svg,
    })
}

/// The QR modules as rows of booleans, for the PNG.
pub fn qr_modules(data: &str) -> Result<(usize, Vec<bool>), String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| format!("QR: {e}"))?;
    let w = code.width();
    Ok((w, code.to_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_category_names_its_field() {
        use super::{Category, CategoryRefusal};
        let parse = |v| Category::parse(v).map_err(|e| e.field());
        let ok = idp_plugin_sdk::json!({ "code_type": "kin", "name": "", "prefix": "QS01", "digits": 16 });
        assert_eq!(parse(ok.clone()).map(|c| c.prefix), Ok("QS01".into()));
        for (field, bad) in [
            ("code_type", idp_plugin_sdk::json!("other")),
            ("name", idp_plugin_sdk::json!("x".repeat(41))),
            ("prefix", idp_plugin_sdk::json!("ABCDEFG")),
            ("prefix", idp_plugin_sdk::json!("A-1")),
            ("digits", idp_plugin_sdk::json!(3)),
        ] {
            let mut v = ok.clone();
            v[field] = bad;
            assert_eq!(parse(v), Err(Some(field)));
        }
        let mut v = ok;
        v["digits"] = idp_plugin_sdk::json!("6");
        assert!(matches!(Category::parse(v), Err(CategoryRefusal::Malformed(_))), "text is not a number");
    }

    #[test]
    fn qr_scales_to_its_container() {
        let svg = super::qr_svg("hello", "#2e7d32").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains(" width=\"100%\" viewBox="), "{svg}");
        assert!(!svg.contains("height=\"") || svg.find("height=\"") > svg.find("viewBox"), "{svg}");
        assert!(svg.contains("#2e7d32"));
    }
}
