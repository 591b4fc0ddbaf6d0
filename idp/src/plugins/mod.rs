//! Plugins loaded at run time (plugins/README.md). Loaded
//! from the configured folder at start and never unloaded; every call runs
//! on a blocking thread with a time limit and a cap on calls in flight, and
//! repeated faults open a circuit so a broken plugin fails fast instead of
//! holding requests. No HTTP types here: `web::api::plugin_routes` adapts.
mod host;
pub mod loader;

pub use host::{Access, CallScope, PLUGIN_JWT_TYP, Services};
pub use idp_plugin_sdk::{ClaimsRequest, Manifest, Request, Response, RouteAuth, RouteSpec, ScopeSpec};

use crate::clock::Clock;
use crate::config::PluginsConfig;
use crate::domain::clients::scopes::{self, ScopeSet};
use crate::domain::plugins::plugin_access;
use loader::{Exports, Taken};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a plugin call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Unhealthy, too busy or too slow: worth retrying later (503).
    #[error("plugin unavailable: {0}")]
    Unavailable(String),
    /// Panicked or reported an error (500).
    #[error("plugin failed: {0}")]
    Failed(String),
    #[error("storage unavailable: {0}")]
    Store(#[from] crate::store::DbErr),
}

#[derive(Default)]
struct Health {
    consecutive: AtomicI64,
    open_until: AtomicI64,
    faults: AtomicI64,
    last_error: Mutex<Option<String>>,
    /// Set at the first success in this process, which also clears an
    /// unhealthy mark another process (or an earlier run) left behind.
    seen_success: std::sync::atomic::AtomicBool,
}

pub struct Plugin {
    pub manifest: Manifest,
    pub file: String,
    pub sha256: String,
    /// Fails open: a fault omits its claims instead of failing the request.
    pub optional: bool,
    exports: Exports,
    health: Health,
    permits: Arc<Semaphore>,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }
    pub fn route(&self, method: &str, path: &str) -> Option<&RouteSpec> {
        self.manifest.routes.iter().find(|r| r.method == method && r.path == path)
    }
    fn claims_of(&self, scope: &str) -> &[String] {
        self.manifest.scopes.iter().find(|s| s.name == scope).map(|s| s.claims.as_slice()).unwrap_or(&[])
    }
    fn available(&self, now: i64) -> bool {
        self.health.open_until.load(Ordering::SeqCst) <= now
    }
    fn last_error(&self) -> Option<String> {
        self.health.last_error.lock().map(|g| g.clone()).unwrap_or(None)
    }
}

/// A plugin file that was not loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub reason: String,
}

/// What `idp plugin list` shows for a loaded plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub scopes: Vec<ScopeSpec>,
    pub routes: Vec<RouteSpec>,
    pub profile_fields: Vec<String>,
    pub optional: bool,
    pub enabled: bool,
    pub healthy: bool,
    pub faults: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Plugin scopes left after the administrator's decisions, and the claims
/// their plugins released.
#[derive(Debug, Default)]
pub struct Released {
    pub scope: ScopeSet,
    pub claims: Map<String, Value>,
}

pub struct Registry {
    plugins: Vec<Arc<Plugin>>,
    refused: Vec<Refused>,
    db: crate::store::Store,
    /// Owned here; the plugins' host tables hold them weakly.
    _services: Option<Arc<Services>>,
    timeout: Duration,
    unhealthy_after: i64,
    retry_after: i64,
    /// When an unhealthy plugin is retried, and health record times.
    clock: Clock,
}

fn blocking_err(e: tokio::task::JoinError) -> String {
    format!("call did not complete: {e}")
}

