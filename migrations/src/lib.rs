//! Database migrations for idp, written once in the SeaQuery DSL so the same
//! code path creates the schema on SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod util;

mod m20261124_000001_core;
mod m20261124_000002_accounts;
mod m20261125_000003_plugins;
mod m20261125_000004_appeals;
mod m20261125_000005_brokering;
mod m20261126_000006_assurance;
mod m20261126_000007_scan;
mod m20261126_000008_identity;
mod m20261126_000009_factors;
mod m20261126_000010_delegation;
mod m20261201_000011_subjects;
mod m20261201_000012_gate_tickets;
mod m20261201_000013_agent_password;
mod m20261202_000014_plugin_kv_key_order;
mod m20261202_000015_upstream_reverify;
mod m20261206_000018_sec_proto;
mod m20261206_000019_sec_kin;
mod m20261206_000020_sms_sends;
mod m20261206_000021_fapi;
mod m20261206_000030_staff;
mod m20261206_000031_ops_purge_indexes;
mod m20261207_000041_second_step;
mod m20261207_000052_console_apps;
mod m20261208_000050_pairwise_device;
mod m20261210_000060_audit_chain;
mod m20261210_000070_console;
mod m20261210_000080_registration;
mod m20261210_000085_ciba;
mod m20261210_000100_enterprise_onboarding;
mod m20261210_000105_appeal_evidence;
mod m20261211_000130_mtls;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_core::Migration),
            Box::new(m20261124_000002_accounts::Migration),
            Box::new(m20261125_000003_plugins::Migration),
            Box::new(m20261125_000004_appeals::Migration),
            Box::new(m20261125_000005_brokering::Migration),
            Box::new(m20261126_000006_assurance::Migration),
            Box::new(m20261126_000007_scan::Migration),
            Box::new(m20261126_000008_identity::Migration),
            Box::new(m20261126_000009_factors::Migration),
            Box::new(m20261126_000010_delegation::Migration),
            Box::new(m20261201_000011_subjects::Migration),
            Box::new(m20261201_000012_gate_tickets::Migration),
            Box::new(m20261201_000013_agent_password::Migration),
            Box::new(m20261202_000014_plugin_kv_key_order::Migration),
            Box::new(m20261202_000015_upstream_reverify::Migration),
            Box::new(m20261206_000018_sec_proto::Migration),
            Box::new(m20261206_000019_sec_kin::Migration),
            Box::new(m20261206_000020_sms_sends::Migration),
            Box::new(m20261206_000021_fapi::Migration),
            Box::new(m20261206_000030_staff::Migration),
            Box::new(m20261206_000031_ops_purge_indexes::Migration),
            Box::new(m20261207_000041_second_step::Migration),
            Box::new(m20261207_000052_console_apps::Migration),
            Box::new(m20261208_000050_pairwise_device::Migration),
            Box::new(m20261210_000060_audit_chain::Migration),
            Box::new(m20261210_000070_console::Migration),
            Box::new(m20261210_000080_registration::Migration),
            Box::new(m20261210_000085_ciba::Migration),
            Box::new(m20261210_000100_enterprise_onboarding::Migration),
            Box::new(m20261210_000105_appeal_evidence::Migration),
            Box::new(m20261211_000130_mtls::Migration),
        ]
    }
}
