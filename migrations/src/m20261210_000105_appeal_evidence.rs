//! Appeals (A8, issue 20): evidence images and the review promise.
//!
//! `appeal_evidence` keeps the photos an appellant attaches in the database
//! (so every node serves them and a backup holds them), capped by the use
//! case at 3 images of at most 2 MiB each per appeal. A decision sets
//! `expires_at` (30 days later) and the periodic purge deletes them then.
//! `appeal_due` holds each appeal's due time (the end of the next working
//! day) and when the reviewers were reminded that it is overdue (once).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000105_appeal_evidence"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "appeal_evidence",
                vec![
                    string_pk("id"),
                    text("appeal_id"),
                    text("content_type"),
                    big("size"),
                    col("data").blob().not_null().to_owned(),
                    big("created_at"),
                    big_null("expires_at"),
                ],
            ))
            .await?;
        manager.create_index(index("appeal_evidence", "ix_appeal_evidence_appeal", &["appeal_id"], false)).await?;
        manager.create_index(index("appeal_evidence", "ix_appeal_evidence_expires", &["expires_at"], false)).await?;
        manager
            .create_table(table("appeal_due", vec![string_pk("appeal_id"), big("due_at"), big_null("reminded_at")]))
            .await?;
        manager.create_index(index("appeal_due", "ix_appeal_due_due", &["due_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["appeal_due", "appeal_evidence"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
