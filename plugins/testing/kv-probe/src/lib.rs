//! Exposes the host's storage callbacks to tests over HTTP (admin token):
//! `POST /admin/put` writes `{"rows":[[key, value, ttl|null], …]}`,
//! `GET /admin/page?prefix&cursor&desc&limit` returns one `kv_page`,
//! `GET /admin/list?prefix` the `kv_list` of the same prefix.
use idp_plugin_sdk::{
    ClaimsRequest, Host, Localized, Manifest, Map, Order, Plugin, Request, Response, RouteAuth, RouteSpec, Value,
    declare_plugin, json,
};

pub struct KvProbe {
    host: Host,
}

impl Plugin for KvProbe {
    fn manifest() -> Manifest {
        Manifest {
            name: "kv-probe".into(),
            version: "0.0.1".into(),
            description: Localized::new("存储测试插件", "Storage test plugin"),
            scopes: vec![],
            routes: vec![
                RouteSpec::new("POST", "/admin/put", RouteAuth::Admin),
                RouteSpec::new("GET", "/admin/page", RouteAuth::Admin),
                RouteSpec::new("GET", "/admin/list", RouteAuth::Admin),
            ],
            profile_fields: vec![],
        }
    }
    fn init(host: Host, _settings: Value) -> Result<Self, String> {
        Ok(KvProbe { host })
    }
    fn claims(&self, _req: &ClaimsRequest) -> Result<Map<String, Value>, String> {
        Ok(Map::new())
    }
    fn handle(&self, req: &Request) -> Result<Response, String> {
        let prefix = req.query("prefix").unwrap_or_default();
        match req.path.as_str() {
            "/admin/put" => {
                let body: Value = serde_json::from_str(&req.body).map_err(|e| e.to_string())?;
                let rows = body.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
                for row in &rows {
                    let (Some(key), Some(value)) =
                        (row.get(0).and_then(Value::as_str), row.get(1).and_then(Value::as_str))
                    else {
                        return Ok(Response::json(400, json!({ "error": "rows are [key, value, ttl]" })));
                    };
                    self.host.kv_put(key, value, row.get(2).and_then(Value::as_i64))?;
                }
                Ok(Response::json(200, json!({ "written": rows.len() })))
            }
            "/admin/page" => {
                let order = if req.query("desc") == Some("true") { Order::Desc } else { Order::Asc };
                let limit = req.query("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
                let page = self.host.kv_page(prefix, req.query("cursor"), order, limit)?;
                Ok(Response::json(200, json!({ "rows": page.rows, "next": page.next })))
            }
            "/admin/list" => Ok(Response::json(200, json!({ "rows": self.host.kv_list(prefix)? }))),
            _ => Ok(Response::not_found()),
        }
    }
}

declare_plugin!(KvProbe);
