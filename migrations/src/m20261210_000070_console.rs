//! Operator console (issue 15): console sessions (the console is an OIDC
//! client of the provider; its own short-lived session, separate from the
//! citizen SSO cookie), the FAQ and citizens' feedback (G3).
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000070_console"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table(
                    "console_sessions",
                    vec![
                        string_pk("id_hash"),
                        col("user_id").string_len(128).not_null().to_owned(),
                        text("sid"),
                        big("strong_at"),
                        big("created_at"),
                        big("expires_at"),
                    ],
                )
                .foreign_key(&mut owner("console_sessions"))
                .to_owned(),
            )
            .await?;
        manager.create_index(index("console_sessions", "console_sessions_user", &["user_id"], false)).await?;
        manager
            .create_table(table(
                "faq_categories",
                vec![string_pk("id"), text("name"), big("position"), big("updated_at")],
            ))
            .await?;
        manager
            .create_table(table(
                "faq_items",
                vec![
                    string_pk("id"),
                    text("category_id"),
                    text("question"),
                    text("answer"),
                    big("position"),
                    big("updated_at"),
                ],
            ))
            .await?;
        manager.create_index(index("faq_items", "faq_items_category", &["category_id"], false)).await?;
        manager
            .create_table(
                table(
                    "feedback",
                    vec![
                        string_pk("id"),
                        col("user_id").string_len(128).not_null().to_owned(),
                        text("kind"),
                        text("page"),
                        text("body"),
                        text("status"),
                        text_null("answer"),
                        text_null("answered_by"),
                        big("created_at"),
                        big_null("answered_at"),
                    ],
                )
                .foreign_key(&mut owner("feedback"))
                .to_owned(),
            )
            .await?;
        manager.create_index(index("feedback", "feedback_user", &["user_id"], false)).await?;
        manager.create_index(index("feedback", "feedback_status", &["status", "created_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["feedback", "faq_items", "faq_categories", "console_sessions"] {
            manager.drop_table(Table::drop().table(Alias::new(t)).to_owned()).await?;
        }
        Ok(())
    }
}
