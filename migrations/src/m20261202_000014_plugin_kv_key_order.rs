//! Plugin storage pages (issue 7) walk `plugin_kv` by key range and key
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(r#"ALTER TABLE "plugin_kv" ALTER COLUMN "key" TYPE TEXT COLLATE "C""#)
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(r#"ALTER TABLE "plugin_kv" ALTER COLUMN "key" TYPE TEXT COLLATE "default""#)
            .await
            .map(|_| ())
    }
}
