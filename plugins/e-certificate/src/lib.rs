//! E-certificates (电子证照) as an idp plugin — F1–F3 (docs/requirements.md).
//! Users bind certificates from an issuing source (F1), view,
//! present, unbind and reorder them (F2); relying apps read the list only
//! through the consented scope `e_certificate` (F3) and verify
//! presentations with a client permitted `e_certificate.verify`.
mod issuer;
mod pages;
mod present;
mod wallet;

use idp_plugin_sdk::i18n::Texts;
use idp_plugin_sdk::{
    ClaimsRequest, Host, Localized, Manifest, Map, Plugin, Request, Response, RouteAuth, RouteSpec, ScopeSpec, Value,
    declare_plugin, json,
};
use issuer::Source;
use pages::View;
use wallet::Certificate;

pub const SCOPE_READ: &str = "e_certificate";
pub const SCOPE_VERIFY: &str = "e_certificate.verify";
pub const CLAIM: &str = "e_certificates";

const ZH: &str = include_str!("../locales/zh-CN.json");
const EN: &str = include_str!("../locales/en.json");
const BO: &str = include_str!("../locales/bo.json");

pub struct ECertificate {
    host: Host,
    texts: Texts,
    source: Source,
    /// Seconds a presentation stays valid (`presentation_ttl`, default 120).
    ttl: i64,
}

fn texts() -> Texts {
    Texts::new(ZH, EN).with("bo", BO)
}

fn localized(t: &Texts, key: &str) -> Localized {
    Localized::new(t.get("zh-CN", key), t.get("en", key))
}

impl Plugin for ECertificate {
    fn manifest() -> Manifest {
        let t = texts();
        let user = |m: &str, p: &str| RouteSpec::new(m, p, RouteAuth::User);
        Manifest {
            name: "e-certificate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: localized(&t, "plugin_name"),
            scopes: vec![
                ScopeSpec {
                    name: SCOPE_READ.into(),
                    description: localized(&t, "scope_read"),
                    claims: vec![CLAIM.into()],
                },
                ScopeSpec { name: SCOPE_VERIFY.into(), description: localized(&t, "scope_verify"), claims: vec![] },
            ],
            routes: vec![
                user("GET", "/"),
                user("GET", "/add"),
                user("GET", "/bind"),
                user("POST", "/bind"),
                user("GET", "/cert"),
                user("POST", "/present"),
                user("POST", "/unbind"),
                user("GET", "/sort"),
                user("POST", "/sort"),
                RouteSpec::new("POST", "/api/verify", RouteAuth::Api).with_scopes(&[SCOPE_VERIFY]),
                RouteSpec::new("GET", "/api/certificates", RouteAuth::Api).with_scopes(&[SCOPE_READ]),
                RouteSpec::new("GET", "/admin/stats", RouteAuth::Admin),
            ],
            // The issuing authority is asked by name and ID number, only
            // after the user authorises the binding (授权关联).
            profile_fields: vec!["name".into(), "id_number".into()],
        }
    }

    fn init(host: Host, settings: Value) -> Result<Self, String> {
        let source = Source::from_settings(&settings)?;
        let ttl = settings.get("presentation_ttl").and_then(Value::as_i64).unwrap_or(120).clamp(1, 600);
        Ok(ECertificate { host, texts: texts(), source, ttl })
    }

    /// F3: the bound list, in the user's order, for the consented scope.
    fn claims(&self, req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        if req.scopes.iter().any(|s| s == SCOPE_READ) {
            out.insert(CLAIM.into(), self.summaries(&req.subject)?);
        }
        Ok(out)
    }

    fn handle(&self, req: &Request) -> Result<Response, String> {
        let view = View { texts: &self.texts, req };
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/verify") => self.api_verify(req),
            ("GET", "/api/certificates") => match &req.subject {
                Some(sub) => Ok(Response::json(200, json!({ CLAIM: self.summaries(sub)? }))),
                None => Ok(Response::json(
                    400,
                    json!({ "error": "invalid_request", "error_description": "needs a user's token" }),
                )),
            },
            ("GET", "/admin/stats") => self.stats(),
            _ => {
                let sub = req.subject.as_deref().ok_or("user route without a subject")?;
                self.user_page(&view, sub)
            }
        }
    }
}

impl ECertificate {
    fn summaries(&self, sub: &str) -> Result<Value, String> {
        let list: Vec<Value> = wallet::list(&self.host, sub)?
            .iter()
            .map(|c| {
                json!({
                    "type": c.kind,
                    "name": self.texts.get("zh-CN", &format!("type_{}", c.kind)),
                    "number": c.number,
                    "holder": c.holder,
                    "issuer": c.issuer,
                    "valid_from": c.valid_from,
                    "valid_until": c.valid_until,
                })
            })
            .collect();
        Ok(Value::Array(list))
    }

