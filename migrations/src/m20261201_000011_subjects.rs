//! Stable subjects across an identity takeover (B5): the `sub` relying apps
//! see belongs to the person, so when another account takes over a
//! real-name identity the subject moves with it. `account_subjects` holds
//! the subject of every account whose subject is not its own id (no row:
//! `sub` = account id, which is every account that never took part in a
//! takeover). `grants.subject` records the `sub` a grant was issued
//! under, so its tokens (and refreshed ID tokens, OIDC Core §12.2) keep
//! saying what the app was first told.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000011_subjects"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("account_subjects"))
                    .if_not_exists()
                    .col(col("user_id").string_len(64).not_null().primary_key())
                    .col(col("subject").string_len(64).not_null())
                    .col(col("updated_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // One account per subject, decided by the database.
        manager
            .create_index(
                Index::create()
                    .name("ux_account_subjects_subject")
                    .table(Alias::new("account_subjects"))
                    .col(Alias::new("subject"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Alias::new("grants")).add_column(col("subject").string_len(64).null()).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).drop_column(Alias::new("subject")).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Alias::new("account_subjects")).if_exists().to_owned()).await
    }
}
