//! A7 SMS limits as rolling windows: one row per counted send (phone per
//! hour and per day, address per hour), so "5 in any hour" is counted over
//! the last 3600 seconds rather than a fixed window that starts at the
//! first send (which let about nine through across a window boundary).
//! Rows expire after the longest window and are purged with the rest.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000020_sms_sends"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(table("sms_sends", vec![string_pk("id"), text("key"), big("at"), big("expires_at")]))
            .await?;
        manager.create_index(index("sms_sends", "sms_sends_key_at", &["key", "at"], false)).await?;
        manager.create_index(index("sms_sends", "sms_sends_expires", &["expires_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("sms_sends")).to_owned()).await
    }
}