    fn user_page(&self, view: &View, sub: &str) -> Result<Response, String> {
        let req = view.req;
        let kind = req.query("kind").or(req.form("kind")).unwrap_or_default();
        let known = wallet::TYPES.contains(&kind);
        let home = format!("{}/", req.base);
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => Ok(view.list(&wallet::list(&self.host, sub)?)),
            ("GET", "/add") => Ok(view.add(&wallet::list(&self.host, sub)?)),
            ("GET", "/bind") | ("POST", "/bind") if !known => {
                Ok(view.message(400, "add_title", "unknown_type", "/add"))
            }
            ("GET", "/bind") => Ok(view.bind(kind)),
            // 不授权: back to choosing a type.
            ("POST", "/bind") if req.form("decision") != Some("allow") => {
                Ok(Response::redirect(format!("{}/add", req.base)))
            }
            ("POST", "/bind") => self.bind(view, sub, kind),
            ("GET", "/cert") => match wallet::find(&self.host, sub, kind)? {
                Some(c) => Ok(view.detail(&c)),
                None => Ok(view.message(404, "detail_title", "not_found", "/")),
            },
            ("POST", "/present") => match wallet::find(&self.host, sub, kind)? {
                Some(c) => {
                    let (token, exp) = present::present(&self.host, sub, &c, self.ttl)?;
                    Ok(view.presented(&c, &token, &present::qr_svg(&token)?, exp))
                }
                None => Ok(view.message(404, "detail_title", "not_found", "/")),
            },
            ("POST", "/unbind") => {
                wallet::unbind(&self.host, sub, kind)?;
                Ok(Response::redirect(home))
            }
            ("GET", "/sort") => Ok(view.sort(&wallet::list(&self.host, sub)?)),
            ("POST", "/sort") => {
                if req.form("decision") == Some("confirm") {
                    let positions: Vec<(String, i64)> = req
                        .form
                        .iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix("pos_")?.to_string(), v.trim().parse().ok()?)))
                        .collect();
                    wallet::reorder(&self.host, sub, &positions)?;
                }
                Ok(Response::redirect(home))
            }
            _ => Ok(Response::not_found()),
        }
    }

    /// 授权关联: ask the source for the user's own certificate and bind it.
    fn bind(&self, view: &View, sub: &str, kind: &str) -> Result<Response, String> {
        let me = self.host.subject()?;
        let field = |k: &str| me.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (name, id_number) = (field("name"), field("id_number"));
        if name.is_empty() || id_number.is_empty() {
            return Ok(view.message(400, "bind_title", "bind_no_identity", "/add"));
        }
        let Some(issued) = self.source.issue(&self.host, kind, &name, &id_number)? else {
            return Ok(view.message(404, "bind_title", "bind_not_found", "/add"));
        };
        let cert = Certificate {
            kind: kind.into(),
            number: issued.number,
            holder: name,
            issuer: issued.issuer,
            valid_from: issued.valid_from,
            valid_until: issued.valid_until,
            bound_at: self.host.now(),
        };
        if !wallet::bind(&self.host, sub, cert)? {
            return Ok(view.message(409, "bind_title", "bind_already", "/"));
        }
        Ok(Response::redirect(format!("{}/", view.req.base)))
    }

    fn api_verify(&self, req: &Request) -> Result<Response, String> {
        let from_json = serde_json::from_str::<Value>(&req.body)
            .ok()
            .and_then(|v| v.get("presentation").and_then(Value::as_str).map(String::from));
        let token = from_json.or_else(|| req.form("presentation").map(String::from));
        match token {
            Some(t) => Ok(Response::json(200, present::verify(&self.host, &t)?)),
            None => Ok(Response::json(
                400,
                json!({ "error": "invalid_request", "error_description": "presentation is required" }),
            )),
        }
    }

    /// Admin: how many certificates of each type are bound, and by how
    /// many users.
    fn stats(&self) -> Result<Response, String> {
        let (holders, by_type) = wallet::census(&self.host)?;
        Ok(Response::json(200, json!({ "holders": holders, "bound": by_type })))
    }
}

declare_plugin!(ECertificate);

#[cfg(test)]
mod tests {
    #[test]
    fn locales_have_the_same_keys() {
        assert!(super::texts().missing().is_empty(), "{:?}", super::texts().missing());
        let t = super::texts();
        for kind in super::wallet::TYPES {
            assert_ne!(t.get("en", &format!("type_{kind}")), format!("type_{kind}"));
        }
    }
}
