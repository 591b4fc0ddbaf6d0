//! The glue `declare_plugin!` expands to. Every function catches panics:
//! since Rust 1.81 an unwind out of an `extern "C"` function aborts the
//! process, which would take the provider down with the plugin.
use crate::abi::{self, Buffer, HostTable};
use crate::host::Host;
use crate::{ClaimsRequest, Plugin, Request};
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".into()
    }
}

/// Runs `f`, turning its result or panic into an envelope buffer.
fn guarded(f: impl FnOnce() -> Result<Value, String>) -> Buffer {
    let bytes = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => abi::ok_envelope(v),
        Ok(Err(e)) => abi::error_envelope(&e, false),
        Err(p) => abi::error_envelope(&format!("plugin panicked: {}", panic_message(p.as_ref())), true),
    };
    Buffer::from_vec(bytes)
}

/// # Safety
/// `input`/`len` must describe readable memory for the duration of the call.
unsafe fn input_json<T: serde::de::DeserializeOwned>(input: *const u8, len: usize) -> Result<T, String> {
    let bytes = if input.is_null() || len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(input, len) } };
    serde_json::from_slice(bytes).map_err(|e| format!("bad input from host: {e}"))
}

pub fn manifest<P: Plugin>() -> Buffer {
    guarded(|| serde_json::to_value(P::manifest()).map_err(|e| e.to_string()))
}

/// # Safety
/// `host` must point to a table that lives as long as the process.
pub unsafe fn init<P: Plugin>(cell: &OnceLock<P>, host: *const HostTable, input: *const u8, len: usize) -> Buffer {
    guarded(|| {
        let host = unsafe { Host::from_raw(host) }?;
        // The plugin has its own copy of std, hence its own panic hook:
        // report panics through the provider's log, without the default
        // hook's backtrace capture (slow enough to trip the call timeout).
        std::panic::set_hook(Box::new(move |info| host.log(crate::Level::Error, &format!("panic: {info}"))));
        let settings: Value = unsafe { input_json(input, len) }?;
        let plugin = P::init(host, settings)?;
        cell.set(plugin).map_err(|_| "init called twice".to_string())?;
        Ok(Value::Null)
    })
}

fn instance<P: Plugin>(cell: &OnceLock<P>) -> Result<&P, String> {
    cell.get().ok_or_else(|| "plugin is not initialised".to_string())
}

/// # Safety
/// See [`input_json`].
pub unsafe fn claims<P: Plugin>(cell: &OnceLock<P>, input: *const u8, len: usize) -> Buffer {
    guarded(|| {
        let req: ClaimsRequest = unsafe { input_json(input, len) }?;
        instance(cell)?.claims(&req).map(Value::Object)
    })
}

/// # Safety
/// See [`input_json`].
pub unsafe fn handle<P: Plugin>(cell: &OnceLock<P>, input: *const u8, len: usize) -> Buffer {
    guarded(|| {
        let req: Request = unsafe { input_json(input, len) }?;
        let res = instance(cell)?.handle(&req)?;
        serde_json::to_value(res).map_err(|e| e.to_string())
    })
}

/// Frees a buffer this plugin returned (its own allocator).
///
/// # Safety
/// Only for buffers produced by the functions above, once each.
pub unsafe extern "C" fn free(buf: Buffer) {
    drop(unsafe { buf.into_vec() });
}
