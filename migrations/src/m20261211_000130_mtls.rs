//! Mutual TLS (RFC 8705, issue 17): clients whose access tokens are bound
//! to their certificate (`tls_bound`), and the certificate thumbprint a
//! grant's tokens are bound to (`cert_x5t`), so a refresh needs the same
//! certificate. The `tls_client_auth_*` settings live in the client's
//! registered metadata.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261211_000130_mtls"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("clients")).add_column(flag("tls_bound")).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).add_column(text_null("cert_x5t")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("grants")).drop_column(Alias::new("cert_x5t")).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new("tls_bound")).to_owned())
            .await
    }
}
