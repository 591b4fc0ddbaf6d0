//! CIBA (OpenID Client-Initiated Backchannel Authentication Core 1.0).
//!
//! - `clients.backchannel_token_delivery_mode` (`poll` / `ping`) and
//!   `clients.backchannel_client_notification_endpoint` (ping mode).
//! - `scan_tickets.face_required`: a ticket whose confirmation needs the
//!   verifier's face pass for another reason than its purpose or a gate
//!   (a CIBA request asking for a level only a face check reaches).
//! - `ciba_requests`: one backchannel authentication request, keyed by the
//!   digest of its `auth_req_id`; the person's decision lives in the scan
//!   ticket it names (the citizen app decides it through the scan API).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000085_ciba"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for c in [text_null("backchannel_token_delivery_mode"), text_null("backchannel_client_notification_endpoint")] {
            manager.alter_table(Table::alter().table(Alias::new("clients")).add_column(c).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Alias::new("scan_tickets")).add_column(flag("face_required")).to_owned())
            .await?;
        manager
            .create_table(table(
                "ciba_requests",
                vec![
                    string_pk("auth_req_hash"),
                    text("ticket_id"),
                    text("client_id"),
                    text("user_id"),
                    text("scope"),
                    text("mode"),
                    text_null("notification_endpoint"),
                    // Ping mode: the `auth_req_id` and the client's bearer
                    // token for its endpoint, sealed under the master key.
                    text_null("ping_sealed"),
                    big("interval_secs"),
                    big_null("last_poll_at"),
                    big_null("notified_at"),
                    big("created_at"),
                    big("expires_at"),
                ],
            ))
            .await?;
        manager.create_index(index("ciba_requests", "ciba_requests_ticket", &["ticket_id"], true)).await?;
        manager.create_index(index("ciba_requests", "ciba_requests_expires", &["expires_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("ciba_requests")).if_exists().to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(Alias::new("scan_tickets")).drop_column(Alias::new("face_required")).to_owned(),
            )
            .await?;
        for c in ["backchannel_token_delivery_mode", "backchannel_client_notification_endpoint"] {
            manager
                .alter_table(Table::alter().table(Alias::new("clients")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
