//! 授权办事 log (seed 003 §2.1.5.2, E5): every time a relying app or a
//! relative obtains a person's code or data through an authorisation — an
//! app's token with the code scope, a guardian through the kin relation —
//! one row under the person's key, `access/<id number>/<time>-<seq>`, which
//! the person reads on the plugin's `/authorisations` page as "who, what,
//! when" in words.
use crate::util;
use idp_plugin_sdk::{Host, Order};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Access {
    /// `app` (a relying app, by client id) or `kin` (a guardian).
    pub who_kind: String,
    /// The client id, or the guardian's masked name.
    pub who: String,
    /// How the person reads `who`: the app's display name (rows written
    /// before it was kept have none and show `who`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `code` (the health code) or `lab` (nucleic-acid results).
    pub what: String,
    pub at: i64,
}

fn prefix(key: &str) -> String {
    format!("access/{key}/")
}

/// Logs one access to `key`'s code or data; `name` is how the person reads
/// `who` when that is not `who` itself (an app's display name).
pub fn record(host: &Host, key: &str, who_kind: &str, who: &str, name: Option<&str>, what: &str) -> Result<(), String> {
    let at = host.now();
    let name = name.map(|n| n.chars().take(80).collect());
    let a = Access { who_kind: who_kind.into(), who: who.chars().take(80).collect(), name, what: what.into(), at };
    let raw = serde_json::to_string(&a).map_err(|e| e.to_string())?;
    let seq = host.kv_incr("seq/access", 1, None)?;
    host.kv_put(&format!("{}{at:012}-{}", prefix(key), util::seq_key(seq)), &raw, None)
}

/// The newest `limit` accesses to `key`'s code or data, newest first.
pub fn list(host: &Host, key: &str, limit: u32) -> Result<Vec<Access>, String> {
    let page = host.kv_page(&prefix(key), None, Order::Desc, limit.clamp(1, 500))?;
    Ok(page.rows.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
}
