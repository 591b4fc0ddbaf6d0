//! Identity brokering (A3, third-party login): which upstream account is
//! linked to which local account, and the short-lived, browser-bound state
//! of sign-ins in flight at an upstream provider. Both live in the database
//! so any node can finish a flow another node started.
use crate::util::*;
use sea_orm_migration::prelude::*;

// Deleting an account (A6) deletes its links with it (foreign key cascade).

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000005_brokering"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("upstream_links"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(text("upstream"))
                    .col(text("issuer"))
                    .col(text("subject"))
                    .col(ColumnDef::new(Alias::new("user_id")).string_len(128).not_null())
                    .col(text("method"))
                    .col(ColumnDef::new(Alias::new("created_at")).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("upstream_links"), Alias::new("user_id"))
                            .to(Alias::new("users"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One upstream account maps to one local account, and a local
        // account has at most one account at each upstream.
        manager
            .create_index(
                Index::create()
                    .name("upstream_links_issuer_subject")
                    .table(Alias::new("upstream_links"))
                    .col(Alias::new("issuer"))
                    .col(Alias::new("subject"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("upstream_links_upstream_user")
                    .table(Alias::new("upstream_links"))
                    .col(Alias::new("upstream"))
                    .col(Alias::new("user_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("upstream_flows"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(text("upstream"))
                    .col(text("browser"))
                    .col(text_null("req"))
                    .col(text_null("nonce"))
                    .col(text_null("verifier"))
                    .col(text_null("issuer"))
                    .col(text_null("subject"))
                    .col(ColumnDef::new(Alias::new("expires_at")).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["upstream_flows", "upstream_links"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
