//! Protocol endpoints (OIDC Core, Discovery, RFC 6749/7009/7662/9068).
pub mod authorize;
pub mod ciba;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod flow;
pub mod form;
pub mod introspect;
pub mod logout;
pub mod mini_program;
pub mod par;
pub mod register;
pub mod revoke;
pub mod token;
pub mod token_exchange;
pub mod userinfo;
