//! The services the provider offers plugins, as `extern "C"` callbacks.
//! Callbacks run on the blocking thread that called into the plugin and
//! reach the async database through the runtime handle captured at load.
//! Each one catches panics: unwinding into the plugin would abort.
use crate::crypto::jws::{self, Alg};
use crate::crypto::keys::{KeyPurpose, KeyRing};
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::identity::users::{UserService, user_claims};
use crate::domain::plugins::kv;
use idp_plugin_sdk::abi::{self, ABI_VERSION, Buffer, HostTable};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};

/// The JWT `typ` of plugin-signed payloads: never `JWT` or `at+jwt`, so a
/// plugin token cannot pass for an ID or access token.
pub const PLUGIN_JWT_TYP: &str = "idp-plugin+jwt";
/// A week: the health code's offline code (E2) is valid for 7 days by its
/// signed payload; everything else a plugin signs is minutes long.
const MAX_SIGN_TTL: i64 = 7 * 24 * 3600;

/// What the host shares with the plugins, cloned into each plugin's context.
#[derive(Clone)]
pub struct Services {
    pub issuer: String,
    pub db: crate::store::Store,
    pub keys: KeyRing,
    pub users: UserService,
    pub http: reqwest::Client,
    /// The provider's clock (tests move it), for `now`, TTLs and expiry.
    pub clock: crate::clock::Clock,
}

/// A plugin's host context, leaked with its table (the plugin may keep the
/// pointer). It holds the services weakly: the registry that loaded the
/// plugin owns them, so a provider state that is dropped (several servers
/// in one test process) releases its database pool instead of leaking it
/// with the table; a callback after that gets an error.
pub struct HostCtx {
    plugin: String,
    services: Weak<Services>,
    /// Held strongly (it owns no resources) so `now` answers even after
    /// the services are gone.
    clock: crate::clock::Clock,
    rt: tokio::runtime::Handle,
}

/// The context of one callback, with the services held for its duration.
struct Live<'a> {
    plugin: &'a str,
    services: Arc<Services>,
    rt: &'a tokio::runtime::Handle,
}

impl HostCtx {
    fn live(&self) -> Result<Live<'_>, String> {
        let services = self.services.upgrade().ok_or_else(|| "the provider is shutting down".to_string())?;
        Ok(Live { plugin: &self.plugin, services, rt: &self.rt })
    }
}

impl Live<'_> {
    fn plugin_issuer(&self) -> String {
        format!("{}/plugins/{}", self.services.issuer, self.plugin)
    }
}

/// Which profile the current call may read.
#[derive(Clone, Debug)]
pub enum Access {
    /// Claims for these granted scopes (OIDC Core §5.4), as a client sees them.
    Scopes(ScopeSet),
    /// The fields the manifest declared, for the user on their own pages.
    Fields(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct CallScope {
    pub plugin: String,
    pub subject: String,
    pub access: Access,
    /// When this session last passed a face check (user routes only), so a
    /// plugin can ask for a fresh one without a face check of its own.
    pub face_at: Option<i64>,
    /// The pairwise sector of the app the call serves (OIDC Core §8.1):
    /// the `sub` the plugin is told is the one that app knows, so a plugin
    /// claim or API answer never carries a subject two apps could join on.
    /// None on the person's own pages and for public-subject apps.
    pub sector: Option<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<CallScope>> = const { RefCell::new(None) };
}

/// Sets the subject for calls made on this thread until dropped.
pub struct Entered;

pub fn enter(scope: Option<CallScope>) -> Entered {
    CURRENT.with(|c| *c.borrow_mut() = scope);
    Entered
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// Builds the table for one plugin. Both live for the rest of the process,
/// as the plugin may keep the pointer.
pub fn table(
    plugin: &str,
    services: Weak<Services>,
    clock: crate::clock::Clock,
    rt: tokio::runtime::Handle,
) -> &'static HostTable {
    let ctx: &'static HostCtx = Box::leak(Box::new(HostCtx { plugin: plugin.to_string(), services, clock, rt }));
    Box::leak(Box::new(HostTable {
        abi_version: ABI_VERSION,
        table_size: std::mem::size_of::<HostTable>() as u32,
        ctx: ctx as *const HostCtx as *const c_void,
        log: cb_log,
        now: cb_now,
        kv_get: cb_kv_get,
        kv_put: cb_kv_put,
        kv_delete: cb_kv_delete,
        kv_list: cb_kv_list,
        sign: cb_sign,
        verify: cb_verify,
        subject: cb_subject,
        http_post: cb_http_post,
        free: cb_free,
        relations: cb_relations,
        kv_put_if: cb_kv_put_if,
        kv_incr: cb_kv_incr,
        verify_with_key: cb_verify_with_key,
        kv_page: cb_kv_page,
    }))
}

type Handler = fn(&Live, Value) -> Result<Value, String>;

/// # Safety
/// `ctx` must come from [`table`]; `input`/`len` must be readable.
unsafe fn dispatch(ctx: *const c_void, input: *const u8, len: usize, f: Handler) -> Buffer {
    let out = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return Err("no host context".to_string());
        }
        let ctx = unsafe { &*(ctx as *const HostCtx) };
        let bytes =
            if input.is_null() || len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(input, len) } };
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("malformed request to host: {e}"))?;
        f(&ctx.live()?, v)
    }));
    Buffer::from_vec(match out {
        Ok(Ok(v)) => abi::ok_envelope(v),
        Ok(Err(e)) => abi::error_envelope(&e, false),
        Err(_) => abi::error_envelope("host callback failed", true),
    })
}

