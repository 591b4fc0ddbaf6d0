//! Appointments (码上预约, G3) as an idp plugin, on the public SDK only.
//! An administrator defines services and their time slots; citizens book a
//! place with their real-name identity (or for a relative they act for
//! through the kin relation), see and cancel their bookings and show a
//! signed QR code at the counter, which the service's scanner app checks
//! in through `/api/check-in` (scope `appointments.scan`). Relying apps
//! read a citizen's bookings with the consented scope `appointments`.
//! Capacity is one atomic counter per slot: two bookings racing for the
//! last place cannot both take it (see `store.rs`).
mod pages;
mod store;

use idp_plugin_sdk::i18n::Texts;
use idp_plugin_sdk::{
    ClaimsRequest, Host, Level, Localized, Manifest, Map, Plugin, Request, Response, RouteAuth, RouteSpec, ScopeSpec,
    Value, Verified, declare_plugin, json,
};
use pages::View;
use store::{Booking, Refused, Service, Slot};

pub const SCOPE_READ: &str = "appointments";
pub const SCOPE_SCAN: &str = "appointments.scan";
pub const CLAIM: &str = "appointments";

const ZH: &str = include_str!("../locales/zh-CN.json");
const EN: &str = include_str!("../locales/en.json");
const BO: &str = include_str!("../locales/bo.json");

pub struct Appointments {
    host: Host,
    texts: Texts,
    /// Minutes east of UTC for shown times (`utc_offset_minutes`, default 480, Beijing).
    offset: i64,
}

fn texts() -> Texts {
    Texts::new(ZH, EN).with("bo", BO)
}

fn localized(t: &Texts, key: &str) -> Localized {
    Localized::new(t.get("zh-CN", key), t.get("en", key))
}

fn bad_request(msg: &str) -> Response {
    Response::json(400, json!({ "error": "invalid_request", "error_description": msg }))
}

impl Plugin for Appointments {
    fn manifest() -> Manifest {
        let t = texts();
        let user = |m: &str, p: &str| RouteSpec::new(m, p, RouteAuth::User);
        let admin = |m: &str, p: &str| RouteSpec::new(m, p, RouteAuth::Admin);
        Manifest {
            name: "appointments".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: localized(&t, "plugin_name"),
            scopes: vec![
                ScopeSpec {
                    name: SCOPE_READ.into(),
                    description: localized(&t, "scope_read"),
                    claims: vec![CLAIM.into()],
                },
                ScopeSpec { name: SCOPE_SCAN.into(), description: localized(&t, "scope_scan"), claims: vec![] },
            ],
            routes: vec![
                user("GET", "/"),
                user("GET", "/service"),
                user("POST", "/book"),
                user("GET", "/booking"),
                user("POST", "/cancel"),
                RouteSpec::new("GET", "/api/bookings", RouteAuth::Api).with_scopes(&[SCOPE_READ]),
                RouteSpec::new("POST", "/api/check-in", RouteAuth::Api).with_scopes(&[SCOPE_SCAN]),
                admin("GET", "/admin/services"),
                admin("POST", "/admin/services"),
                admin("POST", "/admin/slots"),
            ],
            // Bookings are made with the real-name identity on record.
            profile_fields: vec!["name".into(), "id_number".into()],
        }
    }

    fn init(host: Host, settings: Value) -> Result<Self, String> {
        let offset = settings.get("utc_offset_minutes").and_then(Value::as_i64).unwrap_or(480).clamp(-720, 840);
        Ok(Appointments { host, texts: texts(), offset })
    }

    fn claims(&self, req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        if req.scopes.iter().any(|s| s == SCOPE_READ) {
            out.insert(CLAIM.into(), self.summaries(&req.subject)?);
        }
        Ok(out)
    }

    fn handle(&self, req: &Request) -> Result<Response, String> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/bookings") => match &req.subject {
                Some(sub) => Ok(Response::json(200, json!({ CLAIM: self.summaries(sub)? }))),
                None => Ok(bad_request("needs a user's token")),
            },
            ("POST", "/api/check-in") => self.check_in(req),
            ("GET", "/admin/services") => self.admin_list(),
            ("POST", "/admin/services") => self.admin_service(req),
            ("POST", "/admin/slots") => self.admin_slot(req),
            _ => {
                let sub = req.subject.as_deref().ok_or("user route without a subject")?;
                self.user_page(&View { texts: &self.texts, req, offset: self.offset }, sub)
            }
        }
    }
}

impl Appointments {
    fn service_name(&self, id: &str, locale: &str) -> Result<String, String> {
        Ok(store::service(&self.host, id)?.map(|s| s.name.get(locale).to_string()).unwrap_or_else(|| id.into()))
    }

