//! Citizen accounts (A1, A3, A7): SMS codes, graphic captchas, the
//! development message sink and the audit log.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000002_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table(Alias::new("dev_messages"))
                .if_not_exists()
                .col(col("id").string_len(64).not_null().primary_key())
                .col(col("channel").text().not_null())
                .col(col("recipient").text().not_null())
                .col(col("purpose").text().not_null())
                .col(col("body").text().not_null())
                .col(col("created_at").big_integer().not_null())
                .to_owned(),
            Table::create()
                .table(Alias::new("sms_codes"))
                .if_not_exists()
                .col(col("key").string_len(128).not_null().primary_key())
                .col(col("code_hash").text().not_null())
                .col(col("attempts").big_integer().not_null().default(0))
                .col(col("consumed").boolean().not_null().default(false))
                .col(col("created_at").big_integer().not_null())
                .col(col("expires_at").big_integer().not_null())
                .to_owned(),
            Table::create()
                .table(Alias::new("captchas"))
                .if_not_exists()
                .col(col("id").string_len(64).not_null().primary_key())
                .col(col("answer_hash").text().not_null())
                .col(col("expires_at").big_integer().not_null())
                .to_owned(),
            // Multi-step self-service flows (A4 reset, later A5/A6): the step
            // advances by a conditional UPDATE, so a step cannot be skipped
            // or replayed, and the flow is bound to one browser.
            Table::create()
                .table(Alias::new("account_flows"))
                .if_not_exists()
                .col(col("id").string_len(64).not_null().primary_key())
                .col(col("kind").text().not_null())
                .col(col("user_id").text().not_null())
                .col(col("browser").text().not_null())
                .col(col("step").big_integer().not_null())
                .col(col("req").text().null())
                .col(col("expires_at").big_integer().not_null())
                .to_owned(),
            Table::create()
                .table(Alias::new("audit_log"))
                .if_not_exists()
                .col(col("id").string_len(64).not_null().primary_key())
                .col(col("user_id").text().null())
                .col(col("action").text().not_null())
                .col(col("detail").text().not_null())
                .col(col("ip").text().null())
                .col(col("created_at").big_integer().not_null())
                .to_owned(),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        // A3: "remember this device for 30 days" — such a session skips the
        // idle timeout and lives 30 days.
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("sessions"))
                    .add_column(col("remember").boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_dev_messages_recipient")
                    .table(Alias::new("dev_messages"))
                    .col(Alias::new("recipient"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_user")
                    .table(Alias::new("audit_log"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("sessions")).drop_column(Alias::new("remember")).to_owned())
            .await?;
        for name in ["audit_log", "account_flows", "captchas", "sms_codes", "dev_messages"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
