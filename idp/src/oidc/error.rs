//! JSON errors of the token-side endpoints (RFC 6749 §5.2, RFC 6750 §3).
use crate::domain::{DomainError, OAuthError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    OAuth(OAuthError),
    /// A storage failure: 503, never a false success (fosite CVE-2020-15223).
    Unavailable,
    Internal,
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::OAuth(o) => ApiError::OAuth(o),
            DomainError::Store(err) => {
                tracing::error!("storage error: {err}");
                ApiError::Unavailable
            }
            DomainError::Internal(err) => {
                tracing::error!("internal error: {err:#}");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::store::DbErr> for ApiError {
    fn from(e: crate::store::DbErr) -> Self {
        DomainError::Store(e).into()
    }
}

/// A plugin fault at the token endpoint fails closed: a slow or
/// unhealthy plugin is `temporarily_unavailable`, a broken one `server_error`.
impl From<crate::plugins::PluginError> for ApiError {
    fn from(e: crate::plugins::PluginError) -> Self {
        use crate::plugins::PluginError;
        tracing::error!("{e}");
        match e {
            PluginError::Unavailable(_) => {
                ApiError::OAuth(OAuthError::new("temporarily_unavailable", "a plugin is unavailable, retry later"))
            }
            PluginError::Failed(_) => ApiError::OAuth(OAuthError::new("server_error", "a plugin failed")),
            PluginError::Store(_) => ApiError::Unavailable,
        }
    }
}

impl From<crate::domain::tokens::SignError> for ApiError {
    fn from(e: crate::domain::tokens::SignError) -> Self {
        tracing::error!("{e}");
        ApiError::Internal
    }
}

pub fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description) = match &self {
            ApiError::OAuth(e) => {
                let status = match e.code {
                    "invalid_client" => StatusCode::UNAUTHORIZED,
                    "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                    "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, e.code, e.description.as_str())
            }
            ApiError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "storage is unavailable, retry later")
            }
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error"),
        };
        let mut res = (status, axum::Json(json!({ "error": code, "error_description": description }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"idp\""));
        }
        no_store(res)
    }
}