impl Registry {
    /// Loads every plugin in `cfg.dir`. Refusals are logged and kept for
    /// `idp plugin list`; they never stop the provider.
    pub async fn load(cfg: &PluginsConfig, services: Services) -> Registry {
        let mut reg = Registry {
            plugins: Vec::new(),
            refused: Vec::new(),
            db: services.db.clone(),
            _services: None,
            timeout: Duration::from_millis(cfg.call_timeout_ms.max(1) as u64),
            unhealthy_after: cfg.unhealthy_after.max(1),
            retry_after: cfg.retry_after.max(1),
            clock: services.clock.clone(),
        };
        let Some(dir) = &cfg.dir else {
            return reg;
        };
        let files = match loader::candidates(dir) {
            Ok(f) => f,
            Err(reason) => {
                tracing::error!("plugins not loaded: {reason}");
                reg.refused.push(Refused { file: dir.display().to_string(), name: None, reason });
                return reg;
            }
        };
        let services = Arc::new(services);
        reg._services = Some(services.clone());
        let load_limit = reg.timeout.max(Duration::from_secs(10));
        let rt = tokio::runtime::Handle::current();
        let mut taken = Taken::default();
        for path in files {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let pin = cfg.sha256.get(&file).cloned();
            let opened = tokio::time::timeout(
                load_limit,
                tokio::task::spawn_blocking(move || loader::open(&path, pin.as_deref())),
            )
            .await
            .map_err(|_| "timed out while loading".to_string())
            .and_then(|r| r.map_err(blocking_err))
            .and_then(|r| r);
            let opened = match opened {
                Ok(o) => o,
                Err(reason) => {
                    tracing::error!("plugin {file} refused: {reason}");
                    reg.refused.push(Refused { file, name: None, reason });
                    continue;
                }
            };
            let name = opened.manifest.name.clone();
            let refuse = |reg: &mut Registry, reason: String| {
                tracing::error!("plugin {name} ({file}) refused: {reason}");
                reg.refused.push(Refused { file: file.clone(), name: Some(name.clone()), reason });
            };
            if let Err(reason) = loader::validate(&opened.manifest, &taken) {
                refuse(&mut reg, reason);
                continue;
            }
            let settings = cfg.settings.get(&name).map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
            let settings = serde_json::to_vec(&settings.unwrap_or(Value::Object(Map::new()))).unwrap_or_default();
            let table = SendPtr(host::table(&name, Arc::downgrade(&services), reg.clock.clone(), rt.clone()));
            let exports = opened.exports;
            let init = tokio::time::timeout(
                load_limit,
                tokio::task::spawn_blocking(move || {
                    let table = table;
                    let buf = unsafe { (exports.init)(table.0, settings.as_ptr(), settings.len()) };
                    let reply = unsafe { buf.as_slice() }.to_vec();
                    unsafe { (exports.free)(buf) };
                    idp_plugin_sdk::abi::open_envelope(&reply).map(|_| ()).map_err(|(m, _)| m)
                }),
            )
            .await
            .map_err(|_| "init timed out".to_string())
            .and_then(|r| r.map_err(blocking_err))
            .and_then(|r| r);
            if let Err(reason) = init {
                refuse(&mut reg, format!("init failed: {reason}"));
                continue;
            }
            taken.names.push((name.clone(), file.clone()));
            for s in &opened.manifest.scopes {
                taken.scopes.push((s.name.clone(), name.clone()));
                taken.claims.extend(s.claims.iter().map(|c| (c.clone(), name.clone())));
            }
            tracing::info!("plugin {name} {} loaded from {file}", opened.manifest.version);
            reg.plugins.push(Arc::new(Plugin {
                optional: cfg.optional.contains(&name),
                manifest: opened.manifest,
                file: opened.file_name,
                sha256: opened.sha256,
                exports,
                health: Health::default(),
                permits: Arc::new(Semaphore::new(cfg.max_concurrent_calls.max(1) as usize)),
            }));
        }
        for name in &cfg.optional {
            if reg.find(name).is_none() {
                tracing::warn!("plugins.optional names `{name}`, which is not loaded");
            }
        }
        reg
    }

