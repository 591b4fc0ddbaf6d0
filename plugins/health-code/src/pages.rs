//! The citizen's pages (E1, E2, E3, E6): the code itself with a switch
//! between the user's own code, bound relatives' and represented
//! enterprises', renewal on demand, the offline code, status history,
//! nucleic-acid results and the community profile. HTML fragments the
//! provider wraps in its theme; every text comes from the locale files.
use crate::community;
use crate::events::{self, Event};
use crate::status::Colour;
use crate::{HealthCode, access, codes, png, status, styles, util};
use idp_plugin_sdk::{Map, Request, Response, Value, escape_html as esc};

/// Whose code a page is about.
pub struct Target {
    /// `personal` or `enterprise` (the holder's kind).
    pub kind: &'static str,
    pub key: String,
    pub masked_name: String,
    /// `personal`, `kin` or `enterprise` (the code type shown).
    pub shown_as: &'static str,
    /// The query selecting it again (`for=…`, `enterprise=…` or empty).
    pub select: String,
}

pub fn colour_hex(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => "#c62828",
        Colour::Yellow => "#f9a825",
        Colour::Green => "#2e7d32",
    }
}

struct View<'a> {
    p: &'a HealthCode,
    req: &'a Request,
}

impl View<'_> {
    fn t(&self, key: &str) -> String {
        esc(self.p.texts.get(&self.req.locale, key))
    }
    fn url(&self, path: &str, select: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        if select.is_empty() {
            esc(&format!("{}{path}", self.req.base))
        } else {
            esc(&format!("{}{path}{sep}{select}", self.req.base))
        }
    }
    fn page(&self, status: u16, title_key: &str, html: String) -> Response {
        Response::Page { status, title: self.p.texts.get(&self.req.locale, title_key).into(), html }
    }
    fn message(&self, status: u16, key: &str) -> Response {
        // Without a real name there is no code: the way on is the provider's
        // real-name verification, not this page again.
        let (href, label) = if key == "needs_real_name" {
            ("/identity".to_string(), self.t("go_real_name"))
        } else {
            (self.url("/", ""), self.t("back"))
        };
        let html = format!(
            "<p class=\"notice\" id=\"hc-message\" data-key=\"{key}\">{}</p><p>{}</p>",
            self.t(key),
            if key == "needs_real_name" {
                format!("<a class=\"button\" id=\"hc-next\" href=\"{href}\">{label}</a>")
            } else {
                format!("<a id=\"hc-next\" href=\"{href}\">{label}</a>")
            }
        );
        self.page(status, "code_title", html)
    }
    /// A time in the reader's language (never Unix seconds).
    fn when(&self, ts: i64) -> String {
        esc(&idp_plugin_sdk::human::datetime(ts, &self.req.locale))
    }
    fn status_label(&self, s: &str) -> String {
        let key = format!("status_{s}");
        let label = self.p.texts.get(&self.req.locale, &key);
        if label == key { esc(s) } else { esc(label) }
    }
}

