//! Signing in: password, SMS code, scan-to-login, upstream providers,
//! registration and password reset, the second step, consent and step-up.
pub mod brand;
pub mod consent;
pub mod device;
pub mod forgot;
pub mod login;
pub mod mfa;
pub mod register;
pub mod scan;
pub mod second_step;
pub mod select_account;
pub mod sms_form;
pub mod sms_login;
pub mod step_up;
pub mod step_up_factor;
pub mod upstream;
pub mod upstream_reverify;
