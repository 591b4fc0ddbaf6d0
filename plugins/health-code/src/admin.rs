//! Administration (E5): code lists with search, code styles
//! (one active per type), categories and numbering rules, colour rules,
//! statistics drawn as SVG charts, and the logs with filters. Pages open
//! in the operator console (the host brings the staff session, a CSRF token
//! and the operator's name) or with the shared admin token; JSON for tools
//! and tests. Styles and categories change by the console's forms or by
//! JSON POSTs to the same routes, checked by one rule
//! ([`Change`]); every change is logged as an operation with its operator.
use crate::events::{self, Event};
use crate::paging::Screen;
use crate::{HealthCode, admin_categories, admin_styles, charts, codes, issuers, logs, status, styles, util};
use idp_plugin_sdk::{Request, Response, Value, escape_html as esc, json};

pub(crate) struct View<'a> {
    pub p: &'a HealthCode,
    pub req: &'a Request,
}

impl View<'_> {
    pub fn t(&self, key: &str) -> String {
        esc(self.p.texts.get(&self.req.locale, key))
    }
    /// A stored value in words: the text of `<prefix><value>` when the
    /// locale files have one, else the value itself (never an enum name
    /// when there is a word for it).
    pub fn word(&self, prefix: &str, value: &str) -> String {
        if value.is_empty() {
            return String::new();
        }
        let key = format!("{prefix}{value}");
        let text = self.p.texts.get(&self.req.locale, &key);
        if text == key { esc(value) } else { esc(text) }
    }
    /// Who did it: a citizen's own page (`user:<id>`) in words, an app by
    /// its client id, an administrator as the host named them
    /// (`staff:<username>`, `admin-token`).
    pub fn who(&self, app: &str) -> String {
        if app.starts_with("user:") { self.t("log_app_self") } else { esc(app) }
    }
    /// `<table class=…>` and its header row of these text keys.
    pub fn table_head(&self, class: &str, keys: &[&str]) -> String {
        let cells: String = keys.iter().map(|k| format!("<th>{}</th>", self.t(k))).collect();
        format!("<table class=\"{class}\"><tr>{cells}</tr>")
    }
    pub fn page(&self, title_key: &str, body: String) -> Response {
        self.page_at(200, title_key, body)
    }
    pub fn page_at(&self, status: u16, title_key: &str, body: String) -> Response {
        let nav = ["codes", "styles", "categories", "stats", "logs", "issuers"]
            .iter()
            .map(|k| format!("<a href=\"{}/admin/{k}\">{}</a>", esc(&self.req.base), self.t(&format!("admin_{k}"))))
            .collect::<Vec<_>>()
            .join(" · ");
        Response::Page {
            status,
            title: self.p.texts.get(&self.req.locale, title_key).into(),
            html: format!("<nav class=\"admin\">{nav}</nav>{body}"),
        }
    }
}

pub(crate) fn bad(description: &str) -> Response {
    Response::json(400, json!({ "error": "invalid_request", "error_description": description }))
}

/// Logs an administrative change with who made it (E5 operation log):
/// the host's operator — `staff:<username>` from the console,
/// `admin-token` for the shared token — else `admin`.
pub(crate) fn operation(v: &View, name: &str, detail: &str) -> Result<(), String> {
    let e = Event {
        kind: "operation".into(),
        code_type: name.into(),
        holder: String::new(),
        app: v.req.operator.clone().unwrap_or_else(|| "admin".into()),
        place: String::new(),
        result: detail.chars().take(120).collect(),
        at: 0,
    };
    events::record(&v.p.host, e)
}

/// A change to styles or categories as it came: a script's JSON body, or
/// a console form — its fields (but the CSRF token) as the same JSON
/// object of strings, so the one rule checks both. A script keeps its JSON
/// answers; a form is answered with the page.
pub(crate) enum Change {
    Json(Value),
    Form(Value),
}

impl Change {
    fn of(req: &Request) -> Self {
        if req.form.is_empty() {
            return Change::Json(serde_json::from_str(&req.body).unwrap_or(Value::Null));
        }
        let fields =
            req.form.iter().filter(|(k, _)| k != "csrf").map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        Change::Form(Value::Object(fields))
    }
    pub fn value(&self) -> &Value {
        match self {
            Change::Json(v) | Change::Form(v) => v,
        }
    }
}