    fn summary(&self, b: &Booking) -> Result<Value, String> {
        Ok(json!({
            "code": b.code,
            "service": b.service,
            "service_name": self.service_name(&b.service, "zh-CN")?,
            "start": b.start,
            "end": b.end,
            "holder": b.holder,
            "for_relative": b.relation_id.is_some(),
            "status": b.status,
        }))
    }

    fn summaries(&self, sub: &str) -> Result<Value, String> {
        let list: Result<Vec<Value>, String> =
            store::bookings_of(&self.host, sub)?.iter().map(|b| self.summary(b)).collect();
        Ok(Value::Array(list?))
    }

    fn user_page(&self, view: &View, sub: &str) -> Result<Response, String> {
        let req = view.req;
        let now = self.host.now();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => Ok(view.home(&store::bookings_of(&self.host, sub)?, &store::services(&self.host)?)),
            ("GET", "/service") => {
                let Some(svc) = store::service(&self.host, req.query("id").unwrap_or_default())? else {
                    return Ok(view.message(404, "service_title", "not_found"));
                };
                let mut open = Vec::new();
                for s in store::slots(&self.host, &svc.id)?.into_iter().filter(|s| s.start > now) {
                    let left = (s.capacity - store::taken(&self.host, &s)?).max(0);
                    open.push((s, left));
                }
                let relatives = self.relatives()?;
                Ok(view.service(&svc, &open, &relatives))
            }
            ("POST", "/book") => self.book(view, sub),
            ("GET", "/booking") => match store::booking(&self.host, req.query("code").unwrap_or_default())? {
                Some(b) if b.sub == sub => {
                    let svc = store::service(&self.host, &b.service)?;
                    let ticket = if b.status == "booked" { Some(self.ticket(&b)?) } else { None };
                    let qr = ticket.as_deref().map(pages::qr_svg).transpose()?;
                    Ok(view.booking(&b, svc.as_ref(), ticket.as_deref(), qr.as_deref(), b.start > now))
                }
                _ => Ok(view.message(404, "booking_title", "not_found")),
            },
            ("POST", "/cancel") => {
                let code = req.form("code").unwrap_or_default();
                let Some(b) = store::booking(&self.host, code)?.filter(|b| b.sub == sub) else {
                    return Ok(view.message(404, "booking_title", "not_found"));
                };
                if b.start <= now {
                    return Ok(view.message(409, "booking_title", "slot_past"));
                }
                if store::transition(&self.host, code, "cancelled", None)?.is_none() {
                    return Ok(view.message(409, "booking_title", "not_cancellable"));
                }
                self.host.log(Level::Info, &format!("appointment {code} cancelled by its holder"));
                Ok(Response::redirect(format!("{}/", req.base)))
            }
            _ => Ok(Response::not_found()),
        }
    }

    /// Relatives the user may act for (kin relations in force).
    fn relatives(&self) -> Result<Vec<(String, String)>, String> {
        let rel = self.host.relations()?;
        Ok(rel
            .get("relatives")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        Some((
                            r.get("relation_id")?.as_str()?.to_string(),
                            r.get("masked_name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn book(&self, view: &View, sub: &str) -> Result<Response, String> {
        let req = view.req;
        let (svc, slot_id) = (req.form("service").unwrap_or_default(), req.form("slot").unwrap_or_default());
        let Some(slot) = store::slot(&self.host, svc, slot_id)? else {
            return Ok(view.message(404, "service_title", "not_found"));
        };
        if slot.start <= self.host.now() {
            return Ok(view.message(409, "service_title", "slot_past"));
        }
        // Who the place is for: the user, or a relative through the kin relation.
        let (holder, relation_id) = match req.form("for").filter(|f| !f.is_empty() && *f != "self") {
            Some(rel) => match self.relatives()?.into_iter().find(|(id, _)| id == rel) {
                Some((id, masked)) => (masked, Some(id)),
                None => return Ok(view.message(403, "service_title", "unknown_relative")),
            },
            None => {
                let me = self.host.subject()?;
                let field = |k: &str| me.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                if field("name").is_empty() || field("id_number").is_empty() {
                    return Ok(view.message(403, "service_title", "no_identity"));
                }
                (store::mask_name(&field("name")), None)
            }
        };
        let person = relation_id.clone().unwrap_or_else(|| sub.to_string());
        let draft = Booking {
            code: String::new(),
            sub: sub.into(),
            service: slot.service.clone(),
            slot: slot.id.clone(),
            start: slot.start,
            end: slot.end,
            holder,
            relation_id,
            status: "booked".into(),
            created_at: self.host.now(),
            changed_at: None,
            checked_in_by: None,
        };
        match store::book(&self.host, &slot, draft, &person)? {
            Ok(b) => {
                self.host.log(Level::Info, &format!("appointment {} booked for {}/{}", b.code, b.service, b.slot));
                Ok(Response::redirect(format!("{}/booking?code={}", req.base, b.code)))
            }
            Err(Refused::Full) => Ok(view.message(409, "service_title", "slot_full")),
            Err(Refused::AlreadyBooked) => Ok(view.message(409, "service_title", "already_booked")),
        }
    }

    /// The signed ticket behind the QR code: the booking code, valid until
    /// the slot ends (at most the host's 7 days; shown again it is renewed).
    fn ticket(&self, b: &Booking) -> Result<String, String> {
        let ttl = (b.end - self.host.now() + 3600).clamp(60, 7 * 86_400);
        self.host.sign(&json!({ "booking": b.code, "service": b.service }), ttl)
    }

    /// The service's scanner app checks a ticket (or a typed booking code)
    /// in: valid once, only while booked.
    fn check_in(&self, req: &Request) -> Result<Response, String> {
        let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        let field = |k: &str| body.get(k).and_then(Value::as_str).or(req.form(k)).map(String::from);
        let rejected = |reason: &str| Ok(Response::json(200, json!({ "valid": false, "reason": reason })));
        let code = match (field("ticket"), field("code")) {
            (Some(t), _) => match self.host.verify(&t)? {
                Verified::Valid(c) => match c.get("booking").and_then(Value::as_str) {
                    Some(code) => code.to_string(),
                    None => return rejected("invalid"),
                },
                Verified::Expired => return rejected("expired"),
                Verified::Invalid => return rejected("invalid"),
            },
            (None, Some(code)) => code,
            (None, None) => return Ok(bad_request("ticket or code is required")),
        };
        let Some(b) = store::booking(&self.host, &code)? else { return rejected("unknown") };
        if b.status == "cancelled" {
            return rejected("cancelled");
        }
        if b.status == "checked_in" {
            return rejected("used");
        }
        if self.host.now() > b.end {
            return rejected("expired");
        }
        let Some(done) = store::transition(&self.host, &code, "checked_in", req.client_id.as_deref())? else {
            return rejected("used");
        };
        self.host.log(Level::Info, &format!("appointment {code} checked in"));
        Ok(Response::json(200, json!({ "valid": true, "booking": self.summary(&done)? })))
    }

    fn admin_list(&self) -> Result<Response, String> {
        let mut out = Vec::new();
        for svc in store::services(&self.host)? {
            let mut slots = Vec::new();
            for s in store::slots(&self.host, &svc.id)? {
                let taken = store::taken(&self.host, &s)?;
                slots.push(
                    json!({ "id": s.id, "start": s.start, "end": s.end, "capacity": s.capacity, "taken": taken }),
                );
            }
            out.push(json!({ "id": svc.id, "name": svc.name, "place": svc.place, "slots": slots }));
        }
        Ok(Response::json(200, json!({ "services": out })))
    }

    /// Adds or edits a service: `{"id","name":{"zh-CN","en"},"place"}`.
    fn admin_service(&self, req: &Request) -> Result<Response, String> {
        let Ok(svc) = serde_json::from_str::<Service>(&req.body) else {
            return Ok(bad_request("expected {\"id\",\"name\":{\"zh-CN\",\"en\"},\"place\"}"));
        };
        if !store::valid_id(&svc.id) || svc.name.zh_cn.trim().is_empty() || svc.name.en.trim().is_empty() {
            return Ok(bad_request("id: lower-case letters, digits and -; both names are required"));
        }
        store::put_service(&self.host, &svc)?;
        Ok(Response::json(200, json!({ "service": svc })))
    }

    /// Adds a slot or changes its end and capacity:
    /// `{"service","start","end","capacity"}` (Unix seconds).
    fn admin_slot(&self, req: &Request) -> Result<Response, String> {
        let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        let num = |k: &str| body.get(k).and_then(Value::as_i64);
        let service = body.get("service").and_then(Value::as_str).unwrap_or_default();
        let (Some(start), Some(end), Some(capacity)) = (num("start"), num("end"), num("capacity")) else {
            return Ok(bad_request("start, end and capacity are required"));
        };
        if store::service(&self.host, service)?.is_none() {
            return Ok(Response::json(404, json!({ "error": "unknown_service" })));
        }
        if start <= 0 || end <= start || !(1..=100_000).contains(&capacity) {
            return Ok(bad_request("needs 0 < start < end and 1 <= capacity <= 100000"));
        }
        let slot = Slot { service: service.into(), id: store::slot_id(start), start, end, capacity };
        store::put_slot(&self.host, &slot)?;
        Ok(Response::json(200, json!({ "slot": slot })))
    }
}

declare_plugin!(Appointments);

#[cfg(test)]
mod tests {
    #[test]
    fn locales_have_the_same_keys() {
        assert!(super::texts().missing().is_empty(), "{:?}", super::texts().missing());
    }
}
