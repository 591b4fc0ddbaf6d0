//! FAPI 2.0 and the protocol surface (issue 17): per-client protocol
//! settings (`profile` = `fapi2`, `require_par`, `dpop_bound`), the DPoP key
//! a grant's refresh tokens are bound to (RFC 9449 §5, public clients), and
//! pushed authorization requests (RFC 9126), single use and short-lived.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000021_fapi"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds columns one at a time.
        for c in [text_null("profile"), flag("require_par"), flag("dpop_bound")] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).add_column(c).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).add_column(text_null("dpop_jkt")).to_owned())
            .await?;
        manager
            .create_table(table(
                "par_requests",
                vec![string_pk("id"), text("client_id"), text("params"), big("expires_at")],
            ))
            .await?;
        manager.create_index(index("par_requests", "par_requests_expires", &["expires_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("par_requests")).if_exists().to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).drop_column(Alias::new("dpop_jkt")).to_owned())
            .await?;
        for c in ["profile", "require_par", "dpop_bound"] {
            manager
                .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