/// A console form sent back: which form, what was typed, what to fix.
pub(crate) struct Refused {
    /// The form the typed values go back into (`add`, a style id, a code type).
    pub form: String,
    pub values: Value,
    /// The field to mark, if one.
    pub field: Option<&'static str>,
    /// The message, already localized and escaped.
    pub message: String,
    pub status: u16,
}

impl Refused {
    /// Whether this refusal belongs to `form`.
    fn of<'a>(refused: Option<&'a Refused>, form: &str) -> Option<&'a Refused> {
        refused.filter(|r| r.form == form)
    }
}

/// A labelled text input of `form`: what was typed when that form came
/// back refused (the field marked if at fault), else `stored`.
pub(crate) fn input(v: &View, refused: Option<&Refused>, form: &str, name: &str, label: &str, stored: &str) -> String {
    let back = Refused::of(refused, form);
    let value = back.map(|r| r.values.get(name).and_then(Value::as_str).unwrap_or_default()).unwrap_or(stored);
    let invalid = if back.is_some_and(|r| r.field == Some(name)) { " aria-invalid=\"true\"" } else { "" };
    format!("<label>{} <input name=\"{name}\" value=\"{}\"{invalid}></label>", v.t(label), esc(value))
}

/// The notice above a list: the refused form's message, or the localized
/// success of the change the page was redirected from (`done`).
pub(crate) fn notice(refused: Option<&Refused>, done: Option<String>) -> String {
    match (refused, done) {
        (Some(r), _) => format!("<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>", r.message),
        (None, Some(text)) => format!("<p class=\"info\" role=\"status\" id=\"done\">{text}</p>"),
        (None, None) => String::new(),
    }
}

pub fn handle(p: &HealthCode, req: &Request) -> Result<Response, String> {
    let v = View { p, req };
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/admin") | ("GET", "/admin/stats") => stats_page(&v),
        ("GET", "/admin/stats.json") => Ok(Response::json(200, stats(p, days_param(req))?.json)),
        ("GET", "/admin/codes") => codes_page(&v),
        ("GET", "/admin/codes.json") => {
            let s = code_list(p, req)?;
            let list: Vec<Value> = s.items.iter().map(|h| serde_json::to_value(h).unwrap_or(Value::Null)).collect();
            Ok(Response::json(
                200,
                json!({ "codes": list, "next": s.next, "examined": s.examined, "limited": s.limited }),
            ))
        }
        ("GET", "/admin/styles") => admin_styles::page(&v, None),
        ("GET", "/admin/styles.json") => {
            let list: Vec<Value> = styles::list(&p.host)?.iter().map(|(s, a)| styles::to_json(s, *a)).collect();
            Ok(Response::json(200, json!({ "styles": list })))
        }
        ("POST", "/admin/styles") => admin_styles::add(&v, &Change::of(req)),
        ("POST", "/admin/styles/edit") => admin_styles::edit(&v, &Change::of(req)),
        ("POST", "/admin/styles/delete") => admin_styles::delete(&v, &Change::of(req)),
        ("GET", "/admin/categories.json") => {
            let list: Result<Vec<codes::Category>, String> =
                codes::TYPES.iter().map(|t| codes::category(&p.host, t)).collect();
            Ok(Response::json(200, json!({ "categories": list? })))
        }
        ("POST", "/admin/categories/delete") => admin_categories::reset(&v, &Change::of(req)),
        ("GET", "/admin/communities.json") => {
            Ok(Response::json(200, json!({ "communities": crate::community::all(&p.host, &p.settings.communities)? })))
        }
        ("POST", "/admin/communities") => {
            let names = |k: &str| -> Vec<String> {
                body.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                    .unwrap_or_default()
            };
            match crate::community::edit(&p.host, &p.settings.communities, &names("add"), &names("remove"))? {
                Ok(list) => {
                    operation(&v, "communities_set", &format!("+{} -{}", names("add").len(), names("remove").len()))?;
                    Ok(Response::json(200, json!({ "communities": list })))
                }
                Err(e) => Ok(bad(&e)),
            }
        }
        ("GET", "/admin/categories") => admin_categories::page(&v, None),
        ("POST", "/admin/categories") => admin_categories::save(&v, &Change::of(req)),
        ("GET", "/admin/rules") => {
            Ok(Response::json(200, json!({ "rules": status::rules(&p.host, &p.settings.rules)? })))
        }
        ("POST", "/admin/rules") => match status::parse_rules(body.get("rules").unwrap_or(&Value::Null)) {
            Ok(rules) => {
                p.host.kv_put("rules", &serde_json::to_string(&rules).map_err(|e| e.to_string())?, None)?;
                operation(&v, "rules_set", &format!("{} rules", rules.len()))?;
                Ok(Response::json(200, json!({ "rules": rules })))
            }
            Err(e) => Ok(bad(&e)),
        },
        ("GET", "/admin/issuers") => issuers_page(&v),
        ("GET", "/admin/issuers.json") => {
            let list: Vec<Value> = issuers::list(&p.host)?.iter().map(issuers::to_json).collect();
            Ok(Response::json(200, json!({ "issuers": list })))
        }
        ("POST", "/admin/issuers") => match issuers::register(&p.host, &body)? {
            Ok(i) => {
                operation(&v, "issuer_set", &i.name)?;
                Ok(Response::json(201, issuers::to_json(&i)))
            }
            Err(e) => Ok(bad(&e)),
        },
        ("GET", "/admin/logs") => logs::page(&v),
        ("GET", "/admin/logs.json") => logs::json(&v),
        _ => Ok(Response::not_found()),
    }
}

