//! Code styles in the console (E5; seed 003 §2.2.3: add, view, edit and
//! delete background, colour and icon, one active style per code type).
//! The list has an edit and a delete form per style and an add form above
//! it. The forms post to the routes the JSON API uses and go through the
//! same rule in [`styles`]: a script gets its JSON answer, a form a
//! redirect back to the list or the list again with what to fix.
use crate::admin::{Change, Refused, View, bad, input, notice, operation};
use crate::codes;
use crate::styles::{self, StyleRefusal};
use idp_plugin_sdk::{Response, Value, escape_html as esc, json};

/// Creates a style, which becomes the active one of its type.
pub fn add(v: &View, change: &Change) -> Result<Response, String> {
    match styles::set(&v.p.host, change.value())? {
        Ok(s) => {
            operation(v, "style_set", &format!("{} {}", s.code_type, s.id))?;
            Ok(match change {
                Change::Json(_) => Response::json(201, styles::to_json(&s, true)),
                Change::Form(_) => done(v, "added"),
            })
        }
        Err(e) => refused(v, change, "add", e),
    }
}

/// Changes the look of a style; whether it is active stays.
pub fn edit(v: &View, change: &Change) -> Result<Response, String> {
    match styles::edit(&v.p.host, change.value())? {
        Ok(Some((s, active))) => {
            operation(v, "style_edit", &format!("{} {}", s.code_type, s.id))?;
            Ok(match change {
                Change::Json(_) => Response::json(200, styles::to_json(&s, active)),
                Change::Form(_) => done(v, "edited"),
            })
        }
        Ok(None) => gone(v, change),
        Err(e) => refused(v, change, field(change, "id"), e),
    }
}

/// Deletes a style; the active one's type falls back to the built-in look.
pub fn delete(v: &View, change: &Change) -> Result<Response, String> {
    let (code_type, id) = (field(change, "code_type"), field(change, "id"));
    if !styles::delete(&v.p.host, code_type, id)? {
        return gone(v, change);
    }
    operation(v, "style_delete", &format!("{code_type} {id}"))?;
    Ok(match change {
        Change::Json(_) => Response::json(200, json!({ "deleted": true })),
        Change::Form(_) => done(v, "deleted"),
    })
}

fn field<'a>(change: &'a Change, name: &str) -> &'a str {
    change.value().get(name).and_then(Value::as_str).unwrap_or_default()
}

fn done(v: &View, what: &str) -> Response {
    Response::redirect(format!("{}/admin/styles?done={what}", v.req.base))
}

/// No such style (deleted meanwhile, or never there).
fn gone(v: &View, change: &Change) -> Result<Response, String> {
    match change {
        Change::Json(_) => Ok(Response::not_found()),
        Change::Form(values) => {
            let message = v.t("style_gone");
            page(v, Some(&Refused { form: String::new(), values: values.clone(), field: None, message, status: 404 }))
        }
    }
}

fn refused(v: &View, change: &Change, form: &str, e: StyleRefusal) -> Result<Response, String> {
    let Change::Form(values) = change else { return Ok(bad(&e.description())) };
    let message = match e {
        StyleRefusal::CodeType => v.t("style_bad_code_type"),
        StyleRefusal::Background => v.t("style_bad_background"),
        StyleRefusal::Colour => v.t("style_bad_colour"),
        StyleRefusal::Icon => v.t("style_bad_icon"),
    };
    let back = Refused { form: form.into(), values: values.clone(), field: Some(e.field()), message, status: 400 };
    page(v, Some(&back))
}

fn swatch(colour: &str, outline: bool) -> String {
    let stroke = if outline { " stroke=\"#999\"" } else { "" };
    format!(
        "<svg width=\"40\" height=\"16\" aria-hidden=\"true\"><rect width=\"40\" height=\"16\" fill=\"{c}\"{stroke}/></svg> {c}",
        c = esc(colour)
    )
}

