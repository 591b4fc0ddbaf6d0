//! The user's pages: list, add (choose a type),
//! authorise the binding, details, present, reorder. HTML fragments that
//! the provider wraps in its theme; every text comes from the locale files.
use crate::wallet::{self, Certificate};
use idp_plugin_sdk::i18n::Texts;
use idp_plugin_sdk::{Request, Response, escape_html as esc, human};

pub struct View<'a> {
    pub texts: &'a Texts,
    pub req: &'a Request,
}

impl View<'_> {
    fn t(&self, key: &str) -> String {
        esc(self.texts.get(&self.req.locale, key))
    }
    pub fn type_name(&self, kind: &str) -> String {
        self.t(&format!("type_{kind}"))
    }
    fn url(&self, path: &str) -> String {
        esc(&format!("{}{path}", self.req.base))
    }
    fn post_button(&self, path: &str, fields: &[(&str, &str)], label_key: &str, class: &str) -> String {
        let hidden: String = fields
            .iter()
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
            .collect();
        format!(
            "<form method=\"post\" action=\"{}\" class=\"form inline\">{}{hidden}<button type=\"submit\" class=\"{class}\">{}</button></form>",
            self.url(path),
            self.req.csrf_field(),
            self.t(label_key)
        )
    }
    fn back(&self) -> String {
        format!("<p><a href=\"{}\">{}</a></p>", self.url("/"), self.t("back"))
    }

    pub fn message(&self, status: u16, title_key: &str, message_key: &str, back_to: &str) -> Response {
        let html = format!(
            "<p class=\"notice\">{}</p><p><a href=\"{}\">{}</a></p>",
            self.t(message_key),
            self.url(back_to),
            self.t("back")
        );
        Response::Page { status, title: self.texts.get(&self.req.locale, title_key).into(), html }
    }

    /// 电子证照 list: bound certificates in the user's order (F1).
    pub fn list(&self, certs: &[Certificate]) -> Response {
        let mut html = format!(
            "<p class=\"actions\"><a href=\"{}\" class=\"button\">{}</a> <a href=\"{}\">{}</a></p>",
            self.url("/add"),
            self.t("list_add"),
            self.url("/sort"),
            self.t("list_sort")
        );
        if certs.is_empty() {
            html.push_str(&format!("<p class=\"empty\">{}</p>", self.t("list_empty")));
        } else {
            html.push_str("<ol class=\"certificates\">");
            for c in certs {
                html.push_str(&format!(
                    "<li data-kind=\"{}\"><a href=\"{}\">{}</a> <span class=\"number\">{}</span></li>",
                    esc(&c.kind),
                    self.url(&format!("/cert?kind={}", c.kind)),
                    self.type_name(&c.kind),
                    esc(&wallet::masked(&c.number))
                ));
            }
            html.push_str("</ol>");
        }
        Response::page(self.texts.get(&self.req.locale, "list_title"), html)
    }

    /// 添加电子证照: types not bound yet.
    pub fn add(&self, certs: &[Certificate]) -> Response {
        let free: Vec<&&str> = wallet::TYPES.iter().filter(|k| !certs.iter().any(|c| c.kind == **k)).collect();
        let mut html = format!("<p>{}</p>", self.t(if free.is_empty() { "add_none_left" } else { "add_hint" }));
        html.push_str("<ul class=\"types\">");
        for k in free {
            html.push_str(&format!(
                "<li data-kind=\"{k}\"><a href=\"{}\">{}</a></li>",
                self.url(&format!("/bind?kind={k}")),
                self.type_name(k)
            ));
        }
        html.push_str("</ul>");
        html.push_str(&self.back());
        Response::page(self.texts.get(&self.req.locale, "add_title"), html)
    }

    /// 授权电子证照: authorise the binding or decline.
    pub fn bind(&self, kind: &str) -> Response {
        let html = format!(
            "<h2>{}</h2><p>{}</p><div class=\"buttons\">{}{}</div>",
            self.type_name(kind),
            self.t("bind_text"),
            self.post_button("/bind", &[("kind", kind), ("decision", "allow")], "bind_allow", ""),
            self.post_button("/bind", &[("kind", kind), ("decision", "deny")], "bind_deny", "secondary"),
        );
        Response::page(self.texts.get(&self.req.locale, "bind_title"), html)
    }

    fn fields(&self, c: &Certificate) -> String {
        let rows = [
            ("field_type", self.type_name(&c.kind)),
            ("field_number", esc(&c.number)),
            ("field_holder", esc(&c.holder)),
            ("field_issuer", esc(&c.issuer)),
            ("field_valid_from", esc(&human::iso_date(&c.valid_from, &self.req.locale))),
            ("field_valid_until", esc(&human::iso_date(&c.valid_until, &self.req.locale))),
        ];
        let body: String = rows.iter().map(|(k, v)| format!("<dt>{}</dt><dd>{v}</dd>", self.t(k))).collect();
        format!("<dl class=\"certificate\">{body}</dl>")
    }

    /// 证照详情: view, present, unbind (F2).
    pub fn detail(&self, c: &Certificate) -> Response {
        let html = format!(
            "{}<div class=\"buttons\">{}{}</div>{}",
            self.fields(c),
            self.post_button("/present", &[("kind", &c.kind)], "detail_present", ""),
            self.post_button("/unbind", &[("kind", &c.kind)], "detail_unbind", "secondary"),
            self.back()
        );
        Response::page(self.texts.get(&self.req.locale, "detail_title"), html)
    }

    pub fn presented(&self, c: &Certificate, token: &str, svg: &str, expires_at: i64) -> Response {
        let html = format!(
            "<h2>{}</h2><div class=\"qr\">{svg}</div><p>{} <time class=\"expires\">{}</time></p><details><summary>{}</summary><code class=\"presentation\">{}</code></details>{}",
            self.type_name(&c.kind),
            self.t("present_hint"),
            esc(&human::datetime(expires_at, &self.req.locale)),
            self.t("present_token"),
            esc(token),
            self.back()
        );
        Response::page(self.texts.get(&self.req.locale, "present_title"), html)
    }

    /// 证照排序: a position per certificate, then confirm or cancel (the
    /// manual's drag-and-drop, without script: the CSP allows none).
    pub fn sort(&self, certs: &[Certificate]) -> Response {
        let mut rows = String::new();
        for (i, c) in certs.iter().enumerate() {
            rows.push_str(&format!(
                "<li><label>{} <input type=\"number\" name=\"pos_{}\" value=\"{}\" min=\"1\"></label></li>",
                self.type_name(&c.kind),
                esc(&c.kind),
                i + 1
            ));
        }
        let html = format!(
            "<p>{}</p><form method=\"post\" action=\"{}\" class=\"form\">{}<ol class=\"sort\">{rows}</ol><div class=\"buttons\"><button type=\"submit\" name=\"decision\" value=\"confirm\">{}</button><button type=\"submit\" name=\"decision\" value=\"cancel\" class=\"secondary\">{}</button></div></form>",
            self.t("sort_hint"),
            self.url("/sort"),
            self.req.csrf_field(),
            self.t("sort_confirm"),
            self.t("sort_cancel")
        );
        Response::page(self.texts.get(&self.req.locale, "sort_title"), html)
    }
}
