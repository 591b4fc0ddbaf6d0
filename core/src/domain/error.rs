//! Domain errors. OAuth errors carry the exact RFC 6749 / OIDC error codes;
//! storage failures are kept apart so they surface as 503, never as success
//! (fosite CVE-2020-15223).
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", d)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    OAuth(OAuthError),
    #[error("storage unavailable: {0}")]
    Store(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl From<OAuthError> for DomainError {
    fn from(e: OAuthError) -> Self {
        DomainError::OAuth(e)
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
