//! Two-step sign-in (issue 19): the per-account switch
//! (`second_step_prefs`; no row = the default, on once a strong factor is
//! enrolled) and the sign-ins held between their first and second step
//! (`sign_in_holds`, browser-bound, short-lived, consumed once).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000041_second_step"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut prefs = table("second_step_prefs", vec![string_pk("user_id"), flag("required"), big("updated_at")]);
        prefs.foreign_key(&mut owner("second_step_prefs"));
        manager.create_table(prefs).await?;
        manager
            .create_table(table(
                "sign_in_holds",
                vec![string_pk("id"), text("user_id"), text("browser"), text("data"), big("expires_at")],
            ))
            .await?;
        manager.create_index(index("sign_in_holds", "sign_in_holds_expires", &["expires_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("sign_in_holds")).to_owned()).await?;
        manager.drop_table(Table::drop().table(Alias::new("second_step_prefs")).to_owned()).await
    }
}
