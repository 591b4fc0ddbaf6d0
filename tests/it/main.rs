#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test harness: a failed step is a failed test
//! The one integration-test binary: every test drives the real server over
//! HTTP with a real database (SQLite, and PostgreSQL when
//! IDP_TEST_POSTGRES_URL is set).
mod support;

mod plugin_kit;

mod accounts;
mod agent_password;
mod appointments;
mod assurance;
mod audit;
mod authorize;
mod bo_dates;
mod branding;
mod brokering;
mod ciba;
mod console;
mod console_audit;
mod console_queues;
mod delegation;
mod device;
mod e_certificate;
mod enterprise_onboarding;
mod enterprise_ops;
mod face_gates;
mod factors;
mod fapi;
mod flows;
mod health_code;
mod health_code_admin_forms;
mod health_code_backfill;
mod health_code_gaps;
mod health_code_pages;
mod health_code_shared;
mod i18n_keys;
mod identity;
mod load;
mod logout;
mod manual;
mod manual_gaps;
mod mtls;
mod nodes;
mod ops;
mod pairwise;
mod plans;
mod plugin_storage;
mod plugins;
mod portal;
mod portal_text;
mod production_guard;
mod proxies;
mod readiness;
mod registration;
mod reverify;
mod robustness;
mod scan;
mod sec_citizen;
mod sec_enterprise;
mod sec_kin;
mod sec_protocol;
mod sms_limits;
mod subjects;
mod tokens;
mod upstream_reverify;
mod usernameless;
mod vendors;