/// The list of styles with their forms; `refused`: a form sent back.
pub fn page(v: &View, refused: Option<&Refused>) -> Result<Response, String> {
    let done = match v.req.query("done") {
        Some("added") => Some(v.t("style_done_added")),
        Some("edited") => Some(v.t("style_done_edited")),
        Some("deleted") => Some(v.t("style_done_deleted")),
        _ => None,
    };
    let mut html = notice(refused, done);
    html.push_str(&format!("<p class=\"hint\">{}</p>", v.t("admin_styles_hint")));
    html.push_str(&add_form(v, refused));
    html.push_str(&format!("<h2>{}</h2>", v.t("style_list")));
    let list = styles::list(&v.p.host)?;
    if list.is_empty() {
        html.push_str(&format!("<p class=\"empty\" id=\"styles-empty\">{}</p>", v.t("style_none")));
    } else {
        let heads = ["code_type", "style_background", "style_colour", "style_icon", "style_state", "style_change"];
        let cells: String = heads.iter().map(|k| format!("<th>{}</th>", v.t(k))).collect();
        html.push_str(&format!("<table class=\"list-table styles\"><thead><tr>{cells}</tr></thead><tbody>"));
        for (s, active) in &list {
            html.push_str(&row(v, refused, s, *active));
        }
        html.push_str("</tbody></table>");
    }
    Ok(v.page_at(refused.map_or(200, |r| r.status), "admin_styles", html))
}

fn add_form(v: &View, refused: Option<&Refused>) -> String {
    let typed = refused.filter(|r| r.form == "add").and_then(|r| r.values.get("code_type")).and_then(Value::as_str);
    let options: String = codes::TYPES
        .iter()
        .map(|t| {
            let sel = if typed == Some(*t) { " selected" } else { "" };
            format!("<option value=\"{t}\"{sel}>{}</option>", v.t(&format!("type_{t}")))
        })
        .collect();
    format!(
        "<h2>{}</h2><form method=\"post\" action=\"{}/admin/styles\" class=\"form\" id=\"style-add\">{}<label>{} <select name=\"code_type\">{options}</select></label>{}{}{}<p class=\"hint\">{}</p><button type=\"submit\">{}</button></form>",
        v.t("style_add_title"),
        esc(&v.req.base),
        v.req.csrf_field(),
        v.t("code_type"),
        input(v, refused, "add", "background", "style_background", ""),
        input(v, refused, "add", "colour", "style_colour", ""),
        input(v, refused, "add", "icon", "style_icon", ""),
        v.t("style_format_hint"),
        v.t("style_add"),
    )
}

/// One style: its look and state, an edit form and a delete button.
fn row(v: &View, refused: Option<&Refused>, s: &styles::Style, active: bool) -> String {
    let id = esc(&s.id);
    let hidden = format!(
        "{}<input type=\"hidden\" name=\"id\" value=\"{id}\"><input type=\"hidden\" name=\"code_type\" value=\"{}\">",
        v.req.csrf_field(),
        esc(&s.code_type)
    );
    let label = |k: &str| esc(v.p.texts.plain(&v.req.locale, k));
    format!(
        "<tr data-style=\"{id}\" data-active=\"{active}\"><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td class=\"actions\">\
<form method=\"post\" action=\"{base}/admin/styles/edit\" id=\"style-edit-{id}\">{hidden}{}{}{}<button type=\"submit\">{}</button></form>\
<form method=\"post\" action=\"{base}/admin/styles/delete\" id=\"style-delete-{id}\">{hidden}<button type=\"submit\" class=\"danger\">{}</button></form></td></tr>",
        label("code_type"),
        v.t(&format!("type_{}", s.code_type)),
        label("style_background"),
        swatch(&s.background, true),
        label("style_colour"),
        swatch(&s.colour, false),
        label("style_icon"),
        esc(&s.icon),
        label("style_state"),
        v.t(if active { "style_active" } else { "style_retired" }),
        input(v, refused, &s.id, "background", "style_background", &s.background),
        input(v, refused, &s.id, "colour", "style_colour", &s.colour),
        input(v, refused, &s.id, "icon", "style_icon", &s.icon),
        v.t("save"),
        v.t("style_delete"),
        base = esc(&v.req.base),
    )
}
