//! Domain services: no HTTP types here. Handlers call exactly one of these.
pub mod accounts;
pub mod appeals;
pub mod assurance;
pub mod authorize;
pub mod brokering;
pub mod captcha;
pub mod clients;
pub mod consents;
pub mod documents;
pub mod error;
pub mod factors;
pub mod flows;
pub mod grants;
pub mod identity;
pub mod passkeys;
pub mod pending;
pub mod plugin_access;
pub mod profile;
pub mod scan;
pub mod scan_waiters;
pub mod scopes;
pub mod sessions;
pub mod sms_codes;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use error::{DomainError, OAuthError};
