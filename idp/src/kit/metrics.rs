//! Prometheus metrics at `/metrics` (text exposition format 0.0.4).
//!
//! Counted in memory per node, lock-free on the hot path after a label set
//! is first seen; Prometheus scrapes every node and sums. Labels are
//! bounded: routes are axum's route templates (`/scan/t/{id}`, never the
//! raw path), and the other labels are fixed vocabularies (grant types,
//! sign-in methods, outcomes).
use crate::server::AppState;
use crate::telemetry::Count;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (atomics hold integers).
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        for (i, upper) in BUCKETS.iter().enumerate() {
            if seconds <= *upper {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

type Labels = Vec<(&'static str, String)>;

/// A family of counters or histograms keyed by their label values.
struct Family<T> {
    series: RwLock<BTreeMap<Labels, Arc<T>>>,
}

impl<T: Default> Family<T> {
    fn new() -> Self {
        Family { series: RwLock::new(BTreeMap::new()) }
    }

    fn get(&self, labels: Labels) -> Arc<T> {
        if let Ok(map) = self.series.read()
            && let Some(s) = map.get(&labels)
        {
            return s.clone();
        }
        match self.series.write() {
            Ok(mut map) => map.entry(labels).or_default().clone(),
            // A poisoned lock only loses this one observation.
            Err(_) => Arc::new(T::default()),
        }
    }

    fn snapshot(&self) -> Vec<(Labels, Arc<T>)> {
        self.series.read().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }
}

struct Registry {
    requests: Family<AtomicU64>,
    latency: Family<Histogram>,
    sign_ins: Family<AtomicU64>,
    tokens: Family<AtomicU64>,
    sms: Family<AtomicU64>,
    sms_receipts: Family<AtomicU64>,
    verifier: Family<AtomicU64>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        requests: Family::new(),
        latency: Family::new(),
        sign_ins: Family::new(),
        tokens: Family::new(),
        sms: Family::new(),
        sms_receipts: Family::new(),
        verifier: Family::new(),
    })
}

/// Receives what the core counts (sign-ins, verifier calls, SMS codes): the rules
/// that decide them count them, whatever entry reached them.
struct CoreCounts;

impl crate::telemetry::Sink for CoreCounts {
    fn count(&self, event: Count) {
        let r = registry();
        let (family, labels) = match event {
            Count::SignIn { method, level, outcome } => {
                let method = serde_json::to_value(method).ok().and_then(|v| v.as_str().map(String::from));
                let level = if level == 0 { "none".to_string() } else { format!("L{level}") };
                let labels = vec![
                    ("method", method.unwrap_or_default()),
                    ("level", level),
                    ("outcome", outcome.as_str().to_string()),
                ];
                (&r.sign_ins, labels)
            }
            Count::VerifierCall { check, outcome } => {
                (&r.verifier, vec![("check", check.as_str().to_string()), ("outcome", outcome.to_string())])
            }
            Count::Sms { outcome } => (&r.sms, vec![("outcome", outcome.to_string())]),
        };
        family.get(labels).fetch_add(1, Ordering::Relaxed);
    }
}

/// Connects the core's counters to this registry (once per process).
pub fn install() {
    crate::telemetry::install(Box::new(CoreCounts));
}

/// A token endpoint answer by grant type and outcome.
pub fn token(grant: &str, outcome: &'static str) {
    let grant = match grant {
        "authorization_code" | "refresh_token" | "client_credentials" | "mini_program" => grant,
        g if g == crate::oidc::token_exchange::GRANT_TYPE => "token_exchange",
        _ => "other",
    };
    registry()
        .tokens
        .get(vec![("grant_type", grant.to_string()), ("outcome", outcome.to_string())])
        .fetch_add(1, Ordering::Relaxed);
}

/// A new SMS delivery receipt by vendor and status.
pub fn sms_receipt(vendor: &str, delivered: bool) {
    let vendor = if vendor == "tencent" { "tencent" } else { "aliyun" };
    let status = if delivered { "delivered" } else { "failed" };
    registry()
        .sms_receipts
        .get(vec![("vendor", vendor.to_string()), ("status", status.to_string())])
        .fetch_add(1, Ordering::Relaxed);
}

/// Counts every request and its latency by route template and status class.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = format!("{}xx", res.status().as_u16() / 100);
    let r = registry();
    r.requests
        .get(vec![("route", route.clone()), ("method", method.clone()), ("status", status)])
        .fetch_add(1, Ordering::Relaxed);
    r.latency.get(vec![("route", route), ("method", method)]).observe(started.elapsed().as_secs_f64());
    res
}

