//! C2 agent password: the password an agent sets
//! at registration is the one he types at the enterprise login as
//! "我是代理人" for that enterprise, so it lives on his agent delegation
//! (argon2id, like the enterprise password). Agents added by the
//! representative or the CLI have none and sign in with their own account.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000013_agent_password"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Alias::new("delegations")).add_column(text_null("agent_password_hash")).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("delegations"))
                    .drop_column(Alias::new("agent_password_hash"))
                    .to_owned(),
            )
            .await
    }
}
