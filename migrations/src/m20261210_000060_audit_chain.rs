//! Tamper-evident audit and statistics counters (issue 15, G2).
//!
//! - `audit_log.seq` / `audit_log.hash`: each new row takes the next
//!   sequence number and a SHA-256 chained over the previous row's hash
//!   and its own canonical content (`domain::audit`), written in the
//!   event's transaction.
//! - `audit_chain`: one head row (`id = 'head'`) holding the last sequence
//!   number and hash. Appending updates it with a compare-and-set, so two
//!   writers on any node can never both extend the chain from the same
//!   row (PostgreSQL row lock until commit; SQLite has one writer).
//!   Rows written before this migration are not chained: the head records
//!   how many there were (`legacy_rows`) and the chain starts at a genesis
//!   hash of 64 zeros.
//! - `stat_counters`: per-UTC-day counters (day, metric, dimension) bumped
//!   in the same transaction as the event, so statistics never scan audit.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000060_audit_chain"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for c in [big_null("seq"), text_null("hash")] {
            manager.alter_table(Table::alter().table(Alias::new("audit_log")).add_column(c).to_owned()).await?;
        }
        manager.create_index(index("audit_log", "ux_audit_seq", &["seq"], true)).await?;
        manager.create_index(index("audit_log", "ix_audit_created", &["created_at"], false)).await?;
        manager
            .create_table(table(
                "audit_chain",
                vec![string_pk("id"), big("seq"), text("hash"), big("legacy_rows"), big("updated_at")],
            ))
            .await?;
        let genesis = "0".repeat(64);
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO audit_chain (id, seq, hash, legacy_rows, updated_at) \
                 SELECT 'head', 0, '{genesis}', COUNT(*), 0 FROM audit_log"
            ))
            .await?;
        manager
            .create_table(table(
                "stat_counters",
                vec![string_pk("key"), big("day"), text("metric"), text("dim"), big("count")],
            ))
            .await?;
        manager.create_index(index("stat_counters", "ix_stat_day_metric", &["day", "metric"], false)).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["stat_counters", "audit_chain"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        manager.drop_index(Index::drop().name("ux_audit_seq").table(Alias::new("audit_log")).to_owned()).await?;
        manager.drop_index(Index::drop().name("ix_audit_created").table(Alias::new("audit_log")).to_owned()).await?;
        for c in ["seq", "hash"] {
            manager
                .alter_table(Table::alter().table(Alias::new("audit_log")).drop_column(Alias::new(c)).to_owned())
                .await?;
        }
        Ok(())
    }
}
