//! Browser-facing pages: sign-in, consent, account selection, errors,
//! registration and the personal centre.
pub mod account;
pub mod agent_password;
pub mod agent_register;
pub mod agent_reset;
pub mod appeal;
pub mod consent;
pub mod delegations;
pub mod enterprise;
pub mod forgot;
pub mod health;
pub mod identity;
pub mod identity_extra;
pub mod login;
pub mod metrics;
pub mod mfa;
pub mod personal;
pub mod plugin_routes;
pub mod register;
pub mod scan;
pub mod scan_api;
pub mod security;
pub mod select_account;
pub mod sms_form;
pub mod sms_login;
pub mod step_up;
pub mod step_up_factor;
pub mod upstream;
pub mod upstream_reverify;

// The shared HTTP kit, at the paths the pages have always used.
pub use crate::kit::{cookies, pages};