macro_rules! callback {
    ($name:ident, $f:path) => {
        unsafe extern "C" fn $name(ctx: *const c_void, input: *const u8, len: usize) -> Buffer {
            unsafe { dispatch(ctx, input, len, $f) }
        }
    };
}

callback!(cb_log, log);
callback!(cb_kv_get, kv_get);
callback!(cb_kv_put, kv_put);
callback!(cb_kv_delete, kv_delete);
callback!(cb_kv_list, kv_list);
callback!(cb_sign, sign);
callback!(cb_verify, verify);
callback!(cb_subject, subject);
callback!(cb_http_post, http_post);
callback!(cb_relations, relations);
callback!(cb_kv_put_if, kv_put_if);
callback!(cb_kv_incr, kv_incr);
callback!(cb_verify_with_key, verify_with_key);
callback!(cb_kv_page, kv_page);

unsafe extern "C" fn cb_now(ctx: *const c_void) -> i64 {
    if ctx.is_null() {
        // Not our context: an unshifted clock is the best answer there is.
        return crate::clock::Clock::default().now();
    }
    unsafe { &*(ctx as *const HostCtx) }.clock.now()
}

unsafe extern "C" fn cb_free(_ctx: *const c_void, buf: Buffer) {
    drop(unsafe { buf.into_vec() });
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| format!("`{name}` is required"))
}

fn key_field(v: &Value) -> Result<&str, String> {
    let key = str_field(v, "key")?;
    if key.is_empty() || key.len() > kv::MAX_KEY {
        return Err(format!("key must be 1-{} bytes", kv::MAX_KEY));
    }
    Ok(key)
}

fn log(ctx: &Live, v: Value) -> Result<Value, String> {
    let message: String = str_field(&v, "message")?.chars().take(2000).collect();
    let plugin = ctx.plugin;
    match v.get("level").and_then(Value::as_str) {
        Some("error") => tracing::error!(plugin, "{message}"),
        Some("warn") => tracing::warn!(plugin, "{message}"),
        Some("debug") => tracing::debug!(plugin, "{message}"),
        _ => tracing::info!(plugin, "{message}"),
    }
    Ok(Value::Null)
}

fn store_err(e: crate::store::DbErr) -> String {
    tracing::error!("plugin storage: {e}");
    "storage unavailable".into()
}

fn kv_get(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = key_field(&v)?;
    let got =
        ctx.rt.block_on(kv::get(&ctx.services.db, ctx.plugin, key, ctx.services.clock.now())).map_err(store_err)?;
    Ok(got.map(Value::from).unwrap_or(Value::Null))
}

fn kv_put(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = key_field(&v)?;
    let value = str_field(&v, "value")?;
    if value.len() > kv::MAX_VALUE {
        return Err(format!("value larger than {} bytes", kv::MAX_VALUE));
    }
    let now = ctx.services.clock.now();
    let expires = v.get("ttl").and_then(Value::as_i64).map(|t| now + t.max(1));
    ctx.rt.block_on(kv::put(&ctx.services.db, ctx.plugin, key, value, expires, now)).map_err(store_err)?;
    Ok(Value::Null)
}

/// `{"key","expected":null|"…","value","ttl"}` → whether this write won
/// (see [`kv::put_if`]).
fn kv_put_if(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = key_field(&v)?;
    let value = str_field(&v, "value")?;
    if value.len() > kv::MAX_VALUE {
        return Err(format!("value larger than {} bytes", kv::MAX_VALUE));
    }
    let expected = match v.get("expected") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("`expected` must be a string or null".into()),
    };
    let now = ctx.services.clock.now();
    let expires = v.get("ttl").and_then(Value::as_i64).map(|t| now + t.max(1));
    let won = ctx
        .rt
        .block_on(kv::put_if(&ctx.services.db, ctx.plugin, key, expected, value, expires, now))
        .map_err(store_err)?;
    Ok(Value::from(won))
}

