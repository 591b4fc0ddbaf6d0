//! Plugin storage: a namespaced key-value table kept in the
//! provider's database so a plugin works unchanged on SQLite and PostgreSQL
//! and on several nodes; which clients may request which plugin scopes
//! (G1); and each plugin's
//! administrative state (enabled, health) shared by every node.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_plugins"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_kv"))
                    .if_not_exists()
                    .col(text("plugin"))
                    .col(text("key"))
                    .col(text("value"))
                    .col(ColumnDef::new(Alias::new("expires_at")).big_integer().null())
                    .col(ColumnDef::new(Alias::new("updated_at")).big_integer().not_null())
                    .primary_key(Index::create().col(Alias::new("plugin")).col(Alias::new("key")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("client_plugin_scopes"))
                    .if_not_exists()
                    .col(text("client_id"))
                    .col(text("scope"))
                    .col(ColumnDef::new(Alias::new("granted_at")).big_integer().not_null())
                    .primary_key(Index::create().col(Alias::new("client_id")).col(Alias::new("scope")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_states"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("name")).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("enabled")).boolean().not_null().default(true))
                    .col(ColumnDef::new(Alias::new("healthy")).boolean().not_null().default(true))
                    .col(ColumnDef::new(Alias::new("last_error")).text().null())
                    .col(ColumnDef::new(Alias::new("updated_at")).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["plugin_states", "client_plugin_scopes", "plugin_kv"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