/// One screen of code records, newest first. An exact ID number
/// or credit code is looked up by its index; a number fragment or a name
/// is matched while reading, at most `log_scan_rows` records a screen.
fn code_list(p: &HealthCode, req: &Request) -> Result<Screen<codes::Holder>, String> {
    p.backfill(std::time::Duration::from_millis(500));
    let q = req.query("q").unwrap_or_default().trim().to_string();
    let kind = req.query("type").unwrap_or_default();
    let of_kind = |h: &codes::Holder| kind.is_empty() || h.kind == kind;
    if !q.is_empty() && req.query("before").is_none() {
        for k in ["personal", "enterprise"] {
            if let Some(h) = codes::by_key(&p.host, k, &q)?.filter(of_kind) {
                return Ok(Screen { items: vec![h], next: None, examined: 1, limited: false });
            }
        }
    }
    let s = &p.settings;
    codes::screen(&p.host, req.query("before"), s.log_page_size, s.log_scan_rows, |h| {
        of_kind(h) && (q.is_empty() || h.number.contains(&q) || util::fuzzy(&h.masked_name, &q))
    })
}

fn codes_page(v: &View) -> Result<Response, String> {
    let list = code_list(v.p, v.req)?;
    let kind = v.req.query("type").unwrap_or_default();
    let opt = |value: &str, key: &str| {
        let sel = if kind == value { " selected" } else { "" };
        format!("<option value=\"{value}\"{sel}>{}</option>", v.t(key))
    };
    let mut html = format!(
        "<form method=\"get\" class=\"form inline\"><input name=\"q\" value=\"{}\" placeholder=\"{}\"><select name=\"type\">{}{}{}</select><button type=\"submit\">{}</button></form>",
        esc(v.req.query("q").unwrap_or_default()),
        v.t("admin_search_hint"),
        opt("", "all"),
        opt("personal", "type_personal"),
        opt("enterprise", "type_enterprise"),
        v.t("search")
    );
    html.push_str(&v.table_head("codes", &["number", "code_type", "name", "holder_key", "issued_at"]));
    for h in &list.items {
        html.push_str(&format!(
            "<tr data-number=\"{n}\"><td>{n}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.t(&format!("type_{}", h.kind)),
            esc(&h.masked_name),
            esc(&util::mask_key(&h.key)),
            esc(&util::datetime(h.issued_at)),
            n = esc(&h.number),
        ));
    }
    html.push_str("</table>");
    html.push_str(&logs::pager(v, "codes", &["q", "type"], &list));
    Ok(v.page("admin_codes", html))
}

/// Third-party code issuers (E5) whose codes our scanners accept.
fn issuers_page(v: &View) -> Result<Response, String> {
    let mut html = format!(
        "<p>{}</p><table class=\"issuers\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        v.t("admin_issuers_hint"),
        v.t("issuer_name"),
        v.t("issuer_key"),
        v.t("issuer_registered")
    );
    for i in issuers::list(&v.p.host)? {
        let key = match &i.key {
            Value::String(_) => "PEM (EC P-256)".to_string(),
            jwk => format!("JWK {}", jwk.get("kid").and_then(Value::as_str).unwrap_or("EC P-256")),
        };
        html.push_str(&format!(
            "<tr data-issuer=\"{name}\"><td>{name}</td><td>{}</td><td>{}</td></tr>",
            esc(&key),
            esc(&util::datetime(i.registered_at)),
            name = esc(&i.name),
        ));
    }
    html.push_str("</table>");
    Ok(v.page("admin_issuers", html))
}

