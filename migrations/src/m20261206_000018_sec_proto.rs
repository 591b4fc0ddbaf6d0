//! Issue 13. `consents.claims`: the claims a user consented to release
//! individually through the `claims` request parameter (OIDC Core §5.5), so
//! a later request for other claims asks again. `signing_keys.purpose`:
//! plugin-signed JWTs get keys of their own (`plugin`), apart from the ID
//! and access token keys (`token`), so one can never pass for the other.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000018_sec_proto"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("consents"))
                    .add_column(col("claims").text().not_null().default(""))
                    .to_owned(),
            )
            .await?;
        // Every key made before this migration signs tokens.
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("signing_keys"))
                    .add_column(col("purpose").string_len(16).not_null().default("token"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("signing_keys")).drop_column(Alias::new("purpose")).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Alias::new("consents")).drop_column(Alias::new("claims")).to_owned())
            .await
    }
}
