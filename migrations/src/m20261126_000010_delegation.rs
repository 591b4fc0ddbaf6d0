//! Legal persons, agents and delegation (C1–C6, E2): enterprises with their
//! legal representative, one `delegations` table for agent, person-to-person
//! and kin relations, face-check gates for steps that need a fresh face
//! check through the app, representative change requests (C5), which
//! enterprise/delegation a session acts for, and the same on grants so
//! tokens carry `act` and die with the delegation.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000010_delegation"
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    name: &'static str,
    cols: &[&'static str],
) -> Result<(), DbErr> {
    let mut ix = Index::create().name(name).table(Alias::new(table)).if_not_exists().to_owned();
    for c in cols {
        ix.col(Alias::new(*c));
    }
    manager.create_index(ix).await
}

fn id() -> ColumnDef {
    col("id").string_len(64).not_null().primary_key().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("enterprises"))
                    .if_not_exists()
                    .col(id())
                    .col(col("uscc").string_len(18).not_null().unique_key())
                    .col(col("name").text().not_null())
                    .col(col("region").text().not_null())
                    .col(col("representative_name").text().not_null())
                    .col(col("representative_id_number").text().not_null())
                    .col(col("representative_phone").text().not_null())
                    .col(col("representative_user_id").text().null())
                    .col(col("password_hash").text().not_null())
                    .col(col("representative_face_at").big_integer().null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("updated_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("delegations"))
                    .if_not_exists()
                    .col(id())
                    .col(col("kind").text().not_null())
                    .col(col("enterprise_id").text().null())
                    .col(col("principal_user_id").text().null())
                    .col(col("relative_name").text().null())
                    .col(col("relative_id_number").text().null())
                    .col(col("relation").text().null())
                    .col(col("grantee_user_id").text().not_null())
                    .col(col("scopes").text().not_null())
                    .col(col("valid_from").text().null())
                    .col(col("valid_to").text().null())
                    .col(col("state").text().not_null())
                    .col(col("reason").text().null())
                    .col(col("face_at").big_integer().null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("modified_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        index(manager, "delegations", "ix_delegations_grantee", &["grantee_user_id", "kind"]).await?;
        index(manager, "delegations", "ix_delegations_enterprise", &["enterprise_id"]).await?;
        index(manager, "delegations", "ix_delegations_principal", &["principal_user_id"]).await?;
        index(manager, "delegations", "ix_delegations_relative", &["relative_id_number"]).await?;
        // A row per counted key (a user, a relative's ID number), updated
        // inside a binding's transaction: the row lock serialises racing
        // binds on PostgreSQL, the write lock does on SQLite (E2 limits).
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("delegation_locks"))
                    .if_not_exists()
                    .col(col("key").string_len(128).not_null().primary_key())
                    .col(col("n").big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("face_gates"))
                    .if_not_exists()
                    .col(id())
                    .col(col("purpose").text().not_null())
                    .col(col("browser").text().not_null())
                    .col(col("id_number").text().not_null())
                    .col(col("payload").text().not_null())
                    .col(col("confirmed_at").big_integer().null())
                    .col(col("consumed_at").big_integer().null())
                    .col(col("expires_at").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("representative_changes"))
                    .if_not_exists()
                    .col(id())
                    .col(col("enterprise_id").text().not_null())
                    .col(col("kind").text().not_null())
                    .col(col("new_name").text().not_null())
                    .col(col("new_id_number").text().not_null())
                    .col(col("new_phone").text().not_null())
                    .col(col("status").text().not_null())
                    .col(col("reason").text().null())
                    .col(col("decided_by").text().null())
                    .col(col("created_at").big_integer().not_null())
                    .col(col("decided_at").big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("session_acting"))
                    .if_not_exists()
                    .col(col("sid").string_len(64).not_null().primary_key())
                    .col(col("enterprise_id").text().not_null())
                    .col(col("delegation_id").text().null())
                    .to_owned(),
            )
            .await?;
        index(manager, "session_acting", "ix_session_acting_delegation", &["delegation_id"]).await?;
        for c in ["enterprise_id", "delegation_id"] {
            manager
                .alter_table(Table::alter().table(Alias::new("grants")).add_column(col(c).text().null()).to_owned())
                .await?;
        }
        index(manager, "grants", "ix_grants_delegation", &["delegation_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ix_grants_delegation").table(Alias::new("grants")).to_owned()).await?;
        for c in ["delegation_id", "enterprise_id"] {
            manager
                .alter_table(Table::alter().table(Alias::new("grants")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        for t in
            ["session_acting", "representative_changes", "face_gates", "delegation_locks", "delegations", "enterprises"]
        {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
