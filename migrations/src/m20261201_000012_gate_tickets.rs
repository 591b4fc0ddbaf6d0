//! Face gates fed by the app (D2 with C1–C3, E2): a scan ticket may belong
//! to a face gate (first enterprise sign-in, agent registration, agent
//! approval, kin binding); the app's confirmation of such a ticket opens the
//! gate it names. A gate outlives several two-minute tickets, so the link is
//! on the ticket.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000012_gate_tickets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("scan_tickets"))
                    .add_column(ColumnDef::new(Alias::new("gate_id")).string_len(64).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("scan_tickets")).drop_column(Alias::new("gate_id")).to_owned())
            .await
    }
}
