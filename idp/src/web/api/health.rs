//! Liveness and readiness for load balancers and orchestrators.
//!
//! `/healthz` answers while the process serves HTTP at all (restart it when
//! this fails). `/readyz` answers 200 only when this node can really serve
//! sign-ins: the database answers, the signing keys are loaded, and every
//! required (not `optional`) enabled plugin is healthy. A load balancer
//! takes a node that is not ready out of rotation instead of sending
//! citizens to 503 pages; the node comes back by itself once the database
//! does (the pool reconnects on the next check).
use crate::crypto::jws::Alg;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// How long the database may take to answer `SELECT 1` before the node
/// counts as not ready.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn live() -> Response {
    (StatusCode::OK, Json(json!({ "status": "alive" }))).into_response()
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(DB_CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!("readiness: database: {e}");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let keys = state.keys.snapshot();
    let keys = if keys.signer(Alg::Es256).is_some() && keys.plugin_signer().is_some() { "ok" } else { "missing" };
    // Plugin health is kept in the database; without it the plugins count
    // as unknown (the database check already fails the node).
    let plugins = match state.plugins.report().await {
        Ok(reports) => {
            let failing: Vec<String> =
                reports.into_iter().filter(|p| p.enabled && !p.optional && !p.healthy).map(|p| p.name).collect();
            if failing.is_empty() { json!("ok") } else { json!({ "unhealthy": failing }) }
        }
        Err(_) => json!("unknown"),
    };
    let ready = database == "ok" && keys == "ok" && plugins == json!("ok");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "database": database, "keys": keys, "plugins": plugins },
    });
    (status, Json(body)).into_response()
}
