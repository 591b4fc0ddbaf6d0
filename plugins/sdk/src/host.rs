//! Safe access to the services the provider passes at `init`.
use crate::abi::{self, ABI_VERSION, HostFn, HostTable};
use serde_json::{Map, Value, json};

/// Handle to the host's callbacks; cheap to copy, usable from any thread.
#[derive(Clone, Copy)]
pub struct Host {
    table: &'static HostTable,
}

// SAFETY: the host guarantees its callbacks are thread-safe and the table
// lives for the rest of the process (plugins are never unloaded).
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

#[derive(Debug, Clone, Copy)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Key order of a [`Host::kv_page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// One page of rows and where the next one starts.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct KvPage {
    pub rows: Vec<(String, String)>,
    pub next: Option<String>,
}

/// Outcome of checking a token this plugin had the host sign.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified {
    Valid(Map<String, Value>),
    Expired,
    Invalid,
}

impl Host {
    /// Checks the host's half of the handshake before reading the table.
    ///
    /// # Safety
    /// `ptr` must be null or point to a host table that outlives the process.
    pub(crate) unsafe fn from_raw(ptr: *const HostTable) -> Result<Self, String> {
        if ptr.is_null() {
            return Err("host table is null".into());
        }
        // Read the two leading fields only, then the rest once they match.
        let version = unsafe { std::ptr::read(ptr as *const u32) };
        let size = unsafe { std::ptr::read((ptr as *const u32).add(1)) };
        if version != ABI_VERSION || (size as usize) < std::mem::size_of::<HostTable>() {
            return Err(format!("host ABI {version} (table {size} bytes); this plugin speaks ABI {ABI_VERSION}"));
        }
        Ok(Host { table: unsafe { &*ptr } })
    }

    fn call(&self, f: HostFn, input: Value) -> Result<Value, String> {
        let bytes = serde_json::to_vec(&input).map_err(|e| e.to_string())?;
        let buf = unsafe { f(self.table.ctx, bytes.as_ptr(), bytes.len()) };
        let reply = unsafe { buf.as_slice() }.to_vec();
        unsafe { (self.table.free)(self.table.ctx, buf) };
        abi::open_envelope(&reply).map_err(|(m, _)| m)
    }

    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        };
        let _ = self.call(self.table.log, json!({ "level": level, "message": message }));
    }

    /// Unix seconds by the provider's clock.
    pub fn now(&self) -> i64 {
        unsafe { (self.table.now)(self.table.ctx) }
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.call(self.table.kv_get, json!({ "key": key }))?.as_str().map(String::from))
    }

    /// Stores `value` under `key`, optionally expiring after `ttl` seconds.
    pub fn kv_put(&self, key: &str, value: &str, ttl: Option<i64>) -> Result<(), String> {
        self.call(self.table.kv_put, json!({ "key": key, "value": value, "ttl": ttl })).map(|_| ())
    }

    pub fn kv_delete(&self, key: &str) -> Result<bool, String> {
        Ok(self.call(self.table.kv_delete, json!({ "key": key }))?.as_bool().unwrap_or(false))
    }

    /// Compare-and-swap: writes `value` only if the live value is
    /// `expected` (`None`: only if the key is absent or expired). Returns
    /// whether this write won; of two racing writers exactly one does.
    pub fn kv_put_if(&self, key: &str, expected: Option<&str>, value: &str, ttl: Option<i64>) -> Result<bool, String> {
        let v =
            self.call(self.table.kv_put_if, json!({ "key": key, "expected": expected, "value": value, "ttl": ttl }))?;
        v.as_bool().ok_or_else(|| "host returned no outcome".into())
    }

    /// Atomically adds `by` to the counter under `key` (absent: 0) and
    /// returns the new value — a sequence number or an exact statistic.
    pub fn kv_incr(&self, key: &str, by: i64, ttl: Option<i64>) -> Result<i64, String> {
        let v = self.call(self.table.kv_incr, json!({ "key": key, "by": by, "ttl": ttl }))?;
        v.as_i64().ok_or_else(|| "host returned no number".into())
    }

    /// Every live `(key, value)` whose key starts with `prefix`, by key.
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let v = self.call(self.table.kv_list, json!({ "prefix": prefix }))?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// One page of [`Host::kv_list`] without its total cap: at most `limit`
    /// (1..=500) live rows under `prefix` in key order — newest first for
    /// time-keyed logs with `Order::Desc` — strictly past `cursor`, and
    /// the cursor of the next page (None on the last).
    pub fn kv_page(&self, prefix: &str, cursor: Option<&str>, order: Order, limit: u32) -> Result<KvPage, String> {
        let desc = order == Order::Desc;
        let v =
            self.call(self.table.kv_page, json!({ "prefix": prefix, "cursor": cursor, "desc": desc, "limit": limit }))?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// A JWT signed with the provider's key. The host sets `iss` to
    /// `<issuer>/plugins/<name>`, `iat`, `exp = now + ttl` and a distinct
    /// `typ`, so it can never pass for an ID or access token.
    pub fn sign(&self, claims: &Value, ttl: i64) -> Result<String, String> {
        let v = self.call(self.table.sign, json!({ "claims": claims, "ttl": ttl }))?;
        v.as_str().map(String::from).ok_or_else(|| "host returned no token".into())
    }

    /// Checks a token from [`Host::sign`] of this same plugin.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let v = self.call(self.table.verify, json!({ "token": token }))?;
        if v.get("valid").and_then(Value::as_bool) == Some(true) {
            let claims = v.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
            return Ok(Verified::Valid(claims));
        }
        Ok(match v.get("reason").and_then(Value::as_str) {
            Some("expired") => Verified::Expired,
            _ => Verified::Invalid,
        })
    }

    /// Checks an ES256 token of another issuer with its public key (a JWK
    /// object or a PEM string). `Err` when the key is not an EC P-256
    /// public key — call with an empty token to check a key.
    pub fn verify_with_key(&self, token: &str, key: &Value) -> Result<Verified, String> {
        let v = self.call(self.table.verify_with_key, json!({ "token": token, "key": key }))?;
        if v.get("valid").and_then(Value::as_bool) == Some(true) {
            let claims = v.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
            return Ok(Verified::Valid(claims));
        }
        Ok(match v.get("reason").and_then(Value::as_str) {
            Some("expired") => Verified::Expired,
            _ => Verified::Invalid,
        })
    }

    /// The current request's subject, limited to what the plugin may see
    /// (granted scopes for claims; declared `profile_fields` on user routes).
    pub fn subject(&self) -> Result<Map<String, Value>, String> {
        match self.call(self.table.subject, json!({}))? {
            Value::Object(m) => Ok(m),
            _ => Err("host returned no profile".into()),
        }
    }

    /// The current call's subject's relations (user routes, or a user's
    /// token): `relatives` — kin relations this user is bound to act for,
    /// each `{relation_id, masked_name, id_number, age, relation}`
    /// — and `enterprises` — `{uscc, name, role}` it represents or is an
    /// agent of (in force today).
    pub fn relations(&self) -> Result<Value, String> {
        self.call(self.table.relations, json!({}))
    }

    /// POSTs JSON through the provider (its timeout applies); returns the
    /// status and the JSON body (null when not JSON).
    pub fn http_post_json(&self, url: &str, body: &Value, timeout_ms: u64) -> Result<(u16, Value), String> {
        let v = self.call(self.table.http_post, json!({ "url": url, "body": body, "timeout_ms": timeout_ms }))?;
        let status = v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        Ok((status, v.get("body").cloned().unwrap_or(Value::Null)))
    }
}
