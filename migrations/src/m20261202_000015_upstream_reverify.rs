//! Re-verification at a linked upstream provider (A3/A5): an
//! upstream authorization in flight says what it was started for. A row
//! without a purpose is a third-party sign-in; `reverify` rows belong to
//! one signed-in account and session and return to one local page.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000015_upstream_reverify"
    }
}

/// One ALTER per column: SQLite adds a single column per statement.
const COLUMNS: [&str; 4] = ["purpose", "user_id", "sid", "return_to"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in COLUMNS {
            manager
                .alter_table(Table::alter().table(Alias::new("upstream_flows")).add_column(text_null(name)).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in COLUMNS {
            manager
                .alter_table(
                    Table::alter().table(Alias::new("upstream_flows")).drop_column(Alias::new(name)).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