fn field(me: &Map<String, Value>, k: &str) -> String {
    me.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The target named by `for` (a kin relation id) or `enterprise` (a credit
/// code), only among the subject's own relations; `None` when not theirs.
fn target(p: &HealthCode, req: &Request, me: &Map<String, Value>, rel: &Value) -> Result<Option<Target>, String> {
    let param = |k: &str| req.query(k).or(req.form(k)).filter(|v| !v.is_empty());
    if let Some(id) = param("for") {
        let found = rel["relatives"].as_array().into_iter().flatten().find(|r| r["relation_id"] == id);
        return Ok(found.map(|r| Target {
            kind: "personal",
            key: r["id_number"].as_str().unwrap_or_default().into(),
            masked_name: r["masked_name"].as_str().unwrap_or_default().into(),
            shown_as: "kin",
            select: format!("for={id}"),
        }));
    }
    if let Some(uscc) = param("enterprise") {
        let found = rel["enterprises"].as_array().into_iter().flatten().find(|e| e["uscc"] == uscc);
        return Ok(found.map(|e| Target {
            kind: "enterprise",
            key: uscc.into(),
            masked_name: e["name"].as_str().unwrap_or_default().into(),
            shown_as: "enterprise",
            select: format!("enterprise={uscc}"),
        }));
    }
    let _ = p;
    let id = field(me, "id_number");
    Ok((!id.is_empty()).then(|| Target {
        kind: "personal",
        key: id,
        masked_name: util::mask_name(&field(me, "name")),
        shown_as: "personal",
        select: String::new(),
    }))
}

pub fn handle(p: &HealthCode, req: &Request) -> Result<Response, String> {
    let v = View { p, req };
    let sub = req.subject.clone().ok_or("user route without a subject")?;
    let me = p.host.subject()?;
    if req.path == "/profile" {
        return profile(&v, &sub);
    }
    let rel = p.host.relations()?;
    let Some(t) = target(p, req, &me, &rel)? else {
        let key = if req.query("for").is_some() || req.query("enterprise").is_some() {
            "not_yours"
        } else {
            "needs_real_name"
        };
        return Ok(v.message(404, key));
    };
    // 003 §2.1.4: showing a code may need a fresh face check.
    let max_age = p.settings.face_max_age;
    let face_at = me.get("face_verified_at").and_then(Value::as_i64);
    if max_age > 0
        && matches!(req.path.as_str(), "/" | "/offline" | "/offline.png")
        && face_at.is_none_or(|at| p.host.now() - at > max_age)
    {
        // The provider's face check comes back to this page when done (the
        // offline picture's page for the download).
        let here = if req.path == "/" { "/" } else { "/offline" };
        let select = if t.select.is_empty() { String::new() } else { format!("?{}", t.select) };
        let next = util::url_encode(&format!("{}{here}{select}", req.base));
        let html = format!(
            "<p class=\"notice\" data-face=\"required\">{}</p><p><a class=\"button\" href=\"/scan/face?next={next}\">{}</a></p><p><a href=\"{}\">{}</a></p>",
            v.t("face_required"),
            v.t("face_go"),
            v.url("/", &t.select),
            v.t("face_done")
        );
        return Ok(v.page(403, "code_title", html));
    }
    let (holder, issued) = codes::holder(&p.host, t.kind, &t.key, &t.masked_name)?;
    if issued {
        log(p, "issue", t.shown_as, &holder.hid, &sub, "")?;
    }
    if t.shown_as == "personal" {
        codes::link_account(&p.host, &sub, &holder)?;
    }
    // 授权办事: a guardian obtaining a relative's code or results through
    // the kin relation is logged for the relative to read.
    let me_masked = util::mask_name(&field(&me, "name"));
    if t.shown_as == "kin" && matches!(req.path.as_str(), "/" | "/offline" | "/offline.png" | "/tests") {
        let what = if req.path == "/tests" { "lab" } else { "code" };
        access::record(&p.host, &t.key, "kin", &me_masked, None, what)?;
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => code_page(&v, &t, &holder, &rel, &sub),
        ("GET", "/authorisations") => authorisations(&v, &t),
        ("POST", "/refresh") => {
            codes::online_payload(&p.host, &holder, t.shown_as, p.settings.rotate_seconds, true)?;
            log(p, "operation", t.shown_as, &holder.hid, &sub, "renew")?;
            Ok(Response::redirect(format!(
                "{}/{}",
                req.base,
                if t.select.is_empty() { String::new() } else { format!("?{}", t.select) }
            )))
        }
        ("GET", "/offline") | ("GET", "/offline.png") => offline(&v, &t, &holder, &sub),
        ("GET", "/history") => history(&v, &t),
        ("GET", "/tests") => tests(&v, &t, &rel, &me_masked),
        _ => Ok(Response::not_found()),
    }
}

fn log(p: &HealthCode, kind: &str, code_type: &str, hid: &str, who: &str, result: &str) -> Result<(), String> {
    let e = Event {
        kind: kind.into(),
        code_type: code_type.into(),
        holder: hid.into(),
        app: format!("user:{who}"),
        place: String::new(),
        result: result.into(),
        at: 0,
    };
    events::record(&p.host, e)
}

fn switcher(v: &View, t: &Target, rel: &Value) -> String {
    use idp_plugin_sdk::ui::{Tab, tabs};
    let mut items: Vec<(String, String, bool)> =
        vec![(format!("{}/", v.req.base), v.p.texts.get(&v.req.locale, "switch_self").into(), t.select.is_empty())];
    for r in rel["relatives"].as_array().into_iter().flatten() {
        let sel = format!("for={}", r["relation_id"].as_str().unwrap_or_default());
        let label = format!(
            "{} · {}",
            v.p.texts.get(&v.req.locale, "switch_kin"),
            r["masked_name"].as_str().unwrap_or_default()
        );
        items.push((format!("{}/?{sel}", v.req.base), label, t.select == sel));
    }
    for e in rel["enterprises"].as_array().into_iter().flatten() {
        let sel = format!("enterprise={}", e["uscc"].as_str().unwrap_or_default());
        let label = format!(
            "{} · {}",
            v.p.texts.get(&v.req.locale, "switch_enterprise"),
            e["name"].as_str().unwrap_or_default()
        );
        items.push((format!("{}/?{sel}", v.req.base), label, t.select == sel));
    }
    let list: Vec<Tab> = items.iter().map(|(h, l, on)| Tab { href: h, label: l, current: *on }).collect();
    format!(
        "<div class=\"code-switch\" id=\"code-switch\">{}<p><a href=\"/account/kin\">{}</a></p></div>",
        tabs(v.p.texts.get(&v.req.locale, "switch_label"), &list),
        v.t("kin_manage")
    )
}

/// The card: the active style's background and icon, the status colour on
/// the band and the QR.
fn card(v: &View, t: &Target, colour: Colour, qr: &str, number: &str, now: i64) -> Result<String, String> {
    let style = styles::active(&v.p.host, t.shown_as)?;
    let hex = colour_hex(colour);
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"health-card\" viewBox=\"0 0 320 120\" width=\"320\" height=\"120\" data-style=\"{sid}\">\
<rect width=\"320\" height=\"120\" rx=\"12\" fill=\"{bg}\"/><rect y=\"0\" width=\"320\" height=\"44\" rx=\"12\" fill=\"{hex}\"/>\
<text x=\"16\" y=\"29\" font-size=\"18\" fill=\"#ffffff\">{icon} {type_name} · {colour_name}</text>\
<text x=\"16\" y=\"74\" font-size=\"20\" fill=\"{fg}\">{name}</text>\
<text x=\"16\" y=\"102\" font-size=\"13\" fill=\"{fg}\">{time} · {number}</text></svg>\
<div class=\"qr\" data-colour=\"{colour}\">{qr}</div>",
        sid = esc(&style.id),
        bg = esc(&style.background),
        fg = esc(&style.colour),
        icon = esc(&style.icon),
        type_name = v.t(&format!("type_{}", t.shown_as)),
        colour_name = v.t(&format!("colour_{colour}")),
        name = esc(&t.masked_name),
        time = v.when(now),
        number = esc(number),
    ))
}

