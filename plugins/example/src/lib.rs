//! Example plugin (see plugins/README.md): scope `example` releases the
//! claim `example_greeting`; `/hello` is a themed page for the signed-in
//! user that counts visits in the provider's database; `/api/greeting` needs
//! an access token with scope `example`; `/admin/visits` is for the admin.
use idp_plugin_sdk::{
    ClaimsRequest, Host, Localized, Manifest, Map, Plugin, Request, Response, RouteAuth, RouteSpec, ScopeSpec, Value,
    declare_plugin, escape_html, json,
};

pub struct Example {
    host: Host,
    greeting: String,
}

impl Example {
    fn greeting_for(&self, has_subject: bool) -> Result<String, String> {
        if !has_subject {
            return Ok(format!("{}, app", self.greeting)); // a client_credentials token
        }
        // What the host reveals depends on the granted scopes: with
        // `profile` there is a name, without it only `sub`.
        let who = self.host.subject()?;
        let name = who.get("name").or_else(|| who.get("sub")).and_then(Value::as_str).unwrap_or("?");
        Ok(format!("{}, {name}", self.greeting))
    }
}

impl Plugin for Example {
    fn manifest() -> Manifest {
        Manifest {
            name: "example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Localized::new("示例插件", "Example plugin"),
            scopes: vec![ScopeSpec {
                name: "example".into(),
                description: Localized::new("示例插件的问候语", "A greeting from the example plugin"),
                claims: vec!["example_greeting".into()],
            }],
            routes: vec![
                RouteSpec::new("GET", "/hello", RouteAuth::User),
                RouteSpec::new("GET", "/api/greeting", RouteAuth::Api).with_scopes(&["example"]),
                RouteSpec::new("GET", "/admin/visits", RouteAuth::Admin),
            ],
            profile_fields: vec!["name".into()],
        }
    }

    fn init(host: Host, settings: Value) -> Result<Self, String> {
        let greeting = settings.get("greeting").and_then(Value::as_str).unwrap_or("Hello").to_string();
        Ok(Example { host, greeting })
    }

    fn claims(&self, _req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        out.insert("example_greeting".into(), Value::from(self.greeting_for(true)?));
        Ok(out)
    }

    fn handle(&self, req: &Request) -> Result<Response, String> {
        match req.path.as_str() {
            "/hello" => {
                let visits = self.host.kv_get("visits")?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
                self.host.kv_put("visits", &visits.to_string(), None)?;
                let html = format!("<p class=\"greeting\">{}</p>", escape_html(&self.greeting_for(true)?));
                Ok(Response::page("Example", html))
            }
            "/api/greeting" => Ok(Response::json(
                200,
                json!({
                    "greeting": self.greeting_for(req.subject.is_some())?,
                    "client_id": req.client_id,
                    "at": self.host.now(),
                }),
            )),
            "/admin/visits" => {
                let visits = self.host.kv_get("visits")?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                Ok(Response::json(200, json!({ "visits": visits })))
            }
            _ => Ok(Response::not_found()),
        }
    }
}

declare_plugin!(Example);
