//! The spine schema: clients, users, keys and every piece of ephemeral OIDC
//! state (requests, codes, sessions, grants, refresh tokens, counters) so that
//! several nodes sharing one PostgreSQL see the same truth.
use crate::util::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000001_core"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "clients",
                vec![
                    string_pk("client_id"),
                    text("name"),
                    text_null("secret_hash"),
                    text("auth_method"),
                    text("redirect_uris"),
                    text("post_logout_redirect_uris"),
                    text("grant_types"),
                    text("allowed_scopes"),
                    text("id_token_alg"),
                    text_null("jwks"),
                    text_null("backchannel_logout_uri"),
                    flag("skip_consent"),
                    big("created_at"),
                ],
            ),
            table(
                "users",
                vec![
                    string_pk("id"),
                    text("username"),
                    text_null("phone"),
                    text_null("id_number"),
                    text_null("email"),
                    flag("email_verified"),
                    flag("phone_verified"),
                    text_null("name"),
                    text_null("profile"),
                    text_null("address"),
                    text("password_hash"),
                    flag("disabled"),
                    big("created_at"),
                    big("updated_at"),
                ],
            ),
            table(
                "signing_keys",
                vec![
                    string_pk("kid"),
                    text("alg"),
                    text("private_enc"),
                    text("public_jwk"),
                    flag("active"),
                    big("created_at"),
                    big_null("retired_at"),
                ],
            ),
            table(
                "auth_requests",
                vec![string_pk("id"), text("client_id"), text("params"), text("browser"), big("expires_at")],
            ),
            table(
                "sessions",
                vec![
                    string_pk("id_hash"),
                    text("sid"),
                    text("user_id"),
                    big("auth_time"),
                    text("amr"),
                    text("acr"),
                    big("created_at"),
                    big("last_seen"),
                    big("expires_at"),
                    flag("revoked"),
                ],
            ),
            table("session_clients", vec![string_pk("id"), text("sid"), text("client_id")]),
            table(
                "auth_codes",
                vec![
                    string_pk("code_hash"),
                    text("client_id"),
                    text("grant_id"),
                    text("redirect_uri"),
                    text_null("code_challenge"),
                    big("expires_at"),
                    big_null("consumed_at"),
                ],
            ),
            table(
                "grants",
                vec![
                    string_pk("id"),
                    text("client_id"),
                    text("user_id"),
                    text_null("sid"),
                    text("scope"),
                    text_null("claims"),
                    text_null("nonce"),
                    big("auth_time"),
                    text("acr"),
                    text("amr"),
                    big("created_at"),
                    big("expires_at"),
                    big_null("revoked_at"),
                ],
            ),
            table(
                "refresh_tokens",
                vec![string_pk("token_hash"), text("grant_id"), big("expires_at"), big_null("used_at")],
            ),
            table(
                "consents",
                vec![string_pk("id"), text("user_id"), text("client_id"), text("scope"), big("granted_at")],
            ),
            table("revoked_tokens", vec![string_pk("jti"), big("expires_at")]),
            table("rate_counters", vec![string_pk("key"), big("count"), big("window_start"), big("expires_at")]),
            table("used_jtis", vec![string_pk("key"), big("expires_at")]),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        let indexes = vec![
            index("users", "ux_users_username", &["username"], true),
            index("users", "ux_users_phone", &["phone"], true),
            index("users", "ux_users_id_number", &["id_number"], true),
            index("sessions", "ix_sessions_sid", &["sid"], true),
            index("sessions", "ix_sessions_user", &["user_id"], false),
            index("session_clients", "ix_session_clients_sid", &["sid"], false),
            index("grants", "ix_grants_user", &["user_id"], false),
            index("grants", "ix_grants_sid", &["sid"], false),
            index("refresh_tokens", "ix_refresh_grant", &["grant_id"], false),
            index("auth_codes", "ix_codes_grant", &["grant_id"], false),
            index("consents", "ux_consents_user_client", &["user_id", "client_id"], true),
        ];
        for i in indexes {
            manager.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "used_jtis",
            "rate_counters",
            "revoked_tokens",
            "consents",
            "refresh_tokens",
            "grants",
            "auth_codes",
            "session_clients",
            "sessions",
            "auth_requests",
            "signing_keys",
            "users",
            "clients",
        ] {
            manager.drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
