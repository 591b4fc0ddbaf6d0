//! The residential community on the citizen's code profile (E6):
//! a community picked by fuzzy search from the configured list, building,
//! unit and room, and an optional vehicle plate.
use idp_plugin_sdk::{Host, Request};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub community: String,
    pub building: String,
    pub unit: String,
    pub room: String,
    #[serde(default)]
    pub plate: String,
}

/// The community list: the administrator's (`communities` row, set through
/// `/admin/communities`) once there is one, else the configured list.
pub fn all(host: &Host, configured: &[String]) -> Result<Vec<String>, String> {
    match host.kv_get("communities")? {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| format!("communities row: {e}")),
        None => Ok(configured.to_vec()),
    }
}

/// Adds and removes communities in one compare-and-swap on the list row
/// (retried), so two administrators editing at once lose nothing.
/// `Err(Ok(msg))` is bad input.
pub fn edit(
    host: &Host,
    configured: &[String],
    add: &[String],
    remove: &[String],
) -> Result<Result<Vec<String>, String>, String> {
    if let Some(bad) = add.iter().find(|c| short(c, 60).is_none_or(|s| s.is_empty())) {
        return Ok(Err(format!("a community name is 1-60 characters: {bad:?}")));
    }
    for _ in 0..8 {
        let seen = host.kv_get("communities")?;
        let mut list: Vec<String> = match &seen {
            Some(raw) => serde_json::from_str(raw).map_err(|e| format!("communities row: {e}"))?,
            None => configured.to_vec(),
        };
        list.retain(|c| !remove.contains(c));
        for c in add {
            let c = c.trim().to_string();
            if !list.contains(&c) {
                list.push(c);
            }
        }
        let raw = serde_json::to_string(&list).map_err(|e| e.to_string())?;
        if host.kv_put_if("communities", seen.as_deref(), &raw, None)? {
            return Ok(Ok(list));
        }
    }
    Err("the community list kept changing; try again".into())
}

pub fn search<'a>(all: &'a [String], q: &str) -> Vec<&'a String> {
    if q.trim().is_empty() {
        return Vec::new();
    }
    all.iter().filter(|c| crate::util::fuzzy(c, q)).take(20).collect()
}

pub fn load(host: &Host, sub: &str) -> Result<Option<Profile>, String> {
    Ok(host.kv_get(&format!("profile/{sub}"))?.and_then(|raw| serde_json::from_str(&raw).ok()))
}

fn short(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    (s.chars().count() <= max && !s.chars().any(char::is_control)).then(|| s.to_string())
}

/// Parses the form; `Err` is the locale key of what is wrong.
pub fn parse(all: &[String], req: &Request) -> Result<Profile, &'static str> {
    let f = |k: &str| req.form(k).unwrap_or_default();
    let community = f("community").trim().to_string();
    if !all.contains(&community) {
        return Err("profile_pick_community");
    }
    let field = |k: &str, max| short(f(k), max).filter(|s| !s.is_empty()).ok_or("profile_address_required");
    let plate = short(f("plate"), 10).ok_or("profile_plate_bad")?;
    Ok(Profile {
        community,
        building: field("building", 10)?,
        unit: field("unit", 10)?,
        room: field("room", 10)?,
        plate,
    })
}

pub fn save(host: &Host, sub: &str, p: &Profile) -> Result<(), String> {
    host.kv_put(&format!("profile/{sub}"), &serde_json::to_string(p).map_err(|e| e.to_string())?, None)
}
