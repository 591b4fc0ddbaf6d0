//! The use cases and their rules, grouped by capability. Entries (pages,
//! OAuth endpoints, app APIs, the CLI, the plugin host) call one use case
//! each; the use case owns its authorisation check, its transaction, its
//! audit record and its notices.
//!
//! - `authn`: proving who someone is (sessions, throttling, SMS codes,
//!   factors, passkeys, scan-to-login, upstream providers);
//! - `identity`: accounts, real-name binding, documents, appeals;
//! - `assurance`: levels L1–L4 and the face gates that raise them;
//! - `delegation`: acting for an enterprise, a relative or another person;
//! - `clients`: relying apps, their access, consent and scopes;
//! - `tokens`: authorization requests, grants, subjects and signed tokens;
//! - `plugins`: what plugins may reach;
//! - `audit`, `error`: shared by all; `review`: the decide-once rule of
//!   requests staff approve or reject (appeals, representative changes).
pub mod assurance;
pub mod audit;
pub mod authn;
pub mod clients;
pub mod delegation;
pub mod error;
pub mod identity;
pub mod plugins;
pub mod review;
pub mod staff;
pub mod tokens;

pub use error::{DomainError, OAuthError};
