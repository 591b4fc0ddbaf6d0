//! Code styles (E5): background, colour and icon per code type, one active
//! style per type. The active style is a single pointer `style_active/<type>`
//! that setting a new style overwrites in one write, so at any moment
//! exactly one style per type is active — two administrators racing both
//! succeed and the later write is the active one; the other is retired like
//! every style before it. (The kv store has no compare-and-swap; a pointer
//! makes "two active" unrepresentable instead.)
use idp_plugin_sdk::{Host, Value, json};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Style {
    pub id: String,
    pub code_type: String,
    pub background: String,
    pub colour: String,
    pub icon: String,
    pub created_at: i64,
}

fn hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The built-in look of a type while no administrator set one.
pub fn default_style(code_type: &str) -> Style {
    Style {
        id: "default".into(),
        code_type: code_type.into(),
        background: if code_type == "enterprise" { "#eef4ff".into() } else { "#ffffff".into() },
        colour: "#1a1a1a".into(),
        icon: String::new(),
        created_at: 0,
    }
}

/// Why a style was refused. One rule for the JSON API and the console's
/// forms; each refusal names its field so a form can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleRefusal {
    CodeType,
    Background,
    Colour,
    Icon,
}

impl StyleRefusal {
    /// The API's `error_description`, as scripts have always read it.
    pub fn description(self) -> String {
        match self {
            StyleRefusal::CodeType => format!("code_type must be one of {:?}", crate::codes::TYPES),
            _ => "background and colour are #rrggbb; icon at most 8 characters".into(),
        }
    }

    /// The form field at fault.
    pub fn field(self) -> &'static str {
        match self {
            StyleRefusal::CodeType => "code_type",
            StyleRefusal::Background => "background",
            StyleRefusal::Colour => "colour",
            StyleRefusal::Icon => "icon",
        }
    }
}

fn checked(body: &Value) -> Result<(String, String, String, String), StyleRefusal> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().trim().to_string();
    let code_type = s("code_type");
    if !crate::codes::TYPES.contains(&code_type.as_str()) {
        return Err(StyleRefusal::CodeType);
    }
    if !hex_colour(&s("background")) {
        return Err(StyleRefusal::Background);
    }
    if !hex_colour(&s("colour")) {
        return Err(StyleRefusal::Colour);
    }
    if s("icon").chars().count() > 8 {
        return Err(StyleRefusal::Icon);
    }
    Ok((code_type, s("background"), s("colour"), s("icon")))
}

/// Edits a style in place (`id`, `code_type` and the new look); whether it
/// is active does not change. `Ok(None)`: no such style.
pub fn edit(host: &Host, body: &Value) -> Result<Result<Option<(Style, bool)>, StyleRefusal>, String> {
    let (code_type, background, colour, icon) = match checked(body) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
    let key = format!("style/{code_type}/{id}");
    let Some(raw) = host.kv_get(&key)? else { return Ok(Ok(None)) };
    let mut style: Style = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
    (style.background, style.colour, style.icon) = (background, colour, icon);
    let new_raw = serde_json::to_string(&style).map_err(|e| e.to_string())?;
    // Only over the row read: a concurrent delete is not undone.
    if !host.kv_put_if(&key, Some(&raw), &new_raw, None)? {
        return Ok(Ok(None));
    }
    let active = host.kv_get(&format!("style_active/{code_type}"))?.as_deref() == Some(id);
    Ok(Ok(Some((style, active))))
}

/// Deletes a style; if it was the active one its type falls back to the
/// built-in look. Returns whether it existed.
pub fn delete(host: &Host, code_type: &str, id: &str) -> Result<bool, String> {
    if !crate::codes::TYPES.contains(&code_type) || id.is_empty() || id.contains('/') {
        return Ok(false);
    }
    let existed = host.kv_delete(&format!("style/{code_type}/{id}"))?;
    let pointer = format!("style_active/{code_type}");
    if existed && host.kv_get(&pointer)?.as_deref() == Some(id) {
        // Unset only if still this style (a newer one set meanwhile stays).
        host.kv_put_if(&pointer, Some(id), "", None)?;
    }
    Ok(existed)
}

/// Creates a style and makes it the active one of its type.
pub fn set(host: &Host, body: &Value) -> Result<Result<Style, StyleRefusal>, String> {
    let (code_type, background, colour, icon) = match checked(body) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let now = host.now();
    let style =
        Style { id: crate::util::new_id(now), code_type: code_type.clone(), background, colour, icon, created_at: now };
    let raw = serde_json::to_string(&style).map_err(|e| e.to_string())?;
    host.kv_put(&format!("style/{code_type}/{}", style.id), &raw, None)?;
    host.kv_put(&format!("style_active/{code_type}"), &style.id, None)?;
    Ok(Ok(style))
}

pub fn active(host: &Host, code_type: &str) -> Result<Style, String> {
    let Some(id) = host.kv_get(&format!("style_active/{code_type}"))? else {
        return Ok(default_style(code_type));
    };
    match host.kv_get(&format!("style/{code_type}/{id}"))? {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| e.to_string()),
        None => Ok(default_style(code_type)),
    }
}

/// Every style with whether it is the active one of its type.
pub fn list(host: &Host) -> Result<Vec<(Style, bool)>, String> {
    let mut out = Vec::new();
    for t in crate::codes::TYPES {
        let active = host.kv_get(&format!("style_active/{t}"))?;
        for (_, raw) in host.kv_list(&format!("style/{t}/"))? {
            if let Ok(s) = serde_json::from_str::<Style>(&raw) {
                let on = active.as_deref() == Some(s.id.as_str());
                out.push((s, on));
            }
        }
    }
    out.sort_by_key(|(s, _)| s.created_at);
    Ok(out)
}

pub fn to_json(s: &Style, active: bool) -> Value {
    json!({ "id": s.id, "code_type": s.code_type, "background": s.background, "colour": s.colour,
        "icon": s.icon, "created_at": s.created_at, "active": active })
}
