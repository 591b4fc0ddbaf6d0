//! Assurance levels (B1–B7): how well an account's identity is proven
//! (`users.proofing_level`, 1 = none … 4 = in person), which factors a
//! session used and when (`sessions.factors`, so the level can be computed
//! against each level's max age at the moment a token is issued), and a
//! per-client minimum level (`clients.min_acr`).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000006_assurance"
    }
}

// SQLite adds one column per ALTER TABLE statement.
async fn add(manager: &SchemaManager<'_>, table: &'static str, column: ColumnDef) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(Alias::new(table)).add_column(column).to_owned()).await
}

async fn drop(manager: &SchemaManager<'_>, table: &'static str, column: &'static str) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(manager, "users", col("proofing_level").integer().not_null().default(1).to_owned()).await?;
        add(manager, "sessions", col("factors").text().not_null().default("[]").to_owned()).await?;
        // The factor list replaces the stored amr/acr: both are derived
        // from it when a code is issued.
        drop(manager, "sessions", "amr").await?;
        drop(manager, "sessions", "acr").await?;
        add(manager, "clients", col("min_acr").text().null().to_owned()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, "clients", "min_acr").await?;
        add(manager, "sessions", col("amr").text().not_null().default("[]").to_owned()).await?;
        add(manager, "sessions", col("acr").text().not_null().default("").to_owned()).await?;
        drop(manager, "sessions", "factors").await?;
        drop(manager, "users", "proofing_level").await
    }
}
