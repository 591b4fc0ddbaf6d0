//! Browser- and app-facing entries, grouped by capability: `auth` (signing
//! in), `account` (the personal centre), `enterprise` (legal persons and
//! agents), `api` (the citizen app, plugins, health, metrics). Each handler
//! extracts its input, calls one core use case and renders the outcome.
pub mod account;
pub mod admin;
pub mod api;
pub mod auth;
pub mod enterprise;
pub mod help;
pub mod legal;

// The shared HTTP kit, at the paths the pages have always used.
pub use crate::kit::{cookies, pages};
