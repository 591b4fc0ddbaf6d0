//! Kin binding proof (E2): every binding records the
//! guardian's acceptance of the commitment (承诺书: who, when, which text)
//! and the verifier's reference for the relative's name + ID number check;
//! a guardian or the relative can report a malicious binding, which an
//! operator decides (remove or dismiss).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000019_sec_kin"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table(
                "kin_commitments",
                vec![
                    string_pk("delegation_id"),
                    text("user_id"),
                    text("text_version"),
                    big("accepted_at"),
                    text("verifier_reference"),
                    big("created_at"),
                ],
            ))
            .await?;
        manager
            .create_table(table(
                "kin_reports",
                vec![
                    string_pk("id"),
                    text("delegation_id"),
                    text("relative_id_number"),
                    text("reporter_user_id"),
                    text("reason"),
                    text("status"),
                    big("created_at"),
                    big_null("decided_at"),
                    text_null("decided_by"),
                ],
            ))
            .await?;
        manager.create_index(index("kin_reports", "ix_kin_reports_status", &["status", "created_at"], false)).await?;
        manager
            .create_index(index(
                "kin_reports",
                "ix_kin_reports_delegation",
                &["delegation_id", "reporter_user_id"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["kin_reports", "kin_commitments"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
