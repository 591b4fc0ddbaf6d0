//! What plugins may reach (E1–E6): which app may request which plugin scope,
//! and a person's relations as the plugins see them.
pub mod kv;
pub mod plugin_access;
pub mod relations;