fn code_page(v: &View, t: &Target, holder: &codes::Holder, rel: &Value, sub: &str) -> Result<Response, String> {
    let p = v.p;
    let (payload, until) = codes::online_payload(&p.host, holder, t.shown_as, p.settings.rotate_seconds, false)?;
    let rules = status::rules(&p.host, &p.settings.rules)?;
    let (colour, record) = status::colour(&p.host, &rules, &t.key)?;
    let now = p.host.now();
    let qr = codes::qr_svg(&payload, colour_hex(colour))?;
    log(p, "show", t.shown_as, &holder.hid, sub, "")?;
    let mut html = switcher(v, t, rel);
    html.push_str(&format!("<section class=\"health-code\" data-colour=\"{colour}\" data-type=\"{}\">", t.shown_as));
    // A live clock (the theme's script ticks it), as real code pages show.
    html.push_str(&idp_plugin_sdk::ui::clock(now, &v.req.locale));
    html.push_str(&card(v, t, colour, &qr, &holder.number, now)?);
    if let Some(r) = record.filter(|_| colour != Colour::Green) {
        html.push_str(&format!("<p class=\"reason\">{}: {}</p>", v.t("reason"), v.status_label(&r.reason)));
    }
    html.push_str(&format!(
        "<p class=\"valid\">{} {}</p><details><summary>{}</summary><code class=\"payload\">{}</code></details></section>",
        v.t("valid_until"),
        v.when(until),
        v.t("payload_text"),
        esc(&payload)
    ));
    // The page reloads itself before the code id expires, and at least
    // every minute, with a pause the citizen controls (WCAG 2.2.1; the
    // theme's script, as the CSP allows no inline script).
    html.push_str(&idp_plugin_sdk::ui::auto_reload((until - now).clamp(5, 60), &v.req.locale));
    let sel = &t.select;
    // Renewal right under the code, in the code's colour (never red on green).
    html.push_str(&format!(
        "<form method=\"post\" action=\"{}\" class=\"renew\" data-colour=\"{colour}\">{}<input type=\"hidden\" name=\"for\" value=\"{}\"><input type=\"hidden\" name=\"enterprise\" value=\"{}\"><button type=\"submit\" class=\"secondary\" id=\"hc-renew\">{}</button></form>",
        v.url("/refresh", ""),
        v.req.csrf_field(),
        esc(sel.strip_prefix("for=").unwrap_or("")),
        esc(sel.strip_prefix("enterprise=").unwrap_or("")),
        v.t("renew")
    ));
    if t.shown_as == "personal"
        && let Some(c) = community::load(&p.host, sub)?
    {
        html.push_str(&format!(
            "<p class=\"community\">{}: {} {}-{}-{}</p>",
            v.t("profile_community"),
            esc(&c.community),
            esc(&c.building),
            esc(&c.unit),
            esc(&c.room)
        ));
    }
    html.push_str(&format!(
        "<p class=\"actions\"><a href=\"{}\">{}</a> · <a href=\"{}\">{}</a> · <a href=\"{}\">{}</a> · <a href=\"{}\">{}</a> · <a id=\"authorisations-link\" href=\"{}\">{}</a></p>",
        v.url("/offline", sel),
        v.t("offline"),
        v.url("/history", sel),
        v.t("history_title"),
        v.url("/tests", sel),
        v.t("tests_title"),
        v.url("/profile", ""),
        v.t("profile_title"),
        v.url("/authorisations", sel),
        v.t("access_title"),
    ));
    Ok(v.page(200, "code_title", html))
}

