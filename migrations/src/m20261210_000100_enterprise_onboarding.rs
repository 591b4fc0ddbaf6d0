//! Issue 20 (C2, E2 with A2): what agent registration collects is kept
//! (`agent_registrations`, one row per registered agent delegation), and a
//! relative bound with a passport or permit keeps its document type and
//! declared birth date (`kin_documents`), from which the age rules count.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000100_enterprise_onboarding"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "agent_registrations",
                vec![
                    string_pk("delegation_id"),
                    text("region"),
                    text("doc_type"),
                    text("valid_from"),
                    text_null("valid_to"),
                    text("gender"),
                    text("ethnicity"),
                    text("phone"),
                    text("rep_phone"),
                    big("created_at"),
                ],
            ))
            .await?;
        manager
            .create_table(table(
                "kin_documents",
                vec![string_pk("delegation_id"), text("doc_type"), text("birth_date"), big("created_at")],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["kin_documents", "agent_registrations"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
