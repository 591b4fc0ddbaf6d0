//! Scan-to-login (D1) and app-mediated checks (D2): tickets shown as a QR
//! code in one browser and decided in the citizen app. Every state change is
//! a conditional UPDATE on this table, so it holds across nodes; the index on
//! `updated_at` lets each node find, in one query, the tickets another node
//! changed for the browsers it holds waiting.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000007_scan"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("scan_tickets"))
                    .if_not_exists()
                    .col(col("id").string_len(64).not_null().primary_key())
                    // login | face | approval (new purposes need no schema change)
                    .col(col("purpose").text().not_null())
                    // pending | scanned | confirmed | denied | consumed
                    .col(col("status").text().not_null())
                    // SHA-256 of the creating browser's binding cookie
                    .col(col("browser").text().not_null())
                    .col(col("browser_ip").text().not_null())
                    .col(col("req").text().null())
                    .col(col("client_id").text().null())
                    // face / approval: the account the browser is signed in as
                    .col(col("subject_user_id").text().null())
                    // approval: what is being approved (JSON), shown in the app
                    .col(col("detail").text().null())
                    .col(col("app_user_id").text().null())
                    .col(col("app_client_id").text().null())
                    // the app's grant: one device (a second one is refused)
                    .col(col("app_grant").text().null())
                    .col(col("app_acr").text().null())
                    .col(col("app_amr").text().null())
                    .col(col("face_result").text().null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("updated_at").big_integer().not_null())
                    .col(col("expires_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scan_tickets_updated_at")
                    .table(Alias::new("scan_tickets"))
                    .col(Alias::new("updated_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scan_tickets_expires_at")
                    .table(Alias::new("scan_tickets"))
                    .col(Alias::new("expires_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("scan_tickets")).if_exists().to_owned()).await?;
        Ok(())
    }
}
