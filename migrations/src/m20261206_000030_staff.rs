//! Operator console (issue 15): staff roles. One row per (account, role,
//! app): `app_id` is empty except for `app_admin`, which holds one row per
//! app the admin may manage.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000030_staff"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(
                    "staff_roles",
                    vec![
                        string_pk("id"),
                        col("user_id").string_len(128).not_null().to_owned(),
                        text("role"),
                        text("app_id"),
                        text("granted_by"),
                        big("granted_at"),
                    ],
                )
                .foreign_key(&mut owner("staff_roles"))
                .to_owned(),
            )
            .await?;
        manager.create_index(index("staff_roles", "staff_roles_user", &["user_id"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("staff_roles")).to_owned()).await
    }
}
