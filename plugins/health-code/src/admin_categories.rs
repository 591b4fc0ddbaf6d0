//! Code categories and numbering in the console (E5; seed 003 §2.2.4.2–3):
//! the category of each code type — name, number prefix, digits, built-in
//! or customised — with an edit form per type and a reset to the built-in
//! one; the colour rules below. The forms post to the routes the JSON API
//! uses and go through the same rule, [`Category::parse`].
use crate::admin::{Change, Refused, View, bad, input, notice, operation};
use crate::codes::{self, Category, CategoryRefusal};
use crate::{status, util};
use idp_plugin_sdk::{Response, Value, escape_html as esc, json};

/// Sets the category and numbering of a type (codes issued from now on).
pub fn save(v: &View, change: &Change) -> Result<Response, String> {
    let mut body = change.value().clone();
    // A form's fields are text; the JSON a script sends has the digits as
    // a number. Text that is no number stays text and is refused as such.
    if let Change::Form(_) = change
        && let Some(d) = body.get("digits").and_then(Value::as_str).and_then(|d| d.trim().parse::<u64>().ok())
    {
        body["digits"] = json!(d);
    }
    match Category::parse(body) {
        Ok(c) => {
            codes::set_category(&v.p.host, &c)?;
            operation(v, "category_set", &format!("{} {}", c.code_type, c.prefix))?;
            Ok(match change {
                Change::Json(_) => Response::json(201, serde_json::to_value(&c).unwrap_or(Value::Null)),
                Change::Form(_) => done(v, "saved"),
            })
        }
        Err(e) => refused(v, change, e),
    }
}

/// Back to the built-in category and numbering of a type.
pub fn reset(v: &View, change: &Change) -> Result<Response, String> {
    let t = change.value().get("code_type").and_then(Value::as_str).unwrap_or_default();
    if !codes::reset_category(&v.p.host, t)? {
        return match change {
            Change::Json(_) => Ok(Response::not_found()),
            Change::Form(values) => {
                let message = v.t("category_not_customised");
                let back = Refused { form: String::new(), values: values.clone(), field: None, message, status: 404 };
                page(v, Some(&back))
            }
        };
    }
    operation(v, "category_delete", t)?;
    Ok(match change {
        Change::Json(_) => Response::json(200, json!({ "deleted": true })),
        Change::Form(_) => done(v, "reset"),
    })
}

fn done(v: &View, what: &str) -> Response {
    Response::redirect(format!("{}/admin/categories?done={what}", v.req.base))
}

fn refused(v: &View, change: &Change, e: CategoryRefusal) -> Result<Response, String> {
    let Change::Form(values) = change else { return Ok(bad(&e.description())) };
    let message = match e {
        CategoryRefusal::Malformed(_) => v.t("category_bad"),
        CategoryRefusal::CodeType => v.t("category_bad_code_type"),
        CategoryRefusal::Name => v.t("category_bad_name"),
        CategoryRefusal::Prefix => v.t("category_bad_prefix"),
        CategoryRefusal::Digits => v.t("category_bad_digits"),
    };
    let form = values.get("code_type").and_then(Value::as_str).unwrap_or_default().to_string();
    let back = Refused { form, values: values.clone(), field: e.field(), message, status: 400 };
    page(v, Some(&back))
}

/// The categories with their forms, then the colour rules; `refused`: a
/// form sent back.
pub fn page(v: &View, refused: Option<&Refused>) -> Result<Response, String> {
    let done = match v.req.query("done") {
        Some("saved") => Some(v.t("category_done_saved")),
        Some("reset") => Some(v.t("category_done_reset")),
        _ => None,
    };
    let mut html = notice(refused, done);
    html.push_str(&format!("<p class=\"hint\">{}</p>", v.t("admin_categories_hint")));
    let heads = ["code_type", "category_name", "category_prefix", "category_digits", "category_example"];
    let cells: String =
        heads.iter().chain(&["category_state", "style_change"]).map(|k| format!("<th>{}</th>", v.t(k))).collect();
    html.push_str(&format!("<table class=\"list-table categories\"><thead><tr>{cells}</tr></thead><tbody>"));
    for t in codes::TYPES {
        let (c, customised) = codes::category_of(&v.p.host, t)?;
        html.push_str(&row(v, refused, &c, customised));
    }
    html.push_str("</tbody></table>");
    let rules = status::rules(&v.p.host, &v.p.settings.rules)?;
    html.push_str(&format!("<h2>{}</h2><table class=\"rules\">", v.t("admin_rules")));
    for r in rules {
        let days = r.days.map(|d| d.to_string()).unwrap_or_else(|| "∞".into());
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{days}</td></tr>",
            esc(&r.status),
            v.t(&format!("colour_{}", r.colour))
        ));
    }
    html.push_str("</table>");
    Ok(v.page_at(refused.map_or(200, |r| r.status), "admin_categories", html))
}

/// One code type: its category, an edit form and, when customised, a
/// reset to the built-in one.
fn row(v: &View, refused: Option<&Refused>, c: &Category, customised: bool) -> String {
    let t = esc(&c.code_type);
    let base = esc(&v.req.base);
    let hidden = format!("{}<input type=\"hidden\" name=\"code_type\" value=\"{t}\">", v.req.csrf_field());
    let example = format!("{}{}{}", c.prefix, util::date(v.p.host.now()).replace('-', ""), "0".repeat(c.digits));
    let label = |k: &str| esc(v.p.texts.plain(&v.req.locale, k));
    let reset = if customised {
        format!(
            "<form method=\"post\" action=\"{base}/admin/categories/delete\" id=\"category-reset-{t}\">{hidden}<button type=\"submit\" class=\"secondary\">{}</button></form>",
            v.t("category_reset")
        )
    } else {
        String::new()
    };
    format!(
        "<tr data-category=\"{t}\" data-customised=\"{customised}\"><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td class=\"actions\">\
<form method=\"post\" action=\"{base}/admin/categories\" id=\"category-edit-{t}\">{hidden}{}{}{}<button type=\"submit\">{}</button></form>{reset}</td></tr>",
        label("code_type"),
        v.t(&format!("type_{}", c.code_type)),
        label("category_name"),
        esc(&c.name),
        label("category_prefix"),
        esc(&c.prefix),
        label("category_digits"),
        c.digits,
        label("category_example"),
        esc(&example),
        label("category_state"),
        v.t(if customised { "category_customised" } else { "category_builtin" }),
        input(v, refused, &c.code_type, "name", "category_name", &c.name),
        input(v, refused, &c.code_type, "prefix", "category_prefix", &c.prefix),
        input(v, refused, &c.code_type, "digits", "category_digits", &c.digits.to_string()),
        v.t("save"),
    )
}