/// E2: printable / downloadable, generation time drawn on it, validity in
/// the signed payload.
fn offline(v: &View, t: &Target, holder: &codes::Holder, sub: &str) -> Result<Response, String> {
    let p = v.p;
    let (payload, gen_at, until) = codes::offline_payload(&p.host, holder, t.shown_as, p.settings.offline_days)?;
    log(p, "operation", t.shown_as, &holder.hid, sub, "offline")?;
    let (w, modules) = codes::qr_modules(&payload)?;
    let image = png::render(
        w,
        &modules,
        // Digits only (the built-in font has no Chinese): the validity as a
        // range, from generation to expiry; the page around it names both.
        &[format!("{} -", util::datetime(gen_at)), util::datetime(until)],
    )?;
    if v.req.path == "/offline.png" {
        return Ok(Response::binary("image/png", &image, Some("health-code-offline.png")));
    }
    use idp_plugin_sdk::Response as R;
    let R::Binary { base64, .. } = R::binary("image/png", &image, None) else {
        return Err("binary response expected".into());
    };
    let html = format!(
        "<section class=\"offline-code\"><img class=\"offline\" alt=\"{alt}\" src=\"data:image/png;base64,{base64}\">\
    <p class=\"hint\">{range_hint}</p><p class=\"generated\" data-at=\"{gen_at}\">{gen_label} {gen}</p><p class=\"valid\" data-until=\"{until}\">{until_label} {until_text}</p>\
    <details><summary>{payload_label}</summary><code class=\"payload\">{payload}</code></details><p><a class=\"button\" href=\"{png}\">{download}</a> <a href=\"{back}\">{back_label}</a></p></section>",
        alt = v.t("offline"),
        gen_label = v.t("generated_at"),
        range_hint = v.t("offline_range_hint"),
        gen = v.when(gen_at),
        until_label = v.t("valid_until"),
        until_text = v.when(until),
        payload = esc(&payload),
        payload_label = v.t("payload_text"),
        png = v.url("/offline.png", &t.select),
        download = v.t("download"),
        back = v.url("/", &t.select),
        back_label = v.t("back"),
    );
    Ok(v.page(200, "offline", html))
}

