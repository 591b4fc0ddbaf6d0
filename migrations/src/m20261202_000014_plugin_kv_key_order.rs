//! Plugin storage pages walk `plugin_kv` by key range and key
//! order. SQLite compares text byte by byte; a PostgreSQL database created
//! with a linguistic collation (`en_US.UTF-8`, `zh_CN.UTF-8`) would order
//! `log/…` keys by language rules, so a prefix would not be one contiguous
//! range and a cursor could skip or repeat rows. The `C` collation makes
//! PostgreSQL order keys as SQLite does (code point = UTF-8 byte order);
//! the primary-key index is rebuilt with it.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000014_plugin_kv_key_order"
    }
}

/// Sets the collation of the key column (PostgreSQL only; SQLite already
/// compares bytes).
async fn key_collation(manager: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let sql = format!(r#"ALTER TABLE "plugin_kv" ALTER COLUMN "key" TYPE TEXT COLLATE "{collation}""#);
    manager.get_connection().execute_unprepared(&sql).await.map(|_| ())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        key_collation(manager, "C").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        key_collation(manager, "default").await
    }
}
