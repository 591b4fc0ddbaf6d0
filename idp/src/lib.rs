//! idp — an OpenID Connect identity provider for unified identity platforms.
//!
//! Layers: the entries here — `web` (pages), `oidc` (OAuth/OIDC endpoints),
//! the app APIs, the CLI and the plugin host — parse input, make one call
//! into the application core (`idp-core`: `domain` decides, `store`
//! persists, `crypto` signs and hashes, `ports` reach the outside world)
//! and render the answer. The core's modules are re-exported under their
//! old paths (`idp::domain`, `crate::store` …).
// The discovery document is one `json!` literal with many members.
#![recursion_limit = "256"]
pub use idp_core::{clock, config, crypto, domain, net, ports, store, telemetry};

pub mod demo;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod i18n;
pub mod kit;
pub mod oidc;
pub mod plugins;
pub mod server;
pub mod web;

pub use server::{AppState, build_state, router, serve, serve_until};
