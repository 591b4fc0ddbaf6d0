//! The reviewer's view of one appeal (A8): its details, due time and
//! evidence images. The images are served only through the console's gate
//! to staff allowed to review, with the type sniffed from their bytes when
//! they were filed, `nosniff` and `inline`, and never cached.
use super::{Console, refused};
use crate::domain::staff::reviews::{self, AppealRow};
use crate::kit::extract::PageError;
use crate::kit::human;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde_json::Value;

/// An appeal row for a console template, with its due time as text.
pub fn row_json(r: &AppealRow, locale: &str) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("due_text".into(), r.due_at.map(|d| human::datetime(d, locale)).into());
    }
    v
}

/// Rows for a console template.
pub fn rows_json(rows: &[AppealRow], locale: &str) -> Vec<Value> {
    rows.iter().map(|r| row_json(r, locale)).collect()
}

/// `GET /admin/appeals/{id}`: one appeal with its evidence.
pub async fn appeal_show(
    State(state): State<AppState>,
    c: Console,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let row = reviews::appeal(&state.store, &c.staff, &id, state.clock.now()).await.map_err(refused)?;
    let mut ctx = tera::Context::new();
    ctx.insert("adm", &serde_json::json!({ "appeal": row_json(&row, c.locale) }));
    Ok(c.render(&state, jar, "admin_appeal.html", ctx))
}

/// `GET /admin/appeals/{id}/evidence/{evidence}`: one evidence image.
pub async fn appeal_evidence(
    State(state): State<AppState>,
    c: Console,
    Path((id, evidence)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (content_type, bytes) =
        reviews::evidence_image(&state.store, &c.staff, &id, &evidence).await.map_err(refused)?;
    // Only the two sniffed types are ever stored; anything else is refused.
    let content_type = match content_type.as_str() {
        "image/jpeg" => HeaderValue::from_static("image/jpeg"),
        "image/png" => HeaderValue::from_static("image/png"),
        _ => return Err(PageError::not_found()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("inline")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store, private")),
        ],
        bytes,
    )
        .into_response())
}
