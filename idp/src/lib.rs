//! idp — an OpenID Connect identity provider for unified identity platforms.
//!
//! Layers: `web` and `oidc` hold HTTP handlers (parse → one domain call →
//! render); `domain` decides; `store` persists; `crypto` signs and hashes.
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod i18n;
pub mod net;
pub mod oidc;
pub mod plugins;
pub mod ports;
pub mod server;
pub mod store;
pub mod web;

pub use server::{AppState, build_state, router, serve};
