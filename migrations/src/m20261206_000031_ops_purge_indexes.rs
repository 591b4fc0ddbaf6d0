//! Continuous purge (issue 16): every table the upkeep task purges gets an
//! index on `expires_at`, so each small batch finds its expired rows by
//! index instead of scanning a large table while it holds the write lock.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000031_ops_purge_indexes"
    }
}

const TABLES: &[(&str, &str)] = &[
    ("auth_requests", "auth_requests_expires"),
    ("auth_codes", "auth_codes_expires"),
    ("refresh_tokens", "refresh_tokens_expires"),
    ("revoked_tokens", "revoked_tokens_expires"),
    ("rate_counters", "rate_counters_expires"),
    ("used_jtis", "used_jtis_expires"),
    ("plugin_kv", "plugin_kv_expires"),
    ("upstream_flows", "upstream_flows_expires"),
    ("scan_tickets", "scan_tickets_expires"),
    ("webauthn_ceremonies", "webauthn_ceremonies_expires"),
    ("sessions", "sessions_expires"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name) in TABLES {
            manager.create_index(index(table, name, &["expires_at"], false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name) in TABLES {
            manager.drop_index(Index::drop().name(*name).table(Alias::new(*table)).to_owned()).await?;
        }
        Ok(())
    }
}
