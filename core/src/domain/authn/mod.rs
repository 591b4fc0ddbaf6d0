//! Authentication (A3, A4, A7, B6, D1): how a person proves who they are —
//! sessions, password throttling, captchas, SMS codes, authenticator apps,
//! passkeys, scan-to-login, upstream providers — and the sign-in requests
//! waiting for them.
pub mod brokering;
pub mod captcha;
pub mod console;
pub mod factors;
pub mod flows;
pub mod mini_program;
pub mod passkeys;
pub mod pending;
pub mod reset;
pub mod return_path;
pub mod reverify;
pub mod scan;
pub mod scan_waiters;
pub mod second_step;
pub mod sessions;
pub mod sign_in;
pub mod sms_codes;
pub mod step_up;
pub mod throttle;