/// The database pool and, on SQLite, the writer thread.
fn database(out: &mut String, s: &crate::store::StoreStats, backend: &str) {
    let busy = (s.connections as usize).saturating_sub(s.idle);
    let _ = writeln!(
        out,
        "# HELP idp_db_connections Pooled database connections by state.\n# TYPE idp_db_connections gauge\n\
         idp_db_connections{{backend=\"{backend}\",state=\"busy\"}} {busy}\n\
         idp_db_connections{{backend=\"{backend}\",state=\"idle\"}} {}\n\
         # HELP idp_db_max_connections The pool's bound.\n# TYPE idp_db_max_connections gauge\n\
         idp_db_max_connections{{backend=\"{backend}\"}} {}",
        s.idle, s.max_connections
    );
    if let Some(w) = s.writer {
        for (name, help, v) in [
            ("idp_sqlite_writes_total", "Writes handed to the SQLite writer thread.", w.jobs),
            ("idp_sqlite_commits_total", "Transactions the SQLite writer thread committed them in.", w.commits),
            (
                "idp_sqlite_group_splits_total",
                "Groups rolled back and rerun one by one after a write failed.",
                w.splits,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
    }
}

fn labels_text(labels: &Labels, extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn counters(out: &mut String, name: &str, help: &str, family: &Family<AtomicU64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, v) in family.snapshot() {
        let _ = writeln!(out, "{name}{} {}", labels_text(&labels, None), v.load(Ordering::Relaxed));
    }
}

pub async fn render(State(state): State<AppState>) -> Response {
    let r = registry();
    let mut out = String::new();
    counters(
        &mut out,
        "idp_http_requests_total",
        "HTTP requests by route template, method and status class.",
        &r.requests,
    );
    let name = "idp_http_request_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Time to answer, by route template and method.\n# TYPE {name} histogram");
    for (labels, h) in r.latency.snapshot() {
        for (i, upper) in BUCKETS.iter().enumerate() {
            let le = upper.to_string();
            let n = h.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{} {n}", labels_text(&labels, Some(("le", &le))));
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{} {count}", labels_text(&labels, Some(("le", "+Inf"))));
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{} {sum}", labels_text(&labels, None));
        let _ = writeln!(out, "{name}_count{} {count}", labels_text(&labels, None));
    }
    counters(
        &mut out,
        "idp_sign_ins_total",
        "Sign-ins by method, assurance level reached (none when refused) and outcome.",
        &r.sign_ins,
    );
    counters(
        &mut out,
        "idp_verifier_calls_total",
        "Identity verifier calls by check and answer (or error).",
        &r.verifier,
    );
    database(&mut out, &state.store.stats(), state.store.backend_name());
    counters(&mut out, "idp_tokens_total", "Token endpoint answers by grant type and outcome.", &r.tokens);
    counters(&mut out, "idp_sms_total", "SMS codes sent, refused by the A7 limits, or failed at the gateway.", &r.sms);
    counters(&mut out, "idp_sms_receipts_total", "SMS delivery receipts from the vendor, by status.", &r.sms_receipts);
    // Plugins: enabled and healthy, from the shared state every node sees.
    if let Ok(reports) = state.plugins.report().await {
        let _ = writeln!(
            out,
            "# HELP idp_plugin_healthy 1 when the plugin is enabled and healthy.\n# TYPE idp_plugin_healthy gauge"
        );
        for p in reports {
            let v = u8::from(p.enabled && p.healthy);
            let _ = writeln!(out, "idp_plugin_healthy{{plugin=\"{}\"}} {v}", p.name);
            let _ = writeln!(out, "idp_plugin_faults{{plugin=\"{}\"}} {}", p.name, p.faults);
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