/// `{"key","by":n,"ttl"}` → the counter's new value (see [`kv::incr`]).
fn kv_incr(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = key_field(&v)?;
    let by = match v.get("by") {
        None | Some(Value::Null) => 1,
        Some(b) => b.as_i64().ok_or("`by` must be an integer")?,
    };
    let now = ctx.services.clock.now();
    let expires = v.get("ttl").and_then(Value::as_i64).map(|t| now + t.max(1));
    let n = ctx.rt.block_on(kv::incr(&ctx.services.db, ctx.plugin, key, by, expires, now)).map_err(store_err)?;
    Ok(Value::from(n))
}

fn kv_delete(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = key_field(&v)?;
    Ok(Value::from(ctx.rt.block_on(kv::delete(&ctx.services.db, ctx.plugin, key)).map_err(store_err)?))
}

fn kv_list(ctx: &Live, v: Value) -> Result<Value, String> {
    let prefix = v.get("prefix").and_then(Value::as_str).unwrap_or("");
    let rows =
        ctx.rt.block_on(kv::list(&ctx.services.db, ctx.plugin, prefix, ctx.services.clock.now())).map_err(store_err)?;
    Ok(json!(rows))
}

/// `{"prefix","cursor","desc","limit"}` → `{"rows","next"}` (see [`kv::page`]).
fn kv_page(ctx: &Live, v: Value) -> Result<Value, String> {
    let prefix = v.get("prefix").and_then(Value::as_str).unwrap_or("");
    let cursor = match v.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("`cursor` must be a string or null".into()),
    };
    let desc = v.get("desc").and_then(Value::as_bool).unwrap_or(false);
    let limit = v.get("limit").and_then(Value::as_u64).unwrap_or(100);
    let now = ctx.services.clock.now();
    let page =
        ctx.rt.block_on(kv::page(&ctx.services.db, ctx.plugin, prefix, cursor, desc, limit, now)).map_err(store_err)?;
    serde_json::to_value(page).map_err(|e| e.to_string())
}

/// Signs with the provider's active plugin key (ES256, its own `kid`). `iss`, `iat` and `exp` are
/// the host's, so a plugin can only speak for itself and briefly.
fn sign(ctx: &Live, v: Value) -> Result<Value, String> {
    let Some(Value::Object(mut claims)) = v.get("claims").cloned() else {
        return Err("`claims` must be an object".into());
    };
    let ttl = v.get("ttl").and_then(Value::as_i64).unwrap_or(300).clamp(1, MAX_SIGN_TTL);
    let now = ctx.services.clock.now();
    claims.insert("iss".into(), ctx.plugin_issuer().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());
    let keys = ctx.services.keys.snapshot();
    // The plugin key, never the ID/access token key.
    let key = keys.plugin_signer().ok_or("no active plugin signing key")?;
    Ok(Value::from(key.sign_jwt(PLUGIN_JWT_TYP, &Value::Object(claims))))
}

/// Verifies a token from [`sign`] of the same plugin; any key still
/// published verifies, so presentations survive a key rotation.
fn verify(ctx: &Live, v: Value) -> Result<Value, String> {
    let token = str_field(&v, "token")?;
    let invalid = json!({ "valid": false, "reason": "invalid" });
    let Some(parsed) = jws::parse(token) else {
        return Ok(invalid);
    };
    let keys = ctx.services.keys.snapshot();
    let Some(key) = parsed.header.kid.as_deref().and_then(|k| keys.verifier(k, KeyPurpose::Plugin)) else {
        return Ok(invalid);
    };
    if parsed.header.alg != key.alg.name()
        || parsed.header.typ.as_deref() != Some(PLUGIN_JWT_TYP)
        || !key.public.verify(parsed.signing_input.as_bytes(), &parsed.signature)
    {
        return Ok(invalid);
    }
    let Value::Object(claims) = parsed.payload else {
        return Ok(invalid);
    };
    if claims.get("iss").and_then(Value::as_str) != Some(ctx.plugin_issuer().as_str()) {
        return Ok(invalid);
    }
    if claims.get("exp").and_then(Value::as_i64).is_none_or(|e| e <= ctx.services.clock.now()) {
        return Ok(json!({ "valid": false, "reason": "expired" }));
    }
    Ok(json!({ "valid": true, "claims": claims }))
}

