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
