//! Issue 17, the rest: pairwise subjects (OIDC Core §8.1) and the device
//! authorization grant (RFC 8628).
//!
//! - `clients.subject_type` (`public` / `pairwise`, none = the global
//!   default) and `clients.sector` (the sector identifier host, fixed at
//!   registration); `clients.sector_identifier_uri` as registered.
//! - `grants.sector`: the sector a grant's subjects are in (none = public).
//! - `pairwise_subjects`: one random `sub` per (sector, person subject).
//! - `device_codes`: RFC 8628 device / user codes, single use.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000050_pairwise_device"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for c in [text_null("subject_type"), text_null("sector"), text_null("sector_identifier_uri")] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).add_column(c).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).add_column(text_null("sector")).to_owned())
            .await?;
        manager
            .create_table(table(
                "pairwise_subjects",
                vec![string_pk("subject"), text("sector"), text("person"), big("created_at")],
            ))
            .await?;
        manager
            .create_index(index("pairwise_subjects", "pairwise_subjects_sector_person", &["sector", "person"], true))
            .await?;
        manager
            .create_table(table(
                "device_codes",
                vec![
                    string_pk("device_code_hash"),
                    text("user_code"),
                    text("client_id"),
                    text("scope"),
                    text("state"),
                    text_null("user_id"),
                    text_null("sid"),
                    big_null("auth_time"),
                    text_null("acr"),
                    text_null("amr"),
                    big("interval_secs"),
                    big_null("last_poll_at"),
                    big("created_at"),
                    big("expires_at"),
                ],
            ))
            .await?;
        manager.create_index(index("device_codes", "device_codes_user_code", &["user_code"], true)).await?;
        manager.create_index(index("device_codes", "device_codes_expires", &["expires_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["device_codes", "pairwise_subjects"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).drop_column(Alias::new("sector")).to_owned())
            .await?;
        for c in ["subject_type", "sector", "sector_identifier_uri"] {
            manager
                .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
