//! The admin log pages (E5), one screen at a time, newest
//! first: an "older" link carries the cursor, so an operator can
//! walk a log of any length. The date filter is a key range; kind, app and
//! place are checked while reading, at most `log_scan_rows` rows a screen,
//! and the page says when it stopped there.
use crate::admin::{View, bad};
use crate::events::{self, Filter};
use crate::paging::Screen;
use crate::util;
use idp_plugin_sdk::{Response, Value, escape_html as esc, json};

/// The filter and the screen it selects; Err(filter) for a bad date.
fn read(v: &View) -> Result<Result<(Filter, Screen<events::Event>), Filter>, String> {
    let f = match Filter::from_query(&v.req.query) {
        Ok(f) => f,
        Err(f) => return Ok(Err(f)),
    };
    let s = &v.p.settings;
    let screen = f.screen(&v.p.host, v.req.query("before"), s.log_page_size, s.log_scan_rows)?;
    Ok(Ok((f, screen)))
}

/// `{"events":[…newest first],"next":cursor|null,"examined":n,"limited":bool}`.
pub fn json(v: &View) -> Result<Response, String> {
    let (_, screen) = match read(v)? {
        Ok(found) => found,
        Err(_) => return Ok(bad("date must be a real date as YYYY-MM-DD")),
    };
    let list: Vec<Value> = screen.items.iter().map(events::to_json).collect();
    Ok(Response::json(
        200,
        json!({ "events": list, "next": screen.next, "examined": screen.examined, "limited": screen.limited }),
    ))
}

pub fn page(v: &View) -> Result<Response, String> {
    let found = read(v)?;
    let f = match &found {
        Ok((f, _)) | Err(f) => f,
    };
    let q = |k: &str| esc(v.req.query(k).unwrap_or_default());
    let kinds = ["", "show", "scan", "issue", "operation"];
    let opts: String = kinds
        .iter()
        .map(|k| {
            let sel = if f.kind.as_deref().unwrap_or("") == *k { " selected" } else { "" };
            let label = if k.is_empty() { v.t("all") } else { v.t(&format!("event_{k}")) };
            format!("<option value=\"{k}\"{sel}>{label}</option>")
        })
        .collect();
    let mut html = format!(
        "<form method=\"get\" class=\"form inline\"><select name=\"kind\">{opts}</select><input name=\"app\" value=\"{}\" placeholder=\"{}\"><input name=\"place\" value=\"{}\" placeholder=\"{}\"><input name=\"date\" value=\"{}\" placeholder=\"YYYY-MM-DD\"><button type=\"submit\">{}</button></form>",
        q("app"),
        v.t("log_app"),
        q("place"),
        v.t("log_place"),
        q("date"),
        v.t("search")
    );
    let screen = match found {
        Ok((_, screen)) => screen,
        Err(_) => {
            html.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", v.t("log_bad_date")));
            let mut page = v.page("admin_logs", html);
            if let Response::Page { status, .. } = &mut page {
                *status = 400;
            }
            return Ok(page);
        }
    };
    let head = ["time", "log_kind", "code_type", "log_app", "log_place", "log_result"];
    html.push_str(&v.table_head("logs", &head));
    for e in &screen.items {
        html.push_str(&format!(
            "<tr data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.kind),
            esc(&util::datetime(e.at)),
            v.t(&format!("event_{}", e.kind)),
            v.word("type_", &e.code_type),
            v.who(&e.app),
            esc(&e.place),
            v.word("log_result_", &e.result)
        ));
    }
    html.push_str("</table>");
    html.push_str(&pager(v, "logs", &["kind", "app", "place", "date"], &screen));
    Ok(v.page("admin_logs", html))
}

/// Below an admin list: a note when the screen stopped at its reading
/// budget, "newest" (when not on the first screen) and "older" (when there
/// is more) links, keeping the filters `keep` of the query.
pub(crate) fn pager<T>(v: &View, list: &str, keep: &[&str], screen: &Screen<T>) -> String {
    let mut out = String::new();
    if screen.limited {
        let note = v.t("log_scan_limited").replace("{n}", &screen.examined.to_string());
        out.push_str(&format!("<p class=\"notice\" data-examined=\"{}\">{note}</p>", screen.examined));
    }
    let filters: String =
        keep.iter().filter_map(|k| v.req.query(k).map(|val| format!("{k}={}&", util::url_encode(val)))).collect();
    let base = format!("{}/admin/{list}?{filters}", v.req.base);
    let mut links = Vec::new();
    if v.req.query("before").is_some() {
        let first = base.trim_end_matches(['&', '?']);
        links.push(format!("<a class=\"newest\" href=\"{}\">{}</a>", esc(first), v.t("log_newest")));
    }
    if let Some(next) = &screen.next {
        let href = format!("{base}before={}", util::url_encode(next));
        links.push(format!("<a class=\"older\" rel=\"next\" href=\"{}\">{}</a>", esc(&href), v.t("log_older")));
    }
    out.push_str(&format!("<nav class=\"pager\">{}</nav>", links.join(" ")));
    out
}
