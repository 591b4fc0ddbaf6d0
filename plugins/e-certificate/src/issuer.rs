//! Where certificates come from (F1): a sandbox issuer answering from
//! fixture identities, or an HTTP adapter for a real issuing authority,
//! reached through the host's outbound POST so the plugin needs no HTTP
//! client. Both check the holder's name against the ID number.
use idp_plugin_sdk::{Host, Value, json};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Issued {
    pub number: String,
    pub issuer: String,
    pub valid_from: String,
    pub valid_until: String,
}

#[derive(Deserialize)]
pub struct Identity {
    id_number: String,
    name: String,
    certificates: std::collections::BTreeMap<String, Issued>,
}

#[derive(Deserialize)]
struct Fixture {
    identities: Vec<Identity>,
}

pub enum Source {
    Sandbox(Vec<Identity>),
    Http { url: String, timeout_ms: u64 },
}

const SANDBOX: &str = include_str!("../fixtures/sandbox.json");

impl Source {
    /// From the plugin settings: `source = "sandbox"` (default, optionally
    /// with `fixture` = a JSON text of the same shape) or `source = "http"`
    /// with `issuer_url` (and `timeout_ms`).
    pub fn from_settings(settings: &Value) -> Result<Source, String> {
        match settings.get("source").and_then(Value::as_str).unwrap_or("sandbox") {
            "sandbox" => {
                let text = settings.get("fixture").and_then(Value::as_str).unwrap_or(SANDBOX);
                let f: Fixture = serde_json::from_str(text).map_err(|e| format!("sandbox fixture: {e}"))?;
                Ok(Source::Sandbox(f.identities))
            }
            "http" => {
                let url = settings.get("issuer_url").and_then(Value::as_str).ok_or("source http needs issuer_url")?;
                let timeout_ms = settings.get("timeout_ms").and_then(Value::as_u64).unwrap_or(3000);
                Ok(Source::Http { url: url.to_string(), timeout_ms })
            }
            other => Err(format!("unknown source `{other}`: allowed sandbox, http")),
        }
    }

    /// The holder's certificate of `kind`, `None` when the authority has none.
    pub fn issue(&self, host: &Host, kind: &str, name: &str, id_number: &str) -> Result<Option<Issued>, String> {
        match self {
            Source::Sandbox(identities) => Ok(identities
                .iter()
                .find(|i| i.id_number == id_number && i.name == name)
                .and_then(|i| i.certificates.get(kind).cloned())),
            Source::Http { url, timeout_ms } => {
                let body = json!({ "type": kind, "name": name, "id_number": id_number });
                let (status, reply) = host.http_post_json(url, &body, *timeout_ms)?;
                match status {
                    200 => {
                        let cert = reply.get("certificate").cloned().ok_or("issuer reply has no certificate")?;
                        serde_json::from_value(cert).map(Some).map_err(|e| format!("issuer reply: {e}"))
                    }
                    404 => Ok(None),
                    s => Err(format!("issuer answered HTTP {s}")),
                }
            }
        }
    }
}
