//! Ports to the outside world. Each has a real adapter and a development
//! sink that records what would have been sent where tests and operators
//! can read it.
pub mod mail;
pub mod notify;
pub mod sms;
pub mod upstream;
pub mod verifier;
