//! Misbehaves on purpose so tests can prove failure containment: `claims`
//! panics, `/boom` panics, `/fail` returns an error, `/slow` outlives the
//! host's time limit, `/ok` works.
#![allow(clippy::panic)] // panicking is this plugin's job
use idp_plugin_sdk::{
    ClaimsRequest, Host, Localized, Manifest, Map, Plugin, Request, Response, RouteAuth, RouteSpec, ScopeSpec, Value,
    declare_plugin, json,
};

pub struct Panicky;

impl Plugin for Panicky {
    fn manifest() -> Manifest {
        Manifest {
            name: "panicky".into(),
            version: "0.0.1".into(),
            description: Localized::new("故障测试插件", "Faulty test plugin"),
            scopes: vec![ScopeSpec {
                name: "panicky".into(),
                description: Localized::new("会崩溃的数据", "Data that crashes"),
                claims: vec!["panicky_value".into()],
            }],
            routes: ["/boom", "/fail", "/slow", "/ok"]
                .iter()
                .map(|p| RouteSpec::new("GET", p, RouteAuth::User))
                .collect(),
            profile_fields: vec![],
        }
    }
    fn init(_host: Host, _settings: Value) -> Result<Self, String> {
        Ok(Panicky)
    }
    fn claims(&self, _req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        panic!("claims exploded")
    }
    fn handle(&self, req: &Request) -> Result<Response, String> {
        match req.path.as_str() {
            "/boom" => panic!("route exploded"),
            "/fail" => Err("route failed".into()),
            "/slow" => {
                std::thread::sleep(std::time::Duration::from_secs(3));
                Ok(Response::json(200, json!({ "late": true })))
            }
            _ => Ok(Response::json(200, json!({ "ok": true }))),
        }
    }
}

declare_plugin!(Panicky);
