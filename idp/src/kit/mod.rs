//! The HTTP kit every entry shares — pages (`web`) and protocol endpoints
//! (`oidc`) alike: cookies and CSRF, the browser id, the client address,
//! the themed page and error renderers. It depends on neither `web` nor
//! `oidc`, so the two entry layers import it and never each other's
//! helpers (`web` may call into `oidc` to continue a flow; `oidc` never
//! imports `web`).
pub mod bilingual;
pub mod cookies;
pub mod extract;
pub mod frame;
pub mod human;
pub mod metrics;
pub mod pages;
pub mod personal;