/// Verifies an ES256 compact JWS issued by another platform (E5: codes of
/// a third-party issuer accepted by our scanners) with the public key the
/// plugin registered for it — a JWK object or a PEM string. A key that is
/// not EC P-256 is an error (so a plugin can check a key by passing no
/// token); a token that is malformed, not ES256 or badly signed is
/// `invalid`, past its `exp` (or without one) `expired`.
fn verify_with_key(ctx: &Live, v: Value) -> Result<Value, String> {
    let key = match v.get("key") {
        Some(Value::String(pem)) => jws::PublicKey::from_pem(pem),
        Some(jwk @ Value::Object(_)) => jws::PublicKey::from_jwk(jwk),
        _ => None,
    }
    .filter(|k| k.alg() == Alg::Es256)
    .ok_or("`key` must be an EC P-256 public key (JWK or PEM)")?;
    let invalid = json!({ "valid": false, "reason": "invalid" });
    let Some(parsed) = v.get("token").and_then(Value::as_str).and_then(jws::parse) else {
        return Ok(invalid);
    };
    if parsed.header.alg != Alg::Es256.name() || !key.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
        return Ok(invalid);
    }
    let Value::Object(claims) = parsed.payload else {
        return Ok(invalid);
    };
    if claims.get("exp").and_then(Value::as_i64).is_none_or(|e| e <= ctx.services.clock.now()) {
        return Ok(json!({ "valid": false, "reason": "expired" }));
    }
    Ok(json!({ "valid": true, "claims": claims }))
}

/// The current call's subject, never more than the call allows: the
/// standard claims of the granted scopes, or the declared profile fields.
fn current(ctx: &Live) -> Result<CallScope, String> {
    let scope = CURRENT.with(|c| c.borrow().clone()).ok_or("this call has no subject")?;
    if scope.plugin != ctx.plugin {
        return Err("this call has no subject".into());
    }
    Ok(scope)
}

fn subject(ctx: &Live, _v: Value) -> Result<Value, String> {
    let scope = current(ctx)?;
    let user = ctx
        .rt
        .block_on(ctx.services.users.find(&scope.subject))
        .map_err(|e| format!("profile unavailable: {e}"))?
        .filter(|u| !u.disabled)
        .ok_or("the account is not active")?;
    let mut out = match &scope.access {
        Access::Scopes(scopes) => user_claims(&user, scopes, &[]),
        Access::Fields(fields) => {
            let mut m = Map::new();
            for f in fields {
                let value = match f.as_str() {
                    "name" => user.name.clone(),
                    "preferred_username" => Some(user.username.clone()),
                    "email" => user.email.clone(),
                    "phone_number" => user.phone.clone(),
                    "id_number" => user.id_number.clone(),
                    _ => None,
                };
                if let Some(value) = value {
                    m.insert(f.clone(), Value::from(value));
                }
            }
            m
        }
    };
    let sub = ctx
        .rt
        .block_on(crate::domain::tokens::subjects::of_account_in(&ctx.services.db, scope.sector.as_deref(), &user.id))
        .map_err(|e| format!("profile unavailable: {e}"))?;
    out.insert("sub".into(), Value::from(sub));
    if let Some(at) = scope.face_at {
        out.insert("face_verified_at".into(), Value::from(at));
    }
    Ok(Value::Object(out))
}

/// The subject's own relations and nobody else's: the kin relations it is
/// bound to act for (E2, `kin::relatives_of`) and the enterprises it
/// represents or is an agent of in force (E3). Claims calls have a subject
/// too, but only user routes and a user's API token reach plugin code that
/// renders them.
fn relations(ctx: &Live, _v: Value) -> Result<Value, String> {
    let scope = current(ctx)?;
    let now = ctx.services.clock.now();
    let db = &ctx.services.db;
    let found =
        ctx.rt.block_on(crate::domain::plugins::relations::of_subject(db, &scope.subject, now)).map_err(store_err)?;
    serde_json::to_value(found).map_err(|e| e.to_string())
}

/// Outbound JSON POST for adapters (e.g. a real certificate issuer), so a
/// plugin needs no HTTP client of its own. Redirects are not followed.
fn http_post(ctx: &Live, v: Value) -> Result<Value, String> {
    let url = url::Url::parse(str_field(&v, "url")?).map_err(|e| format!("bad url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https".into());
    }
    let timeout = v.get("timeout_ms").and_then(Value::as_u64).unwrap_or(3000).clamp(1, 10_000);
    let body = v.get("body").cloned().unwrap_or(Value::Null);
    let http = ctx.services.http.clone();
    let fut = async move {
        let res = http
            .post(url)
            .json(&body)
            .timeout(std::time::Duration::from_millis(timeout))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        Ok::<_, String>(json!({ "status": status, "body": body }))
    };
    ctx.rt.block_on(fut)
}