fn days_param(req: &Request) -> i64 {
    req.query("days").and_then(|d| d.parse().ok()).unwrap_or(14).clamp(1, 90)
}

pub struct Stats {
    json: Value,
    days: Vec<String>,
    daily: [Vec<u64>; 3],
    by_type: [Vec<(String, u64)>; 3],
}

/// Read from the atomic counters the log keeps per metric, code type and
/// day (issued, shown, scanned — successful scans only), so they stay exact
/// under parallel requests: totals, shares by type and the daily trend of
/// the last `days` CST days, reading only those days' counters.
fn stats(p: &HealthCode, n_days: i64) -> Result<Stats, String> {
    let now = p.host.now();
    let first = util::day_start(now) - (n_days - 1) * 86_400;
    let days: Vec<String> = (0..n_days).map(|i| util::date(first + i * 86_400)).collect();
    let mut daily = [vec![0u64; days.len()], vec![0u64; days.len()], vec![0u64; days.len()]];
    let types = ["personal", "kin", "enterprise"];
    let mut by_type = [[0u64; 3]; 3];
    let names = ["issued", "shown", "scanned"];
    let (day_before, last) = (util::date(first - 86_400), days.last().cloned().unwrap_or_default());
    for (metric, code_type, date, n) in events::counters(&p.host, &names, &types, &day_before, &last)? {
        let Some(m) = names.iter().position(|x| *x == metric) else { continue };
        let Some(d) = days.iter().position(|x| *x == date) else { continue };
        if let Some(i) = types.iter().position(|t| *t == code_type) {
            by_type[m][i] += n;
        }
        daily[m][d] += n;
    }
    let mut json = serde_json::Map::new();
    for (m, name) in names.iter().enumerate() {
        let shares: serde_json::Map<String, Value> =
            types.iter().zip(by_type[m]).map(|(t, n)| (t.to_string(), json!(n))).collect();
        json.insert(name.to_string(), json!({ "total": by_type[m].iter().sum::<u64>(), "by_type": shares }));
    }
    let trend: Vec<Value> = days
        .iter()
        .enumerate()
        .map(|(i, d)| json!({ "date": d, "issued": daily[0][i], "shown": daily[1][i], "scanned": daily[2][i] }))
        .collect();
    json.insert("daily".into(), Value::Array(trend));
    json.insert("from".into(), json!(days.first()));
    json.insert("to".into(), json!(last));
    let labelled = |m: usize| types.iter().zip(by_type[m]).map(|(t, n)| (t.to_string(), n)).collect::<Vec<_>>();
    Ok(Stats { json: Value::Object(json), days, by_type: [labelled(0), labelled(1), labelled(2)], daily })
}

fn stats_page(v: &View) -> Result<Response, String> {
    let s = stats(v.p, days_param(v.req))?;
    let names = ["stats_issued", "stats_shown", "stats_scanned"];
    let labels: Vec<String> = names.iter().map(|k| v.p.texts.get(&v.req.locale, k).to_string()).collect();
    let (from, to) = (s.days.first().cloned().unwrap_or_default(), s.days.last().cloned().unwrap_or_default());
    let mut html =
        format!("<p class=\"stats-range\">{} – {}</p><section class=\"stats-totals\">", esc(&from), esc(&to));
    for (m, key) in names.iter().enumerate() {
        let total: u64 = s.by_type[m].iter().map(|(_, n)| n).sum();
        html.push_str(&format!(
            "<p class=\"total\" data-metric=\"{}\">{} <strong>{total}</strong></p>",
            &key[6..],
            v.t(key)
        ));
    }
    html.push_str("</section>");
    let series: Vec<charts::Series> = labels
        .iter()
        .zip(s.daily.iter())
        .map(|(l, values)| charts::Series { label: l, values: values.clone() })
        .collect();
    html.push_str(&format!(
        "<h2>{}</h2>{}",
        v.t("stats_trend"),
        charts::daily_bars(&v.t("stats_trend"), &s.days, &series)
    ));
    html.push_str(&format!("<h2>{}</h2><div class=\"shares\">", v.t("stats_shares")));
    for (m, label) in labels.iter().enumerate() {
        let parts: Vec<(String, u64)> = s.by_type[m]
            .iter()
            .map(|(t, n)| (v.p.texts.get(&v.req.locale, &format!("type_{t}")).to_string(), *n))
            .collect();
        html.push_str(&charts::shares_ring(label, &parts));
    }
    html.push_str("</div>");
    Ok(v.page("admin_stats", html))
}
