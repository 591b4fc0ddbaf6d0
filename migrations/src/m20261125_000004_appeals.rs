//! Appeals (A8): a name, document number or phone taken by another account.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000004_appeals"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("appeals"))
                    .if_not_exists()
                    .col(col("id").string_len(64).not_null().primary_key())
                    .col(col("kind").text().not_null())
                    .col(col("claimed_value").text().not_null())
                    .col(col("name").text().not_null())
                    .col(col("id_number").text().not_null())
                    .col(col("contact_phone").text().not_null())
                    .col(col("details").text().not_null())
                    .col(col("appellant_user_id").text().null())
                    .col(col("status").text().not_null())
                    .col(col("reason").text().null())
                    .col(col("decided_by").text().null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("decided_at").big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_appeals_status")
                    .table(Alias::new("appeals"))
                    .col(Alias::new("status"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("appeals")).if_exists().to_owned()).await
    }
}
