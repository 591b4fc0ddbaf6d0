//! Console apps (issue 15, G1): an app can be disabled without deleting
//! it, and after a secret rotation the previous secret stays valid until
//! `old_secret_until` so the app can roll its configuration over.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000052_console_apps"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds columns one at a time.
        for c in [flag("disabled"), text_null("old_secret_hash"), big_null("old_secret_until")] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).add_column(c).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for c in ["disabled", "old_secret_hash", "old_secret_until"] {
            manager
                .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
