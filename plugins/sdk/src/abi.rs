//! The C ABI between the provider and a plugin (plugins/README.md).
//!
//! Only `#[repr(C)]` structs, integers, raw pointers and `extern "C"`
//! function pointers cross the boundary; payloads are JSON in byte buffers.
//! No Rust type with an unstable layout (String, Vec, trait objects) crosses,
//! so host and plugin may be built by different compilers. Ownership rule:
//! **whoever allocated a [`Buffer`] frees it** — the plugin's `free` for
//! buffers the plugin returns, the host's `free` for buffers a host callback
//! returns — so two allocators never mix.
use std::ffi::c_void;

/// Bumped on any incompatible change to the tables below.
pub const ABI_VERSION: u32 = 1;

/// The one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"idp_plugin_v1\0";

/// The entry point's type: returns a pointer to a static [`PluginTable`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// Bytes owned by the side that allocated them.
#[repr(C)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// Hands a vector over; the receiver must give it back to the same
    /// side's `free`.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buffer { ptr: v.as_mut_ptr(), len: v.len(), cap: v.capacity() }
    }

    /// Reads the bytes without taking ownership.
    ///
    /// # Safety
    /// `ptr`/`len` must describe live memory, as produced by [`Buffer::from_vec`].
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Takes back a buffer this side allocated.
    ///
    /// # Safety
    /// Must be called only by the side that created it with [`Buffer::from_vec`],
    /// exactly once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() { Vec::new() } else { unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) } }
    }
}

/// A plugin function: JSON in (borrowed for the call), JSON envelope out.
pub type PluginFn = unsafe extern "C" fn(input: *const u8, len: usize) -> Buffer;

/// What `idp_plugin_v1` returns. The host reads `abi_version` and
/// `table_size` first and nothing else unless both match (the handshake).
#[repr(C)]
pub struct PluginTable {
    pub abi_version: u32,
    /// `size_of::<PluginTable>()` as the plugin was compiled.
    pub table_size: u32,
    /// Returns the manifest (input ignored).
    pub manifest: PluginFn,
    /// Called once before anything but `manifest`; the host table lives as
    /// long as the process. The input is the plugin's settings (JSON).
    pub init: unsafe extern "C" fn(host: *const HostTable, settings: *const u8, len: usize) -> Buffer,
    /// Claims for a subject and the plugin scopes granted to a client.
    pub claims: PluginFn,
    /// One HTTP request to a route the manifest declares.
    pub handle: PluginFn,
    /// Frees a buffer returned by any function above.
    pub free: unsafe extern "C" fn(Buffer),
}

/// A host callback: opaque context, JSON in (borrowed), JSON envelope out
/// (free it with [`HostTable::free`]).
pub type HostFn = unsafe extern "C" fn(ctx: *const c_void, input: *const u8, len: usize) -> Buffer;

/// Services the host offers, passed to `init`. Same handshake rule: check
/// `abi_version` and `table_size` before reading the rest.
#[repr(C)]
pub struct HostTable {
    pub abi_version: u32,
    pub table_size: u32,
    pub ctx: *const c_void,
    /// `{"level":"info","message":"…"}`
    pub log: HostFn,
    /// Unix seconds by the provider's clock.
    pub now: unsafe extern "C" fn(ctx: *const c_void) -> i64,
    /// `{"key":"…"}` → value string or null. Keys are namespaced per plugin.
    pub kv_get: HostFn,
    /// `{"key":"…","value":"…","ttl":null|seconds}` → null
    pub kv_put: HostFn,
    /// `{"key":"…"}` → bool (whether it existed)
    pub kv_delete: HostFn,
    /// `{"prefix":"…"}` → `[[key, value], …]` sorted by key
    pub kv_list: HostFn,
    /// `{"claims":{…},"ttl":seconds}` → compact JWS signed with the provider's key
    pub sign: HostFn,
    /// `{"token":"…"}` → `{"valid":true,"claims":{…}}` or `{"valid":false,"reason":"expired"|"invalid"}`
    pub verify: HostFn,
    /// `{}` → the current call's subject profile, limited to what it may see
    pub subject: HostFn,
    /// `{"url":"…","body":{…},"timeout_ms":n}` → `{"status":n,"body":…}`
    pub http_post: HostFn,
    /// Frees a buffer returned by any host callback.
    pub free: unsafe extern "C" fn(ctx: *const c_void, Buffer),
    /// `{}` → `{"relatives":[…],"enterprises":[…]}`: the current call's
    /// subject's own kin relations and the enterprises it represents or
    /// acts for. Appended last, so plugins built before it still load
    /// (they only check that the table is at least as large as theirs).
    pub relations: HostFn,
    /// `{"key":"…","expected":null|"…","value":"…","ttl":null|seconds}` →
    /// bool: compare-and-swap in one statement — with `expected` null the
    /// value is written only if the key is absent (or expired), otherwise
    /// only if the live value equals `expected`; true when this write won.
    /// Appended after `relations`, for the same reason.
    pub kv_put_if: HostFn,
    /// `{"key":"…","by":n,"ttl":null|seconds}` → the new integer value of
    /// an atomic counter (absent counts as 0); parallel increments on any
    /// node each get a distinct value and none is lost.
    pub kv_incr: HostFn,
    /// `{"token":"…","key":{JWK}|"PEM"}` → as `verify`, for an ES256 token
    /// of another issuer checked with its registered public key (EC P-256;
    /// any other key is an error). Appended last, like the two above.
    pub verify_with_key: HostFn,
    /// `{"prefix":"…","cursor":null|"key","desc":bool,"limit":n}` →
    /// `{"rows":[[key, value], …],"next":null|"key"}`: one page of
    /// `kv_list` — live keys under `prefix` in key order (code point
    /// order; descending with `desc`) strictly after `cursor` in that
    /// order, at most `limit` (clamped to 1..=500) rows; `next` is the
    /// cursor of the following page, null on the last. Unlike `kv_list`
    /// it has no total cap. Appended last, like the ones above.
    pub kv_page: HostFn,
}

/// `{"ok": value}` — the success envelope both sides use.
pub fn ok_envelope(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "ok": value })).unwrap_or_default()
}

/// `{"error": message}`; `panic` marks a caught panic.
pub fn error_envelope(message: &str, panic: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message, "panic": panic })).unwrap_or_default()
}

/// Decodes an envelope: the value, or the error message and panic flag.
pub fn open_envelope(bytes: &[u8]) -> Result<serde_json::Value, (String, bool)> {
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| (format!("malformed reply: {e}"), false))?;
    if let Some(ok) = v.get_mut("ok") {
        return Ok(ok.take());
    }
    let msg = v.get("error").and_then(|e| e.as_str()).unwrap_or("reply is neither ok nor error").to_string();
    let panic = v.get("panic").and_then(|p| p.as_bool()).unwrap_or(false);
    Err((msg, panic))
}
