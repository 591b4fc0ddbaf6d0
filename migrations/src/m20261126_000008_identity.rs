//! Real-name identity (A2, B2–B5): the identity bound to an account (one
//! holder per document, enforced by a unique index), pending takeovers,
//! the record of every verification, and the operators who may record
//! counter (in-person, L4) verifications.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000008_identity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("identities"))
                    .if_not_exists()
                    .col(col("user_id").string_len(64).not_null().primary_key())
                    .col(col("doc_type").string_len(40).not_null())
                    .col(col("doc_number").string_len(40).not_null())
                    .col(col("name").text().not_null())
                    .col(col("birth_date").text().null())
                    .col(col("sex").text().null())
                    .col(col("valid_from").text().not_null())
                    .col(col("valid_to").text().null())
                    .col(col("level").integer().not_null())
                    .col(col("method").text().not_null())
                    .col(col("bound_at").big_integer().not_null())
                    .col(col("updated_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // B5: an identity has exactly one holder; racing binds and takeovers
        // are decided by this index, in the database.
        manager
            .create_index(
                Index::create()
                    .name("ux_identities_document")
                    .table(Alias::new("identities"))
                    .col(Alias::new("doc_type"))
                    .col(Alias::new("doc_number"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("identity_takeovers"))
                    .if_not_exists()
                    .col(col("id").string_len(64).not_null().primary_key())
                    .col(col("user_id").string_len(64).not_null())
                    .col(col("document").text().not_null())
                    .col(col("holder_user_id").string_len(64).null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("expires_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_identity_takeovers_user")
                    .table(Alias::new("identity_takeovers"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("verifications"))
                    .if_not_exists()
                    .col(col("id").string_len(64).not_null().primary_key())
                    .col(col("user_id").string_len(64).null())
                    .col(col("kind").string_len(20).not_null())
                    .col(col("subject").text().not_null())
                    .col(col("outcome").string_len(30).not_null())
                    .col(col("reference").text().null())
                    .col(col("detail").text().null())
                    .col(col("created_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_verifications_user")
                    .table(Alias::new("verifications"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("operators"))
                    .if_not_exists()
                    .col(col("user_id").string_len(64).not_null().primary_key())
                    .col(col("granted_by").text().not_null())
                    .col(col("granted_at").big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["operators", "verifications", "identity_takeovers", "identities"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
