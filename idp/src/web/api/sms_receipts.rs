//! `POST /sms/receipts/{vendor}?token=…` (issue 18): delivery receipts
//! pushed by Aliyun (HTTP batch push, `SmsReport`) and Tencent Cloud (status
//! callback). Neither signs its pushes, so the URL carries
//! `sms.receipt_token`, compared in constant time. Each receipt is recorded
//! once (`ports::sms::receipts`) and counted in `idp_sms_receipts_total`.
use crate::ports::sms::receipts;
use crate::server::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn receive(
    State(state): State<AppState>,
    Path(vendor): Path<String>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let Some(expected) = state.config.sms.receipt_token.as_deref().filter(|t| !t.is_empty()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !matches!(vendor.as_str(), "aliyun" | "tencent") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !bool::from(q.token.as_bytes().ct_eq(expected.as_bytes())) {
        tracing::warn!("sms receipt for {vendor} with a wrong token");
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(batch) = receipts::parse(&vendor, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let now = state.clock.now();
    for r in &batch {
        match receipts::record(&state.store, &vendor, r, now).await {
            Ok(true) => crate::kit::metrics::sms_receipt(&vendor, r.delivered),
            Ok(false) => {}
            // Not acknowledged: the vendor pushes the batch again later.
            Err(e) => {
                tracing::error!("sms receipt: {e}");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    Json(receipts::acknowledgement(&vendor)).into_response()
}
