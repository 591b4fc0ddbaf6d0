//! Machine-facing routes: the citizen app's scan and face APIs, plugin
//! routes, health and readiness.
pub mod face;
pub mod health;
pub mod plugin_routes;
pub mod scan_api;
pub mod sms_receipts;