fn history(v: &View, t: &Target) -> Result<Response, String> {
    let p = v.p;
    let rules = status::rules(&p.host, &p.settings.rules)?;
    let (colour, _) = status::colour(&p.host, &rules, &t.key)?;
    let mut html = format!(
        "<p class=\"current\" data-colour=\"{colour}\">{} {}</p>",
        esc(&t.masked_name),
        v.t(&format!("colour_{colour}"))
    );
    let records = status::history(&p.host, &t.key)?;
    if records.is_empty() {
        html.push_str(&format!("<p class=\"empty\">{}</p>", v.t("history_empty")));
    } else {
        html.push_str(&format!(
            "<table class=\"history\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            v.t("time"),
            v.t("status"),
            v.t("reason")
        ));
        for r in records.iter().rev() {
            html.push_str(&format!(
                "<tr data-status=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.status),
                v.when(r.at),
                v.status_label(&r.status),
                v.status_label(&r.reason)
            ));
        }
        html.push_str("</table>");
    }
    html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", v.url("/", &t.select), v.t("back")));
    Ok(v.page(200, "history_title", html))
}

/// Nucleic-acid results (核酸检测结果查询, seed 001): the query form picks
/// the user or one bound relative (only relatives of the user's own kin
/// relations are offered or accepted); without a choice, the user's and
/// every bound relative's. A relative's results read through the kin
/// relation are logged for the relative (授权办事).
fn tests(v: &View, t: &Target, rel: &Value, me_masked: &str) -> Result<Response, String> {
    let p = v.p;
    let mut people: Vec<(String, String)> = Vec::new();
    if t.shown_as != "enterprise" {
        people.push((t.masked_name.clone(), t.key.clone()));
    }
    let relatives: Vec<&Value> = rel["relatives"].as_array().into_iter().flatten().collect();
    if t.select.is_empty() {
        for r in &relatives {
            let key: String = r["id_number"].as_str().unwrap_or_default().into();
            access::record(&p.host, &key, "kin", me_masked, None, "lab")?;
            people.push((r["masked_name"].as_str().unwrap_or_default().into(), key));
        }
    }
    let mut options = format!("<option value=\"\">{}</option>", v.t("switch_self"));
    for r in &relatives {
        let id = r["relation_id"].as_str().unwrap_or_default();
        let sel = if t.select == format!("for={id}") { " selected" } else { "" };
        options.push_str(&format!(
            "<option value=\"{}\"{sel}>{} · {}</option>",
            esc(id),
            v.t("switch_kin"),
            esc(r["masked_name"].as_str().unwrap_or_default())
        ));
    }
    let mut html = format!(
        "<form method=\"get\" action=\"{}\" class=\"form inline\" id=\"lab-query\"><label>{} <select name=\"for\">{options}</select></label><button type=\"submit\">{}</button></form>",
        v.url("/tests", ""),
        v.t("tests_query_whom"),
        v.t("tests_query")
    );
    for (name, key) in people {
        html.push_str(&format!("<h2>{}</h2>", esc(&name)));
        let results = status::lab_results(&p.host, &key)?;
        if results.is_empty() {
            html.push_str(&format!("<p class=\"empty\">{}</p>", v.t("tests_empty")));
            continue;
        }
        html.push_str("<ul class=\"tests\">");
        for r in results {
            html.push_str(&format!(
                "<li data-result=\"{}\">{} · {} · {}</li>",
                esc(&r.result),
                v.when(r.sampled_at),
                v.t(&format!("result_{}", r.result)),
                esc(&r.lab)
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", v.url("/", &t.select), v.t("back")));
    Ok(v.page(200, "tests_title", html))
}

fn profile(v: &View, sub: &str) -> Result<Response, String> {
    let p = v.p;
    let mut notice = String::new();
    let mut status = 200;
    if v.req.method == "POST" {
        match community::parse(&community::all(&p.host, &p.settings.communities)?, v.req) {
            Ok(prof) => {
                community::save(&p.host, sub, &prof)?;
                notice = format!("<p class=\"notice ok\">{}</p>", v.t("profile_saved"));
            }
            Err(key) => {
                status = 400;
                notice = format!("<p class=\"notice error\">{}</p>", v.t(key));
            }
        }
    }
    let current = community::load(&p.host, sub)?.unwrap_or_default();
    let q = v.req.query("q").unwrap_or_default();
    let all = community::all(&p.host, &p.settings.communities)?;
    let matches = community::search(&all, q);
    let mut html = notice;
    html.push_str(&format!(
        "<form method=\"get\" action=\"{}\" class=\"form\"><label>{} <input name=\"q\" value=\"{}\"></label><button type=\"submit\">{}</button></form>",
        v.url("/profile", ""),
        v.t("profile_search"),
        esc(q),
        v.t("search")
    ));
    let mut options: Vec<&String> = matches;
    if !current.community.is_empty() && !options.contains(&&current.community) {
        options.insert(0, &current.community);
    }
    let opts: String = options
        .iter()
        .map(|c| {
            let sel = if **c == current.community { " selected" } else { "" };
            format!("<option value=\"{}\"{sel}>{}</option>", esc(c), esc(c))
        })
        .collect();
    let input = |name: &str, value: &str| {
        format!(
            "<label>{} <input name=\"{name}\" value=\"{}\" maxlength=\"10\"></label>",
            v.t(&format!("profile_{name}")),
            esc(value)
        )
    };
    html.push_str(&format!(
        "<form method=\"post\" action=\"{}\" class=\"form\">{}<label>{} <select name=\"community\">{opts}</select></label>{}{}{}{}<button type=\"submit\">{}</button></form>",
        v.url("/profile", ""),
        v.req.csrf_field(),
        v.t("profile_community"),
        input("building", &current.building),
        input("unit", &current.unit),
        input("room", &current.room),
        input("plate", &current.plate),
        v.t("save")
    ));
    html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", v.url("/", ""), v.t("back")));
    Ok(v.page(status, "profile_title", html))
}

/// 授权办事 (seed 003 §2.1.5.2): who obtained this person's code or data
/// through an authorisation, what, and when — newest first, in words.
fn authorisations(v: &View, t: &Target) -> Result<Response, String> {
    let p = v.p;
    let rows = access::list(&p.host, &t.key, 100)?;
    let mut html = format!("<p class=\"hint\">{}</p>", v.t("access_intro"));
    if rows.is_empty() {
        html.push_str(&format!("<p class=\"empty\" id=\"access-empty\">{}</p>", v.t("access_empty")));
    } else {
        html.push_str("<ul class=\"access-log\" id=\"access-log\">");
        for a in rows {
            let key = format!("access_{}_{}", a.who_kind, a.what);
            let template = p.texts.get(&v.req.locale, &key);
            // An app by its display name, never its client id.
            let text = esc(template).replace("{who}", &esc(a.name.as_deref().unwrap_or(&a.who)));
            html.push_str(&format!(
                "<li data-who-kind=\"{}\" data-who=\"{}\" data-what=\"{}\"><time>{}</time> · {}</li>",
                esc(&a.who_kind),
                esc(&a.who),
                esc(&a.what),
                v.when(a.at),
                text
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", v.url("/", &t.select), v.t("back")));
    Ok(v.page(200, "access_title", html))
}
