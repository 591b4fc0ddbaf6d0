//! The citizen's pages (HTML fragments the provider wraps in its theme);
//! every text comes from the locale files.
use crate::store::{self, Booking, Service, Slot};
use idp_plugin_sdk::i18n::Texts;
use idp_plugin_sdk::{Request, Response, escape_html as esc};

pub struct View<'a> {
    pub texts: &'a Texts,
    pub req: &'a Request,
    pub offset: i64,
}

impl View<'_> {
    fn t(&self, key: &str) -> String {
        esc(self.texts.get(&self.req.locale, key))
    }
    fn title(&self, key: &str) -> String {
        self.texts.get(&self.req.locale, key).into()
    }
    fn url(&self, path: &str) -> String {
        esc(&format!("{}{path}", self.req.base))
    }
    fn time(&self, start: i64, end: i64) -> String {
        let (s, e) = (store::format_time(start, self.offset), store::format_time(end, self.offset));
        let same_day = s.get(..10) == e.get(..10);
        esc(&format!("{s} – {}", if same_day { e.get(11..).unwrap_or(&e) } else { &e }))
    }
    fn back(&self) -> String {
        format!("<p><a href=\"{}\">{}</a></p>", self.url("/"), self.t("back"))
    }

    pub fn message(&self, status: u16, title_key: &str, message_key: &str) -> Response {
        let html = format!(
            "<p class=\"notice\" data-error=\"{}\">{}</p>{}",
            esc(message_key),
            self.t(message_key),
            self.back()
        );
        Response::Page { status, title: self.title(title_key), html }
    }

    /// 码上预约: my bookings, then the services.
    pub fn home(&self, bookings: &[Booking], services: &[Service]) -> Response {
        let mut html = format!("<h2>{}</h2>", self.t("my_bookings"));
        if bookings.is_empty() {
            html.push_str(&format!("<p class=\"empty\">{}</p>", self.t("no_bookings")));
        } else {
            html.push_str("<ul class=\"bookings\">");
            for b in bookings {
                let name = services.iter().find(|s| s.id == b.service).map(|s| s.name.get(&self.req.locale));
                html.push_str(&format!(
                    "<li data-code=\"{code}\" data-status=\"{status}\"><a href=\"{href}\">{name}</a> {time} {holder} <span class=\"status\">{label}</span></li>",
                    code = esc(&b.code),
                    status = esc(&b.status),
                    href = self.url(&format!("/booking?code={}", b.code)),
                    name = esc(name.unwrap_or(&b.service)),
                    time = self.time(b.start, b.end),
                    holder = esc(&b.holder),
                    label = self.t(&format!("status_{}", b.status)),
                ));
            }
            html.push_str("</ul>");
        }
        html.push_str(&format!("<h2>{}</h2>", self.t("services")));
        if services.is_empty() {
            html.push_str(&format!("<p class=\"empty\">{}</p>", self.t("no_services")));
        } else {
            html.push_str("<ul class=\"services\">");
            for s in services {
                html.push_str(&format!(
                    "<li data-service=\"{}\"><a href=\"{}\">{}</a> {}</li>",
                    esc(&s.id),
                    self.url(&format!("/service?id={}", s.id)),
                    esc(s.name.get(&self.req.locale)),
                    esc(&s.place)
                ));
            }
            html.push_str("</ul>");
        }
        Response::page(self.title("home_title"), html)
    }

    /// A service's open slots with places left, each with a booking form
    /// (for the user or a relative they act for).
    pub fn service(&self, svc: &Service, slots: &[(Slot, i64)], relatives: &[(String, String)]) -> Response {
        let mut html = format!("<p class=\"place\">{}</p>", esc(&svc.place));
        if slots.is_empty() {
            html.push_str(&format!("<p class=\"empty\">{}</p>", self.t("no_slots")));
        }
        let mut who = format!("<option value=\"self\">{}</option>", self.t("myself"));
        for (id, name) in relatives {
            who.push_str(&format!("<option value=\"{}\">{}</option>", esc(id), esc(name)));
        }
        html.push_str("<ul class=\"slots\">");
        for (s, left) in slots {
            let form = if *left > 0 {
                format!(
                    "<form method=\"post\" action=\"{}\" class=\"form inline\">{}<input type=\"hidden\" name=\"service\" value=\"{}\"><input type=\"hidden\" name=\"slot\" value=\"{}\"><label>{} <select name=\"for\">{who}</select></label> <button type=\"submit\">{}</button></form>",
                    self.url("/book"),
                    self.req.csrf_field(),
                    esc(&s.service),
                    esc(&s.id),
                    self.t("book_for"),
                    self.t("book")
                )
            } else {
                String::new()
            };
            html.push_str(&format!(
                "<li data-slot=\"{}\" data-left=\"{left}\">{} <span class=\"left\">{}: {left}</span> {form}</li>",
                esc(&s.id),
                self.time(s.start, s.end),
                self.t("remaining"),
            ));
        }
        html.push_str("</ul>");
        html.push_str(&self.back());
        Response::page(format!("{} · {}", svc.name.get(&self.req.locale), self.title("service_title")), html)
    }

    /// A booking: details, the code and its QR (while booked), cancel.
    pub fn booking(
        &self,
        b: &Booking,
        svc: Option<&Service>,
        ticket: Option<&str>,
        qr: Option<&str>,
        cancellable: bool,
    ) -> Response {
        let name = svc.map(|s| s.name.get(&self.req.locale).to_string()).unwrap_or_else(|| b.service.clone());
        let place = svc.map(|s| s.place.clone()).unwrap_or_default();
        let row = |k: &str, v: &str| format!("<dt>{}</dt><dd>{v}</dd>", self.t(k));
        let mut html = String::from("<dl class=\"booking\">");
        html.push_str(&row("field_service", &esc(&name)));
        html.push_str(&row("field_time", &self.time(b.start, b.end)));
        html.push_str(&row("field_place", &esc(&place)));
        html.push_str(&row("field_holder", &esc(&b.holder)));
        html.push_str(&row("field_code", &format!("<code class=\"booking-code\">{}</code>", esc(&b.code))));
        html.push_str(&row(
            "field_status",
            &format!(
                "<span class=\"status\" data-status=\"{}\">{}</span>",
                esc(&b.status),
                self.t(&format!("status_{}", b.status))
            ),
        ));
        html.push_str("</dl>");
        if let (Some(ticket), Some(qr)) = (ticket, qr) {
            html.push_str(&format!(
                "<p>{}</p><div class=\"qr\">{qr}</div><p><code class=\"ticket\">{}</code></p>",
                self.t("show_hint"),
                esc(ticket)
            ));
        }
        if b.status == "booked" && cancellable {
            html.push_str(&format!(
                "<form method=\"post\" action=\"{}\" class=\"form inline\">{}<input type=\"hidden\" name=\"code\" value=\"{}\"><button type=\"submit\" class=\"danger\">{}</button></form>",
                self.url("/cancel"),
                self.req.csrf_field(),
                esc(&b.code),
                self.t("cancel")
            ));
        }
        html.push_str(&self.back());
        Response::page(self.title("booking_title"), html)
    }
}

/// The ticket as an inline SVG QR code (the provider's CSP allows inline SVG).
pub fn qr_svg(data: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| format!("QR: {e}"))?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).build();
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    })
}
