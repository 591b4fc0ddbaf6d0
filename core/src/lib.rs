//! The application core of idp: every rule of the provider and the state it
//! keeps, with no HTTP framework and no templates (this crate depends on
//! neither axum nor tera, so no rule can hide in a handler).
//!
//! - `domain`: the use cases and their rules, one module per capability;
//! - `store`: persistence (sea-orm entities, transactions, counters);
//! - `crypto`: tokens, digests, password hashing, signing keys;
//! - `ports`: the outside world behind traits (SMS, mail, identity
//!   verifier, upstream providers) with development adapters;
//! - `config`, `clock`, `net`: typed configuration, the injected clock,
//!   client addresses behind proxies;
//! - `telemetry`: what the rules count for operators (`/metrics`).
//!
//! The `idp` crate holds the entries (pages, OAuth endpoints, app APIs, the
//! CLI, the plugin host) and calls into this one.
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod net;
pub mod ports;
pub mod store;
pub mod telemetry;
