//! Strong authentication factors (B6 step-up): TOTP (secret
//! encrypted under the master key, last accepted time-step for replay
//! refusal), single-use recovery codes (keyed digests), WebAuthn passkeys
//! (credential JSON as webauthn-rs serialises it) and WebAuthn ceremonies in
//! flight (bound to the browser, short-lived, so any node can finish them).
use crate::util::*;
use sea_orm_migration::prelude::*;

// Deleting an account (A6) deletes its factors with it (foreign key cascade).

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000009_factors"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One authenticator app per account; `confirmed` is false while an
        // enrolment waits for its first code.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("totp_factors"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("user_id")).string_len(128).not_null().primary_key())
                    .col(text("secret_enc"))
                    .col(ColumnDef::new(Alias::new("confirmed")).boolean().not_null())
                    .col(big("last_step"))
                    .col(big("created_at"))
                    .col(big_null("last_used_at"))
                    .foreign_key(&mut owner("totp_factors"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recovery_codes"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("user_id")).string_len(128).not_null())
                    .col(text("code_hash"))
                    .col(big_null("used_at"))
                    .col(big("created_at"))
                    .foreign_key(&mut owner("recovery_codes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("recovery_codes_user")
                    .table(Alias::new("recovery_codes"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("passkeys"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("user_id")).string_len(128).not_null())
                    .col(ColumnDef::new(Alias::new("cred_id")).string_len(1400).not_null())
                    .col(text("name"))
                    .col(text("credential"))
                    .col(big("created_at"))
                    .col(big_null("last_used_at"))
                    .foreign_key(&mut owner("passkeys"))
                    .to_owned(),
            )
            .await?;
        // A credential belongs to exactly one account (webauthn-rs: "assert
        // that the registered CredentialID has not previously been registered").
        manager
            .create_index(
                Index::create()
                    .name("passkeys_cred_id")
                    .table(Alias::new("passkeys"))
                    .col(Alias::new("cred_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("passkeys_user")
                    .table(Alias::new("passkeys"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webauthn_ceremonies"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("id")).string_len(64).not_null().primary_key())
                    .col(text("kind"))
                    .col(text("browser"))
                    .col(text_null("user_id"))
                    .col(text("state"))
                    .col(big("expires_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["webauthn_ceremonies", "passkeys", "recovery_codes", "totp_factors"] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