    pub fn empty(db: crate::store::Store, clock: Clock) -> Registry {
        Registry {
            plugins: Vec::new(),
            refused: Vec::new(),
            db,
            _services: None,
            timeout: Duration::from_secs(2),
            unhealthy_after: 3,
            retry_after: 60,
            clock,
        }
    }

    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }
    pub fn find(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.name() == name)
    }
    /// The plugin that declared `scope`.
    pub fn owner(&self, scope: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.manifest.scopes.iter().any(|s| s.name == scope))
    }
    pub fn scope_names(&self) -> Vec<String> {
        self.plugins.iter().flat_map(|p| p.manifest.scopes.iter().map(|s| s.name.clone())).collect()
    }
    pub fn claim_names(&self) -> Vec<String> {
        self.plugins.iter().flat_map(|p| p.manifest.scopes.iter().flat_map(|s| s.claims.clone())).collect()
    }
    /// The consent text of a plugin scope in the user's language.
    pub fn scope_description(&self, scope: &str, locale: &str) -> Option<String> {
        let p = self.owner(scope)?;
        p.manifest.scopes.iter().find(|s| s.name == scope).map(|s| s.description.get(locale).to_string())
    }

    pub async fn enabled(&self, name: &str) -> Result<bool, crate::store::DbErr> {
        Ok(plugin_access::state(&self.db, name).await?.enabled)
    }

    /// Scopes beyond its own list that `client_id` may request now, as the
    /// administrator permitted: provider scopes such as `scan_login`, and
    /// scopes of a loaded, enabled and healthy plugin.
    pub async fn usable_scopes(&self, client_id: &str) -> Result<Vec<String>, crate::store::DbErr> {
        let mut out = Vec::new();
        for scope in plugin_access::permitted(&self.db, client_id).await? {
            if scopes::ADMIN_GRANTED.contains(&scope.as_str()) {
                out.push(scope);
            } else if let Some(p) = self.owner(&scope)
                && p.available(self.clock.now())
                && self.enabled(p.name()).await?
            {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Whether `client_id` may still use every one of `scopes` (checked on
    /// each plugin API call: a revoked permission takes effect at once).
    pub async fn client_may(
        &self,
        plugin: &Plugin,
        client_id: &str,
        scopes: &[String],
    ) -> Result<bool, crate::store::DbErr> {
        if !self.enabled(plugin.name()).await? {
            return Ok(false);
        }
        let permitted = plugin_access::permitted(&self.db, client_id).await?;
        Ok(scopes.iter().all(|s| permitted.contains(s)))
    }

    /// At token and userinfo time: drops plugin scopes whose permission was
    /// revoked or whose plugin was disabled since the grant, then collects
    /// the claims of the rest. A fault fails the whole request (no token
    /// with missing claims) unless the plugin is optional.
    /// `sector` is the grant's pairwise sector: the `sub` the plugin sees
    /// is the one the client knows.
    pub async fn release(
        &self,
        client_id: &str,
        subject: &str,
        sector: Option<&str>,
        granted: &ScopeSet,
    ) -> Result<Released, PluginError> {
        let is_core = |s: &str| scopes::SUPPORTED.contains(&s);
        if granted.iter().all(is_core) {
            return Ok(Released { scope: granted.clone(), claims: Map::new() });
        }
        let permitted = plugin_access::permitted(&self.db, client_id).await?;
        let mut kept: Vec<&str> = Vec::new();
        let mut groups: Vec<(Arc<Plugin>, Vec<String>)> = Vec::new();
        for s in granted.iter() {
            if is_core(s) {
                kept.push(s);
                continue;
            }
            if scopes::ADMIN_GRANTED.contains(&s) {
                if permitted.iter().any(|x| x == s) {
                    kept.push(s);
                }
                continue;
            }
            let Some(p) = self.owner(s) else { continue };
            if !permitted.iter().any(|x| x == s) || !self.enabled(p.name()).await? {
                continue;
            }
            kept.push(s);
            match groups.iter_mut().find(|(g, _)| g.name() == p.name()) {
                Some((_, list)) => list.push(s.to_string()),
                None => groups.push((p.clone(), vec![s.to_string()])),
            }
        }
        let scope = ScopeSet::parse(&kept.join(" "));
        let mut claims = Map::new();
        for (p, plugin_scopes) in groups {
            let expected: Vec<&String> = plugin_scopes.iter().flat_map(|s| p.claims_of(s)).collect();
            if expected.is_empty() {
                continue;
            }
            let req = ClaimsRequest { subject: subject.into(), client_id: client_id.into(), scopes: plugin_scopes };
            let call = CallScope {
                plugin: p.name().into(),
                subject: subject.into(),
                access: Access::Scopes(scope.clone()),
                face_at: None,
                sector: sector.map(str::to_string),
            };
            let input = serde_json::to_vec(&req).unwrap_or_default();
            match self.call(&p, p.exports.claims, input, Some(call)).await {
                Ok(Value::Object(got)) => {
                    // Only the claims the manifest names for granted scopes.
                    claims.extend(got.into_iter().filter(|(k, _)| expected.contains(&k)));
                }
                Ok(_) => {
                    let e = PluginError::Failed("claims reply is not an object".into());
                    if !p.optional {
                        return Err(e);
                    }
                }
                Err(e) if p.optional => tracing::warn!("optional plugin {} left out: {e}", p.name()),
                Err(e) => return Err(e),
            }
        }
        Ok(Released { scope, claims })
    }

    /// One request to a plugin route, already authorised by the caller.
    pub async fn handle(
        &self,
        p: &Arc<Plugin>,
        req: &Request,
        call: Option<CallScope>,
    ) -> Result<Response, PluginError> {
        let input = serde_json::to_vec(req).unwrap_or_default();
        let v = self.call(p, p.exports.handle, input, call).await?;
        serde_json::from_value(v).map_err(|e| PluginError::Failed(format!("malformed response from {}: {e}", p.name())))
    }

    async fn call(
        &self,
        p: &Arc<Plugin>,
        f: idp_plugin_sdk::abi::PluginFn,
        input: Vec<u8>,
        call: Option<CallScope>,
    ) -> Result<Value, PluginError> {
        if !p.available(self.clock.now()) {
            return Err(PluginError::Unavailable(format!("plugin {} is unhealthy", p.name())));
        }
        let Ok(permit) = p.permits.clone().try_acquire_owned() else {
            let msg = format!("plugin {} has too many calls in flight", p.name());
            self.faulted(p, &msg).await;
            return Err(PluginError::Unavailable(msg));
        };
        let exports = p.exports;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit; // held until the plugin returns, even after a timeout
            let _entered = host::enter(call);
            loader::invoke(exports, f, &input)
        });
        let outcome = match tokio::time::timeout(self.timeout, task).await {
            Err(_) => {
                let msg = format!("plugin {} timed out after {} ms", p.name(), self.timeout.as_millis());
                self.faulted(p, &msg).await;
                return Err(PluginError::Unavailable(msg));
            }
            Ok(Err(e)) => Err(blocking_err(e)),
            Ok(Ok(Err((m, _panic)))) => Err(m),
            Ok(Ok(Ok(v))) => Ok(v),
        };
        match outcome {
            Ok(v) => {
                self.succeeded(p).await;
                Ok(v)
            }
            Err(m) => {
                let msg = format!("plugin {}: {m}", p.name());
                self.faulted(p, &msg).await;
                Err(PluginError::Failed(msg))
            }
        }
    }

    async fn faulted(&self, p: &Plugin, msg: &str) {
        tracing::warn!("{msg}");
        p.health.faults.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut g) = p.health.last_error.lock() {
            *g = Some(msg.to_string());
        }
        let n = p.health.consecutive.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.unhealthy_after {
            p.health.open_until.store(self.clock.now() + self.retry_after, Ordering::SeqCst);
            if n == self.unhealthy_after {
                tracing::error!(
                    "plugin {} marked unhealthy after {n} consecutive faults; retried in {} s",
                    p.name(),
                    self.retry_after
                );
                if let Err(e) =
                    plugin_access::record_health(&self.db, p.name(), false, Some(msg.into()), self.clock.now()).await
                {
                    tracing::warn!("cannot record plugin health: {e}");
                }
            }
        }
    }

    async fn succeeded(&self, p: &Plugin) {
        let before = p.health.consecutive.swap(0, Ordering::SeqCst);
        let first = !p.health.seen_success.swap(true, Ordering::SeqCst);
        let stale_mark = first && plugin_access::state(&self.db, p.name()).await.is_ok_and(|s| !s.healthy);
        if before >= self.unhealthy_after || stale_mark {
            tracing::info!("plugin {} is healthy again", p.name());
            if let Err(e) = plugin_access::record_health(&self.db, p.name(), true, None, self.clock.now()).await {
                tracing::warn!("cannot record plugin health: {e}");
            }
        }
    }

    /// Loaded plugins with their shared state (enabled, health) and this
    /// process's fault count.
    pub async fn report(&self) -> Result<Vec<PluginReport>, crate::store::DbErr> {
        let mut out = Vec::new();
        for p in &self.plugins {
            let shared = plugin_access::state(&self.db, p.name()).await?;
            let local_ok = p.health.consecutive.load(Ordering::SeqCst) < self.unhealthy_after;
            out.push(PluginReport {
                name: p.name().into(),
                version: p.manifest.version.clone(),
                file: p.file.clone(),
                sha256: p.sha256.clone(),
                scopes: p.manifest.scopes.clone(),
                routes: p.manifest.routes.clone(),
                profile_fields: p.manifest.profile_fields.clone(),
                optional: p.optional,
                enabled: shared.enabled,
                healthy: local_ok && shared.healthy,
                faults: p.health.faults.load(Ordering::SeqCst),
                last_error: p.last_error().or(shared.last_error),
            });
        }
        Ok(out)
    }
}

/// The host table pointer, moved to the loading thread. The table is
/// leaked and immutable, so sharing it is sound.
struct SendPtr(&'static idp_plugin_sdk::abi::HostTable);
unsafe impl Send for SendPtr {}
