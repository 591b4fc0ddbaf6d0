//! Issue 17, registration and sender constraints:
//!
//! - `initial_access_tokens`: what an administrator issues for dynamic
//!   client registration (RFC 7591 §3), stored as keyed digests, with the
//!   uses left and an expiry.
//! - `clients.registration_token_hash`: the digest of a dynamically
//!   registered client's registration access token (RFC 7592);
//!   `clients.metadata`: further registered metadata as a JSON object
//!   (`userinfo_signed_response_alg`, `introspection_signed_response_alg`,
//!   `jwks_uri`, `client_uri`, `contacts` …).
//! - `auth_codes.dpop_jkt`: the DPoP key a code is bound to by the
//!   `dpop_jkt` authorization request parameter (RFC 9449 §10).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000080_registration"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds columns one at a time.
        for c in [text_null("registration_token_hash"), text_null("metadata")] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).add_column(c).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("auth_codes")).add_column(text_null("dpop_jkt")).to_owned())
            .await?;
        manager
            .create_table(table(
                "initial_access_tokens",
                vec![
                    string_pk("id"),
                    text("token_hash"),
                    text("label"),
                    big("uses_left"),
                    big("expires_at"),
                    big("created_at"),
                ],
            ))
            .await?;
        manager.create_index(index("initial_access_tokens", "initial_access_tokens_hash", &["token_hash"], true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("initial_access_tokens")).if_exists().to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Alias::new("auth_codes")).drop_column(Alias::new("dpop_jkt")).to_owned())
            .await?;
        for c in ["registration_token_hash", "metadata"] {
            manager
                .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
