//! Opening plugin files: file checks, the version handshake and the
//! manifest rules. Every refusal is a sentence an operator can act on.
use crate::domain::clients::scopes;
use idp_plugin_sdk::abi::{self, ABI_VERSION, Buffer, EntryFn, HostTable, PluginFn, PluginTable};
use idp_plugin_sdk::{Manifest, RouteAuth};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The plugin's functions, copied out of its table after the handshake.
#[derive(Clone, Copy)]
pub struct Exports {
    pub manifest: PluginFn,
    pub init: unsafe extern "C" fn(*const HostTable, *const u8, usize) -> Buffer,
    pub claims: PluginFn,
    pub handle: PluginFn,
    pub free: unsafe extern "C" fn(Buffer),
}

pub struct Opened {
    pub file_name: String,
    pub sha256: String,
    pub exports: Exports,
    pub manifest: Manifest,
}

/// Fields a plugin may ask to read of the signed-in user on its pages.
pub const PROFILE_FIELDS: &[&str] = &["sub", "name", "preferred_username", "email", "phone_number", "id_number"];

/// Library files in `dir`, sorted so load order (and who wins a name or
/// scope collision) does not depend on the file system.
pub fn candidates(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("plugin directory {}: {e}", dir.display()))?;
    if world_writable(&meta) {
        return Err(format!("plugin directory {} is world-writable; fix with chmod o-w", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("plugin directory {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some(std::env::consts::DLL_EXTENSION))
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn world_writable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o002 != 0
}
#[cfg(not(unix))]
fn world_writable(_meta: &std::fs::Metadata) -> bool {
    false
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the file, loads it (never to be unloaded: unloading Rust code
/// with live thread-locals or function pointers is a known crash) and
/// performs the handshake before reading anything else from the table.
pub fn open(path: &Path, pin: Option<&str>) -> Result<Opened, String> {
    use std::io::Read;
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if world_writable(&meta) {
        return Err("the file is world-writable, anyone could replace the code; fix with chmod o-w".into());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    if let Some(pin) = pin
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(format!("sha256 {sha256} does not match the pin {pin} in plugins.sha256"));
    }
    // Load the very file we hashed (through its descriptor) so it cannot be
    // swapped between the check and the load.
    let load_path = fd_path(&file).unwrap_or_else(|| path.to_path_buf());
    let lib = unsafe { libloading::Library::new(&load_path) }.map_err(|e| format!("cannot load: {e}"))?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // The descriptor stays open as long as the library (for ever): the
    // loader knows the library by the `/proc/self/fd/N` name, and a reused
    // N would make a later plugin resolve to this one.
    std::mem::forget(file);
    let entry: EntryFn = unsafe { lib.get::<EntryFn>(abi::ENTRY_SYMBOL) }
        .map(|s| *s)
        .map_err(|_| "exports no `idp_plugin_v1`: not an idp plugin".to_string())?;
    let table = unsafe { entry() };
    if table.is_null() {
        return Err("idp_plugin_v1 returned no table".into());
    }
    // The handshake: the version first, then the size, then the rest.
    let version = unsafe { std::ptr::read(table as *const u32) };
    if version != ABI_VERSION {
        return Err(format!(
            "ABI version {version}, but this provider speaks ABI {ABI_VERSION}; rebuild the plugin with the matching idp-plugin-sdk"
        ));
    }
    let size = unsafe { std::ptr::read((table as *const u32).add(1)) } as usize;
    if size < std::mem::size_of::<PluginTable>() {
        return Err(format!("function table of {size} bytes is too small for ABI {ABI_VERSION}"));
    }
    let t = unsafe { &*table };
    let exports = Exports { manifest: t.manifest, init: t.init, claims: t.claims, handle: t.handle, free: t.free };
    let value = invoke(exports, exports.manifest, b"null").map_err(|(m, _)| format!("manifest failed: {m}"))?;
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| format!("manifest is malformed: {e}"))?;
    Ok(Opened { file_name, sha256, exports, manifest })
}

#[cfg(target_os = "linux")]
fn fd_path(file: &std::fs::File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let p = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    p.exists().then_some(p)
}
#[cfg(not(target_os = "linux"))]
fn fd_path(_file: &std::fs::File) -> Option<PathBuf> {
    None
}

/// One call across the boundary: borrow the input, copy the reply, and give
/// the reply back to the plugin's own `free`.
pub fn invoke(exports: Exports, f: PluginFn, input: &[u8]) -> Result<Value, (String, bool)> {
    let buf = unsafe { f(input.as_ptr(), input.len()) };
    let reply = unsafe { buf.as_slice() }.to_vec();
    unsafe { (exports.free)(buf) };
    abi::open_envelope(&reply)
}

/// What earlier plugins already hold.
#[derive(Default)]
pub struct Taken {
    pub names: Vec<(String, String)>,
    pub scopes: Vec<(String, String)>,
    pub claims: Vec<(String, String)>,
}

fn valid_name(n: &str) -> bool {
    (1..=40).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
}

/// RFC 6749 §3.3 scope-token characters, minus the space.
fn valid_scope(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The manifest rules: a unique, URL-safe name; scopes that collide with
/// neither the core nor another plugin; claims that cannot shadow core
/// claims; routes that only demand the plugin's own scopes.
pub fn validate(m: &Manifest, taken: &Taken) -> Result<(), String> {
    if !valid_name(&m.name) {
        return Err(format!("name `{}` must be 1-40 lower-case letters, digits or '-'", m.name));
    }
    if let Some((_, file)) = taken.names.iter().find(|(n, _)| n == &m.name) {
        return Err(format!("duplicate plugin name `{}` (already loaded from {file})", m.name));
    }
    let core_claims = scopes::all_claims();
    let mut own: Vec<&str> = Vec::new();
    for s in &m.scopes {
        if !valid_scope(&s.name) {
            return Err(format!("scope `{}` is not a valid OAuth scope token", s.name));
        }
        if scopes::SUPPORTED.contains(&s.name.as_str()) || scopes::ADMIN_GRANTED.contains(&s.name.as_str()) {
            return Err(format!("scope `{}` collides with a core scope", s.name));
        }
        if let Some((_, owner)) = taken.scopes.iter().find(|(sc, _)| sc == &s.name) {
            return Err(format!("scope `{}` collides with plugin `{owner}`", s.name));
        }
        if own.contains(&s.name.as_str()) {
            return Err(format!("scope `{}` is declared twice", s.name));
        }
        own.push(&s.name);
        for c in &s.claims {
            if core_claims.contains(&c.as_str()) {
                return Err(format!("claim `{c}` of scope `{}` collides with a core claim", s.name));
            }
            if let Some((_, owner)) = taken.claims.iter().find(|(cl, _)| cl == c) {
                return Err(format!("claim `{c}` collides with plugin `{owner}`"));
            }
        }
    }
    for r in &m.routes {
        if !matches!(r.method.as_str(), "GET" | "POST") || !r.path.starts_with('/') || r.path.contains("..") {
            return Err(format!("route {} {} must be GET or POST on a path starting with /", r.method, r.path));
        }
        if r.auth == RouteAuth::Api && r.scopes.is_empty() {
            return Err(format!("API route {} names no scope", r.path));
        }
        if let Some(s) = r.scopes.iter().find(|s| !own.contains(&s.as_str())) {
            return Err(format!("route {} demands scope `{s}`, which this plugin does not declare", r.path));
        }
    }
    if let Some(f) = m.profile_fields.iter().find(|f| !PROFILE_FIELDS.contains(&f.as_str())) {
        return Err(format!("profile field `{f}` is unknown; allowed: {}", PROFILE_FIELDS.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use idp_plugin_sdk::{Localized, RouteSpec, ScopeSpec};

    fn manifest(name: &str, scope: &str) -> Manifest {
        Manifest {
            name: name.into(),
            version: "1".into(),
            description: Localized::default(),
            scopes: vec![ScopeSpec { name: scope.into(), description: Localized::default(), claims: vec![] }],
            routes: vec![RouteSpec::new("GET", "/x", RouteAuth::Api).with_scopes(&[scope])],
            profile_fields: vec![],
        }
    }

    #[test]
    fn collisions_and_names_are_refused() {
        let mut taken = Taken::default();
        assert!(validate(&manifest("a", "a.read"), &taken).is_ok());
        taken.names.push(("a".into(), "liba.so".into()));
        taken.scopes.push(("a.read".into(), "a".into()));
        assert!(validate(&manifest("a", "x"), &taken).unwrap_err().contains("duplicate plugin name"));
        assert!(validate(&manifest("b", "a.read"), &taken).unwrap_err().contains("collides with plugin `a`"));
        assert!(validate(&manifest("b", "profile"), &taken).unwrap_err().contains("core scope"));
        assert!(validate(&manifest("B/x", "y"), &taken).is_err());
        assert!(validate(&manifest("b", "has space"), &taken).is_err());
    }
}
